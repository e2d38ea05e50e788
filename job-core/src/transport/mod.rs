//! The `Transport` trait: run a task on one target, push and pull files; see docs/transports.md.
//!
//! A transport is how the engine reaches a host: the control node itself
//! (`job-transport-local`), agentless over SSH (`job-transport-ssh`) or a resident agent
//! (`job-transport-nats`). Every transport keeps the same promises, checked by the public
//! conformance suite in `job_core::testkit::transport` (feature `testkit`):
//!
//! - **Run**: the script is handed to the interpreter as a private temporary file, never on
//!   a command line; stdin is empty. Output arrives as [`TransportEvent::Output`] events
//!   while the script runs, stdout and stderr apart, numbered by one gap-free `seq` from 0,
//!   in pieces of at most [`MAX_OUTPUT_CHUNK`] bytes. Nothing holds the whole output.
//! - **Ending**: the run owns its process group. Timeout and cancel kill the whole group
//!   (TERM, then KILL after a grace period), children included; when the script itself
//!   exits, whatever it left behind in its group is killed too, so a backgrounded process
//!   can neither keep the run open nor outlive it unnoticed.
//! - **Result**: [`Transport::run`] returns a [`RunOutcome`] for every run that started
//!   (success, non-zero exit, timeout, cancelled) and a [`TransportError`] only when the
//!   task could not be run to an end (unreachable, authentication failed, host key
//!   mismatch, …). [`RunOutcome::from_error`] folds the two into a final host outcome.
//! - **Push**: written to a temporary name beside the destination, the sha256 of what
//!   landed verified, then renamed into place; an existing file is overwritten or kept.
//! - **Pull**: the bytes of one file, bounded by a size limit, with their sha256.
//!
//! `docs/transports.md` describes the contract and the local transport's kill semantics.
//!
//! ```
//! use job_core::transport::{Cancel, TaskSpec, TransportEvent};
//! use std::time::Duration;
//!
//! let task = TaskSpec::bash("echo hello")
//!     .with_env("GREETING", "hi")
//!     .with_timeout(Duration::from_secs(30));
//! let cancel = Cancel::new();
//! let (events, mut rx) = tokio::sync::mpsc::channel::<TransportEvent>(64);
//! // transport.run(&target, &task, events, &cancel).await … while another task reads `rx`.
//! # drop((task, cancel, events, rx.try_recv()));
//! ```

mod cancel;
mod error;
mod events;
mod file;
mod outcome;
mod presence;
mod task;

use async_trait::async_trait;

pub use cancel::Cancel;
pub use error::TransportError;
pub use events::{EventSender, MAX_OUTPUT_CHUNK, OutputCounts, OutputEmitter, TransportEvent};
pub use file::{IfExists, PullSpec, PulledFile, PushOutcome, PushSource, PushSpec};
pub use outcome::RunOutcome;
pub use presence::{AgentDirectory, AgentPresence};
pub use task::{HostAccess, HostTarget, SshAccess, TaskSpec};

/// A way to reach hosts: run a task on one target, push a file to it, pull a file from it.
///
/// Implementations are cheap to share (`Arc<dyn Transport>`) and run many targets at once:
/// every method is called concurrently for many hosts, so none may block a thread.
#[async_trait]
pub trait Transport: std::fmt::Debug + Send + Sync {
    /// A short name for logs and errors: `local`, `ssh`, `agent`.
    fn kind(&self) -> &'static str;

