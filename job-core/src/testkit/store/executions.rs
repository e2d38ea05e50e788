//! Conformance cases for executions, host runs, status moves and the outbox.

use chrono::Duration;

use super::fixtures::*;
use crate::ids::ExecutionId;
use crate::model::OutboxState;
use crate::status::{ExecutionStatus as S, HostStatus};
use crate::store::{
    HostRunUpdate, OutboxOutcome, PageRequest, Store, StoreExt, TeamScope, Transition,
};

/// An execution is written with all its host runs, read back whole, and its host runs page
/// in index order.
pub async fn an_execution_is_created_with_all_its_host_runs(store: &dyn Store) {
    let a = team(store, "exec-create").await;
    let (e, runs) = execution(a.id, 25, now());
    store.create_execution(&e, &runs).await.expect("create");
    assert_eq!(
        store.get_execution(&scope(a.id), e.id).await.expect("get"),
        e
    );
    let first = store
        .list_host_runs(&scope(a.id), e.id, None, PageRequest::first(10))
        .await
        .expect("page 1");
    assert_eq!(first.items, runs[..10].to_vec());
    assert_eq!(first.next, Some(9));
    let second = store
        .list_host_runs(&scope(a.id), e.id, None, PageRequest::after(9, 10))
        .await
        .expect("page 2");
    assert_eq!(second.items, runs[10..20].to_vec());
    assert_eq!(
        store.all_host_runs(&scope(a.id), e.id).await.expect("all"),
        runs
    );
    assert_conflict(store.create_execution(&e, &runs).await);
    let running = store
        .list_host_runs(
            &scope(a.id),
            e.id,
            Some(HostStatus::Running),
            PageRequest::first(10),
        )
        .await
        .expect("filter");
    assert!(running.items.is_empty());
}

/// A refused create writes nothing: no execution without its host runs.
pub async fn a_refused_execution_leaves_nothing_half_written(store: &dyn Store) {
    let a = team(store, "exec-atomic").await;
    let (e, mut runs) = execution(a.id, 3, now());
    runs.swap(1, 2);
    assert_invalid(store.create_execution(&e, &runs).await, "hosts[1]");
    assert_not_found(store.get_execution(&scope(a.id), e.id).await);

    let (e, mut runs) = execution(a.id, 3, now());
    runs[2].error = Some("bad\0byte".to_owned());
    assert_invalid(store.create_execution(&e, &runs).await, "hosts[2].error");
    assert_not_found(store.get_execution(&scope(a.id), e.id).await);

    let (mut e, runs) = execution(a.id, 3, now());
    e.callback_url = Some(format!("https://example.com/{}", "x".repeat(5000)));
    assert_invalid(store.create_execution(&e, &runs).await, "callback_url");
    assert_not_found(store.get_execution(&scope(a.id), e.id).await);

    let (e, runs) = execution(a.id, 3, now());
    assert_invalid(store.create_execution(&e, &[]).await, "targets");
    let (_, foreign_runs) = execution(a.id, 3, now());
    assert_invalid(store.create_execution(&e, &foreign_runs).await, "hosts[0]");
    store
        .create_execution(&e, &runs)
        .await
        .expect("a valid create still works");
    assert_eq!(
        store
            .all_host_runs(&scope(a.id), e.id)
            .await
            .expect("hosts")
            .len(),
        3
    );
}

/// Status moves are compare-and-set checks of the move table and of the stored status.
pub async fn status_moves_are_compare_and_set_against_the_move_table(store: &dyn Store) {
    let a = team(store, "exec-cas").await;
    let e = create_execution(store, a.id, 2).await;
    let t0 = now();
    assert_invalid(
        store
            .transition(e.id, &Transition::new(S::Pending, S::Success, t0))
            .await,
        "status",
    );
    assert_conflict(
        store
            .transition(e.id, &Transition::new(S::Running, S::Success, t0))
            .await,
    );
    assert_not_found(
        store
            .transition(
                ExecutionId::new(),
                &Transition::new(S::Pending, S::Running, t0),
            )
            .await,
    );
    let moved = store
        .transition(e.id, &Transition::new(S::Pending, S::Running, t0))
        .await
        .expect("start");
    assert_eq!((moved.status, moved.started_at), (S::Running, Some(t0)));
    let t1 = t0 + Duration::seconds(5);
    let moved = store
        .transition(e.id, &Transition::new(S::Running, S::Cancelling, t1))
        .await
        .expect("cancel");
    assert_eq!(moved.cancel_requested_at, Some(t1));
    assert_conflict(
        store
            .transition(e.id, &Transition::new(S::Running, S::Cancelling, t1))
            .await,
    );
    let t2 = t1 + Duration::seconds(5);
    let done = store
        .transition(e.id, &Transition::new(S::Cancelling, S::Cancelled, t2))
        .await
        .expect("converge");
    assert_eq!(
        (done.status, done.started_at, done.finished_at),
        (S::Cancelled, Some(t0), Some(t2))
    );
    assert_eq!(done.duration_ms(), Some(10_000));
    assert_eq!(
        store.get_execution(&scope(a.id), e.id).await.expect("get"),
        done
    );
}

