//! The resident agent (`jobd agent`): runs tasks and file transfers for the control nodes
//! on its own host.
//!
//! [`run`] connects to NATS (retrying until it can, reconnecting forever), registers in
//! the agents bucket and rewrites its record every [`AgentConfig::heartbeat`], takes its
//! tasks from the tasks stream through a durable consumer, runs each with its
//! [`AgentConfig::runner`] — `job_transport_local::LocalTransport` in `jobd agent`
//! (interpreter, timeout, process-group kill, streaming, atomic file writes) — and publishes
//! output and results to the results stream.
//!
//! The runner is handed in rather than built here: adapters meet only in job-core's
//! traits (ARCHITECTURE.md), so this crate does not depend on `job-transport-local`.
//! `docs/agent.md` describes the protocol and the failure behaviour.
//!
//! ```no_run
//! # async fn example() -> Result<(), job_core::Error> {
//! use std::sync::Arc;
//! use job_transport_nats::agent::{self, AgentConfig};
//!
//! # fn local_transport() -> Arc<dyn job_core::transport::Transport> { unimplemented!() }
//! // In `jobd agent`: Arc::new(job_transport_local::LocalTransport::new()).
//! let runner = local_transport();
//! let config =
//!     AgentConfig::new("nats://127.0.0.1:4222", "web-1", "/var/lib/jobd-agent", runner)?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! // `stop.send(())` from a signal handler ends the agent cleanly.
//! # drop(stop);
//! agent::run(config, async {
//!     let _ = stopped.await;
//! })
//! .await
//! # }
//! ```

mod files;
mod ledger;
mod tasks;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use job_core::Error;
use job_core::transport::{Cancel, Transport};
use tokio::sync::Semaphore;

use crate::naming::{AgentId, Namespace};
use crate::setup::{self, Jet, Retention};
use crate::wire::AgentRecord;

/// Settings of an agent. [`AgentConfig::new`] gives defaults that suit one host.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AgentConfig {
    /// The NATS server(s), e.g. `nats://10.0.0.5:4222` (comma-separated for several).
    pub nats_url: String,
    /// A NATS credentials file (`.creds`), when the server requires one.
    pub credentials: Option<PathBuf>,
    /// The agent's id: agent-mode targets name it. Default: the host name.
    pub agent_id: AgentId,
    /// The prefix of every subject, stream and bucket; the control nodes must use the
    /// same. Default `jobd`.
    pub namespace: Namespace,
    /// How often the agent rewrites its registration. Default 5 s.
    pub heartbeat: Duration,
    /// Where the agent keeps its record of started tasks and receives files. Created when
    /// missing.
    pub work_dir: PathBuf,
    /// The host's addresses to register; empty: the address it reaches NATS from.
    pub addresses: Vec<String>,
    /// How many tasks run at once; more wait in the stream. Default 64.
    pub max_concurrent_tasks: usize,
    /// What runs tasks and writes and reads files on this host, for targets with
    /// [`HostAccess::Local`](job_core::transport::HostAccess::Local): the local transport.
    pub runner: Arc<dyn Transport>,
    /// How long a stopping agent waits for the tasks it stopped to publish their results
    /// (the runner's kill grace plus publishing). Default 15 s.
    pub stop_grace: Duration,
    /// Retention of the streams and buckets, used when the agent is the first to create
    /// them.
    pub retention: Retention,
}

impl AgentConfig {
    /// Settings for agent `agent_id` on `nats_url`, keeping its state in `work_dir` and
    /// running tasks with `runner` (the local transport).
    pub fn new(
        nats_url: impl Into<String>,
        agent_id: &str,
        work_dir: impl Into<PathBuf>,
        runner: Arc<dyn Transport>,
    ) -> Result<Self, Error> {
        Ok(Self {
            nats_url: nats_url.into(),
            credentials: None,
            agent_id: AgentId::parse("agent_id", agent_id)?,
            namespace: Namespace::default(),
            heartbeat: Duration::from_secs(5),
            work_dir: work_dir.into(),
            addresses: Vec::new(),
            max_concurrent_tasks: 64,
            runner,
            stop_grace: Duration::from_secs(15),
            retention: Retention::default(),
        })
    }

    /// The same settings under the prefix `prefix`.
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self, Error> {
        self.namespace = Namespace::parse("prefix", prefix)?;
        Ok(self)
    }

