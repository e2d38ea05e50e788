//! Agent-mode benchmark (issue 6 item 6): N resident agents on real NATS connections each
//! run `echo` once, as one execution of N agent-mode targets through the engine; timed from
//! submitting the execution to its final state, with every host's output in the store.
//!
//! ```text
//! cargo bench -p job-benches --bench agents -- --agents 1000 --runs 5 --processes 1
//! ```
//! Starts its own throwaway nats-server (`job_testsupport::NatsServer`, `NATS_SERVER=<path>`
//! picks the binary). The agents (`agent::run`, each with its own NATS connection and the
//! local runner) run in `--processes` child processes of this bench (default 1; 0: in the
//! bench process itself; on two cores more processes only compete for them). The control side is this process: a `job_core` engine over a SQLite
//! store (`job-store-sqlite`, a file in a temporary directory) reaching the agents through
//! one `NatsTransport`. A round creates an execution of N hosts (script `echo hello`),
//! claims and runs it; the time is from `create_execution` to the engine returning the
//! final status, after which every host's status, exit code and stored output are checked.
//!
//! `--transport-only` times N `run_collected` calls on the transport instead (no engine,
//! no store), as earlier versions of this bench did. `JOBD_BENCH_PROBE=1` first times N
//! registration reads and N task publishes alone. Prints a Markdown row for
//! docs/performance.md, with the machine's load average.

// A benchmark's output is its product; its setup may panic.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use job_core::bus::InProcessBus;
use job_core::clock::SystemClock;
use job_core::engine::{Engine, EngineConfig, HostConnector};
use job_core::ids::TeamId;
use job_core::model::{Execution, HostRun, Os, OutputStream, TargetSnapshot, Team};
use job_core::status::{ExecutionStatus, HostStatus};
use job_core::store::{PageRequest, Store, TeamScope};
use job_core::transport::{
    Cancel, HostAccess, HostTarget, TaskSpec, Transport, TransportError, TransportExt,
};
use job_core::values::{Description, Name};
use job_store_sqlite::SqliteStore;
use job_testsupport::NatsServer;
use job_transport_local::LocalTransport;
use job_transport_nats::agent::{self, AgentConfig};
use job_transport_nats::{NatsConfig, NatsTransport};

struct Args {
    agents: usize,
    runs: usize,
    processes: usize,
    transport_only: bool,
}