/// Of many concurrent moves from one status, exactly one wins.
pub async fn exactly_one_of_many_concurrent_transitions_wins(store: &dyn Store) {
    let a = team(store, "exec-race").await;
    for _ in 0..3 {
        let e = create_execution(store, a.id, 1).await;
        let moves: Vec<Transition> = (0..16)
            .map(|i| {
                Transition::new(
                    S::Pending,
                    if i % 2 == 0 { S::Running } else { S::Cancelled },
                    now(),
                )
            })
            .collect();
        let results = join_all(moves.iter().map(|t| store.transition(e.id, t)).collect()).await;
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        for r in &results {
            if let Err(err) = r {
                assert_eq!(err.code(), "conflict", "{err}");
            }
        }
        let stored = store.get_execution(&scope(a.id), e.id).await.expect("get");
        assert_eq!(stored.status, winners[0].status);
    }
}

/// A move into a final status writes its outbox entries in the same transaction; when they
/// cannot be written, the status does not move either.
pub async fn a_final_move_writes_its_outbox_entries_in_the_same_transaction(store: &dyn Store) {
    let a = team(store, "exec-outbox").await;
    let e = create_execution(store, a.id, 1).await;
    store
        .transition(e.id, &Transition::new(S::Pending, S::Running, now()))
        .await
        .expect("start");
    let earlier = callback(a.id, None, now());
    store
        .enqueue_outbox(std::slice::from_ref(&earlier))
        .await
        .expect("enqueue");

    let dup = Transition::new(S::Running, S::Success, now())
        .with_outbox(vec![callback(a.id, Some(e.id), now()), earlier.clone()]);
    assert_conflict(store.transition(e.id, &dup).await);
    assert_eq!(
        store
            .get_execution(&scope(a.id), e.id)
            .await
            .expect("get")
            .status,
        S::Running
    );
    assert!(
        store
            .list_outbox_for_execution(&scope(a.id), e.id)
            .await
            .expect("list")
            .is_empty()
    );

    let mut bad = callback(a.id, Some(e.id), now());
    bad.payload = serde_json::json!({"output": "nul\u{0}here"});
    let nul = Transition::new(S::Running, S::Success, now()).with_outbox(vec![bad]);
    assert_invalid(store.transition(e.id, &nul).await, "outbox[0].payload");
    assert_eq!(
        store
            .get_execution(&scope(a.id), e.id)
            .await
            .expect("get")
            .status,
        S::Running
    );

    let cb = callback(a.id, Some(e.id), now());
    let fin = Transition::new(S::Running, S::Success, now())
        .with_hosts(vec![HostRunUpdate::finished(
            0,
            HostStatus::Success,
            Some(0),
            now(),
        )])
        .with_outbox(vec![cb.clone()]);
    let done = store.transition(e.id, &fin).await.expect("finish");
    assert_eq!((done.status, done.counters.success), (S::Success, 1));
    assert_eq!(
        store
            .list_outbox_for_execution(&scope(a.id), e.id)
            .await
            .expect("list"),
        vec![cb.clone()]
    );
    assert_eq!(
        store
            .get_outbox_entry(&scope(a.id), cb.delivery_id)
            .await
            .expect("get"),
        cb
    );
}

/// Host runs only move forward, and the execution's counters always match them.
pub async fn host_updates_only_move_forward_and_keep_counters_true(store: &dyn Store) {
    let a = team(store, "exec-hosts").await;
    let e = create_execution(store, a.id, 4).await;
    store
        .transition(e.id, &Transition::new(S::Pending, S::Running, now()))
        .await
        .expect("start");
    let t = now();
    let applied = store
        .update_host_runs(
            e.id,
            &[
                HostRunUpdate::started(0, t),
                HostRunUpdate::started(1, t),
                HostRunUpdate::started(2, t),
            ],
        )
        .await
        .expect("start hosts");
    assert_eq!(applied, 3);
    let mut failed = HostRunUpdate::finished(1, HostStatus::Failed, Some(2), t);
    failed.error = Some("exit status 2: «permission denied» 'quoted' \"twice\"".to_owned());
    let applied = store
        .update_host_runs(
            e.id,
            &[
                HostRunUpdate::finished(0, HostStatus::Success, Some(0), t),
                failed.clone(),
                HostRunUpdate::started(0, t),
            ],
        )
        .await
        .expect("finish hosts");
    assert_eq!(applied, 2, "a move back to running is ignored");
    assert_eq!(
        store
            .update_host_runs(
                e.id,
                &[HostRunUpdate::finished(0, HostStatus::Failed, None, t)]
            )
            .await
            .expect("late"),
        0
    );
    assert_invalid(
        store
            .update_host_runs(e.id, &[HostRunUpdate::started(9, t)])
            .await,
        "host",
    );
    assert_not_found(
        store
            .update_host_runs(ExecutionId::new(), &[HostRunUpdate::started(0, t)])
            .await,
    );
    let got = store
        .get_execution(&scope(a.id), e.id)
        .await
        .expect("get")
        .counters;
    assert_eq!(
        (got.total, got.pending, got.running, got.success, got.failed),
        (4, 1, 1, 1, 1)
    );
    assert!(got.is_consistent());
    let hosts = store
        .all_host_runs(&scope(a.id), e.id)
        .await
        .expect("hosts");
    assert_eq!(
        (
            hosts[0].status,
            hosts[0].exit_code,
            hosts[0].started_at,
            hosts[0].finished_at
        ),
        (HostStatus::Success, Some(0), Some(t), Some(t))
    );
    assert_eq!(
        (hosts[1].exit_code, hosts[1].error.as_deref()),
        (Some(2), failed.error.as_deref())
    );
    let only_failed = store
        .list_host_runs(
            &scope(a.id),
            e.id,
            Some(HostStatus::Failed),
            PageRequest::first(10),
        )
        .await
        .expect("filter");
    assert_eq!(
        only_failed
            .items
            .iter()
            .map(|h| h.index)
            .collect::<Vec<_>>(),
        vec![1]
    );
}

