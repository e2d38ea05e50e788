//! Capabilities over runs: executions with their host runs and leases, their output, and
//! the outbox of callbacks and alerts.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Page, PageRequest, TeamScope};
use crate::Result;
use crate::ids::{CronJobId, DeliveryId, ExecutionId, TeamId};
use crate::model::{
    Execution, HostRun, JobType, OutboxEntry, OutputChunk, OutputStream, TriggerSource,
};
use crate::status::{ExecutionStatus, HostStatus};

/// Filters of [`ExecutionStore::list_executions`]. Every filter narrows; the default lists
/// every visible execution.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutionFilter {
    /// Only these statuses (any of them); empty means every status.
    pub statuses: Vec<ExecutionStatus>,
    /// Only this kind of work.
    pub job_type: Option<JobType>,
    /// Only this trigger.
    pub trigger_source: Option<TriggerSource>,
    /// Only this team (still within the scope).
    pub team_id: Option<TeamId>,
    /// Only executions fired by this cron job.
    pub cron_job_id: Option<CronJobId>,
    /// Only executions created at or after this instant.
    pub created_from: Option<DateTime<Utc>>,
    /// Only executions created before this instant.
    pub created_to: Option<DateTime<Utc>>,
    /// Only names containing this text (case-insensitive for ASCII).
    pub name_contains: Option<String>,
}

/// A change to one host run, applied by [`ExecutionStore::update_host_runs`] or with a
/// [`Transition`].
///
/// A host run only moves forward: `pending -> running -> final`, or `pending -> final`.
/// An update that would move it back, or that arrives after it is final (a late report
/// after a forced cancel), is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRunUpdate {
    /// The host's index within the execution.
    pub index: u32,
    /// Its new status.
    pub status: HostStatus,
    /// Exit code, when the process ran to an end.
    pub exit_code: Option<i32>,
    /// What went wrong, in words.
    pub error: Option<String>,
    /// When it started (kept if already set).
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
}

impl HostRunUpdate {
    /// A host that started running at `at`.
    pub fn started(index: u32, at: DateTime<Utc>) -> Self {
        Self {
            index,
            status: HostStatus::Running,
            exit_code: None,
            error: None,
            started_at: Some(at),
            finished_at: None,
        }
    }

    /// A host that finished with `status` at `at`.
    pub fn finished(
        index: u32,
        status: HostStatus,
        exit_code: Option<i32>,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            index,
            status,
            exit_code,
            error: None,
            started_at: None,
            finished_at: Some(at),
        }
    }
}

/// A compare-and-set move of an execution's status, with what must be written with it.
///
/// It applies only if the stored status is still `from` and `from -> to` is allowed by
/// [`ExecutionStatus::allows`]. Everything in it is written in one transaction: the status,
/// the timestamps it implies (`started_at` on `running`, `cancel_requested_at` on a cancel,
/// `finished_at` on a final status), the host run changes, and the outbox entries.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The status that must still hold.
    pub from: ExecutionStatus,
    /// The new status.
    pub to: ExecutionStatus,
    /// When the move happens.
    pub at: DateTime<Utc>,
    /// Host runs moved with it (for example pending hosts cancelled with the execution).
    pub hosts: Vec<HostRunUpdate>,
    /// Callbacks and alerts caused by the move.
    pub outbox: Vec<OutboxEntry>,
}

impl Transition {
    /// A bare move `from -> to` at `at`.
    pub fn new(from: ExecutionStatus, to: ExecutionStatus, at: DateTime<Utc>) -> Self {
        Self {
            from,
            to,
            at,
            hosts: Vec::new(),
            outbox: Vec::new(),
        }
    }

    /// Adds host run changes.
    pub fn with_hosts(mut self, hosts: Vec<HostRunUpdate>) -> Self {
        self.hosts = hosts;
        self
    }

    /// Adds outbox entries.
    pub fn with_outbox(mut self, outbox: Vec<OutboxEntry>) -> Self {
        self.outbox = outbox;
        self
    }
}

