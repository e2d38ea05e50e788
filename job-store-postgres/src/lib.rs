//! PostgreSQL implementation of [`job_core`]'s [`Store`](job_core::store::Store) traits, for
//! clusters of `jobd` nodes sharing one database.
//!
//! One connection pool; claims of pending executions and due outbox entries lock their rows
//! with `SKIP LOCKED`, so concurrent nodes never get the same row and never wait for each
//! other; compare-and-set moves are single conditional `UPDATE`s under row locks. The
//! schema's migrations are embedded and applied on [`PgStore::open`]; sqlx holds a
//! PostgreSQL advisory lock while it migrates, so nodes starting at once apply each
//! migration exactly once.
//!
//! The queries are `job-store-sql`'s, compiled for PostgreSQL; this crate is its PostgreSQL
//! face.
//!
//! ```no_run
//! # async fn demo() -> job_core::Result<()> {
//! use job_core::store::{IdentityStore, TeamScope};
//! let store = job_store_postgres::PgStore::open("postgres://jobd@db.internal/jobd").await?;
//! let teams = store.list_teams(&TeamScope::All).await?;
//! # let _ = teams; Ok(()) }
//! ```

pub use job_store_sql::postgres::{PgOptions, PgStore};
