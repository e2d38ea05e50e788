//! The real path: the `jobd` binary (SQLite store, in-process bus, its engine and REST
//! API) driven over loopback HTTP the way a client drives it: `POST
//! /api/v1/executions/quick`, then `GET /api/v1/executions/{id}/stream` (SSE).
//!
//! 1. **Quick execute latency**: `echo hi` on the control node's local target
//!    (`control-node`); from just before the POST to the first `output` event at the SSE
//!    client, over `--launches` launches one after the other (after 5 not counted).
//! 2. **Fan-out**: `--hosts` loopback SSH hosts (one real sshd on every loopback address,
//!    as in `fanout.rs`), one SSH target each, created over REST; `echo hi` on all of them,
//!    from just before the POST to the SSE `end` event. Each run starts a new `jobd`, so
//!    its first execution opens fresh connections; the second runs over the pooled ones.
//!    Then `parallel-ssh -p N` on the same hosts, in the same run.
//! 3. `jobd`'s peak resident memory (`VmHWM` of its `/proc/PID/status`) and CPU time.
//!
//! ```text
//! cargo build --release -p job-bin
//! cargo bench -p job-benches --bench real_path -- --launches 200 --hosts 500 --runs 3
//! ```
//! `--jobd PATH` (or `JOBD_BIN`) names the binary (default: `target/release/jobd` of this
//! workspace); `--tool-runs N` sets the `parallel-ssh` runs (default `--runs`);
//! `--launches 0` or `--hosts 0` skips a part. Needs root (the sshd harness) and `pssh`
//! (Debian). Prints Markdown tables for docs/performance.md, with the load average.

// A benchmark's output is its product.
#![allow(clippy::print_stdout)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use job_testsupport::{Sshd, TEST_USER};
use serde_json::{Value, json};

const ADMIN_PASSWORD: &str = "bench-Passw0rd-real-path";
/// Launches before the timed ones (connections, caches, the first interpreter start).
const WARM_UP: usize = 5;

struct Args {
    launches: usize,
    hosts: usize,
    runs: usize,
    tool_runs: Option<usize>,
    jobd: PathBuf,
}

fn args() -> Args {
    let default_jobd = std::env::var_os("JOBD_BIN").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/jobd"),
        PathBuf::from,
    );
    let mut a = Args {
        launches: 200,
        hosts: 500,
        runs: 3,
        tool_runs: None,
        jobd: default_jobd,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let value = argv.get(i + 1);
        let number = value.and_then(|s| s.parse().ok());
        match (argv[i].as_str(), number) {
            ("--launches", Some(v)) => a.launches = v,
            ("--hosts", Some(v)) => a.hosts = v,
            ("--runs", Some(v)) => a.runs = v,
            ("--tool-runs", Some(v)) => a.tool_runs = Some(v),
            ("--jobd", _) if value.is_some() => {
                a.jobd = PathBuf::from(value.map(String::as_str).unwrap_or_default());
            }
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

fn address(i: usize) -> String {
    format!("127.0.{}.{}", 1 + i / 250, 1 + i % 250)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    pct(&v, 0.5)
}

/// The machine's load averages (1, 5, 15 minutes).
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn utc_now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

/// A running `jobd serve` on a data directory of its own.
struct Jobd {
    child: Child,
    base: String,
}

impl Jobd {
    /// Starts `jobd serve` on `data`, with `env` on top of a clean `JOBD_*` environment, and
    /// waits for its "listening" line. Its log (stderr) goes to `log`.
    fn start(binary: &Path, data: &Path, log: &Path, env: &[(&str, String)]) -> Self {
        let mut cmd = Command::new(binary);
        for (k, _) in std::env::vars() {
            if k.starts_with("JOBD_") || k == "RUST_LOG" {
                cmd.env_remove(k);
            }
        }
        cmd.arg("serve")
            .env("JOBD_DATA_DIR", data)
            .env("JOBD_LISTEN", "127.0.0.1:0")
            .env("JOBD_LOG", "warn")
            .env("JOBD_ADMIN_PASSWORD", ADMIN_PASSWORD);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let log = std::fs::File::create(log).expect("jobd log file");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}); build it first: cargo build --release -p job-bin",
                    binary.display()
                )
            });
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("jobd listening on ") {
                    let _ = tx.send(addr.to_owned());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("jobd starts listening within a minute (see its log)");
        Self { child, base }
    }

    fn status_field(&self, field: &str) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
    }

    /// Peak resident memory so far, in MiB.
    fn peak_rss_mib(&self) -> f64 {
        self.status_field("VmHWM:")
            .map_or(f64::NAN, |kb| kb / 1024.0)
    }

    /// CPU seconds (user + system) the process has used so far.
    fn cpu_secs(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (ticks(11) + ticks(12)) / 100.0
    }

    /// SIGTERM, then waits for the graceful stop.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
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

