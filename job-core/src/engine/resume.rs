//! The resume use case: a paused rolling execution goes on with its next batch.

use chrono::{DateTime, Utc};

use crate::bus::{EventBus, LiveEvent};
use crate::ids::ExecutionId;
use crate::model::Execution;
use crate::status::ExecutionStatus;
use crate::store::{Store, TeamScope};
use crate::{Error, Result};

/// Resumes execution `id`, as seen from `scope`, after its rolling plan paused it (a batch
/// in [`RollingMode::PauseOnFailure`](crate::model::RollingMode::PauseOnFailure) had a host
/// that did not succeed).
///
/// The pause is cleared in the store, [`LiveEvent::Resumed`] is published and the engines
/// are woken ([`EventBus::notify_pending`]); the next claim of any engine takes the
/// execution up and starts its next batch. An execution that is not paused (never was, already resumed, cancelled, final) is
/// refused with [`Error::Conflict`]; another team's execution is [`Error::NotFound`]. `now`
/// is when the resume was asked for; it is logged.
pub async fn resume_execution(
    store: &dyn Store,
    bus: &dyn EventBus,
    scope: &TeamScope,
    id: ExecutionId,
    now: DateTime<Utc>,
) -> Result<Execution> {
    let execution = store.get_execution(scope, id).await?;
    if execution.paused_at.is_none() || execution.status != ExecutionStatus::Running {
        return Err(Error::conflict(format!(
            "execution {id} is `{}` and not paused; only a paused rolling execution can be resumed",
            execution.status
        )));
    }
    let resumed = store.unpause_execution(id).await?;
    tracing::info!(execution = %id, at = %now, "rolling execution resumed");
    bus.publish(LiveEvent::Resumed { execution_id: id }).await;
    bus.notify_pending().await;
    Ok(resumed)
}
