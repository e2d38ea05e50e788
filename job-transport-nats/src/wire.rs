//! The messages between the control side and the agents, as they travel on NATS.
//!
//! JSON everywhere except output: an output chunk's bytes are the message payload as they
//! are (untrusted, not necessarily UTF-8), its stream and sequence number in headers.
//! `docs/agent.md` shows an example of each message.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use job_core::model::OutputStream;
use job_core::status::HostOutcome;
use job_core::transport::{IfExists, OutputCounts, RunOutcome, TaskSpec, TransportError};
use job_core::values::Sha256Hex;
use serde::{Deserialize, Serialize};

/// Header naming what a message on a results subject is: [`EVENT_STARTED`],
/// [`EVENT_OUTPUT`] or [`EVENT_FINISHED`].
pub const HEADER_EVENT: &str = "Job-Event";
/// Header of an output message: its sequence number (decimal).
pub const HEADER_SEQ: &str = "Job-Seq";
/// Header of an output message: `stdout`, `stderr` or `system`.
pub const HEADER_STREAM: &str = "Job-Stream";
/// The process runs on the agent; empty payload.
pub const EVENT_STARTED: &str = "started";
/// A piece of output; the payload is the bytes.
pub const EVENT_OUTPUT: &str = "output";
/// The task ended; the payload is a JSON [`TaskFinish`].
pub const EVENT_FINISHED: &str = "finished";

/// A task for one agent, published on its tasks subject with the task id as JetStream
/// message id (`Nats-Msg-Id`), so a publish repeated within the duplicate window is stored
/// once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRequest {
    /// The task's id (a UUID): names its results subject and dedupes deliveries.
    pub task_id: String,
    /// The agent that must run it.
    pub agent_id: String,
    /// The interpreter.
    pub program: String,
    /// Interpreter arguments before the script file.
    #[serde(default)]
    pub args: Vec<String>,
    /// The script's text (may hold rendered secrets: never logged).
    pub script: String,
    /// The script file's extension.
    #[serde(default)]
    pub script_extension: String,
    /// The script's positional parameters.
    #[serde(default)]
    pub script_args: Vec<String>,
    /// Environment variables for the script.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The working directory on the agent's host.
    #[serde(default)]
    pub workdir: Option<String>,
    /// The run's timeout, in milliseconds.
    pub timeout_ms: u64,
    /// At most this many bytes of each stream are sent.
    #[serde(default)]
    pub output_limit: Option<u64>,
    /// The latest time the agent may start the task; a task that reaches it later (an
    /// agent that was away) is not run and fails as unreachable.
    pub start_by: DateTime<Utc>,
}

impl TaskRequest {
    /// The request for running `spec` as `task_id` on `agent_id`.
    pub fn new(task_id: &str, agent_id: &str, spec: &TaskSpec, start_by: DateTime<Utc>) -> Self {
        Self {
            task_id: task_id.to_owned(),
            agent_id: agent_id.to_owned(),
            program: spec.program.clone(),
            args: spec.args.clone(),
            script: spec.script.clone(),
            script_extension: spec.script_extension.clone(),
            script_args: spec.script_args.clone(),
            env: spec.env.clone(),
            workdir: spec.workdir.clone(),
            timeout_ms: u64::try_from(spec.timeout.as_millis()).unwrap_or(u64::MAX),
            output_limit: spec.output_limit,
            start_by,
        }
    }

    /// The task as the local transport runs it.
    pub fn to_spec(&self) -> TaskSpec {
        let mut spec = TaskSpec::new(self.program.clone(), self.script.clone())
            .with_args(self.args.clone())
            .with_extension(self.script_extension.clone())
            .with_script_args(self.script_args.clone())
            .with_timeout(Duration::from_millis(self.timeout_ms));
        spec.env = self.env.clone();
        spec.workdir = self.workdir.clone();
        spec.output_limit = self.output_limit;
        spec
    }
}

