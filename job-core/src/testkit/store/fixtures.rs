//! Builders and assertions shared by the store conformance cases.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use chrono::{DateTime, TimeZone, Utc};

use crate::Error;
use crate::ids::*;
use crate::model::*;
use crate::schedule::CronSpec;
use crate::status::{ExecutionStatus, HostCounters, HostStatus};
use crate::store::{Store, TeamScope};
use crate::values::*;

/// The current instant at the precision every store keeps (microseconds).
pub fn now() -> DateTime<Utc> {
    micros(Utc::now())
}

/// `t` cut to microseconds.
pub fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// A fixed instant: `day` days and `secs` seconds after 2020-03-01 00:00 UTC.
pub fn at(day: i64, secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2020, 3, 1, 0, 0, 0)
        .single()
        .expect("valid date")
        + chrono::Duration::days(day)
        + chrono::Duration::seconds(secs)
}

/// A name, panicking on a fixture bug.
pub fn name(s: &str) -> Name {
    Name::parse("name", s).expect("fixture name")
}

/// A unique suffix, so cases sharing one store never collide.
pub fn unique(label: &str) -> String {
    format!("{label}-{}", uuid::Uuid::now_v7().simple())
}

/// Creates a team with a unique name.
pub async fn team(store: &dyn Store, label: &str) -> Team {
    let t = Team {
        id: TeamId::new(),
        name: name(&unique(label)),
        description: Description::default(),
        created_at: now(),
    };
    store.create_team(&t).await.expect("create team");
    t
}

/// A local-mode target of `team`.
pub fn target(team: TeamId, target_name: &str, address: &str) -> Target {
    Target {
        id: TargetId::new(),
        team_id: team,
        name: name(target_name),
        address: Address::parse("address", address).expect("fixture address"),
        os: Os::Linux,
        tags: Vec::new(),
        mode: TargetMode::Local,
        description: Description::default(),
        created_at: now(),
        updated_at: now(),
    }
}

/// A pending script execution of `team` on `hosts` hosts, created at `created_at`.
pub fn execution(team: TeamId, hosts: u32, created_at: DateTime<Utc>) -> (Execution, Vec<HostRun>) {
    let id = ExecutionId::new();
    let e = Execution {
        id,
        team_id: team,
        name: name("nightly backup"),
        job_type: JobType::Script,
        trigger_source: TriggerSource::Manual,
        executor: ExecutorSnapshot {
            actor: ActorKind::Scheduler,
            label: "scheduler".to_owned(),
        },
        task: TaskSnapshot::Script {
            language: ScriptLanguage::Bash,
            rendered: "echo hello".to_owned(),
            script_version_id: None,
            params: BTreeMap::new(),
        },
        timeout: TimeoutSecs::DEFAULT,
        status: ExecutionStatus::Pending,
        counters: HostCounters::all_pending(hosts),
        callback_url: None,
        re_executed_from: None,
        cron_job_id: None,
        confirmation: None,
        created_at,
        started_at: None,
        finished_at: None,
        cancel_requested_at: None,
        rolling: None,
        paused_at: None,
    };
    let runs = (0..hosts).map(|i| host_run(id, i)).collect();
    (e, runs)
}

/// A pending host run `index` of execution `id`.
pub fn host_run(id: ExecutionId, index: u32) -> HostRun {
    HostRun {
        execution_id: id,
        index,
        target: TargetSnapshot {
            target_id: TargetId::new(),
            name: name(&format!("host-{index}")),
            address: Address::parse(
                "address",
                &format!(
                    "10.{}.{}.{}",
                    index >> 16 & 255,
                    index >> 8 & 255,
                    index & 255
                ),
            )
            .expect("fixture address"),
            os: Os::Linux,
            mode: "local".to_owned(),
        },
        status: HostStatus::Pending,
        exit_code: None,
        error: None,
        started_at: None,
        finished_at: None,
        stdout_bytes: 0,
        stderr_bytes: 0,
        output_truncated: false,
    }
}

/// Creates a pending execution of `team` on `hosts` hosts, created now.
pub async fn create_execution(store: &dyn Store, team: TeamId, hosts: u32) -> Execution {
    let (e, runs) = execution(team, hosts, now());
    store
        .create_execution(&e, &runs)
        .await
        .expect("create execution");
    e
}

