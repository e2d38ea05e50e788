//! The test fixture: a real SQLite store in a temporary directory, an in-process bus and an
//! engine running hosts as local processes.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use job::core::bus::InProcessBus;
use job::core::clock::SystemClock;
use job::core::engine::{Engine, EngineConfig, HostConnector, LocalConnector};
use job::core::ids::{ExecutionId, TargetId, TeamId};
use job::core::model::{
    ActorKind, Execution, ExecutorSnapshot, HostRun, JobType, Os, OutputStream, ScriptLanguage,
    TargetSnapshot, TaskSnapshot, Team, TriggerSource,
};
use job::core::status::{ExecutionStatus, HostCounters, HostStatus};
use job::core::store::{PageRequest, Store, TeamScope};
use job::core::testkit::{CountingStore, FaultyStore};
use job::core::transport::{HostTarget, Transport, TransportError};
use job::core::values::{Address, Description, Name, TimeoutSecs};
use job::store_sqlite::SqliteStore;
use job::transport_local::LocalTransport;

pub(crate) struct Fixture {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) bus: Arc<InProcessBus>,
    pub(crate) engine: Engine,
    pub(crate) team: TeamId,
}

/// Fails hosts named `down` as unreachable; runs the others locally.
#[derive(Debug)]
pub(crate) struct FlakyConnector(pub(crate) LocalConnector);

#[async_trait]
impl HostConnector for FlakyConnector {
    async fn connect(
        &self,
        execution: &Execution,
        host: &TargetSnapshot,
    ) -> Result<(Arc<dyn Transport>, HostTarget), TransportError> {
        if host.name.as_str() == "down" {
            return Err(TransportError::unreachable(
                "connection refused",
                std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
            ));
        }
        self.0.connect(execution, host).await
    }
}

pub(crate) async fn fixture_with(config: EngineConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path().join("job.db")).await.unwrap());
    fixture_over(dir, store.clone(), store, config).await
}

/// A fixture whose engine reaches the store through the decorators: a [`FaultyStore`] over
/// a [`CountingStore`] over SQLite. `Fixture::store` stays the bare store, so the test's own
/// reads neither fail nor count.
pub(crate) struct Decorated {
    pub(crate) f: Fixture,
    /// Programs the faults the engine meets.
    pub(crate) faults: Arc<FaultyStore>,
    /// Counts the engine's calls that reached the database.
    pub(crate) counts: Arc<CountingStore>,
}

pub(crate) async fn decorated_fixture(config: EngineConfig) -> Decorated {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path().join("job.db")).await.unwrap());
    let counts = Arc::new(CountingStore::new(store.clone()));
    let faults = Arc::new(FaultyStore::new(counts.clone() as Arc<dyn Store>));
    let f = fixture_over(dir, store, faults.clone(), config).await;
    Decorated { f, faults, counts }
}

/// Builds the fixture: the test reads through `store`, the engine works through `engine_store`.
async fn fixture_over(
    dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    engine_store: Arc<dyn Store>,
    config: EngineConfig,
) -> Fixture {
    let team = Team {
        id: TeamId::new(),
        name: Name::parse("name", "ops").unwrap(),
        description: Description::default(),
        created_at: Utc::now(),
    };
    store.create_team(&team).await.unwrap();
    let bus = Arc::new(InProcessBus::default());
    let local: Arc<dyn Transport> = Arc::new(LocalTransport::new());
    let engine = Engine::new(
        engine_store,
        Arc::new(FlakyConnector(LocalConnector::new(local))),
        bus.clone(),
        Arc::new(SystemClock),
        config,
    );
    Fixture {
        _dir: dir,
        store,
        bus,
        engine,
        team: team.id,
    }
}

pub(crate) async fn fixture() -> Fixture {
    let config = EngineConfig {
        cancel_grace: Duration::from_secs(10),
        ..EngineConfig::default()
    };
    fixture_with(config).await
}

