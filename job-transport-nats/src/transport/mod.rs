//! The control side of agent mode: [`NatsTransport`] reaches targets with
//! [`HostAccess::Agent`] through their resident agent.

mod feed;
mod files;
mod follow;
mod presence;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv::Operation;
use async_nats::jetstream::message::PublishMessage;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use job_core::Error;
use job_core::transport::{
    Cancel, EventSender, HostAccess, HostTarget, OutputCounts, PullSpec, PulledFile, PushOutcome,
    PushSpec, RunOutcome, TaskSpec, Transport, TransportError,
};
use serde::{Deserialize, Serialize};

use crate::naming::{AgentId, Namespace};
use crate::setup::{self, Jet, Retention};
use crate::wire::{AgentRecord, CancelRequest, TaskRequest};

/// Settings of the control side. [`NatsConfig::new`] gives defaults that suit one machine.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NatsConfig {
    /// The NATS server(s), e.g. `nats://127.0.0.1:4222` (comma-separated for several).
    pub nats_url: String,
    /// A NATS credentials file (`.creds`), when the server requires one.
    pub credentials: Option<PathBuf>,
    /// The prefix of every subject, stream and bucket; the agents must use the same.
    /// Default `jobd`.
    pub namespace: Namespace,
    /// An agent without a heartbeat for this long is offline: runs, pushes and pulls on it
    /// fail at once. Default 15 s (three 5 s heartbeats).
    pub offline_after: Duration,
    /// A run whose agent has been without a heartbeat (or stopped) for this long fails
    /// instead of waiting for its timeout. Longer than `offline_after`, so a busy server
    /// that delays heartbeats does not fail runs that are still going. Default 60 s.
    pub lost_after: Duration,
    /// How long a task sent while its agent is away stays runnable: an agent that
    /// (re)connects later refuses it. Default 30 s.
    pub start_within: Duration,
    /// How long a push or pull may take, transfer included. Default 10 min.
    pub file_timeout: Duration,
    /// Slack after a task's timeout before the control side stops waiting for its result
    /// (the agent's kill grace and publishing). Default 30 s.
    pub result_grace: Duration,
    /// Retention of the streams and buckets, used when this side creates them.
    pub retention: Retention,
}

impl NatsConfig {
    /// Defaults for the server(s) at `nats_url`.
    pub fn new(nats_url: impl Into<String>) -> Self {
        Self {
            nats_url: nats_url.into(),
            credentials: None,
            namespace: Namespace::default(),
            offline_after: Duration::from_secs(15),
            lost_after: Duration::from_secs(60),
            start_within: Duration::from_secs(30),
            file_timeout: Duration::from_secs(600),
            result_grace: Duration::from_secs(30),
            retention: Retention::default(),
        }
    }

    /// The same settings under the prefix `prefix`.
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self, Error> {
        self.namespace = Namespace::parse("prefix", prefix)?;
        Ok(self)
    }

    /// The same settings with the offline threshold `after`.
    pub fn with_offline_after(mut self, after: Duration) -> Self {
        self.offline_after = after;
        self
    }

    /// The same settings with the lost-agent threshold `after`.
    pub fn with_lost_after(mut self, after: Duration) -> Self {
        self.lost_after = after;
        self
    }
}

/// What the control side knows about an agent, from its registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AgentStatus {
    /// The agent's id.
    pub agent_id: String,
    /// Whether it heartbeated within [`NatsConfig::offline_after`] and did not stop.
    pub online: bool,
    /// When its last heartbeat reached the server (the server's clock).
    pub last_seen: DateTime<Utc>,
    /// Its host's name.
    pub hostname: String,
    /// Its host's addresses.
    pub addresses: Vec<String>,
    /// Its host's OS (`linux`, …).
    pub os: String,
    /// The agent's version.
    pub version: String,
    /// When the agent process started.
    pub started_at: DateTime<Utc>,
    /// Whether it stopped cleanly.
    pub stopped: bool,
}

