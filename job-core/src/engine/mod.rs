//! The engine: claims pending executions and runs them on their hosts; see docs/engine.md.
//!
//! - **Claims** pending executions with a lease in the store, so in a cluster each runs on one
//!   node; renews the lease while running; resumes executions whose node's lease expired.
//!   A launch wakes it at once through the bus ([`EventBus::notify_pending`]); polling
//!   every `claim_interval` is the fallback.
//! - **Fans out** each execution's hosts as small tasks, bounded per execution and globally
//!   (no thread per host), through the [`HostConnector`] that picks each host's transport.
//! - **Streams** output to the store in adaptive batches and, with its stored sequence
//!   numbers, to the [`EventBus`].
//! - **Cancels for real**: a cancel (seen on the bus, or by polling the store) stops hosts
//!   that have not started, makes the transports kill running ones, and converges to
//!   `cancelled` when they report or at the convergence deadline.
//! - **Finishes** through the status machine: host results aggregate into the final status,
//!   written by compare-and-set together with the callback's outbox entry.
//! - **Rolls**: an execution with a [`Rolling`](crate::model::Rolling) plan runs its hosts
//!   batch by batch, and may pause after a failing batch until [`resume_execution`].
//! - **Shuts down gracefully** ([`Engine::run_with_grace`]) and, restarted under the same
//!   node id, **recovers its own executions** at once ([`Engine::recover_own_executions`]).

mod cancel;
mod connector;
mod distribute;
mod host;
mod outbox;
mod resume;
mod run;
mod shared;
mod sources;
mod task;
mod writer;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::Result;
use crate::bus::EventBus;
use crate::clock::Clock;
use crate::status::ExecutionStatus;
use crate::store::{ClaimedExecution, Lease, Store};
use crate::transport::Cancel;

pub use cancel::request_cancel;
pub use connector::{HostConnector, LocalConnector};
pub use outbox::callback_payload;
pub use resume::resume_execution;

/// Engine settings. The defaults suit one machine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This node's id in leases (stable for the process).
    pub node_id: String,
    /// Hosts running at once on this node, across executions.
    pub max_hosts_in_flight: usize,
    /// Hosts running at once within one execution.
    pub max_hosts_per_execution: usize,
    /// How long a claim holds without renewal.
    pub lease: Duration,
    /// How often the engine looks for pending executions when nothing wakes it: a launch
    /// signalled on the bus ([`EventBus::notify_pending`]) wakes it at once, so this is the
    /// fallback for signals that never arrived and for leases that expired.
    pub claim_interval: Duration,
    /// How many executions one claim takes at most.
    pub claim_batch: u32,
    /// How often a running execution checks the store for a cancel it did not hear of.
    pub cancel_poll: Duration,
    /// After a cancel, how long hosts get to report before they are forced to `cancelled`.
    pub cancel_grace: Duration,
    /// Output stored per host; the rest is counted, marked as truncated, not stored.
    pub output_cap_bytes: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            node_id: format!("node-{}", crate::ids::DeliveryId::new()),
            max_hosts_in_flight: 1000,
            max_hosts_per_execution: 500,
            lease: Duration::from_secs(30),
            claim_interval: Duration::from_millis(100),
            claim_batch: 16,
            cancel_poll: Duration::from_secs(1),
            cancel_grace: Duration::from_secs(30),
            output_cap_bytes: 1024 * 1024,
        }
    }
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) connector: Arc<dyn HostConnector>,
    pub(crate) bus: Arc<dyn EventBus>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: EngineConfig,
    pub(crate) global: Arc<Semaphore>,
    /// Fired when a graceful shutdown's grace period is over: every run kills its hosts and
    /// records them as interrupted.
    pub(crate) interrupt: Cancel,
}

