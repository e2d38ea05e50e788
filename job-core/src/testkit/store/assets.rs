//! Conformance cases for targets, credentials and target groups.

use super::fixtures::*;
use crate::ids::*;
use crate::model::*;
use crate::store::{AssetFilter, PageRequest, Store, StoreExt};
use crate::values::*;

fn credential(team: TeamId, n: &str) -> Credential {
    Credential {
        id: CredentialId::new(),
        team_id: team,
        name: name(n),
        kind: "password".to_owned(),
        secret_ciphertext: vec![0, 1, 2, 255, 0],
        created_at: now(),
    }
}

/// Targets are stored, read back, updated, listed and deleted; names are unique per team.
pub async fn targets_round_trip_and_names_are_unique_per_team(store: &dyn Store) {
    let a = team(store, "targets-a").await;
    let b = team(store, "targets-b").await;
    let mut t = target(a.id, "web-01", "10.0.0.1");
    t.tags = vec![Tag::parse("tags", "env=prod").expect("tag")];
    store.create_target(&t).await.expect("create");
    assert_eq!(store.get_target(&scope(a.id), t.id).await.expect("get"), t);
    assert_conflict(
        store
            .create_target(&target(a.id, "web-01", "10.0.0.2"))
            .await,
    );
    store
        .create_target(&target(b.id, "web-01", "10.0.0.2"))
        .await
        .expect("same name in another team");

    t.address = Address::parse("address", "web-01.example.com").expect("address");
    t.description = Description::parse("description", "primary").expect("description");
    store.update_target(&scope(a.id), &t).await.expect("update");
    assert_eq!(store.get_target(&scope(a.id), t.id).await.expect("get"), t);
    assert_not_found(store.update_target(&scope(b.id), &t).await);

    let page = store
        .list_targets(
            &scope(a.id),
            &AssetFilter::default(),
            PageRequest::first(10),
        )
        .await
        .expect("list");
    assert_eq!(page.items, vec![t.clone()]);
    assert_eq!(page.next, None);
    store
        .delete_target(&scope(a.id), t.id)
        .await
        .expect("delete");
    assert_not_found(store.get_target(&scope(a.id), t.id).await);
    assert_not_found(store.delete_target(&scope(a.id), t.id).await);
}

/// Agentless targets need a credential of their own team; a credential in use cannot go.
pub async fn agentless_targets_need_a_credential_of_their_team(store: &dyn Store) {
    let a = team(store, "cred-a").await;
    let b = team(store, "cred-b").await;
    let ca = credential(a.id, "root");
    let cb = credential(b.id, "root");
    store.create_credential(&ca).await.expect("create");
    store.create_credential(&cb).await.expect("create in b");
    assert_eq!(
        store
            .get_credential(&scope(a.id), ca.id)
            .await
            .expect("get")
            .secret_ciphertext,
        ca.secret_ciphertext
    );
    assert_conflict(store.create_credential(&credential(a.id, "root")).await);

    let mut t = target(a.id, "db-01", "10.0.1.1");
    t.mode = TargetMode::Agentless {
        port: Port::SSH,
        user: name("root"),
        credential_id: cb.id,
    };
    assert_invalid(store.create_target(&t).await, "credential_id");
    t.mode = TargetMode::Agentless {
        port: Port::new("port", 2222).expect("port"),
        user: name("root"),
        credential_id: ca.id,
    };
    store.create_target(&t).await.expect("create agentless");
    assert_eq!(store.get_target(&scope(a.id), t.id).await.expect("get"), t);
    assert_conflict(store.delete_credential(&scope(a.id), ca.id).await);
    store
        .delete_target(&scope(a.id), t.id)
        .await
        .expect("delete target");
    store
        .delete_credential(&scope(a.id), ca.id)
        .await
        .expect("delete unused credential");
    let page = store
        .list_credentials(&scope(b.id), &AssetFilter::default(), PageRequest::first(5))
        .await
        .expect("list");
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, cb.id);
}