    /// The same settings with heartbeat interval `every`.
    pub fn with_heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every;
        self
    }

    /// The same settings with the stop grace period `grace`.
    pub fn with_stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    fn check(&self) -> Result<(), Error> {
        if self.nats_url.trim().is_empty() {
            return Err(Error::invalid("nats_url", "must not be empty"));
        }
        if self.heartbeat < Duration::from_millis(100) {
            return Err(Error::invalid("heartbeat", "must be at least 100 ms"));
        }
        if self.max_concurrent_tasks == 0 {
            return Err(Error::invalid("max_concurrent_tasks", "must be above zero"));
        }
        Ok(())
    }
}

/// This host's name, as [`AgentConfig::agent_id`] defaults to (through
/// [`AgentId::from_hostname`]).
pub fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// What every part of a running agent shares.
pub(crate) struct Agent {
    pub(crate) config: AgentConfig,
    pub(crate) client: async_nats::Client,
    pub(crate) jet: Jet,
    pub(crate) ledger: ledger::Ledger,
    /// Cancel signals of running tasks and transfers, by id. Never held across `.await`.
    pub(crate) running: Mutex<HashMap<String, Cancel>>,
    pub(crate) slots: Arc<Semaphore>,
    /// Set when the agent stops: tasks cancelled from then on were stopped by the agent.
    pub(crate) stopping: AtomicBool,
    /// When the agent last (re)connected to NATS: a task published before that, and past
    /// its start deadline, was sent while the agent was away.
    pub(crate) connected_since: Arc<Mutex<chrono::DateTime<Utc>>>,
}

impl Agent {
    /// A cancel signal registered under `id` until [`Agent::forget`].
    pub(crate) fn register(&self, id: &str) -> Cancel {
        let cancel = Cancel::new();
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned(), cancel.clone());
        cancel
    }

    pub(crate) fn forget(&self, id: &str) {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    pub(crate) fn connected_since(&self) -> chrono::DateTime<Utc> {
        *self
            .connected_since
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn cancel(&self, id: &str) -> bool {
        let found = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned();
        found.map(|c| c.cancel()).is_some()
    }

    fn cancel_all(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let all: Vec<Cancel> = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for c in all {
            c.cancel();
        }
    }
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("agent_id", &self.config.agent_id)
            .finish_non_exhaustive()
    }
}

/// Runs the agent until `shutdown` completes.
///
/// Connects (retrying until the server answers, then reconnecting forever), reports the
/// tasks a previous run of this agent left unfinished as failed, registers, heartbeats,
/// and serves tasks, cancels, pushes and pulls. On `shutdown` it cancels what still runs,
/// waits for those results to be published (at most [`AgentConfig::stop_grace`]), marks
/// itself stopped and returns.
///
/// Fails only on bad settings or an unusable work directory.
pub async fn run(config: AgentConfig, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    // Boxed: the agent's state machine is large, callers should not carry it inline.
    Box::pin(run_agent(config, shutdown)).await
}

async fn run_agent(config: AgentConfig, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    config.check()?;
    let ledger = ledger::Ledger::open(&config.work_dir)
        .await
        .map_err(|e| Error::unavailable(format!("work_dir {}", config.work_dir.display()), e))?;
    tokio::fs::create_dir_all(config.work_dir.join("incoming"))
        .await
        .map_err(|e| Error::unavailable(format!("work_dir {}", config.work_dir.display()), e))?;
    if let Ok(n) = ledger.prune().await
        && n > 0
    {
        tracing::debug!(removed = n, "old task records removed");
    }
    tokio::pin!(shutdown);

    let connected_since = Arc::new(Mutex::new(Utc::now()));
    let since = connected_since.clone();
    let options = setup::connect_options(
        format!("jobd-agent {}", config.agent_id),
        config.credentials.as_ref(),
    )
    .await
    .map_err(Error::from)?
    .event_callback(move |event| {
        if matches!(event, async_nats::Event::Connected) {
            *since.lock().unwrap_or_else(|p| p.into_inner()) = Utc::now();
        }
        async {}
    });
    let connected = tokio::select! {
        () = &mut shutdown => return Ok(()),
        c = connect(options, &config) => c,
    };
    let (client, jet) = connected;
    let slots = Arc::new(Semaphore::new(config.max_concurrent_tasks));
    let agent = Arc::new(Agent {
        config,
        client,
        jet,
        ledger,
        running: Mutex::new(HashMap::new()),
        slots,
        stopping: AtomicBool::new(false),
        connected_since,
    });
    tracing::info!(agent_id = %agent.config.agent_id, "agent connected");

    let started_at = Utc::now();
    let work = async {
        tasks::report_unfinished(&agent).await;
        tokio::join!(
            heartbeat(&agent, started_at),
            tasks::take_tasks(agent.clone()),
            serve_cancels(&agent),
            files::serve(agent.clone()),
        );
    };
    tokio::select! {
        () = &mut shutdown => {},
        () = work => {},
    }

    tracing::info!(agent_id = %agent.config.agent_id, "agent stopping");
    agent.cancel_all();
    let grace = agent.config.stop_grace;
    let all = u32::try_from(agent.config.max_concurrent_tasks).unwrap_or(u32::MAX);
    if tokio::time::timeout(grace, agent.slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("tasks still publishing their results at shutdown");
    }
    let mut record = record(&agent, started_at);
    record.stopped = true;
    put_record(&agent, &record).await;
    let _ = agent.client.flush().await;
    Ok(())
}