/// Runs executions. Cheap to clone; clones share one node's capacity.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine over `store`, reaching hosts through `connector`, publishing to `bus`.
    pub fn new(
        store: Arc<dyn Store>,
        connector: Arc<dyn HostConnector>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
        config: EngineConfig,
    ) -> Self {
        let global = Arc::new(Semaphore::new(config.max_hosts_in_flight.max(1)));
        Self {
            inner: Arc::new(Inner {
                store,
                connector,
                bus,
                clock,
                config,
                global,
                interrupt: Cancel::new(),
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Claims up to one batch of executions (pending, or left by a node whose lease
    /// expired). The caller runs each with [`Engine::run_claimed`].
    pub async fn claim(&self) -> Result<Vec<ClaimedExecution>> {
        let now = self.inner.clock.now();
        let lease = Lease {
            node: self.inner.config.node_id.clone(),
            now,
            until: now + chrono_duration(self.inner.config.lease),
        };
        self.inner
            .store
            .claim_executions(&lease, self.inner.config.claim_batch)
            .await
    }

    /// Runs a claimed execution to its final status, or until its lease is lost, or until
    /// its rolling plan pauses it (it then returns `running` and lets the execution go).
    pub async fn run_claimed(&self, claimed: ClaimedExecution) -> Result<ExecutionStatus> {
        run::run_execution(self.inner.clone(), claimed).await
    }

    /// Claims and runs executions until `shutdown` completes; then stops claiming and waits
    /// for the executions it runs to finish, however long they take.
    ///
    /// It starts by taking over its own executions: see [`Engine::recover_own_executions`].
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        self.serve(shutdown, None).await;
    }

    /// Like [`Engine::run`] until `shutdown` completes; then stops claiming and lets the
    /// executions it runs go on for `grace`. What is still running then is interrupted: the
    /// transports kill the processes, the hosts (and the hosts that had not started) are
    /// recorded `failed` with "interrupted: the control node shut down", each execution
    /// finishes through the status machine (its callback enqueued as usual) and its lease is
    /// released. Returns when all of that is recorded.
    ///
    /// The interrupt is final: an engine interrupted once interrupts whatever it runs from
    /// then on, so build a new one to serve again.
    pub async fn run_with_grace(&self, shutdown: impl Future<Output = ()>, grace: Duration) {
        self.serve(shutdown, Some(grace)).await;
    }

    /// Releases the leases this node's id still holds on unfinished executions, so the next
    /// claim takes them over at once instead of after their lease expires. A node that
    /// restarts under the same `node_id` after a crash (kill -9, power loss) thereby
    /// recovers its executions: hosts it was running are re-attached through
    /// [`crate::transport::Transport::resume`] (agent runs go on), or, where the transport
    /// cannot, recorded `failed` ("interrupted: the control node running this host
    /// stopped"); the others run. [`Engine::run`] and
    /// [`Engine::run_with_grace`] call it first; call it yourself only when you drive
    /// [`Engine::claim`] directly. Returns how many executions were released.
    ///
    /// Two live processes must never share a `node_id`: this would take executions away
    /// from the other one.
    pub async fn recover_own_executions(&self) -> Result<u64> {
        self.inner
            .store
            .release_node_leases(&self.inner.config.node_id)
            .await
    }

    async fn serve(&self, shutdown: impl Future<Output = ()>, grace: Option<Duration>) {
        match self.recover_own_executions().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                node = %self.inner.config.node_id,
                executions = n,
                "taking over this node's executions left by its previous run"
            ),
            Err(e) => tracing::warn!(error = %e, "releasing this node's old leases failed"),
        }
        tokio::pin!(shutdown);
        // Launches wake the loop at once; the interval is the fallback (a signal lost on
        // the way, an expired lease of another node, a wake while there was no room).
        let mut pending = self.inner.bus.pending_notifications().await;
        let mut running: JoinSet<()> = JoinSet::new();
        loop {
            while running.try_join_next().is_some() {}
            let has_room = self.inner.global.available_permits() > 0;
            if has_room {
                match self.claim().await {
                    Ok(claimed) => {
                        for c in claimed {
                            let engine = self.clone();
                            let id = c.execution.id;
                            running.spawn(async move {
                                if let Err(e) = engine.run_claimed(c).await {
                                    tracing::error!(execution = %id, error = %e, "execution run failed");
                                }
                            });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "claiming executions failed"),
                }
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = pending.next() => {}
                () = tokio::time::sleep(self.inner.config.claim_interval) => {}
            }
        }
        if let Some(grace) = grace {
            let drained = tokio::time::timeout(grace, async {
                while running.join_next().await.is_some() {}
            })
            .await;
            if drained.is_err() {
                tracing::info!(
                    executions = running.len(),
                    "grace period over: interrupting the executions still running"
                );
                self.inner.interrupt.cancel();
            }
        }
        while running.join_next().await.is_some() {}
    }
}

impl Inner {
    /// When hosts of a cancelled execution are forced to `cancelled`: the cancel request
    /// plus the grace period; `None` before any cancel.
    pub(crate) fn cancel_deadline(
        &self,
        execution: &crate::model::Execution,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        let grace = chrono_duration(self.config.cancel_grace);
        execution.cancel_requested_at.map(|t| t + grace)
    }

    /// [`Inner::cancel_deadline`], counting a cancel not yet stamped as requested at `now`.
    pub(crate) fn cancel_deadline_or(
        &self,
        execution: &crate::model::Execution,
        now: chrono::DateTime<chrono::Utc>,
    ) -> chrono::DateTime<chrono::Utc> {
        self.cancel_deadline(execution)
            .unwrap_or(now + chrono_duration(self.config.cancel_grace))
    }
}

pub(crate) fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}
