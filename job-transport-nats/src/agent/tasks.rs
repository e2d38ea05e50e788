//! Taking tasks from the tasks stream, running them with the local transport and
//! publishing what they produce to the results stream.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::context::ConsumerInfoErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{AckKind, Message};
use bytes::Bytes;
use chrono::Utc;
use futures_util::StreamExt;
use job_core::status::HostOutcome;
use job_core::transport::{HostTarget, TransportError, TransportEvent};
use tokio::sync::mpsc;

use super::Agent;
use super::ledger::Begin;
use crate::wire::{self, TaskFinish, TaskRequest, WireError};

/// Takes this agent's tasks from its durable consumer, forever (recreating the consumer
/// after the server went away).
pub(super) async fn take_tasks(agent: Arc<Agent>) {
    let ns = &agent.config.namespace;
    let id = &agent.config.agent_id;
    let config = pull::Config {
        durable_name: Some(ns.agent_consumer(id)),
        description: Some(format!("jobd: tasks of agent {id}")),
        filter_subject: ns.tasks_subject(id),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: Duration::from_secs(30),
        max_ack_pending: 1024,
        // The consumer's state (delivered, acknowledged) in the server's memory, not in a
        // file rewritten on every acknowledgement: with a thousand agents those writes were
        // the server's main cost. Nothing is lost with it: on a work-queue stream an
        // acknowledged task is deleted from the (file-stored) stream, so a consumer that a
        // restarted server no longer has is recreated and delivers exactly the tasks not
        // yet acknowledged, and the ledger keeps a redelivered one from running twice.
        memory_storage: true,
        ..Default::default()
    };
    loop {
        let opened_at = agent.connected_since();
        let messages = match agent
            .jet
            .tasks
            .get_or_create_consumer::<pull::Config>(&ns.agent_consumer(id), config.clone())
            .await
        {
            Ok(consumer) => consumer.messages().await,
            Err(e) => {
                tracing::warn!(error = %e, "cannot open the task consumer; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut messages = match messages {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read tasks; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // A reconnect may mean a restarted server that no longer has the consumer (its
        // state is in memory): then reopen it at once rather than wait for missed
        // heartbeats. A consumer that is still there is kept, so tasks it already
        // delivered are not left waiting for their acknowledgement timeout.
        let mut seen_connect = opened_at;
        let mut check = tokio::time::interval(Duration::from_millis(500));
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                next = messages.next() => match next {
                    Some(Ok(msg)) => take(&agent, msg).await,
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "task consumer disrupted; reopening it");
                        break;
                    }
                    None => break,
                },
                _ = check.tick() => {
                    let connected = agent.connected_since();
                    if connected == seen_connect {
                        continue;
                    }
                    match agent.jet.tasks.consumer_info(ns.agent_consumer(id)).await {
                        Ok(_) => seen_connect = connected,
                        Err(e) if matches!(
                            e.kind(),
                            ConsumerInfoErrorKind::NotFound | ConsumerInfoErrorKind::StreamNotFound
                        ) => {
                            tracing::debug!("task consumer gone after a reconnect; reopening it");
                            break;
                        }
                        // Not answered yet (the server is starting): ask again next tick.
                        Err(e) => tracing::debug!(error = %e, "task consumer not checked yet"),
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Handles one delivered task message: ignore garbage, skip a task seen before, refuse
/// one that came too late, run the rest.
async fn take(agent: &Arc<Agent>, msg: Message) {
    let request: TaskRequest = match serde_json::from_slice(&msg.payload) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(subject = %msg.subject, error = %e, "ignoring a task message that is not a valid task");
            let _ = msg.ack_with(AckKind::Term).await;
            return;
        }
    };
    if uuid::Uuid::parse_str(&request.task_id).is_err()
        || request.agent_id != agent.config.agent_id.as_str()
    {
        tracing::warn!(task_id = %request.task_id, "ignoring a task with a malformed id or for another agent");
        let _ = msg.ack_with(AckKind::Term).await;
        return;
    }
    let task_id = request.task_id.clone();
    match agent.ledger.begin(&task_id).await {
        Ok(Begin::New) => {}
        Ok(Begin::Seen) => {
            tracing::info!(%task_id, "task delivered again; it already ran here, not running it twice");
            let _ = msg.ack().await;
            return;
        }
        Err(e) => {
            // Without a record the agent cannot promise to run it once: leave it for a
            // redelivery.
            tracing::error!(%task_id, error = %e, "cannot record the task; not running it now");
            let _ = msg
                .ack_with(AckKind::Nak(Some(Duration::from_secs(5))))
                .await;
            return;
        }
    }
    if let Err(e) = msg.double_ack().await {
        tracing::warn!(%task_id, error = %e, "task acknowledgement not confirmed");
    }
    // A task sent while this agent was away (not connected) and past its start deadline
    // has been given up by the control side: running it now would surprise everyone. A
    // task that merely waited for a free slot while the agent was connected runs.
    let published = msg.info().ok().map(|i| i.published);
    if Utc::now() > request.start_by && published.is_none_or(|p| p < agent.connected_since()) {
        let error = TransportError::Unreachable {
            reason: format!(
                "agent {} received the task after its start deadline {}; it was not run",
                agent.config.agent_id, request.start_by
            ),
            source: None,
        };
        finish(
            agent,
            &task_id,
            TaskFinish::Failed {
                error: WireError::from_error(&error),
            },
        )
        .await;
        return;
    }
    let Ok(permit) = agent.slots.clone().acquire_owned().await else {
        return;
    };
    let agent = agent.clone();
    tokio::spawn(async move {
        let _permit = permit;
        run(&agent, &request).await;
    });
}

/// Runs one task and publishes its events and result.
async fn run(agent: &Agent, request: &TaskRequest) {
    let task_id = request.task_id.as_str();
    let subject = agent.config.namespace.results_subject(task_id);
    let cancel = agent.register(task_id);
    let spec = request.to_spec();
    tracing::info!(%task_id, program = %spec.program, "task started");
    let (tx, mut rx) = mpsc::channel::<TransportEvent>(64);
    let forward = async {
        while let Some(event) = rx.recv().await {
            let (id, message) = match event {
                TransportEvent::Started => (
                    format!("{task_id}.started"),
                    PublishMessage::build().header(wire::HEADER_EVENT, wire::EVENT_STARTED),
                ),
                TransportEvent::Output { stream, seq, data } => {
                    let mut headers = HeaderMap::new();
                    headers.insert(wire::HEADER_EVENT, wire::EVENT_OUTPUT);
                    headers.insert(wire::HEADER_SEQ, seq.to_string().as_str());
                    headers.insert(wire::HEADER_STREAM, wire::stream_name(stream));
                    (
                        format!("{task_id}.output.{seq}"),
                        PublishMessage::build()
                            .headers(headers)
                            .payload(Bytes::from(data)),
                    )
                }
                _ => continue,
            };
            publish_durably(agent, &subject, message.message_id(&id)).await;
        }
    };
    let target = HostTarget::local();
    let (mut result, ()) = tokio::join!(
        agent.config.runner.run(&target, &spec, tx, &cancel),
        forward
    );
    agent.forget(task_id);
    if agent.stopping.load(Ordering::SeqCst)
        && matches!(&result, Ok(o) if o.outcome == HostOutcome::Cancelled)
    {
        // Nobody asked for a cancel: the agent is stopping.
        result = Err(TransportError::Failed {
            reason: format!(
                "agent {} was stopped while the task ran; its processes were killed",
                agent.config.agent_id
            ),
            source: None,
        });
    }
    match &result {
        Ok(o) => {
            tracing::info!(%task_id, outcome = ?o.outcome, exit_code = ?o.exit_code, "task ended")
        }
        Err(e) => tracing::info!(%task_id, error = %e, "task failed"),
    }
    finish(agent, task_id, TaskFinish::from_result(&result)).await;
}

/// Publishes a task's final message, then records it as finished.
pub(super) async fn finish(agent: &Agent, task_id: &str, finish: TaskFinish) {
    let subject = agent.config.namespace.results_subject(task_id);
    let payload = match serde_json::to_vec(&finish) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(%task_id, error = %e, "cannot encode a task's result");
            return;
        }
    };
    let message = PublishMessage::build()
        .header(wire::HEADER_EVENT, wire::EVENT_FINISHED)
        .payload(payload.into())
        .message_id(format!("{task_id}.finished"));
    publish_durably(agent, &subject, message).await;
    if let Err(e) = agent.ledger.finish(task_id).await {
        tracing::warn!(%task_id, error = %e, "cannot record the task as finished");
    }
}

/// Publishes to the results stream until the server confirms it stored the message,
/// retrying through disconnects. The message id makes a retry of a message that did land
/// a no-op (within the stream's two-minute duplicate window).
async fn publish_durably(agent: &Agent, subject: &str, message: PublishMessage) {
    let mut delay = Duration::from_millis(50);
    loop {
        let error = match agent
            .jet
            .js
            .send_publish(subject.to_owned(), message.clone())
            .await
        {
            Ok(ack) => match ack.await {
                Ok(_) => return,
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        };
        tracing::debug!(%subject, %error, "result not stored yet; retrying");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

/// Reports the tasks a previous run of this agent started but never finished: it stopped
/// (crashed, was killed) while they ran, so their outcome is unknown.
pub(super) async fn report_unfinished(agent: &Agent) {
    let unfinished = match agent.ledger.unfinished().await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the task records");
            return;
        }
    };
    for task_id in unfinished {
        tracing::warn!(%task_id, "the agent stopped while this task ran; reporting it failed");
        let error = WireError::failed(format!(
            "agent {} stopped while the task ran (crash or kill); its processes were lost and its \
             outcome is unknown",
            agent.config.agent_id
        ));
        finish(agent, &task_id, TaskFinish::Failed { error }).await;
    }
}