    /// Runs `task` on `target` until it ends, its timeout passes or `cancel` fires.
    ///
    /// Sends [`TransportEvent::Started`] once the process runs, then its output as
    /// [`TransportEvent::Output`] events, and drops `events` when the run is over. The
    /// receiver applies back-pressure: a full channel pauses reading (and so, eventually,
    /// the script); a dropped receiver makes the transport discard output (still counted)
    /// without stopping the run.
    ///
    /// Returns `Ok` for every run that reached an end — exit 0 ([`HostOutcome::Success`]),
    /// a non-zero exit or a signal (`Failed`), the timeout (`Timeout`) or a cancel
    /// (`Cancelled`), each with the processes of the run already killed — and `Err` only
    /// when the task could not be run to an end: see [`TransportError`] and
    /// [`RunOutcome::from_error`].
    ///
    /// [`HostOutcome::Success`]: crate::status::HostOutcome::Success
    async fn run(
        &self,
        target: &HostTarget,
        task: &TaskSpec,
        events: EventSender,
        cancel: &Cancel,
    ) -> Result<RunOutcome, TransportError>;

    /// Writes a file to `target` atomically: to a temporary name in the destination's
    /// directory (created when missing), sha256 verified, then renamed into place.
    ///
    /// On any failure, a cancel included, nothing is left at the destination and the
    /// temporary file is removed.
    async fn push(
        &self,
        target: &HostTarget,
        file: &PushSpec,
        cancel: &Cancel,
    ) -> Result<PushOutcome, TransportError>;

    /// Re-attaches to a run of `task` (named by its [`TaskSpec::run_key`]) that a control
    /// node which stopped had started on `target`, and follows it to its end as
    /// [`Transport::run`] would: its events from the first one (the caller skips what it
    /// already has), then its outcome. It never starts the script a second time.
    ///
    /// Only a transport whose runs go on without the control node can do this (the agent
    /// transport: the agent runs on and keeps its results in the message bus); the
    /// default answers [`TransportError::Unsupported`], and the engine then records the
    /// host as interrupted. `task.timeout` is the time left of the run's own timeout.
    async fn resume(
        &self,
        target: &HostTarget,
        task: &TaskSpec,
        events: EventSender,
        cancel: &Cancel,
    ) -> Result<RunOutcome, TransportError> {
        let _ = (target, task, events, cancel);
        Err(TransportError::unsupported(format!(
            "the {} transport cannot re-attach to a run another control node started",
            self.kind()
        )))
    }

    /// Reads one file from `target`, refusing files larger than the spec's limit.
    async fn pull(
        &self,
        target: &HostTarget,
        file: &PullSpec,
        cancel: &Cancel,
    ) -> Result<PulledFile, TransportError>;
}

/// Everything one run produced, gathered in memory by [`TransportExt::run_collected`].
#[derive(Debug)]
pub struct CollectedRun {
    /// How the run ended.
    pub result: Result<RunOutcome, TransportError>,
    /// Every event, in the order received.
    pub events: Vec<TransportEvent>,
}

impl CollectedRun {
    /// The bytes of one stream, concatenated in `seq` order.
    pub fn output(&self, stream: crate::model::OutputStream) -> Vec<u8> {
        let mut out = Vec::new();
        for event in &self.events {
            if let TransportEvent::Output {
                stream: s, data, ..
            } = event
                && *s == stream
            {
                out.extend_from_slice(data);
            }
        }
        out
    }

    /// The run's final outcome, with a transport error folded in by
    /// [`RunOutcome::from_error`].
    pub fn outcome(self) -> RunOutcome {
        self.result.unwrap_or_else(RunOutcome::from_error)
    }
}

/// Conveniences on top of [`Transport`], for every transport.
#[async_trait]
pub trait TransportExt: Transport {
    /// Runs `task` and keeps every event in memory. Meant for short tasks and tests: the
    /// engine streams instead.
    async fn run_collected(
        &self,
        target: &HostTarget,
        task: &TaskSpec,
        cancel: &Cancel,
    ) -> CollectedRun {
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let collect = async move {
            let mut events = Vec::new();
            while let Some(event) = rx.recv().await {
                events.push(event);
            }
            events
        };
        let (result, events) = tokio::join!(self.run(target, task, tx, cancel), collect);
        CollectedRun { result, events }
    }
}

impl<T: Transport + ?Sized> TransportExt for T {}
