//! Conformance cases for rolling executions (the stored plan and pause) and for a node
//! recovering its own leases.

use chrono::Duration;

use super::fixtures::*;
use crate::model::Rolling;
use crate::status::ExecutionStatus as S;
use crate::store::{Lease, Store, TeamScope, Transition};

fn lease(node: &str, now: chrono::DateTime<chrono::Utc>, secs: i64) -> Lease {
    Lease {
        node: node.to_owned(),
        now,
        until: now + Duration::seconds(secs),
    }
}

/// The rolling plan round-trips; a `running` execution can be paused once and unpaused
/// once; a paused execution is never claimed, whatever its lease; a status move (a cancel)
/// clears the pause.
pub async fn a_rolling_plan_and_its_pause_are_stored_with_the_execution(store: &dyn Store) {
    let a = team(store, "rolling").await;
    let (mut e, runs) = execution(a.id, 4, now());
    e.rolling = Some(Rolling::parse("25%", "pause_on_failure").expect("plan"));
    store.create_execution(&e, &runs).await.expect("create");
    let read = store
        .get_execution(&TeamScope::All, e.id)
        .await
        .expect("read");
    assert_eq!(read.rolling, e.rolling, "the plan round-trips");
    assert_eq!(read.paused_at, None);
    let (plain, plain_runs) = execution(a.id, 1, now());
    store
        .create_execution(&plain, &plain_runs)
        .await
        .expect("create");
    let read_plain = store
        .get_execution(&TeamScope::All, plain.id)
        .await
        .expect("read");
    assert_eq!(read_plain.rolling, None);

    let t = now();
    assert_conflict(store.pause_execution(e.id, t).await);
    let runner = unique("node");
    loop {
        let got = store
            .claim_executions(&lease(&runner, t, 30), 1000)
            .await
            .expect("claim");
        assert!(!got.is_empty(), "the execution is claimable");
        if got.iter().any(|c| c.execution.id == e.id) {
            break;
        }
    }
    store
        .transition(e.id, &Transition::new(S::Pending, S::Running, t))
        .await
        .expect("start");
    assert_conflict(store.unpause_execution(e.id).await);
    let paused = store.pause_execution(e.id, t).await.expect("pause");
    assert_eq!(paused.paused_at, Some(t));
    assert_eq!(paused.status, S::Running);
    assert_conflict(store.pause_execution(e.id, t).await);
    assert_not_found(
        store
            .pause_execution(crate::ids::ExecutionId::new(), t)
            .await,
    );
    let listed = store
        .get_execution(&TeamScope::team(a.id), e.id)
        .await
        .expect("read");
    assert_eq!(listed.paused_at, Some(t), "the pause is visible");

    // Its runner lets it go and its lease is long expired: still nobody claims it while
    // it is paused.
    store.release_lease(e.id, &runner).await.expect("release");
    let later = lease(&unique("node"), t + Duration::days(1), 30);
    let claimed = store.claim_executions(&later, 1000).await.expect("claim");
    assert!(
        claimed.iter().all(|c| c.execution.id != e.id),
        "a paused execution is not claimed"
    );

    let resumed = store.unpause_execution(e.id).await.expect("unpause");
    assert_eq!((resumed.paused_at, resumed.status), (None, S::Running));
    assert_conflict(store.unpause_execution(e.id).await);
    let node = unique("node");
    let claimed = store
        .claim_executions(&lease(&node, t + Duration::days(2), 30), 1000)
        .await
        .expect("claim");
    assert!(
        claimed
            .iter()
            .any(|c| c.execution.id == e.id && c.taken_over),
        "once resumed it is claimed again, as a take-over"
    );

    store.pause_execution(e.id, t).await.expect("pause again");
    let cancelling = store
        .transition(e.id, &Transition::new(S::Running, S::Cancelling, t))
        .await
        .expect("cancel");
    assert_eq!(cancelling.paused_at, None, "a status move clears the pause");
    assert_conflict(store.unpause_execution(e.id).await);
}

/// A node releases every lease it holds on unfinished executions at once (and only its
/// own), so another claim takes them over without waiting for them to expire.
pub async fn a_node_releases_its_own_leases_at_once(store: &dyn Store) {
    let a = team(store, "own-leases").await;
    let mine = unique("node");
    let other = unique("node");
    let t = now();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(create_execution(store, a.id, 1).await.id);
    }
    // Claim until our three are held by `mine` (a shared store may hold others' pending ones).
    let mut held = 0;
    while held < ids.len() {
        let got = store
            .claim_executions(&lease(&mine, t, 60), 1000)
            .await
            .expect("claim");
        assert!(!got.is_empty(), "our executions are claimable");
        held += got.iter().filter(|c| ids.contains(&c.execution.id)).count();
    }
    store
        .transition(ids[0], &Transition::new(S::Pending, S::Running, t))
        .await
        .expect("start");
    store
        .transition(ids[2], &Transition::new(S::Pending, S::Cancelled, t))
        .await
        .expect("cancel");
    let foreign = create_execution(store, a.id, 1).await;
    loop {
        let got = store
            .claim_executions(&lease(&other, t, 60), 1000)
            .await
            .expect("claim");
        if got.iter().any(|c| c.execution.id == foreign.id) || got.is_empty() {
            break;
        }
    }

    assert_eq!(
        store.release_node_leases(&mine).await.expect("release"),
        2,
        "the running and the pending one; never a final one"
    );
    assert_eq!(store.release_node_leases(&mine).await.expect("again"), 0);
    let taker = unique("node");
    let got = store
        .claim_executions(&lease(&taker, t + Duration::seconds(1), 60), 1000)
        .await
        .expect("claim");
    let find = |id| got.iter().find(|c| c.execution.id == id);
    let running = find(ids[0]).expect("the running one is taken over at once");
    assert!(running.taken_over);
    assert_eq!(running.execution.status, S::Running);
    let pending = find(ids[1]).expect("the pending one is claimed at once");
    assert!(
        !pending.taken_over,
        "a pending execution never started anywhere"
    );
    assert!(find(ids[2]).is_none(), "a final execution is never claimed");
    assert!(
        find(foreign.id).is_none(),
        "another node's valid lease is left alone"
    );
    store
        .renew_lease(ids[0], &lease(&taker, t + Duration::seconds(2), 60))
        .await
        .expect("the taker holds it now");
    assert_conflict(
        store
            .renew_lease(ids[0], &lease(&mine, t + Duration::seconds(2), 60))
            .await,
    );
}