/// How a task ended, the last message on its results subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum TaskFinish {
    /// The run reached an end (success, non-zero exit, timeout, cancel).
    Ended {
        /// The final host status.
        outcome: HostOutcome,
        /// The exit code, when the process exited on its own.
        exit_code: Option<i32>,
        /// Why it did not succeed.
        error: Option<WireError>,
        /// Bytes written to stdout.
        stdout_bytes: u64,
        /// Bytes written to stderr.
        stderr_bytes: u64,
        /// Whether output passed the limit.
        truncated: bool,
    },
    /// The task could not be run to an end (bad spec, missing working directory, the agent
    /// restarted while it ran, it arrived too late).
    Failed {
        /// What went wrong.
        error: WireError,
    },
}

impl TaskFinish {
    /// The message for a run's result.
    pub fn from_result(result: &Result<RunOutcome, TransportError>) -> Self {
        match result {
            Ok(o) => Self::Ended {
                outcome: o.outcome,
                exit_code: o.exit_code,
                error: o.error.as_ref().map(WireError::from_error),
                stdout_bytes: o.output.stdout_bytes,
                stderr_bytes: o.output.stderr_bytes,
                truncated: o.output.truncated,
            },
            Err(e) => Self::Failed {
                error: WireError::from_error(e),
            },
        }
    }

    /// The run's result on the control side.
    pub fn into_result(self) -> Result<RunOutcome, TransportError> {
        match self {
            Self::Ended {
                outcome,
                exit_code,
                error,
                stdout_bytes,
                stderr_bytes,
                truncated,
            } => {
                let output = OutputCounts {
                    stdout_bytes,
                    stderr_bytes,
                    truncated,
                };
                Ok(match error {
                    None if outcome == HostOutcome::Success => {
                        RunOutcome::exited(exit_code.unwrap_or(0), output)
                    }
                    None => RunOutcome::ended_by(
                        TransportError::Failed {
                            reason: format!("the agent reported {outcome:?} without a reason"),
                            source: None,
                        },
                        exit_code,
                        output,
                    ),
                    Some(e) => {
                        let mut o = RunOutcome::ended_by(e.into_error(), exit_code, output);
                        o.outcome = outcome;
                        o
                    }
                })
            }
            Self::Failed { error } => Err(error.into_error()),
        }
    }
}

/// A [`TransportError`] on the wire: its stable code, its message and the fields that
/// rebuild it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    /// [`TransportError::code`].
    pub code: String,
    /// The error's text, for people.
    pub message: String,
    /// The spec field (`invalid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The reason (`invalid`, `unsupported`, `failed`, `unreachable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The path (`not_found`, `too_large`, `checksum_mismatch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The exit code (`non_zero_exit`) or signal (`killed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<i32>,
    /// The timeout that passed, in milliseconds (`timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_ms: Option<u64>,
    /// The size limit (`too_large`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// The expected digest (`checksum_mismatch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// The digest found (`checksum_mismatch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
}

impl WireError {
    /// The wire form of `e`.
    pub fn from_error(e: &TransportError) -> Self {
        let mut w = Self {
            code: e.code().to_owned(),
            message: e.to_string(),
            field: None,
            reason: None,
            path: None,
            number: None,
            after_ms: None,
            limit: None,
            expected: None,
            actual: None,
        };
        match e {
            TransportError::Unreachable { reason, .. }
            | TransportError::AuthenticationFailed { reason }
            | TransportError::HostKeyMismatch { reason }
            | TransportError::Unsupported { reason }
            | TransportError::Failed { reason, .. } => w.reason = Some(reason.clone()),
            TransportError::Timeout { after } => {
                w.after_ms = Some(u64::try_from(after.as_millis()).unwrap_or(u64::MAX));
            }
            TransportError::NonZeroExit { code } => w.number = Some(*code),
            TransportError::Killed { signal } => w.number = Some(*signal),
            TransportError::ChecksumMismatch {
                path,
                expected,
                actual,
            } => {
                w.path = Some(path.clone());
                w.expected = Some(expected.as_str().to_owned());
                w.actual = Some(actual.as_str().to_owned());
            }
            TransportError::NotFound { path } => w.path = Some(path.clone()),
            TransportError::TooLarge { path, limit } => {
                w.path = Some(path.clone());
                w.limit = Some(*limit);
            }
            TransportError::Invalid { field, reason } => {
                w.field = Some(field.clone());
                w.reason = Some(reason.clone());
            }
            _ => {}
        }
        w
    }

