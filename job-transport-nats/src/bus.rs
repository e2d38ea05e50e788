//! The NATS event bus: live events of executions over core NATS, so any control node can
//! serve the live stream of any execution.
//!
//! An event is published as JSON on `{prefix}.events.{execution_id}`. A node subscribes to
//! an execution's subject when its first local follower arrives and unsubscribes when the
//! last one is gone. Like the in-process bus, it is best effort (core NATS, no
//! persistence): a follower that misses events catches up from the store.
//!
//! "Work is pending" ([`EventBus::notify_pending`]) wakes this node's engine at once and is
//! published, empty, on `{prefix}.engine.pending`, to which a node subscribes when its
//! engine first listens: a launch on one node wakes the engines of all. A node ignores its
//! own signals coming back. A lost signal costs one `claim_interval`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use job_core::bus::{EventBus, LiveEvent, PendingNotifications};
use job_core::ids::ExecutionId;
use tokio::sync::broadcast;

use crate::naming::Namespace;

/// Header of the probe a node sends itself to know its subscription is live; followers
/// ignore such messages.
const HEADER_PROBE: &str = "Job-Probe";

/// Header naming the bus that sent a "work is pending" signal, so it ignores its own.
const HEADER_ORIGIN: &str = "Job-Origin";

type Channels = Arc<Mutex<HashMap<ExecutionId, broadcast::Sender<LiveEvent>>>>;

/// An [`EventBus`] over core NATS subjects `{prefix}.events.{execution_id}`.
#[derive(Clone)]
pub struct NatsEventBus {
    client: async_nats::Client,
    namespace: Namespace,
    capacity: usize,
    channels: Channels,
    /// This bus's "work is pending" signal, fed locally and from other nodes.
    pending: broadcast::Sender<()>,
    /// Set once the subscription feeding `pending` from other nodes runs.
    pending_feed: Arc<tokio::sync::OnceCell<()>>,
    /// This bus's id in [`HEADER_ORIGIN`].
    origin: Arc<str>,
}

impl NatsEventBus {
    /// A bus on `client` under `namespace`, whose local followers may fall 4096 events
    /// behind before they lose some.
    pub fn new(client: async_nats::Client, namespace: Namespace) -> Self {
        Self {
            client,
            namespace,
            capacity: 4096,
            channels: Arc::new(Mutex::new(HashMap::new())),
            pending: broadcast::channel(1).0,
            pending_feed: Arc::new(tokio::sync::OnceCell::new()),
            origin: uuid::Uuid::now_v7().to_string().into(),
        }
    }

    /// The same bus with room for `capacity` events per follower.
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(16);
        self
    }

    /// Subscribes to `subject` and returns once the server has the subscription: a probe
    /// published on the same connection after the subscription has come back through it.
    async fn live_subscription(
        &self,
        subject: String,
    ) -> Result<async_nats::Subscriber, async_nats::Error> {
        let mut sub = self.client.subscribe(subject.clone()).await?;
        let probe = uuid::Uuid::now_v7().to_string();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(HEADER_PROBE, probe.as_str());
        self.client
            .publish_with_headers(subject, headers, bytes::Bytes::new())
            .await?;
        let seen = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(msg) = sub.next().await {
                if probe_of(&msg).is_some_and(|p| p == probe) {
                    return true;
                }
            }
            false
        })
        .await;
        if !matches!(seen, Ok(true)) {
            tracing::debug!("event subscription not confirmed; following anyway");
        }
        Ok(sub)
    }
}

/// Passes other nodes' "work is pending" signals to this node's listeners until the
/// connection is closed for good.
async fn feed_pending(
    mut sub: async_nats::Subscriber,
    pending: broadcast::Sender<()>,
    origin: Arc<str>,
) {
    while let Some(msg) = sub.next().await {
        let own = msg
            .headers
            .as_ref()
            .and_then(|h| h.get(HEADER_ORIGIN))
            .is_some_and(|o| o.as_str() == &*origin);
        if !own && probe_of(&msg).is_none() {
            // No listener now is fine.
            let _ = pending.send(());
        }
    }
}

