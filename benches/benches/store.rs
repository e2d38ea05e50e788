//! Storage benchmarks for both backends: creating an execution of 10,000 hosts, appending
//! 100,000 output lines, claims per second, and every dashboard query over 100,000
//! executions.
//!
//! ```text
//! cargo bench -p job-benches --bench store -- [--backend sqlite|postgres|both] [--runs 5]
//! ```
//! SQLite runs on a temporary file; PostgreSQL on a throwaway database created through
//! `JOB_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`) and dropped after.
//! The 100,000 executions of the dashboard figures are inserted with one SQL statement per
//! backend (going through the store API would time the seeding, not the queries). Prints a
//! Markdown table for docs/performance.md; figures are medians of `--runs` runs.

use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use job_core::ids::{ExecutionId, TargetId, TeamId};
use job_core::model::{
    ActorKind, Execution, ExecutorSnapshot, HostRun, JobType, Os, OutputStream, ScriptLanguage,
    TargetSnapshot, TaskSnapshot, Team, TriggerSource,
};
use job_core::status::{ExecutionStatus, HostCounters, HostStatus};
use job_core::store::{Lease, NewOutput, Store, TeamScope, TimeRange};
use job_core::values::{Address, Description, Name, TimeoutSecs};
use job_store_postgres::PgStore;
use job_store_sqlite::SqliteStore;
use sqlx::{Connection, Executor};

const SEEDED: i64 = 100_000;

struct Args {
    backend: String,
    runs: usize,
}

