//! What a final execution leaves in the outbox.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::ids::DeliveryId;
use crate::model::{Execution, OutboxEntry, OutboxKind, OutboxState};

/// The callback summary of a final execution, as POSTed to its `callback_url`.
pub fn callback_payload(execution: &Execution) -> serde_json::Value {
    json!({
        "task_id": execution.id,
        "name": execution.name,
        "team_id": execution.team_id,
        "job_type": execution.job_type,
        "trigger_source": execution.trigger_source,
        "status": execution.status,
        "counters": execution.counters,
        "created_at": execution.created_at,
        "started_at": execution.started_at,
        "finished_at": execution.finished_at,
        "re_executed_from": execution.re_executed_from,
        "cron_job_id": execution.cron_job_id,
    })
}

/// The outbox entries a move into a final status writes with it: the callback, when the
/// execution has a callback URL.
pub(crate) fn final_outbox(execution: &Execution, now: DateTime<Utc>) -> Vec<OutboxEntry> {
    let Some(url) = execution.callback_url.clone() else {
        return Vec::new();
    };
    vec![OutboxEntry {
        delivery_id: DeliveryId::new(),
        team_id: execution.team_id,
        execution_id: Some(execution.id),
        kind: OutboxKind::Callback { url },
        payload: callback_payload(execution),
        state: OutboxState::Pending,
        attempts: 0,
        next_attempt_at: now,
        last_error: None,
        created_at: now,
    }]
}
