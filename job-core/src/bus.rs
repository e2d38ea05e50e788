//! The event bus: live events of executions, fanned out to whoever follows them (SSE
//! clients, the engine watching for cancels), and the "work is pending" signal that wakes
//! engines when an execution is launched.
//!
//! In-process by default ([`InProcessBus`]); a cluster uses a NATS implementation so any
//! node can serve the live stream of any execution and hear of work launched on another
//! node. Events and signals are best-effort: a follower that falls behind loses events (and
//! catches up from the store), an engine that misses a signal finds the work at its next
//! poll; the store stays the record.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::ids::ExecutionId;
use crate::model::OutputChunk;
use crate::status::{ExecutionStatus, HostStatus};

/// Something that happened to an execution, as followers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    /// A stored piece of output (its `seq` is the stored sequence number).
    Output(OutputChunk),
    /// A host run changed status.
    Host {
        /// The execution.
        execution_id: ExecutionId,
        /// The host's index.
        host_index: u32,
        /// Its new status.
        status: HostStatus,
    },
    /// The execution changed status.
    Status {
        /// The execution.
        execution_id: ExecutionId,
        /// Its new status.
        status: ExecutionStatus,
    },
    /// A rolling execution paused after a batch with a failure: it stays `running`, its
    /// later hosts `pending`, until it is resumed or cancelled.
    Paused {
        /// The execution.
        execution_id: ExecutionId,
    },
    /// A paused rolling execution was resumed: its next batch starts.
    Resumed {
        /// The execution.
        execution_id: ExecutionId,
    },
}

impl LiveEvent {
    /// The execution the event is about.
    pub fn execution_id(&self) -> ExecutionId {
        match self {
            Self::Output(c) => c.execution_id,
            Self::Host { execution_id, .. }
            | Self::Status { execution_id, .. }
            | Self::Paused { execution_id }
            | Self::Resumed { execution_id } => *execution_id,
        }
    }
}

/// Fans live events out to followers, and tells engines when work is pending.
#[async_trait]
pub trait EventBus: Send + Sync + fmt::Debug {
    /// Publishes an event to the followers of its execution (none is fine).
    async fn publish(&self, event: LiveEvent);
    /// Follows one execution's events from now on.
    async fn subscribe(&self, execution: ExecutionId) -> broadcast::Receiver<LiveEvent>;
    /// Tells every engine listening through [`EventBus::pending_notifications`] — on this
    /// node at once, on the others where the bus reaches them — that an execution may be
    /// waiting to be claimed (it was just stored, or resumed).
    async fn notify_pending(&self);
    /// Listens for [`EventBus::notify_pending`] from now on.
    async fn pending_notifications(&self) -> PendingNotifications;
}

/// What an engine listens to for "work is pending": wakes its claim loop without waiting
/// for the next poll. Signals sent while nobody waited are kept (as one), so a signal that
/// arrives while the engine is busy claiming is not lost.
#[derive(Debug)]
pub struct PendingNotifications {
    rx: broadcast::Receiver<()>,
}

impl PendingNotifications {
    /// Listens on `rx`, whose sender is the bus's side; a channel of capacity 1 is enough,
    /// since many signals mean the same as one.
    pub fn new(rx: broadcast::Receiver<()>) -> Self {
        Self { rx }
    }

    /// Returns once work was signalled since the last call (at once if it was signalled
    /// meanwhile); several signals count as one. Never returns once the bus has gone, so the
    /// engine falls back to polling.
    pub async fn next(&mut self) {
        use broadcast::error::{RecvError, TryRecvError};
        match self.rx.recv().await {
            Ok(()) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => std::future::pending().await,
        }
        // Signals that piled up mean the same as this one.
        while matches!(self.rx.try_recv(), Ok(()) | Err(TryRecvError::Lagged(_))) {}
    }
}

/// The in-process bus: one broadcast channel per followed execution.
pub struct InProcessBus {
    capacity: usize,
    channels: Mutex<HashMap<ExecutionId, broadcast::Sender<LiveEvent>>>,
    pending: broadcast::Sender<()>,
}

impl InProcessBus {
    /// A bus whose followers may fall `capacity` events behind before they lose some.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(16),
            channels: Mutex::new(HashMap::new()),
            pending: broadcast::channel(1).0,
        }
    }
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::new(4096)
    }
}

impl fmt::Debug for InProcessBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.channels.lock().map(|c| c.len()).unwrap_or(0);
        f.debug_struct("InProcessBus")
            .field("followed_executions", &n)
            .finish()
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, event: LiveEvent) {
        let id = event.execution_id();
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = channels.get(&id)
            && tx.send(event).is_err()
        {
            // Nobody follows any more.
            channels.remove(&id);
        }
    }

    async fn subscribe(&self, execution: ExecutionId) -> broadcast::Receiver<LiveEvent> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        // Forget executions nobody follows any more (their followers were dropped without a
        // later publish noticing), so a long-lived node does not keep one entry per run.
        channels.retain(|_, tx| tx.receiver_count() > 0);
        channels
            .entry(execution)
            .or_insert_with(|| broadcast::channel(self.capacity).0)
            .subscribe()
    }

    async fn notify_pending(&self) {
        // No listener (no engine on this node) is fine.
        let _ = self.pending.send(());
    }

    async fn pending_notifications(&self) -> PendingNotifications {
        PendingNotifications::new(self.pending.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn followers_get_only_their_executions_events() {
        let bus = InProcessBus::default();
        let (a, b) = (ExecutionId::new(), ExecutionId::new());
        let mut rx = bus.subscribe(a).await;
        for (id, status) in [(b, ExecutionStatus::Running), (a, ExecutionStatus::Success)] {
            bus.publish(LiveEvent::Status {
                execution_id: id,
                status,
            })
            .await;
        }
        let got = rx.recv().await.unwrap();
        assert_eq!(
            got,
            LiveEvent::Status {
                execution_id: a,
                status: ExecutionStatus::Success
            }
        );
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn executions_nobody_follows_are_forgotten() {
        let bus = InProcessBus::default();
        for _ in 0..100 {
            drop(bus.subscribe(ExecutionId::new()).await);
        }
        let kept = bus.subscribe(ExecutionId::new()).await;
        assert_eq!(bus.channels.lock().unwrap().len(), 1);
        drop(kept);
    }

    #[tokio::test]
    async fn a_pending_signal_sent_while_nobody_waited_wakes_the_next_wait_once() {
        let bus = InProcessBus::default();
        let mut pending = bus.pending_notifications().await;
        for _ in 0..5 {
            bus.notify_pending().await;
        }
        tokio::time::timeout(Duration::from_secs(5), pending.next())
            .await
            .expect("the signals sent before the wait wake it");
        // The five signals counted as one: nothing more is waiting.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), pending.next())
                .await
                .is_err()
        );
        bus.notify_pending().await;
        tokio::time::timeout(Duration::from_secs(5), pending.next())
            .await
            .expect("a later signal wakes it again");
    }

    #[tokio::test]
    async fn every_listener_hears_a_pending_signal() {
        let bus = InProcessBus::default();
        let mut a = bus.pending_notifications().await;
        let mut b = bus.pending_notifications().await;
        bus.notify_pending().await;
        for listener in [&mut a, &mut b] {
            tokio::time::timeout(Duration::from_secs(5), listener.next())
                .await
                .expect("each listener is woken");
        }
    }
}