fn args() -> Args {
    let mut a = Args {
        backend: "both".to_owned(),
        runs: 5,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        match (argv[i].as_str(), argv.get(i + 1)) {
            ("--backend", Some(v)) => a.backend = v.clone(),
            ("--runs", Some(v)) => a.runs = v.parse().unwrap_or(5),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// A pending script execution of `team` on `n` hosts.
fn execution(team: TeamId, n: u32) -> (Execution, Vec<HostRun>) {
    let id = ExecutionId::new();
    let e = Execution {
        id,
        team_id: team,
        name: Name::parse("name", "bench").expect("name"),
        job_type: JobType::Script,
        trigger_source: TriggerSource::Api,
        executor: ExecutorSnapshot {
            actor: ActorKind::Scheduler,
            label: "scheduler".to_owned(),
        },
        task: TaskSnapshot::Script {
            language: ScriptLanguage::Bash,
            rendered: "echo hello".to_owned(),
            script_version_id: None,
            params: Default::default(),
        },
        timeout: TimeoutSecs::DEFAULT,
        status: ExecutionStatus::Pending,
        counters: HostCounters::all_pending(n),
        callback_url: None,
        re_executed_from: None,
        cron_job_id: None,
        confirmation: None,
        created_at: now(),
        started_at: None,
        finished_at: None,
        cancel_requested_at: None,
        rolling: None,
        paused_at: None,
    };
    let hosts = (0..n)
        .map(|i| HostRun {
            execution_id: id,
            index: i,
            target: TargetSnapshot {
                target_id: TargetId::new(),
                name: Name::parse("name", &format!("host-{i}")).expect("name"),
                address: Address::parse(
                    "address",
                    &format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255),
                )
                .expect("address"),
                os: Os::Linux,
                mode: "agentless".to_owned(),
            },
            status: HostStatus::Pending,
            exit_code: None,
            error: None,
            started_at: None,
            finished_at: None,
            stdout_bytes: 0,
            stderr_bytes: 0,
            output_truncated: false,
        })
        .collect();
    (e, hosts)
}

async fn create_execution(store: &dyn Store, team: TeamId, n: u32) -> ExecutionId {
    let (e, hosts) = execution(team, n);
    store.create_execution(&e, &hosts).await.expect("create");
    e.id
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

async fn new_team(store: &dyn Store) -> Team {
    let team = Team {
        id: TeamId::new(),
        name: Name::parse("name", &format!("bench-{}", TeamId::new())).expect("name"),
        description: Description::default(),
        created_at: now(),
    };
    store.create_team(&team).await.expect("create team");
    team
}

/// One row of the results table.
struct Row(&'static str, String);

async fn bench(store: &dyn Store, runs: usize, seed: impl AsyncFnOnce(TeamId)) -> Vec<Row> {
    let team = new_team(store).await;
    let mut rows = Vec::new();

    // Create an execution of 10,000 hosts.
    let mut t = Vec::new();
    for _ in 0..runs {
        let (e, hosts) = execution(team.id, 10_000);
        let start = Instant::now();
        store.create_execution(&e, &hosts).await.expect("create");
        t.push(start.elapsed());
    }
    rows.push(Row("create an execution of 10,000 hosts", ms(median(t))));

    // Append 100,000 output lines (100 hosts, batches of 500 lines of 64 bytes).
    let mut t = Vec::new();
    for _ in 0..runs {
        let e = create_execution(store, team.id, 100).await;
        let line = vec![b'x'; 63]
            .into_iter()
            .chain([b'\n'])
            .collect::<Vec<u8>>();
        let start = Instant::now();
        for batch in 0..200u32 {
            let chunks: Vec<NewOutput> = (0..500u32)
                .map(|i| NewOutput {
                    host_index: (batch * 500 + i) % 100,
                    stream: OutputStream::Stdout,
                    data: line.clone(),
                    ts: now(),
                })
                .collect();
            store
                .append_output(e, &chunks, 1 << 20)
                .await
                .expect("append");
        }
        t.push(start.elapsed());
    }
    let d = median(t);
    rows.push(Row(
        "append 100,000 output lines (batches of 500)",
        format!("{} ({:.0} lines/s)", ms(d), 100_000.0 / d.as_secs_f64()),
    ));

    // Claims per second: 1,000 pending executions claimed 10 at a time by one node.
    let mut t = Vec::new();
    for run in 0..runs {
        let mut mine = Vec::new();
        for _ in 0..1000 {
            mine.push(create_execution(store, team.id, 1).await);
        }
        let now = now() + chrono::Duration::days(run as i64 + 1);
        let lease = Lease {
            node: format!("bench-{run}"),
            now,
            until: now + chrono::Duration::seconds(30),
        };
        let start = Instant::now();
        let mut claimed = 0;
        loop {
            let got = store.claim_executions(&lease, 10).await.expect("claim");
            if got.is_empty() {
                break;
            }
            claimed += got.len();
        }
        assert!(claimed >= mine.len());
        t.push(start.elapsed() / u32::try_from(claimed).unwrap_or(1));
    }
    let per = median(t);
    rows.push(Row(
        "claim pending executions, 10 per claim",
        format!("{:.0} claims/s", 1.0 / per.as_secs_f64()),
    ));

    // Dashboard queries over 100,000 executions spread over 90 days.
    let stats_team = new_team(store).await;
    seed(stats_team.id).await;
    let scope = TeamScope::team(stats_team.id);
    let from = Utc
        .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .expect("date");
    let range = TimeRange::new(from, from + chrono::Duration::days(90)).expect("range");
    let first_day = NaiveDate::from_ymd_opt(2024, 1, 1).expect("date");
    let totals = store.totals(&scope, range).await.expect("totals");
    assert_eq!(totals.total, SEEDED as u64);
    let mut q = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..runs {
        let s = Instant::now();
        store.totals(&scope, range).await.expect("totals");
        q[0].push(s.elapsed());
        let s = Instant::now();
        store
            .daily_trend(&scope, first_day, 90)
            .await
            .expect("trend");
        q[1].push(s.elapsed());
        let s = Instant::now();
        store
            .average_duration_ms(&scope, range)
            .await
            .expect("average");
        q[2].push(s.elapsed());
        let s = Instant::now();
        store.success_rate(&scope, range).await.expect("rate");
        q[3].push(s.elapsed());
    }
    let [a, b, c, d] = q;
    rows.push(Row("dashboard: totals by status and type", ms(median(a))));
    rows.push(Row("dashboard: 90-day trend, zero-filled", ms(median(b))));
    rows.push(Row("dashboard: average duration", ms(median(c))));
    rows.push(Row(
        "dashboard: success rate vs previous period",
        ms(median(d)),
    ));
    rows
}

/// Status, job type and duration of seeded execution `n` (a fixed mix).
const STATUS_SQL: &str = "CASE n % 10 WHEN 0 THEN 'failed' WHEN 1 THEN 'timeout' \
    WHEN 2 THEN 'cancelled' WHEN 3 THEN 'running' ELSE 'success' END";
const TYPE_SQL: &str =
    "CASE n % 3 WHEN 0 THEN 'script' WHEN 1 THEN 'file_distribution' ELSE 'playbook' END";

async fn seed_sqlite(path: &std::path::Path, team: TeamId) {
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("connect");
    let base = Utc
        .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .expect("date")
        .timestamp_micros();
    let step = 90 * 86_400_000_000 / SEEDED;
    let sql = format!(
        "WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < {last}) \
         INSERT INTO executions (id, team_id, name, job_type, trigger_source, executor, task, \
         timeout_secs, status, n_total, n_pending, n_running, n_success, n_failed, n_timeout, \
         n_cancelled, created_at, started_at, finished_at) \
         SELECT randomblob(16), ?, 'seeded', {TYPE_SQL}, 'api', '{{}}', '{{}}', 600, {STATUS_SQL}, \
         1, 0, 0, 1, 0, 0, 0, {base} + n * {step}, {base} + n * {step} + 1000000, \
         CASE WHEN n % 10 = 3 THEN NULL ELSE {base} + n * {step} + 1000000 + (n % 60) * 1000000 END \
         FROM seq",
        last = SEEDED - 1
    );
    sqlx::query(&sql)
        .bind(team.as_uuid())
        .execute(&mut c)
        .await
        .expect("seed");
    let _ = c.close().await;
}

async fn seed_postgres(opts: &sqlx::postgres::PgConnectOptions, team: TeamId) {
    let mut c = sqlx::PgConnection::connect_with(opts)
        .await
        .expect("connect");
    let sql = format!(
        "INSERT INTO executions (id, team_id, name, job_type, trigger_source, executor, task, \
         timeout_secs, status, n_total, n_pending, n_running, n_success, n_failed, n_timeout, \
         n_cancelled, created_at, started_at, finished_at) \
         SELECT gen_random_uuid(), $1, 'seeded', {TYPE_SQL}, 'api', '{{}}', '{{}}', 600, {STATUS_SQL}, \
         1, 0, 0, 1, 0, 0, 0, t, t + interval '1 second', \
         CASE WHEN n % 10 = 3 THEN NULL ELSE t + interval '1 second' + (n % 60) * interval '1 second' END \
         FROM (SELECT n, timestamptz '2024-01-01 00:00:00+00' + n * (interval '90 days' / {SEEDED}) AS t \
               FROM generate_series(0, {last}) AS n) s",
        last = SEEDED - 1
    );
    sqlx::query(&sql)
        .bind(team.as_uuid())
        .execute(&mut c)
        .await
        .expect("seed");
    c.execute("VACUUM ANALYZE executions")
        .await
        .expect("vacuum");
    let _ = c.close().await;
}

fn print(backend: &str, rows: &[Row]) {
    eprintln!("\n{backend}\n\n| measurement | median |\n| --- | --- |");
    for Row(what, v) in rows {
        eprintln!("| {what} | {v} |");
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    if a.backend == "sqlite" || a.backend == "both" {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("bench.db");
        let store = SqliteStore::open(&path).await.expect("open");
        let rows = bench(&store, a.runs, async |team| seed_sqlite(&path, team).await).await;
        print("SQLite", &rows);
        store.close().await;
    }
    if a.backend == "postgres" || a.backend == "both" {
        let url = std::env::var("JOB_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let mut admin = match sqlx::PgConnection::connect(&url).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("PostgreSQL at {url} cannot be reached, skipped: {e}");
                return;
            }
        };
        let name = format!("jobbench_{}", uuid_suffix());
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create database");
        let opts = sqlx::postgres::PgConnectOptions::from_str(&url)
            .expect("url")
            .database(&name);
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(8)
            .connect_with(opts.clone())
            .await
            .expect("connect");
        let store = PgStore::from_pool(pool).await.expect("open");
        let rows = bench(&store, a.runs, async |team| {
            seed_postgres(&opts, team).await
        })
        .await;
        print("PostgreSQL", &rows);
        store.close().await;
        let _ = admin
            .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await;
    }
}

fn uuid_suffix() -> String {
    ExecutionId::new().to_string().replace('-', "")
}
