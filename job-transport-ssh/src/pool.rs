//! One connection per (target, user, credential), reused across runs, closed when idle.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::{Endpoint, SshAuth, SshConnection, SshError, SshOptions};

type Key = (Endpoint, String);

#[derive(Debug, Default)]
struct Slot {
    conn: tokio::sync::Mutex<Option<Arc<SshConnection>>>,
    last_used: Mutex<Option<Instant>>,
}

/// A pool of SSH connections.
#[derive(Debug)]
pub struct SshPool {
    options: SshOptions,
    handshakes: tokio::sync::Semaphore,
    idle_timeout: Duration,
    slots: Mutex<HashMap<Key, Arc<Slot>>>,
}

impl SshPool {
    /// A pool connecting with `options`, closing connections unused for `idle_timeout`.
    pub fn new(options: SshOptions, idle_timeout: Duration) -> Self {
        Self {
            handshakes: tokio::sync::Semaphore::new(options.max_concurrent_handshakes.max(1)),
            options,
            idle_timeout,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// An open connection to `endpoint`: the pooled one when it is still alive, else a new
    /// one. Concurrent callers for the same target share one connect.
    pub async fn get(
        &self,
        endpoint: &Endpoint,
        auth: &SshAuth,
    ) -> Result<Arc<SshConnection>, SshError> {
        let key = (endpoint.clone(), auth.pool_tag());
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.entry(key).or_default().clone()
        };
        let mut conn = slot.conn.lock().await;
        *slot.last_used.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        if let Some(c) = conn.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let fresh = {
            // The connect timeout starts once a handshake slot is ours.
            let _slot = self.handshakes.acquire().await.map_err(|_| {
                SshError::Protocol("the connection pool is shutting down".to_owned())
            })?;
            Arc::new(SshConnection::connect(endpoint.clone(), auth, self.options.clone()).await?)
        };
        *conn = Some(fresh.clone());
        Ok(fresh)
    }

    /// Closes connections idle longer than the idle timeout; returns how many were closed.
    pub async fn close_idle(&self) -> usize {
        let now = Instant::now();
        let idle: Vec<(Key, Arc<Slot>)> = {
            let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots
                .iter()
                .filter(|(_, s)| {
                    s.last_used
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .is_none_or(|t| now.duration_since(t) >= self.idle_timeout)
                })
                .map(|(k, s)| (k.clone(), s.clone()))
                .collect()
        };
        let mut closed = 0;
        for (key, slot) in idle {
            let taken = slot.conn.lock().await.take();
            if let Some(c) = taken {
                c.close().await;
                closed += 1;
            }
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            if Arc::strong_count(&slot) <= 2 {
                slots.remove(&key);
            }
        }
        closed
    }

    /// How many connections are open.
    pub async fn open_connections(&self) -> usize {
        let slots: Vec<Arc<Slot>> = self
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        let mut n = 0;
        for s in slots {
            if s.conn.lock().await.as_ref().is_some_and(|c| !c.is_closed()) {
                n += 1;
            }
        }
        n
    }
}
