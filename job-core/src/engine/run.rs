//! Running one claimed execution to its end.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Semaphore, broadcast};
use tokio::task::JoinSet;
use tokio::time::Sleep;

use super::host::{HostStart, INTERRUPTED, run_host};
use super::shared::Shared;
use super::writer::{Writer, WriterHandle};
use super::{Inner, chrono_duration, outbox::final_outbox, task::task_spec};
use crate::bus::LiveEvent;
use crate::ids::ExecutionId;
use crate::model::{Execution, HostRun, RollingMode, TargetSnapshot};
use crate::status::{
    Event, ExecutionMachine, ExecutionStatus, HostCounters, HostOutcome, HostStatus,
};
use crate::store::{ClaimedExecution, HostRunUpdate, Lease, StoreExt, TeamScope, Transition};
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

/// The steps of a run: find the hosts to re-attach ([`hosts_to_reattach`]), restore the
/// status machine and start the execution ([`mark_running`]), start the hosts
/// ([`HostsRun::fan_out`]), follow them to the end ([`HostsRun::watch`]), then store every
/// result and write the final status ([`finish`]) or the pause ([`pause`]).
async fn run_inner(inner: Arc<Inner>, claimed: ClaimedExecution) -> Result<ExecutionStatus> {
    let mut execution = claimed.execution;
    let id = execution.id;
    if execution.paused_at.is_some() && execution.status == ExecutionStatus::Running {
        // Paused by its rolling plan: it waits for a resume or a cancel, not for a node.
        return Ok(execution.status);
    }
    // Follow the bus first, so a cancel published from now on is not missed.
    let live = inner.bus.subscribe(id).await;
    let hosts = inner.store.all_host_runs(&TeamScope::All, id).await?;
    let now = inner.clock.now();
    let resumed = if claimed.taken_over {
        hosts_to_reattach(&execution, &hosts, now)
    } else {
        Vec::new()
    };
    let statuses: Vec<HostStatus> = hosts.iter().map(|h| h.status).collect();
    let Some(machine) = mark_running(&inner, &mut execution, statuses, now).await? else {
        return Ok(execution.status);
    };

    let writer = Writer::spawn(
        inner.store.clone(),
        inner.bus.clone(),
        id,
        inner.config.output_cap_bytes,
    );
    let targets = hosts.into_iter().map(|h| h.target).collect();
    let mut run = HostsRun::fan_out(
        inner.clone(),
        (execution, machine),
        targets,
        resumed,
        live,
        writer.handle(),
    )
    .await;
    let ending = run.watch().await?;
    if let Ending::LeaseLost(e) = ending {
        // Another node owns it now: write nothing more.
        drop(run);
        writer.finish().await;
        return Err(e);
    }
    while run.tasks.join_next().await.is_some() {}
    let final_status = run.shared.status();
    let cancel_seen = run.cancel_seen;
    let counters = run
        .shared
        .machine
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .counters();
    drop(run);
    // Every host result is stored before the execution says it paused.
    let unwritten = writer.finish().await;
    if let Ending::Paused = ending {
        return pause(&inner, id).await;
    }
    let results = HostResults {
        unwritten,
        counters,
    };
    finish(&inner, id, final_status, cancel_seen, results).await
}

