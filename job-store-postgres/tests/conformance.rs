//! The whole `job_core::testkit` store conformance suite against a real PostgreSQL server.
//!
//! Each case runs in a throwaway database (`jobtest_<uuid>`) created through the server at
//! `JOB_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`) and dropped after it
//! passed. When the server cannot be reached the cases are skipped with a notice, unless
//! `CI=true`, where they fail.

use std::str::FromStr;

use job_store_postgres::PgStore;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn server_url() -> String {
    std::env::var("JOB_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A store on its own throwaway database.
struct TestDb {
    store: PgStore,
    name: String,
}

impl std::ops::Deref for TestDb {
    type Target = PgStore;
    fn deref(&self) -> &PgStore {
        &self.store
    }
}

/// Connects to the server, or says why the tests cannot run: `None` (skip) outside CI, a
/// panic under `CI=true`.
async fn admin() -> Option<PgConnection> {
    let url = server_url();
    match PgConnection::connect(&url).await {
        Ok(c) => Some(c),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("PostgreSQL at {url} cannot be reached and CI=true, so this is a failure: {e}")
        }
        Err(e) => {
            eprintln!("notice: skipping the PostgreSQL store tests: {url} cannot be reached ({e})");
            None
        }
    }
}

/// Creates an empty database and returns its connect options.
async fn empty_database() -> Option<(String, PgConnectOptions)> {
    let mut admin = admin().await?;
    let name = format!("jobtest_{}", uuid::Uuid::now_v7().simple());
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create the test database");
    let _ = admin.close().await;
    let options = PgConnectOptions::from_str(&server_url())
        .expect("a valid JOB_TEST_PG_URL")
        .database(&name);
    Some((name, options))
}

async fn open(options: PgConnectOptions) -> PgStore {
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .expect("connect to the test database");
    PgStore::from_pool(pool).await.expect("open the store")
}

async fn fresh() -> Option<TestDb> {
    let (name, options) = empty_database().await?;
    Some(TestDb {
        store: open(options).await,
        name,
    })
}

async fn drop_database(db: TestDb) {
    db.store.close().await;
    if let Some(mut admin) = admin().await {
        let _ = admin
            .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.name).as_str())
            .await;
    }
}

job_core::store_conformance_tests!(fresh, drop_database);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_passes_in_a_row_on_one_shared_database() {
    let Some(db) = fresh().await else { return };
    job_core::testkit::store::run_all(&*db).await;
    drop_database(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_at_once_apply_the_migrations_once() {
    let Some((name, options)) = empty_database().await else {
        return;
    };
    let stores = job_core::testkit::store::fixtures::join_all(
        (0..4).map(|_| open(options.clone())).collect(),
    )
    .await;
    let mut conn = PgConnection::connect_with(&options).await.expect("connect");
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .expect("count migrations");
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .expect("the migrations directory")
        .filter(|f| {
            f.as_ref()
                .is_ok_and(|f| f.path().extension().is_some_and(|x| x == "sql"))
        })
        .count();
    assert_eq!(applied, files as i64, "each migration applied once");
    let _ = conn.close().await;
    let mut stores = stores.into_iter();
    let first = stores.next().expect("a store");
    for s in stores {
        s.close().await;
    }
    drop_database(TestDb { store: first, name }).await;
}
