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
//! | `http`     | `http`              | the REST API and SSE live output (axum)         |
//!
//! `full` turns them all on.
//!
//! # How the pieces fit
//!
//! An embedding application opens a store (`store_sqlite::SqliteStore` or
//! `store_postgres::PgStore`; both implement [`core::store::Store`]), gives an
//! [`core::engine::Engine`] that store, an [`core::bus::EventBus`] and a
//! [`core::engine::HostConnector`] that picks a [`core::transport::Transport`] per target
//! (local processes, SSH or NATS agents), and runs the engine. Executions are born through the
//! use cases in [`core::launch`] (`launch_script`, `launch_file_distribution`, `re_execute`),
//! which check values, team access and high-risk rules before anything is stored; the engine
//! claims them, fans them out and folds the results through the status machine.
//! `examples/embed-quick-execute` shows the value types and the status machine on their own;
//! `jobd` (the `job-bin` crate) is the full composition.

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
