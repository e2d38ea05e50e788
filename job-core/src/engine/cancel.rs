//! The cancel use case, shared by the console, the REST API and the NATS interface.

use chrono::{DateTime, Utc};

use crate::bus::{EventBus, LiveEvent};
use crate::ids::ExecutionId;
use crate::model::{Actor, Execution};
use crate::policy::{Access, authorize};
use crate::status::{ExecutionStatus, HostStatus};
use crate::store::{HostRunUpdate, Store, StoreExt, TeamScope, Transition};
use crate::{Error, Result};

use super::outbox::final_outbox;

/// Asks to cancel execution `id` on behalf of `actor`, who must be allowed to use the
/// execution's team's assets (operator or above).
///
/// A `pending` execution is cancelled at once (its hosts with it, its callback enqueued). A
/// `running` one moves to `cancelling`; the engine running it kills the remote processes and
/// converges to `cancelled` when they report or at its deadline. A final or `cancelling`
/// execution refuses with [`Error::Conflict`]; another team's execution is
/// [`Error::NotFound`], exactly like a missing one; a viewer of its team is refused with
/// [`Error::Forbidden`]. If the status moves under us (it started meanwhile), the request is
/// applied to the new status.
pub async fn request_cancel(
    store: &dyn Store,
    bus: &dyn EventBus,
    actor: &Actor,
    id: ExecutionId,
    now: DateTime<Utc>,
) -> Result<Execution> {
    let scope = &TeamScope::of(actor);
    for attempt in 0..3 {
        let execution = store.get_execution(scope, id).await?;
        if attempt == 0 {
            authorize(
                actor,
                execution.team_id,
                Access::Use,
                &format!("execution {id}"),
            )?;
        }
        let to = execution.status.on_cancel()?;
        let mut transition = Transition::new(execution.status, to, now);
        if to == ExecutionStatus::Cancelled {
            transition.hosts = pending_hosts_cancelled(store, id, now).await?;
            let mut done = execution.clone();
            done.status = ExecutionStatus::Cancelled;
            done.finished_at = Some(now);
            // A pending execution has not started a host: all of them are cancelled.
            done.counters = crate::status::HostCounters::from_statuses(std::iter::repeat_n(
                HostStatus::Cancelled,
                done.counters.total as usize,
            ));
            transition.outbox = final_outbox(&done, now);
        }
        match store.transition(id, &transition).await {
            Ok(updated) => {
                bus.publish(LiveEvent::Status {
                    execution_id: id,
                    status: updated.status,
                })
                .await;
                return Ok(updated);
            }
            Err(Error::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Err(Error::conflict(
        "the execution changed status repeatedly while cancelling; try again",
    ))
}

async fn pending_hosts_cancelled(
    store: &dyn Store,
    id: ExecutionId,
    now: DateTime<Utc>,
) -> Result<Vec<HostRunUpdate>> {
    Ok(store
        .all_host_runs(&TeamScope::All, id)
        .await?
        .into_iter()
        .filter(|h| h.status == HostStatus::Pending)
        .map(|h| HostRunUpdate::finished(h.index, HostStatus::Cancelled, None, now))
        .collect())
}
