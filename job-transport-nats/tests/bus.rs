//! The NATS event bus across connections: what one node publishes, another node's
//! followers receive.

mod common;

use std::time::Duration;

use job_core::bus::{EventBus, LiveEvent};
use job_core::ids::ExecutionId;
use job_core::model::{OutputChunk, OutputStream};
use job_core::status::ExecutionStatus;
use job_transport_nats::{Namespace, NatsEventBus, async_nats};

async fn bus(url: &str) -> NatsEventBus {
    let client = async_nats::connect(url).await.expect("connect");
    NatsEventBus::new(client, Namespace::default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_on_one_node_gets_the_events_another_node_publishes() {
    let Some(server) = common::server() else {
        return;
    };
    let (publisher, follower) = (bus(&server.url()).await, bus(&server.url()).await);
    let (followed, other) = (ExecutionId::new(), ExecutionId::new());
    let mut rx = follower.subscribe(followed).await;
    let mut rx2 = follower.subscribe(followed).await;

    let events = [
        LiveEvent::Output(OutputChunk {
            execution_id: followed,
            host_index: 2,
            seq: 0,
            stream: OutputStream::Stderr,
            data: vec![0xff, b'\n', 0],
            ts: chrono::Utc::now(),
        }),
        LiveEvent::Status {
            execution_id: other,
            status: ExecutionStatus::Running,
        },
        LiveEvent::Status {
            execution_id: followed,
            status: ExecutionStatus::Success,
        },
    ];
    for e in &events {
        publisher.publish(e.clone()).await;
    }
    for rx in [&mut rx, &mut rx2] {
        let first = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("an event arrives")
            .expect("open");
        assert_eq!(first, events[0]);
        let second = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("an event arrives")
            .expect("open");
        assert_eq!(second, events[2], "only the followed execution's events");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_an_events_subject_is_ignored() {
    let Some(server) = common::server() else {
        return;
    };
    let follower = bus(&server.url()).await;
    let raw = async_nats::connect(server.url()).await.expect("connect");
    let id = ExecutionId::new();
    let mut rx = follower.subscribe(id).await;
    raw.publish(format!("jobd.events.{id}"), "not json".into())
        .await
        .expect("publish");
    let event = LiveEvent::Status {
        execution_id: id,
        status: ExecutionStatus::Failed,
    };
    let publisher = bus(&server.url()).await;
    publisher.publish(event.clone()).await;
    let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an event arrives")
        .expect("open");
    assert_eq!(got, event);
}
