//! One consumer over every task's results, shared by the runs a control side starts.
//!
//! A consumer per run costs the server a consumer creation per host, which does not scale
//! to thousands of hosts at once. Instead each [`NatsTransport`](super::NatsTransport)
//! keeps one ordered consumer over `{prefix}.results.*` from "new", and routes each
//! message to the run it belongs to, registered before its task was published. Nothing
//! waits on a slow run: a run whose queue is full, and every run when the feed is
//! disrupted (consumer error, reconnect), is dropped from the feed and reads on with its
//! own consumer from the last stream sequence it saw (see `follow`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::Message;
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures_util::StreamExt;
use tokio::sync::mpsc;

/// How many messages wait for one run before it is moved to its own consumer.
const QUEUE: usize = 256;

/// The routing table of the shared results consumer.
#[derive(Debug, Default)]
pub(crate) struct Feed {
    up: AtomicBool,
    routes: Mutex<HashMap<String, mpsc::Sender<Message>>>,
}

impl Feed {
    /// A queue of `task_id`'s results, or `None` when the feed is not running (the run then
    /// uses its own consumer). Call before publishing the task.
    pub(crate) fn register(&self, task_id: &str) -> Option<mpsc::Receiver<Message>> {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        if !self.up.load(Ordering::SeqCst) {
            return None;
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        routes.insert(task_id.to_owned(), tx);
        Some(rx)
    }

    /// Stops routing `task_id`.
    pub(crate) fn forget(&self, task_id: &str) {
        self.routes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(task_id);
    }

    fn route(&self, task_id: &str, msg: Message) {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = routes.get(task_id)
            && tx.try_send(msg).is_err()
        {
            // Full or gone: that run reads on with its own consumer.
            routes.remove(task_id);
        }
    }

    /// Drops every run from the feed (they read on with their own consumers).
    fn down(&self) {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        self.up.store(false, Ordering::SeqCst);
        routes.clear();
    }

    fn mark_up(&self) {
        let _routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        self.up.store(true, Ordering::SeqCst);
    }
}

/// Opens the shared consumer; `Ok` once it exists on the server.
pub(crate) async fn open(
    results: &async_nats::jetstream::stream::Stream,
    prefix: &str,
) -> Result<pull::Ordered, async_nats::Error> {
    let consumer = results
        .create_consumer(pull::OrderedConfig {
            filter_subject: format!("{prefix}.results.*"),
            deliver_policy: DeliverPolicy::New,
            ..Default::default()
        })
        .await?;
    Ok(consumer.messages().await?)
}

/// Runs the feed until the transport is dropped: routes messages, and after a disruption
/// drops every run and opens a new consumer.
pub(crate) async fn run(
    feed: Arc<Feed>,
    client: async_nats::Client,
    results: async_nats::jetstream::stream::Stream,
    prefix: String,
    first: Option<pull::Ordered>,
) {
    let results_prefix = format!("{prefix}.results.");
    let stats = client.statistics();
    let connects = || stats.connects.load(Ordering::Relaxed);
    let mut next = first;
    loop {
        let connect = connects();
        let mut messages = match next.take() {
            Some(m) => m,
            None => match open(&results, &prefix).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::debug!(error = %e, "results feed not open yet; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        feed.mark_up();
        let mut check = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                msg = messages.next() => match msg {
                    Some(Ok(msg)) => {
                        if let Some(task_id) = msg.subject.as_str().strip_prefix(&results_prefix) {
                            let task_id = task_id.to_owned();
                            feed.route(&task_id, msg);
                        }
                    }
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "results feed disrupted");
                        break;
                    }
                    None => break,
                },
                _ = check.tick() => {
                    if connects() != connect {
                        tracing::debug!("reconnected; reopening the results feed");
                        break;
                    }
                }
            }
        }
        feed.down();
    }
}
