//! The whole `job_core::testkit` store conformance suite against SQLite: each case on a
//! fresh database file, and all of them in a row on one shared database.

use job_store_sqlite::SqliteStore;

/// A store on a fresh database in its own temporary directory (kept alive with it).
struct Fresh {
    store: SqliteStore,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Fresh {
    type Target = SqliteStore;
    fn deref(&self) -> &SqliteStore {
        &self.store
    }
}

async fn fresh() -> Option<Fresh> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(dir.path().join("job.db"))
        .await
        .expect("open store");
    Some(Fresh { store, _dir: dir })
}

job_core::store_conformance_tests!(fresh);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_passes_in_a_row_on_one_shared_database() {
    let store = fresh().await.expect("a fresh store");
    job_core::testkit::store::run_all(&*store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_a_database_keeps_its_data_and_migrations_apply_once() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("job.db");
    let store = SqliteStore::open(&path).await.expect("open");
    let team = job_core::testkit::store::fixtures::team(&store, "reopen").await;
    store.close().await;
    let again = SqliteStore::open(&path).await.expect("reopen");
    use job_core::store::{IdentityStore, TeamScope};
    assert_eq!(
        again
            .get_team(&TeamScope::All, team.id)
            .await
            .expect("team"),
        team
    );
}
