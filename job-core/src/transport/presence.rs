//! Whether resident agents are online: what a console shows next to an agent-mode target.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::TransportError;

/// An agent as the platform last heard from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentPresence {
    /// Whether it heartbeats now (and did not stop).
    pub online: bool,
    /// When it was last heard from; `None` when it never registered.
    pub last_seen: Option<DateTime<Utc>>,
    /// Its host's name, as it registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The agent's version, as it registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl AgentPresence {
    /// An agent nobody has heard from.
    pub fn never_seen() -> Self {
        Self {
            online: false,
            last_seen: None,
            hostname: None,
            version: None,
        }
    }
}

/// Looks up agents' presence (the NATS transport implements it).
#[async_trait]
pub trait AgentDirectory: std::fmt::Debug + Send + Sync {
    /// The presence of agent `agent_id` ([`AgentPresence::never_seen`] when it never
    /// registered).
    async fn presence(&self, agent_id: &str) -> Result<AgentPresence, TransportError>;
}
