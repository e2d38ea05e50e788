//! Following a task's results subject until its final message.
//!
//! The results stream keeps everything an agent published, so following starts from the
//! task's first message whenever it starts: a control node that restarted, or a consumer
//! recreated after the server restarted, reads the task from the beginning and skips what
//! it already passed on (by sequence number). Each event is passed on exactly once.

use std::time::Duration;

use async_nats::jetstream::Message;
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures_util::StreamExt;
use job_core::transport::{Cancel, EventSender, RunOutcome, TransportError, TransportEvent};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{NatsTransport, offline_reason};
use crate::naming::AgentId;
use crate::wire::{self, TaskFinish};

type Messages = pull::Ordered;

/// Where a follower is in the task's events.
struct Position {
    /// The stream sequence to read from when the consumer is reopened.
    resume_at: u64,
    started: bool,
    next_seq: u64,
    events: Option<EventSender>,
}

impl Position {
    async fn send(&mut self, event: TransportEvent) {
        if let Some(tx) = &self.events
            && tx.send(event).await.is_err()
        {
            // The receiver is gone: keep following for the result, stop sending.
            self.events = None;
        }
    }
}

/// Follows `task` to its end, from the shared feed's queue `feed` when there is one, else
/// (or once the feed dropped it) with its own consumer.
pub(super) async fn follow(
    t: &NatsTransport,
    task: &super::AgentTask,
    mut feed: Option<mpsc::Receiver<Message>>,
    events: EventSender,
    cancel: &Cancel,
) -> Result<RunOutcome, TransportError> {
    let agent = AgentId::parse("agent_id", &task.agent_id)
        .map_err(|e| TransportError::invalid("agent_id", e.to_string()))?;
    let subject = t.config.namespace.results_subject(&task.task_id);
    let mut position = Position {
        resume_at: 1,
        started: false,
        next_seq: 0,
        events: Some(events),
    };
    let until_deadline = (task.deadline - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    let give_up_at = Instant::now() + until_deadline + t.config.result_grace;
    let check_every =
        (t.config.lost_after / 6).clamp(Duration::from_millis(100), Duration::from_secs(10));
    let mut tick = tokio::time::interval(check_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut cancel_requested = false;
    let mut lost_ticks = 0u32;
    let mut messages: Option<Messages> = None;
    // A reconnect may mean a restarted server that lost the (in-memory) consumer: the
    // follower then reopens at once instead of waiting for missed heartbeats.
    let stats = t.client.statistics();
    let connects = || stats.connects.load(std::sync::atomic::Ordering::Relaxed);
    let mut opened_at_connect = connects();

    loop {
        if let Some(queue) = feed.as_mut() {
            let step = tokio::select! {
                biased;
                msg = queue.recv() => Step::Feed(msg.map(Box::new)),
                () = cancel.cancelled(), if !cancel_requested => Step::Cancel,
                _ = tick.tick() => Step::Tick,
            };
            match step {
                Step::Feed(Some(msg)) => {
                    if let Some(finish) = accept(&msg, &mut position).await {
                        return finish.into_result();
                    }
                }
                Step::Feed(None) => {
                    tracing::debug!(%subject, "dropped from the results feed; reading on alone");
                    feed = None;
                }
                Step::Cancel => {
                    cancel_requested = true;
                    t.send_cancel(&agent, &task.task_id).await;
                }
                Step::Tick => {
                    if let Some(end) = check(
                        t,
                        &agent,
                        task,
                        cancel_requested,
                        &mut lost_ticks,
                        give_up_at,
                    )
                    .await
                    {
                        return end;
                    }
                }
            }
            continue;
        }
        let Some(stream) = messages.as_mut() else {
            let connect = connects();
            match open(t, &subject, position.resume_at).await {
                Ok(m) => {
                    messages = Some(m);
                    opened_at_connect = connect;
                }
                Err(e) => {
                    tracing::debug!(error = %e, %subject, "cannot read results yet; retrying");
                    tokio::select! {
                        _ = tick.tick() => {}
                        () = cancel.cancelled(), if !cancel_requested => {
                            cancel_requested = true;
                            t.send_cancel(&agent, &task.task_id).await;
                        }
                    }
                    if Instant::now() > give_up_at {
                        return Err(no_result(&agent, t));
                    }
                }
            }
            continue;
        };
        tokio::select! {
            biased;
            next = stream.next() => match next {
                Some(Ok(msg)) => {
                    if let Some(finish) = accept(&msg, &mut position).await {
                        return finish.into_result();
                    }
                }
                Some(Err(e)) => {
                    // The server restarted, the consumer is gone, …: read on from where
                    // this follower stopped, with a new consumer.
                    tracing::debug!(error = %e, %subject, "results consumer lost; reopening");
                    messages = None;
                }
                None => messages = None,
            },
            () = cancel.cancelled(), if !cancel_requested => {
                cancel_requested = true;
                t.send_cancel(&agent, &task.task_id).await;
            }
            _ = tick.tick() => {
                if connects() != opened_at_connect {
                    tracing::debug!(%subject, "reconnected to NATS; reopening the results consumer");
                    messages = None;
                }
                if let Some(end) =
                    check(t, &agent, task, cancel_requested, &mut lost_ticks, give_up_at).await
                {
                    return end;
                }
            }
        }
    }
}

/// What woke a follower reading from the feed.
enum Step {
    Feed(Option<Box<Message>>),
    Cancel,
    Tick,
}

/// The periodic work of a follower: repeat a requested cancel, notice a lost agent, give
/// up past the deadline. `Some` ends the run.
async fn check(
    t: &NatsTransport,
    agent: &AgentId,
    task: &super::AgentTask,
    cancel_requested: bool,
    lost_ticks: &mut u32,
    give_up_at: Instant,
) -> Option<Result<RunOutcome, TransportError>> {
    if cancel_requested {
        // Core NATS may lose one; the agent ignores repeats.
        t.send_cancel(agent, &task.task_id).await;
    }
    match t.agent_status(agent.as_str()).await {
        Ok(Some(status)) if status.stopped || silent_for(&status) > t.config.lost_after => {
            // Seen twice, a tick apart, so a result stored just before the agent stopped
            // is read first.
            if *lost_ticks > 0 {
                return Some(Err(TransportError::Unreachable {
                    reason: format!("the run did not end: {}", offline_reason(&status)),
                    source: None,
                }));
            }
            *lost_ticks += 1;
        }
        _ => *lost_ticks = 0,
    }
    if Instant::now() > give_up_at {
        t.send_cancel(agent, &task.task_id).await;
        return Some(Err(no_result(agent, t)));
    }
    None
}

/// How long the agent has been without a heartbeat.
fn silent_for(status: &super::AgentStatus) -> Duration {
    (chrono::Utc::now() - status.last_seen)
        .to_std()
        .unwrap_or_default()
}

fn no_result(agent: &AgentId, t: &NatsTransport) -> TransportError {
    TransportError::Failed {
        reason: format!(
            "no result from agent {agent} within the task's timeout plus {} s",
            t.config.result_grace.as_secs()
        ),
        source: None,
    }
}

/// An ordered consumer over the task's results subject, from stream sequence `start`
/// (1: from its first message).
async fn open(t: &NatsTransport, subject: &str, start: u64) -> Result<Messages, TransportError> {
    let deliver_policy = if start <= 1 {
        DeliverPolicy::All
    } else {
        DeliverPolicy::ByStartSequence {
            start_sequence: start,
        }
    };
    let consumer = t
        .jet
        .results
        .create_consumer(pull::OrderedConfig {
            filter_subject: subject.to_owned(),
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|e| TransportError::unreachable("cannot follow the task's results", e))?;
    consumer
        .messages()
        .await
        .map_err(|e| TransportError::unreachable("cannot follow the task's results", e))
}

/// Passes one results message on (once); returns the task's finish when it is the last.
async fn accept(msg: &Message, position: &mut Position) -> Option<TaskFinish> {
    if let Ok(info) = msg.info() {
        position.resume_at = position.resume_at.max(info.stream_sequence + 1);
    }
    let header = |name: &str| {
        msg.headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_owned())
    };
    match header(wire::HEADER_EVENT).as_deref() {
        Some(wire::EVENT_STARTED) => {
            if !position.started {
                position.started = true;
                position.send(TransportEvent::Started).await;
            }
            None
        }
        Some(wire::EVENT_OUTPUT) => {
            let seq = header(wire::HEADER_SEQ).and_then(|s| s.parse::<u64>().ok());
            let stream = header(wire::HEADER_STREAM).and_then(|s| wire::parse_stream(&s));
            let (Some(seq), Some(stream)) = (seq, stream) else {
                tracing::warn!(subject = %msg.subject, "ignoring an output message without a valid sequence or stream");
                return None;
            };
            if seq < position.next_seq {
                return None; // already passed on
            }
            if seq > position.next_seq {
                tracing::warn!(subject = %msg.subject, expected = position.next_seq, got = seq, "output sequence gap");
            }
            position.next_seq = seq + 1;
            if !position.started {
                position.started = true;
                position.send(TransportEvent::Started).await;
            }
            position
                .send(TransportEvent::Output {
                    stream,
                    seq,
                    data: msg.payload.to_vec(),
                })
                .await;
            None
        }
        Some(wire::EVENT_FINISHED) => match serde_json::from_slice::<TaskFinish>(&msg.payload) {
            Ok(finish) => Some(finish),
            Err(e) => {
                tracing::warn!(subject = %msg.subject, error = %e, "ignoring a malformed result");
                None
            }
        },
        _ => {
            tracing::warn!(subject = %msg.subject, "ignoring a results message of unknown kind");
            None
        }
    }
}
