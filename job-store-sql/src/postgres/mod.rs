//! PostgreSQL implementation of [`job_core`]'s [`Store`](job_core::store::Store) traits, for
//! clusters of `jobd` nodes sharing one database.
//!
//! One connection pool; claims of pending executions and due outbox entries lock their rows
//! with `FOR NO KEY UPDATE SKIP LOCKED`, so concurrent nodes never get the same row and never
//! wait for each other; compare-and-set moves are single conditional `UPDATE`s under row
//! locks. The schema's migrations are embedded and applied on [`PgStore::open`]; sqlx holds
//! a PostgreSQL advisory lock while it migrates, so nodes starting at once apply each
//! migration exactly once.
//!
//! ```no_run
//! # async fn demo() -> job_core::Result<()> {
//! use job_core::store::{IdentityStore, TeamScope};
//! let store = job_store_sql::postgres::PgStore::open("postgres://jobd@db.internal/jobd").await?;
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

use std::time::Duration;

use job_core::{Error, Result};
use sqlx::postgres::{PgPool, PgPoolOptions};

/// How to open a PostgreSQL store. The defaults suit a small cluster.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// The connection URL, `postgres://user:password@host:port/database?sslmode=…`.
    pub url: String,
    /// The most connections this node keeps (default 16).
    pub max_connections: u32,
    /// How long to wait for a free connection (default 30 s).
    pub acquire_timeout: Duration,
}

impl PgOptions {
    /// Defaults for the database at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

/// The PostgreSQL store. Cheap to clone: clones share the pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

/// The store the shared queries are compiled for.
type SqlStore = PgStore;

impl PgStore {
    /// Connects to `url` with default options and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self> {
        Self::open_with(&PgOptions::new(url)).await
    }

    /// Connects as described by `options` and applies pending migrations.
    pub async fn open_with(options: &PgOptions) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect(&options.url)
            .await
            .map_err(|e| Error::unavailable("cannot connect to PostgreSQL", e))?;
        Self::from_pool(pool).await
    }

    /// Uses an existing pool and applies pending migrations.
    pub async fn from_pool(pool: PgPool) -> Result<Self> {
        dialect::migrator()
            .await?
            .run(&pool)
            .await
            .map_err(|e| Error::unavailable("cannot apply the PostgreSQL migrations", e))?;
        Ok(Self { pool })
    }

    /// Closes every connection, waiting for running statements.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The pool write transactions use.
    pub(crate) fn writer(&self) -> &PgPool {
        &self.pool
    }

    /// The pool reads use (the same one).
    pub(crate) fn reader(&self) -> &PgPool {
        &self.pool
    }
}
