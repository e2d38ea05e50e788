//! Live-output latency: a script prints a timestamped line every 10 ms on the control node's
//! local target; an SSE client follows `/api/v1/executions/{id}/stream` over loopback HTTP
//! and records, for every line, the delay from the print (the timestamp in the line) to its
//! arrival at the client. Everything a user's console goes through is in the path: the local
//! transport, the engine's batching writer, the SQLite store (a chunk is published with its
//! stored sequence number), the in-process bus, axum's SSE.
//!
//! ```text
//! cargo bench -p job-benches --bench live_latency -- --lines 1000 --runs 3
//! ```
//! Prints p50/p90/p99/max per run and the medians, for docs/performance.md.

// A benchmark's output is its product.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use job_core::bus::InProcessBus;
use job_core::clock::SystemClock;
use job_core::engine::{Engine, EngineConfig, LocalConnector};
use job_core::ids::{TargetId, TeamId, TokenId, UserId};
use job_core::model::{ApiToken, Membership, Os, Role, Target, TargetMode, Team, User};
use job_core::secret::MasterKey;
use job_core::store::Store;
use job_core::values::{Address, Description, Name, Username};
use job_http::{AppState, HttpConfig};
use job_store_sqlite::SqliteStore;
use job_transport_local::LocalTransport;

struct Args {
    lines: usize,
    runs: usize,
}

fn args() -> Args {
    let mut a = Args {
        lines: 1000,
        runs: 3,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let v = argv.get(i + 1).and_then(|s| s.parse().ok());
        match (argv[i].as_str(), v) {
            ("--lines", Some(v)) => a.lines = v,
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

fn main() {
    let args = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(bench(args));
}

struct Fixture {
    base: String,
    token: String,
    target: TargetId,
}

async fn start() -> (Fixture, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("jobd.db"))
            .await
            .expect("sqlite"),
    );
    let now = Utc::now();
    let team = Team {
        id: TeamId::new(),
        name: Name::parse("name", "bench").unwrap(),
        description: Description::default(),
        created_at: now,
    };
    store.create_team(&team).await.unwrap();
    let user = User {
        id: UserId::new(),
        username: Username::parse("username", "bench").unwrap(),
        display_name: Name::parse("display_name", "bench").unwrap(),
        password_hash: job_http::auth::hash_password("bench-password").unwrap(),
        is_admin: false,
        disabled: false,
        memberships: vec![Membership {
            team_id: team.id,
            role: Role::Operator,
        }],
        created_at: now,
    };
    store.create_user(&user).await.unwrap();
    let (secret, hash) = job_http::auth::new_api_token();
    store
        .create_token(&ApiToken {
            id: TokenId::new(),
            name: Name::parse("name", "bench").unwrap(),
            team_id: team.id,
            created_by: user.id,
            token_hash: hash,
            expires_at: None,
            revoked_at: None,
            created_at: now,
            last_used_at: None,
        })
        .await
        .unwrap();
    let target = Target {
        id: TargetId::new(),
        team_id: team.id,
        name: Name::parse("name", "control-node").unwrap(),
        address: Address::parse("address", "127.0.0.1").unwrap(),
        os: Os::Linux,
        tags: vec![],
        mode: TargetMode::Local,
        description: Description::default(),
        created_at: now,
        updated_at: now,
    };
    store.create_target(&target).await.unwrap();

    let bus = Arc::new(InProcessBus::default());
    let clock = Arc::new(SystemClock);
    let engine = Engine::new(
        store.clone(),
        Arc::new(LocalConnector::new(Arc::new(LocalTransport::new()))),
        bus.clone(),
        clock.clone(),
        EngineConfig {
            claim_interval: Duration::from_millis(20),
            ..EngineConfig::default()
        },
    );
    tokio::spawn(async move { engine.run(std::future::pending()).await });
    let state = AppState::new(
        store,
        bus,
        Arc::new(MasterKey::generate()),
        clock,
        MasterKey::generate_bytes(),
        HttpConfig::default(),
    );
    state.set_ready(true);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, job_http::router(state))
            .await
            .unwrap();
    });
    (
        Fixture {
            base: format!("http://{addr}"),
            token: secret,
            target: target.id,
        },
        dir,
    )
}

