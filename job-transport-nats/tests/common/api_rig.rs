//! The open-interface test rig: a real nats-server, a SQLite store in a temporary
//! directory with two teams (`ops` and `web`) each owning one local target, a running
//! engine with the control node's local transport, the API, and a client to call it.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use job_core::bus::InProcessBus;
use job_core::callback::{CallbackAllow, CallbackGuard};
use job_core::clock::SystemClock;
use job_core::engine::{Engine, EngineConfig, LocalConnector};
use job_core::ids::{TargetId, TeamId};
use job_core::model::{Os, Target, TargetMode, Team};
use job_core::store::{ExecutionFilter, PageRequest, Store, TeamScope};
use job_core::testkit::FixedResolver;
use job_core::transport::Transport;
use job_core::values::{Address, Description, Name};
use job_store_sqlite::SqliteStore;
use job_testsupport::NatsServer;
use job_transport_local::LocalTransport;
use job_transport_nats::Namespace;
use job_transport_nats::api::ApiServer;
use serde_json::{Value, json};
use tokio::sync::watch;

/// A server, a store with two teams (`ops` and `web`) each owning one local target, a
/// running engine and the API, and a client to call it.
pub(crate) struct Rig {
    pub(crate) server: NatsServer,
    _dir: tempfile::TempDir,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) client: async_nats::Client,
    pub(crate) web: Team,
    pub(crate) ops_target: TargetId,
    pub(crate) web_target: TargetId,
    pub(crate) stop: watch::Sender<bool>,
}

fn team(name: &str) -> Team {
    Team {
        id: TeamId::new(),
        name: Name::parse("name", name).unwrap(),
        description: Description::default(),
        created_at: Utc::now(),
    }
}

fn local_target(team: TeamId, name: &str) -> Target {
    Target {
        id: TargetId::new(),
        team_id: team,
        name: Name::parse("name", name).unwrap(),
        address: Address::parse("address", "127.0.0.1").unwrap(),
        os: Os::Linux,
        tags: Vec::new(),
        mode: TargetMode::Local,
        description: Description::default(),
        created_at: Utc::now(),
        updated_at: Utc::now(),
    }
}

impl Rig {
    pub(crate) async fn start() -> Option<Self> {
        let server = crate::common::server()?;
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(dir.path().join("job.db")).await.unwrap());
        let (ops, web) = (team("ops"), team("web"));
        store.create_team(&ops).await.unwrap();
        store.create_team(&web).await.unwrap();
        let (ops_target, web_target) = (
            local_target(ops.id, "control-node"),
            local_target(web.id, "web-control-node"),
        );
        store.create_target(&ops_target).await.unwrap();
        store.create_target(&web_target).await.unwrap();

        let bus = Arc::new(InProcessBus::default());
        let local: Arc<dyn Transport> = Arc::new(LocalTransport::new());
        let engine = Engine::new(
            store.clone(),
            Arc::new(LocalConnector::new(local)),
            bus.clone(),
            Arc::new(SystemClock),
            EngineConfig {
                claim_interval: Duration::from_millis(50),
                cancel_grace: Duration::from_secs(10),
                ..EngineConfig::default()
            },
        );
        let (stop, stopped) = watch::channel(false);
        let mut engine_stop = stopped.clone();
        tokio::spawn(async move {
            engine
                .run(async move {
                    let _ = engine_stop.wait_for(|v| *v).await;
                })
                .await;
        });

        let client = async_nats::connect(server.url()).await.unwrap();
        let api = ApiServer::bind(
            client.clone(),
            Namespace::default(),
            store.clone(),
            bus,
            Arc::new(SystemClock),
            callback_guard(),
        )
        .await
        .unwrap();
        let mut api_stop = stopped;
        tokio::spawn(api.run(async move {
            let _ = api_stop.wait_for(|v| *v).await;
        }));
        Some(Self {
            server,
            _dir: dir,
            store,
            client,
            web,
            ops_target: ops_target.id,
            web_target: web_target.id,
            stop,
        })
    }

    pub(crate) async fn call_raw(&self, method: &str, payload: Vec<u8>) -> Value {
        let reply = self
            .client
            .request(format!("jobd.{method}"), payload.into())
            .await
            .unwrap();
        serde_json::from_slice(&reply.payload).unwrap()
    }

    pub(crate) async fn call(&self, method: &str, body: Value) -> Value {
        self.call_raw(method, serde_json::to_vec(&body).unwrap())
            .await
    }

    /// Launches `script` on the ops target and returns the task id.
    pub(crate) async fn execute(&self, script: &str) -> String {
        let reply = self
            .call(
                "job_script_execute",
                json!({
                    "team": "ops",
                    "script_type": 1,
                    "script_content": script,
                    "targets": {"target_ids": [self.ops_target]},
                }),
            )
            .await;
        assert_eq!(reply["result"], true, "{reply}");
        reply["data"]["task_id"].as_str().unwrap().to_owned()
    }

    /// The web team's task: a run on its own target.
    pub(crate) async fn web_task(&self) -> String {
        let reply = self
            .call(
                "job_script_execute",
                json!({
                    "team_id": self.web.id,
                    "script_type": "shell",
                    "script_content": "echo web",
                    "targets": {"target_ids": [self.web_target]},
                }),
            )
            .await;
        assert_eq!(reply["result"], true, "{reply}");
        reply["data"]["task_id"].as_str().unwrap().to_owned()
    }

    /// Polls `job_detail_query` until the task's status is one of `statuses`.
    pub(crate) async fn wait_for_status(&self, task_id: &str, statuses: &[&str]) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let reply = self
                .call(
                    "job_detail_query",
                    json!({"team": "ops", "task_id": task_id, "with_output": true}),
                )
                .await;
            assert_eq!(reply["result"], true, "{reply}");
            let status = reply["data"]["status"].as_str().unwrap().to_owned();
            if statuses.contains(&status.as_str()) {
                return reply["data"].clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "task {task_id} stayed `{status}`, never reached {statuses:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn execution_count(&self) -> usize {
        self.store
            .list_executions(
                &TeamScope::All,
                &ExecutionFilter::default(),
                PageRequest::first(1000),
            )
            .await
            .unwrap()
            .items
            .len()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// The callback guard of the rig: no allow-list, and a fixed resolver that knows
/// `hooks.example.com` (public) and `internal.example.com` (private).
pub(crate) fn callback_guard() -> CallbackGuard {
    let resolver = FixedResolver::new([
        ("hooks.example.com", &["93.184.216.34"][..]),
        ("internal.example.com", &["10.0.0.7"][..]),
    ]);
    CallbackGuard::new(CallbackAllow::default(), Arc::new(resolver))
}

/// A reply's message with `id` replaced, so two refusals can be compared.
pub(crate) fn message_without(reply: &Value, id: &str) -> String {
    reply["message"].as_str().unwrap().replace(id, "<id>")
}
