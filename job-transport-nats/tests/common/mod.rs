//! Shared by the tests: a throwaway nats-server, agents run in-process on their own
//! runtime (so a test can kill one the hard way), and a control-side transport.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use job_core::model::Os;
use job_core::transport::{HostAccess, HostTarget};
use job_testsupport::{NatsServer, require_service};
use job_transport_local::{LocalConfig, LocalTransport};
use job_transport_nats::agent::{self, AgentConfig};
use job_transport_nats::{NatsConfig, NatsTransport};

/// A fresh server, or `None` (with a notice) when none can run here outside CI. Logs go
/// to the test output when `RUST_LOG` asks for them.
pub fn server() -> Option<NatsServer> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    if !require_service("nats-server", NatsServer::available()) {
        return None;
    }
    Some(NatsServer::start().expect("start nats-server"))
}

/// An agent running `agent::run` on its own runtime: [`RunningAgent::kill`] drops that
/// runtime, which is what a crash looks like from outside (its connection drops, its
/// tasks' process groups are killed, nothing more is published).
pub struct RunningAgent {
    runtime: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::sync::oneshot::Receiver<Result<(), job_core::Error>>>,
}

impl RunningAgent {
    pub fn start(url: &str, id: &str, work_dir: &Path) -> Self {
        let runner = Arc::new(LocalTransport::with_config(
            LocalConfig::default().with_kill_grace(Duration::from_secs(2)),
        ));
        let config = AgentConfig::new(url, id, work_dir, runner)
            .expect("agent config")
            .with_heartbeat(Duration::from_millis(200));
        Self::start_with(config)
    }

    pub fn start_with(config: AgentConfig) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("agent runtime");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        runtime.spawn(async move {
            let result = agent::run(config, async {
                let _ = stop_rx.await;
            })
            .await;
            let _ = done_tx.send(result);
        });
        Self {
            runtime: Some(runtime),
            stop: Some(stop_tx),
            done: Some(done_rx),
        }
    }

    /// Stops it cleanly and waits until `agent::run` returned.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            let result = tokio::time::timeout(Duration::from_secs(30), done)
                .await
                .expect("the agent stops within 30 s")
                .expect("the agent task ended");
            result.expect("agent::run ends without error");
        }
    }

    /// Kills it: its runtime is dropped with everything on it.
    pub fn kill(mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

pub fn config(url: &str) -> NatsConfig {
    NatsConfig::new(url).with_offline_after(Duration::from_secs(3))
}

pub async fn transport(url: &str) -> NatsTransport {
    NatsTransport::connect(config(url))
        .await
        .expect("connect the control side")
}

pub fn target(agent_id: &str) -> HostTarget {
    HostTarget {
        name: format!("agent-{agent_id}"),
        os: Os::Linux,
        access: HostAccess::Agent {
            agent_id: agent_id.to_owned(),
        },
    }
}

/// Waits (polling, with a deadline) until the agent is registered and online.
pub async fn wait_online(t: &NatsTransport, agent_id: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = t.agent_status(agent_id).await
            && status.online
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "agent {agent_id} did not come online"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A server, a started agent `id` with its work dir, and a connected transport.
pub struct Rig {
    pub server: NatsServer,
    pub agent: Option<RunningAgent>,
    pub transport: NatsTransport,
    pub work: tempfile::TempDir,
    pub scratch: tempfile::TempDir,
    pub agent_id: String,
}

impl Rig {
    pub async fn start(agent_id: &str) -> Option<Self> {
        let server = server()?;
        let work = tempfile::tempdir().expect("work dir");
        let scratch = tempfile::tempdir().expect("scratch dir");
        let agent = RunningAgent::start(&server.url(), agent_id, work.path());
        let transport = transport(&server.url()).await;
        wait_online(&transport, agent_id).await;
        Some(Self {
            server,
            agent: Some(agent),
            transport,
            work,
            scratch,
            agent_id: agent_id.to_owned(),
        })
    }

    pub fn target(&self) -> HostTarget {
        target(&self.agent_id)
    }

    pub fn work_dir(&self) -> PathBuf {
        self.work.path().to_path_buf()
    }

    pub fn scratch_dir(&self) -> String {
        self.scratch.path().to_string_lossy().into_owned()
    }
}
