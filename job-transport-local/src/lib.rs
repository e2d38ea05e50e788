//! Runs tasks on the control node itself, each as its own process group.
//!
//! [`LocalTransport`] implements [`job_core::transport::Transport`] for targets with
//! [`HostAccess::Local`]: the control node's own target, and the runtime of `jobd agent`.
//!
//! - **Process**: the script is written to a private file (0600 in a fresh 0700 directory,
//!   removed afterwards) and run as `program args… <file> script_args…` with an empty
//!   stdin, in its own process group (`process_group(0)`), in the task's working
//!   directory. The environment is *not* inherited: a run gets only the variables named in
//!   [`LocalConfig::pass_env`] (`PATH`, `HOME`, `LANG`, …) plus the task's own, so the
//!   control node's secrets (database URLs, keys) never reach a script.
//! - **Output**: stdout and stderr are read as they come, in pieces of at most
//!   [`LocalConfig::read_chunk`] bytes, and sent as numbered events. Memory per run is two
//!   read buffers plus what the event channel holds; a full channel pauses reading.
//! - **Timeout and cancel**: SIGTERM to the whole group, SIGKILL after
//!   [`LocalConfig::kill_grace`] to whatever is left. Children and grandchildren die with
//!   the script.
//! - **The script exits, its children do not**: the run owns its group, so when the main
//!   process exits, anything still in the group (`sleep 300 &`, a daemon that did not call
//!   `setsid`) gets SIGTERM, then SIGKILL after the grace period, and the run ends with the
//!   script's exit code. A process meant to outlive the run must leave the group
//!   (`setsid`, `systemd-run`) and close the run's stdout and stderr; if it keeps them
//!   open, the run stops reading them one grace period after the group is empty.
//! - **Push and pull**: blocking file I/O on the blocking pool; pushes are written to a
//!   temporary name beside the destination, sha256-verified, then renamed (overwrite) or
//!   hard-linked (skip, so an existing file is never replaced even in a race).
//!
//! Signals go through `rustix` (`kill_process_group`): safe wrappers, so the workspace's
//! `unsafe_code = "forbid"` holds, and the crate is already in the dependency tree (via
//! `tempfile`), so it costs no new dependency (`nix` would add one).
//!
//! Unix only.

mod files;
mod group;
mod process;
mod records;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use job_core::transport::{
    Cancel, EventSender, HostAccess, HostTarget, PullSpec, PulledFile, PushOutcome, PushSpec,
    RunOutcome, TaskSpec, Transport, TransportError,
};
pub use records::reap_orphans;

/// Settings of the local transport. The defaults suit one machine.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LocalConfig {
    /// How long processes get between SIGTERM and SIGKILL. Default 5 s.
    pub kill_grace: Duration,
    /// Names of the control node's environment variables that runs inherit. Default:
    /// `PATH HOME USER LOGNAME SHELL LANG LC_ALL LC_CTYPE LC_MESSAGES TZ TMPDIR`. A run
    /// always has a `PATH`.
    pub pass_env: Vec<String>,
    /// The largest single read from stdout or stderr, in bytes (at most
    /// [`job_core::transport::MAX_OUTPUT_CHUNK`]). Default 32 KiB.
    pub read_chunk: usize,
    /// Where the private script directories are made. Default: the system's temporary
    /// directory.
    pub temp_dir: Option<PathBuf>,
    /// Where a record of each running process group is kept, so that a node restarted after
    /// a crash can kill what the crashed one left running ([`reap_orphans`]). Default: none
    /// (no records).
    pub run_records: Option<PathBuf>,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            kill_grace: Duration::from_secs(5),
            pass_env: [
                "PATH",
                "HOME",
                "USER",
                "LOGNAME",
                "SHELL",
                "LANG",
                "LC_ALL",
                "LC_CTYPE",
                "LC_MESSAGES",
                "TZ",
                "TMPDIR",
            ]
            .map(str::to_owned)
            .to_vec(),
            read_chunk: 32 * 1024,
            temp_dir: None,
            run_records: None,
        }
    }
}

impl LocalConfig {
    /// The same settings with the grace period `grace` between SIGTERM and SIGKILL.
    pub fn with_kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }

    /// The same settings, keeping run records in `dir` (see [`reap_orphans`]).
    pub fn with_run_records(mut self, dir: impl Into<PathBuf>) -> Self {
        self.run_records = Some(dir.into());
        self
    }

    /// The same settings with script directories made under `dir`.
    pub fn with_temp_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.temp_dir = Some(dir.into());
        self
    }
}

/// Runs tasks as local process groups and reads and writes local files.
#[derive(Debug, Clone, Default)]
pub struct LocalTransport {
    config: LocalConfig,
}

impl LocalTransport {
    /// A transport with the default settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// A transport with `config`.
    pub fn with_config(config: LocalConfig) -> Self {
        Self { config }
    }

    /// Its settings.
    pub fn config(&self) -> &LocalConfig {
        &self.config
    }

    fn check_target(&self, target: &HostTarget) -> Result<(), TransportError> {
        match target.access {
            HostAccess::Local => Ok(()),
            _ => Err(target.unsupported_by(self.kind())),
        }
    }
}

#[async_trait]
impl Transport for LocalTransport {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn run(
        &self,
        target: &HostTarget,
        task: &TaskSpec,
        events: EventSender,
        cancel: &Cancel,
    ) -> Result<RunOutcome, TransportError> {
        self.check_target(target)?;
        process::run(&self.config, task, events, cancel).await
    }

    async fn push(
        &self,
        target: &HostTarget,
        file: &PushSpec,
        cancel: &Cancel,
    ) -> Result<PushOutcome, TransportError> {
        self.check_target(target)?;
        let (file, cancel) = (file.clone(), cancel.clone());
        tokio::task::spawn_blocking(move || files::push(&file, &cancel))
            .await
            .map_err(|e| TransportError::failed("the push was interrupted", e))?
    }

    async fn pull(
        &self,
        target: &HostTarget,
        file: &PullSpec,
        cancel: &Cancel,
    ) -> Result<PulledFile, TransportError> {
        self.check_target(target)?;
        let (file, cancel) = (file.clone(), cancel.clone());
        tokio::task::spawn_blocking(move || files::pull(&file, &cancel))
            .await
            .map_err(|e| TransportError::failed("the pull was interrupted", e))?
    }
}
