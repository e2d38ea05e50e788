//! Conformance cases for high-risk rules.

use super::fixtures::*;
use crate::ids::*;
use crate::model::*;
use crate::store::{Store, TeamScope};
use crate::values::*;

/// Global rules are seen by every team; team rules only by theirs; built-ins stay.
pub async fn rules_are_global_or_per_team_and_built_ins_cannot_be_deleted(store: &dyn Store) {
    let a = team(store, "rules-a").await;
    let b = team(store, "rules-b").await;
    let global = CommandRule {
        id: RuleId::new(),
        name: name("rm -rf /"),
        pattern: r"rm\s+-rf\s+/(\s|$)".to_owned(),
        level: RuleLevel::Forbidden,
        enabled: true,
        built_in: true,
        team_id: None,
        description: Description::default(),
        created_at: now(),
    };
    let mut mine = CommandRule {
        id: RuleId::new(),
        name: name("reboot"),
        pattern: "reboot".to_owned(),
        level: RuleLevel::Confirm,
        built_in: false,
        team_id: Some(a.id),
        ..global.clone()
    };
    store.create_command_rule(&global).await.expect("create");
    store.create_command_rule(&mine).await.expect("create");
    let seen_a: Vec<_> = store
        .list_command_rules(&scope(a.id))
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert!(seen_a.contains(&global.id) && seen_a.contains(&mine.id));
    let seen_b: Vec<_> = store
        .list_command_rules(&scope(b.id))
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert!(seen_b.contains(&global.id) && !seen_b.contains(&mine.id));
    assert_conflict(store.delete_command_rule(&TeamScope::All, global.id).await);
    assert_not_found(store.update_command_rule(&scope(a.id), &global).await);
    let mut disabled = global.clone();
    disabled.enabled = false;
    store
        .update_command_rule(&TeamScope::All, &disabled)
        .await
        .expect("disable built-in");
    mine.enabled = false;
    assert_not_found(store.update_command_rule(&scope(b.id), &mine).await);
    store
        .update_command_rule(&scope(a.id), &mine)
        .await
        .expect("update");
    let got = store.list_command_rules(&scope(a.id)).await.expect("list");
    assert!(got.contains(&mine) && got.contains(&disabled));
    assert_not_found(store.delete_command_rule(&scope(b.id), mine.id).await);
    store
        .delete_command_rule(&scope(a.id), mine.id)
        .await
        .expect("delete");

    let path = PathRule {
        id: RuleId::new(),
        name: name("system dirs"),
        pattern: "/etc".to_owned(),
        match_type: PathMatchType::Prefix,
        kind: PathRuleKind::Deny,
        level: RuleLevel::Forbidden,
        windows: false,
        enabled: true,
        built_in: false,
        team_id: Some(b.id),
        description: Description::default(),
        created_at: now(),
    };
    store.create_path_rule(&path).await.expect("create");
    assert!(
        store
            .list_path_rules(&scope(b.id))
            .await
            .expect("list")
            .contains(&path)
    );
    assert!(
        !store
            .list_path_rules(&scope(a.id))
            .await
            .expect("list")
            .contains(&path)
    );
    let mut changed = path.clone();
    changed.kind = PathRuleKind::Allow;
    store
        .update_path_rule(&scope(b.id), &changed)
        .await
        .expect("update");
    assert!(
        store
            .list_path_rules(&scope(b.id))
            .await
            .expect("list")
            .contains(&changed)
    );
    store
        .delete_path_rule(&scope(b.id), path.id)
        .await
        .expect("delete");
    store
        .delete_command_rule(&TeamScope::All, RuleId::new())
        .await
        .expect_err("missing rule");
}
