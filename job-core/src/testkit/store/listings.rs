//! Conformance cases for listings, pagination and team scoping.

use std::collections::BTreeSet;

use chrono::Duration;

use super::fixtures::*;
use crate::ids::*;
use crate::model::*;
use crate::status::ExecutionStatus as S;
use crate::store::{
    AssetFilter, ExecutionFilter, NewOutput, PageRequest, Store, TeamScope, TimeRange, Transition,
};
use crate::values::Description;

/// Execution listings filter by status, kind, trigger, team, creation time and name.
pub async fn execution_listings_filter_by_status_type_trigger_team_time_and_name(
    store: &dyn Store,
) {
    let a = team(store, "filters-a").await;
    let b = team(store, "filters-b").await;
    let both = &TeamScope::Teams(BTreeSet::from([a.id, b.id]));
    let mut made = Vec::new();
    for i in 0..6i64 {
        let (mut e, runs) = execution(if i % 3 == 0 { b.id } else { a.id }, 1, at(i, 0));
        e.name = name(&format!("deploy 100%_{i} 'web'"));
        e.job_type = if i % 2 == 0 {
            JobType::Script
        } else {
            JobType::FileDistribution
        };
        e.trigger_source = if i < 3 {
            TriggerSource::Manual
        } else {
            TriggerSource::Api
        };
        store.create_execution(&e, &runs).await.expect("create");
        made.push(e);
    }
    store
        .transition(made[1].id, &Transition::new(S::Pending, S::Running, now()))
        .await
        .expect("start");
    let list = |f: ExecutionFilter| async move {
        let mut ids: Vec<ExecutionId> = store
            .list_executions(both, &f, PageRequest::first(100))
            .await
            .expect("list")
            .items
            .iter()
            .map(|e| e.id)
            .collect();
        ids.reverse();
        ids
    };
    let ids = |idx: &[usize]| idx.iter().map(|i| made[*i].id).collect::<Vec<_>>();
    assert_eq!(
        list(ExecutionFilter::default()).await,
        ids(&[0, 1, 2, 3, 4, 5])
    );
    assert_eq!(
        list(ExecutionFilter {
            statuses: vec![S::Running],
            ..Default::default()
        })
        .await,
        ids(&[1])
    );
    assert_eq!(
        list(ExecutionFilter {
            statuses: vec![S::Running, S::Pending],
            ..Default::default()
        })
        .await,
        ids(&[0, 1, 2, 3, 4, 5])
    );
    assert_eq!(
        list(ExecutionFilter {
            job_type: Some(JobType::FileDistribution),
            ..Default::default()
        })
        .await,
        ids(&[1, 3, 5])
    );
    assert_eq!(
        list(ExecutionFilter {
            trigger_source: Some(TriggerSource::Api),
            ..Default::default()
        })
        .await,
        ids(&[3, 4, 5])
    );
    assert_eq!(
        list(ExecutionFilter {
            team_id: Some(b.id),
            ..Default::default()
        })
        .await,
        ids(&[0, 3])
    );
    assert_eq!(
        list(ExecutionFilter {
            created_from: Some(at(2, 0)),
            created_to: Some(at(4, 0)),
            ..Default::default()
        })
        .await,
        ids(&[2, 3])
    );
    assert_eq!(
        list(ExecutionFilter {
            name_contains: Some("100%_4 'WEB'".to_owned()),
            ..Default::default()
        })
        .await,
        ids(&[4])
    );
    assert_eq!(
        list(ExecutionFilter {
            name_contains: Some("%%".to_owned()),
            ..Default::default()
        })
        .await,
        ids(&[])
    );
    let only_a = store
        .list_executions(
            &scope(a.id),
            &ExecutionFilter {
                team_id: Some(b.id),
                ..Default::default()
            },
            PageRequest::first(100),
        )
        .await
        .expect("list");
    assert!(
        only_a.items.is_empty(),
        "a team filter never widens the scope"
    );
}

