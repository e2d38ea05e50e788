//! A real API on loopback: SQLite in a temporary directory, a running engine with the local
//! transport, the router bound to 127.0.0.1:0, and users who log in over HTTP.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::Utc;
use futures_util::StreamExt;
use job_core::bus::{EventBus, InProcessBus, LiveEvent};
use job_core::clock::SystemClock;
use job_core::engine::{Engine, EngineConfig, LocalConnector};
use job_core::ids::{TargetId, TeamId, UserId};
use job_core::model::{Membership, Os, Role, Target, TargetMode, Team, User};
use job_core::secret::MasterKey;
use job_core::store::Store;
use job_core::transport::Transport;
use job_core::values::{Address, Description, Name, Username};
use job_http::{AppState, HttpConfig};
use job_store_sqlite::SqliteStore;
use job_transport_local::LocalTransport;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// Every seeded user's password.
pub(crate) const PASSWORD: &str = "correct horse battery staple";

fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| job_http::auth::hash_password(PASSWORD).unwrap())
}

/// A running API with two teams:
/// - `alpha`: alice (maintainer), victor (viewer), and the local target `local-a`;
/// - `beta`: bob (maintainer) and the local target `local-b`;
/// - admin (administrator, member of no team).
pub(crate) struct Api {
    pub(crate) base: String,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) alpha: TeamId,
    pub(crate) beta: TeamId,
    pub(crate) local_a: TargetId,
    pub(crate) local_b: TargetId,
    pub(crate) users: std::collections::BTreeMap<&'static str, UserId>,
    pub(crate) state: AppState,
    stop: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Api {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn team(name: &str) -> Team {
    Team {
        id: TeamId::new(),
        name: Name::parse("name", name).unwrap(),
        description: Description::default(),
        created_at: Utc::now(),
    }
}

fn user(name: &str, is_admin: bool, memberships: Vec<Membership>) -> User {
    User {
        id: UserId::new(),
        username: Username::parse("username", name).unwrap(),
        display_name: Name::parse("display_name", name).unwrap(),
        password_hash: password_hash().to_owned(),
        is_admin,
        disabled: false,
        memberships,
        created_at: Utc::now(),
    }
}

fn local_target(team: TeamId, name: &str) -> Target {
    Target {
        id: TargetId::new(),
        team_id: team,
        name: Name::parse("name", name).unwrap(),
        address: Address::parse("address", "127.0.0.1").unwrap(),
        os: Os::Linux,
        tags: Vec::new(),
        mode: TargetMode::Local,
        description: Description::default(),
        created_at: Utc::now(),
        updated_at: Utc::now(),
    }
}

impl Api {
    /// Starts everything; `config` adjusts the HTTP settings.
    pub(crate) async fn start_with(config: HttpConfig) -> Self {
        Self::start_with_bus(config, Arc::new(InProcessBus::default())).await
    }

    /// Starts everything over `bus` (a lossy one makes followers see gaps).
    pub(crate) async fn start_with_bus(config: HttpConfig, bus: Arc<dyn EventBus>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(dir.path().join("job.db")).await.unwrap());
        let (alpha, beta) = (team("alpha"), team("beta"));
        store.create_team(&alpha).await.unwrap();
        store.create_team(&beta).await.unwrap();
        let member = |team_id, role| vec![Membership { team_id, role }];
        let mut users = std::collections::BTreeMap::new();
        for u in [
            user("admin", true, Vec::new()),
            user("alice", false, member(alpha.id, Role::Maintainer)),
            user("victor", false, member(alpha.id, Role::Viewer)),
            user("bob", false, member(beta.id, Role::Maintainer)),
        ] {
            store.create_user(&u).await.unwrap();
            users.insert(
                match u.username.as_str() {
                    "admin" => "admin",
                    "alice" => "alice",
                    "victor" => "victor",
                    _ => "bob",
                },
                u.id,
            );
        }
        let (la, lb) = (
            local_target(alpha.id, "local-a"),
            local_target(beta.id, "local-b"),
        );
        store.create_target(&la).await.unwrap();
        store.create_target(&lb).await.unwrap();

        let local: Arc<dyn Transport> = Arc::new(LocalTransport::new());
        let engine = Engine::new(
            store.clone(),
            Arc::new(LocalConnector::new(local)),
            bus.clone(),
            Arc::new(SystemClock),
            EngineConfig {
                claim_interval: Duration::from_millis(50),
                cancel_grace: Duration::from_secs(10),
                ..EngineConfig::default()
            },
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let (engine_stop_tx, engine_stop) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let mut rx = engine_stop;
            engine
                .run(async move {
                    let _ = rx.wait_for(|v| *v).await;
                })
                .await;
        });

        let state = AppState::new(
            store.clone(),
            bus,
            Arc::new(MasterKey::generate()),
            Arc::new(SystemClock),
            [42; 32],
            config,
        );
        state.set_ready(true);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = job_http::router(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                    let _ = engine_stop_tx.send(true);
                })
                .await;
        });
        Self {
            base: format!("http://{addr}"),
            store,
            alpha: alpha.id,
            beta: beta.id,
            local_a: la.id,
            local_b: lb.id,
            users,
            state,
            stop: Some(stop),
            _dir: dir,
        }
    }

    /// Starts everything with the default settings.
    pub(crate) async fn start() -> Self {
        Self::start_with(HttpConfig::default()).await
    }

    /// The absolute URL of `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A client holding no credentials.
    pub(crate) fn anonymous(&self) -> Client {
        Client {
            base: self.base.clone(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .unwrap(),
            csrf: None,
            auth: None,
        }
    }

    /// `name` logged in with a session cookie.
    pub(crate) async fn login(&self, name: &str) -> Client {
        let mut c = self.anonymous();
        let r = c
            .send(
                Method::POST,
                "/api/v1/auth/login",
                Some(json!({"username": name, "password": PASSWORD})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        c.csrf = Some(r.body["csrf_token"].as_str().unwrap().to_owned());
        c
    }

    /// A client that sends `secret` in `Authorization: Bearer`.
    pub(crate) fn bearer(&self, secret: &str) -> Client {
        Client {
            base: self.base.clone(),
            http: reqwest::Client::new(),
            csrf: None,
            auth: Some(("authorization".to_owned(), format!("Bearer {secret}"))),
        }
    }

    /// A client that sends `secret` in `Api-Authorization`.
    pub(crate) fn api_authorization(&self, secret: &str) -> Client {
        Client {
            base: self.base.clone(),
            http: reqwest::Client::new(),
            csrf: None,
            auth: Some(("api-authorization".to_owned(), secret.to_owned())),
        }
    }
}

/// An answer: status, headers and the body as JSON (`Value::String` when it is not JSON).
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: Value,
    pub(crate) text: String,
}

impl Answer {
    /// The error code of an error answer.
    pub(crate) fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The field named by an error answer.
    pub(crate) fn field(&self) -> &str {
        self.body["error"]["field"].as_str().unwrap_or("")
    }
}

/// An HTTP client acting as one caller.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    base: String,
    pub(crate) http: reqwest::Client,
    pub(crate) csrf: Option<String>,
    auth: Option<(String, String)>,
}

