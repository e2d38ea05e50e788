use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{CronJobId, ExecutionId, PlaybookVersionId, ScriptVersionId, TargetId, TeamId};
use crate::model::{ActorKind, Os, ScriptLanguage};
use crate::status::{ExecutionStatus, HostCounters, HostStatus};
use crate::values::{Address, Name, TimeoutSecs};

/// What kind of work an execution does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobType {
    /// Run a script.
    Script,
    /// Distribute files.
    FileDistribution,
    /// Run an Ansible playbook.
    Playbook,
}

impl JobType {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Script => "script",
            Self::FileDistribution => "file_distribution",
            Self::Playbook => "playbook",
        }
    }
}

impl fmt::Display for JobType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an execution was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerSource {
    /// By a person in the console or with the CLI.
    Manual,
    /// By a cron job.
    Scheduled,
    /// By another system through the REST or NATS API.
    Api,
}

impl TriggerSource {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Scheduled => "scheduled",
            Self::Api => "api",
        }
    }
}

/// Who launched an execution and through what, frozen at launch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorSnapshot {
    /// Through what they acted.
    pub actor: ActorKind,
    /// A short label (`user:alice`, `token:ci`, `scheduler`, `nats:patch`).
    pub label: String,
}

/// An explicit confirmation of `confirm`-level rule hits, kept with the execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmationRecord {
    /// Who confirmed.
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The hits that were confirmed.
    pub hits: Vec<crate::PolicyHit>,
}

/// What an execution runs, frozen at launch. Encrypted param values appear only as
/// `******`; the real values are never stored in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskSnapshot {
    /// A script run.
    Script {
        /// Its language.
        language: ScriptLanguage,
        /// The rendered script with secrets masked.
        rendered: String,
        /// The library version, if it came from the library.
        script_version_id: Option<ScriptVersionId>,
        /// Param values by name, secrets masked.
        params: std::collections::BTreeMap<String, String>,
    },
    /// A file distribution.
    FileDistribution {
        /// Where each file is read from.
        sources: Vec<DistributionSource>,
        /// The destination directory on each target.
        destination: String,
        /// Whether existing files are overwritten.
        overwrite: bool,
    },
    /// A playbook run.
    Playbook {
        /// The exact playbook version used.
        playbook_version_id: PlaybookVersionId,
        /// Extra variables by name, secrets masked.
        params: std::collections::BTreeMap<String, String>,
    },
}

/// Where one file of a distribution is read from, frozen at launch.
///
/// Stored in the task snapshot as `{"kind": "target", "target_id": "…", "path": "/…"}`.
/// Snapshots written before this type held `"<target id>:<path>"` strings; those are still
/// read. (Files staged on the platform will be a second kind of source.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DistributionSource {
    /// A file on one of the team's targets, read from there when the execution runs.
    Target {
        /// The target holding the file.
        target_id: TargetId,
        /// Its absolute path there, in the canonical form checked at launch (kept as text,
        /// like the destination: its canonical form depends on the target's OS).
        path: String,
    },
}

impl DistributionSource {
    /// The file's name: the last component of its path.
    pub fn file_name(&self) -> &str {
        match self {
            Self::Target { path, .. } => path.rsplit(['/', '\\']).next().unwrap_or(path),
        }
    }
}

impl<'de> Deserialize<'de> for DistributionSource {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;

        #[derive(Deserialize)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        enum Typed {
            Target { target_id: TargetId, path: String },
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Typed(Typed),
            /// The form of snapshots written before the type: `<target id>:<path>`.
            Legacy(String),
        }
        match Stored::deserialize(deserializer)? {
            Stored::Typed(Typed::Target { target_id, path }) => {
                Ok(Self::Target { target_id, path })
            }
            Stored::Legacy(text) => {
                let (id, path) = text.split_once(':').ok_or_else(|| {
                    D::Error::custom(format!(
                        "distribution source `{text}` is neither an object nor <target id>:<path>"
                    ))
                })?;
                let target_id = TargetId::parse_field("sources", id).map_err(D::Error::custom)?;
                Ok(Self::Target {
                    target_id,
                    path: path.to_owned(),
                })
            }
        }
    }
}

/// One resolved target, frozen at launch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetSnapshot {
    /// The target.
    pub target_id: TargetId,
    /// Its name at launch.
    pub name: Name,
    /// Its address at launch.
    pub address: Address,
    /// Its OS at launch.
    pub os: Os,
    /// Its mode at launch (`agentless`, `agent`, `local`).
    pub mode: String,
}

