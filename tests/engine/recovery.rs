//! A node that shuts down (graceful interruption) and a node that restarts under its own id
//! after a crash (own-node recovery).

use std::time::Duration;

use chrono::Utc;
use job::core::engine::EngineConfig;
use job::core::model::{OutboxKind, Rolling};
use job::core::status::{ExecutionStatus, HostStatus};
use job::core::store::{HostRunUpdate, Lease, TeamScope, Transition};

use crate::fixture::*;

const INTERRUPTED: &str = "interrupted: the control node shut down";

/// Whether process `pid` still exists.
fn alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_interrupts_what_outlives_the_grace_period() {
    let f = fixture().await;
    let pids = tempfile::tempdir().unwrap();
    let script = format!(
        "f=$(mktemp -p '{}'); echo $$ > \"$f\"; mv \"$f\" \"$f.pid\"; exec sleep 300",
        pids.path().display()
    );
    // Two hosts run, the third waits for the next batch.
    let (mut e, hosts) = execution(f.team, &script, &["a", "b", "c"], 600);
    e.rolling = Some(Rolling::parse("2", "continue").unwrap());
    e.callback_url = Some("https://hooks.example.com/job".into());
    f.create(&e, &hosts).await;

    let running = Running::start(&f.engine, Some(Duration::from_secs(1)));
    f.wait_hosts_running(e.id, 2).await;
    // A pid file appears whole (written, then renamed), once the script has started.
    let pid_files = || {
        std::fs::read_dir(pids.path())
            .unwrap()
            .map(|p| p.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "pid"))
            .collect::<Vec<_>>()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while pid_files().len() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started: Vec<i32> = pid_files()
        .into_iter()
        .map(|p| std::fs::read_to_string(p).unwrap().trim().parse().unwrap())
        .collect();
    assert_eq!(started.len(), 2, "both processes wrote their pid");
    assert!(started.iter().all(|p| alive(*p)));

    running.stop().await;

    let stored = f.get(e.id).await;
    assert_eq!(stored.status, ExecutionStatus::Failed);
    assert_eq!(stored.counters.failed, 3);
    for h in f.hosts(e.id).await {
        assert_eq!(h.status, HostStatus::Failed, "host {}", h.index);
        assert_eq!(h.error.as_deref(), Some(INTERRUPTED), "host {}", h.index);
    }
    assert!(f.hosts(e.id).await[2].started_at.is_none());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while started.iter().any(|p| alive(*p)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the interrupted processes were killed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let outbox = f
        .store
        .list_outbox_for_execution(&TeamScope::All, e.id)
        .await
        .unwrap();
    assert_eq!(outbox.len(), 1);
    assert!(matches!(&outbox[0].kind, OutboxKind::Callback { .. }));
    assert_eq!(outbox[0].payload["status"], "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_shorter_than_the_grace_period_finishes_normally() {
    let f = fixture().await;
    let (e, hosts) = execution(f.team, "sleep 1; echo slept", &["a"], 30);
    f.create(&e, &hosts).await;
    let running = Running::start(&f.engine, Some(Duration::from_secs(5)));
    f.wait_hosts_running(e.id, 1).await;
    running.stop().await;
    let stored = f.get(e.id).await;
    assert_eq!(stored.status, ExecutionStatus::Success);
    assert_eq!(
        f.output(e.id, 0, job::core::model::OutputStream::Stdout)
            .await,
        "slept\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarting_under_its_id_takes_its_executions_over_at_once() {
    let f = fixture_with(EngineConfig {
        node_id: "n1".into(),
        ..EngineConfig::default()
    })
    .await;
    let (e, hosts) = execution(f.team, "echo recovered", &["a", "b"], 30);
    f.create(&e, &hosts).await;
    // The previous process of node "n1" claimed it with a long lease, started host 0 and
    // was killed.
    let now = Utc::now();
    let lease = Lease {
        node: "n1".into(),
        now,
        until: now + chrono::Duration::minutes(10),
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

    // The lease runs ten more minutes; the restarted node does not wait for it.
    let running = Running::start(&f.engine, None);
    let done = f.wait_final(e.id).await;
    assert_eq!(done.status, ExecutionStatus::Failed);
    let hosts = f.hosts(e.id).await;
    assert_eq!(hosts[0].status, HostStatus::Failed);
    assert!(
        hosts[0]
            .error
            .as_deref()
            .unwrap_or_default()
            .starts_with("interrupted:"),
        "{:?}",
        hosts[0].error
    );
    assert_eq!(hosts[1].status, HostStatus::Success);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_nodes_unexpired_lease_is_not_taken_on_start() {
    let f = fixture_with(EngineConfig {
        node_id: "n2".into(),
        ..EngineConfig::default()
    })
    .await;
    let (e, hosts) = execution(f.team, "echo mine", &["a"], 30);
    f.create(&e, &hosts).await;
    let now = Utc::now();
    let lease = Lease {
        node: "n1".into(),
        now,
        until: now + chrono::Duration::minutes(10),
    };
    assert_eq!(f.store.claim_executions(&lease, 10).await.unwrap().len(), 1);
    assert_eq!(f.engine.recover_own_executions().await.unwrap(), 0);
    assert!(
        f.engine.claim().await.unwrap().is_empty(),
        "n1's lease still holds"
    );
    assert_eq!(f.get(e.id).await.status, ExecutionStatus::Pending);
}
