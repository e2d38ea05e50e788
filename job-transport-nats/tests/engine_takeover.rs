//! Issue 6, crash case 3 through the engine: a control node that stops mid-run (no graceful
//! shutdown) and an engine that takes its execution over (the same node restarted, or
//! another node once the lease expired) re-follow the agent's run instead of failing it.
//! Real parts: a throwaway nats-server, an in-process agent, a SQLite store, the engine.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use job_core::bus::InProcessBus;
use job_core::clock::SystemClock;
use job_core::engine::{Engine, EngineConfig, HostConnector, request_cancel};
use job_core::ids::{ExecutionId, TargetId, TeamId};
use job_core::launch::{ScriptLaunch, launch_script};
use job_core::model::{
    Actor, Execution, Os, OutputStream, ScriptLanguage, Target, TargetMode, TargetSelector,
    TargetSnapshot, Team, TriggerSource,
};
use job_core::status::{ExecutionStatus, HostStatus};
use job_core::store::{Store, StoreExt, TeamScope};
use job_core::transport::{HostTarget, Transport, TransportError};
use job_core::values::{Address, Description, Name, ScriptContent, TimeoutSecs};
use job_store_sqlite::SqliteStore;
use job_transport_nats::NatsTransport;

/// Every host goes to the one agent, over NATS.
#[derive(Debug)]
struct AgentConnector {
    transport: Arc<dyn Transport>,
    target: HostTarget,
}

#[async_trait]
impl HostConnector for AgentConnector {
    async fn connect(
        &self,
        _execution: &Execution,
        _host: &TargetSnapshot,
    ) -> Result<(Arc<dyn Transport>, HostTarget), TransportError> {
        Ok((self.transport.clone(), self.target.clone()))
    }
}

struct Setup {
    rig: common::Rig,
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    bus: Arc<InProcessBus>,
    team: TeamId,
    target: TargetId,
}

async fn setup(agent_id: &str) -> Option<Setup> {
    let rig = common::Rig::start(agent_id).await?;
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
    let target = Target {
        id: TargetId::new(),
        team_id: team.id,
        name: Name::parse("name", "agent-box").unwrap(),
        address: Address::parse("address", "127.0.0.1").unwrap(),
        os: Os::Linux,
        tags: Vec::new(),
        mode: TargetMode::Agent {
            agent_id: Name::parse("agent_id", agent_id).unwrap(),
        },
        description: Description::default(),
        created_at: Utc::now(),
        updated_at: Utc::now(),
    };
    store.create_target(&target).await.unwrap();
    Some(Setup {
        rig,
        _dir: dir,
        store,
        bus: Arc::new(InProcessBus::default()),
        team: team.id,
        target: target.id,
    })
}

impl Setup {
    /// A running engine with node id `node` and lease `lease` on a fresh transport; the
    /// handle aborts it without any shutdown (a crash).
    async fn engine(&self, node: &str, lease: Duration) -> tokio::task::JoinHandle<()> {
        let transport: NatsTransport = common::transport(&self.rig.server.url()).await;
        let connector = AgentConnector {
            transport: Arc::new(transport),
            target: self.rig.target(),
        };
        let engine = Engine::new(
            self.store.clone(),
            Arc::new(connector),
            self.bus.clone(),
            Arc::new(SystemClock),
            EngineConfig {
                node_id: node.to_owned(),
                lease,
                claim_interval: Duration::from_millis(50),
                cancel_poll: Duration::from_millis(200),
                cancel_grace: Duration::from_secs(10),
                ..EngineConfig::default()
            },
        );
        tokio::spawn(async move { engine.run(std::future::pending()).await })
    }

    async fn launch(&self, script: &str) -> ExecutionId {
        let request = ScriptLaunch {
            team_id: self.team,
            name: Name::parse("name", "counting").unwrap(),
            language: ScriptLanguage::Bash,
            content: ScriptContent::parse("script_content", script).unwrap(),
            param_defs: Vec::new(),
            params: BTreeMap::new(),
            script_version_id: None,
            targets: TargetSelector {
                target_ids: vec![self.target],
                ..TargetSelector::default()
            },
            timeout: TimeoutSecs::new("timeout", 120).unwrap(),
            confirm: false,
            callback_url: None,
            trigger_source: TriggerSource::Api,
            cron_job_id: None,
            rolling: None,
        };
        let actor = Actor::scheduler(self.team);
        launch_script(
            self.store.as_ref(),
            self.bus.as_ref(),
            &actor,
            request,
            Utc::now(),
        )
        .await
        .unwrap()
        .id
    }

    async fn stdout(&self, id: ExecutionId) -> String {
        let chunks = self
            .store
            .read_output(&TeamScope::All, id, Some(0), None, 1000)
            .await
            .unwrap();
        let seqs: Vec<u64> = chunks.iter().map(|c| c.seq).collect();
        let want: Vec<u64> = (0..chunks.len() as u64).collect();
        assert_eq!(seqs, want, "stored output has gaps");
        chunks
            .iter()
            .filter(|c| c.stream == OutputStream::Stdout)
            .map(|c| String::from_utf8_lossy(&c.data).into_owned())
            .collect()
    }

