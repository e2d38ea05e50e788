//! A cancellation signal shared by the engine and the transports.

use std::sync::Arc;

use tokio::sync::watch;

/// A cancel signal: cloned to every party, fired once by any of them, seen by all.
///
/// Built on a [`tokio::sync::watch`] channel, so waiting costs no polling and a signal fired
/// before anyone waits is never missed.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use job_core::transport::Cancel;
///
/// let cancel = Cancel::new();
/// let seen = cancel.clone();
/// cancel.cancel();
/// seen.cancelled().await; // returns at once
/// assert!(seen.is_cancelled());
/// # });
/// ```
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    fired: Arc<watch::Sender<bool>>,
}

impl Cancel {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fires the signal. Firing again does nothing.
    pub fn cancel(&self) {
        self.fired.send_replace(true);
    }

    /// Whether the signal has fired.
    pub fn is_cancelled(&self) -> bool {
        *self.fired.borrow()
    }

    /// Waits until the signal fires; returns at once if it already has. Cancel-safe.
    pub async fn cancelled(&self) {
        let mut seen = self.fired.subscribe();
        // The sender lives as long as `self`, so `wait_for` cannot fail while we wait.
        let _ = seen.wait_for(|fired| *fired).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_signal_fired_before_waiting_is_not_missed() {
        let cancel = Cancel::new();
        assert!(!cancel.is_cancelled());
        cancel.clone().cancel();
        cancel.cancelled().await;
        assert!(cancel.is_cancelled());
    }

    #[tokio::test]
    async fn a_waiter_wakes_when_another_clone_fires() {
        let cancel = Cancel::new();
        let waiter = {
            let cancel = cancel.clone();
            tokio::spawn(async move { cancel.cancelled().await })
        };
        tokio::task::yield_now().await;
        cancel.cancel();
        assert!(waiter.await.is_ok());
    }
}
