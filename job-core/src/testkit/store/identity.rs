//! Conformance cases for teams, users, memberships and tokens.

use chrono::Duration;

use super::fixtures::*;
use crate::ids::*;
use crate::model::*;
use crate::store::{PageRequest, Store, TeamScope};
use crate::values::*;

/// Users, teams, memberships and hashed tokens round-trip.
pub async fn users_teams_memberships_and_tokens(store: &dyn Store) {
    let a = team(store, "id-a").await;
    let b = team(store, "id-b").await;
    assert_conflict(
        store
            .create_team(&Team {
                id: TeamId::new(),
                ..a.clone()
            })
            .await,
    );
    assert_eq!(store.get_team(&scope(a.id), a.id).await.expect("get"), a);
    assert_not_found(store.get_team(&scope(a.id), b.id).await);
    let teams = store.list_teams(&scope(b.id)).await.expect("list");
    assert_eq!(teams, vec![b.clone()]);

    let login = unique("alice");
    let mut u = User {
        id: UserId::new(),
        username: Username::parse("username", &login).expect("username"),
        display_name: name("Alice O'Brien"),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        is_admin: false,
        disabled: false,
        memberships: vec![Membership {
            team_id: a.id,
            role: Role::Maintainer,
        }],
        created_at: now(),
    };
    store.create_user(&u).await.expect("create");
    assert_eq!(store.get_user(u.id).await.expect("get"), u);
    assert_eq!(
        store
            .get_user_by_username(&u.username)
            .await
            .expect("by name"),
        u
    );
    assert_conflict(
        store
            .create_user(&User {
                id: UserId::new(),
                memberships: Vec::new(),
                ..u.clone()
            })
            .await,
    );
    store
        .set_membership(u.id, b.id, Some(Role::Viewer))
        .await
        .expect("join b");
    store
        .set_membership(u.id, a.id, Some(Role::Operator))
        .await
        .expect("change role");
    let mut got = store.get_user(u.id).await.expect("get").memberships;
    got.sort_by_key(|m| m.team_id);
    let mut want = vec![
        Membership {
            team_id: a.id,
            role: Role::Operator,
        },
        Membership {
            team_id: b.id,
            role: Role::Viewer,
        },
    ];
    want.sort_by_key(|m| m.team_id);
    assert_eq!(got, want);
    store
        .set_membership(u.id, b.id, None)
        .await
        .expect("leave b");
    assert_not_found(
        store
            .set_membership(u.id, TeamId::new(), Some(Role::Viewer))
            .await,
    );
    u.disabled = true;
    u.memberships = vec![Membership {
        team_id: a.id,
        role: Role::Operator,
    }];
    store.update_user(&u).await.expect("update");
    assert_eq!(store.get_user(u.id).await.expect("get"), u);
    let users = store
        .list_users(PageRequest::first(1000))
        .await
        .expect("list");
    assert!(users.items.iter().any(|x| x.id == u.id));

    let token = ApiToken {
        id: TokenId::new(),
        name: name("ci"),
        team_id: a.id,
        created_by: u.id,
        token_hash: unique("sha256"),
        expires_at: Some(now() + Duration::days(30)),
        revoked_at: None,
        created_at: now(),
        last_used_at: None,
    };
    store.create_token(&token).await.expect("create token");
    assert_eq!(
        store
            .get_token_by_hash(&token.token_hash)
            .await
            .expect("by hash"),
        token
    );
    assert_conflict(
        store
            .create_token(&ApiToken {
                id: TokenId::new(),
                ..token.clone()
            })
            .await,
    );
    assert_not_found(store.get_token_by_hash("no such hash").await);
    let used = now();
    store.touch_token(token.id, used).await.expect("touch");
    assert_not_found(store.revoke_token(&scope(b.id), token.id, used).await);
    store
        .revoke_token(&scope(a.id), token.id, used)
        .await
        .expect("revoke");
    store
        .revoke_token(&scope(a.id), token.id, used + Duration::hours(1))
        .await
        .expect("revoke twice");
    let got = store
        .get_token_by_hash(&token.token_hash)
        .await
        .expect("by hash");
    assert_eq!((got.last_used_at, got.revoked_at), (Some(used), Some(used)));
    assert!(!got.is_usable_at(used));
    assert_eq!(
        store.list_tokens(&scope(a.id)).await.expect("list").len(),
        1
    );
    assert!(
        store
            .list_tokens(&scope(b.id))
            .await
            .expect("list")
            .is_empty()
    );
    assert_conflict(store.delete_team(a.id).await);
    let empty = team(store, "id-empty").await;
    store
        .delete_team(empty.id)
        .await
        .expect("delete empty team");
    assert_not_found(store.get_team(&TeamScope::All, empty.id).await);
}