impl Client {
    /// A request with this caller's credentials (and its CSRF token on writes).
    pub(crate) fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let write = !matches!(method, Method::GET | Method::HEAD);
        let mut rb = self.http.request(method, format!("{}{path}", self.base));
        if let Some((k, v)) = &self.auth {
            rb = rb.header(k.as_str(), v.as_str());
        }
        if write && let Some(t) = &self.csrf {
            rb = rb.header("x-csrf-token", t.as_str());
        }
        rb
    }

    /// Sends a request, with `body` as JSON.
    pub(crate) async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut rb = self.request(method, path);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        answer(rb.send().await.unwrap()).await
    }

    pub(crate) async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Some(body)).await
    }

    /// Sends raw bytes as a JSON body.
    pub(crate) async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> Answer {
        let rb = self
            .request(Method::POST, path)
            .header("content-type", "application/json")
            .body(body);
        answer(rb.send().await.unwrap()).await
    }

    /// Launches `script` on `targets` and returns the new execution's id.
    pub(crate) async fn quick(&self, script: &str, target: TargetId) -> String {
        let r = self
            .post(
                "/api/v1/executions/quick",
                json!({
                    "script_type": "bash",
                    "script_content": script,
                    "targets": {"target_ids": [target]},
                }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["status"], "pending");
        r.body["id"].as_str().unwrap().to_owned()
    }

    /// Polls an execution until it is final, with a deadline.
    pub(crate) async fn wait_final(&self, id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.get(&format!("/api/v1/executions/{id}")).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            let s = r.body["status"].as_str().unwrap();
            if ["success", "failed", "timeout", "cancelled"].contains(&s) {
                return r.body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "execution {id} still `{s}`"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls an execution until `pred` holds for it, with a deadline.
    pub(crate) async fn wait_until(
        &self,
        id: &str,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.get(&format!("/api/v1/executions/{id}")).await;
            if pred(&r.body) {
                return r.body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never {what}: {}",
                r.body
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every stored output text of an execution, concatenated in order.
    pub(crate) async fn stored_text(&self, id: &str) -> String {
        let mut text = String::new();
        let mut after = String::new();
        loop {
            let r = self
                .get(&format!("/api/v1/executions/{id}/output?limit=1000{after}"))
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            for item in r.body["items"].as_array().unwrap() {
                text.push_str(item["text"].as_str().unwrap());
            }
            match r.body["next"].as_str() {
                Some(n) => after = format!("&after={n}"),
                None => return text,
            }
        }
    }

    /// Opens the live stream of an execution.
    pub(crate) async fn stream(&self, id: &str, last_event_id: Option<&str>) -> SseReader {
        self.stream_query(id, "", last_event_id).await
    }

    /// Opens the live stream of an execution with a query string (`?…`).
    pub(crate) async fn stream_query(
        &self,
        id: &str,
        query: &str,
        last_event_id: Option<&str>,
    ) -> SseReader {
        let path = format!("/api/v1/executions/{id}/stream{query}");
        let mut rb = self.request(Method::GET, &path);
        if let Some(l) = last_event_id {
            rb = rb.header("last-event-id", l);
        }
        let r = rb.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        SseReader {
            body: Box::pin(r.bytes_stream()),
            buf: String::new(),
        }
    }
}

async fn answer(r: reqwest::Response) -> Answer {
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
    Answer {
        status,
        headers,
        body,
        text,
    }
}

/// One server-sent event.
#[derive(Debug, Clone, Default)]
pub(crate) struct SseEvent {
    pub(crate) event: String,
    pub(crate) id: Option<String>,
    pub(crate) data: Value,
}

type ByteStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<axum::body::Bytes>> + Send>>;

/// Reads events off an SSE response.
pub(crate) struct SseReader {
    body: ByteStream,
    buf: String,
}

impl SseReader {
    /// The next event (comments skipped), or `None` when the stream ends.
    pub(crate) async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(pos) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..pos + 2).collect();
                let mut ev = SseEvent::default();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        ev.event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        ev.id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if ev.event.is_empty() && data.is_empty() {
                    continue; // a keep-alive comment
                }
                ev.data = serde_json::from_str(&data).unwrap_or(Value::String(data));
                return Some(ev);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(60), self.body.next())
                .await
                .expect("the stream went quiet for a minute")?;
            self.buf.push_str(&String::from_utf8_lossy(&chunk.ok()?));
        }
    }

    /// Reads to the end; returns the events.
    pub(crate) async fn collect(mut self) -> Vec<SseEvent> {
        let mut out = Vec::new();
        while let Some(e) = self.next().await {
            out.push(e);
        }
        out
    }
}