    async fn wait_stored(&self, id: ExecutionId, line: &str) {
        let until = tokio::time::Instant::now() + Duration::from_secs(30);
        while !self.stdout(id).await.contains(line) {
            assert!(tokio::time::Instant::now() < until, "no output was stored");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_final(&self, id: ExecutionId) -> Execution {
        let until = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            let e = self.store.get_execution(&TeamScope::All, id).await.unwrap();
            if e.status.is_final() {
                return e;
            }
            assert!(tokio::time::Instant::now() < until, "not final: {e:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

const COUNTING: &str = "for i in $(seq 1 40); do echo line-$i; sleep 0.1; done";

fn expected() -> String {
    (1..=40).map(|i| format!("line-{i}\n")).collect()
}

/// A script that records its pid in the returned file, then prints a line every 100 ms
/// for a minute.
fn long_script(s: &Setup) -> (std::path::PathBuf, String) {
    let marker = s.rig.scratch.path().join("pid");
    let script = format!(
        "echo $$ > {}; for i in $(seq 1 600); do echo line-$i; sleep 0.1; done",
        marker.display()
    );
    (marker, script)
}

async fn cancel(s: &Setup, id: ExecutionId) {
    request_cancel(
        s.store.as_ref(),
        s.bus.as_ref(),
        &Actor::scheduler(s.team),
        id,
        Utc::now(),
    )
    .await
    .unwrap();
}

/// The process whose pid `marker` holds is gone (within five seconds).
fn assert_process_gone(marker: &std::path::Path) {
    let pid = std::fs::read_to_string(marker).unwrap();
    let gone = (0..50).any(|_| {
        let alive = std::path::Path::new(&format!("/proc/{}", pid.trim())).exists();
        if alive {
            std::thread::sleep(Duration::from_millis(100));
        }
        !alive
    });
    assert!(gone, "the script still runs on the agent");
}

async fn crash(engine: tokio::task::JoinHandle<()>) {
    engine.abort();
    let _ = engine.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_node_restarted_mid_run_re_follows_the_agent_run_and_stores_each_line_once() {
    let Some(s) = Box::pin(setup("takeover-same")).await else {
        return;
    };
    let a = s.engine("node-a", Duration::from_secs(30)).await;
    let id = s.launch(COUNTING).await;
    s.wait_stored(id, "line-5\n").await;
    crash(a).await;
    assert!(
        !s.stdout(id).await.contains("line-40"),
        "over before the crash"
    );

    let b = s.engine("node-a", Duration::from_secs(30)).await;
    let e = s.wait_final(id).await;
    assert_eq!(e.status, ExecutionStatus::Success, "{e:?}");
    let hosts = s.store.all_host_runs(&TeamScope::All, id).await.unwrap();
    assert_eq!(hosts[0].status, HostStatus::Success, "{hosts:?}");
    assert_eq!(hosts[0].exit_code, Some(0), "{hosts:?}");
    assert_eq!(s.stdout(id).await, expected());
    assert_eq!(hosts[0].stdout_bytes, expected().len() as u64);
    crash(b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_node_takes_over_after_the_lease_expires_and_the_run_completes() {
    let Some(s) = Box::pin(setup("takeover-other")).await else {
        return;
    };
    let lease = Duration::from_secs(2);
    let a = s.engine("node-a", lease).await;
    let id = s.launch(COUNTING).await;
    s.wait_stored(id, "line-3\n").await;
    crash(a).await;

    let b = s.engine("node-b", lease).await;
    let e = s.wait_final(id).await;
    assert_eq!(e.status, ExecutionStatus::Success, "{e:?}");
    assert_eq!(s.stdout(id).await, expected());
    crash(b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_can_be_cancelled_and_the_agent_process_goes() {
    let Some(s) = Box::pin(setup("takeover-cancel")).await else {
        return;
    };
    let (marker, script) = long_script(&s);
    let a = s.engine("node-a", Duration::from_secs(30)).await;
    let id = s.launch(&script).await;
    s.wait_stored(id, "line-3\n").await;
    crash(a).await;

    let b = s.engine("node-a", Duration::from_secs(30)).await;
    // Wait until B has taken the execution over, then cancel it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    cancel(&s, id).await;
    let e = s.wait_final(id).await;
    assert_eq!(e.status, ExecutionStatus::Cancelled, "{e:?}");
    assert_process_gone(&marker);
    crash(b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cancelled_while_no_node_ran_it_is_killed_on_the_agent_at_take_over() {
    let Some(s) = Box::pin(setup("takeover-cancelling")).await else {
        return;
    };
    let (marker, script) = long_script(&s);
    let a = s.engine("node-a", Duration::from_secs(30)).await;
    let id = s.launch(&script).await;
    s.wait_stored(id, "line-3\n").await;
    crash(a).await;
    // Cancelled while no engine runs it: it stays `cancelling` until one takes it over.
    cancel(&s, id).await;

    let b = s.engine("node-a", Duration::from_secs(30)).await;
    let e = s.wait_final(id).await;
    assert_eq!(e.status, ExecutionStatus::Cancelled, "{e:?}");
    assert_process_gone(&marker);
    let hosts = s.store.all_host_runs(&TeamScope::All, id).await.unwrap();
    assert_eq!(hosts[0].status, HostStatus::Cancelled, "{hosts:?}");
    crash(b).await;
}
