//! The resident runners one connection keeps (see [`crate::runner`]): the idle ones, how
//! many live, and whether this host can run them at all. The connection owns them; the
//! runner module starts, uses and retires them.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use russh::client;

/// A runner's channel.
pub(crate) type RunnerChannel = russh::Channel<client::Msg>;

/// Runners alive at once on one connection at most. Each holds an SSH session (sshd allows
/// ten a connection by default); runs beyond these go through their own sessions.
pub(crate) const MAX_RUNNERS: usize = 3;

/// The runners of one connection.
#[derive(Default)]
pub(crate) struct Runners {
    idle: Mutex<Vec<RunnerChannel>>,
    /// Runners started and not retired, idle or busy.
    pub(crate) live: AtomicUsize,
    /// Set once a runner could not be started here: runs go through their own sessions.
    pub(crate) unavailable: AtomicBool,
}

impl std::fmt::Debug for Runners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runners")
            .field("live", &self.live.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Runners {
    /// An idle runner, if there is one.
    pub(crate) fn take_idle(&self) -> Option<RunnerChannel> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    /// Puts a runner that ended its run cleanly back among the idle ones.
    pub(crate) fn put_idle(&self, ch: RunnerChannel) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(ch);
    }

    /// Closes a runner for good (its end of stdin ends its loop).
    pub(crate) async fn retire(&self, ch: RunnerChannel) {
        self.live.fetch_sub(1, Ordering::SeqCst);
        let _ = ch.close().await;
    }

    /// Closes every idle runner.
    pub(crate) async fn close_idle(&self) {
        while let Some(ch) = self.take_idle() {
            self.retire(ch).await;
        }
    }
}