/// The admin, logged in over the console's cookie session.
struct Client {
    http: reqwest::Client,
    base: String,
    csrf: String,
}

impl Client {
    async fn login(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .expect("HTTP client");
        let body: Value = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("login")
            .json()
            .await
            .expect("login answer");
        Self {
            http,
            base: base.to_owned(),
            csrf: body["csrf_token"].as_str().unwrap_or_default().to_owned(),
        }
    }

    async fn post(&self, path: &str, body: &Value) -> Value {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("x-csrf-token", &self.csrf)
            .json(body)
            .send()
            .await
            .expect("POST");
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "POST {path}: {status} {body}");
        body
    }

    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("GET")
            .json()
            .await
            .expect("JSON")
    }

    /// Quick-executes `script` (shell) on `targets`; returns the execution id.
    async fn quick(&self, targets: &[String], script: &str) -> String {
        let created = self
            .post(
                "/api/v1/executions/quick",
                &json!({
                    "script_type": "shell",
                    "script_content": script,
                    "targets": {"target_ids": targets},
                    "timeout": 600,
                }),
            )
            .await;
        created["id"].as_str().expect("an execution id").to_owned()
    }

    /// Follows the execution's SSE stream to its `end` event.
    async fn follow(&self, id: &str, t0: Instant) -> Followed {
        let mut resp = self
            .http
            .get(format!("{}/api/v1/executions/{id}/stream", self.base))
            .header("accept", "text/event-stream")
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("stream");
        let mut followed = Followed::default();
        let (mut buf, mut event) = (String::new(), String::new());
        while let Some(bytes) = resp.chunk().await.expect("stream chunk") {
            let at = t0.elapsed().as_secs_f64();
            buf.push_str(&String::from_utf8_lossy(&bytes));
            while let Some(end) = buf.find('\n') {
                let line: String = buf.drain(..=end).collect();
                let line = line.trim_end_matches(['\n', '\r']);
                if let Some(e) = line.strip_prefix("event:") {
                    event = e.trim().to_owned();
                } else if let Some(data) = line.strip_prefix("data:") {
                    match event.as_str() {
                        "output" => {
                            followed.first_output.get_or_insert(at);
                        }
                        "host" => {
                            followed.first_host.get_or_insert(at);
                        }
                        "end" => {
                            let v: Value = serde_json::from_str(data.trim()).unwrap_or_default();
                            followed.end = Some(at);
                            followed.status = v["status"].as_str().unwrap_or("").to_owned();
                            followed.counters = v["counters"].clone();
                            return followed;
                        }
                        _ => {}
                    }
                } else if line.is_empty() {
                    event.clear();
                }
            }
        }
        panic!("the stream of {id} closed before its `end` event");
    }
}

/// What one client saw of one execution, in seconds from just before the POST.
#[derive(Debug, Default)]
struct Followed {
    /// When the POST answered (the execution was stored).
    created: f64,
    first_host: Option<f64>,
    first_output: Option<f64>,
    end: Option<f64>,
    status: String,
    counters: Value,
}

/// Launches `script` on `targets` and follows it to its end.
async fn launch_and_follow(client: &Client, targets: &[String], script: &str) -> Followed {
    let t0 = Instant::now();
    let id = client.quick(targets, script).await;
    let created = t0.elapsed().as_secs_f64();
    let mut followed = client.follow(&id, t0).await;
    followed.created = created;
    assert_eq!(
        followed.status, "success",
        "execution {id} ended {}: {}",
        followed.status, followed.counters
    );
    followed
}

async fn target_id(client: &Client, name: &str) -> String {
    let listed = client.get("/api/v1/targets?limit=1000").await;
    listed["items"]
        .as_array()
        .and_then(|items| items.iter().find(|t| t["name"] == name))
        .and_then(|t| t["id"].as_str())
        .unwrap_or_else(|| panic!("no target named {name}: {listed}"))
        .to_owned()
}