fn now_ns() -> i128 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    d.as_nanos() as i128
}

/// One execution: returns the delay of every line in milliseconds.
async fn one_run(f: &Fixture, client: &reqwest::Client, lines: usize) -> Vec<f64> {
    let script = format!(
        "import sys, time\nfor i in range({lines}):\n    sys.stdout.write('%d\\n' % time.time_ns())\n    sys.stdout.flush()\n    time.sleep(0.01)\n"
    );
    let body = serde_json::json!({
        "name": "latency",
        "script_type": "python",
        "script_content": script,
        "targets": {"target_ids": [f.target.to_string()]},
        "timeout": 600,
    });
    let created: serde_json::Value = client
        .post(format!("{}/api/v1/executions/quick", f.base))
        .bearer_auth(&f.token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let mut resp = client
        .get(format!("{}/api/v1/executions/{id}/stream", f.base))
        .bearer_auth(&f.token)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let mut delays = Vec::with_capacity(lines);
    let mut buf = String::new();
    let mut event = String::new();
    // Partial output lines by (host, stream): a chunk need not end at a newline.
    let mut partial: BTreeMap<(u64, String), String> = BTreeMap::new();
    'read: while let Some(bytes) = resp.chunk().await.unwrap() {
        let arrived = now_ns();
        buf.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(end) = buf.find('\n') {
            let line: String = buf.drain(..=end).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if let Some(e) = line.strip_prefix("event:") {
                event = e.trim().to_owned();
            } else if let Some(data) = line.strip_prefix("data:") {
                if event == "end" {
                    break 'read;
                }
                if event != "output" {
                    continue;
                }
                let v: serde_json::Value = serde_json::from_str(data.trim()).unwrap();
                let key = (
                    v["host"].as_u64().unwrap_or(0),
                    v["stream"].as_str().unwrap_or("").to_owned(),
                );
                let acc = partial.entry(key).or_default();
                acc.push_str(v["text"].as_str().unwrap_or(""));
                while let Some(nl) = acc.find('\n') {
                    let printed: String = acc.drain(..=nl).collect();
                    if let Ok(ts) = printed.trim().parse::<i128>() {
                        delays.push((arrived - ts) as f64 / 1e6);
                    }
                }
            } else if line.is_empty() {
                event.clear();
            }
        }
    }
    delays
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

async fn bench(args: Args) {
    let (fixture, _dir) = start().await;
    let client = reqwest::Client::new();
    println!(
        "live-output latency: {} lines at 10 ms, {} runs, local target, SQLite, loopback SSE",
        args.lines, args.runs
    );
    println!("| run | lines | p50 ms | p90 ms | p99 ms | max ms |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let (mut p50s, mut p90s, mut p99s, mut maxes) = (vec![], vec![], vec![], vec![]);
    for run in 1..=args.runs {
        let mut d = one_run(&fixture, &client, args.lines).await;
        d.sort_by(f64::total_cmp);
        let (p50, p90, p99) = (pct(&d, 0.5), pct(&d, 0.9), pct(&d, 0.99));
        let max = d.last().copied().unwrap_or(f64::NAN);
        println!(
            "| {run} | {} | {p50:.2} | {p90:.2} | {p99:.2} | {max:.2} |",
            d.len()
        );
        p50s.push(p50);
        p90s.push(p90);
        p99s.push(p99);
        maxes.push(max);
    }
    println!(
        "| median | | {:.2} | {:.2} | {:.2} | {:.2} |",
        median(p50s),
        median(p90s),
        median(p99s),
        median(maxes)
    );
}
