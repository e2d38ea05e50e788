//! SQLite implementation of [`job_core`]'s [`Store`](job_core::store::Store) traits: the
//! embedded default of `jobd`.
//!
//! One database file in WAL mode, foreign keys on, a busy timeout, and two pools: a single
//! writer connection, so write transactions are serialized (a compare-and-set or a claim can
//! never race another write), and a pool of readers that keep reading while a write is in
//! progress. The schema's migrations are embedded and applied on [`SqliteStore::open`].
//!
//! ```no_run
//! # async fn demo() -> job_core::Result<()> {
//! use job_core::store::{IdentityStore, TeamScope};
//! let store = job_store_sql::sqlite::SqliteStore::open("jobd.db").await?;
//! let teams = store.list_teams(&TeamScope::All).await?;
//! # let _ = teams; Ok(()) }
//! ```

mod dialect;
// Each backend compiles the shared queries once for its own dialect: loading the folder
// once per backend is the design, not a mistake.
#[allow(
    clippy::duplicate_mod,
    reason = "the shared queries are compiled once per backend"
)]
#[path = "../queries/mod.rs"]
mod queries;

use std::path::{Path, PathBuf};
use std::time::Duration;

use job_core::{Error, Result};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// How to open a SQLite store. The defaults suit one machine.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// The database file; created when missing.
    pub path: PathBuf,
    /// How many reader connections to keep (default 4).
    pub readers: u32,
    /// How long a statement waits for a lock held by another process (default 5 s).
    pub busy_timeout: Duration,
}

impl SqliteOptions {
    /// Defaults for the database file at `path`.
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_owned(),
            readers: 4,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// The SQLite store. Cheap to clone: clones share the pools.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
}

/// The store the shared queries are compiled for.
type SqlStore = SqliteStore;

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` with default options and applies
    /// pending migrations.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(&SqliteOptions::new(path)).await
    }

    /// Opens the database described by `options` and applies pending migrations.
    pub async fn open_with(options: &SqliteOptions) -> Result<Self> {
        let connect = SqliteConnectOptions::new()
            .filename(&options.path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(connect.clone().optimize_on_close(true, 1000))
            .await
            .map_err(|e| {
                Error::unavailable(
                    format!(
                        "cannot open the SQLite database `{}`",
                        options.path.display()
                    ),
                    e,
                )
            })?;
        dialect::migrator()
            .await?
            .run(&write)
            .await
            .map_err(|e| Error::unavailable("cannot apply the SQLite migrations", e))?;
        let read = SqlitePoolOptions::new()
            .max_connections(options.readers.max(1))
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(connect.pragma("query_only", "ON"))
            .await
            .map_err(|e| Error::unavailable("cannot open SQLite reader connections", e))?;
        Ok(Self { write, read })
    }

    /// Closes every connection, waiting for running statements.
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }

    /// The single writer connection's pool: every write transaction goes through it.
    pub(crate) fn writer(&self) -> &SqlitePool {
        &self.write
    }

    /// The readers' pool.
    pub(crate) fn reader(&self) -> &SqlitePool {
        &self.read
    }
}
