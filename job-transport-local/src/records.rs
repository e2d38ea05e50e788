//! Run records: which process groups this node's runs own, kept as files so that a node
//! restarted after a crash (`kill -9`, power loss of the process, OOM kill) can kill what
//! the crashed one left running. A graceful stop needs none of this: it empties every group.
//!
//! A record is the file `<dir>/<pgid>` holding the group leader's start time (field 22 of
//! `/proc/<pid>/stat`, clock ticks since boot). The start time makes a record safe against
//! pid reuse: a group is killed only when its leader is the very process that was recorded,
//! or, when the leader is gone, when every member started after it.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::group::ProcessGroup;

/// The record of one running group; removed when dropped (the run is over).
#[derive(Debug)]
pub(crate) struct RunRecord(Option<PathBuf>);

impl RunRecord {
    /// Records `group` in `dir` (when the transport keeps records). Best effort: a record
    /// that cannot be written is logged, and the run goes on.
    pub(crate) fn write(dir: Option<&Path>, group: ProcessGroup) -> Self {
        let Some(dir) = dir else {
            return Self(None);
        };
        let Some(started) = start_time(group.id()) else {
            return Self(None);
        };
        let path = dir.join(group.id().to_string());
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&path, format!("{started}\n")));
        match written {
            Ok(()) => Self(Some(path)),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot write the run record");
                Self(None)
            }
        }
    }
}

impl Drop for RunRecord {
    fn drop(&mut self) {
        if let Some(path) = self.0.take()
            && let Err(e) = std::fs::remove_file(&path)
            && e.kind() != ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove the run record");
        }
    }
}

/// Kills the process groups that records in `dir` name and that still run — what a node
/// that crashed left behind — then removes every record. Call it before the transport runs
/// anything. Each group gets SIGTERM, `grace` to exit, then SIGKILL. Returns how many groups
/// were killed.
pub async fn reap_orphans(dir: &Path, grace: Duration) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut killed = 0;
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let pgid = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok());
        let recorded = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok());
        if let (Some(pgid), Some(recorded)) = (pgid, recorded)
            && still_ours(pgid, recorded)
            && let Some(group) = u32::try_from(pgid).ok().and_then(ProcessGroup::led_by)
        {
            tracing::warn!(
                pgid,
                "killing a process group left running by a previous life of this node"
            );
            group.empty(grace, false).await;
            killed += 1;
        }
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove the run record");
        }
    }
    Ok(killed)
}

/// Whether group `pgid` still holds the processes a record made at start time `recorded`
/// describes: its leader is that same process, or the leader is gone and every live member
/// started after it (so none is a newcomer that reused the number).
fn still_ours(pgid: i32, recorded: u64) -> bool {
    match start_time(pgid) {
        Some(leader) => leader == recorded,
        None => {
            let members = members(pgid);
            !members.is_empty() && members.iter().all(|&started| started >= recorded)
        }
    }
}

/// `(state, pgrp, starttime)` of process `pid`, from `/proc/<pid>/stat`.
fn stat(pid: &str) -> Option<(String, i32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid pgrp … starttime(22) …`; comm may hold spaces and parentheses.
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = (*fields.first()?).to_owned();
    let pgrp = fields.get(2)?.parse().ok()?;
    let started = fields.get(19)?.parse().ok()?;
    Some((state, pgrp, started))
}

/// The start time of process `pid`, if it lives (zombies do not count).
fn start_time(pid: i32) -> Option<u64> {
    match stat(&pid.to_string()) {
        Some((state, _, started)) if !matches!(state.as_str(), "Z" | "X" | "x") => Some(started),
        _ => None,
    }
}

/// Start times of the live members of group `pgid`.
fn members(pgid: i32) -> Vec<u64> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|pid| stat(&pid))
        .filter(|(state, pgrp, _)| *pgrp == pgid && !matches!(state.as_str(), "Z" | "X" | "x"))
        .map(|(_, _, started)| started)
        .collect()
}
