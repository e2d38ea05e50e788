//! [`AgentDirectory`] over the agents' registrations, for consoles and APIs.

use async_trait::async_trait;
use job_core::transport::{AgentDirectory, AgentPresence, TransportError};

use super::NatsTransport;

#[async_trait]
impl AgentDirectory for NatsTransport {
    async fn presence(&self, agent_id: &str) -> Result<AgentPresence, TransportError> {
        Ok(match self.agent_status(agent_id).await? {
            Some(status) => AgentPresence {
                online: status.online,
                last_seen: Some(status.last_seen),
                hostname: Some(status.hostname),
                version: Some(status.version),
            },
            None => AgentPresence::never_seen(),
        })
    }
}
