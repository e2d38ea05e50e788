//! Wake on launch across nodes: two control nodes share one database and one NATS server;
//! a launch through node A's open interface wakes node B's engine through the NATS bus.
//! B polls once an hour, so only the signal can start the run.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use job_core::bus::EventBus;
use job_core::callback::{CallbackAllow, CallbackGuard};
use job_core::clock::SystemClock;
use job_core::engine::{Engine, EngineConfig, LocalConnector};
use job_core::ids::{ExecutionId, TargetId, TeamId};
use job_core::model::{
    ActorKind, Execution, ExecutorSnapshot, HostRun, JobType, Os, ScriptLanguage, Target,
    TargetMode, TargetSnapshot, TaskSnapshot, Team, TriggerSource,
};
use job_core::status::{ExecutionStatus, HostCounters, HostStatus};
use job_core::store::{Store, TeamScope};
use job_core::testkit::FixedResolver;
use job_core::transport::Transport;
use job_core::values::{Address, Description, Name, TimeoutSecs};
use job_store_sqlite::SqliteStore;
use job_transport_local::LocalTransport;
use job_transport_nats::api::ApiServer;
use job_transport_nats::{Namespace, NatsEventBus, async_nats};
use serde_json::json;
use tokio::sync::watch;

fn local_target(team: TeamId) -> Target {
    Target {
        id: TargetId::new(),
        team_id: team,
        name: Name::parse("name", "control-node").unwrap(),
        address: Address::parse("address", "127.0.0.1").unwrap(),
        os: Os::Linux,
        tags: Vec::new(),
        mode: TargetMode::Local,
        description: Description::default(),
        created_at: Utc::now(),
        updated_at: Utc::now(),
    }
}

/// A pending execution of `script` on `target`, stored directly (no launch, no signal).
fn pending(team: TeamId, target: &Target, script: &str) -> (Execution, Vec<HostRun>) {
    let id = ExecutionId::new();
    let execution = Execution {
        id,
        team_id: team,
        name: Name::parse("name", "stored").unwrap(),
        job_type: JobType::Script,
        trigger_source: TriggerSource::Api,
        executor: ExecutorSnapshot {
            actor: ActorKind::Scheduler,
            label: "test".into(),
        },
        task: TaskSnapshot::Script {
            language: ScriptLanguage::Shell,
            rendered: script.into(),
            script_version_id: None,
            params: Default::default(),
        },
        timeout: TimeoutSecs::new("timeout", 30).unwrap(),
        status: ExecutionStatus::Pending,
        counters: HostCounters::all_pending(1),
        callback_url: None,
        re_executed_from: None,
        cron_job_id: None,
        confirmation: None,
        created_at: Utc::now(),
        started_at: None,
        finished_at: None,
        cancel_requested_at: None,
        rolling: None,
        paused_at: None,
    };
    let host = HostRun {
        execution_id: id,
        index: 0,
        target: TargetSnapshot {
            target_id: target.id,
            name: target.name.clone(),
            address: target.address.clone(),
            os: Os::Linux,
            mode: "local".into(),
        },
        status: HostStatus::Pending,
        exit_code: None,
        error: None,
        started_at: None,
        finished_at: None,
        stdout_bytes: 0,
        stderr_bytes: 0,
        output_truncated: false,
    };
    (execution, vec![host])
}

async fn status(store: &dyn Store, id: ExecutionId) -> ExecutionStatus {
    store
        .get_execution(&TeamScope::All, id)
        .await
        .unwrap()
        .status
}