fn probe_of(msg: &async_nats::Message) -> Option<String> {
    msg.headers
        .as_ref()
        .and_then(|h| h.get(HEADER_PROBE))
        .map(|v| v.as_str().to_owned())
}

impl fmt::Debug for NatsEventBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.channels.lock().map(|c| c.len()).unwrap_or(0);
        f.debug_struct("NatsEventBus")
            .field("namespace", &self.namespace)
            .field("followed_executions", &n)
            .finish()
    }
}

#[async_trait]
impl EventBus for NatsEventBus {
    async fn publish(&self, event: LiveEvent) {
        let subject = self.namespace.events_subject(event.execution_id());
        match serde_json::to_vec(&event) {
            Ok(payload) => {
                if let Err(e) = self.client.publish(subject, payload.into()).await {
                    tracing::debug!(error = %e, "live event not published");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot encode a live event"),
        }
    }

    async fn subscribe(&self, execution: ExecutionId) -> broadcast::Receiver<LiveEvent> {
        let tx = {
            let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(tx) = channels.get(&execution) {
                return tx.subscribe();
            }
            let tx = broadcast::channel(self.capacity).0;
            channels.insert(execution, tx.clone());
            tx
        };
        let rx = tx.subscribe();
        let subject = self.namespace.events_subject(execution);
        let sub = match self.live_subscription(subject.clone()).await {
            Ok(sub) => sub,
            Err(e) => {
                tracing::warn!(error = %e, %subject, "cannot follow live events over NATS");
                self.channels
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&execution);
                return rx;
            }
        };
        tokio::spawn(forward(sub, tx, self.channels.clone(), execution));
        rx
    }

    async fn notify_pending(&self) {
        // This node's engine at once; the others through NATS.
        let _ = self.pending.send(());
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(HEADER_ORIGIN, &*self.origin);
        let subject = self.namespace.pending_subject();
        if let Err(e) = self
            .client
            .publish_with_headers(subject, headers, bytes::Bytes::new())
            .await
        {
            tracing::debug!(error = %e, "pending-work signal not published; other nodes will poll");
        }
    }

    async fn pending_notifications(&self) -> PendingNotifications {
        let rx = self.pending.subscribe();
        let started = self
            .pending_feed
            .get_or_try_init(|| async {
                let sub = self
                    .live_subscription(self.namespace.pending_subject())
                    .await?;
                tokio::spawn(feed_pending(sub, self.pending.clone(), self.origin.clone()));
                Ok::<(), async_nats::Error>(())
            })
            .await;
        if let Err(e) = started {
            tracing::warn!(error = %e, "cannot hear of work launched on other nodes; polling finds it");
        }
        PendingNotifications::new(rx)
    }
}

/// Passes an execution's events from NATS to its local followers until none is left.
async fn forward(
    mut sub: async_nats::Subscriber,
    tx: broadcast::Sender<LiveEvent>,
    channels: Channels,
    execution: ExecutionId,
) {
    let mut check = tokio::time::interval(Duration::from_secs(30));
    check.tick().await;
    loop {
        tokio::select! {
            msg = sub.next() => {
                let Some(msg) = msg else { break };
                if probe_of(&msg).is_some() {
                    continue;
                }
                match serde_json::from_slice::<LiveEvent>(&msg.payload) {
                    Ok(event) => {
                        if tx.send(event).is_err() && nobody_follows(&channels, &tx, execution) {
                            return;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, subject = %msg.subject, "ignoring a live event that is not valid"),
                }
            }
            _ = check.tick() => {
                if nobody_follows(&channels, &tx, execution) {
                    return;
                }
            }
        }
    }
    nobody_follows(&channels, &tx, execution);
}

/// Whether the last local follower is gone; if so the channel is removed (under the same
/// lock [`NatsEventBus::subscribe`] takes, so no new follower is lost).
fn nobody_follows(
    channels: &Channels,
    tx: &broadcast::Sender<LiveEvent>,
    execution: ExecutionId,
) -> bool {
    let mut channels = channels.lock().unwrap_or_else(|p| p.into_inner());
    if tx.receiver_count() > 0 {
        return false;
    }
    if channels
        .get(&execution)
        .is_some_and(|current| current.same_channel(tx))
    {
        channels.remove(&execution);
    }
    true
}
