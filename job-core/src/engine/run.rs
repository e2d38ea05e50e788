//! Running one claimed execution to its end.

use std::sync::{Arc, Mutex};

use tokio::sync::{Semaphore, broadcast, mpsc};
use tokio::task::JoinSet;

use super::writer::{Write, Writer, WriterHandle};
use super::{Inner, chrono_duration, outbox::final_outbox, task::task_spec};
use crate::bus::LiveEvent;
use crate::ids::ExecutionId;
use crate::model::{Execution, TargetSnapshot};
use crate::status::{Applied, Event, ExecutionMachine, ExecutionStatus, HostStatus};
use crate::store::{
    ClaimedExecution, HostRunUpdate, Lease, NewOutput, StoreExt, TeamScope, Transition,
};
use crate::transport::{Cancel, RunOutcome, TaskSpec, TransportError, TransportEvent};
use crate::{Error, Result};

/// What host tasks share with the execution's runner.
struct Shared {
    inner: Arc<Inner>,
    execution: Execution,
    machine: Mutex<ExecutionMachine>,
    cancel: Cancel,
    task: std::result::Result<TaskSpec, String>,
    writer: WriterHandle,
    per_execution: Semaphore,
}

impl Shared {
    /// Applies an event to the machine; the lock is never held across an await.
    fn apply(&self, event: Event) -> Result<Applied> {
        self.machine
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .apply(event)
    }

    fn status(&self) -> ExecutionStatus {
        self.machine
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .status()
    }

    /// Sends the host moves of `applied` (other than ones the host task records itself)
    /// to the writer: hosts cancelled or forced by the execution.
    async fn record_forced(&self, applied: &Applied, error: &str) {
        let now = self.inner.clock.now();
        for (index, _, to) in &applied.hosts {
            let mut u = HostRunUpdate::finished(*index, *to, None, now);
            u.error = Some(error.to_owned());
            self.writer.send(Write::Host(u)).await;
        }
    }
}

pub(crate) async fn run_execution(
    inner: Arc<Inner>,
    claimed: ClaimedExecution,
) -> Result<ExecutionStatus> {
    let id = claimed.execution.id;
    let result = run_inner(inner.clone(), claimed).await;
    if let Err(e) = inner.store.release_lease(id, &inner.config.node_id).await {
        tracing::warn!(execution = %id, error = %e, "releasing the lease failed");
    }
    result
}

