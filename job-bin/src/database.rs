//! Opening the store the configuration names: SQLite (the embedded default) or PostgreSQL.
//! Both apply their pending schema migrations when opened.

use std::sync::Arc;

use job_core::store::Store;
use job_store_postgres::PgStore;
use job_store_sqlite::SqliteStore;

use crate::config::Database;

/// An open store, kept concrete so it can be closed cleanly at the end.
#[derive(Debug, Clone)]
pub(crate) enum OpenStore {
    /// SQLite.
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(PgStore),
}

impl OpenStore {
    /// Opens (creating an SQLite file and its directory if needed) and migrates.
    pub(crate) async fn open(database: &Database) -> Result<Self, String> {
        match database {
            Database::Sqlite(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        format!("cannot create the directory {}: {e}", parent.display())
                    })?;
                }
                SqliteStore::open(path)
                    .await
                    .map(Self::Sqlite)
                    .map_err(|e| format!("cannot open the database ({database}): {e}"))
            }
            Database::Postgres(url) => PgStore::open(url)
                .await
                .map(Self::Postgres)
                .map_err(|e| format!("cannot open the database ({database}): {e}")),
        }
    }

    /// The store as the use cases take it.
    pub(crate) fn shared(&self) -> Arc<dyn Store> {
        match self {
            Self::Sqlite(s) => Arc::new(s.clone()),
            Self::Postgres(s) => Arc::new(s.clone()),
        }
    }

    /// Closes the pools (waits for their connections to finish).
    pub(crate) async fn close(&self) {
        match self {
            Self::Sqlite(s) => s.close().await,
            Self::Postgres(s) => s.close().await,
        }
    }
}
