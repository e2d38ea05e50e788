//! End to end over SSH: the real `jobd` binary, a real OpenSSH sshd (the harness, reachable
//! on several loopback addresses, each a "host"), driven over HTTP as an operator would —
//! credential and targets, Quick Execute, live output over SSE, per-host results, cancel
//! with the remote process gone, re-execute, a forbidden command, a second team that sees
//! nothing of the first, and restarts of jobd in the middle of a run.

mod common;

use std::os::unix::fs::DirBuilderExt;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ADMIN_PASSWORD, Jobd, Session, host};
use job_testsupport::{Sshd, TEST_USER, require_service};
use serde_json::{Value, json};

const FINISH: Duration = Duration::from_secs(60);
/// The "hosts": loopback addresses that all reach the harness sshd.
const ADDRESSES: [&str; 3] = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];

/// An sshd, a jobd whose known_hosts trusts it on every address, the admin logged in, a
/// credential with the harness key and one SSH target per address.
struct Fleet {
    _sshd: Sshd,
    _dir: tempfile::TempDir,
    data: std::path::PathBuf,
    jobd: Jobd,
    admin: Session,
    targets: Vec<String>,
}

impl Fleet {
    async fn start() -> Option<Self> {
        if !require_service("OpenSSH sshd", Sshd::unavailable()) {
            return None;
        }
        let sshd = Sshd::start_on_all_loopback_addresses("").expect("start sshd");
        let (dir, data) = common::data_dir();
        std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(&data)
            .unwrap();
        // Host-key checking stays on: record the harness's key for each address.
        let mut parts = sshd.host_public_key().split_whitespace();
        let (alg, key) = (parts.next().unwrap(), parts.next().unwrap());
        let known: String = ADDRESSES
            .iter()
            .map(|a| format!("[{a}]:{} {alg} {key}\n", sshd.port()))
            .collect();
        std::fs::write(data.join("known_hosts"), known).unwrap();

        let jobd = Jobd::start(&data);
        let admin = Session::login(&jobd.base, "admin", ADMIN_PASSWORD).await;
        let (status, credential) = admin
            .post(
                "/api/v1/credentials",
                &json!({
                    "name": "harness-key",
                    "kind": "private_key",
                    "private_key": sshd.keys().ed25519,
                }),
            )
            .await;
        assert_eq!(status, 201, "{credential}");
        assert!(
            !credential.to_string().contains("PRIVATE KEY"),
            "the secret is write-only: {credential}"
        );
        let mut targets = Vec::new();
        for (i, address) in ADDRESSES.iter().enumerate() {
            let (status, target) = admin
                .post(
                    "/api/v1/targets",
                    &json!({
                        "name": format!("web-{i}"),
                        "address": address,
                        "mode": "agentless",
                        "port": sshd.port(),
                        "user": TEST_USER,
                        "credential_id": credential["id"],
                        "tags": ["role=web"],
                    }),
                )
                .await;
            assert_eq!(status, 201, "{target}");
            targets.push(target["id"].as_str().unwrap().to_owned());
        }
        Some(Self {
            _sshd: sshd,
            _dir: dir,
            data,
            jobd,
            admin,
            targets,
        })
    }

    fn target_refs(&self) -> Vec<&str> {
        self.targets.iter().map(String::as_str).collect()
    }
}

/// One server-sent event.
#[derive(Debug)]
struct SseEvent {
    event: String,
    id: Option<String>,
    data: Value,
}

/// Follows `/stream` of an execution until the server closes it; returns every event.
async fn follow(session: &Session, id: &str) -> Vec<SseEvent> {
    let mut resp = session
        .http
        .get(format!("{}/api/v1/executions/{id}/stream", session.base))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut buffer = String::new();
    let mut events = Vec::new();
    let read_all = async {
        while let Some(chunk) = resp.chunk().await.unwrap() {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let (mut event, mut eid, mut data) = (String::from("message"), None, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        eid = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if !data.is_empty() {
                    events.push(SseEvent {
                        event,
                        id: eid,
                        data: serde_json::from_str(&data).unwrap_or(Value::String(data)),
                    });
                }
            }
        }
    };
    tokio::time::timeout(FINISH, read_all)
        .await
        .expect("the stream closes when the execution is final");
    events
}