fn args() -> Args {
    let mut a = Args {
        agents: 1000,
        runs: 5,
        processes: 1,
        transport_only: false,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        if argv[i] == "--transport-only" {
            a.transport_only = true;
            i += 1;
            continue;
        }
        let value = argv.get(i + 1).and_then(|v| v.parse().ok());
        match (argv[i].as_str(), value) {
            ("--agents", Some(v)) => a.agents = v,
            ("--runs", Some(v)) => a.runs = v,
            ("--processes", Some(v)) => a.processes = v,
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

fn agent_id(i: usize) -> String {
    format!("bench-{i}")
}

fn target(i: usize) -> HostTarget {
    HostTarget {
        name: format!("agent-{i}"),
        os: Os::Linux,
        access: HostAccess::Agent {
            agent_id: agent_id(i),
        },
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    // A child of the bench: `--agent-process <url> <first> <count> <work dir>`.
    if let Some(at) = argv.iter().position(|a| a == "--agent-process") {
        let url = argv[at + 1].clone();
        let first: usize = argv[at + 2].parse().expect("first agent");
        let count: usize = argv[at + 3].parse().expect("agent count");
        let work = std::path::PathBuf::from(&argv[at + 4]);
        runtime().block_on(agent_process(url, first, count, work));
        return;
    }
    let args = args();
    runtime().block_on(bench(args));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Starts agents `first..first + count` and runs them until `stop` turns true.
fn start_agents(
    url: &str,
    first: usize,
    count: usize,
    work: &std::path::Path,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<Result<(), job_core::Error>>> {
    let runner: Arc<dyn Transport> = Arc::new(LocalTransport::new());
    (first..first + count)
        .map(|i| {
            let config = AgentConfig::new(
                url,
                &agent_id(i),
                work.join(format!("agent-{i}")),
                runner.clone(),
            )
            .expect("config");
            let mut stop = stop.clone();
            tokio::spawn(async move {
                agent::run(config, async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
            })
        })
        .collect()
}

/// The body of an agent child process: runs its agents until its stdin closes.
async fn agent_process(url: String, first: usize, count: usize, work: std::path::PathBuf) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let agents = start_agents(&url, first, count, &work, &stop_rx);
    // The parent holds our stdin: its end (or the parent's death) stops the agents.
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await;
    let _ = stop_tx.send(true);
    for a in agents {
        let _ = tokio::time::timeout(Duration::from_secs(30), a).await;
    }
}

#[derive(Debug)]
struct AgentConnector {
    transport: Arc<dyn Transport>,
}

#[async_trait]
impl HostConnector for AgentConnector {
    async fn connect(
        &self,
        _execution: &Execution,
        host: &TargetSnapshot,
    ) -> Result<(Arc<dyn Transport>, HostTarget), TransportError> {
        Ok((
            self.transport.clone(),
            HostTarget {
                name: host.name.to_string(),
                os: host.os,
                access: HostAccess::Agent {
                    agent_id: host.address.to_string(),
                },
            },
        ))
    }
}

fn execution(team: TeamId, n: usize) -> (Execution, Vec<HostRun>) {
    common::pending_execution(team, "agents", "echo hello", n, "agent", |i| {
        (format!("agent-{i}"), agent_id(i))
    })
}

/// One execution of `n` agent-mode hosts through the engine: seconds from create to final,
/// then checks that every host succeeded with `hello` stored as its output.
async fn engine_round(engine: &Engine, store: &dyn Store, team: TeamId, n: usize) -> f64 {
    let (e, hosts) = execution(team, n);
    let t0 = Instant::now();
    store.create_execution(&e, &hosts).await.unwrap();
    let claimed = engine.claim().await.unwrap().pop().unwrap();
    let status = engine.run_claimed(claimed).await.unwrap();
    let secs = t0.elapsed().as_secs_f64();

    let scope = TeamScope::All;
    let mut failed = Vec::new();
    let mut succeeded = 0;
    let mut page = PageRequest::first(1000);
    loop {
        let runs = store
            .list_host_runs(&scope, e.id, None, page)
            .await
            .unwrap();
        for h in &runs.items {
            if h.status == HostStatus::Success && h.exit_code == Some(0) && h.stdout_bytes == 6 {
                succeeded += 1;
            } else if failed.len() < 5 {
                failed.push(format!("{}: {} {:?}", h.target.name, h.status, h.error));
            }
        }
        match runs.next {
            Some(next) => page = PageRequest::after(next, 1000),
            None => break,
        }
    }
    let mut stored = BTreeMap::<u32, Vec<u8>>::new();
    let mut after = None;
    loop {
        let chunks = store
            .read_output(&scope, e.id, None, after, 1000)
            .await
            .unwrap();
        let Some(last) = chunks.last() else { break };
        after = Some((last.host_index, last.seq));
        for c in chunks {
            if c.stream == OutputStream::Stdout {
                stored.entry(c.host_index).or_default().extend(c.data);
            }
        }
    }
    let with_output = stored
        .values()
        .filter(|d| d.as_slice() == b"hello\n")
        .count();
    assert!(
        status == ExecutionStatus::Success && succeeded == n && with_output == n,
        "the execution ended {status}: {succeeded}/{n} hosts succeeded, {with_output}/{n} \
         with their output stored; first failures: {failed:#?}"
    );
    secs
}

/// One round of `n` runs through the transport alone: seconds until the last result.
async fn transport_round(transport: &Arc<NatsTransport>, n: usize) -> f64 {
    let start = Instant::now();
    let mut runs = tokio::task::JoinSet::new();
    for i in 0..n {
        let transport = transport.clone();
        runs.spawn(async move {
            let task = TaskSpec::new("sh", "echo hello").with_extension("sh");
            let run = transport
                .run_collected(&target(i), &task, &Cancel::new())
                .await;
            let stdout_ok = run.output(OutputStream::Stdout) == b"hello\n";
            match (run.outcome().error.as_ref(), stdout_ok) {
                (Some(e), _) => Some(e.to_string()),
                (None, false) => Some("wrong output".to_owned()),
                (None, true) => None,
            }
        });
    }
    let mut errors = BTreeMap::<String, usize>::new();
    while let Some(done) = runs.join_next().await {
        if let Some(e) = done.expect("run task") {
            *errors.entry(e).or_default() += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert!(errors.is_empty(), "failed runs: {errors:#?}");
    secs
}

/// Times `n` registration reads and `n` task publishes, then waits for those tasks.
async fn probe(transport: &Arc<NatsTransport>, n: usize) {
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let t = transport.clone();
        set.spawn(async move { t.agent_status(&agent_id(i)).await.is_ok() });
    }
    while set.join_next().await.is_some() {}
    println!(
        "probe: {n} status reads in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let t = transport.clone();
        set.spawn(async move {
            let task = TaskSpec::new("sh", "true").with_extension("sh");
            t.start(&target(i), &task).await
        });
    }
    let mut started = Vec::new();
    while let Some(done) = set.join_next().await {
        if let Ok(Ok(task)) = done {
            started.push(task);
        }
    }
    println!(
        "probe: {n} tasks published in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    // Let those tasks end before the timed rounds.
    let mut set = tokio::task::JoinSet::new();
    for task in started {
        let t = transport.clone();
        set.spawn(async move {
            let (tx, mut rx) = tokio::sync::mpsc::channel(16);
            let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
            let _ = t.follow(&task, tx, &Cancel::new()).await;
            let _ = drain.await;
        });
    }
    while set.join_next().await.is_some() {}
}

async fn bench(args: Args) {
    let server = NatsServer::start().expect("nats-server");
    let work = tempfile::tempdir().expect("work dir");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let n = args.agents;

    let t0 = Instant::now();
    let mut children: Vec<Child> = Vec::new();
    let mut in_process = Vec::new();
    if args.processes == 0 {
        in_process = start_agents(&server.url(), 0, n, work.path(), &stop_rx);
    } else {
        let exe = std::env::current_exe().expect("bench executable");
        let per = n.div_ceil(args.processes);
        for p in 0..args.processes {
            let first = p * per;
            let count = per.min(n.saturating_sub(first));
            if count == 0 {
                break;
            }
            let child = Command::new(&exe)
                .arg("--agent-process")
                .arg(server.url())
                .arg(first.to_string())
                .arg(count.to_string())
                .arg(work.path())
                .stdin(Stdio::piped())
                .spawn()
                .expect("agent process");
            children.push(child);
        }
    }
    let transport = Arc::new(
        NatsTransport::connect(NatsConfig::new(server.url()))
            .await
            .expect("control side"),
    );
    for i in 0..n {
        loop {
            if matches!(transport.agent_status(&agent_id(i)).await, Ok(Some(s)) if s.online) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    println!(
        "{n} agents in {} process(es) connected and registered in {:.1} s",
        args.processes.max(1),
        t0.elapsed().as_secs_f64()
    );

    if std::env::var_os("JOBD_BENCH_PROBE").is_some() {
        probe(&transport, n).await;
    }

    let db = work.path().join("bench.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).await.expect("sqlite store"));
    let team = Team {
        id: TeamId::new(),
        name: Name::parse("name", "bench").unwrap(),
        description: Description::default(),
        created_at: Utc::now(),
    };
    store.create_team(&team).await.expect("team");
    let engine = Engine::new(
        store.clone(),
        Arc::new(AgentConnector {
            transport: transport.clone(),
        }),
        Arc::new(InProcessBus::default()),
        Arc::new(SystemClock),
        EngineConfig {
            max_hosts_in_flight: n.max(1),
            max_hosts_per_execution: n.max(1),
            ..EngineConfig::default()
        },
    );

    let what = if args.transport_only {
        "transport run_collected, no store"
    } else {
        "engine + SQLite, until final with all output stored"
    };
    let mut totals = Vec::new();
    for round in 1..=args.runs {
        let secs = if args.transport_only {
            transport_round(&transport, n).await
        } else {
            engine_round(&engine, &*store, team.id, n).await
        };
        println!("round {round}: {n} hosts in {secs:.2} s ({what})");
        totals.push(secs);
    }
    totals.sort_by(f64::total_cmp);
    let median = totals[totals.len() / 2];
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!();
    println!("| agents | processes | measured | median | rounds | load average |");
    println!("| --- | --- | --- | --- | --- | --- |");
    println!(
        "| {n} | {} | {what} | {median:.2} s | {} | {} |",
        args.processes,
        totals
            .iter()
            .map(|d| format!("{d:.2} s"))
            .collect::<Vec<_>>()
            .join(" / "),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    );

    let _ = stop_tx.send(true);
    for a in in_process {
        let _ = tokio::time::timeout(Duration::from_secs(30), a).await;
    }
    for mut child in children {
        drop(child.stdin.take());
        let _ = child.wait();
    }
}