/// A lease request: `node` wants to run executions until `until`, as of `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The claiming node's id (stable per process).
    pub node: String,
    /// The current instant.
    pub now: DateTime<Utc>,
    /// When the lease expires unless renewed.
    pub until: DateTime<Utc>,
}

/// An execution claimed with a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedExecution {
    /// The execution as stored at the claim.
    pub execution: Execution,
    /// Whether it was taken over from another node whose lease had expired (it may already
    /// be running; the claimer resumes it).
    pub taken_over: bool,
}

/// Executions and their host runs.
#[async_trait]
pub trait ExecutionStore: Send + Sync {
    /// Stores a new execution together with all its host runs, in one batched write.
    ///
    /// `hosts` must be indexed `0..n` in order, belong to `execution` and be `pending`, and
    /// the execution must be `pending`; its stored counters are derived from `hosts`.
    /// Nothing is written when any part is refused.
    async fn create_execution(&self, execution: &Execution, hosts: &[HostRun]) -> Result<()>;
    /// The execution `id`, if visible.
    async fn get_execution(&self, scope: &TeamScope, id: ExecutionId) -> Result<Execution>;
    /// Visible executions, newest first.
    async fn list_executions(
        &self,
        scope: &TeamScope,
        filter: &ExecutionFilter,
        page: PageRequest<ExecutionId>,
    ) -> Result<Page<Execution, ExecutionId>>;
    /// Host runs of a visible execution in index order, optionally only those in `status`.
    async fn list_host_runs(
        &self,
        scope: &TeamScope,
        id: ExecutionId,
        status: Option<HostStatus>,
        page: PageRequest<u32>,
    ) -> Result<Page<HostRun, u32>>;
    /// Applies a compare-and-set status move; see [`Transition`]. Returns the execution as
    /// stored after it.
    ///
    /// A move the status machine does not allow is [`Error::Invalid`](crate::Error::Invalid)
    /// (field `status`); a stored status other than `from` is
    /// [`Error::Conflict`](crate::Error::Conflict). Of many concurrent moves from the same
    /// status, exactly one wins.
    async fn transition(&self, id: ExecutionId, transition: &Transition) -> Result<Execution>;
    /// Applies host run changes in one write and keeps the execution's counters equal to
    /// its host runs. Returns how many changes applied (ignored ones are not counted).
    async fn update_host_runs(&self, id: ExecutionId, updates: &[HostRunUpdate]) -> Result<u32>;
    /// Claims up to `limit` executions for `lease.node`: first non-final ones whose lease
    /// expired at or before `lease.now` or was released (taken over, soonest expiry first),
    /// then pending ones nobody claimed yet (oldest first). Two nodes never get the same
    /// execution from concurrent claims.
    async fn claim_executions(&self, lease: &Lease, limit: u32) -> Result<Vec<ClaimedExecution>>;
    /// Extends the lease `lease.node` holds on `id` to `lease.until`. A lease now held by
    /// another node, or an execution that is final, is a conflict.
    async fn renew_lease(&self, id: ExecutionId, lease: &Lease) -> Result<()>;
    /// Gives up the lease `node` holds on `id` (a no-op when it holds none).
    async fn release_lease(&self, id: ExecutionId, node: &str) -> Result<()>;
    /// Gives up every lease `node` holds on an unfinished execution, so the next claim takes
    /// them over at once (a node restarting under the same id recovers its own executions
    /// without waiting for their leases to expire). Returns how many were released.
    async fn release_node_leases(&self, node: &str) -> Result<u64>;
    /// Marks the `running` execution `id` paused at `at` (a rolling execution after a batch
    /// with a failure). A paused execution is not claimed (its lease expiring or released
    /// changes nothing) until it is unpaused or moves on: every status [`Transition`] clears
    /// the pause. An execution that is not `running`, or already paused, is a conflict.
    async fn pause_execution(&self, id: ExecutionId, at: DateTime<Utc>) -> Result<Execution>;
    /// Clears the pause of the `running` execution `id`, so the next claim takes it up. An
    /// execution that is not `running` and paused is a conflict.
    async fn unpause_execution(&self, id: ExecutionId) -> Result<Execution>;
}

