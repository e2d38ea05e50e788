//! A harness that runs the real `jobd` binary with a temporary data directory on an
//! ephemeral port, and an HTTP client that logs in like the console does.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const JOBD: &str = env!("CARGO_BIN_EXE_jobd");
pub const ADMIN_PASSWORD: &str = "admin-Passw0rd-for-tests";

/// A `jobd` command with a clean environment: none of the runner's `JOBD_*` or `RUST_LOG`,
/// the data dir `data`, an ephemeral port.
pub fn jobd(data: &Path) -> Command {
    let mut cmd = Command::new(JOBD);
    for (k, _) in std::env::vars() {
        if k.starts_with("JOBD_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.env("JOBD_DATA_DIR", data)
        .env("JOBD_LISTEN", "127.0.0.1:0")
        .env("JOBD_LOG", "info");
    cmd
}

/// Runs a one-shot command (`migrate`, `token create`, `--help`) to its end.
pub fn run(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("run jobd")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A running `jobd serve`.
pub struct Jobd {
    child: Child,
    pub base: String,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl Jobd {
    /// Starts `jobd serve` on `data` with the admin password of the tests and waits for its
    /// "listening" line.
    pub fn start(data: &Path) -> Self {
        Self::start_with(data, &[("JOBD_ADMIN_PASSWORD", ADMIN_PASSWORD)])
    }

    pub fn start_with(data: &Path, env: &[(&str, &str)]) -> Self {
        let mut cmd = jobd(data);
        cmd.arg("serve");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Self::spawn(cmd)
    }

    pub fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start jobd");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let lines = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("jobd listening on ") {
                    let _ = tx.send(addr.to_owned());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let mut err = child.stderr.take().unwrap();
        let log = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                log.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "jobd did not start ({status:?}); stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        Self {
            child,
            base,
            stdout,
            stderr,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().join("\n")
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits (up to `within`) for the process to exit.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        self.wait(within)
    }

    /// SIGTERM, and the process must exit 0 within `within`.
    pub fn stop(&mut self, within: Duration) {
        let status = self.terminate(within);
        assert!(
            status.success(),
            "jobd exited with {status:?}; stderr:\n{}",
            self.stderr()
        );
    }

    pub fn wait(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "jobd did not exit within {within:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: the process dies without any cleanup.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Jobd {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A client logged in over the console's cookie session, sending the CSRF token on writes.
pub struct Session {
    pub http: reqwest::Client,
    pub base: String,
    pub csrf: String,
}

impl Session {
    pub async fn login(base: &str, username: &str, password: &str) -> Self {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        let resp = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "login as {username}");
        let body: Value = resp.json().await.unwrap();
        let csrf = body["csrf_token"].as_str().unwrap().to_owned();
        Self {
            http,
            base: base.to_owned(),
            csrf,
        }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("x-csrf-token", &self.csrf)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        let resp = self
            .http
            .put(format!("{}{path}", self.base))
            .header("x-csrf-token", &self.csrf)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// The id of the target named `name` visible to this session.
    pub async fn target_id(&self, name: &str) -> String {
        let (status, body) = self.get("/api/v1/targets?limit=1000").await;
        assert_eq!(status, 200, "{body}");
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no target {name} in {body}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Quick-executes `script` (bash) on the targets `ids`; returns the execution id.
    pub async fn quick(&self, ids: &[&str], script: &str) -> String {
        let (status, body) = self
            .post(
                "/api/v1/executions/quick",
                &json!({
                    "script_type": "bash",
                    "script_content": script,
                    "targets": {"target_ids": ids},
                    "timeout": 600,
                }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    pub async fn execution(&self, id: &str) -> Value {
        let (status, body) = self.get(&format!("/api/v1/executions/{id}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Polls the execution until `done` holds for it, or panics after `within`.
    pub async fn wait_for(
        &self,
        id: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let e = self.execution(id).await;
            if done(&e) {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "execution {id} never got there: {e:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn wait_final(&self, id: &str, within: Duration) -> Value {
        self.wait_for(id, within, |e| is_final(&e["status"])).await
    }
}

pub fn is_final(status: &Value) -> bool {
    matches!(
        status.as_str(),
        Some("success" | "failed" | "timeout" | "cancelled")
    )
}

/// The first host run of an execution.
pub fn host(execution: &Value) -> &Value {
    &execution["hosts"][0]
}

/// A fresh data directory.
pub fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    (dir, data)
}
