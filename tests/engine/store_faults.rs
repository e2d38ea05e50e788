//! The store fails mid-run: output appends, host results and the final status that cannot be
//! written for a while, a lost connection, a slow store. Whatever fails, once the store is
//! back every execution ends in a final state with its hosts final, no output line that was
//! stored is lost or stored twice, and no process of the run is left on the host.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use job::core::bus::{EventBus, LiveEvent};
use job::core::engine::EngineConfig;
use job::core::ids::ExecutionId;
use job::core::model::{Execution, OutputStream};
use job::core::status::{ExecutionStatus, HostStatus};
use job::core::testkit::StoreMethod;

use crate::fixture::*;

/// A script that records its process id in `pids` and a child's that it leaves in the
/// background, then prints `lines` numbered lines, pausing every `every` lines.
fn numbered(pids: &Path, lines: u32, every: u32, pause: &str) -> String {
    format!(
        "echo $$ > {dir}/main-$RANDOM$RANDOM; sleep 300 & echo $! > {dir}/child-$RANDOM$RANDOM
for i in $(seq 1 {lines}); do echo \"line $i\"; if [ $((i % {every})) -eq 0 ]; then sleep {pause}; fi; done",
        dir = pids.display()
    )
}

fn config() -> EngineConfig {
    EngineConfig {
        cancel_grace: Duration::from_secs(10),
        ..EngineConfig::default()
    }
}

/// The line numbers of host `host`'s stored stdout, in stored order.
async fn stored_lines(f: &Fixture, id: ExecutionId, host: u32) -> Vec<u32> {
    f.output(id, host, OutputStream::Stdout)
        .await
        .lines()
        .map(|l| {
            l.strip_prefix("line ")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected output line {l:?}"))
        })
        .collect()
}

/// The line numbers the engine published as stored (with a sequence number), per host.
fn acknowledged(
    events: &mut tokio::sync::broadcast::Receiver<LiveEvent>,
) -> BTreeMap<u32, Vec<u32>> {
    let mut text: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    while let Ok(event) = events.try_recv() {
        if let LiveEvent::Output(c) = event
            && c.stream == OutputStream::Stdout
        {
            text.entry(c.host_index).or_default().extend(c.data);
        }
    }
    text.into_iter()
        .map(|(host, text)| {
            let lines = String::from_utf8_lossy(&text)
                .lines()
                .filter_map(|l| l.strip_prefix("line ")?.parse().ok())
                .collect();
            (host, lines)
        })
        .collect()
}

/// What every run must leave, whatever failed: a final execution whose hosts are all final
/// and agree with its counters, and no process of the run alive.
async fn assert_settled(f: &Fixture, e: &Execution, pids: &Path) -> Execution {
    let stored = f.get(e.id).await;
    assert!(stored.status.is_final(), "left {:?}", stored.status);
    let hosts = f.hosts(e.id).await;
    for h in &hosts {
        assert!(h.status.is_final(), "host {} left {:?}", h.index, h.status);
    }
    let success = hosts
        .iter()
        .filter(|h| h.status == HostStatus::Success)
        .count();
    assert_eq!(stored.counters.success as usize, success);
    assert_eq!(stored.counters.running + stored.counters.pending, 0);
    let mut seen = 0;
    for entry in std::fs::read_dir(pids).unwrap() {
        let pid = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert_gone(pid.trim()).await;
        seen += 1;
    }
    assert_eq!(seen, 2 * hosts.len(), "every host recorded its processes");
    stored
}

