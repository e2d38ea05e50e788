//! What the host tasks of one running execution share, and the task that runs one host.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Semaphore, mpsc};

use super::Inner;
use super::writer::{Write, WriterHandle};
use crate::Result;
use crate::model::{Execution, TargetSnapshot};
use crate::status::{Applied, Event, ExecutionMachine, ExecutionStatus, HostOutcome, HostStatus};
use crate::store::{HostRunUpdate, NewOutput};
use crate::transport::{Cancel, RunOutcome, TaskSpec, TransportError, TransportEvent};

/// The error recorded on hosts stopped because this node shut down.
pub(crate) const INTERRUPTED: &str = "interrupted: the control node shut down";

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
    pub(crate) sources: super::distribute::Sources,
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

/// How a host task begins.
#[derive(Debug, Clone, Copy)]
pub(crate) enum HostStart {
    /// A host that has not started: run the task.
    Fresh,
    /// A host that a control node which stopped was running: re-attach to its run through
    /// [`crate::transport::Transport::resume`], skipping the output already stored (bytes
    /// of each stream), with `time_left` of its timeout.
    Resume {
        stdout: u64,
        stderr: u64,
        time_left: std::time::Duration,
    },
}

/// The error recorded on a running host whose control node stopped, when its transport
/// cannot re-attach to the run.
pub(crate) const LOST: &str = "interrupted: the control node running this host stopped";

/// Runs one host: waits for capacity, connects, runs the task, records the result.
pub(crate) async fn run_host(
    shared: std::sync::Arc<Shared>,
    index: u32,
    target: TargetSnapshot,
    start: HostStart,
) {
    let cancel = shared.cancel.clone();
    // A resumed host goes on even when the execution is being cancelled: its run is still
    // going on the target, and only the transport can carry the cancel there.
    let resuming = matches!(start, HostStart::Resume { .. });
    let stop = async {
        if resuming {
            std::future::pending::<()>().await;
        }
        cancel.cancelled().await;
    };
    tokio::pin!(stop);
    let _mine = tokio::select! {
        p = shared.per_execution.acquire() => match p { Ok(p) => p, Err(_) => return },
        () = &mut stop => return,
    };
    let _global = tokio::select! {
        p = shared.inner.global.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        () = &mut stop => return,
    };
    if cancel.is_cancelled() && !resuming {
        return;
    }
    if let HostStart::Fresh = start {
        if shared.apply(Event::HostStarted { host: index }).is_err() {
            return;
        }
        let started = shared.inner.clock.now();
        shared
            .writer
            .send(Write::Host(HostRunUpdate::started(index, started)))
            .await;
    }

    // Set when a resumed host's transport cannot re-attach: the run is lost to us.
    let mut lost = false;
    let outcome = match &shared.task {
        _ if matches!(
            shared.execution.task,
            crate::model::TaskSnapshot::FileDistribution { .. }
        ) =>
        {
            // The execution's timeout bounds the host's reads and pushes together; a push
            // cut short never replaces its destination (a file is renamed into place only
            // once complete and verified).
            let limit = shared.execution.timeout.as_duration();
            tokio::time::timeout(
                limit,
                super::distribute::distribute(&shared, index, &target, &cancel),
            )
            .await
            .unwrap_or_else(|_| RunOutcome::from_error(TransportError::Timeout { after: limit }))
        }
        Err(reason) => RunOutcome::from_error(TransportError::unsupported(reason.clone())),
        Ok(task) => match shared
            .inner
            .connector
            .connect(&shared.execution, &target)
            .await
        {
            Err(e) => RunOutcome::from_error(e),
            Ok((transport, host)) => {
                let mut task = task
                    .clone()
                    .with_run_key(format!("{}-{index}", shared.execution.id));
                let (mut skip_out, mut skip_err) = match start {
                    HostStart::Fresh => (0, 0),
                    HostStart::Resume {
                        stdout,
                        stderr,
                        time_left,
                    } => {
                        task.timeout = time_left;
                        (stdout, stderr)
                    }
                };
                let (tx, mut rx) = mpsc::channel::<TransportEvent>(64);
                let writer = shared.writer.clone();
                let clock = shared.inner.clock.clone();
                let forward = async move {
                    while let Some(event) = rx.recv().await {
                        if let TransportEvent::Output {
                            stream, mut data, ..
                        } = event
                        {
                            // A resumed run replays its output from the start: what is
                            // stored already is not stored twice.
                            let mut never = 0u64;
                            let skip = match stream {
                                crate::model::OutputStream::Stdout => &mut skip_out,
                                crate::model::OutputStream::Stderr => &mut skip_err,
                                crate::model::OutputStream::System => &mut never,
                            };
                            let len = data.len() as u64;
                            if *skip >= len {
                                *skip -= len;
                                continue;
                            }
                            if *skip > 0 {
                                data = data.split_off(*skip as usize);
                                *skip = 0;
                            }
                            let ts = clock.now();
                            writer
                                .send(Write::Output(NewOutput {
                                    host_index: index,
                                    stream,
                                    data,
                                    ts,
                                }))
                                .await;
                        }
                    }
                };
                let run = async {
                    match start {
                        HostStart::Fresh => transport.run(&host, &task, tx, &cancel).await,
                        HostStart::Resume { .. } => {
                            transport.resume(&host, &task, tx, &cancel).await
                        }
                    }
                };
                let (result, ()) = tokio::join!(run, forward);
                match (start, result) {
                    (HostStart::Resume { .. }, Err(TransportError::Unsupported { .. })) => {
                        lost = true;
                        RunOutcome::from_error(TransportError::unsupported(LOST))
                    }
                    (_, result) => result.unwrap_or_else(RunOutcome::from_error),
                }
            }
        },
    };

    let finished = shared.inner.clock.now();
    // A process killed because this node shuts down did not fail on its own, nor was it
    // cancelled by anyone: record it as interrupted (a failure), unless a cancel was asked.
    let interrupted = outcome.outcome == HostOutcome::Cancelled
        && shared.is_interrupted()
        && shared.status() == ExecutionStatus::Running;
    let host_outcome = if interrupted {
        HostOutcome::Failed
    } else {
        outcome.outcome
    };
    let status: HostStatus = host_outcome.into();
    if shared
        .apply(Event::HostFinished {
            host: index,
            outcome: host_outcome,
        })
        .is_ok()
    {
        let mut u = HostRunUpdate::finished(index, status, outcome.exit_code, finished);
        u.error = if interrupted {
            Some(INTERRUPTED.to_owned())
        } else if lost {
            Some(LOST.to_owned())
        } else {
            outcome
                .error
                .filter(|_| status != HostStatus::Success)
                .map(|e| e.to_string())
        };
        shared.writer.send(Write::Host(u)).await;
    }
}
