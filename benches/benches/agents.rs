//! Agent-mode benchmark (issue 6 item 6): N resident agents, each on its own NATS
//! connection (all in this process), each run `echo` once; the time from submitting the N
//! runs through one `NatsTransport` to the last result received by the control side.
//!
//! ```text
//! cargo bench -p job-benches --bench agents -- --agents 1000 --runs 3
//! ```
//! `JOBD_BENCH_PROBE=1` first times 1,000 registration reads and 1,000 task publishes alone.
//! Starts its own throwaway nats-server (`job_testsupport::NatsServer`). What is timed is
//! the transport round trip (registration check, task published to JetStream, run by the
//! agent's local runner, started/output/finished stored in the results stream and read back
//! by the control side); writing the results into a store is not part of it. Prints a
//! Markdown row for docs/performance.md, with the machine's load average.

// A benchmark's output is its product.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use job_core::model::Os;
use job_core::transport::{Cancel, HostAccess, HostTarget, TaskSpec, Transport, TransportExt};
use job_testsupport::NatsServer;
use job_transport_local::LocalTransport;
use job_transport_nats::agent::{self, AgentConfig};
use job_transport_nats::{NatsConfig, NatsTransport};

struct Args {
    agents: usize,
    runs: usize,
}

fn args() -> Args {
    let mut a = Args {
        agents: 1000,
        runs: 3,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let value = argv.get(i + 1).and_then(|v| v.parse().ok());
        match (argv[i].as_str(), value) {
            ("--agents", Some(v)) => a.agents = v,
            ("--runs", Some(v)) => a.runs = v,
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

fn target(i: usize) -> HostTarget {
    HostTarget {
        name: format!("agent-{i}"),
        os: Os::Linux,
        access: HostAccess::Agent {
            agent_id: format!("bench-{i}"),
        },
    }
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench(args));
}

async fn bench(args: Args) {
    let server = NatsServer::start().expect("nats-server");
    let work = tempfile::tempdir().expect("work dir");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

    let t0 = Instant::now();
    let runner: Arc<dyn Transport> = Arc::new(LocalTransport::new());
    let mut agents = Vec::new();
    for i in 0..args.agents {
        let config = AgentConfig::new(
            server.url(),
            &format!("bench-{i}"),
            work.path().join(format!("agent-{i}")),
            runner.clone(),
        )
        .expect("config");
        let mut stop = stop_rx.clone();
        agents.push(tokio::spawn(async move {
            agent::run(config, async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
        }));
    }
    let transport = Arc::new(
        NatsTransport::connect(NatsConfig::new(server.url()))
            .await
            .expect("control side"),
    );
    for i in 0..args.agents {
        let id = format!("bench-{i}");
        loop {
            if matches!(transport.agent_status(&id).await, Ok(Some(s)) if s.online) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    println!(
        "{} agents connected and registered in {:.1} s",
        args.agents,
        t0.elapsed().as_secs_f64()
    );

    if std::env::var_os("JOBD_BENCH_PROBE").is_some() {
        // Where the time goes: 1000 registration reads, then 1000 task publishes.
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for i in 0..args.agents {
            let t = transport.clone();
            set.spawn(async move { t.agent_status(&format!("bench-{i}")).await.is_ok() });
        }
        while set.join_next().await.is_some() {}
        println!(
            "probe: {} status reads in {:.2} s",
            args.agents,
            start.elapsed().as_secs_f64()
        );
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for i in 0..args.agents {
            let t = transport.clone();
            set.spawn(async move {
                let task = TaskSpec::new("sh", "true").with_extension("sh");
                t.start(&target(i), &task).await.is_ok()
            });
        }
        while set.join_next().await.is_some() {}
        println!(
            "probe: {} tasks published in {:.2} s",
            args.agents,
            start.elapsed().as_secs_f64()
        );
    }

    let mut totals = Vec::new();
    for round in 1..=args.runs {
        let start = Instant::now();
        let mut runs = tokio::task::JoinSet::new();
        for i in 0..args.agents {
            let transport = transport.clone();
            runs.spawn(async move {
                let begun = Instant::now();
                let task = TaskSpec::new("sh", "echo hello").with_extension("sh");
                let run = transport
                    .run_collected(&target(i), &task, &Cancel::new())
                    .await;
                let stdout_ok = run.output(job_core::model::OutputStream::Stdout) == b"hello\n";
                let outcome = run.outcome();
                let error = match (&outcome.error, stdout_ok) {
                    (Some(e), _) => Some(e.to_string()),
                    (None, false) => Some("wrong output".to_owned()),
                    (None, true) => None,
                };
                (error, begun.elapsed())
            });
        }
        let mut latencies = Vec::new();
        let mut failed = 0;
        let mut errors = std::collections::BTreeMap::<String, usize>::new();
        while let Some(done) = runs.join_next().await {
            let (error, latency) = done.expect("run task");
            if let Some(e) = error {
                failed += 1;
                *errors.entry(e).or_default() += 1;
            }
            latencies.push(latency);
        }
        for (e, n) in &errors {
            println!("  {n} × {e}");
        }
        let total = start.elapsed();
        latencies.sort();
        let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize];
        println!(
            "round {round}: {} runs in {:.2} s (p50 {:.0} ms, p99 {:.0} ms), {failed} failed",
            args.agents,
            total.as_secs_f64(),
            pct(0.5).as_secs_f64() * 1000.0,
            pct(0.99).as_secs_f64() * 1000.0,
        );
        totals.push(total);
    }
    totals.sort();
    let median = totals[totals.len() / 2];
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!();
    println!("| agents | runs | median submit → all results | rounds | load average |");
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| {} | {} | {:.2} s | {} | {} |",
        args.agents,
        args.runs,
        median.as_secs_f64(),
        totals
            .iter()
            .map(|d| format!("{:.2} s", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(" / "),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    );

    let _ = stop_tx.send(true);
    for a in agents {
        let _ = tokio::time::timeout(Duration::from_secs(30), a).await;
    }
}
