//! `jobd serve` driven over HTTP as an operator would: first start, login, tokens, Quick
//! Execute on the control node, graceful shutdown and a crash. Runs the real binary.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{ADMIN_PASSWORD, Jobd, Session, host, jobd, run, text};
use serde_json::Value;

const FINISH: Duration = Duration::from_secs(30);

#[tokio::test]
async fn first_start_makes_a_private_key_and_shows_a_generated_admin_password_once() {
    let (_dir, data) = common::data_dir();
    let mut first = Jobd::start_with(&data, &[]);
    let stdout = first.stdout();
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("admin password: "))
        .unwrap_or_else(|| panic!("no admin password in: {stdout}"))
        .to_owned();
    assert!(password.len() >= 16, "{password}");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data.join("master.key")), 0o600);
    assert_eq!(mode(&data), 0o700);
    assert!(
        !first.stderr().contains(&password),
        "the password is never logged"
    );

    let admin = Session::login(&first.base, "admin", &password).await;
    let (status, me) = admin.get("/api/v1/auth/me").await;
    assert_eq!(status, 200, "{me}");
    let (status, _) = admin.get("/readyz").await;
    assert_eq!(status, 200);
    // The control node is a target of team `default`, ready to run commands.
    let (_, targets) = admin.get("/api/v1/targets").await;
    let local = targets["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "control-node")
        .unwrap_or_else(|| panic!("no control-node target: {targets}"));
    assert_eq!(local["mode"], "local");
    assert_eq!(local["address"], "127.0.0.1");
    assert!(
        local["tags"].to_string().contains("role=control-node"),
        "{local}"
    );
    first.stop(FINISH);

    let key = std::fs::read(data.join("master.key")).unwrap();
    let mut second = Jobd::start_with(&data, &[]);
    assert!(
        !second.stdout().contains("admin password"),
        "{}",
        second.stdout()
    );
    assert!(!second.stderr().contains(&password));
    assert_eq!(
        std::fs::read(data.join("master.key")).unwrap(),
        key,
        "the key is kept"
    );
    // The same password still works, and the control node is not registered twice.
    let admin = Session::login(&second.base, "admin", &password).await;
    let (_, targets) = admin.get("/api/v1/targets").await;
    let named = targets["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"] == "control-node")
        .count();
    assert_eq!(named, 1);
    second.stop(FINISH);
}

