//! Names on the bus: the namespace prefix, agent ids, subjects, streams and buckets.
//!
//! Everything the crate puts on NATS lives under one prefix (default `jobd`), so several
//! installations can share a server. `docs/agent.md` lists the subjects and streams.

use std::fmt;

use job_core::Error;
use job_core::ids::ExecutionId;

/// The prefix of every subject, stream and bucket this crate uses (default `jobd`).
///
/// One subject token: 1–32 ASCII letters, digits, `_` or `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Namespace(String);

impl Namespace {
    /// The default prefix, `jobd`.
    pub const DEFAULT: &'static str = "jobd";

    /// Checks `prefix` as the field `field`.
    pub fn parse(field: &str, prefix: &str) -> Result<Self, Error> {
        if prefix.is_empty() || prefix.len() > 32 || !is_token(prefix) {
            return Err(Error::invalid(
                field,
                "must be 1 to 32 ASCII letters, digits, `_` or `-`",
            ));
        }
        Ok(Self(prefix.to_owned()))
    }

    /// The prefix as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Where tasks for `agent` are published (stream [`Namespace::tasks_stream`]).
    pub fn tasks_subject(&self, agent: &AgentId) -> String {
        format!("{}.agent.{agent}.tasks", self.0)
    }

    /// Where cancels for `agent`'s tasks and transfers are sent (core NATS).
    pub fn cancel_subject(&self, agent: &AgentId) -> String {
        format!("{}.agent.{agent}.cancel", self.0)
    }

    /// Where push requests for `agent` are sent (core NATS request/reply).
    pub fn push_subject(&self, agent: &AgentId) -> String {
        format!("{}.agent.{agent}.push", self.0)
    }

    /// Where pull requests for `agent` are sent (core NATS request/reply).
    pub fn pull_subject(&self, agent: &AgentId) -> String {
        format!("{}.agent.{agent}.pull", self.0)
    }

    /// Where the agent publishes what a task produced (stream
    /// [`Namespace::results_stream`]).
    pub fn results_subject(&self, task_id: &str) -> String {
        format!("{}.results.{task_id}", self.0)
    }

    /// Where the live events of `execution` are published (core NATS).
    pub fn events_subject(&self, execution: ExecutionId) -> String {
        format!("{}.events.{execution}", self.0)
    }

    /// Where a node says it has stored work for any engine to claim (core NATS, empty
    /// messages): a launch on one node wakes the engines of the others.
    pub fn pending_subject(&self) -> String {
        format!("{}.engine.pending", self.0)
    }

    /// The JetStream stream holding tasks not yet taken by their agent (work queue).
    pub fn tasks_stream(&self) -> String {
        format!("{}_tasks", self.0)
    }

    /// The JetStream stream holding tasks' output and results.
    pub fn results_stream(&self) -> String {
        format!("{}_results", self.0)
    }

    /// The key-value bucket of agent registrations and heartbeats.
    pub fn agents_bucket(&self) -> String {
        format!("{}_agents", self.0)
    }

    /// The object-store bucket of files on their way to or from agents.
    pub fn files_bucket(&self) -> String {
        format!("{}_files", self.0)
    }

    /// The durable consumer through which `agent` takes its tasks.
    pub fn agent_consumer(&self, agent: &AgentId) -> String {
        format!("agent_{agent}")
    }
}

impl Default for Namespace {
    fn default() -> Self {
        Self(Self::DEFAULT.to_owned())
    }
}

/// An agent's id, as it registers itself and as agent-mode targets name it.
///
/// One subject token: 1–128 ASCII letters, digits, `_` or `-` (a host name's dots become
/// `-` in [`AgentId::from_hostname`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId(String);

impl AgentId {
    /// Checks `id` as the field `field`.
    pub fn parse(field: &str, id: &str) -> Result<Self, Error> {
        if id.is_empty() || id.len() > 128 || !is_token(id) {
            return Err(Error::invalid(
                field,
                "must be 1 to 128 ASCII letters, digits, `_` or `-`",
            ));
        }
        Ok(Self(id.to_owned()))
    }

    /// An id made from a host name: characters other than letters, digits, `_` and `-`
    /// become `-`; an empty name becomes `agent`.
    pub fn from_hostname(hostname: &str) -> Self {
        let id: String = hostname
            .chars()
            .take(128)
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        if id.is_empty() {
            Self("agent".to_owned())
        } else {
            Self(id)
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_token(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_prefixes_that_would_break_a_subject_are_refused_naming_the_field() {
        for bad in ["", "a.b", "a b", "a*", "a>", "é"] {
            match AgentId::parse("agent_id", bad) {
                Err(Error::Invalid { field, .. }) => assert_eq!(field, "agent_id"),
                other => panic!("{bad:?}: {other:?}"),
            }
            assert!(Namespace::parse("prefix", bad).is_err(), "{bad:?}");
        }
        assert!(AgentId::parse("agent_id", "web-01_a").is_ok());
    }

    #[test]
    fn a_host_name_becomes_a_usable_agent_id() {
        assert_eq!(
            AgentId::from_hostname("web-1.example.com").as_str(),
            "web-1-example-com"
        );
        assert_eq!(AgentId::from_hostname("").as_str(), "agent");
    }

    #[test]
    fn subjects_are_built_under_the_prefix() {
        let ns = Namespace::parse("prefix", "ops").unwrap();
        let agent = AgentId::parse("agent_id", "web-1").unwrap();
        assert_eq!(ns.tasks_subject(&agent), "ops.agent.web-1.tasks");
        assert_eq!(ns.results_subject("t1"), "ops.results.t1");
        assert_eq!(ns.tasks_stream(), "ops_tasks");
    }
}