/// Polls until the execution is final (panics after 30 s); returns its status.
async fn wait_final(store: &dyn Store, id: ExecutionId) -> ExecutionStatus {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s = status(store, id).await;
        if s.is_final() {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "execution {id} is still `{s}`: its engine was not woken"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_on_one_node_wakes_the_engine_of_another_through_nats() {
    let Some(server) = common::server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path().join("job.db")).await.unwrap());
    let team = Team {
        id: TeamId::new(),
        name: Name::parse("name", "ops").unwrap(),
        description: Description::default(),
        created_at: Utc::now(),
    };
    store.create_team(&team).await.unwrap();
    let target = local_target(team.id);
    store.create_target(&target).await.unwrap();
    let (stop, stopped) = watch::channel(false);
    let until_stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };

    // Node B: an engine that polls once an hour, on its own NATS connection.
    let bus_b = NatsEventBus::new(
        async_nats::connect(server.url()).await.unwrap(),
        Namespace::default(),
    );
    let local: Arc<dyn Transport> = Arc::new(LocalTransport::new());
    let engine_b = Engine::new(
        store.clone(),
        Arc::new(LocalConnector::new(local)),
        Arc::new(bus_b),
        Arc::new(SystemClock),
        EngineConfig {
            node_id: "node-b".into(),
            claim_interval: Duration::from_secs(3600),
            ..EngineConfig::default()
        },
    );
    // Its first claim takes what is stored before it starts; once that has run, B has
    // claimed once and listens.
    let (first, hosts) = pending(team.id, &target, "true");
    store.create_execution(&first, &hosts).await.unwrap();
    let engine_task = tokio::spawn({
        let stopped = stopped.clone();
        async move { engine_b.run(until_stopped(stopped)).await }
    });
    assert_eq!(
        wait_final(store.as_ref(), first.id).await,
        ExecutionStatus::Success
    );

    // Stored without a signal, an execution waits for B's hourly poll.
    let (unsignalled, hosts) = pending(team.id, &target, "echo late");
    store.create_execution(&unsignalled, &hosts).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        status(store.as_ref(), unsignalled.id).await,
        ExecutionStatus::Pending
    );

    // Node A: no engine, only the open interfaces, on another connection and its own bus.
    let client_a = async_nats::connect(server.url()).await.unwrap();
    let bus_a: Arc<dyn EventBus> =
        Arc::new(NatsEventBus::new(client_a.clone(), Namespace::default()));
    let api_a = ApiServer::bind(
        client_a,
        Namespace::default(),
        store.clone(),
        bus_a,
        Arc::new(SystemClock),
        CallbackGuard::new(
            CallbackAllow::default(),
            Arc::new(FixedResolver::new(Vec::<(&str, &[&str])>::new())),
        ),
    )
    .await
    .unwrap();
    let api_task = tokio::spawn(api_a.run(until_stopped(stopped.clone())));

    let caller = async_nats::connect(server.url()).await.unwrap();
    let reply = caller
        .request(
            "jobd.job_script_execute",
            serde_json::to_vec(&json!({
                "team": "ops",
                "script_type": "shell",
                "script_content": "echo woken",
                "targets": {"target_ids": [target.id]},
            }))
            .unwrap()
            .into(),
        )
        .await
        .unwrap();
    let reply: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(reply["result"], true, "{reply}");
    let launched =
        ExecutionId::parse_field("task_id", reply["data"]["task_id"].as_str().unwrap()).unwrap();

    assert_eq!(
        wait_final(store.as_ref(), launched).await,
        ExecutionStatus::Success
    );
    let output = store
        .read_output(&TeamScope::All, launched, Some(0), None, 100)
        .await
        .unwrap();
    let stdout: Vec<u8> = output.into_iter().flat_map(|c| c.data).collect();
    assert_eq!(String::from_utf8_lossy(&stdout), "woken\n");
    // B's claim took what else was pending too.
    assert_eq!(
        wait_final(store.as_ref(), unsignalled.id).await,
        ExecutionStatus::Success
    );

    stop.send(true).unwrap();
    engine_task.await.unwrap();
    api_task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_signal_reaches_every_node_of_the_namespace_and_its_sender_once() {
    let Some(server) = common::server() else {
        return;
    };
    let connect = || async {
        NatsEventBus::new(
            async_nats::connect(server.url()).await.unwrap(),
            Namespace::default(),
        )
    };
    let (a, b) = (connect().await, connect().await);
    let other_namespace = NatsEventBus::new(
        async_nats::connect(server.url()).await.unwrap(),
        Namespace::parse("namespace", "elsewhere").unwrap(),
    );
    let mut on_a = a.pending_notifications().await;
    let mut on_b = b.pending_notifications().await;
    let mut elsewhere = other_namespace.pending_notifications().await;

    a.notify_pending().await;
    for (node, listener) in [("a", &mut on_a), ("b", &mut on_b)] {
        tokio::time::timeout(Duration::from_secs(10), listener.next())
            .await
            .unwrap_or_else(|_| panic!("node {node} hears the signal"));
    }
    // Node A heard its own signal once, in process: its echo over NATS is ignored.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), on_a.next())
            .await
            .is_err(),
        "a node's own signal coming back over NATS does not wake it twice"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(100), elsewhere.next())
            .await
            .is_err(),
        "another installation's namespace is not woken"
    );
}