async fn run_inner(inner: Arc<Inner>, claimed: ClaimedExecution) -> Result<ExecutionStatus> {
    let id = claimed.execution.id;
    let mut execution = claimed.execution;
    // Follow the bus first, so a cancel published from now on is not missed.
    let mut live = inner.bus.subscribe(id).await;
    let mut hosts = inner.store.all_host_runs(&TeamScope::All, id).await?;
    let now = inner.clock.now();

    if claimed.taken_over {
        // The node that ran these hosts is gone; what they did is unknown. Say so.
        let lost: Vec<HostRunUpdate> = hosts
            .iter()
            .filter(|h| h.status == HostStatus::Running)
            .map(|h| {
                let mut u = HostRunUpdate::finished(h.index, HostStatus::Failed, None, now);
                u.error = Some("interrupted: the control node running this host stopped".into());
                u
            })
            .collect();
        if !lost.is_empty() {
            inner.store.update_host_runs(id, &lost).await?;
            hosts = inner.store.all_host_runs(&TeamScope::All, id).await?;
        }
    }

    let deadline = inner.cancel_deadline(&execution);
    let statuses: Vec<HostStatus> = hosts.iter().map(|h| h.status).collect();
    let mut machine = ExecutionMachine::restore(execution.status, statuses.clone(), deadline)?;

    if execution.status == ExecutionStatus::Pending {
        let start = Transition::new(ExecutionStatus::Pending, ExecutionStatus::Running, now);
        match inner.store.transition(id, &start).await {
            Ok(stored) => {
                execution = stored;
                machine.apply(Event::Start)?;
                inner
                    .bus
                    .publish(LiveEvent::Status {
                        execution_id: id,
                        status: ExecutionStatus::Running,
                    })
                    .await;
            }
            Err(Error::Conflict { .. }) => {
                // Cancelled (or taken) meanwhile: see what it is now.
                execution = inner.store.get_execution(&TeamScope::All, id).await?;
                if execution.status.is_final() || execution.status == ExecutionStatus::Pending {
                    return Ok(execution.status);
                }
                machine = ExecutionMachine::restore(
                    execution.status,
                    statuses,
                    inner.cancel_deadline(&execution),
                )?;
            }
            Err(e) => return Err(e),
        }
    }
    if execution.status.is_final() {
        return Ok(execution.status);
    }

    let writer = Writer::spawn(
        inner.store.clone(),
        inner.bus.clone(),
        id,
        inner.config.output_cap_bytes,
    );
    let shared = Arc::new(Shared {
        task: task_spec(&execution, inner.config.output_cap_bytes).map_err(|e| e.to_string()),
        inner: inner.clone(),
        machine: Mutex::new(machine),
        cancel: Cancel::new(),
        writer: writer.handle(),
        per_execution: Semaphore::new(inner.config.max_hosts_per_execution.max(1)),
        execution: execution.clone(),
    });

    // A run taken over while cancelling goes straight to converging.
    let mut cancel_seen = shared.status() == ExecutionStatus::Cancelling;
    if cancel_seen {
        shared.cancel.cancel();
    }

    let mut tasks = JoinSet::new();
    for h in hosts
        .into_iter()
        .filter(|h| h.status == HostStatus::Pending)
    {
        tasks.spawn(run_host(shared.clone(), h.index, h.target));
    }

    let far = std::time::Duration::from_secs(86_400 * 365);
    let converge = tokio::time::sleep(far);
    tokio::pin!(converge);
    if cancel_seen {
        converge
            .as_mut()
            .reset(deadline_instant(&shared, &execution));
    }
    let mut poll = tokio::time::interval(inner.config.cancel_poll);
    let mut renew = tokio::time::interval(inner.config.lease / 3);
    renew.tick().await;
    poll.tick().await;

    while !shared.status().is_final() {
        tokio::select! {
            joined = tasks.join_next(), if !tasks.is_empty() => {
                if let Some(Err(e)) = joined {
                    tracing::error!(execution = %id, error = %e, "a host task panicked");
                }
            }
            event = live.recv(), if !cancel_seen => {
                match event {
                    Ok(LiveEvent::Status { status: ExecutionStatus::Cancelling, .. }) => {
                        cancel_seen = observe_cancel(&shared, &mut execution).await;
                        if cancel_seen {
                            converge.as_mut().reset(deadline_instant(&shared, &execution));
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => live = inner.bus.subscribe(id).await,
                    _ => {}
                }
            }
            _ = poll.tick(), if !cancel_seen => {
                cancel_seen = observe_cancel(&shared, &mut execution).await;
                if cancel_seen {
                    converge.as_mut().reset(deadline_instant(&shared, &execution));
                }
            }
            _ = renew.tick() => {
                let now = inner.clock.now();
                let lease = Lease {
                    node: inner.config.node_id.clone(),
                    now,
                    until: now + chrono_duration(inner.config.lease),
                };
                if let Err(e) = inner.store.renew_lease(id, &lease).await {
                    if matches!(e, Error::Conflict { .. }) {
                        // Another node owns it now: stop our hosts, write nothing more.
                        shared.cancel.cancel();
                        tasks.abort_all();
                        drop(shared);
                        writer.finish().await;
                        return Err(e);
                    }
                    tracing::warn!(execution = %id, error = %e, "renewing the lease failed");
                }
            }
            () = &mut converge, if cancel_seen => {
                let now = inner.clock.now();
                let deadline = inner.cancel_deadline_or(&execution, now);
                let applied = shared.apply(Event::Tick { now: now.max(deadline) })?;
                shared.record_forced(&applied, "cancelled: the host did not report before the cancel deadline").await;
                tasks.abort_all();
            }
        }
        if tasks.is_empty() && !shared.status().is_final() {
            // Every host task is done but the machine is not final: only possible when hosts
            // were left in a state no task owns (a lost node's hosts). Force the end.
            let applied = shared.apply(Event::TimedOut)?;
            shared
                .record_forced(&applied, "no result: the host was left without a runner")
                .await;
        }
    }
    while tasks.join_next().await.is_some() {}

    let final_status = shared.status();
    drop(shared);
    writer.finish().await;
    finish(&inner, id, final_status, cancel_seen).await
}

/// Reads the stored status; when it is `cancelling`, applies the cancel here: hosts that did
/// not start are cancelled and running ones are told to stop. Returns whether a cancel is
/// now in progress. A store that cannot be read is not a reason to abandon running hosts:
/// the failure is logged and the next poll tries again.
async fn observe_cancel(shared: &Shared, execution: &mut Execution) -> bool {
    let stored = match shared
        .inner
        .store
        .get_execution(&TeamScope::All, execution.id)
        .await
    {
        Ok(stored) => stored,
        Err(e) => {
            tracing::warn!(execution = %execution.id, error = %e, "checking for a cancel failed");
            return false;
        }
    };
    if stored.status != ExecutionStatus::Cancelling {
        return false;
    }
    *execution = stored;
    let deadline = shared
        .inner
        .cancel_deadline_or(execution, shared.inner.clock.now());
    // A refusal means the machine already moved on (every host had reported); the cancel
    // then has nothing left to stop.
    if let Ok(applied) = shared.apply(Event::Cancel { deadline }) {
        shared
            .record_forced(&applied, "cancelled before it started")
            .await;
    }
    shared.cancel.cancel();
    true
}

fn deadline_instant(shared: &Shared, execution: &Execution) -> tokio::time::Instant {
    let now = shared.inner.clock.now();
    let deadline = shared.inner.cancel_deadline_or(execution, now);
    let left = (deadline - now).to_std().unwrap_or_default();
    tokio::time::Instant::now() + left
}

/// Runs one host: waits for capacity, connects, runs the task, records the result.
async fn run_host(shared: Arc<Shared>, index: u32, target: TargetSnapshot) {
    let cancel = shared.cancel.clone();
    let _mine = tokio::select! {
        p = shared.per_execution.acquire() => match p { Ok(p) => p, Err(_) => return },
        () = cancel.cancelled() => return,
    };
    let _global = tokio::select! {
        p = shared.inner.global.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        () = cancel.cancelled() => return,
    };
    if cancel.is_cancelled() || shared.apply(Event::HostStarted { host: index }).is_err() {
        return;
    }
    let started = shared.inner.clock.now();
    shared
        .writer
        .send(Write::Host(HostRunUpdate::started(index, started)))
        .await;

    let outcome = match &shared.task {
        Err(reason) => RunOutcome::from_error(TransportError::unsupported(reason.clone())),
        Ok(task) => match shared
            .inner
            .connector
            .connect(&shared.execution, &target)
            .await
        {
            Err(e) => RunOutcome::from_error(e),
            Ok((transport, host)) => {
                let (tx, mut rx) = mpsc::channel::<TransportEvent>(64);
                let writer = shared.writer.clone();
                let clock = shared.inner.clock.clone();
                let forward = async move {
                    while let Some(event) = rx.recv().await {
                        if let TransportEvent::Output { stream, data, .. } = event {
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
                let (result, ()) = tokio::join!(transport.run(&host, task, tx, &cancel), forward);
                result.unwrap_or_else(RunOutcome::from_error)
            }
        },
    };

    let finished = shared.inner.clock.now();
    let status: HostStatus = outcome.outcome.into();
    if shared
        .apply(Event::HostFinished {
            host: index,
            outcome: outcome.outcome,
        })
        .is_ok()
    {
        let mut u = HostRunUpdate::finished(index, status, outcome.exit_code, finished);
        u.error = outcome
            .error
            .filter(|_| status != HostStatus::Success)
            .map(|e| e.to_string());
        shared.writer.send(Write::Host(u)).await;
    }
}

/// Writes the final status by compare-and-set with its outbox entries, then tells the bus.
async fn finish(
    inner: &Inner,
    id: ExecutionId,
    final_status: ExecutionStatus,
    cancel_seen: bool,
) -> Result<ExecutionStatus> {
    for _ in 0..3 {
        let now = inner.clock.now();
        let stored = inner.store.get_execution(&TeamScope::All, id).await?;
        if stored.status.is_final() {
            return Ok(stored.status);
        }
        // A cancel the runner never saw (it raced the last result) still wins: the store
        // says cancelling, so the only move left is to cancelled.
        let to = if stored.status == ExecutionStatus::Cancelling {
            ExecutionStatus::Cancelled
        } else {
            debug_assert!(!cancel_seen || final_status == ExecutionStatus::Cancelled);
            final_status
        };
        let mut done = stored.clone();
        done.status = to;
        done.finished_at = Some(now);
        let transition =
            Transition::new(stored.status, to, now).with_outbox(final_outbox(&done, now));
        match inner.store.transition(id, &transition).await {
            Ok(e) => {
                inner
                    .bus
                    .publish(LiveEvent::Status {
                        execution_id: id,
                        status: e.status,
                    })
                    .await;
                return Ok(e.status);
            }
            Err(Error::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Err(Error::conflict(format!(
        "execution {id} kept changing status while being finished"
    )))
}