/// A task handed to an agent: enough to follow it again after the control side
/// restarted ([`NatsTransport::follow`]). Serializable, so it can be stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentTask {
    /// The task's id: its results subject is `{prefix}.results.{task_id}`.
    pub task_id: String,
    /// The agent running it.
    pub agent_id: String,
    /// When its timeout passes (the control side waits a grace period longer).
    pub deadline: DateTime<Utc>,
}

/// Runs tasks and moves files through resident agents over NATS.
///
/// Cheap to clone and share; every method may be called for many targets at once.
#[derive(Clone)]
pub struct NatsTransport {
    client: async_nats::Client,
    jet: Jet,
    config: NatsConfig,
    feed: Arc<feed::Feed>,
    _feed_task: Arc<AbortOnDrop>,
}

/// Stops the shared results feed when the last clone of the transport is dropped.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::fmt::Debug for NatsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsTransport")
            .field("namespace", &self.config.namespace)
            .finish_non_exhaustive()
    }
}

impl NatsTransport {
    /// Connects to NATS and gets or creates the streams and buckets. Fails with
    /// [`Error::Unavailable`] when the server does not answer within a few seconds (the
    /// connection, once made, reconnects by itself forever).
    pub async fn connect(config: NatsConfig) -> Result<Self, Error> {
        let options =
            setup::connect_options("jobd control".to_owned(), config.credentials.as_ref()).await?;
        let client = options
            .connect(config.nats_url.as_str())
            .await
            .map_err(|e| Error::unavailable(format!("NATS at {}", config.nats_url), e))?;
        Self::with_client(client, config).await
    }