/// One run of a job on a set of targets: the record operators come back to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Execution {
    /// Its id (the `task_id` of the open interfaces).
    pub id: ExecutionId,
    /// Owner team.
    pub team_id: TeamId,
    /// Name for people.
    pub name: Name,
    /// What kind of work.
    pub job_type: JobType,
    /// How it was started.
    pub trigger_source: TriggerSource,
    /// Who started it.
    pub executor: ExecutorSnapshot,
    /// What it runs.
    pub task: TaskSnapshot,
    /// Timeout of each host run.
    pub timeout: TimeoutSecs,
    /// Status; changed only through the status machine.
    pub status: ExecutionStatus,
    /// Host runs per status.
    pub counters: HostCounters,
    /// Where the result is posted when it is final.
    pub callback_url: Option<String>,
    /// The execution this one re-runs.
    pub re_executed_from: Option<ExecutionId>,
    /// The cron job that fired it.
    pub cron_job_id: Option<CronJobId>,
    /// Confirmation of `confirm`-level rule hits, if any were needed.
    pub confirmation: Option<ConfirmationRecord>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it started running.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a final state.
    pub finished_at: Option<DateTime<Utc>>,
    /// When cancel was requested.
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// The rolling plan: hosts run in batches instead of all at once. `None` runs every
    /// host at once (within the engine's concurrency limits).
    #[serde(default)]
    pub rolling: Option<crate::model::Rolling>,
    /// When a rolling execution paused after a batch with a failure; `None` when it is not
    /// paused. A paused execution stays `running` with its later hosts `pending` until it is
    /// resumed ([`crate::engine::resume_execution`]) or cancelled.
    #[serde(default)]
    pub paused_at: Option<DateTime<Utc>>,
}

impl Execution {
    /// Run time in milliseconds, once started and finished.
    pub fn duration_ms(&self) -> Option<i64> {
        Some((self.finished_at? - self.started_at?).num_milliseconds())
    }
}

/// The run of an execution on one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRun {
    /// The execution.
    pub execution_id: ExecutionId,
    /// Position of the host within the execution (0-based), stable for ordering.
    pub index: u32,
    /// The target, as snapshotted.
    pub target: TargetSnapshot,
    /// Status of this host.
    pub status: HostStatus,
    /// Exit code, when the process ran to an end.
    pub exit_code: Option<i32>,
    /// What went wrong, in words (unreachable, authentication failed, …).
    pub error: Option<String>,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// Bytes of stdout produced (including what was not stored past the cap).
    pub stdout_bytes: u64,
    /// Bytes of stderr produced (including what was not stored past the cap).
    pub stderr_bytes: u64,
    /// Whether stored output was cut at the per-host cap.
    pub output_truncated: bool,
}

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// A message from the platform itself (truncation marker, connection errors).
    System,
}

/// A piece of a host's output, in order. Output is untrusted bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputChunk {
    /// The execution.
    pub execution_id: ExecutionId,
    /// The host's index within the execution.
    pub host_index: u32,
    /// Sequence number within the host, from 0, without gaps.
    pub seq: u64,
    /// The stream.
    pub stream: OutputStream,
    /// The bytes.
    pub data: Vec<u8>,
    /// When it was produced.
    pub ts: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_distribution_source_is_stored_as_a_tagged_object_and_read_back() {
        let id = TargetId::new();
        let source = DistributionSource::Target {
            target_id: id,
            path: "/etc/hosts".to_owned(),
        };
        let stored = serde_json::to_value(&source).unwrap();
        assert_eq!(
            stored,
            serde_json::json!({"kind": "target", "target_id": id.to_string(), "path": "/etc/hosts"})
        );
        let read: DistributionSource = serde_json::from_value(stored).unwrap();
        assert_eq!(read, source);
        assert_eq!(read.file_name(), "hosts");
    }

    #[test]
    fn a_snapshot_stored_with_text_sources_is_still_read() {
        let id = TargetId::new();
        let stored = serde_json::json!({
            "kind": "file_distribution",
            "sources": [format!("{id}:/srv/app/config.toml")],
            "destination": "/opt",
            "overwrite": true,
        });
        let task: TaskSnapshot = serde_json::from_value(stored).unwrap();
        let TaskSnapshot::FileDistribution { sources, .. } = task else {
            panic!("a file distribution: {task:?}");
        };
        assert_eq!(
            sources,
            [DistributionSource::Target {
                target_id: id,
                path: "/srv/app/config.toml".to_owned(),
            }]
        );
    }

    #[test]
    fn a_text_source_without_a_target_id_is_refused_with_the_reason() {
        let err = serde_json::from_value::<DistributionSource>(serde_json::json!("/etc/hosts"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("<target id>:<path>"), "{err}");
        let err =
            serde_json::from_value::<DistributionSource>(serde_json::json!("nope:/etc/hosts"))
                .unwrap_err()
                .to_string();
        assert!(err.contains("sources") && err.contains("UUID"), "{err}");
    }
}