/// Selectors name targets by id, address and tag expression, and groups expand recursively;
/// targets of another team never join, and a cycle of groups is refused.
pub async fn target_selectors_resolve_ids_addresses_tags_and_groups(store: &dyn Store) {
    let a = team(store, "sel-a").await;
    let b = team(store, "sel-b").await;
    let prod = Tag::parse("tags", "env=prod").expect("tag");
    let web = Tag::parse("tags", "role=web").expect("tag");
    let mut t1 = target(a.id, "t1", "10.1.0.1");
    t1.tags = vec![prod.clone(), web.clone()];
    let mut t2 = target(a.id, "t2", "10.1.0.2");
    t2.tags = vec![prod.clone()];
    let t3 = target(a.id, "t3", "10.1.0.3");
    let mut other = target(b.id, "t1", "10.1.0.1");
    other.tags = vec![prod.clone(), web.clone()];
    for t in [&t1, &t2, &t3, &other] {
        store.create_target(t).await.expect("create");
    }
    let by_tags = TargetSelector {
        tags: vec![vec![prod.clone(), web.clone()]],
        ..TargetSelector::default()
    };
    let got = store.targets_matching(a.id, &by_tags).await.expect("match");
    assert_eq!(got.iter().map(|t| t.id).collect::<Vec<_>>(), vec![t1.id]);
    let by_ip = TargetSelector {
        ips: vec![Address::parse("ips", "10.1.0.3").expect("ip")],
        target_ids: vec![other.id, t2.id],
        ..TargetSelector::default()
    };
    let mut ids: Vec<_> = store
        .targets_matching(a.id, &by_ip)
        .await
        .expect("match")
        .iter()
        .map(|t| t.id)
        .collect();
    ids.sort();
    let mut want = vec![t2.id, t3.id];
    want.sort();
    assert_eq!(ids, want);

    let g1 = TargetGroup {
        id: GroupId::new(),
        team_id: a.id,
        name: name("web"),
        selector: by_tags.clone(),
        description: Description::default(),
        created_at: now(),
    };
    let mut g2 = TargetGroup {
        id: GroupId::new(),
        team_id: a.id,
        name: name("all"),
        selector: TargetSelector {
            group_ids: vec![g1.id],
            target_ids: vec![t3.id],
            ..TargetSelector::default()
        },
        description: Description::default(),
        created_at: now(),
    };
    store.create_group(&g1).await.expect("group");
    store.create_group(&g2).await.expect("group");
    assert_conflict(store.create_group(&g1).await);
    let sel = TargetSelector {
        group_ids: vec![g2.id],
        ..TargetSelector::default()
    };
    let mut ids: Vec<_> = store
        .resolve_selector(a.id, &sel)
        .await
        .expect("resolve")
        .iter()
        .map(|t| t.id)
        .collect();
    ids.sort();
    let mut want = vec![t1.id, t3.id];
    want.sort();
    assert_eq!(ids, want);
    assert_not_found(store.resolve_selector(b.id, &sel).await);

    let mut g1b = g1.clone();
    g1b.selector.group_ids = vec![g2.id];
    store
        .update_group(&scope(a.id), &g1b)
        .await
        .expect("update");
    assert_invalid(
        store.resolve_selector(a.id, &sel).await,
        "targets.group_ids",
    );
    g2.selector.group_ids.clear();
    store.update_group(&scope(a.id), &g2).await.expect("update");
    assert_eq!(store.get_group(&scope(a.id), g2.id).await.expect("get"), g2);
    assert_not_found(store.get_group(&scope(b.id), g2.id).await);
    let page = store
        .list_groups(&scope(a.id), &AssetFilter::default(), PageRequest::first(1))
        .await
        .expect("list");
    assert_eq!(page.items.len(), 1);
    assert!(page.next.is_some());
    store
        .delete_group(&scope(a.id), g1.id)
        .await
        .expect("delete");
    assert_not_found(store.get_group(&scope(a.id), g1.id).await);
}
