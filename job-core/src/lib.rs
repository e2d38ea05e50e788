//! `job-core`: the pure heart of the job platform.
//!
//! It holds the domain model ([`model`]), values checked at the edge ([`values`]), the
//! status machine ([`status`]), schedule math ([`schedule`]) and the injected [`clock`];
//! later parts add policy, templating, the backend traits (`Store`, `Transport`,
//! `BlobStore`, `EventBus`), the engine and their conformance suites (`testkit`).
//!
//! It depends on no backend and no adapter: no sqlx, no russh, no axum, no async-nats.
//! Backends depend on it and meet each other only through its traits.
//!
//! ```
//! use job_core::status::{Event, ExecutionMachine, ExecutionStatus, HostOutcome};
//!
//! let mut run = ExecutionMachine::new(2)?;
//! run.apply(Event::Start)?;
//! run.apply(Event::HostFinished { host: 0, outcome: HostOutcome::Success })?;
//! run.apply(Event::HostFinished { host: 1, outcome: HostOutcome::Failed })?;
//! assert_eq!(run.status(), ExecutionStatus::Failed);
//! # Ok::<(), job_core::Error>(())
//! ```

pub mod bus;
pub mod callback;
pub mod clock;
pub mod engine;
mod error;
pub mod ids;
pub mod interpreter;
pub mod launch;
pub mod model;
pub mod policy;
mod rule_hit;
pub mod schedule;
pub mod secret;
pub mod status;
pub mod store;
pub mod template;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod transport;
pub mod values;

pub use error::{BoxError, Error, Result};
pub use rule_hit::PolicyHit;
