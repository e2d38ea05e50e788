//! Fan-out benchmark: N loopback SSH targets (distinct addresses 127.0.x.y, one real sshd)
//! run `echo` through the whole engine — store, events, aggregation — and, in the same run,
//! through `parallel-ssh` and `ansible all -m shell` on the same hosts; then 1 MiB is pushed
//! to M hosts by our SSH transport and by `parallel-scp`.
//!
//! ```text
//! cargo bench -p job-benches --bench fanout -- --hosts 500 --runs 3 --file-hosts 100
//! ```
//! Other flags: `--ansible-runs N` (default 1), `--tool-runs N` (parallel-ssh and
//! parallel-scp runs, default `--runs`). `JOBD_BENCH_HANDSHAKES=n` overrides the pool's
//! concurrent-handshake limit. Pushes are timed over fresh connections, then again over the
//! pooled ones. Needs root (the sshd harness), `pssh` (Debian) and `ansible-core` (PyPI); a
//! missing comparison tool is reported and skipped. Prints a Markdown table for
//! docs/performance.md, with the machine's load average.

// A benchmark's output is its product.
#![allow(clippy::print_stdout)]

#[path = "common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use job_core::bus::InProcessBus;
use job_core::clock::SystemClock;
use job_core::engine::{Engine, EngineConfig, HostConnector};
use job_core::ids::TeamId;
use job_core::model::{CredentialSecret, Execution, HostRun, Os, TargetSnapshot, Team};
use job_core::status::{ExecutionStatus, HostStatus};
use job_core::store::Store;
use job_core::transport::{
    Cancel, HostAccess, HostTarget, PushSource, PushSpec, SshAccess, Transport, TransportError,
};
use job_core::values::{Address, Description, Name, Port};
use job_store_sqlite::SqliteStore;
use job_testsupport::{Sshd, TEST_USER};
use job_transport_ssh::{HostKeyPolicy, SshOptions, SshTransport};

struct Args {
    hosts: usize,
    runs: usize,
    file_hosts: usize,
    ansible_runs: usize,
    /// Runs of parallel-ssh and parallel-scp (default: `runs`).
    tool_runs: Option<usize>,
}

