//! Rolling execution: batches by count or percent, continue or pause on failure.

use job::core::Error;
use job::core::bus::{EventBus, LiveEvent};
use job::core::engine::{request_cancel, resume_execution};
use job::core::ids::{ExecutionId, TeamId};
use job::core::model::{Actor, HostRun, Rolling};
use job::core::status::{ExecutionStatus, HostStatus};
use job::core::store::TeamScope;

use crate::fixture::*;

fn plan(batch: &str, mode: &str) -> Option<Rolling> {
    Some(Rolling::parse(batch, mode).unwrap())
}

/// Asserts that every host of each batch finished before any host of the next started.
fn assert_batches(hosts: &[HostRun], batches: &[std::ops::Range<usize>]) {
    for pair in batches.windows(2) {
        let last_finish = hosts[pair[0].clone()]
            .iter()
            .map(|h| h.finished_at.expect("finished"))
            .max()
            .unwrap();
        let first_start = hosts[pair[1].clone()]
            .iter()
            .map(|h| h.started_at.expect("started"))
            .min()
            .unwrap();
        assert!(
            last_finish <= first_start,
            "batch {:?} started at {first_start} before batch {:?} finished at {last_finish}",
            pair[1],
            pair[0]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_a_count_starts_only_when_the_batch_before_it_finished() {
    let f = fixture().await;
    let (mut e, hosts) = execution(
        f.team,
        "sleep 0.3; echo done",
        &["a", "b", "c", "d", "e"],
        30,
    );
    e.rolling = plan("2", "continue");
    f.create(&e, &hosts).await;
    assert_eq!(f.run(e.id).await, ExecutionStatus::Success);
    let hosts = f.hosts(e.id).await;
    assert!(hosts.iter().all(|h| h.status == HostStatus::Success));
    assert_batches(&hosts, &[0..2, 2..4, 4..5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_a_percentage_rounds_up_and_keeps_the_boundary() {
    let f = fixture().await;
    // 30% of 5 hosts is 1.5: batches of 2.
    let (mut e, hosts) = execution(f.team, "sleep 0.3", &["a", "b", "c", "d", "e"], 30);
    e.rolling = plan("30%", "pause_on_failure");
    f.create(&e, &hosts).await;
    assert_eq!(f.run(e.id).await, ExecutionStatus::Success);
    let hosts = f.hosts(e.id).await;
    assert_batches(&hosts, &[0..2, 2..4, 4..5]);
    let stored = f.get(e.id).await;
    assert_eq!(stored.rolling, plan("30%", "pause_on_failure"));
    assert_eq!(stored.paused_at, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_mode_goes_on_after_a_batch_with_a_failure() {
    let f = fixture().await;
    let (mut e, hosts) = execution(f.team, "echo ok", &["a", "down", "c", "d"], 30);
    e.rolling = plan("2", "continue");
    f.create(&e, &hosts).await;
    assert_eq!(f.run(e.id).await, ExecutionStatus::Failed);
    let statuses: Vec<_> = f.hosts(e.id).await.iter().map(|h| h.status).collect();
    assert_eq!(
        statuses,
        [
            HostStatus::Success,
            HostStatus::Failed,
            HostStatus::Success,
            HostStatus::Success
        ]
    );
    assert_batches(&f.hosts(e.id).await, &[0..2, 2..4]);
}

/// Creates a 4-host pause-on-failure execution whose second host fails (for an engine
/// loop to run) and waits for the pause, seen in the store and on the bus.
async fn paused(f: &Fixture) -> ExecutionId {
    let (mut e, hosts) = execution(f.team, "echo ok", &["a", "down", "c", "d"], 30);
    e.rolling = plan("50%", "pause_on_failure");
    let mut events = f.bus.subscribe(e.id).await;
    f.create(&e, &hosts).await;
    let stored = f
        .wait_for(e.id, "the execution pauses", |e| e.paused_at.is_some())
        .await;
    assert_eq!(stored.status, ExecutionStatus::Running);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let ev = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("the pause is published")
            .expect("the bus delivers");
        if ev == (LiveEvent::Paused { execution_id: e.id }) {
            return e.id;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_on_failure_pauses_with_later_hosts_pending_until_resumed() {
    let f = fixture().await;
    let running = Running::start(&f.engine, None);
    let id = paused(&f).await;
    let hosts = f.hosts(id).await;
    let statuses: Vec<_> = hosts.iter().map(|h| h.status).collect();
    assert_eq!(
        statuses,
        [
            HostStatus::Success,
            HostStatus::Failed,
            HostStatus::Pending,
            HostStatus::Pending
        ]
    );
    let stored = f.get(id).await;
    assert_eq!((stored.counters.pending, stored.counters.failed), (2, 1));

    // Nobody claims a paused execution: not this node, not a node restarting under its id.
    assert!(f.engine.claim().await.unwrap().is_empty());
    f.engine.recover_own_executions().await.unwrap();
    assert!(f.engine.claim().await.unwrap().is_empty());
    assert_eq!(f.get(id).await.paused_at, stored.paused_at, "still paused");

    // Another team cannot see it to resume it.
    let err = resume_execution(
        &*f.store,
        &*f.bus,
        &TeamScope::team(TeamId::new()),
        id,
        chrono::Utc::now(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");

    let mut events = f.bus.subscribe(id).await;
    let resumed = resume_execution(
        &*f.store,
        &*f.bus,
        &TeamScope::team(f.team),
        id,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(resumed.paused_at, None);
    assert_eq!(
        events.recv().await.unwrap(),
        LiveEvent::Resumed { execution_id: id }
    );
    let done = f.wait_final(id).await;
    assert_eq!(done.status, ExecutionStatus::Failed);
    let hosts = f.hosts(id).await;
    assert!(hosts[2..].iter().all(|h| h.status == HostStatus::Success));
    assert_batches(&hosts, &[0..2, 2..4]);
    let again = resume_execution(&*f.store, &*f.bus, &TeamScope::All, id, chrono::Utc::now())
        .await
        .unwrap_err();
    assert!(matches!(again, Error::Conflict { .. }), "{again:?}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_while_paused_cancels_the_pending_hosts() {
    let f = fixture().await;
    let running = Running::start(&f.engine, None);
    let id = paused(&f).await;
    let cancelling = request_cancel(
        &*f.store,
        &*f.bus,
        &Actor::scheduler(f.team),
        id,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(cancelling.status, ExecutionStatus::Cancelling);
    assert_eq!(cancelling.paused_at, None);
    let done = f.wait_final(id).await;
    assert_eq!(done.status, ExecutionStatus::Cancelled);
    let hosts = f.hosts(id).await;
    assert_eq!(hosts[0].status, HostStatus::Success);
    assert_eq!(hosts[1].status, HostStatus::Failed);
    assert!(
        hosts[2..]
            .iter()
            .all(|h| h.status == HostStatus::Cancelled && h.started_at.is_none())
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_during_a_batch_kills_it_and_cancels_the_later_batches() {
    let f = fixture().await;
    let (mut e, hosts) = execution(f.team, "exec sleep 300", &["a", "b", "c"], 600);
    e.rolling = plan("1", "continue");
    f.create(&e, &hosts).await;
    let running = Running::start(&f.engine, None);
    f.wait_hosts_running(e.id, 1).await;
    request_cancel(
        &*f.store,
        &*f.bus,
        &Actor::scheduler(f.team),
        e.id,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let done = f.wait_final(e.id).await;
    assert_eq!(done.status, ExecutionStatus::Cancelled);
    let hosts = f.hosts(e.id).await;
    assert!(hosts.iter().all(|h| h.status == HostStatus::Cancelled));
    assert!(hosts[0].started_at.is_some());
    assert!(hosts[1..].iter().all(|h| h.started_at.is_none()));
    running.stop().await;
}