    /// A failure with `code` and `reason`, made by the agent itself.
    pub fn failed(reason: impl Into<String>) -> Self {
        Self::from_error(&TransportError::Failed {
            reason: reason.into(),
            source: None,
        })
    }

    /// The error on the control side; an unknown code becomes
    /// [`TransportError::Failed`] with the message.
    pub fn into_error(self) -> TransportError {
        let reason = self.reason.clone().unwrap_or_else(|| self.message.clone());
        let path = self.path.clone().unwrap_or_default();
        let digest = |d: &Option<String>| {
            d.as_deref()
                .and_then(|d| Sha256Hex::parse("sha256", d).ok())
        };
        match self.code.as_str() {
            "unreachable" => TransportError::Unreachable {
                reason,
                source: None,
            },
            "authentication_failed" => TransportError::AuthenticationFailed { reason },
            "host_key_mismatch" => TransportError::HostKeyMismatch { reason },
            "timeout" => TransportError::Timeout {
                after: Duration::from_millis(self.after_ms.unwrap_or_default()),
            },
            "cancelled" => TransportError::Cancelled,
            "non_zero_exit" => TransportError::NonZeroExit {
                code: self.number.unwrap_or(1),
            },
            "killed" => TransportError::Killed {
                signal: self.number.unwrap_or_default(),
            },
            "checksum_mismatch" => match (digest(&self.expected), digest(&self.actual)) {
                (Some(expected), Some(actual)) => TransportError::ChecksumMismatch {
                    path,
                    expected,
                    actual,
                },
                _ => TransportError::Failed {
                    reason: self.message,
                    source: None,
                },
            },
            "not_found" => TransportError::NotFound { path },
            "too_large" => TransportError::TooLarge {
                path,
                limit: self.limit.unwrap_or_default(),
            },
            "unsupported" => TransportError::Unsupported { reason },
            "invalid" => TransportError::Invalid {
                field: self.field.unwrap_or_default(),
                reason,
            },
            _ => TransportError::Failed {
                reason,
                source: None,
            },
        }
    }
}

/// Stops a running task or file transfer on an agent (core NATS, on its cancel subject).
/// The control side repeats it every second until the operation ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelRequest {
    /// The task id or transfer id.
    pub id: String,
}

/// Asks an agent to write a file that waits in the files bucket (request/reply).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRequest {
    /// Names this transfer for a cancel.
    pub transfer_id: String,
    /// The object's name in the files bucket.
    pub object: String,
    /// The absolute destination path on the agent's host.
    pub destination: String,
    /// `overwrite` or `skip`.
    pub if_exists: WireIfExists,
    /// Permission bits; `None` means `0o644`.
    #[serde(default)]
    pub mode: Option<u32>,
    /// The sha256 the written file must have.
    pub sha256: String,
}

/// [`IfExists`] on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireIfExists {
    /// Replace an existing file.
    Overwrite,
    /// Keep an existing file.
    Skip,
}

impl From<IfExists> for WireIfExists {
    fn from(v: IfExists) -> Self {
        match v {
            IfExists::Overwrite => Self::Overwrite,
            IfExists::Skip => Self::Skip,
        }
    }
}

impl From<WireIfExists> for IfExists {
    fn from(v: WireIfExists) -> Self {
        match v {
            WireIfExists::Overwrite => Self::Overwrite,
            WireIfExists::Skip => Self::Skip,
        }
    }
}

