//! The engine end to end: a real SQLite store, real local processes.

mod fixture;
mod recovery;
mod rolling;
mod store_faults;
mod wake;

use std::time::Duration;

use chrono::Utc;
use job::core::bus::{EventBus, LiveEvent};
use job::core::engine::{EngineConfig, request_cancel};
use job::core::ids::{ExecutionId, TeamId};
use job::core::model::{Actor, OutboxKind, OutputStream};
use job::core::status::{ExecutionStatus, HostStatus};
use job::core::store::{HostRunUpdate, Lease, TeamScope, Transition};

use fixture::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_runs_on_every_host_and_its_output_is_stored_per_host() {
    let f = fixture().await;
    let (e, hosts) = execution(
        f.team,
        "echo \"hello $((6*7))\"; echo oops >&2",
        &["a", "b", "c"],
        30,
    );
    f.create(&e, &hosts).await;
    assert_eq!(f.run(e.id).await, ExecutionStatus::Success);
    let stored = f.store.get_execution(&TeamScope::All, e.id).await.unwrap();
    assert_eq!(stored.counters.success, 3);
    assert!(stored.started_at.is_some() && stored.finished_at.is_some());
    for h in f.hosts(e.id).await {
        assert_eq!((h.status, h.exit_code), (HostStatus::Success, Some(0)));
        assert_eq!(
            f.output(e.id, h.index, OutputStream::Stdout).await,
            "hello 42\n"
        );
        assert_eq!(
            f.output(e.id, h.index, OutputStream::Stderr).await,
            "oops\n"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_host_fails_alone_and_the_others_run() {
    let f = fixture().await;
    let (e, hosts) = execution(f.team, "echo up", &["a", "down", "c"], 30);
    f.create(&e, &hosts).await;
    assert_eq!(f.run(e.id).await, ExecutionStatus::Failed);
    let hosts = f.hosts(e.id).await;
    assert_eq!(hosts[0].status, HostStatus::Success);
    assert_eq!(hosts[2].status, HostStatus::Success);
    assert_eq!(hosts[1].status, HostStatus::Failed);
    let err = hosts[1].error.clone().unwrap();
    assert!(
        err.contains("unreachable") && err.contains("refused"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_zero_exit_fails_the_host_and_keeps_its_code() {
    let f = fixture().await;
    let (e, hosts) = execution(f.team, "exit 3", &["a"], 30);
    f.create(&e, &hosts).await;
    assert_eq!(f.run(e.id).await, ExecutionStatus::Failed);
    assert_eq!(f.hosts(e.id).await[0].exit_code, Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_past_its_timeout_is_killed_and_the_execution_times_out() {
    let f = fixture().await;
    let (e, hosts) = execution(f.team, "sleep 30", &["a", "b"], 1);
    f.create(&e, &hosts).await;
    let started = std::time::Instant::now();
    assert_eq!(f.run(e.id).await, ExecutionStatus::Timeout);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        f.hosts(e.id)
            .await
            .iter()
            .all(|h| h.status == HostStatus::Timeout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_while_running_kills_the_processes_and_ends_cancelled() {
    let f = fixture().await;
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "echo $$ > {}/pid-$RANDOM$RANDOM; sleep 300",
        dir.path().display()
    );
    let (e, hosts) = execution(f.team, &script, &["a", "b"], 600);
    f.create(&e, &hosts).await;
    let claimed = f.engine.claim().await.unwrap().pop().unwrap();
    let engine = f.engine.clone();
    let run = tokio::spawn(async move { engine.run_claimed(claimed).await });
    f.wait_hosts_running(e.id, 2).await;

    let now = Utc::now();
    let cancelling = request_cancel(&*f.store, &*f.bus, &Actor::scheduler(f.team), e.id, now)
        .await
        .unwrap();
    assert_eq!(cancelling.status, ExecutionStatus::Cancelling);
    // A second cancel is refused while the first converges.
    let again = request_cancel(&*f.store, &*f.bus, &Actor::scheduler(f.team), e.id, now).await;
    assert!(
        matches!(again, Err(job::core::Error::Conflict { .. })),
        "{again:?}"
    );

    let status = tokio::time::timeout(Duration::from_secs(15), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(status, ExecutionStatus::Cancelled);
    assert!(
        f.hosts(e.id)
            .await
            .iter()
            .all(|h| h.status == HostStatus::Cancelled)
    );
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let pid = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(
            !std::path::Path::new(&format!("/proc/{}", pid.trim())).exists(),
            "pid {pid} survived"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_on_pending_is_immediate_and_enqueues_the_callback() {
    let f = fixture().await;
    let (mut e, hosts) = execution(f.team, "echo never", &["a", "b"], 30);
    e.callback_url = Some("https://hooks.example.com/job".into());
    f.create(&e, &hosts).await;
    let done = request_cancel(
        &*f.store,
        &*f.bus,
        &Actor::scheduler(f.team),
        e.id,
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(done.status, ExecutionStatus::Cancelled);
    assert!(
        f.hosts(e.id)
            .await
            .iter()
            .all(|h| h.status == HostStatus::Cancelled)
    );
    let outbox = f
        .store
        .list_outbox_for_execution(&TeamScope::All, e.id)
        .await
        .unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].payload["status"], "cancelled");
    assert!(
        f.engine.claim().await.unwrap().is_empty(),
        "a cancelled execution was claimed"
    );
    let err = request_cancel(
        &*f.store,
        &*f.bus,
        &Actor::scheduler(f.team),
        e.id,
        Utc::now(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("cancelled"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_of_the_team_may_not_cancel_and_the_execution_stays_pending() {
    let f = fixture().await;
    let (e, hosts) = execution(f.team, "echo hi", &["a"], 30);
    f.create(&e, &hosts).await;
    let viewer = Actor {
        kind: job::core::model::ActorKind::Scheduler,
        is_admin: false,
        teams: std::collections::BTreeMap::from([(f.team, job::core::model::Role::Viewer)]),
    };
    let err = request_cancel(&*f.store, &*f.bus, &viewer, e.id, Utc::now())
        .await
        .unwrap_err();
    assert!(matches!(err, job::core::Error::Forbidden { .. }), "{err:?}");
    let stored = f.store.get_execution(&TeamScope::All, e.id).await.unwrap();
    assert_eq!(stored.status, ExecutionStatus::Pending);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_teams_execution_cannot_be_cancelled_and_looks_missing() {
    let f = fixture().await;
    let (e, hosts) = execution(f.team, "echo hi", &["a"], 30);
    f.create(&e, &hosts).await;
    let other = Actor::scheduler(TeamId::new());
    let err = request_cancel(&*f.store, &*f.bus, &other, e.id, Utc::now())
        .await
        .unwrap_err();
    assert!(matches!(err, job::core::Error::NotFound { .. }), "{err:?}");
    let missing = request_cancel(&*f.store, &*f.bus, &other, ExecutionId::new(), Utc::now())
        .await
        .unwrap_err();
    assert_eq!(err.code(), missing.code());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_final_execution_leaves_its_callback_in_the_outbox() {
    let f = fixture().await;
    let (mut e, hosts) = execution(f.team, "true", &["a"], 30);
    e.callback_url = Some("https://hooks.example.com/job".into());
    f.create(&e, &hosts).await;
    assert_eq!(f.run(e.id).await, ExecutionStatus::Success);
    let outbox = f
        .store
        .list_outbox_for_execution(&TeamScope::All, e.id)
        .await
        .unwrap();
    assert_eq!(outbox.len(), 1);
    assert!(
        matches!(&outbox[0].kind, OutboxKind::Callback { url } if url == "https://hooks.example.com/job")
    );
    assert_eq!(outbox[0].payload["status"], "success");
    assert_eq!(outbox[0].payload["counters"]["success"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_events_carry_the_stored_sequence_numbers() {
    let f = fixture().await;
    let (e, hosts) = execution(
        f.team,
        "for i in 1 2 3; do echo line $i; sleep 0.05; done",
        &["a"],
        30,
    );
    f.create(&e, &hosts).await;
    let mut rx = f.bus.subscribe(e.id).await;
    assert_eq!(f.run(e.id).await, ExecutionStatus::Success);
    let mut live = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        if let LiveEvent::Output(c) = ev {
            live.push((c.seq, c.data));
        }
    }
    let stored: Vec<_> = f
        .store
        .read_output(&TeamScope::All, e.id, Some(0), None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.seq, c.data))
        .collect();
    assert!(!live.is_empty());
    assert_eq!(live, stored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_output_is_capped_per_host_with_a_visible_marker() {
    let config = EngineConfig {
        output_cap_bytes: 1000,
        ..EngineConfig::default()
    };
    let f = fixture_with(config).await;
    let (e, hosts) = execution(f.team, "head -c 100000 /dev/zero | tr '\\0' x", &["a"], 30);
    f.create(&e, &hosts).await;
    assert_eq!(f.run(e.id).await, ExecutionStatus::Success);
    let chunks = f
        .store
        .read_output(&TeamScope::All, e.id, Some(0), None, 1000)
        .await
        .unwrap();
    let stdout: usize = chunks
        .iter()
        .filter(|c| c.stream == OutputStream::Stdout)
        .map(|c| c.data.len())
        .sum();
    assert!(stdout <= 1000, "{stdout} bytes stored");
    let system: String = chunks
        .iter()
        .filter(|c| c.stream == OutputStream::System)
        .map(|c| String::from_utf8_lossy(&c.data).into_owned())
        .collect();
    assert!(system.contains("truncated"), "{system}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_taken_over_from_a_dead_node_records_its_lost_hosts_honestly() {
    let f = fixture().await;
    let (e, hosts) = execution(f.team, "echo resumed", &["a", "b"], 30);
    f.create(&e, &hosts).await;
    // Node "dead" claims it, starts host 0, and vanishes; its lease runs out.
    let now = Utc::now();
    let lease = Lease {
        node: "dead".into(),
        now,
        until: now + chrono::Duration::milliseconds(50),
    };
    assert_eq!(f.store.claim_executions(&lease, 10).await.unwrap().len(), 1);
    f.store
        .transition(
            e.id,
            &Transition::new(ExecutionStatus::Pending, ExecutionStatus::Running, now),
        )
        .await
        .unwrap();
    f.store
        .update_host_runs(e.id, &[HostRunUpdate::started(0, now)])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let claimed = f
        .engine
        .claim()
        .await
        .unwrap()
        .pop()
        .expect("the expired lease is taken over");
    assert!(claimed.taken_over);
    assert_eq!(
        f.engine.run_claimed(claimed).await.unwrap(),
        ExecutionStatus::Failed
    );
    let hosts = f.hosts(e.id).await;
    assert_eq!(hosts[0].status, HostStatus::Failed);
    assert!(
        hosts[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("interrupted")
    );
    assert_eq!(hosts[1].status, HostStatus::Success);
    assert_eq!(f.output(e.id, 1, OutputStream::Stdout).await, "resumed\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_hosts_fan_out_without_a_thread_each() {
    let f = fixture().await;
    let names: Vec<String> = (0..200).map(|i| format!("h{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let (e, hosts) = execution(f.team, "echo ok", &refs, 60);
    f.create(&e, &hosts).await;
    assert_eq!(f.run(e.id).await, ExecutionStatus::Success);
    let stored = f.store.get_execution(&TeamScope::All, e.id).await.unwrap();
    assert_eq!(stored.counters.success, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_loop_claims_and_runs_until_shut_down() {
    let f = fixture().await;
    let (e, hosts) = execution(f.team, "echo looped", &["a"], 30);
    f.create(&e, &hosts).await;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let engine = f.engine.clone();
    let loop_task = tokio::spawn(async move {
        engine
            .run(async move {
                let _ = stop_rx.await;
            })
            .await;
    });
    let mut status = ExecutionStatus::Pending;
    for _ in 0..200 {
        status = f
            .store
            .get_execution(&TeamScope::All, e.id)
            .await
            .unwrap()
            .status;
        if status.is_final() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(status, ExecutionStatus::Success);
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), loop_task)
        .await
        .unwrap()
        .unwrap();
}