fn quick_latency(a: &Args, dir: &Path, rt: &tokio::runtime::Runtime) {
    let data = dir.join("latency-data");
    let jobd = Jobd::start(&a.jobd, &data, &dir.join("jobd-latency.log"), &[]);
    let start_load = load();
    let started = utc_now();
    let (first_output, ends) = rt.block_on(async {
        let client = Client::login(&jobd.base).await;
        let target = vec![target_id(&client, "control-node").await];
        let (mut first_output, mut ends) = (Vec::new(), Vec::new());
        for i in 0..WARM_UP + a.launches {
            let f = launch_and_follow(&client, &target, "echo hi").await;
            if i >= WARM_UP {
                first_output.push(f.first_output.expect("an output line") * 1e3);
                ends.push(f.end.unwrap_or(f64::NAN) * 1e3);
            }
        }
        (first_output, ends)
    });
    let peak = jobd.peak_rss_mib();
    jobd.stop();
    let mut first_output = first_output;
    first_output.sort_by(f64::total_cmp);
    let mut ends = ends;
    ends.sort_by(f64::total_cmp);
    println!(
        "\nquick execute, `echo hi` on the local target, {} launches one after the other ({started}, load at start {start_load}, at end {}):",
        a.launches,
        load()
    );
    println!("\n| from the POST to | p50 | p90 | p99 | max |");
    println!("| --- | --- | --- | --- | --- |");
    for (what, v) in [
        ("the first output line at the SSE client", &first_output),
        ("the SSE `end` event", &ends),
    ] {
        println!(
            "| {what} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
            pct(v, 0.5),
            pct(v, 0.9),
            pct(v, 0.99),
            v.last().copied().unwrap_or(f64::NAN)
        );
    }
    println!("\njobd peak RSS: {peak:.1} MiB");
}

/// One fan-out round: a fresh `jobd`, `--hosts` SSH targets created over REST, then the
/// same execution over fresh connections and again over pooled ones.
struct Round {
    fresh: Followed,
    pooled: Followed,
    peak_rss: f64,
    cpu_fresh: f64,
    cpu_pooled: f64,
}

fn fanout_round(
    a: &Args,
    dir: &Path,
    run: usize,
    sshd: &Sshd,
    rt: &tokio::runtime::Runtime,
) -> Round {
    let n = a.hosts;
    let data = dir.join(format!("fanout-data-{run}"));
    let jobd = Jobd::start(
        &a.jobd,
        &data,
        &dir.join(format!("jobd-fanout-{run}.log")),
        &[
            ("JOBD_SSH_TRUST_ON_FIRST_USE", "true".to_owned()),
            ("JOBD_ENGINE_MAX_HOSTS_PER_EXECUTION", n.max(1).to_string()),
            ("JOBD_ENGINE_MAX_HOSTS_IN_FLIGHT", n.max(1000).to_string()),
        ],
    );
    let round = rt.block_on(async {
        let client = Client::login(&jobd.base).await;
        let credential = client
            .post(
                "/api/v1/credentials",
                &json!({
                    "name": "bench-key",
                    "kind": "private_key",
                    "private_key": sshd.keys().ed25519,
                }),
            )
            .await;
        let mut targets = Vec::with_capacity(n);
        for i in 0..n {
            let target = client
                .post(
                    "/api/v1/targets",
                    &json!({
                        "name": format!("h{i}"),
                        "address": address(i),
                        "mode": "agentless",
                        "port": sshd.port(),
                        "user": TEST_USER,
                        "credential_id": credential["id"],
                    }),
                )
                .await;
            targets.push(target["id"].as_str().expect("a target id").to_owned());
        }
        let c0 = jobd.cpu_secs();
        let fresh = launch_and_follow(&client, &targets, "echo hi").await;
        let c1 = jobd.cpu_secs();
        let pooled = launch_and_follow(&client, &targets, "echo hi").await;
        let c2 = jobd.cpu_secs();
        Round {
            fresh,
            pooled,
            peak_rss: f64::NAN,
            cpu_fresh: c1 - c0,
            cpu_pooled: c2 - c1,
        }
    });
    let round = Round {
        peak_rss: jobd.peak_rss_mib(),
        ..round
    };
    jobd.stop();
    round
}

fn ssh_opts(key: &Path) -> String {
    format!(
        "-i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR",
        key.display()
    )
}

