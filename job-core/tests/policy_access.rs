//! Team access: roles, administrators, and no existence oracle across teams.

use std::collections::BTreeMap;

use job_core::ids::{TeamId, UserId};
use job_core::model::{Actor, ActorKind, Role};
use job_core::policy::{Access, authorize, authorize_found};

fn user(teams: &[(TeamId, Role)], is_admin: bool) -> Actor {
    Actor {
        kind: ActorKind::User {
            user_id: UserId::new(),
            username: "alice".into(),
        },
        is_admin,
        teams: teams.iter().copied().collect::<BTreeMap<_, _>>(),
    }
}

#[test]
fn roles_grant_read_use_and_change_in_order() {
    let team = TeamId::new();
    let cases = [
        (Role::Viewer, [true, false, false]),
        (Role::Operator, [true, true, false]),
        (Role::Maintainer, [true, true, true]),
    ];
    for (role, expected) in cases {
        let actor = user(&[(team, role)], false);
        let got = [Access::Read, Access::Use, Access::Change]
            .map(|a| authorize(&actor, team, a, "script x").is_ok());
        assert_eq!(got, expected, "{role:?}");
    }
}

#[test]
fn administrators_may_do_everything_in_every_team() {
    let admin = user(&[], true);
    for access in [Access::Read, Access::Use, Access::Change] {
        assert!(authorize(&admin, TeamId::new(), access, "script x").is_ok());
    }
}

#[test]
fn an_asset_of_another_team_is_indistinguishable_from_a_missing_one() {
    let (ours, theirs) = (TeamId::new(), TeamId::new());
    let actor = user(&[(ours, Role::Maintainer)], false);
    let what = "script 0193aaaa";
    let missing = authorize_found::<TeamId>(&actor, None, |t| *t, Access::Read, what).unwrap_err();
    for access in [Access::Read, Access::Use, Access::Change] {
        let elsewhere = authorize_found(&actor, Some(theirs), |t| *t, access, what).unwrap_err();
        assert_eq!(elsewhere.code(), missing.code());
        assert_eq!(elsewhere.to_string(), missing.to_string());
        assert_eq!(format!("{elsewhere:?}"), format!("{missing:?}"));
    }
    assert_eq!(missing.code(), "not_found");
}

#[test]
fn a_member_with_too_low_a_role_is_forbidden_not_lied_to() {
    let team = TeamId::new();
    let viewer = user(&[(team, Role::Viewer)], false);
    let err = authorize(&viewer, team, Access::Use, "script x").unwrap_err();
    assert_eq!(err.code(), "forbidden");
}

#[test]
fn the_scheduler_and_nats_callers_act_as_operators_of_their_team_only() {
    let (team, other) = (TeamId::new(), TeamId::new());
    for actor in [Actor::scheduler(team), Actor::nats(team, None)] {
        assert!(authorize(&actor, team, Access::Use, "x").is_ok());
        assert_eq!(
            authorize(&actor, team, Access::Change, "x")
                .unwrap_err()
                .code(),
            "forbidden"
        );
        assert_eq!(
            authorize(&actor, other, Access::Read, "x")
                .unwrap_err()
                .code(),
            "not_found"
        );
    }
}
