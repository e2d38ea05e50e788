//! Agent mode end to end with the real binaries: a throwaway `nats-server`, `jobd agent`
//! and `jobd serve` both pointed at it; an agent-mode target created over HTTP runs a
//! quick-execute through the agent, and its output and exit code come back; the same runs
//! through `jobd serve`'s NATS open interface.

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{ADMIN_PASSWORD, Jobd, Session, host, jobd};
use job_testsupport::{NatsServer, require_service};
use serde_json::json;

/// A running `jobd agent`, killed when dropped.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `job_detail_query` (with output) through `ask` until task `task_id` is final.
async fn final_detail<F, Fut>(ask: &F, task_id: &str) -> serde_json::Value
where
    F: Fn(&'static str, serde_json::Value) -> Fut,
    Fut: Future<Output = serde_json::Value>,
{
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let d = ask(
            "job_detail_query",
            json!({"team": "default", "task_id": task_id, "with_output": true}),
        )
        .await;
        assert_eq!(d["result"], true, "{d}");
        if common::is_final(&d["data"]["status"]) {
            return d;
        }
        assert!(Instant::now() < until, "the NATS task never ended: {d:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates the agent-mode target `agent-box` for agent `agent_id` over HTTP; its id.
async fn agent_target(admin: &Session, agent_id: &str) -> String {
    let (status, target) = admin
        .post(
            "/api/v1/targets",
            &json!({"name": "agent-box", "address": "127.0.0.1", "mode": "agent",
                    "agent_id": agent_id}),
        )
        .await;
    assert_eq!(status, 201, "{target}");
    target["id"].as_str().unwrap().to_owned()
}

/// Starts `jobd agent` as `id` against NATS at `url`, its data and work directories in `dir`.
fn start_agent(dir: &std::path::Path, url: &str, id: &str) -> Agent {
    let mut cmd = jobd(&dir.join("agent-data"));
    cmd.arg("agent")
        .env("JOBD_NATS_URL", url)
        .env("JOBD_AGENT_ID", id)
        .env("JOBD_AGENT_WORK_DIR", dir.join("agent-work"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Agent(cmd.spawn().expect("start jobd agent"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quick_execute_on_an_agent_target_runs_through_jobd_agent() {
    if !require_service("nats-server", NatsServer::available()) {
        return;
    }
    let nats = NatsServer::start().expect("nats-server");
    let (dir, data) = common::data_dir();

    let mut agent = start_agent(dir.path(), &nats.url(), "agent-e2e");

    let mut server = Jobd::start_with(
        &data,
        &[
            ("JOBD_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("JOBD_NATS_URL", &nats.url()),
        ],
    );
    let admin = Session::login(&server.base, "admin", ADMIN_PASSWORD).await;
    let target_id = agent_target(&admin, "agent-e2e").await;

    // The agent registers within a heartbeat of starting; until then a run fails fast as
    // "offline", which is what an operator would see too. Retry until it is online.
    let deadline = Instant::now() + Duration::from_secs(60);
    let execution = loop {
        let id = admin
            .quick(
                &[&target_id],
                "echo \"hello from $(hostname) $((40 + 2))\"; echo oops >&2; exit 3",
            )
            .await;
        let e = admin.wait_final(&id, Duration::from_secs(60)).await;
        let error = host(&e)["error"].as_str().unwrap_or("").to_owned();
        if host(&e)["exit_code"] == 3 || Instant::now() > deadline {
            break (id, e);
        }
        assert!(
            error.contains("offline") || error.contains("never"),
            "the run failed for another reason than a not-yet-registered agent: {e:#}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let (id, e) = execution;
    assert_eq!(e["status"], "failed", "{e:#}");
    assert_eq!(host(&e)["exit_code"], 3, "{e:#}");
    let (status, output) = admin.get(&format!("/api/v1/executions/{id}/output")).await;
    assert_eq!(status, 200, "{output}");
    let text: String = output["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}:{}",
                c["stream"].as_str().unwrap(),
                c["text"].as_str().unwrap()
            )
        })
        .collect();
    assert!(text.contains("stdout:hello from "), "{text}");
    assert!(text.contains(" 42\n"), "{text}");
    assert!(text.contains("stderr:oops\n"), "{text}");

    // Other systems run the same over the NATS open interface of `jobd serve`.
    let client = job_transport_nats::async_nats::connect(nats.url())
        .await
        .expect("connect to NATS");
    let ask = |method: &'static str, body: serde_json::Value| {
        let client = client.clone();
        async move {
            let reply = client
                .request(format!("jobd.{method}"), body.to_string().into())
                .await
                .expect("a reply");
            serde_json::from_slice::<serde_json::Value>(&reply.payload).expect("JSON reply")
        }
    };
    let launched = ask(
        "job_script_execute",
        json!({"args": [{"script_type": 1, "script_content": "echo via-nats",
                         "targets": {"target_ids": [target_id]}}],
               "kwargs": {"team": "default", "operator": "e2e"}}),
    )
    .await;
    assert_eq!(launched["result"], true, "{launched}");
    let task_id = launched["data"]["task_id"].as_str().unwrap().to_owned();
    let detail = final_detail(&ask, &task_id).await;
    assert_eq!(detail["data"]["status"], "success", "{detail:#}");
    assert_eq!(
        detail["data"]["hosts"][0]["stdout"], "via-nats\n",
        "{detail:#}"
    );
    // A file on the control node (its local target) distributed to the agent's host: read
    // by the local transport, pushed through the NATS object store by the agent.
    let (_, listed) = admin.get("/api/v1/targets?limit=1000").await;
    let control_node = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["mode"] == "local")
        .unwrap_or_else(|| panic!("no control-node target: {listed:#}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let source = dir.path().join("release.txt");
    std::fs::write(&source, "release 42\n").unwrap();
    let landed = dir.path().join("from-agent");
    let launched = ask(
        "job_file_distribute",
        json!({"team": "default",
               "file_source_list": [{"target_id": control_node,
                                     "file_list": [source.to_str().unwrap()]}],
               "file_target_path": landed.to_str().unwrap(),
               "targets": {"target_ids": [target_id]}}),
    )
    .await;
    assert_eq!(launched["result"], true, "{launched}");
    let task_id = launched["data"]["task_id"].as_str().unwrap().to_owned();
    let detail = final_detail(&ask, &task_id).await;
    assert_eq!(detail["data"]["status"], "success", "{detail:#}");
    assert_eq!(
        std::fs::read_to_string(landed.join("release.txt")).unwrap(),
        "release 42\n"
    );

    // A team that does not exist is refused by name, and nothing runs.
    let refused = ask(
        "job_script_execute",
        json!({"team": "nobody", "script_type": 1, "script_content": "echo x",
               "targets": {"target_ids": [target_id]}}),
    )
    .await;
    assert_eq!(refused["result"], false, "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("team"),
        "{refused}"
    );

    // The target shows its agent online, and when it was last seen.
    let (status, shown) = admin.get(&format!("/api/v1/targets/{target_id}")).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["agent"]["online"], true, "{shown:#}");
    assert!(shown["agent"]["last_seen"].is_string(), "{shown:#}");
    assert!(shown["agent"]["hostname"].is_string(), "{shown:#}");

    // The agent stops cleanly on SIGTERM, and is shown offline at once.
    let pid = agent.0.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = agent.0.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < until, "jobd agent did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "jobd agent exited with {status}");
    let (_, shown) = admin.get(&format!("/api/v1/targets/{target_id}")).await;
    assert_eq!(shown["agent"]["online"], false, "{shown:#}");
    assert!(shown["agent"]["last_seen"].is_string(), "{shown:#}");
    let (_, listed) = admin.get("/api/v1/targets?mode=agent").await;
    assert_eq!(listed["items"][0]["agent"]["online"], false, "{listed:#}");
    server.stop(Duration::from_secs(30));
}

/// The stdout of execution `id`, as stored.
async fn stored_stdout(session: &Session, id: &str) -> String {
    let (status, output) = session
        .get(&format!("/api/v1/executions/{id}/output"))
        .await;
    assert_eq!(status, 200, "{output}");
    output["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["stream"] == "stdout")
        .map(|c| c["text"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobd_killed_mid_run_re_follows_the_agent_run_and_loses_no_line() {
    if !require_service("nats-server", NatsServer::available()) {
        return;
    }
    let nats = NatsServer::start().expect("nats-server");
    let (dir, data) = common::data_dir();
    let _agent = start_agent(dir.path(), &nats.url(), "agent-crash");
    let url = nats.url();
    let env = [
        ("JOBD_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("JOBD_NATS_URL", &url),
    ];
    let mut server = Jobd::start_with(&data, &env);
    let admin = Session::login(&server.base, "admin", ADMIN_PASSWORD).await;
    let target_id = agent_target(&admin, "agent-crash").await;
    // Until the agent has registered, runs fail fast as offline.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let id = admin.quick(&[&target_id], "true").await;
        let e = admin.wait_final(&id, Duration::from_secs(60)).await;
        if e["status"] == "success" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the agent never came online: {e:#}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // 40 lines over about 4 s; jobd is killed once some are stored.
    let script = "for i in $(seq 1 40); do echo line-$i; sleep 0.1; done; echo done >&2";
    let id = admin.quick(&[&target_id], script).await;
    let until = Instant::now() + Duration::from_secs(30);
    while !stored_stdout(&admin, &id).await.contains("line-5\n") {
        assert!(Instant::now() < until, "no output was stored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = stored_stdout(&admin, &id).await;
    server.kill9();
    assert!(
        !before.contains("line-40"),
        "the run was over before jobd was killed: the test proves nothing"
    );

    // The same node comes back; the agent ran on meanwhile.
    let mut server = Jobd::start_with(&data, &env);
    let admin = Session::login(&server.base, "admin", ADMIN_PASSWORD).await;
    let e = admin.wait_final(&id, Duration::from_secs(60)).await;
    assert_eq!(e["status"], "success", "{e:#}");
    assert_eq!(host(&e)["exit_code"], 0, "{e:#}");
    let expected: String = (1..=40).map(|i| format!("line-{i}\n")).collect();
    assert_eq!(stored_stdout(&admin, &id).await, expected, "{e:#}");
    server.stop(Duration::from_secs(30));
}
