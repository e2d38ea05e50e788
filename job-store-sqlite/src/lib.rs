//! SQLite implementation of [`job_core`]'s [`Store`](job_core::store::Store) traits: the
//! embedded default of `jobd`.
//!
//! One database file in WAL mode, foreign keys on, a busy timeout, and two pools: a single
//! writer connection, so write transactions are serialized (a compare-and-set or a claim can
//! never race another write), and a pool of readers that keep reading while a write is in
//! progress. The schema's migrations are embedded and applied on [`SqliteStore::open`].
//!
//! The queries are `job-store-sql`'s, compiled for SQLite; this crate is its SQLite face.
//!
//! ```no_run
//! # async fn demo() -> job_core::Result<()> {
//! use job_core::store::{IdentityStore, TeamScope};
//! let store = job_store_sqlite::SqliteStore::open("jobd.db").await?;
//! let teams = store.list_teams(&TeamScope::All).await?;
//! # let _ = teams; Ok(()) }
//! ```

pub use job_store_sql::sqlite::{SqliteOptions, SqliteStore};