/// The processes of the test user whose command line contains `pattern`.
fn remote_processes(pattern: &str) -> Vec<String> {
    let out = Command::new("pgrep")
        .args(["-u", TEST_USER, "-a", "-f", pattern])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn quick_execute_over_ssh_streams_live_output_and_records_every_host() {
    let Some(mut fleet) = Fleet::start().await else {
        return;
    };
    let admin = &fleet.admin;
    let script =
        "for i in 1 2 3; do echo \"line $i from $(whoami)\"; sleep 0.2; done\necho oops >&2\n";
    let id = admin.quick(&fleet.target_refs(), script).await;

    let events = follow(admin, &id).await;
    let end = events.last().expect("events");
    assert_eq!(end.event, "end", "{events:?}");
    assert_eq!(end.data["status"], "success", "{events:?}");
    let output: Vec<&SseEvent> = events.iter().filter(|e| e.event == "output").collect();
    assert!(
        output.iter().all(|e| e.id.is_some()),
        "every output event has an id"
    );
    for host in 0..ADDRESSES.len() {
        let text: String = output
            .iter()
            .filter(|e| e.data["host"] == host && e.data["stream"] == "stdout")
            .map(|e| e.data["text"].as_str().unwrap())
            .collect();
        assert_eq!(
            text,
            format!("line 1 from {TEST_USER}\nline 2 from {TEST_USER}\nline 3 from {TEST_USER}\n"),
            "host {host}"
        );
    }
    assert!(
        output
            .iter()
            .any(|e| e.data["stream"] == "stderr" && e.data["text"] == "oops\n")
    );

    // Per-host results.
    let done = admin.execution(&id).await;
    let hosts = done["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), ADDRESSES.len());
    for h in hosts {
        assert_eq!(h["status"], "success", "{h}");
        assert_eq!(h["exit_code"], 0);
        assert!(ADDRESSES.contains(&h["address"].as_str().unwrap()));
        assert!(h["started_at"].is_string() && h["finished_at"].is_string());
    }

    // A final execution's stream is its stored snapshot, then the end.
    let again = follow(admin, &id).await;
    let pieces = |events: &[SseEvent]| -> Vec<(Value, Value, Value, Value)> {
        let mut out: Vec<_> = events
            .iter()
            .filter(|e| e.event == "output")
            .map(|e| {
                let d = &e.data;
                (
                    d["host"].clone(),
                    d["seq"].clone(),
                    d["stream"].clone(),
                    d["text"].clone(),
                )
            })
            .collect();
        out.sort_by_key(|p| (p.0.as_u64(), p.1.as_u64()));
        out
    };
    assert_eq!(
        pieces(&again),
        pieces(&events),
        "the snapshot is what was streamed"
    );
    assert_eq!(again.last().map(|e| e.event.as_str()), Some("end"));

    // Re-execute: a new execution with the same script and targets.
    let (status, body) = admin
        .post(&format!("/api/v1/executions/{id}/re-execute"), &json!({}))
        .await;
    assert_eq!(status, 201, "{body}");
    let rerun = body["id"].as_str().unwrap().to_owned();
    assert_ne!(rerun, id);
    let done = admin.wait_final(&rerun, FINISH).await;
    assert_eq!(done["status"], "success", "{done:#}");
    assert_eq!(done["hosts"].as_array().unwrap().len(), ADDRESSES.len());
    fleet.jobd.stop(FINISH);
}

#[tokio::test]
async fn cancel_kills_the_remote_process() {
    let Some(mut fleet) = Fleet::start().await else {
        return;
    };
    let admin = &fleet.admin;
    // A duration no other test uses, so the process can be told apart on the target.
    let marker = "sleep 307.125";
    let id = admin.quick(&fleet.target_refs()[..1], marker).await;
    let deadline = Instant::now() + FINISH;
    while remote_processes(marker).is_empty() {
        assert!(Instant::now() < deadline, "the remote sleep never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = admin
        .post(&format!("/api/v1/executions/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let done = admin.wait_final(&id, FINISH).await;
    assert_eq!(done["status"], "cancelled", "{done:#}");
    assert_eq!(host(&done)["status"], "cancelled");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = remote_processes(marker);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running on the target: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A second cancel of a final execution is refused.
    let (status, _) = admin
        .post(&format!("/api/v1/executions/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 409);
    fleet.jobd.stop(FINISH);
}

#[tokio::test]
async fn a_forbidden_command_is_refused_and_nothing_runs() {
    let Some(mut fleet) = Fleet::start().await else {
        return;
    };
    let admin = &fleet.admin;
    let (status, body) = admin
        .post(
            "/api/v1/executions/quick",
            &json!({
                "script_type": "bash",
                "script_content": "echo cleaning up\nrm -rf /\n",
                "targets": {"target_ids": fleet.targets},
            }),
        )
        .await;
    assert!((400..500).contains(&status), "{status} {body}");
    let text = body.to_string();
    assert!(text.contains("forbidden"), "{text}");
    let (_, listed) = admin.get("/api/v1/executions").await;
    assert_eq!(listed["items"], json!([]), "nothing was stored: {listed}");
    fleet.jobd.stop(FINISH);
}

#[tokio::test]
async fn another_team_can_neither_see_nor_cancel_the_first_teams_runs_or_targets() {
    let Some(mut fleet) = Fleet::start().await else {
        return;
    };
    let admin = &fleet.admin;
    let (status, team) = admin.post("/api/v1/teams", &json!({"name": "other"})).await;
    assert_eq!(status, 201, "{team}");
    let (status, user) = admin
        .post(
            "/api/v1/users",
            &json!({
                "username": "bob",
                "password": "bob-Passw0rd",
                "memberships": [{"team_id": team["id"], "role": "maintainer"}],
            }),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    let id = admin.quick(&fleet.target_refs()[..1], "sleep 306.5").await;
    admin
        .wait_for(&id, FINISH, |e| host(e)["status"] == "running")
        .await;

    let bob = Session::login(&fleet.jobd.base, "bob", "bob-Passw0rd").await;
    let missing = "01900000-0000-7000-8000-000000000000";
    let (theirs, theirs_body) = bob.get(&format!("/api/v1/executions/{id}")).await;
    let (nothing, nothing_body) = bob.get(&format!("/api/v1/executions/{missing}")).await;
    assert_eq!((theirs, nothing), (404, 404));
    assert_eq!(theirs_body["error"]["code"], nothing_body["error"]["code"]);
    let (status, _) = bob
        .post(&format!("/api/v1/executions/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 404);
    let (status, _) = bob
        .get(&format!("/api/v1/targets/{}", fleet.targets[0]))
        .await;
    assert_eq!(status, 404);
    let (_, listed) = bob.get("/api/v1/executions").await;
    assert_eq!(listed["items"], json!([]), "{listed}");
    let (_, listed) = bob.get("/api/v1/targets").await;
    assert_eq!(listed["items"], json!([]), "{listed}");
    // Nor can bob run anything on them.
    let (status, body) = bob
        .post(
            "/api/v1/executions/quick",
            &json!({
                "script_type": "bash",
                "script_content": "id",
                "targets": {"target_ids": [fleet.targets[0]]},
            }),
        )
        .await;
    assert!((400..500).contains(&status), "{status} {body}");

    // The first team's run went on untouched; its owner cancels it.
    assert_eq!(admin.execution(&id).await["status"], "running");
    let (status, _) = admin
        .post(&format!("/api/v1/executions/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 200);
    admin.wait_final(&id, FINISH).await;
    fleet.jobd.stop(FINISH);
}

#[tokio::test]
async fn jobd_restarted_in_the_middle_of_a_run_leaves_nothing_stuck() {
    let Some(mut fleet) = Fleet::start().await else {
        return;
    };
    // A graceful restart: the run finishes within the shutdown grace.
    let id = fleet
        .admin
        .quick(&fleet.target_refs(), "sleep 2\necho survived\n")
        .await;
    fleet
        .admin
        .wait_for(&id, FINISH, |e| {
            e["hosts"]
                .as_array()
                .is_some_and(|hs| hs.iter().all(|h| h["status"] == "running"))
        })
        .await;
    fleet.jobd.stop(FINISH);

    let mut jobd = Jobd::start(&fleet.data);
    let admin = Session::login(&jobd.base, "admin", ADMIN_PASSWORD).await;
    let done = admin.execution(&id).await;
    assert_eq!(done["status"], "success", "{done:#}");
    let (_, output) = admin.get(&format!("/api/v1/executions/{id}/output")).await;
    assert_eq!(
        output.to_string().matches("survived").count(),
        ADDRESSES.len()
    );

    // A crash: jobd is killed outright while hosts run; the restarted node settles the run.
    let id = admin.quick(&fleet.target_refs(), "sleep 305.5").await;
    admin
        .wait_for(&id, FINISH, |e| {
            e["hosts"]
                .as_array()
                .is_some_and(|hs| hs.iter().all(|h| h["status"] == "running"))
        })
        .await;
    jobd.kill9();
    let mut jobd = Jobd::start(&fleet.data);
    let admin = Session::login(&jobd.base, "admin", ADMIN_PASSWORD).await;
    let done = admin.wait_final(&id, Duration::from_secs(20)).await;
    assert_eq!(done["status"], "failed", "{done:#}");
    for h in done["hosts"].as_array().unwrap() {
        assert!(
            h["error"]
                .as_str()
                .unwrap_or_default()
                .contains("interrupted"),
            "{h}"
        );
    }
    let (_, stuck) = admin
        .get("/api/v1/executions?status=pending,running,cancelling")
        .await;
    assert_eq!(stuck["items"], json!([]), "{stuck:#}");
    jobd.stop(FINISH);
}

/// Known gap, kept as a reproduction: when jobd dies outright (`kill -9`), the SSH session
/// closes, and the remote wrapper usually takes its script down with it — but once in about
/// ten runs on a loaded machine one `setsid` script of three kept running, and the restarted
/// node, which records the host as interrupted, has no way to reach it. Intermittent, so it
/// does not run by default: `cargo test -p job-bin --test e2e_ssh -- --ignored`.
#[tokio::test]
#[ignore = "known intermittent gap: a remote script can outlive a kill -9 of jobd"]
async fn a_crash_of_jobd_leaves_no_remote_process_behind() {
    let Some(mut fleet) = Fleet::start().await else {
        return;
    };
    let marker = "sleep 304.75";
    let id = fleet.admin.quick(&fleet.target_refs(), marker).await;
    fleet
        .admin
        .wait_for(&id, FINISH, |e| {
            e["hosts"]
                .as_array()
                .is_some_and(|hs| hs.iter().all(|h| h["status"] == "running"))
        })
        .await;
    fleet.jobd.kill9();
    let jobd = Jobd::start(&fleet.data);
    let admin = Session::login(&jobd.base, "admin", ADMIN_PASSWORD).await;
    admin.wait_final(&id, Duration::from_secs(20)).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let left = loop {
        let left = remote_processes(marker);
        if left.is_empty() || Instant::now() > deadline {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Clean up before asserting, so a failure leaves nothing behind either.
    for line in &left {
        if let Some(pid) = line.split_whitespace().next() {
            let _ = Command::new("kill").arg(pid).status();
        }
    }
    assert!(left.is_empty(), "left running on the targets: {left:?}");
}
