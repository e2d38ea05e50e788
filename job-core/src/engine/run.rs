//! Running one claimed execution to its end.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Semaphore, broadcast};
use tokio::task::JoinSet;

use super::host::{HostStart, INTERRUPTED, run_host};
use super::shared::Shared;
use super::writer::Writer;
use super::{Inner, chrono_duration, outbox::final_outbox, task::task_spec};
use crate::bus::LiveEvent;
use crate::ids::ExecutionId;
use crate::model::{Execution, RollingMode, TargetSnapshot};
use crate::status::{Event, ExecutionMachine, ExecutionStatus, HostOutcome, HostStatus};
use crate::store::{ClaimedExecution, Lease, StoreExt, TeamScope, Transition};
use crate::transport::Cancel;
use crate::{Error, Result};

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
    if execution.paused_at.is_some() && execution.status == ExecutionStatus::Running {
        // Paused by its rolling plan: it waits for a resume or a cancel, not for a node.
        return Ok(execution.status);
    }
    // Follow the bus first, so a cancel published from now on is not missed.
    let mut live = inner.bus.subscribe(id).await;
    let hosts = inner.store.all_host_runs(&TeamScope::All, id).await?;
    let now = inner.clock.now();

    // Hosts a control node that stopped was running: their transport is asked to re-attach
    // (agents run on without us); where it cannot, they are recorded as interrupted.
    let resumed: Vec<(u32, HostStart)> = if claimed.taken_over {
        hosts
            .iter()
            .filter(|h| h.status == HostStatus::Running)
            .map(|h| {
                let ends =
                    h.started_at.unwrap_or(now) + chrono_duration(execution.timeout.as_duration());
                let time_left = (ends - now)
                    .to_std()
                    .unwrap_or_default()
                    .max(std::time::Duration::from_secs(1));
                let start = HostStart::Resume {
                    stdout: h.stdout_bytes,
                    stderr: h.stderr_bytes,
                    time_left,
                };
                (h.index, start)
            })
            .collect()
    } else {
        Vec::new()
    };

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
        interrupted: AtomicBool::new(false),
        writer: writer.handle(),
        per_execution: Semaphore::new(inner.config.max_hosts_per_execution.max(1)),
        sources: Default::default(),
        execution: execution.clone(),
    });
    let targets: Vec<TargetSnapshot> = hosts.into_iter().map(|h| h.target).collect();
    let mut tasks = JoinSet::new();

    // A run taken over while cancelling goes straight to converging: the hosts that never
    // started are cancelled now, and nothing new starts.
    let mut cancel_seen = shared.status() == ExecutionStatus::Cancelling;
    let mut batch = None;
    // Taken-over hosts are re-attached either way: when cancelling, the resumed run carries
    // the cancel to where the script still runs.
    for (index, start) in resumed {
        if let Some(target) = targets.get(index as usize) {
            tasks.spawn(run_host(shared.clone(), index, target.clone(), start));
        }
    }
    if cancel_seen {
        shared.cancel.cancel();
        shared
            .end_hosts(
                |s| s == HostStatus::Pending,
                HostOutcome::Cancelled,
                "cancelled before it started",
            )
            .await;
    } else {
        batch = start_batch(&shared, &targets, &mut tasks);
    }

    let far = std::time::Duration::from_secs(86_400 * 365);
    let converge = tokio::time::sleep(far);
    tokio::pin!(converge);
    if cancel_seen {
        converge
            .as_mut()
            .reset(deadline_instant(&shared, &execution));
    }
    // After an interrupt, how long the transports get to kill and report their hosts.
    let kill_wait = tokio::time::sleep(far);
    tokio::pin!(kill_wait);
    let mut poll = tokio::time::interval(inner.config.cancel_poll);
    let mut renew = tokio::time::interval(inner.config.lease / 3);
    renew.tick().await;
    poll.tick().await;
    let mut paused = false;

    while !shared.status().is_final() {
        tokio::select! {
            joined = tasks.join_next(), if !tasks.is_empty() => {
                if let Some(Err(e)) = joined && !e.is_cancelled() {
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
            () = inner.interrupt.cancelled(), if !shared.is_interrupted() => {
                // This node shuts down and the grace period is over: kill what runs here.
                shared.interrupted.store(true, Ordering::SeqCst);
                shared.cancel.cancel();
                kill_wait.as_mut().reset(tokio::time::Instant::now() + KILL_WAIT);
            }
            () = &mut kill_wait, if shared.is_interrupted() => {
                // Transports that did not report in time: stop waiting for them.
                tasks.abort_all();
                kill_wait.as_mut().reset(tokio::time::Instant::now() + far);
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
        if !tasks.is_empty() || shared.status().is_final() {
            continue;
        }
        // Every host task is done but the execution is not final.
        let statuses = shared.hosts();
        if shared.is_interrupted() {
            // Shutting down: what did not end is recorded as interrupted.
            let (outcome, error) = if shared.status() == ExecutionStatus::Cancelling {
                (
                    HostOutcome::Cancelled,
                    "cancelled: the control node shut down before the host reported",
                )
            } else {
                (HostOutcome::Failed, INTERRUPTED)
            };
            shared.end_hosts(|s| !s.is_final(), outcome, error).await;
        } else if shared.status() == ExecutionStatus::Running
            && !statuses.contains(&HostStatus::Running)
            && statuses.contains(&HostStatus::Pending)
        {
            // The batch is over and hosts wait for the next one.
            let failed = batch.clone().is_some_and(|mut range| {
                range.any(|i| statuses.get(i as usize) != Some(&HostStatus::Success))
            });
            let pause = failed
                && execution
                    .rolling
                    .is_some_and(|r| r.mode == RollingMode::PauseOnFailure);
            if !pause {
                batch = start_batch(&shared, &targets, &mut tasks);
                continue;
            }
            paused = true;
            break;
        } else {
            // Only possible when hosts were left in a state no task owns (a lost node's
            // hosts). Force the end.
            let applied = shared.apply(Event::TimedOut)?;
            shared
                .record_forced(&applied, "no result: the host was left without a runner")
                .await;
        }
    }
    while tasks.join_next().await.is_some() {}

    let final_status = shared.status();
    drop(shared);
    // Every host result is stored before the execution says it paused.
    writer.finish().await;
    if paused {
        return pause(&inner, id).await;
    }
    finish(&inner, id, final_status, cancel_seen).await
}

/// Marks the execution paused and tells the bus. A cancel that got there first wins: the
/// execution is left `cancelling`, and once its lease is released the next claim converges
/// it.
async fn pause(inner: &Inner, id: ExecutionId) -> Result<ExecutionStatus> {
    match inner.store.pause_execution(id, inner.clock.now()).await {
        Ok(e) => {
            inner
                .bus
                .publish(LiveEvent::Paused { execution_id: id })
                .await;
            Ok(e.status)
        }
        Err(Error::Conflict { .. }) => {
            let now = inner.store.get_execution(&TeamScope::All, id).await?;
            tracing::info!(execution = %id, status = %now.status, "not paused: the execution moved on");
            Ok(now.status)
        }
        Err(e) => Err(e),
    }
}

/// How long transports get to kill and report their hosts after an interrupt.
const KILL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Starts the batch holding the first host that has not started: with a rolling plan, its
/// batch of hosts; without one, every host. Returns the batch's host indexes (`None` when
/// no host is left to start).
fn start_batch(
    shared: &Arc<Shared>,
    targets: &[TargetSnapshot],
    tasks: &mut JoinSet<()>,
) -> Option<std::ops::Range<u32>> {
    let statuses = shared.hosts();
    let total = statuses.len() as u32;
    let first = statuses.iter().position(|s| *s == HostStatus::Pending)? as u32;
    let range = match shared.execution.rolling {
        Some(plan) => plan.batch_hosts(plan.batch_of(first, total), total),
        None => 0..total,
    };
    for i in range.clone() {
        if statuses.get(i as usize) == Some(&HostStatus::Pending)
            && let Some(target) = targets.get(i as usize)
        {
            tasks.spawn(run_host(
                shared.clone(),
                i,
                target.clone(),
                HostStart::Fresh,
            ));
        }
    }
    Some(range)
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