/// The hosts a control node that stopped was running, with how each is re-attached: their
/// transport is asked to resume the run (agents run on without us) with what is left of
/// the timeout; where it cannot, they are recorded as interrupted.
fn hosts_to_reattach(
    execution: &Execution,
    hosts: &[HostRun],
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<(u32, HostStart)> {
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
}

/// Restores the execution's status machine from its stored status and host statuses, and
/// moves a pending execution to `running` (by compare-and-set, telling the bus), updating
/// `execution` to what is stored. `None` when there is nothing to run: it ended, or went back
/// to pending, meanwhile.
async fn mark_running(
    inner: &Inner,
    execution: &mut Execution,
    statuses: Vec<HostStatus>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<ExecutionMachine>> {
    let id = execution.id;
    let deadline = inner.cancel_deadline(execution);
    let mut machine = ExecutionMachine::restore(execution.status, statuses.clone(), deadline)?;
    if execution.status == ExecutionStatus::Pending {
        let start = Transition::new(ExecutionStatus::Pending, ExecutionStatus::Running, now);
        match inner.store.transition(id, &start).await {
            Ok(stored) => {
                *execution = stored;
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
                *execution = inner.store.get_execution(&TeamScope::All, id).await?;
                if execution.status.is_final() || execution.status == ExecutionStatus::Pending {
                    return Ok(None);
                }
                machine = ExecutionMachine::restore(
                    execution.status,
                    statuses,
                    inner.cancel_deadline(execution),
                )?;
            }
            Err(e) => return Err(e),
        }
    }
    if execution.status.is_final() {
        return Ok(None);
    }
    Ok(Some(machine))
}

/// How watching an execution's hosts ended.
enum Ending {
    /// The status machine reached a final status.
    Final,
    /// Its rolling plan pauses it after a failing batch.
    Paused,
    /// Another node took the lease: the hosts here were stopped.
    LeaseLost(Error),
}

/// A timer that does not fire (a year away), armed later.
const FAR: std::time::Duration = std::time::Duration::from_secs(86_400 * 365);

/// An execution whose hosts run on this node: what its runner watches until it ends.
struct HostsRun {
    inner: Arc<Inner>,
    execution: Execution,
    shared: Arc<Shared>,
    targets: Vec<TargetSnapshot>,
    tasks: JoinSet<()>,
    live: broadcast::Receiver<LiveEvent>,
    /// A cancel is being applied: nothing new starts and the hosts converge to `cancelled`.
    cancel_seen: bool,
    /// The hosts of the rolling batch started last.
    batch: Option<std::ops::Range<u32>>,
    /// When hosts still unreported after a cancel are forced to `cancelled`.
    converge: Pin<Box<Sleep>>,
    /// After an interrupt, how long the transports get to kill and report their hosts.
    kill_wait: Pin<Box<Sleep>>,
}

impl HostsRun {
    /// Starts the hosts: re-attaches the taken-over ones, then starts the first batch, or,
    /// for a run taken over while cancelling, cancels the hosts that never started.
    async fn fan_out(
        inner: Arc<Inner>,
        (execution, machine): (Execution, ExecutionMachine),
        targets: Vec<TargetSnapshot>,
        resumed: Vec<(u32, HostStart)>,
        live: broadcast::Receiver<LiveEvent>,
        writer: WriterHandle,
    ) -> Self {
        let shared = Arc::new(Shared {
            task: task_spec(&execution, inner.config.output_cap_bytes).map_err(|e| e.to_string()),
            inner: inner.clone(),
            machine: Mutex::new(machine),
            cancel: Cancel::new(),
            interrupted: AtomicBool::new(false),
            writer,
            per_execution: Semaphore::new(inner.config.max_hosts_per_execution.max(1)),
            sources: Default::default(),
            execution: execution.clone(),
        });
        let mut run = Self {
            inner,
            execution,
            cancel_seen: shared.status() == ExecutionStatus::Cancelling,
            shared,
            targets,
            tasks: JoinSet::new(),
            live,
            batch: None,
            converge: Box::pin(tokio::time::sleep(FAR)),
            kill_wait: Box::pin(tokio::time::sleep(FAR)),
        };
        // Taken-over hosts are re-attached either way: when cancelling, the resumed run
        // carries the cancel to where the script still runs.
        for (index, start) in resumed {
            if let Some(target) = run.targets.get(index as usize) {
                let host = run_host(run.shared.clone(), index, target.clone(), start);
                run.tasks.spawn(host);
            }
        }
        if run.cancel_seen {
            // Taken over while cancelling: straight to converging, nothing new starts.
            run.shared.cancel.cancel();
            run.shared
                .end_hosts(
                    |s| s == HostStatus::Pending,
                    HostOutcome::Cancelled,
                    "cancelled before it started",
                )
                .await;
            run.converge_by_deadline();
        } else {
            run.batch = start_batch(&run.shared, &run.targets, &mut run.tasks);
        }
        run
    }

    /// Follows the hosts, cancels, the lease and a shutdown until the execution is final,
    /// pauses, or is lost to another node.
    async fn watch(&mut self) -> Result<Ending> {
        let mut poll = tokio::time::interval(self.inner.config.cancel_poll);
        let mut renew = tokio::time::interval(self.inner.config.lease / 3);
        renew.tick().await;
        poll.tick().await;
        while !self.shared.status().is_final() {
            tokio::select! {
                joined = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    if let Some(Err(e)) = joined && !e.is_cancelled() {
                        tracing::error!(execution = %self.execution.id, error = %e, "a host task panicked");
                    }
                }
                event = self.live.recv(), if !self.cancel_seen => match event {
                    Ok(LiveEvent::Status { status: ExecutionStatus::Cancelling, .. }) => {
                        self.check_cancel().await;
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        self.live = self.inner.bus.subscribe(self.execution.id).await;
                    }
                    _ => {}
                },
                _ = poll.tick(), if !self.cancel_seen => self.check_cancel().await,
                () = self.inner.interrupt.cancelled(), if !self.shared.is_interrupted() => {
                    // This node shuts down and the grace period is over: kill what runs here.
                    self.shared.interrupted.store(true, Ordering::SeqCst);
                    self.shared.cancel.cancel();
                    self.kill_wait.as_mut().reset(tokio::time::Instant::now() + KILL_WAIT);
                }
                () = &mut self.kill_wait, if self.shared.is_interrupted() => {
                    // Transports that did not report in time: stop waiting for them.
                    self.tasks.abort_all();
                    self.kill_wait.as_mut().reset(tokio::time::Instant::now() + FAR);
                }
                _ = renew.tick() => {
                    if let Err(e) = self.renew_lease().await {
                        return Ok(Ending::LeaseLost(e));
                    }
                }
                () = &mut self.converge, if self.cancel_seen => self.force_cancelled().await?,
            }
            if !self.tasks.is_empty() || self.shared.status().is_final() {
                continue;
            }
            if let Some(ending) = self.every_host_task_ended().await? {
                return Ok(ending);
            }
        }
        Ok(Ending::Final)
    }

    /// Reads the stored status for a cancel (see [`observe_cancel`]); once one is seen, the
    /// hosts get until the cancel deadline to report.
    async fn check_cancel(&mut self) {
        self.cancel_seen = observe_cancel(&self.shared, &mut self.execution).await;
        if self.cancel_seen {
            self.converge_by_deadline();
        }
    }

    fn converge_by_deadline(&mut self) {
        let at = deadline_instant(&self.shared, &self.execution);
        self.converge.as_mut().reset(at);
    }

    /// Renews the lease. Losing it to another node stops the hosts here and is returned;
    /// another failure is logged and the next renewal tries again.
    async fn renew_lease(&mut self) -> Result<()> {
        let now = self.inner.clock.now();
        let lease = Lease {
            node: self.inner.config.node_id.clone(),
            now,
            until: now + chrono_duration(self.inner.config.lease),
        };
        match self
            .inner
            .store
            .renew_lease(self.execution.id, &lease)
            .await
        {
            Err(e) if matches!(e, Error::Conflict { .. }) => {
                self.shared.cancel.cancel();
                self.tasks.abort_all();
                Err(e)
            }
            Err(e) => {
                tracing::warn!(execution = %self.execution.id, error = %e, "renewing the lease failed");
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }

    /// The cancel deadline passed: hosts that did not report are forced to `cancelled`.
    async fn force_cancelled(&mut self) -> Result<()> {
        let now = self.inner.clock.now();
        let deadline = self.inner.cancel_deadline_or(&self.execution, now);
        let applied = self.shared.apply(Event::Tick {
            now: now.max(deadline),
        })?;
        self.shared
            .record_forced(
                &applied,
                "cancelled: the host did not report before the cancel deadline",
            )
            .await;
        self.tasks.abort_all();
        Ok(())
    }

    /// Every host task is done but the execution is not final: records what a shutdown cut
    /// short, starts the next rolling batch or pauses, or forces the end of hosts that no
    /// task owns. Returns how the run ends, if it ends here.
    async fn every_host_task_ended(&mut self) -> Result<Option<Ending>> {
        let statuses = self.shared.hosts();
        if self.shared.is_interrupted() {
            // Shutting down: what did not end is recorded as interrupted.
            let (outcome, error) = if self.shared.status() == ExecutionStatus::Cancelling {
                (
                    HostOutcome::Cancelled,
                    "cancelled: the control node shut down before the host reported",
                )
            } else {
                (HostOutcome::Failed, INTERRUPTED)
            };
            self.shared
                .end_hosts(|s| !s.is_final(), outcome, error)
                .await;
        } else if self.shared.status() == ExecutionStatus::Running
            && !statuses.contains(&HostStatus::Running)
            && statuses.contains(&HostStatus::Pending)
        {
            // The batch is over and hosts wait for the next one.
            let failed = self.batch.clone().is_some_and(|mut range| {
                range.any(|i| statuses.get(i as usize) != Some(&HostStatus::Success))
            });
            let pause = failed
                && self
                    .execution
                    .rolling
                    .is_some_and(|r| r.mode == RollingMode::PauseOnFailure);
            if pause {
                return Ok(Some(Ending::Paused));
            }
            self.batch = start_batch(&self.shared, &self.targets, &mut self.tasks);
        } else {
            // Only possible when hosts were left in a state no task owns (a lost node's
            // hosts). Force the end.
            let applied = self.shared.apply(Event::TimedOut)?;
            self.shared
                .record_forced(&applied, "no result: the host was left without a runner")
                .await;
        }
        Ok(None)
    }
}

/// The host results a run ends with: those the writer could not store (the store was
/// unavailable through its retries), and the counters of every host.
struct HostResults {
    unwritten: Vec<HostRunUpdate>,
    counters: HostCounters,
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

/// Writes the final status by compare-and-set with its outbox entries and the host results
/// not stored yet, then tells the bus.
///
/// A store that is unavailable is tried again, with growing pauses, for a third of the
/// lease (the lease was renewed at most that long ago, so it still holds); after that the
/// error is returned, the execution stays `running` and the next claim after its lease
/// finishes it.
async fn finish(
    inner: &Inner,
    id: ExecutionId,
    final_status: ExecutionStatus,
    cancel_seen: bool,
    results: HostResults,
) -> Result<ExecutionStatus> {
    let give_up = tokio::time::Instant::now() + inner.config.lease / 3;
    let mut wait = std::time::Duration::from_millis(20);
    let mut conflicts = 0;
    loop {
        match finish_once(inner, id, final_status, cancel_seen, &results).await {
            Ok(Some(status)) => return Ok(status),
            Ok(None) => {
                conflicts += 1;
                if conflicts == 3 {
                    return Err(Error::conflict(format!(
                        "execution {id} kept changing status while being finished"
                    )));
                }
            }
            Err(Error::Unavailable { reason, .. })
                if tokio::time::Instant::now() + wait < give_up =>
            {
                tracing::warn!(execution = %id, %reason, "writing the final status failed; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_secs(1));
            }
            Err(e) => return Err(e),
        }
    }
}

/// One try of [`finish`]: `None` when the stored status changed under it.
async fn finish_once(
    inner: &Inner,
    id: ExecutionId,
    final_status: ExecutionStatus,
    cancel_seen: bool,
    results: &HostResults,
) -> Result<Option<ExecutionStatus>> {
    let now = inner.clock.now();
    let stored = inner.store.get_execution(&TeamScope::All, id).await?;
    if stored.status.is_final() {
        return Ok(Some(stored.status));
    }
    // A cancel the runner never saw (it raced the last result) still wins: the store says
    // cancelling, so the only move left is to cancelled.
    let to = if stored.status == ExecutionStatus::Cancelling {
        ExecutionStatus::Cancelled
    } else {
        debug_assert!(!cancel_seen || final_status == ExecutionStatus::Cancelled);
        final_status
    };
    let mut done = stored.clone();
    done.status = to;
    done.finished_at = Some(now);
    if !results.unwritten.is_empty() {
        // The stored counters miss those results; the callback tells the true ones.
        done.counters = results.counters;
    }
    let transition = Transition::new(stored.status, to, now)
        .with_hosts(results.unwritten.clone())
        .with_outbox(final_outbox(&done, now));
    match inner.store.transition(id, &transition).await {
        Ok(e) => {
            inner
                .bus
                .publish(LiveEvent::Status {
                    execution_id: id,
                    status: e.status,
                })
                .await;
            Ok(Some(e.status))
        }
        Err(Error::Conflict { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