    /// Uses an existing connection (shared with the event bus, say).
    pub async fn with_client(
        client: async_nats::Client,
        config: NatsConfig,
    ) -> Result<Self, Error> {
        // Boxed: JetStream setup is a large future.
        let jet = Box::pin(setup::ensure(
            client.clone(),
            &config.namespace,
            &config.retention,
        ))
        .await?;
        let feed = Arc::new(feed::Feed::default());
        let prefix = config.namespace.as_str().to_owned();
        let first = match Box::pin(feed::open(&jet.results, &prefix)).await {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(error = %e, "results feed not open; runs read alone until it is");
                None
            }
        };
        let task = tokio::spawn(feed::run(
            feed.clone(),
            client.clone(),
            jet.results.clone(),
            prefix,
            first,
        ));
        Ok(Self {
            client,
            jet,
            config,
            feed,
            _feed_task: Arc::new(AbortOnDrop(task)),
        })
    }

    /// The connection, to share with a [`crate::NatsEventBus`].
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// Its settings.
    pub fn config(&self) -> &NatsConfig {
        &self.config
    }

    /// The registration of agent `agent_id` with its online state, or `None` when it
    /// never registered (or its record expired).
    pub async fn agent_status(
        &self,
        agent_id: &str,
    ) -> Result<Option<AgentStatus>, TransportError> {
        let id = AgentId::parse("agent_id", agent_id)
            .map_err(|e| TransportError::invalid("agent_id", e.to_string()))?;
        let entry = self
            .jet
            .agents
            .entry(id.as_str())
            .await
            .map_err(|e| TransportError::unreachable("cannot read agent registrations", e))?;
        let Some(entry) = entry else {
            return Ok(None);
        };
        if entry.operation != Operation::Put {
            return Ok(None);
        }
        let record: AgentRecord = match serde_json::from_slice(&entry.value) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(agent_id, error = %e, "ignoring a malformed agent registration");
                return Ok(None);
            }
        };
        let last_seen = entry.created;
        let silent = (Utc::now() - last_seen).to_std().unwrap_or_default();
        Ok(Some(AgentStatus {
            agent_id: record.agent_id,
            online: !record.stopped && silent <= self.config.offline_after,
            last_seen,
            hostname: record.hostname,
            addresses: record.addresses,
            os: record.os,
            version: record.version,
            started_at: record.started_at,
            stopped: record.stopped,
        }))
    }

    /// Hands `task` to the agent of `target` and returns at once; follow it with
    /// [`NatsTransport::follow`]. Fails fast when the agent is offline.
    pub async fn start(
        &self,
        target: &HostTarget,
        task: &TaskSpec,
    ) -> Result<AgentTask, TransportError> {
        self.start_as(target, task, &uuid::Uuid::now_v7().to_string())
            .await
    }

    async fn start_as(
        &self,
        target: &HostTarget,
        task: &TaskSpec,
        task_id: &str,
    ) -> Result<AgentTask, TransportError> {
        let agent = self.agent_of(target)?;
        task.validate()?;
        self.check_online(&agent).await?;
        let task_id = task_id.to_owned();
        let now = Utc::now();
        let start_by = now + to_chrono(self.config.start_within);
        let request = TaskRequest::new(&task_id, agent.as_str(), task, start_by);
        let payload = serde_json::to_vec(&request)
            .map_err(|e| TransportError::failed("cannot encode the task", e))?;
        let subject = self.config.namespace.tasks_subject(&agent);
        let ack = self
            .jet
            .js
            .send_publish(
                subject,
                PublishMessage::build()
                    .payload(payload.into())
                    .message_id(&task_id),
            )
            .await
            .map_err(|e| TransportError::unreachable("cannot publish the task to NATS", e))?;
        ack.await
            .map_err(|e| TransportError::unreachable("NATS did not store the task", e))?;
        Ok(AgentTask {
            task_id,
            agent_id: agent.to_string(),
            deadline: now + to_chrono(task.timeout),
        })
    }

    /// Follows a started task to its end: its events from the first one (even those
    /// published before this call, or while no control node listened), then its result.
    /// Cancel is sent to the agent (and repeated until the task ends).
    pub async fn follow(
        &self,
        task: &AgentTask,
        events: EventSender,
        cancel: &Cancel,
    ) -> Result<RunOutcome, TransportError> {
        follow::follow(self, task, None, events, cancel).await
    }

    fn agent_of(&self, target: &HostTarget) -> Result<AgentId, TransportError> {
        match &target.access {
            HostAccess::Agent { agent_id } => AgentId::parse("agent_id", agent_id)
                .map_err(|e| TransportError::invalid("agent_id", e.to_string())),
            _ => Err(target.unsupported_by(self.kind())),
        }
    }

    /// The agent's status if it is online; an [`TransportError::Unreachable`] naming when it
    /// was last seen otherwise.
    async fn check_online(&self, agent: &AgentId) -> Result<AgentStatus, TransportError> {
        match self.agent_status(agent.as_str()).await? {
            None => Err(TransportError::Unreachable {
                reason: format!(
                    "agent {agent} has never registered (prefix `{}`)",
                    self.config.namespace.as_str()
                ),
                source: None,
            }),
            Some(status) if !status.online => Err(offline(&status)),
            Some(status) => Ok(status),
        }
    }

    /// Asks the agent to stop the task or transfer `id` (best effort, core NATS).
    async fn send_cancel(&self, agent: &AgentId, id: &str) {
        let body = CancelRequest { id: id.to_owned() };
        if let Ok(payload) = serde_json::to_vec(&body)
            && let Err(e) = self
                .client
                .publish(self.config.namespace.cancel_subject(agent), payload.into())
                .await
        {
            tracing::debug!(error = %e, "cancel not sent");
        }
    }
}

/// The error for an agent that is offline.
fn offline(status: &AgentStatus) -> TransportError {
    TransportError::Unreachable {
        reason: offline_reason(status),
        source: None,
    }
}

