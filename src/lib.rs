//! `job`: the facade of the job-execution platform.
//!
//! It re-exports [`job_core`] (the model, the status machine, policy, templating and the
//! traits every backend implements) as [`core`], and each backend crate behind a feature of
//! the same name, so an embedding application depends on one crate and picks its backends:
//!
//! | feature    | re-export           | what it is                                      |
//! |------------|---------------------|-------------------------------------------------|
//! | `sqlite`   | [`store_sqlite`]    | the embedded SQLite store (default)             |
//! | `postgres` | `store_postgres`    | the PostgreSQL store for clusters               |
//! | `local`    | [`transport_local`] | run tasks as local processes (default)          |
//! | `ssh`      | `transport_ssh`     | agentless targets over SSH                      |
//! | `nats`     | `transport_nats`    | agents, open interfaces and the bus over NATS   |
//! | `http`     | `http`              | REST, SSE and the web console (axum)            |
//!
//! `full` turns them all on.

pub use job_core as core;

#[cfg(feature = "http")]
pub use job_http as http;
#[cfg(feature = "postgres")]
pub use job_store_postgres as store_postgres;
#[cfg(feature = "sqlite")]
pub use job_store_sqlite as store_sqlite;
#[cfg(feature = "local")]
pub use job_transport_local as transport_local;
#[cfg(feature = "nats")]
pub use job_transport_nats as transport_nats;
#[cfg(feature = "ssh")]
pub use job_transport_ssh as transport_ssh;
