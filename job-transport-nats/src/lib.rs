//! Everything the job platform does over NATS: agent mode, the cluster event bus and the
//! open interfaces.
//!
//! - [`agent`]: the resident agent (`jobd agent`). It connects to NATS (retrying until it
//!   can, reconnecting forever), registers and heartbeats in the key-value bucket
//!   `{prefix}_agents`, takes its tasks from the JetStream stream `{prefix}_tasks`, runs
//!   them with the runner it is given (`job_transport_local::LocalTransport` in `jobd
//!   agent`), publishes output and results to the stream `{prefix}_results`, and moves
//!   files through the object store `{prefix}_files`.
//! - [`NatsTransport`]: the control side, a [`job_core::transport::Transport`] for targets
//!   with [`HostAccess::Agent`](job_core::transport::HostAccess::Agent). An offline agent
//!   fails a run at once ([`TransportError::Unreachable`](job_core::transport::TransportError::Unreachable),
//!   "agent X is offline, last seen …"); [`NatsTransport::agent_status`] tells whether an
//!   agent is online and when it was last seen.
//! - [`NatsEventBus`]: a [`job_core::bus::EventBus`] over core NATS subjects
//!   `{prefix}.events.{execution_id}`, so any control node can serve any execution's live
//!   stream.
//! - [`api`]: the NATS open interfaces (`job_script_execute`, `job_task_terminate`, …) on
//!   `{prefix}.{method}`, request/reply for other platform services; `docs/nats-api.md`
//!   describes each method.
//!
//! Guarantees: a task delivered twice runs once (JetStream message-id dedupe plus the
//! agent's own record of the tasks it started); output and results are stored in
//! JetStream before the agent moves on, so a control node that restarts mid-run, or a
//! NATS server that restarts, loses none of them, and a follower passes each event on
//! exactly once. `docs/agent.md` describes the subjects, message formats and failure
//! behaviour.

pub mod agent;
pub mod api;
mod bus;
mod naming;
mod setup;
mod transport;
pub mod wire;

pub use bus::NatsEventBus;
pub use naming::{AgentId, Namespace};
pub use setup::Retention;
pub use transport::{AgentStatus, AgentTask, NatsConfig, NatsTransport};

/// The async-nats client this crate is built on, for callers that share a connection.
pub use async_nats;
