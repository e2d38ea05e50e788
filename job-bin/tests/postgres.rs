//! `jobd` on PostgreSQL (`JOBD_DATABASE_URL=postgres://…`): migrate, serve, run a command on
//! the control node. Each test uses a throwaway database on the server at `JOB_TEST_PG_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`), created and dropped with `psql`.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{ADMIN_PASSWORD, Jobd, Session, host, jobd, run, text};
use job_testsupport::require_service;

fn server_url() -> String {
    std::env::var("JOB_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn psql(sql: &str) -> Result<(), String> {
    let out = Command::new("psql")
        .args(["-v", "ON_ERROR_STOP=1", "-tAc", sql, &server_url()])
        .output()
        .map_err(|e| format!("psql: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A database of its own, dropped at the end.
struct Database {
    name: String,
}

impl Database {
    fn create() -> Option<Self> {
        if !require_service("PostgreSQL (psql)", psql("SELECT 1")) {
            return None;
        }
        let name = format!(
            "jobd_bin_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        psql(&format!("CREATE DATABASE {name}")).expect("create the test database");
        Some(Self { name })
    }

    fn url(&self) -> String {
        let base = server_url();
        let server = base.rsplit_once('/').map_or(base.as_str(), |(s, _)| s);
        format!("{server}/{}", self.name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

#[tokio::test]
async fn jobd_migrates_and_serves_on_postgresql() {
    let Some(db) = Database::create() else {
        return;
    };
    let (_dir, data) = common::data_dir();
    let mut cmd = jobd(&data);
    cmd.arg("migrate").env("JOBD_DATABASE_URL", db.url());
    let out = run(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("postgresql") && said.contains("up to date"),
        "{said}"
    );
    assert!(!said.contains(&db.url()), "the URL is never echoed: {said}");

    let mut jobd = Jobd::start_with(
        &data,
        &[
            ("JOBD_DATABASE_URL", &db.url()),
            ("JOBD_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ],
    );
    assert!(
        !data.join("jobd.db").exists(),
        "no SQLite file on PostgreSQL"
    );
    let admin = Session::login(&jobd.base, "admin", ADMIN_PASSWORD).await;
    let local = admin.target_id("control-node").await;
    let id = admin.quick(&[&local], "echo from postgres").await;
    let done = admin.wait_final(&id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "success", "{done:#}");
    assert_eq!(host(&done)["exit_code"], 0);
    jobd.stop(Duration::from_secs(30));
}
