//! The HTTP face of the job platform, built on axum.
//!
//! [`router`] serves everything under one [`axum::Router`]: `/healthz`, `/readyz`, and the
//! REST API under `/api/v1` — authentication by session cookie (with CSRF protection) and
//! by API token, teams, users and memberships for administrators, credentials, targets and
//! target groups, Quick Execute, execution listings, cancel and re-execute, live output
//! over SSE with `Last-Event-ID` resume, and the OpenAPI document at
//! `/api/v1/openapi.json`. `docs/api.md` describes the wire contract.
//!
//! Handlers are thin: they parse the request into `job_core` values, call a `job_core` use
//! case or the [`Store`], and map the result to JSON. Every error is answered as
//! `{"error":{"code","message","field"?,"hits"?}}` with a stable code.
//!
//! ```no_run
//! # async fn serve(state: job_http::AppState) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! state.set_ready(true);
//! axum::serve(listener, job_http::router(state)).await
//! # }
//! ```

mod api;
pub mod auth;
mod callback;
mod error;
mod extract;
mod openapi;
mod sse;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use job_core::bus::EventBus;
use job_core::callback::{CallbackAllow, CallbackGuard};
use job_core::clock::Clock;
use job_core::secret::SecretBox;
use job_core::store::Store;
use job_core::transport::AgentDirectory;

pub use auth::SESSION_COOKIE;
pub use callback::DnsResolver;

/// Settings of the HTTP layer. The defaults suit `jobd` on loopback.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// How long a login session lasts (the session cookie's `Max-Age` and the expiry signed
    /// into it). Default: 12 hours.
    pub session_ttl: Duration,
    /// The largest request body accepted; larger ones are answered `413 too_large`.
    /// Default: 2 MiB (a script is at most 1 MiB).
    pub max_body_bytes: usize,
    /// Whether cookies carry the `Secure` flag (set it when jobd is served over HTTPS).
    /// Default: `false` (plain HTTP on loopback).
    pub cookie_secure: bool,
    /// Checks every `callback_url`: its allow-list (host names, addresses and CIDR ranges
    /// accepted although internal) and the resolver of its host names. jobd shares one with
    /// the NATS open interfaces. Default: an empty allow-list and the system resolver
    /// ([`DnsResolver`]).
    pub callback_guard: CallbackGuard,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            session_ttl: Duration::from_secs(12 * 3600),
            max_body_bytes: 2 * 1024 * 1024,
            cookie_secure: false,
            callback_guard: CallbackGuard::new(CallbackAllow::default(), Arc::new(DnsResolver)),
        }
    }
}

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    bus: Arc<dyn EventBus>,
    secrets: Arc<dyn SecretBox>,
    clock: Arc<dyn Clock>,
    sessions: auth::SessionKeys,
    config: HttpConfig,
    ready: AtomicBool,
    agents: std::sync::OnceLock<Arc<dyn AgentDirectory>>,
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.inner.config)
            .field("ready", &self.inner.ready.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The state over a store, an event bus (live output), the secret box that seals
    /// credentials, a clock, the 32-byte key that signs session cookies and CSRF tokens
    /// (keep it secret and stable across restarts, or every session ends), and settings.
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn EventBus>,
        secrets: Arc<dyn SecretBox>,
        clock: Arc<dyn Clock>,
        session_key: [u8; 32],
        config: HttpConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                bus,
                secrets,
                clock,
                sessions: auth::SessionKeys::new(session_key),
                config,
                ready: AtomicBool::new(false),
                agents: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Marks the node ready (or not): `/readyz` answers 503 until this is `true` and the
    /// store is reachable.
    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.store(ready, Ordering::SeqCst);
    }

    /// Where agents' presence is looked up (the NATS transport): agent-mode targets then
    /// show whether their agent is online and when it was last seen. Set once; later calls
    /// are ignored.
    pub fn set_agents(&self, agents: Arc<dyn AgentDirectory>) {
        let _ = self.inner.agents.set(agents);
    }

    pub(crate) fn agents(&self) -> Option<&Arc<dyn AgentDirectory>> {
        self.inner.agents.get()
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::SeqCst)
    }
}

impl AppState {
    pub(crate) fn store(&self) -> &dyn Store {
        &*self.inner.store
    }
    pub(crate) fn bus(&self) -> &Arc<dyn EventBus> {
        &self.inner.bus
    }
    pub(crate) fn secrets(&self) -> &dyn SecretBox {
        &*self.inner.secrets
    }
    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.clock.now()
    }
    pub(crate) fn sessions(&self) -> &auth::SessionKeys {
        &self.inner.sessions
    }
    pub(crate) fn config(&self) -> &HttpConfig {
        &self.inner.config
    }
}

/// The whole HTTP surface: `/healthz`, `/readyz` and the REST API under `/api/v1`, with
/// the body limit, request tracing and a timeout for non-streaming answers.
pub fn router(state: AppState) -> axum::Router {
    api::routes(state)
}
