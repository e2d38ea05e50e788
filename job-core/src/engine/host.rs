//! The task that runs one host of a running execution.

use tokio::sync::mpsc;

use super::shared::Shared;
use super::writer::Write;
use crate::model::TargetSnapshot;
use crate::status::{Event, ExecutionStatus, HostOutcome, HostStatus};
use crate::store::{HostRunUpdate, NewOutput};
use crate::transport::{RunOutcome, TransportError, TransportEvent};

/// The error recorded on hosts stopped because this node shut down.
pub(crate) const INTERRUPTED: &str = "interrupted: the control node shut down";

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