/// Sets up the streams and buckets, retrying until the server answers.
async fn connect(
    options: async_nats::ConnectOptions,
    config: &AgentConfig,
) -> (async_nats::Client, Jet) {
    let mut delay = Duration::from_millis(100);
    let client = loop {
        match options.clone().connect(config.nats_url.as_str()).await {
            Ok(client) => break client,
            Err(e) => {
                tracing::warn!(error = %e, url = %config.nats_url, "cannot connect to NATS; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    };
    let mut delay = Duration::from_millis(100);
    loop {
        match setup::ensure(client.clone(), &config.namespace, &config.retention).await {
            Ok(jet) => return (client, jet),
            Err(e) => {
                tracing::warn!(error = %e, "NATS JetStream not ready; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

fn record(agent: &Agent, started_at: chrono::DateTime<Utc>) -> AgentRecord {
    AgentRecord {
        agent_id: agent.config.agent_id.to_string(),
        hostname: hostname(),
        addresses: agent.config.addresses.clone(),
        os: std::env::consts::OS.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at,
        heartbeat_ms: u64::try_from(agent.config.heartbeat.as_millis()).unwrap_or(u64::MAX),
        stopped: false,
    }
}

async fn put_record(agent: &Agent, record: &AgentRecord) -> bool {
    let Ok(value) = serde_json::to_vec(record) else {
        return false;
    };
    match agent
        .jet
        .agents
        .put(agent.config.agent_id.as_str(), value.into())
        .await
    {
        Ok(_) => true,
        Err(e) => {
            tracing::debug!(error = %e, "heartbeat not stored");
            false
        }
    }
}

/// Registers, then rewrites the registration every heartbeat, forever.
async fn heartbeat(agent: &Agent, started_at: chrono::DateTime<Utc>) {
    let mut record = record(agent, started_at);
    if record.addresses.is_empty() {
        record.addresses = outbound_address(&agent.config.nats_url).await;
    }
    let mut tick = tokio::time::interval(agent.config.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        put_record(agent, &record).await;
    }
}

/// The local address this host reaches the (first) NATS server from: a UDP "connect"
/// sends nothing, it only picks the route.
async fn outbound_address(nats_url: &str) -> Vec<String> {
    let first = nats_url.split(',').next().unwrap_or_default().trim();
    let rest = first.split_once("://").map_or(first, |(_, r)| r);
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, hp)| hp);
    let host_port = host_port.split('/').next().unwrap_or_default();
    let target = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:4222")
    };
    let Ok(socket) = tokio::net::UdpSocket::bind("0.0.0.0:0").await else {
        return Vec::new();
    };
    if socket.connect(&target).await.is_err() {
        return Vec::new();
    }
    socket
        .local_addr()
        .map(|a| vec![a.ip().to_string()])
        .unwrap_or_default()
}

/// Fires the cancel signal of the task or transfer named in each cancel request.
async fn serve_cancels(agent: &Agent) {
    use futures_util::StreamExt;
    let subject = agent
        .config
        .namespace
        .cancel_subject(&agent.config.agent_id);
    let mut sub = loop {
        match agent.client.subscribe(subject.clone()).await {
            Ok(sub) => break sub,
            Err(e) => {
                tracing::warn!(error = %e, "cannot subscribe to cancels; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    while let Some(msg) = sub.next().await {
        match serde_json::from_slice::<crate::wire::CancelRequest>(&msg.payload) {
            Ok(req) => {
                if agent.cancel(&req.id) {
                    tracing::info!(id = %req.id, "cancel requested");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "ignoring a cancel request that is not valid JSON")
            }
        }
    }
}
