//! What the host tasks of one running execution share with its runner.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Semaphore;

use super::Inner;
use super::sources::Sources;
use super::writer::{Write, WriterHandle};
use crate::Result;
use crate::model::Execution;
use crate::status::{Applied, Event, ExecutionMachine, ExecutionStatus, HostOutcome, HostStatus};
use crate::store::HostRunUpdate;
use crate::transport::{Cancel, TaskSpec};

/// What host tasks share with the execution's runner.
pub(crate) struct Shared {
    pub(crate) inner: std::sync::Arc<Inner>,
    pub(crate) execution: Execution,
    pub(crate) machine: Mutex<ExecutionMachine>,
    /// Fired to stop hosts: a cancel, a lost lease or the node shutting down.
    pub(crate) cancel: Cancel,
    /// Set when the node shuts down: hosts killed for it are recorded as interrupted.
    pub(crate) interrupted: AtomicBool,
    pub(crate) task: std::result::Result<TaskSpec, String>,
    pub(crate) writer: WriterHandle,
    pub(crate) per_execution: Semaphore,
    /// A file distribution's sources, read once for all its hosts.
    pub(crate) sources: Sources,
}

impl Shared {
    /// Applies an event to the machine; the lock is never held across an await.
    pub(crate) fn apply(&self, event: Event) -> Result<Applied> {
        self.machine
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .apply(event)
    }

    pub(crate) fn status(&self) -> ExecutionStatus {
        self.machine
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .status()
    }

    /// Each host's status, by index.
    pub(crate) fn hosts(&self) -> Vec<HostStatus> {
        self.machine
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .hosts()
            .to_vec()
    }

    pub(crate) fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// Sends the host moves of `applied` (other than ones the host task records itself)
    /// to the writer: hosts cancelled or forced by the execution.
    pub(crate) async fn record_forced(&self, applied: &Applied, error: &str) {
        let now = self.inner.clock.now();
        for (index, _, to) in &applied.hosts {
            let mut u = HostRunUpdate::finished(*index, *to, None, now);
            u.error = Some(error.to_owned());
            self.writer.send(Write::Host(u)).await;
        }
    }

    /// Ends every host whose status matches `which` with `outcome`, recording `error` on
    /// each; the machine settles the execution once every host is final.
    pub(crate) async fn end_hosts(
        &self,
        which: impl Fn(HostStatus) -> bool,
        outcome: HostOutcome,
        error: &str,
    ) {
        let mut applied = Applied::default();
        {
            let mut machine = self.machine.lock().unwrap_or_else(|p| p.into_inner());
            let chosen: Vec<u32> = machine
                .hosts()
                .iter()
                .enumerate()
                .filter(|(_, s)| which(**s))
                .map(|(i, _)| i as u32)
                .collect();
            for host in chosen {
                if let Ok(a) = machine.apply(Event::HostFinished { host, outcome }) {
                    applied.hosts.extend(a.hosts);
                    applied.status.extend(a.status);
                }
            }
        }
        self.record_forced(&applied, error).await;
    }
}