/// "agent X is offline, last seen … (N s ago)".
fn offline_reason(status: &AgentStatus) -> String {
    let ago = (Utc::now() - status.last_seen).num_seconds().max(0);
    format!(
        "agent {} is offline{}, last seen {} ({ago} s ago)",
        status.agent_id,
        if status.stopped { " (stopped)" } else { "" },
        status
            .last_seen
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

/// The agent task id for a caller's run key: a UUID (what agents accept as a task id, and
/// name their ledger files by) derived from the key's sha256, so the same key always names
/// the same task. Keys of 1–128 letters, digits, `-` or `_` are taken.
fn task_id_of(key: &str) -> Result<String, TransportError> {
    use sha2::{Digest, Sha256};
    let plain = !key.is_empty()
        && key.len() <= 128
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !plain {
        return Err(TransportError::invalid(
            "run_key",
            "must be 1–128 letters, digits, `-` or `_`",
        ));
    }
    let digest = Sha256::digest(format!("jobd-run-key:{key}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Ok(uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string())
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[async_trait]
impl Transport for NatsTransport {
    fn kind(&self) -> &'static str {
        "agent"
    }

    async fn run(
        &self,
        target: &HostTarget,
        task: &TaskSpec,
        events: EventSender,
        cancel: &Cancel,
    ) -> Result<RunOutcome, TransportError> {
        self.agent_of(target)?;
        if cancel.is_cancelled() {
            return Ok(RunOutcome::ended_by(
                TransportError::Cancelled,
                None,
                OutputCounts::default(),
            ));
        }
        // Registered with the shared feed before the task is published, so none of its
        // results can pass by unrouted.
        let task_id = match &task.run_key {
            Some(key) => task_id_of(key)?,
            None => uuid::Uuid::now_v7().to_string(),
        };
        let queue = self.feed.register(&task_id);
        let result = match self.start_as(target, task, &task_id).await {
            Ok(started) => follow::follow(self, &started, queue, events, cancel).await,
            Err(e) => Err(e),
        };
        self.feed.forget(&task_id);
        result
    }

    /// Follows the agent task named by `task.run_key` from its first result, without
    /// publishing anything: the agent ran it on while no control node listened, and its
    /// results wait in the results stream. A task that was never published (the control
    /// node stopped in between) has no results; the follower then gives up once the time
    /// left (`task.timeout`) and the result grace have passed, or at once when the agent is
    /// lost.
    async fn resume(
        &self,
        target: &HostTarget,
        task: &TaskSpec,
        events: EventSender,
        cancel: &Cancel,
    ) -> Result<RunOutcome, TransportError> {
        let agent = self.agent_of(target)?;
        let Some(key) = &task.run_key else {
            return Err(TransportError::invalid(
                "run_key",
                "a run can only be resumed by the key it was started with",
            ));
        };
        let started = AgentTask {
            task_id: task_id_of(key)?,
            agent_id: agent.to_string(),
            deadline: Utc::now() + to_chrono(task.timeout),
        };
        // Its own consumer from the task's first result, not the shared feed: the feed
        // routes only what arrives from now on, and the results published while no control
        // node listened are the ones that matter here.
        follow::follow(self, &started, None, events, cancel).await
    }

    async fn push(
        &self,
        target: &HostTarget,
        file: &PushSpec,
        cancel: &Cancel,
    ) -> Result<PushOutcome, TransportError> {
        let agent = self.agent_of(target)?;
        self.check_online(&agent).await?;
        files::push(self, &agent, file, cancel).await
    }

    async fn pull(
        &self,
        target: &HostTarget,
        file: &PullSpec,
        cancel: &Cancel,
    ) -> Result<PulledFile, TransportError> {
        let agent = self.agent_of(target)?;
        self.check_online(&agent).await?;
        files::pull(self, &agent, file, cancel).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_key_always_names_the_same_agent_task_and_another_key_another() {
        let a = task_id_of("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b-0").unwrap();
        assert_eq!(
            a,
            task_id_of("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b-0").unwrap()
        );
        assert_ne!(
            a,
            task_id_of("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b-1").unwrap()
        );
        assert!(uuid::Uuid::parse_str(&a).is_ok(), "{a}");
    }

    #[test]
    fn a_run_key_that_is_empty_too_long_or_not_plain_is_refused_naming_the_field() {
        for key in ["", "a.b", "a b", "a*", "é", &"k".repeat(129)] {
            match task_id_of(key) {
                Err(TransportError::Invalid { field, .. }) => assert_eq!(field, "run_key"),
                other => panic!("{key:?}: {other:?}"),
            }
        }
    }
}