/// The process `pid` is gone or dead: a killed background child is reparented to init,
/// which reaps it in its own time, so a zombie counts as gone and a dying one gets a
/// moment.
async fn assert_gone(pid: &str) {
    for _ in 0..100 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return,
            // The state follows the parenthesised command name.
            Ok(stat) if matches!(stat.rsplit(") ").next(), Some(s) if s.starts_with(['Z', 'X'])) => {
                return;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("pid {pid} survived the run");
}

/// Every line stored once, in order, as a subsequence of `1..=lines`.
fn assert_in_order_once(lines: &[u32], total: u32) {
    assert!(
        lines.windows(2).all(|w| w[0] < w[1]),
        "lines out of order or stored twice: {lines:?}"
    );
    assert!(lines.iter().all(|n| (1..=total).contains(n)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_appends_failing_for_a_while_are_retried_and_every_line_is_stored_once() {
    let d = decorated_fixture(config()).await;
    let pids = tempfile::tempdir().unwrap();
    let (e, hosts) = execution(
        d.f.team,
        &numbered(pids.path(), 300, 50, "0.05"),
        &["a", "b"],
        30,
    );
    d.f.create(&e, &hosts).await;
    d.faults.fail_calls(StoreMethod::AppendOutput, 1..=3);
    assert_eq!(d.f.run(e.id).await, ExecutionStatus::Success);
    assert_eq!(d.faults.injected_failures(), 3);
    assert_settled(&d.f, &e, pids.path()).await;
    for host in 0..2 {
        assert_eq!(
            stored_lines(&d.f, e.id, host).await,
            (1..=300).collect::<Vec<_>>()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_appends_failing_past_the_retries_are_stored_with_a_later_batch() {
    let d = decorated_fixture(config()).await;
    let pids = tempfile::tempdir().unwrap();
    let (e, hosts) = execution(d.f.team, &numbered(pids.path(), 200, 20, "0.1"), &["a"], 30);
    d.f.create(&e, &hosts).await;
    let mut events = d.f.bus.subscribe(e.id).await;
    // The second batch fails on every try; the appends after it work again.
    d.faults.fail_calls(StoreMethod::AppendOutput, 2..=6);
    assert_eq!(d.f.run(e.id).await, ExecutionStatus::Success);
    assert_eq!(d.faults.injected_failures(), 5);
    assert_settled(&d.f, &e, pids.path()).await;
    // The refused batch is stored first with the next one: nothing is lost.
    let stored = stored_lines(&d.f, e.id, 0).await;
    assert_eq!(stored, (1..=200).collect::<Vec<_>>());
    let acked = acknowledged(&mut events).remove(&0).unwrap_or_default();
    assert_eq!(acked, stored, "every line is published once it is stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_result_writes_failing_for_a_while_are_retried() {
    let d = decorated_fixture(config()).await;
    let pids = tempfile::tempdir().unwrap();
    let (e, hosts) = execution(d.f.team, &numbered(pids.path(), 3, 1, "0"), &["a"], 30);
    d.f.create(&e, &hosts).await;
    // The first write is the host's start, the second its result: it fails three times.
    d.faults.fail_calls(StoreMethod::UpdateHostRuns, 2..=4);
    assert_eq!(d.f.run(e.id).await, ExecutionStatus::Success);
    assert_eq!(d.faults.injected_failures(), 3);
    assert_settled(&d.f, &e, pids.path()).await;
    let h = &d.f.hosts(e.id).await[0];
    assert_eq!((h.status, h.exit_code), (HostStatus::Success, Some(0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_results_the_store_never_took_are_written_with_the_final_status() {
    let d = decorated_fixture(config()).await;
    let pids = tempfile::tempdir().unwrap();
    let script = format!("{}; exit 3", numbered(pids.path(), 3, 1, "0"));
    let (e, hosts) = execution(d.f.team, &script, &["a", "b", "c"], 30);
    d.f.create(&e, &hosts).await;
    // No host start or result reaches the store during the run.
    d.faults.fail_calls(StoreMethod::UpdateHostRuns, 1..);
    assert_eq!(d.f.run(e.id).await, ExecutionStatus::Failed);
    assert!(d.faults.injected_failures() >= 5);
    let stored = assert_settled(&d.f, &e, pids.path()).await;
    assert_eq!(stored.counters.failed, 3);
    for h in d.f.hosts(e.id).await {
        assert_eq!((h.status, h.exit_code), (HostStatus::Failed, Some(3)));
    }
    assert_eq!(d.counts.calls(StoreMethod::UpdateHostRuns), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_final_status_write_failing_for_a_while_is_retried() {
    let d = decorated_fixture(config()).await;
    let pids = tempfile::tempdir().unwrap();
    let (e, hosts) = execution(d.f.team, &numbered(pids.path(), 3, 1, "0"), &["a"], 30);
    d.f.create(&e, &hosts).await;
    // The first move is pending -> running; the second, the final one, fails three times.
    d.faults.fail_calls(StoreMethod::Transition, 2..=4);
    assert_eq!(d.f.run(e.id).await, ExecutionStatus::Success);
    assert_eq!(d.faults.injected_failures(), 3);
    let stored = assert_settled(&d.f, &e, pids.path()).await;
    assert_eq!(stored.status, ExecutionStatus::Success);
    assert_eq!(d.counts.calls(StoreMethod::Transition), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_final_status_the_store_refuses_for_long_is_written_by_the_next_claim() {
    let config = EngineConfig {
        lease: Duration::from_secs(3),
        ..config()
    };
    let d = decorated_fixture(config).await;
    let pids = tempfile::tempdir().unwrap();
    let (e, hosts) = execution(d.f.team, &numbered(pids.path(), 3, 1, "0"), &["a"], 30);
    d.f.create(&e, &hosts).await;
    // Every final move fails until the fault is cleared; the start still works.
    d.faults.fail_calls(StoreMethod::Transition, 2..);
    let running = Running::start(&d.f.engine, None);
    // Enough failures for the run to have given up (after a third of the lease) at least
    // once and the next claim to have tried again.
    let mut waited = Duration::ZERO;
    while d.faults.injected_failures() < 8 {
        assert!(
            waited < Duration::from_secs(30),
            "the final move was not tried"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    assert_eq!(
        d.f.get(e.id).await.status,
        ExecutionStatus::Running,
        "a final status that could not be written is not claimed"
    );
    d.faults.clear();
    let stored = d.f.wait_final(e.id).await;
    running.stop().await;
    assert_eq!(stored.status, ExecutionStatus::Success);
    assert_settled(&d.f, &e, pids.path()).await;
    assert_eq!(stored_lines(&d.f, e.id, 0).await, [1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_mid_run_and_restored_before_its_end_loses_no_line() {
    let d = decorated_fixture(config()).await;
    let pids = tempfile::tempdir().unwrap();
    let (e, hosts) = execution(
        d.f.team,
        &numbered(pids.path(), 40, 1, "0.05"),
        &["a", "b"],
        30,
    );
    d.f.create(&e, &hosts).await;
    let mut events = d.f.bus.subscribe(e.id).await;
    let claimed = d.f.engine.claim().await.unwrap().pop().unwrap();
    // The host runs read, the move to running and the first host start go through; the
    // connection is lost at the next call, as the hosts start.
    d.faults.lose_connection_from_call(4);
    let engine = d.f.engine.clone();
    let run = tokio::spawn(async move { engine.run_claimed(claimed).await });
    let mut waited = Duration::ZERO;
    while !d.faults.is_connection_lost() {
        assert!(
            waited < Duration::from_secs(20),
            "the connection was never lost"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    d.faults.restore();
    let status = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(status, ExecutionStatus::Success);
    assert!(d.faults.injected_failures() > 0);
    assert_settled(&d.f, &e, pids.path()).await;
    let mut acked = acknowledged(&mut events);
    for host in 0..2 {
        let stored = stored_lines(&d.f, e.id, host).await;
        assert_eq!(stored, (1..=40).collect::<Vec<_>>(), "host {host}");
        assert_eq!(
            acked.remove(&host).unwrap_or_default(),
            stored,
            "every acknowledged line is stored, and only those"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_until_the_run_gave_up_is_finished_by_the_next_claim() {
    let config = EngineConfig {
        lease: Duration::from_secs(3),
        ..config()
    };
    let d = decorated_fixture(config).await;
    let pids = tempfile::tempdir().unwrap();
    let (e, hosts) = execution(d.f.team, &numbered(pids.path(), 10, 5, "0.2"), &["a"], 30);
    d.f.create(&e, &hosts).await;
    let claimed = d.f.engine.claim().await.unwrap().pop().unwrap();
    let engine = d.f.engine.clone();
    let run = tokio::spawn(async move { engine.run_claimed(claimed).await });
    d.f.wait_hosts_running(e.id, 1).await;
    d.faults.lose_connection();
    let result = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(result, Err(job::core::Error::Unavailable { .. })),
        "{result:?}"
    );
    assert_eq!(d.f.get(e.id).await.status, ExecutionStatus::Running);
    d.faults.restore();
    // The engine loop starts by releasing this node's leases (the run could not release
    // its own) and takes the run over. Its host result never reached the store and the
    // local transport cannot re-attach to a run, so the host is recorded as lost.
    let running = Running::start(&d.f.engine, None);
    let stored = d.f.wait_final(e.id).await;
    running.stop().await;
    assert_eq!(stored.status, ExecutionStatus::Failed);
    assert_settled(&d.f, &e, pids.path()).await;
    let host = &d.f.hosts(e.id).await[0];
    assert!(
        host.error
            .as_deref()
            .is_some_and(|e| e.starts_with("interrupted")),
        "{:?}",
        host.error
    );
    assert_in_order_once(&stored_lines(&d.f, e.id, 0).await, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_store_delays_the_run_but_stores_every_line_once() {
    let d = decorated_fixture(config()).await;
    let pids = tempfile::tempdir().unwrap();
    let (e, hosts) = execution(
        d.f.team,
        &numbered(pids.path(), 200, 25, "0.02"),
        &["a", "b", "c"],
        60,
    );
    d.f.create(&e, &hosts).await;
    let slow = Duration::from_millis(150);
    d.faults.delay_calls(StoreMethod::AppendOutput, 1.., slow);
    d.faults.delay_calls(StoreMethod::UpdateHostRuns, 1.., slow);
    d.faults.delay_calls(StoreMethod::Transition, 1.., slow);
    d.faults.delay_calls(StoreMethod::GetExecution, 1.., slow);
    assert_eq!(d.f.run(e.id).await, ExecutionStatus::Success);
    assert_eq!(d.faults.injected_failures(), 0);
    assert_settled(&d.f, &e, pids.path()).await;
    for host in 0..3 {
        assert_eq!(
            stored_lines(&d.f, e.id, host).await,
            (1..=200).collect::<Vec<_>>()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_appends_are_batched_and_a_run_moves_its_status_in_two_writes() {
    let d = decorated_fixture(config()).await;
    let pids = tempfile::tempdir().unwrap();
    let (e, hosts) = execution(
        d.f.team,
        &numbered(pids.path(), 2000, 2001, "0"),
        &["a"],
        30,
    );
    d.f.create(&e, &hosts).await;
    d.counts.reset();
    assert_eq!(d.f.run(e.id).await, ExecutionStatus::Success);
    assert_eq!(
        stored_lines(&d.f, e.id, 0).await,
        (1..=2000).collect::<Vec<_>>()
    );
    let appends = d.counts.calls(StoreMethod::AppendOutput);
    assert!(
        (1..200).contains(&appends),
        "2000 lines took {appends} appends"
    );
    // pending -> running, running -> success; nothing else moves the status.
    assert_eq!(d.counts.calls(StoreMethod::Transition), 2);
    // The host's start and its result, at most one write each.
    assert!(d.counts.calls(StoreMethod::UpdateHostRuns) <= 2);
    assert_settled(&d.f, &e, pids.path()).await;
}