pub(crate) fn execution(
    team: TeamId,
    script: &str,
    hosts: &[&str],
    timeout: i64,
) -> (Execution, Vec<HostRun>) {
    let id = ExecutionId::new();
    let e = Execution {
        id,
        team_id: team,
        name: Name::parse("name", "quick run").unwrap(),
        job_type: JobType::Script,
        trigger_source: TriggerSource::Manual,
        executor: ExecutorSnapshot {
            actor: ActorKind::Scheduler,
            label: "test".into(),
        },
        task: TaskSnapshot::Script {
            language: ScriptLanguage::Bash,
            rendered: script.into(),
            script_version_id: None,
            params: Default::default(),
        },
        timeout: TimeoutSecs::new("timeout", timeout).unwrap(),
        status: ExecutionStatus::Pending,
        counters: HostCounters::all_pending(hosts.len() as u32),
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
    let runs = hosts
        .iter()
        .enumerate()
        .map(|(i, name)| HostRun {
            execution_id: id,
            index: i as u32,
            target: TargetSnapshot {
                target_id: TargetId::new(),
                name: Name::parse("name", name).unwrap(),
                address: Address::parse("address", "127.0.0.1").unwrap(),
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
        })
        .collect();
    (e, runs)
}

impl Fixture {
    pub(crate) async fn create(&self, e: &Execution, hosts: &[HostRun]) {
        self.store.create_execution(e, hosts).await.unwrap();
    }

    /// Claims everything pending and runs the execution `id` to its end.
    pub(crate) async fn run(&self, id: ExecutionId) -> ExecutionStatus {
        let claimed = self.engine.claim().await.unwrap();
        let c = claimed
            .into_iter()
            .find(|c| c.execution.id == id)
            .expect("claimed");
        self.engine.run_claimed(c).await.unwrap()
    }

    pub(crate) async fn hosts(&self, id: ExecutionId) -> Vec<HostRun> {
        self.store
            .list_host_runs(&TeamScope::All, id, None, PageRequest::first(1000))
            .await
            .unwrap()
            .items
    }

    pub(crate) async fn output(&self, id: ExecutionId, host: u32, stream: OutputStream) -> String {
        let chunks = self
            .store
            .read_output(&TeamScope::All, id, Some(host), None, 1000)
            .await
            .unwrap();
        let bytes: Vec<u8> = chunks
            .into_iter()
            .filter(|c| c.stream == stream)
            .flat_map(|c| c.data)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    pub(crate) async fn wait_hosts_running(&self, id: ExecutionId, n: usize) {
        for _ in 0..200 {
            let running = self
                .hosts(id)
                .await
                .iter()
                .filter(|h| h.status == HostStatus::Running)
                .count();
            if running == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("hosts did not start");
    }
}

/// An engine loop running in the background until it is stopped.
pub(crate) struct Running {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Starts `engine.run_with_grace` (or `engine.run` without a grace period).
    pub(crate) fn start(engine: &Engine, grace: Option<Duration>) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let engine = engine.clone();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            match grace {
                Some(grace) => engine.run_with_grace(shutdown, grace).await,
                None => engine.run(shutdown).await,
            }
        });
        Self {
            stop: Some(stop),
            task,
        }
    }

    /// Signals the shutdown and waits (at most a minute) for the loop to return.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(60), &mut self.task)
            .await
            .expect("the engine loop returns")
            .expect("the engine loop does not panic");
    }
}

impl Fixture {
    /// The execution as stored.
    pub(crate) async fn get(&self, id: ExecutionId) -> Execution {
        self.store.get_execution(&TeamScope::All, id).await.unwrap()
    }

    /// Polls the stored execution until `done` holds (panics after 30 s).
    pub(crate) async fn wait_for(
        &self,
        id: ExecutionId,
        what: &str,
        done: impl Fn(&Execution) -> bool,
    ) -> Execution {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let e = self.get(id).await;
            if done(&e) {
                return e;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: still {:?} (paused at {:?})",
                e.status,
                e.paused_at
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls until the execution is final; returns it.
    pub(crate) async fn wait_final(&self, id: ExecutionId) -> Execution {
        self.wait_for(id, "the execution ends", |e| e.status.is_final())
            .await
    }
}
