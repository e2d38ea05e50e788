//! The agent's own record of the tasks it has started, so a task delivered twice never
//! runs twice and a task cut short by an agent crash is reported, not forgotten.
//!
//! One small file per task in `<work_dir>/tasks/`: `<task_id>.started` is created
//! (exclusively, synced) before the task's message is acknowledged and before it runs;
//! it becomes `<task_id>.done` once the task's result is stored in the results stream.
//! Records older than a week are removed when the agent starts.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How long finished records are kept: longer than any redelivery or duplicate window.
const KEEP_DONE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Whether a task is new to this agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Begin {
    /// First delivery: run it.
    New,
    /// Started before (running, finished or cut short): do not run it again.
    Seen,
}

#[derive(Debug, Clone)]
pub(crate) struct Ledger {
    dir: PathBuf,
}

impl Ledger {
    /// The ledger in `<work_dir>/tasks`, created when missing.
    pub(crate) async fn open(work_dir: &Path) -> io::Result<Self> {
        let dir = work_dir.join("tasks");
        tokio::fs::create_dir_all(&dir).await?;
        Ok(Self { dir })
    }

    /// Records that `task_id` (a UUID, checked by the caller) starts now, unless it was
    /// seen before.
    pub(crate) async fn begin(&self, task_id: &str) -> io::Result<Begin> {
        let started = self.path(task_id, "started");
        let done = self.path(task_id, "done");
        tokio::task::spawn_blocking(move || {
            if done.exists() {
                return Ok(Begin::Seen);
            }
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&started)
            {
                Ok(file) => {
                    file.sync_all()?;
                    if let Some(dir) = started.parent() {
                        std::fs::File::open(dir)?.sync_all()?;
                    }
                    Ok(Begin::New)
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Begin::Seen),
                Err(e) => Err(e),
            }
        })
        .await
        .map_err(io::Error::other)?
    }

    /// Records that `task_id`'s result is stored.
    pub(crate) async fn finish(&self, task_id: &str) -> io::Result<()> {
        let from = self.path(task_id, "started");
        let to = self.path(task_id, "done");
        match tokio::fs::rename(&from, &to).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                tokio::fs::write(&to, b"").await.map(|_| ())
            }
            Err(e) => Err(e),
        }
    }

    /// Tasks started but never finished: the agent stopped while they ran.
    pub(crate) async fn unfinished(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        let mut entries = tokio::fs::read_dir(&self.dir).await?;
        while let Some(entry) = entries.next_entry().await? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".started") {
                out.push(id.to_owned());
            }
        }
        Ok(out)
    }

    /// Removes finished records older than a week.
    pub(crate) async fn prune(&self) -> io::Result<usize> {
        let mut removed = 0;
        let mut entries = tokio::fs::read_dir(&self.dir).await?;
        let now = SystemTime::now();
        while let Some(entry) = entries.next_entry().await? {
            if !entry.file_name().to_string_lossy().ends_with(".done") {
                continue;
            }
            let old = entry
                .metadata()
                .await
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > KEEP_DONE);
            if old && tokio::fs::remove_file(entry.path()).await.is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn path(&self, task_id: &str, state: &str) -> PathBuf {
        self.dir.join(format!("{task_id}.{state}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_begins_once_and_an_unfinished_one_is_found_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).await.unwrap();
        assert_eq!(ledger.begin("t1").await.unwrap(), Begin::New);
        assert_eq!(ledger.begin("t1").await.unwrap(), Begin::Seen);
        assert_eq!(ledger.begin("t2").await.unwrap(), Begin::New);
        ledger.finish("t2").await.unwrap();
        assert_eq!(ledger.begin("t2").await.unwrap(), Begin::Seen);
        let reopened = Ledger::open(dir.path()).await.unwrap();
        assert_eq!(reopened.unfinished().await.unwrap(), ["t1"]);
        assert_eq!(reopened.prune().await.unwrap(), 0);
    }
}
