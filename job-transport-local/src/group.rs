//! The process group a run owns: signals to all of it, and whether any of it still lives.

use std::time::Duration;

use rustix::io::Errno;
use rustix::process::{Pid, Signal, kill_process_group, test_kill_process_group};

/// How often a group is checked while it is being emptied.
const POLL: Duration = Duration::from_millis(50);

/// How long to wait, after SIGKILL, for the kernel to tear the group down.
const SETTLE: Duration = Duration::from_secs(2);

/// A process group, named by its leader's pid (the script's main process, spawned with
/// `process_group(0)`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcessGroup(Pid);

impl ProcessGroup {
    /// The group led by the process `pid`.
    pub(crate) fn led_by(pid: u32) -> Option<Self> {
        i32::try_from(pid).ok().and_then(Pid::from_raw).map(Self)
    }

    /// The group id.
    pub(crate) fn id(self) -> i32 {
        self.0.as_raw_pid()
    }

    /// Sends SIGTERM to every member.
    pub(crate) fn terminate(self) {
        self.signal(Signal::TERM);
    }

    /// Sends SIGKILL to every member.
    pub(crate) fn kill(self) {
        self.signal(Signal::KILL);
    }

    fn signal(self, signal: Signal) {
        match kill_process_group(self.0, signal) {
            Ok(()) | Err(Errno::SRCH) => {}
            Err(e) => {
                tracing::warn!(pgid = self.id(), ?signal, error = %e, "cannot signal process group")
            }
        }
    }

    /// Whether any member is still alive. Zombies do not count: a process that is dead but
    /// not yet reaped (by init, or by nobody in a container whose PID 1 does not reap)
    /// holds no resources and runs no code.
    pub(crate) async fn has_live_members(self) -> bool {
        match test_kill_process_group(self.0) {
            Err(Errno::SRCH) => false,
            _ => {
                let pgid = self.id();
                tokio::task::spawn_blocking(move || any_live_member(pgid))
                    .await
                    .unwrap_or(true)
            }
        }
    }

    /// Empties the group: SIGTERM (unless `term_sent`), up to `grace` for the members to
    /// exit, then SIGKILL and a short wait for the kernel to tear them down.
    pub(crate) async fn empty(self, grace: Duration, term_sent: bool) {
        if !self.has_live_members().await {
            return;
        }
        if !term_sent {
            self.terminate();
        }
        if self.wait_until_empty(grace).await {
            return;
        }
        self.kill();
        if !self.wait_until_empty(SETTLE).await {
            tracing::warn!(
                pgid = self.id(),
                "process group still has live members after SIGKILL"
            );
        }
    }

    async fn wait_until_empty(self, within: Duration) -> bool {
        let until = tokio::time::Instant::now() + within;
        loop {
            if !self.has_live_members().await {
                return true;
            }
            if tokio::time::Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Whether `/proc` shows a member of group `pgid` that is not a zombie. Assumes one is
/// alive when `/proc` cannot be read.
#[cfg(target_os = "linux")]
fn any_live_member(pgid: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1).and_then(|p| p.parse::<i32>().ok());
        if pgrp == Some(pgid) && !matches!(state, Some("Z" | "X" | "x")) {
            return true;
        }
    }
    false
}

#[cfg(not(target_os = "linux"))]
fn any_live_member(_pgid: i32) -> bool {
    true
}

/// Kills the group with SIGKILL when dropped while armed: a run whose future is dropped
/// (the engine gave up on it) leaves no process behind.
#[derive(Debug)]
pub(crate) struct KillOnDrop(Option<ProcessGroup>);

impl KillOnDrop {
    pub(crate) fn new(group: ProcessGroup) -> Self {
        Self(Some(group))
    }

    /// The group was emptied on purpose; nothing to do on drop.
    pub(crate) fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(group) = self.0.take() {
            group.kill();
        }
    }
}