fn args() -> Args {
    let mut a = Args {
        hosts: 500,
        runs: 3,
        file_hosts: 100,
        ansible_runs: 1,
        tool_runs: None,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let v = argv.get(i + 1).and_then(|s| s.parse().ok());
        match (argv[i].as_str(), v) {
            ("--hosts", Some(v)) => a.hosts = v,
            ("--runs", Some(v)) => a.runs = v,
            ("--file-hosts", Some(v)) => a.file_hosts = v,
            ("--ansible-runs", Some(v)) => a.ansible_runs = v,
            ("--tool-runs", Some(v)) => a.tool_runs = Some(v),
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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

/// CPU seconds (user + system) this process has used so far.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
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
    // After the command name: state is field 0, utime 11, stime 12 (clock ticks of 1/100 s).
    (ticks(11) + ticks(12)) / 100.0
}

/// The machine's load averages (1, 5, 15 minutes), to print next to the figures.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

#[derive(Debug)]
struct BenchConnector {
    transport: Arc<dyn Transport>,
    port: Port,
    key: String,
}

#[async_trait]
impl HostConnector for BenchConnector {
    async fn connect(
        &self,
        _execution: &Execution,
        host: &TargetSnapshot,
    ) -> Result<(Arc<dyn Transport>, HostTarget), TransportError> {
        Ok((
            self.transport.clone(),
            target(host.address.clone(), self.port, &self.key),
        ))
    }
}

fn target(address: Address, port: Port, key: &str) -> HostTarget {
    HostTarget {
        name: address.to_string(),
        os: Os::Linux,
        access: HostAccess::Ssh(SshAccess {
            address,
            port,
            user: TEST_USER.into(),
            secret: CredentialSecret::PrivateKey {
                private_key: key.to_owned(),
                passphrase: None,
            },
        }),
    }
}

fn execution(team: TeamId, n: usize) -> (Execution, Vec<HostRun>) {
    common::pending_execution(team, "fanout", "echo hi", n, "agentless", |i| {
        (format!("h{i}"), address(i))
    })
}

/// Runs one execution of `n` hosts through the engine; returns seconds from create to final.
async fn engine_run(engine: &Engine, store: &dyn Store, team: TeamId, n: usize) -> f64 {
    let (e, hosts) = execution(team, n);
    let t0 = Instant::now();
    store.create_execution(&e, &hosts).await.unwrap();
    let claimed = engine.claim().await.unwrap().pop().unwrap();
    let status = engine.run_claimed(claimed).await.unwrap();
    let secs = t0.elapsed().as_secs_f64();
    if status != ExecutionStatus::Success {
        let hosts = store
            .list_host_runs(
                &job_core::store::TeamScope::All,
                e.id,
                Some(HostStatus::Failed),
                job_core::store::PageRequest::first(5),
            )
            .await
            .unwrap();
        let errors: Vec<_> = hosts
            .items
            .iter()
            .map(|h| h.error.clone().unwrap_or_default())
            .collect();
        panic!("the execution ended {status}: {errors:#?}");
    }
    secs
}

/// The transport's options: defaults, trust-on-first-use into `known_hosts`, and the
/// handshake limit from `JOBD_BENCH_HANDSHAKES` when set.
fn ssh_options(known_hosts: PathBuf) -> SshOptions {
    let mut options = SshOptions::new(HostKeyPolicy::TrustOnFirstUse(known_hosts));
    if let Some(n) = std::env::var("JOBD_BENCH_HANDSHAKES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        options.max_concurrent_handshakes = n;
    }
    options
}

fn ssh_opts(key: &Path, port: u16) -> String {
    format!(
        "-i {} -p {port} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR",
        key.display()
    )
}

fn timed(cmd: &mut Command) -> Option<f64> {
    let t0 = Instant::now();
    match cmd.output() {
        Ok(o) if o.status.success() => Some(t0.elapsed().as_secs_f64()),
        Ok(o) => {
            eprintln!(
                "{:?} failed: {}\n{}",
                cmd.get_program(),
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .rev()
                    .take(5)
                    .collect::<Vec<_>>()
                    .join("\n"),
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .take(5)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            None
        }
        Err(e) => {
            eprintln!("{:?} is not available: {e}", cmd.get_program());
            None
        }
    }
}

fn hosts_file(dir: &Path, n: usize, port: u16) -> PathBuf {
    let p = dir.join(format!("hosts-{n}"));
    let text: String = (0..n).map(|i| format!("{}:{port}\n", address(i))).collect();
    std::fs::write(&p, text).unwrap();
    p
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sshd =
        Sshd::start_on_all_loopback_addresses("MaxStartups 10000:30:20000\nMaxSessions 10000")
            .expect("the sshd harness starts (run as root with openssh-server installed)");
    let port = sshd.port();
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("id_ed25519");
    std::fs::write(&key_path, &sshd.keys().ed25519).unwrap();
    Command::new("chmod")
        .args(["600"])
        .arg(&key_path)
        .status()
        .unwrap();
    let key = sshd.keys().ed25519.clone();
    let n = a.hosts;
    let tool_runs = a.tool_runs.unwrap_or(a.runs);
    eprintln!(
        "fan-out over {n} loopback hosts, sshd on port {port}, {} runs; load {}",
        a.runs,
        load()
    );

    // --- ours: fresh connections, then the same execution again over pooled ones.
    let (mut fresh, mut pooled) = (Vec::new(), Vec::new());
    rt.block_on(async {
        for run in 0..a.runs {
            let db = dir.path().join(format!("bench-{run}.db"));
            let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).await.unwrap());
            let team = Team {
                id: TeamId::new(),
                name: Name::parse("name", "bench").unwrap(),
                description: Description::default(),
                created_at: Utc::now(),
            };
            store.create_team(&team).await.unwrap();
            let kh = dir.path().join(format!("known_hosts-{run}"));
            let transport: Arc<dyn Transport> =
                Arc::new(SshTransport::new(ssh_options(kh), Duration::from_secs(600)));
            let connector = Arc::new(BenchConnector {
                transport,
                port: Port::new("port", i64::from(port)).unwrap(),
                key: key.clone(),
            });
            let config = EngineConfig {
                max_hosts_in_flight: n.max(1),
                max_hosts_per_execution: n.max(1),
                ..EngineConfig::default()
            };
            let engine = Engine::new(
                store.clone(),
                connector,
                Arc::new(InProcessBus::default()),
                Arc::new(SystemClock),
                config,
            );
            let c0 = cpu_secs();
            let f = engine_run(&engine, &*store, team.id, n).await;
            let c1 = cpu_secs();
            let p = engine_run(&engine, &*store, team.id, n).await;
            let c2 = cpu_secs();
            eprintln!(
                "  ours run {run}: fresh {f:.2} s ({:.2} s CPU in this process), pooled {p:.3} s ({:.2} s CPU)",
                c1 - c0,
                c2 - c1
            );
            fresh.push(f);
            pooled.push(p);
        }
    });
    let peak = peak_rss_mib();

    // --- parallel-ssh on the same hosts.
    let hosts = hosts_file(dir.path(), n, port);
    let mut pssh = Vec::new();
    for run in 0..tool_runs {
        let t = timed(
            Command::new("parallel-ssh")
                .arg("-h")
                .arg(&hosts)
                .args(["-p", &n.to_string(), "-t", "300", "-l", TEST_USER, "-x"])
                .arg(ssh_opts(&key_path, port).replace(&format!(" -p {port}"), ""))
                .arg("echo hi"),
        );
        match t {
            Some(t) => {
                eprintln!("  parallel-ssh run {run}: {t:.2} s");
                pssh.push(t);
            }
            None => break,
        }
    }

    // --- ansible all -m shell.
    let inventory = dir.path().join("inventory.ini");
    let inv: String = std::iter::once("[all]\n".to_owned())
        .chain((0..n).map(|i| format!("h{i} ansible_host={} ansible_port={port}\n", address(i))))
        .collect();
    std::fs::write(&inventory, inv).unwrap();
    let mut ansible = Vec::new();
    for run in 0..a.ansible_runs {
        let t = timed(
            Command::new("ansible")
                .args(["all", "-i"])
                .arg(&inventory)
                .args(["-u", TEST_USER, "--private-key"])
                .arg(&key_path)
                .args(["-m", "shell", "-a", "echo hi", "-f", "50", "-o"])
                .env("ANSIBLE_HOST_KEY_CHECKING", "False")
                .env("ANSIBLE_PYTHON_INTERPRETER", "/usr/bin/python3")
                .env(
                    "ANSIBLE_SSH_ARGS",
                    "-o ControlMaster=no -o UserKnownHostsFile=/dev/null",
                )
                .env("ANSIBLE_LOCAL_TEMP", dir.path().join("ansible-tmp"))
                .env("ANSIBLE_REMOTE_TMP", "/tmp/.ansible-jobtest")
                .env("ANSIBLE_DEPRECATION_WARNINGS", "False"),
        );
        match t {
            Some(t) => {
                eprintln!("  ansible run {run}: {t:.2} s");
                ansible.push(t);
            }
            None => break,
        }
    }

    // --- 1 MiB to M hosts: our transport (fresh connections, then again over the pooled
    // ones) vs parallel-scp.
    let m = a.file_hosts.min(n);
    let payload: Arc<[u8]> = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect::<Vec<u8>>()
        .into();
    let local_file = dir.path().join("payload.bin");
    std::fs::write(&local_file, &payload).unwrap();
    let (mut ours_push, mut ours_push_pooled) = (Vec::new(), Vec::new());
    rt.block_on(async {
        for run in 0..a.runs {
            let kh = dir.path().join(format!("known_hosts-push-{run}"));
            let transport = Arc::new(SshTransport::new(ssh_options(kh), Duration::from_secs(600)));
            let mut times = Vec::new();
            for round in ["fresh", "pooled"] {
                let t0 = Instant::now();
                let mut set = tokio::task::JoinSet::new();
                for i in 0..m {
                    let transport = transport.clone();
                    let target = target(
                        Address::parse("address", &address(i)).unwrap(),
                        Port::new("port", i64::from(port)).unwrap(),
                        &key,
                    );
                    let spec = PushSpec::new(
                        PushSource::Bytes(payload.clone()),
                        format!("/tmp/jobd-bench-push/{run}-{round}/{i}.bin"),
                    );
                    set.spawn(async move { transport.push(&target, &spec, &Cancel::new()).await });
                }
                while let Some(r) = set.join_next().await {
                    r.unwrap().unwrap();
                }
                times.push(t0.elapsed().as_secs_f64());
            }
            eprintln!(
                "  ours push run {run}: fresh {:.2} s, pooled {:.2} s",
                times[0], times[1]
            );
            ours_push.push(times[0]);
            ours_push_pooled.push(times[1]);
        }
    });
    let hosts_m = hosts_file(dir.path(), m, port);
    let mut pscp = Vec::new();
    for run in 0..tool_runs {
        let t = timed(
            Command::new("parallel-scp")
                .arg("-h")
                .arg(&hosts_m)
                .args(["-p", &m.to_string(), "-t", "300", "-l", TEST_USER, "-x"])
                .arg(ssh_opts(&key_path, port).replace(&format!(" -p {port}"), ""))
                .arg(&local_file)
                .arg(format!("/tmp/jobd-bench-pscp-{run}.bin")),
        );
        match t {
            Some(t) => {
                eprintln!("  parallel-scp run {run}: {t:.2} s");
                pscp.push(t);
            }
            None => break,
        }
    }
    let _ = std::fs::remove_dir_all("/tmp/jobd-bench-push");

    let end_load = load();
    let (f, p, ps, an, op, opp, sc) = (
        median(fresh),
        median(pooled),
        median(pssh),
        median(ansible),
        median(ours_push),
        median(ours_push_pooled),
        median(pscp),
    );
    println!(
        "\n| measurement ({n} hosts, median of {} runs) | seconds | vs parallel-ssh |",
        a.runs
    );
    println!("|---|---|---|");
    println!(
        "| jobd engine, fresh connections | {f:.2} | {:.1}× faster |",
        ps / f
    );
    println!(
        "| jobd engine, pooled connections | {p:.3} | {:.1}× faster |",
        ps / p
    );
    println!("| parallel-ssh -p {n} | {ps:.2} | 1× |");
    println!(
        "| ansible all -m shell -f 50 ({} runs) | {an:.2} | {:.2}× |",
        a.ansible_runs,
        ps / an
    );
    println!("\n| 1 MiB to {m} hosts | seconds | vs parallel-scp |");
    println!("|---|---|---|");
    println!(
        "| jobd SSH transport push, fresh connections | {op:.2} | {:.1}× faster |",
        sc / op
    );
    println!(
        "| jobd SSH transport push, pooled connections | {opp:.2} | {:.1}× faster |",
        sc / opp
    );
    println!("| parallel-scp -p {m} | {sc:.2} | 1× |");
    println!(
        "\npeak RSS of the benchmark process (engine, store, {n} hosts in flight): {peak:.1} MiB"
    );
    println!("load average at the end (1, 5, 15 min): {end_load}");
}