/// An agent's answer to a [`PushRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum PushReply {
    /// Written and verified.
    Written {
        /// Its size.
        bytes: u64,
        /// Its sha256.
        sha256: String,
    },
    /// The destination existed and was kept.
    Skipped,
    /// Nothing was written.
    Failed {
        /// Why.
        error: WireError,
    },
}

/// Asks an agent for the bytes of one file (request/reply); it answers with a
/// [`PullReply`] once the bytes wait in the files bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    /// Names this transfer (and the object the agent writes).
    pub transfer_id: String,
    /// The absolute path on the agent's host.
    pub path: String,
    /// The largest file accepted.
    pub max_bytes: u64,
}

/// An agent's answer to a [`PullRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum PullReply {
    /// The bytes wait in the files bucket under `object`.
    Ready {
        /// The object's name.
        object: String,
        /// Its size.
        bytes: u64,
        /// Its sha256.
        sha256: String,
    },
    /// Nothing to fetch.
    Failed {
        /// Why.
        error: WireError,
    },
}

/// An agent's registration, the value under its id in the agents bucket; rewritten at
/// every heartbeat (the entry's server-side timestamp is its "last seen").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    /// The agent's id.
    pub agent_id: String,
    /// Its host's name.
    pub hostname: String,
    /// Its host's addresses, as it sees them.
    pub addresses: Vec<String>,
    /// `linux`, `macos`, …
    pub os: String,
    /// The agent's version.
    pub version: String,
    /// When this agent process started.
    pub started_at: DateTime<Utc>,
    /// Its heartbeat interval, in milliseconds.
    pub heartbeat_ms: u64,
    /// Set when the agent stopped cleanly: it is offline at once, not after a timeout.
    #[serde(default)]
    pub stopped: bool,
}

/// The wire name of an output stream.
pub fn stream_name(stream: OutputStream) -> &'static str {
    match stream {
        OutputStream::Stdout => "stdout",
        OutputStream::Stderr => "stderr",
        OutputStream::System => "system",
    }
}

/// The output stream named `name`.
pub fn parse_stream(name: &str) -> Option<OutputStream> {
    match name {
        "stdout" => Some(OutputStream::Stdout),
        "stderr" => Some(OutputStream::Stderr),
        "system" => Some(OutputStream::System),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_kind_survives_the_trip_over_the_wire() {
        let sha = |c: char| Sha256Hex::parse("sha256", &c.to_string().repeat(64)).unwrap();
        let errors = [
            TransportError::Timeout {
                after: Duration::from_millis(1500),
            },
            TransportError::Cancelled,
            TransportError::NonZeroExit { code: 3 },
            TransportError::Killed { signal: 9 },
            TransportError::NotFound { path: "/x".into() },
            TransportError::TooLarge {
                path: "/x".into(),
                limit: 3,
            },
            TransportError::invalid("workdir", "must not be empty"),
            TransportError::ChecksumMismatch {
                path: "/x".into(),
                expected: sha('a'),
                actual: sha('b'),
            },
            TransportError::unsupported("no pwsh"),
        ];
        for e in errors {
            let json = serde_json::to_string(&WireError::from_error(&e)).unwrap();
            let back: WireError = serde_json::from_str(&json).unwrap();
            let back = back.into_error();
            assert_eq!(back.code(), e.code());
            assert_eq!(back.to_string(), e.to_string());
        }
    }

    #[test]
    fn a_task_keeps_every_field_on_the_way_to_the_agent() {
        let spec = TaskSpec::bash("echo hi")
            .with_env("A", "1")
            .with_workdir("/tmp")
            .with_script_args(["x"])
            .with_output_limit(10)
            .with_timeout(Duration::from_millis(2500));
        let req = TaskRequest::new("t", "a", &spec, Utc::now());
        let json = serde_json::to_vec(&req).unwrap();
        let back: TaskRequest = serde_json::from_slice(&json).unwrap();
        assert_eq!(back.to_spec(), spec);
    }
}