/// Pages neither repeat nor skip items when new ones are inserted between page reads.
pub async fn pagination_is_stable_under_inserts(store: &dyn Store) {
    let a = team(store, "pages").await;
    let mut made = Vec::new();
    for _ in 0..23 {
        made.push(create_execution(store, a.id, 1).await.id);
    }
    let mut seen = Vec::new();
    let mut page = PageRequest::first(5);
    loop {
        let got = store
            .list_executions(&scope(a.id), &ExecutionFilter::default(), page)
            .await
            .expect("list");
        seen.extend(got.items.iter().map(|e| e.id));
        create_execution(store, a.id, 1).await;
        match got.next {
            Some(next) => page = PageRequest::after(next, 5),
            None => break,
        }
    }
    made.reverse();
    assert_eq!(
        seen, made,
        "newest first, each exactly once, none of the later inserts"
    );
    let mut targets = Vec::new();
    for i in 0..7 {
        let t = target(a.id, &format!("node-{i}"), "10.9.0.1");
        store.create_target(&t).await.expect("create");
        targets.push(t.id);
    }
    let mut seen = Vec::new();
    let mut page = PageRequest::first(3);
    loop {
        let got = store
            .list_targets(&scope(a.id), &AssetFilter::default(), page)
            .await
            .expect("list");
        seen.extend(got.items.iter().map(|t| t.id));
        match got.next {
            Some(next) => page = PageRequest::after(next, 3),
            None => break,
        }
    }
    targets.reverse();
    assert_eq!(seen, targets);
}