fn parallel_ssh(dir: &Path, n: usize, port: u16, key: &Path) -> Option<f64> {
    let hosts = dir.join(format!("hosts-{n}"));
    let text: String = (0..n).map(|i| format!("{}:{port}\n", address(i))).collect();
    std::fs::write(&hosts, text).expect("hosts file");
    let t0 = Instant::now();
    let out = Command::new("parallel-ssh")
        .arg("-h")
        .arg(&hosts)
        .args(["-p", &n.to_string(), "-t", "300", "-l", TEST_USER, "-x"])
        .arg(ssh_opts(key))
        .arg("echo hi")
        .output();
    match out {
        Ok(o) if o.status.success() => Some(t0.elapsed().as_secs_f64()),
        Ok(o) => {
            eprintln!(
                "parallel-ssh failed: {}",
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .rev()
                    .take(5)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            None
        }
        Err(e) => {
            eprintln!("parallel-ssh is not available: {e}");
            None
        }
    }
}

fn fanout(a: &Args, dir: &Path, rt: &tokio::runtime::Runtime) {
    let n = a.hosts;
    let sshd =
        Sshd::start_on_all_loopback_addresses("MaxStartups 10000:30:20000\nMaxSessions 10000")
            .expect("the sshd harness starts (run as root with openssh-server installed)");
    let key = dir.join("id_ed25519");
    std::fs::write(&key, &sshd.keys().ed25519).expect("key file");
    let _ = Command::new("chmod").arg("600").arg(&key).status();
    let started = utc_now();
    let start_load = load();
    eprintln!(
        "fan-out over {n} loopback hosts through jobd, sshd on port {}, {} runs; load {start_load}",
        sshd.port(),
        a.runs
    );
    let mut rounds = Vec::new();
    for run in 0..a.runs {
        let r = fanout_round(a, dir, run, &sshd, rt);
        eprintln!(
            "  jobd run {run}: fresh {:.3} s (stored {:.3} s, first host event {:.3} s; jobd CPU {:.2} s), pooled {:.3} s (stored {:.3} s, first host event {:.3} s; jobd CPU {:.2} s), peak RSS {:.1} MiB",
            r.fresh.end.unwrap_or(f64::NAN),
            r.fresh.created,
            r.fresh.first_host.unwrap_or(f64::NAN),
            r.cpu_fresh,
            r.pooled.end.unwrap_or(f64::NAN),
            r.pooled.created,
            r.pooled.first_host.unwrap_or(f64::NAN),
            r.cpu_pooled,
            r.peak_rss
        );
        rounds.push(r);
    }
    let mut pssh = Vec::new();
    for run in 0..a.tool_runs.unwrap_or(a.runs) {
        match parallel_ssh(dir, n, sshd.port(), &key) {
            Some(t) => {
                eprintln!("  parallel-ssh run {run}: {t:.2} s");
                pssh.push(t);
            }
            None => break,
        }
    }
    let list = |v: &[f64], digits: usize| {
        v.iter()
            .map(|x| format!("{x:.digits$}"))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let fresh: Vec<f64> = rounds
        .iter()
        .map(|r| r.fresh.end.unwrap_or(f64::NAN))
        .collect();
    let pooled: Vec<f64> = rounds
        .iter()
        .map(|r| r.pooled.end.unwrap_or(f64::NAN))
        .collect();
    let peaks: Vec<f64> = rounds.iter().map(|r| r.peak_rss).collect();
    let ps = median(pssh.clone());
    println!(
        "\n{n} hosts, `echo hi`, REST create → SSE `end` through jobd ({started}, load at start {start_load}, at end {}):",
        load()
    );
    println!("\n| {n} hosts | runs | median | vs parallel-ssh |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| jobd, fresh connections | {} s | {:.2} s | {:.1}× |",
        list(&fresh, 2),
        median(fresh.clone()),
        ps / median(fresh)
    );
    println!(
        "| jobd, pooled connections | {} s | {:.3} s | {:.1}× |",
        list(&pooled, 3),
        median(pooled.clone()),
        ps / median(pooled)
    );
    println!(
        "| parallel-ssh -p {n} | {} s | {ps:.2} s | 1× |",
        list(&pssh, 2)
    );
    println!(
        "\njobd peak RSS per run: {} MiB (max {:.1} MiB)",
        list(&peaks, 1),
        peaks.iter().copied().fold(f64::NAN, f64::max)
    );
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    if a.launches > 0 {
        quick_latency(&a, dir.path(), &rt);
    }
    if a.hosts > 0 {
        fanout(&a, dir.path(), &rt);
    }
}