/// The concatenated text of the `output` events.
pub(crate) fn output_text(events: &[SseEvent]) -> String {
    events
        .iter()
        .filter(|e| e.event == "output")
        .map(|e| e.data["text"].as_str().unwrap().to_owned())
        .collect()
}

/// A bus that loses every third output event it is given (as a cluster bus may under
/// load): followers see sequence gaps and must fill them from the store.
#[derive(Debug, Default)]
pub(crate) struct LossyBus {
    inner: InProcessBus,
    outputs: std::sync::atomic::AtomicU64,
    pub(crate) dropped: std::sync::atomic::AtomicU64,
}

#[async_trait::async_trait]
impl EventBus for LossyBus {
    async fn publish(&self, event: LiveEvent) {
        use std::sync::atomic::Ordering::SeqCst;
        if matches!(event, LiveEvent::Output(_)) && self.outputs.fetch_add(1, SeqCst) % 3 == 1 {
            self.dropped.fetch_add(1, SeqCst);
            return;
        }
        self.inner.publish(event).await;
    }

    async fn subscribe(
        &self,
        execution: job_core::ids::ExecutionId,
    ) -> tokio::sync::broadcast::Receiver<LiveEvent> {
        self.inner.subscribe(execution).await
    }

    async fn notify_pending(&self) {
        self.inner.notify_pending().await;
    }

    async fn pending_notifications(&self) -> job_core::bus::PendingNotifications {
        self.inner.pending_notifications().await
    }
}