/// One piece of output to append; the store assigns its sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutput {
    /// The host's index within the execution.
    pub host_index: u32,
    /// The stream.
    pub stream: OutputStream,
    /// The bytes (untrusted, any value).
    pub data: Vec<u8>,
    /// When it was produced.
    pub ts: DateTime<Utc>,
}

/// What [`OutputStore::append_output`] did with a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendedOutput {
    /// Per input chunk, in order: the sequence number it was stored under, or `None` when
    /// it was dropped past the host's cap (a chunk cut at the cap is stored in part).
    pub seqs: Vec<Option<u64>>,
    /// Host indexes whose output was cut by this batch (a truncation marker was written).
    pub truncated_hosts: Vec<u32>,
}

/// The text of the `system` chunk written where a host's output was cut at its cap.
pub fn truncation_marker(cap_bytes: u64) -> String {
    format!("[output truncated: the per-host limit of {cap_bytes} bytes was reached]")
}

/// Where to continue reading output: after this `(host_index, seq)`.
pub type OutputCursor = (u32, u64);

/// Host output, stored in order and capped per host.
#[async_trait]
pub trait OutputStore: Send + Sync {
    /// Appends a batch of output chunks of one execution, in one write.
    ///
    /// Chunks of a host get consecutive sequence numbers from 0, without gaps, in batch
    /// order; concurrent appends to one host interleave whole batches. Each host stores at
    /// most `cap_bytes` of data: the chunk that crosses the cap is stored up to it, followed
    /// by a `system` chunk with [`truncation_marker`], and later chunks are dropped. The
    /// host run's `stdout_bytes`/`stderr_bytes` count every byte produced, stored or not.
    async fn append_output(
        &self,
        id: ExecutionId,
        chunks: &[NewOutput],
        cap_bytes: u64,
    ) -> Result<AppendedOutput>;
    /// Output of a visible execution in `(host_index, seq)` order after `after`, only of
    /// `host` if given, at most `limit` chunks (clamped to `1..=`[`MAX_PAGE`](super::MAX_PAGE)).
    async fn read_output(
        &self,
        scope: &TeamScope,
        id: ExecutionId,
        host: Option<u32>,
        after: Option<OutputCursor>,
        limit: u32,
    ) -> Result<Vec<OutputChunk>>;
}

/// How a delivery attempt of an outbox entry ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxOutcome {
    /// Delivered; the entry is done.
    Delivered,
    /// Failed; try again at `next_attempt_at`.
    Retry {
        /// When to try again.
        next_attempt_at: DateTime<Utc>,
        /// What went wrong.
        error: String,
    },
    /// Failed for the last time; give up.
    GaveUp {
        /// What went wrong.
        error: String,
    },
}

/// Callbacks and alerts waiting for delivery.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Enqueues entries that are not tied to a status move (alerts), in one write.
    async fn enqueue_outbox(&self, entries: &[OutboxEntry]) -> Result<()>;
    /// Claims up to `limit` pending entries due at `now`, soonest first, by moving their
    /// next attempt to `lease_until`, so another node does not deliver them meanwhile.
    /// The returned entries show their due instant before the claim.
    async fn claim_due_outbox(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>>;
    /// Records the outcome of an attempt (and counts it).
    async fn record_outbox_attempt(&self, id: DeliveryId, outcome: &OutboxOutcome) -> Result<()>;
    /// The entry `id`, if its team is visible.
    async fn get_outbox_entry(&self, scope: &TeamScope, id: DeliveryId) -> Result<OutboxEntry>;
    /// Entries about a visible execution, oldest first.
    async fn list_outbox_for_execution(
        &self,
        scope: &TeamScope,
        id: ExecutionId,
    ) -> Result<Vec<OutboxEntry>>;
}