/// Nothing of another team is visible: every get is NotFound and every listing is empty.
pub async fn nothing_of_another_team_is_visible(store: &dyn Store) {
    let a = team(store, "scope-a").await;
    let b = team(store, "scope-b").await;
    let sb = scope(b.id);
    let nobody = TeamScope::Teams(BTreeSet::new());
    let t = target(a.id, "secret-host", "10.7.0.1");
    store.create_target(&t).await.expect("create");
    let (s, v) = script(a.id, "secret script");
    store.create_script(&s, &v).await.expect("create");
    let job = cron_job(a.id, "secret cron");
    store.create_cron_job(&job).await.expect("create");
    let e = create_execution(store, a.id, 1).await;
    store
        .append_output(
            e.id,
            &[NewOutput {
                host_index: 0,
                stream: OutputStream::Stdout,
                data: b"secret".to_vec(),
                ts: now(),
            }],
            1024,
        )
        .await
        .expect("append");
    let cb = callback(a.id, Some(e.id), now());
    store
        .enqueue_outbox(std::slice::from_ref(&cb))
        .await
        .expect("enqueue");
    let cred = Credential {
        id: CredentialId::new(),
        team_id: a.id,
        name: name("secret credential"),
        kind: "password".to_owned(),
        secret_ciphertext: vec![1, 2, 3],
        created_at: now(),
    };
    store.create_credential(&cred).await.expect("create");
    let group = TargetGroup {
        id: GroupId::new(),
        team_id: a.id,
        name: name("secret group"),
        selector: TargetSelector {
            target_ids: vec![t.id],
            ..TargetSelector::default()
        },
        description: Description::default(),
        created_at: now(),
    };
    store.create_group(&group).await.expect("create");
    let playbook = Playbook {
        id: PlaybookId::new(),
        team_id: a.id,
        name: name("secret playbook"),
        description: Description::default(),
        created_at: now(),
    };
    store.create_playbook(&playbook).await.expect("create");
    let file = staged(a.id, "secret.tar.gz", now() + Duration::days(1));
    store.create_staged_file(&file).await.expect("create");
    let rule = CommandRule {
        id: RuleId::new(),
        name: name("secret rule"),
        pattern: "shutdown".to_owned(),
        level: RuleLevel::Forbidden,
        enabled: true,
        built_in: false,
        team_id: Some(a.id),
        description: Description::default(),
        created_at: now(),
    };
    store.create_command_rule(&rule).await.expect("create");

    for sc in [&sb, &nobody] {
        assert_not_found(store.get_target(sc, t.id).await);
        assert_not_found(store.delete_target(sc, t.id).await);
        assert_not_found(store.get_script(sc, s.id).await);
        assert_not_found(store.get_script_version(sc, v.id).await);
        assert_not_found(store.get_cron_job(sc, job.id).await);
        assert_not_found(store.delete_cron_job(sc, job.id).await);
        assert_not_found(store.get_execution(sc, e.id).await);
        assert_not_found(
            store
                .list_host_runs(sc, e.id, None, PageRequest::first(10))
                .await,
        );
        assert_not_found(store.read_output(sc, e.id, None, None, 10).await);
        assert_not_found(store.list_outbox_for_execution(sc, e.id).await);
        assert_not_found(store.get_outbox_entry(sc, cb.delivery_id).await);
        assert_not_found(store.get_team(sc, a.id).await);
        assert_not_found(store.get_credential(sc, cred.id).await);
        assert_not_found(store.delete_credential(sc, cred.id).await);
        assert_not_found(store.get_group(sc, group.id).await);
        assert_not_found(store.update_group(sc, &group).await);
        assert_not_found(store.get_playbook(sc, playbook.id).await);
        assert_not_found(store.list_playbook_versions(sc, playbook.id).await);
        assert_not_found(store.get_staged_file(sc, file.id).await);
        assert_not_found(store.delete_staged_file(sc, file.id).await);
        assert_not_found(store.update_command_rule(sc, &rule).await);
        assert_not_found(store.delete_command_rule(sc, rule.id).await);
        assert!(
            !store
                .list_command_rules(sc)
                .await
                .expect("rules")
                .contains(&rule)
        );
        assert!(
            store
                .list_tokens(sc)
                .await
                .expect("tokens")
                .iter()
                .all(|x| x.team_id != a.id)
        );
        let f0 = AssetFilter::default();
        assert!(
            store
                .list_credentials(sc, &f0, PageRequest::first(100))
                .await
                .expect("list")
                .items
                .iter()
                .all(|x| x.team_id != a.id)
        );
        assert!(
            store
                .list_groups(sc, &f0, PageRequest::first(100))
                .await
                .expect("list")
                .items
                .iter()
                .all(|x| x.team_id != a.id)
        );
        assert!(
            store
                .list_playbooks(sc, &f0, PageRequest::first(100))
                .await
                .expect("list")
                .items
                .iter()
                .all(|x| x.team_id != a.id)
        );
        assert!(
            store
                .list_staged_files(sc, &f0, PageRequest::first(100))
                .await
                .expect("list")
                .items
                .iter()
                .all(|x| x.team_id != a.id)
        );
        assert!(
            store
                .targets_matching(b.id, &group.selector)
                .await
                .expect("match")
                .is_empty()
        );
        let f = AssetFilter::default();
        assert!(
            store
                .list_targets(sc, &f, PageRequest::first(100))
                .await
                .expect("list")
                .items
                .iter()
                .all(|x| x.team_id != a.id)
        );
        assert!(
            store
                .list_scripts(sc, &f, PageRequest::first(100))
                .await
                .expect("list")
                .items
                .iter()
                .all(|x| x.team_id != a.id)
        );
        assert!(
            store
                .list_cron_jobs(sc, &f, PageRequest::first(100))
                .await
                .expect("list")
                .items
                .iter()
                .all(|x| x.team_id != a.id)
        );
        let ef = ExecutionFilter {
            team_id: Some(a.id),
            ..ExecutionFilter::default()
        };
        assert!(
            store
                .list_executions(sc, &ef, PageRequest::first(100))
                .await
                .expect("list")
                .items
                .is_empty()
        );
        assert!(
            store
                .list_teams(sc)
                .await
                .expect("teams")
                .iter()
                .all(|x| x.id != a.id)
        );
        let range =
            TimeRange::new(now() - Duration::days(1), now() + Duration::days(1)).expect("range");
        let totals = store.totals(sc, range).await.expect("totals");
        assert_eq!(totals.total, 0);
    }
    let all = store
        .list_executions(
            &TeamScope::All,
            &ExecutionFilter {
                team_id: Some(a.id),
                ..Default::default()
            },
            PageRequest::first(10),
        )
        .await
        .expect("admin");
    assert_eq!(all.items.len(), 1);
    assert_eq!(
        store
            .get_execution(&scope(a.id), e.id)
            .await
            .expect("own team")
            .id,
        e.id
    );
}