#[tokio::test]
async fn the_admin_password_can_be_given_and_is_not_echoed() {
    let (_dir, data) = common::data_dir();
    let mut jobd = Jobd::start(&data);
    assert!(!jobd.stdout().contains(ADMIN_PASSWORD));
    assert!(!jobd.stderr().contains(ADMIN_PASSWORD));
    Session::login(&jobd.base, "admin", ADMIN_PASSWORD).await;
    let refused = reqwest::Client::new()
        .post(jobd.url("/api/v1/auth/login"))
        .json(&serde_json::json!({"username": "admin", "password": "wrong"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    jobd.stop(FINISH);
}

#[test]
fn a_too_short_admin_password_is_refused_on_first_start() {
    let (_dir, data) = common::data_dir();
    let mut cmd = jobd(&data);
    cmd.arg("serve").env("JOBD_ADMIN_PASSWORD", "short");
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("JOBD_ADMIN_PASSWORD") && err.contains("at least 8"),
        "{err}"
    );
}

#[tokio::test]
async fn a_key_file_others_can_read_is_refused_at_start() {
    let (_dir, data) = common::data_dir();
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("master.key"), format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(
        data.join("master.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let mut cmd = jobd(&data);
    cmd.arg("serve");
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("master.key") && err.contains("chmod 600"),
        "{err}"
    );
    assert!(!err.contains(&"ab".repeat(32)), "the key is never shown");
}

#[tokio::test]
async fn a_created_token_authenticates_api_calls() {
    let (_dir, data) = common::data_dir();
    let mut server = Jobd::start(&data);
    let mut cmd = jobd(&data);
    cmd.args([
        "token", "create", "--user", "admin", "--team", "default", "--name", "ci",
    ]);
    cmd.args(["--expires-days", "30"]);
    let out = run(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let token = stdout.lines().last().unwrap().trim().to_owned();
    assert!(token.len() >= 32, "{stdout}");
    assert!(stdout.contains("`ci`"), "{stdout}");

    let http = reqwest::Client::new();
    let me: Value = http
        .get(server.url("/api/v1/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["user"]["username"], "admin", "{me}");
    let status = http
        .get(server.url("/api/v1/auth/me"))
        .header("Api-Authorization", &token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let status = http
        .get(server.url("/api/v1/auth/me"))
        .bearer_auth(format!("{token}x"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);

    // A team that does not exist is named.
    let mut cmd = jobd(&data);
    cmd.args([
        "token", "create", "--user", "admin", "--team", "nope", "--name", "ci2",
    ]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("unknown team `nope`"),
        "{}",
        text(&out.stderr)
    );
    server.stop(FINISH);
}

#[tokio::test]
async fn quick_execute_on_the_control_node_runs_end_to_end() {
    let (_dir, data) = common::data_dir();
    let mut jobd = Jobd::start(&data);
    let admin = Session::login(&jobd.base, "admin", ADMIN_PASSWORD).await;
    let local = admin.target_id("control-node").await;

    let id = admin
        .quick(
            &[&local],
            "echo hello from the control node\necho careful >&2\n",
        )
        .await;
    let done = admin.wait_final(&id, FINISH).await;
    assert_eq!(done["status"], "success", "{done:#}");
    assert_eq!(host(&done)["status"], "success");
    assert_eq!(host(&done)["exit_code"], 0);
    let (status, output) = admin.get(&format!("/api/v1/executions/{id}/output")).await;
    assert_eq!(status, 200);
    let text = output.to_string();
    assert!(text.contains("hello from the control node"), "{text}");
    assert!(text.contains("careful"), "{text}");

    let id = admin.quick(&[&local], "exit 3").await;
    let done = admin.wait_final(&id, FINISH).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(host(&done)["exit_code"], 3);

    // Runs do not see jobd's environment (its admin password, its key).
    let id = admin.quick(&[&local], "env").await;
    admin.wait_final(&id, FINISH).await;
    let (_, output) = admin.get(&format!("/api/v1/executions/{id}/output")).await;
    assert!(!output.to_string().contains("JOBD_"), "{output}");
    jobd.stop(FINISH);
}

async fn wait_running(admin: &Session, id: &str) {
    admin
        .wait_for(id, FINISH, |e| host(e)["status"] == "running")
        .await;
}

#[tokio::test]
async fn sigterm_lets_short_runs_finish_and_records_long_ones_as_interrupted() {
    let (_dir, data) = common::data_dir();
    let env = [
        ("JOBD_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("JOBD_SHUTDOWN_GRACE_SECS", "4"),
    ];
    let mut jobd = Jobd::start_with(&data, &env);
    let admin = Session::login(&jobd.base, "admin", ADMIN_PASSWORD).await;
    let local = admin.target_id("control-node").await;
    let short = admin.quick(&[&local], "sleep 2\necho finished").await;
    let long = admin.quick(&[&local], "sleep 300").await;
    wait_running(&admin, &short).await;
    wait_running(&admin, &long).await;

    let status = jobd.terminate(Duration::from_secs(60));
    assert!(
        status.success(),
        "exit {status:?}; stderr:\n{}",
        jobd.stderr()
    );

    let jobd = Jobd::start_with(&data, &env);
    let admin = Session::login(&jobd.base, "admin", ADMIN_PASSWORD).await;
    let short = admin.execution(&short).await;
    assert_eq!(short["status"], "success", "{short:#}");
    let long = admin.execution(&long).await;
    assert_eq!(long["status"], "failed", "{long:#}");
    let error = host(&long)["error"].as_str().unwrap_or_default();
    assert!(error.contains("interrupted"), "{long:#}");
    let (_, stuck) = admin
        .get("/api/v1/executions?status=running,cancelling,pending")
        .await;
    assert_eq!(stuck["items"], Value::Array(vec![]), "{stuck:#}");
}

#[tokio::test]
async fn a_run_cut_short_by_kill_9_reaches_a_final_state_after_a_restart() {
    let (_dir, data) = common::data_dir();
    let mut jobd = Jobd::start(&data);
    let admin = Session::login(&jobd.base, "admin", ADMIN_PASSWORD).await;
    let local = admin.target_id("control-node").await;
    // A marker no other process has, to find the script after the crash.
    let marker = format!("{}", 3000 + std::process::id() % 1000);
    let id = admin
        .quick(&[&local], &format!("sleep {marker}; echo never"))
        .await;
    wait_running(&admin, &id).await;
    jobd.kill9();
    // No destructor ran: the script is still there.
    assert!(
        running_sleeps(&marker) > 0,
        "the script did not outlive jobd"
    );

    let jobd = Jobd::start(&data);
    let admin = Session::login(&jobd.base, "admin", ADMIN_PASSWORD).await;
    // The restarted node (same node id) takes its execution back at once, long before the
    // lease would have expired.
    let done = admin.wait_final(&id, Duration::from_secs(15)).await;
    assert_eq!(done["status"], "failed", "{done:#}");
    assert!(
        host(&done)["error"]
            .as_str()
            .unwrap_or_default()
            .contains("interrupted"),
        "{done:#}"
    );
    // The restarted node killed what the crashed one left running.
    let until = std::time::Instant::now() + Duration::from_secs(15);
    while running_sleeps(&marker) > 0 {
        assert!(
            std::time::Instant::now() < until,
            "the crashed jobd's script still runs after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Live `sleep <marker>` processes on this machine.
fn running_sleeps(marker: &str) -> usize {
    let want = format!("sleep\0{marker}\0");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter(|e| {
            std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == want.as_bytes())
                && std::fs::read_to_string(e.path().join("stat")).is_ok_and(|s| {
                    !s.rsplit_once(')')
                        .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
                })
        })
        .count()
}
