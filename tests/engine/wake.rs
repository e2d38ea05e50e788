//! Wake on launch: a launch signals the bus and the engine claims at once, without waiting
//! for its poll. The engines here poll once an hour, so only the signal can start a run.

use std::time::Duration;

use chrono::Utc;
use job::core::engine::EngineConfig;
use job::core::ids::TargetId;
use job::core::launch::{ScriptLaunch, launch_script};
use job::core::model::{
    Actor, Os, ScriptLanguage, Target, TargetMode, TargetSelector, TriggerSource,
};
use job::core::status::ExecutionStatus;
use job::core::values::{Address, Description, Name, ScriptContent, TimeoutSecs};

use crate::fixture::*;

/// An engine that polls once an hour.
fn hourly() -> EngineConfig {
    EngineConfig {
        claim_interval: Duration::from_secs(3600),
        cancel_grace: Duration::from_secs(10),
        ..EngineConfig::default()
    }
}

/// Stores a local target of the fixture's team; returns its id.
async fn local_target(f: &Fixture) -> TargetId {
    let target = Target {
        id: TargetId::new(),
        team_id: f.team,
        name: Name::parse("name", "control-node").unwrap(),
        address: Address::parse("address", "127.0.0.1").unwrap(),
        os: Os::Linux,
        tags: Vec::new(),
        mode: TargetMode::Local,
        description: Description::default(),
        created_at: Utc::now(),
        updated_at: Utc::now(),
    };
    f.store.create_target(&target).await.unwrap();
    target.id
}

fn quick(f: &Fixture, target: TargetId, script: &str) -> ScriptLaunch {
    ScriptLaunch {
        team_id: f.team,
        name: Name::parse("name", "woken").unwrap(),
        language: ScriptLanguage::Bash,
        content: ScriptContent::parse("script_content", script).unwrap(),
        param_defs: Vec::new(),
        params: Default::default(),
        script_version_id: None,
        targets: TargetSelector {
            target_ids: vec![target],
            ..TargetSelector::default()
        },
        timeout: TimeoutSecs::new("timeout", 30).unwrap(),
        confirm: false,
        callback_url: None,
        trigger_source: TriggerSource::Api,
        cron_job_id: None,
        rolling: None,
    }
}

/// Starts the engine loop and returns once its first claim has been made (an execution
/// stored before the start has run to its end), so it is waiting for an hour.
async fn idle_engine(f: &Fixture) -> Running {
    let (first, hosts) = execution(f.team, "true", &["a"], 30);
    f.create(&first, &hosts).await;
    let running = Running::start(&f.engine, None);
    f.wait_final(first.id).await;
    running
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_is_claimed_at_once_without_waiting_for_the_poll() {
    let f = fixture_with(hourly()).await;
    let target = local_target(&f).await;
    let running = idle_engine(&f).await;

    // Stored without a signal, an execution waits for the hourly poll.
    let (unsignalled, hosts) = execution(f.team, "echo late", &["b"], 30);
    f.create(&unsignalled, &hosts).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(f.get(unsignalled.id).await.status, ExecutionStatus::Pending);

    // A launch signals the bus: the engine claims it (and what else is pending) at once.
    let launched = launch_script(
        &*f.store,
        &*f.bus,
        &Actor::scheduler(f.team),
        quick(&f, target, "echo woken"),
        Utc::now(),
    )
    .await
    .unwrap();
    let done = f.wait_final(launched.id).await;
    assert_eq!(done.status, ExecutionStatus::Success);
    assert_eq!(
        f.output(launched.id, 0, job::core::model::OutputStream::Stdout)
            .await,
        "woken\n"
    );
    assert_eq!(
        f.wait_final(unsignalled.id).await.status,
        ExecutionStatus::Success
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_while_the_engine_is_busy_claiming_is_not_lost() {
    // One claim can take the whole burst: what a full batch leaves behind waits for the
    // poll (docs/engine.md), which is not what this test is about.
    let f = fixture_with(EngineConfig {
        claim_batch: 32,
        ..hourly()
    })
    .await;
    let target = local_target(&f).await;
    let running = idle_engine(&f).await;
    // Launches in a burst: every signal after the first may arrive while the engine is
    // claiming or starting the earlier ones; none of them may wait for the poll.
    let mut ids = Vec::new();
    for i in 0..20 {
        let launched = launch_script(
            &*f.store,
            &*f.bus,
            &Actor::scheduler(f.team),
            quick(&f, target, &format!("echo {i}")),
            Utc::now(),
        )
        .await
        .unwrap();
        ids.push(launched.id);
    }
    for id in ids {
        assert_eq!(f.wait_final(id).await.status, ExecutionStatus::Success);
    }
    running.stop().await;
}
