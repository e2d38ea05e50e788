use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{DeliveryId, ExecutionId, TeamId};

/// What an outbox entry delivers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutboxKind {
    /// POST the execution's summary to its callback URL.
    Callback {
        /// Where to post.
        url: String,
    },
    /// Raise an alert about a high-risk rule hit.
    Alert {
        /// What happened, for people.
        message: String,
    },
}

/// Where an outbox entry is in its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Waiting for (another) attempt.
    Pending,
    /// Delivered.
    Delivered,
    /// Gave up after the last retry.
    Failed,
}

/// A callback or alert to deliver, written in the same transaction as the state change
/// that caused it, so a crash can never lose it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// Stable across retries: receivers deduplicate on it.
    pub delivery_id: DeliveryId,
    /// Owner team.
    pub team_id: TeamId,
    /// The execution it is about, if any.
    pub execution_id: Option<ExecutionId>,
    /// What to deliver.
    pub kind: OutboxKind,
    /// The body to deliver (JSON).
    pub payload: serde_json::Value,
    /// Delivery state.
    pub state: OutboxState,
    /// Attempts made so far.
    pub attempts: u32,
    /// Earliest instant of the next attempt.
    pub next_attempt_at: DateTime<Utc>,
    /// The last error, if an attempt failed.
    pub last_error: Option<String>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}
