//! Agent mode beyond the conformance suite: registration and status, offline agents, a
//! task delivered twice, bad messages.

mod common;

use std::time::Duration;

use async_nats::jetstream::message::PublishMessage;
use chrono::Utc;
use common::{Rig, RunningAgent};
use job_core::model::OutputStream;
use job_core::status::HostOutcome;
use job_core::transport::{Cancel, TaskSpec, Transport, TransportError, TransportExt};
use job_transport_nats::AgentTask;
use job_transport_nats::async_nats;
use job_transport_nats::wire::TaskRequest;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_agent_shows_online_with_its_host_details() {
    let Some(rig) = Rig::start("status-agent").await else {
        return;
    };
    let status = rig
        .transport
        .agent_status("status-agent")
        .await
        .expect("status")
        .expect("registered");
    assert!(status.online, "{status:?}");
    assert_eq!(status.agent_id, "status-agent");
    assert_eq!(status.hostname, job_transport_nats::agent::hostname());
    assert_eq!(status.os, std::env::consts::OS);
    assert!(!status.version.is_empty());
    assert_eq!(status.addresses, ["127.0.0.1"], "{status:?}");
    assert!((Utc::now() - status.last_seen).num_seconds() < 60);
    assert!(
        rig.transport
            .agent_status("nobody")
            .await
            .expect("status")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_on_an_agent_that_never_registered_fails_at_once_as_unreachable() {
    let Some(server) = common::server() else {
        return;
    };
    let t = common::transport(&server.url()).await;
    let run = t
        .run_collected(
            &common::target("ghost"),
            &TaskSpec::bash("echo hi"),
            &Cancel::new(),
        )
        .await;
    match run.result {
        Err(TransportError::Unreachable { reason, .. }) => {
            assert!(
                reason.contains("agent ghost has never registered"),
                "{reason}"
            );
        }
        other => panic!("expected unreachable, got {other:?}"),
    }
    assert!(run.events.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_on_a_stopped_agent_fails_at_once_naming_when_it_was_last_seen() {
    let Some(mut rig) = Rig::start("stopped-agent").await else {
        return;
    };
    rig.agent.take().expect("agent").stop().await;
    let status = rig
        .transport
        .agent_status("stopped-agent")
        .await
        .expect("status")
        .expect("still registered");
    assert!(!status.online && status.stopped, "{status:?}");
    let run = rig
        .transport
        .run_collected(&rig.target(), &TaskSpec::bash("echo hi"), &Cancel::new())
        .await;
    match run.result {
        Err(TransportError::Unreachable { reason, .. }) => {
            assert!(
                reason.contains("agent stopped-agent is offline") && reason.contains("last seen"),
                "{reason}"
            );
        }
        other => panic!("expected unreachable, got {other:?}"),
    }
    let push = rig
        .transport
        .pull(
            &rig.target(),
            &job_core::transport::PullSpec::new("/etc/hostname"),
            &Cancel::new(),
        )
        .await;
    assert!(
        matches!(push, Err(TransportError::Unreachable { .. })),
        "{push:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_goes_silent_is_offline_once_its_heartbeats_stop() {
    let Some(mut rig) = Rig::start("silent-agent").await else {
        return;
    };
    rig.agent.take().expect("agent").kill();
    // Killed, not stopped: the record stays, the heartbeats stop; offline after 3 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = rig
            .transport
            .agent_status("silent-agent")
            .await
            .expect("status")
            .expect("registered");
        if !status.online {
            assert!(!status.stopped);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still online");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let run = rig
        .transport
        .run_collected(&rig.target(), &TaskSpec::bash("echo hi"), &Cancel::new())
        .await;
    assert!(
        matches!(&run.result, Err(TransportError::Unreachable { reason, .. }) if reason.contains("offline")),
        "{:?}",
        run.result
    );
}

/// Publishes `request` on the agent's tasks subject with JetStream message id `msg_id`.
async fn publish_task(
    client: &async_nats::Client,
    agent: &str,
    request: &TaskRequest,
    msg_id: &str,
) {
    let js = async_nats::jetstream::new(client.clone());
    js.send_publish(
        format!("jobd.agent.{agent}.tasks"),
        PublishMessage::build()
            .payload(serde_json::to_vec(request).unwrap().into())
            .message_id(msg_id),
    )
    .await
    .expect("publish")
    .await
    .expect("stored");
}

/// Waits until the agent took every message from the tasks stream.
async fn wait_tasks_taken(client: &async_nats::Client) {
    let js = async_nats::jetstream::new(client.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut stream = js.get_stream("jobd_tasks").await.expect("tasks stream");
        let info = stream.info().await.expect("info");
        if info.state.messages == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "tasks left: {}",
            info.state.messages
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_delivered_twice_runs_once() {
    let Some(rig) = Rig::start("dedupe-agent").await else {
        return;
    };
    let counter = format!("{}/runs", rig.scratch_dir());
    let spec = TaskSpec::bash(format!("echo run >> '{counter}'\necho done"));
    let task_id = uuid::Uuid::now_v7().to_string();
    let request = TaskRequest::new(
        &task_id,
        "dedupe-agent",
        &spec,
        Utc::now() + chrono::Duration::seconds(60),
    );
    let client = rig.transport.client().clone();
    // The same message id twice: stored once by the server. Another id with the same task
    // (a redelivery past the duplicate window): refused by the agent's own record.
    publish_task(&client, "dedupe-agent", &request, &task_id).await;
    publish_task(&client, "dedupe-agent", &request, &task_id).await;
    publish_task(&client, "dedupe-agent", &request, "another-message-id").await;

    let handle = AgentTask {
        task_id: task_id.clone(),
        agent_id: "dedupe-agent".to_owned(),
        deadline: Utc::now() + chrono::Duration::seconds(60),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let collect = async move {
        let mut out = Vec::new();
        while let Some(e) = rx.recv().await {
            out.push(e);
        }
        out
    };
    let cancel = Cancel::new();
    let (outcome, events) = tokio::join!(rig.transport.follow(&handle, tx, &cancel), collect);
    let outcome = outcome.expect("the task ends");
    assert!(outcome.is_success(), "{outcome:?}");
    let run = job_core::transport::CollectedRun {
        result: Ok(outcome),
        events,
    };
    assert_eq!(run.output(OutputStream::Stdout), b"done\n");

    wait_tasks_taken(&client).await;
    let runs = std::fs::read_to_string(&counter).expect("counter");
    assert_eq!(
        runs,
        "run\n",
        "the script ran {} times",
        runs.lines().count()
    );

    // The stream holds one result for the task, not two.
    let js = async_nats::jetstream::new(client.clone());
    let mut results = js.get_stream("jobd_results").await.expect("results");
    let info = results.info().await.expect("info");
    assert_eq!(info.state.messages, 3, "started, one output line, finished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_sent_while_its_agent_was_away_and_past_its_start_deadline_is_not_run() {
    let Some(mut rig) = Rig::start("late-agent").await else {
        return;
    };
    rig.agent.take().expect("agent").kill();
    let marker = format!("{}/ran", rig.scratch_dir());
    let task_id = uuid::Uuid::now_v7().to_string();
    let request = TaskRequest::new(
        &task_id,
        "late-agent",
        &TaskSpec::bash(format!("touch '{marker}'")),
        Utc::now() - chrono::Duration::seconds(1),
    );
    let client = rig.transport.client().clone();
    publish_task(&client, "late-agent", &request, &task_id).await;
    rig.agent = Some(RunningAgent::start(
        &rig.server.url(),
        "late-agent",
        &rig.work_dir(),
    ));
    let handle = AgentTask {
        task_id,
        agent_id: "late-agent".to_owned(),
        deadline: Utc::now() + chrono::Duration::seconds(60),
    };
    let (tx, _rx) = tokio::sync::mpsc::channel(64);
    let result = rig.transport.follow(&handle, tx, &Cancel::new()).await;
    assert!(
        matches!(&result, Err(TransportError::Unreachable { reason, .. }) if reason.contains("start deadline")),
        "{result:?}"
    );
    assert!(!std::path::Path::new(&marker).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_that_are_not_json_are_ignored_and_the_agent_keeps_working() {
    let Some(rig) = Rig::start("sturdy-agent").await else {
        return;
    };
    let client = rig.transport.client().clone();
    let js = async_nats::jetstream::new(client.clone());
    js.publish("jobd.agent.sturdy-agent.tasks", "not json {".into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    js.publish(
        "jobd.agent.sturdy-agent.tasks",
        r#"{"task_id":"../../etc","agent_id":"sturdy-agent"}"#.into(),
    )
    .await
    .expect("publish")
    .await
    .expect("stored");
    client
        .publish("jobd.agent.sturdy-agent.cancel", "\u{0}garbage".into())
        .await
        .expect("publish");
    let reply = client
        .request("jobd.agent.sturdy-agent.push", "[1,2".into())
        .await
        .expect("the agent answers a bad push request");
    let reply: serde_json::Value = serde_json::from_slice(&reply.payload).expect("json reply");
    assert_eq!(reply["result"], "failed", "{reply}");
    assert_eq!(reply["error"]["code"], "invalid", "{reply}");
    let reply = client
        .request("jobd.agent.sturdy-agent.pull", "nope".into())
        .await
        .expect("the agent answers a bad pull request");
    let reply: serde_json::Value = serde_json::from_slice(&reply.payload).expect("json reply");
    assert_eq!(reply["result"], "failed", "{reply}");

    wait_tasks_taken(&client).await;
    let run = rig
        .transport
        .run_collected(
            &rig.target(),
            &TaskSpec::bash("echo still-here"),
            &Cancel::new(),
        )
        .await;
    assert_eq!(run.output(OutputStream::Stdout), b"still-here\n");
    assert_eq!(run.outcome().outcome, HostOutcome::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_from_the_control_node_larger_than_a_message_is_pushed_and_pulled_back() {
    let Some(rig) = Rig::start("files-agent").await else {
        return;
    };
    let source_dir = tempfile::tempdir().unwrap();
    let source = source_dir.path().join("big.bin");
    let data: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&source, &data).unwrap();
    let dest = format!("{}/deep/big.bin", rig.scratch_dir());
    let pushed = rig
        .transport
        .push(
            &rig.target(),
            &job_core::transport::PushSpec::new(
                job_core::transport::PushSource::LocalFile(source.clone()),
                &dest,
            ),
            &Cancel::new(),
        )
        .await
        .expect("push");
    assert!(
        matches!(pushed, job_core::transport::PushOutcome::Written { bytes, .. } if bytes == data.len() as u64),
        "{pushed:?}"
    );
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    let pulled = rig
        .transport
        .pull(
            &rig.target(),
            &job_core::transport::PullSpec::new(&dest),
            &Cancel::new(),
        )
        .await
        .expect("pull");
    assert_eq!(pulled.data, data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_started_before_its_server_connects_once_the_server_is_up() {
    let Some(mut server) = common::server() else {
        return;
    };
    server.stop();
    let work = tempfile::tempdir().unwrap();
    let _agent = RunningAgent::start(&server.url(), "early-agent", work.path());
    tokio::time::sleep(Duration::from_millis(300)).await; // let it fail to connect a few times
    server.start_again().expect("start the server");
    let t = common::transport(&server.url()).await;
    common::wait_online(&t, "early-agent").await;
    let run = t
        .run_collected(
            &common::target("early-agent"),
            &TaskSpec::bash("echo up"),
            &Cancel::new(),
        )
        .await;
    assert_eq!(run.output(OutputStream::Stdout), b"up\n");
}