/// Cancelling a pending execution cancels its hosts in the same move.
pub async fn cancel_of_a_pending_execution_cancels_its_hosts_in_one_move(store: &dyn Store) {
    let a = team(store, "exec-cancel").await;
    let e = create_execution(store, a.id, 3).await;
    let t = now();
    let hosts = (0..3)
        .map(|i| HostRunUpdate::finished(i, HostStatus::Cancelled, None, t))
        .collect();
    let done = store
        .transition(
            e.id,
            &Transition::new(S::Pending, S::Cancelled, t).with_hosts(hosts),
        )
        .await
        .expect("cancel");
    assert_eq!(
        (
            done.status,
            done.counters.cancelled,
            done.cancel_requested_at,
            done.finished_at
        ),
        (S::Cancelled, 3, Some(t), Some(t))
    );
    assert!(
        store
            .all_host_runs(&scope(a.id), e.id)
            .await
            .expect("hosts")
            .iter()
            .all(|h| h.status == HostStatus::Cancelled)
    );
}

/// Outbox entries are claimed when due, retried with their error, and finally delivered or
/// given up.
pub async fn outbox_entries_are_claimed_retried_and_delivered(store: &dyn Store) {
    let a = team(store, "outbox").await;
    let b = team(store, "outbox-b").await;
    let due = at(0, 0);
    let one = callback(a.id, None, due);
    let two = callback(a.id, None, due + Duration::seconds(1));
    store
        .enqueue_outbox(&[one.clone(), two.clone()])
        .await
        .expect("enqueue");
    let lease = due + Duration::seconds(60);
    let claimed = store
        .claim_due_outbox(due + Duration::seconds(1), lease, 1000)
        .await
        .expect("claim");
    let mine: Vec<_> = claimed
        .iter()
        .filter(|e| e.team_id == a.id)
        .cloned()
        .collect();
    assert_eq!(mine, vec![one.clone(), two.clone()]);
    let again = store
        .claim_due_outbox(due + Duration::seconds(1), lease, 1000)
        .await
        .expect("claim again");
    assert!(
        !again.iter().any(|e| e.team_id == a.id),
        "claimed entries wait for their lease"
    );
    let retry_at = due + Duration::seconds(5);
    store
        .record_outbox_attempt(
            one.delivery_id,
            &OutboxOutcome::Retry {
                next_attempt_at: retry_at,
                error: "HTTP 503".to_owned(),
            },
        )
        .await
        .expect("retry");
    store
        .record_outbox_attempt(two.delivery_id, &OutboxOutcome::Delivered)
        .await
        .expect("delivered");
    let got = store
        .get_outbox_entry(&scope(a.id), one.delivery_id)
        .await
        .expect("get");
    assert_eq!(
        (
            got.state,
            got.attempts,
            got.next_attempt_at,
            got.last_error.as_deref()
        ),
        (OutboxState::Pending, 1, retry_at, Some("HTTP 503"))
    );
    let got = store
        .get_outbox_entry(&scope(a.id), two.delivery_id)
        .await
        .expect("get");
    assert_eq!((got.state, got.attempts), (OutboxState::Delivered, 1));
    store
        .record_outbox_attempt(
            one.delivery_id,
            &OutboxOutcome::GaveUp {
                error: "HTTP 500".to_owned(),
            },
        )
        .await
        .expect("give up");
    let got = store
        .get_outbox_entry(&scope(a.id), one.delivery_id)
        .await
        .expect("get");
    assert_eq!((got.state, got.attempts), (OutboxState::Failed, 2));
    assert!(
        !store
            .claim_due_outbox(lease + Duration::days(1), lease + Duration::days(2), 1000)
            .await
            .expect("claim")
            .iter()
            .any(|e| e.team_id == a.id)
    );
    assert_not_found(store.get_outbox_entry(&scope(b.id), one.delivery_id).await);
    assert_not_found(
        store
            .record_outbox_attempt(crate::ids::DeliveryId::new(), &OutboxOutcome::Delivered)
            .await,
    );
    assert_eq!(
        store
            .get_outbox_entry(&TeamScope::All, one.delivery_id)
            .await
            .expect("admin")
            .team_id,
        a.id
    );
}