/// A pending callback about execution `id` of `team`, due at `due`.
pub fn callback(team: TeamId, id: Option<ExecutionId>, due: DateTime<Utc>) -> OutboxEntry {
    OutboxEntry {
        delivery_id: DeliveryId::new(),
        team_id: team,
        execution_id: id,
        kind: OutboxKind::Callback {
            url: "https://hooks.example.com/job?x='1'&y=\"2\"".to_owned(),
        },
        payload: serde_json::json!({"status": "success", "note": "naïve 数据 🚀"}),
        state: OutboxState::Pending,
        attempts: 0,
        next_attempt_at: due,
        last_error: None,
        created_at: due,
    }
}

/// The scope of one team.
pub fn scope(team: TeamId) -> TeamScope {
    TeamScope::team(team)
}

/// A script of `team` with its first version.
pub fn script(team: TeamId, n: &str) -> (Script, ScriptVersion) {
    let s = Script {
        id: ScriptId::new(),
        team_id: team,
        name: name(n),
        description: Description::default(),
        language: ScriptLanguage::Bash,
        tags: vec!["ops".to_owned()],
        created_at: now(),
        updated_at: now(),
    };
    let v = ScriptVersion {
        id: ScriptVersionId::new(),
        script_id: s.id,
        version: 1,
        content: ScriptContent::parse("content", "echo {{ who }}").expect("fixture"),
        params: Vec::new(),
        status: ScriptStatus::Draft,
        created_by: None,
        created_at: now(),
    };
    (s, v)
}

/// A staged file of `team` expiring at `expire_at`.
pub fn staged(team: TeamId, n: &str, expire_at: DateTime<Utc>) -> StagedFile {
    StagedFile {
        id: FileId::new(),
        team_id: team,
        name: name(n),
        blob_key: format!("files/{}", uuid::Uuid::now_v7()),
        sha256: Sha256Hex::parse("sha256", &"ab".repeat(32)).expect("fixture"),
        size: 42,
        uploaded_by: None,
        created_at: now(),
        expire_at,
    }
}

/// A cron job of `team`.
pub fn cron_job(team: TeamId, n: &str) -> CronJob {
    CronJob {
        id: CronJobId::new(),
        team_id: team,
        name: name(n),
        schedule: CronSpec::parse("*/5 * * * *", "Europe/Berlin").expect("fixture"),
        task: CronTask::Inline {
            language: ScriptLanguage::Bash,
            content: ScriptContent::parse("content", "uptime").expect("fixture"),
        },
        targets: TargetSelector {
            tags: vec![vec![Tag::parse("tags", "env=prod").expect("fixture")]],
            ..TargetSelector::default()
        },
        timeout: TimeoutSecs::DEFAULT,
        enabled: true,
        overlap: OverlapPolicy::Skip,
        misfire: MisfirePolicy::Skip,
        callback_url: None,
        created_by: None,
        last_fire_at: None,
        next_fire_at: Some(at(0, 300)),
        created_at: now(),
        updated_at: now(),
    }
}

/// Asserts `r` is [`Error::NotFound`].
#[track_caller]
pub fn assert_not_found<T: std::fmt::Debug>(r: crate::Result<T>) {
    match r {
        Err(Error::NotFound { .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

/// Asserts `r` is [`Error::Conflict`].
#[track_caller]
pub fn assert_conflict<T: std::fmt::Debug>(r: crate::Result<T>) {
    match r {
        Err(Error::Conflict { .. }) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
}

/// Asserts `r` is [`Error::Invalid`] naming `field`.
#[track_caller]
pub fn assert_invalid<T: std::fmt::Debug>(r: crate::Result<T>, field: &str) {
    match r {
        Err(Error::Invalid { field: f, .. }) if f == field => {}
        other => panic!("expected Invalid naming `{field}`, got {other:?}"),
    }
}

/// Runs futures concurrently on the current task and returns their outputs in order.
pub async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futures.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|o| o.expect("every future completed"))
        .collect()
}

/// Drops a store after a case; the default `$finish` of
/// [`store_conformance_tests!`](crate::store_conformance_tests).
pub async fn discard<T>(store: T) {
    drop(store);
}
