//! Connecting, and the JetStream streams and buckets both sides use (created on first
//! use by whichever side comes first, with the same settings).

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::{self, kv, object_store, stream};
use job_core::transport::TransportError;

use crate::naming::Namespace;

/// How long tasks nobody took, results, and files in transit are kept, and how large the
/// results stream may grow. The defaults suit one machine.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Retention {
    /// How long a task's output and result stay in the results stream. Default 24 h.
    pub results_max_age: Duration,
    /// The results stream's size limit in bytes; past it, the oldest results go first.
    /// Default 1 GiB.
    pub results_max_bytes: i64,
    /// How long a file waits in the files bucket for its agents. Default 24 h.
    pub files_max_age: Duration,
    /// How long an agent's registration is kept after its last heartbeat. Default 7 days.
    pub agents_max_age: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            results_max_age: Duration::from_secs(24 * 3600),
            results_max_bytes: 1 << 30,
            files_max_age: Duration::from_secs(24 * 3600),
            agents_max_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// The handles both sides work with.
#[derive(Clone)]
pub(crate) struct Jet {
    pub(crate) js: jetstream::Context,
    pub(crate) results: stream::Stream,
    pub(crate) tasks: stream::Stream,
    pub(crate) agents: kv::Store,
    pub(crate) files: object_store::ObjectStore,
}

impl std::fmt::Debug for Jet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jet").finish_non_exhaustive()
    }
}

/// Connect options shared by both sides: reconnect forever, a name for the server's
/// connection list, and an optional credentials file.
pub(crate) async fn connect_options(
    name: String,
    credentials: Option<&PathBuf>,
) -> Result<async_nats::ConnectOptions, TransportError> {
    let mut options = async_nats::ConnectOptions::new()
        .name(name)
        .max_reconnects(None)
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .reconnect_delay_callback(|attempts| {
            // 0, 100 ms, 200 ms … capped at 2 s: a restarted server is found quickly.
            Duration::from_millis((attempts as u64).saturating_mul(100).min(2000))
        });
    if let Some(path) = credentials {
        options = options.credentials_file(path).await.map_err(|e| {
            TransportError::failed(
                format!("cannot read the NATS credentials file {}", path.display()),
                e,
            )
        })?;
    }
    Ok(options)
}

/// Gets or creates the streams and buckets under `ns`. Tried three times: when an agent
/// and a control node create them at the same moment, the loser's create fails (the
/// server sees overlapping subjects) and its next try finds them.
pub(crate) async fn ensure(
    client: async_nats::Client,
    ns: &Namespace,
    retention: &Retention,
) -> Result<Jet, TransportError> {
    let mut attempt = 1;
    loop {
        match ensure_once(client.clone(), ns, retention).await {
            Ok(jet) => return Ok(jet),
            Err(e) if attempt >= 3 => return Err(e),
            Err(e) => {
                tracing::debug!(error = %e, attempt, "streams not ready; trying again");
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                attempt += 1;
            }
        }
    }
}

async fn ensure_once(
    client: async_nats::Client,
    ns: &Namespace,
    retention: &Retention,
) -> Result<Jet, TransportError> {
    let js = jetstream::new(client);
    let unavailable = |what: String| {
        move |e: Box<dyn std::error::Error + Send + Sync>| TransportError::unreachable(what, e)
    };
    let tasks = js
        .get_or_create_stream(stream::Config {
            name: ns.tasks_stream(),
            description: Some("jobd: tasks waiting for their agent".to_owned()),
            subjects: vec![format!("{}.agent.*.tasks", ns.as_str())],
            retention: stream::RetentionPolicy::WorkQueue,
            max_age: Duration::from_secs(24 * 3600),
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable(format!("stream {}", ns.tasks_stream()))(e.into()))?;
    let results = js
        .get_or_create_stream(stream::Config {
            name: ns.results_stream(),
            description: Some("jobd: output and results of agents' tasks".to_owned()),
            subjects: vec![format!("{}.results.*", ns.as_str())],
            max_age: retention.results_max_age,
            max_bytes: retention.results_max_bytes,
            discard: stream::DiscardPolicy::Old,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable(format!("stream {}", ns.results_stream()))(e.into()))?;
    // The bucket's stream is made here rather than by `create_key_value`, which asks for
    // account details that nats-server 2.9 does not send; the settings are the client's.
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{}", ns.agents_bucket()),
        description: Some("jobd: agent registrations and heartbeats".to_owned()),
        subjects: vec![format!("$KV.{}.>", ns.agents_bucket())],
        max_messages_per_subject: 1,
        max_age: retention.agents_max_age,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    })
    .await
    .map_err(|e| unavailable(format!("bucket {}", ns.agents_bucket()))(e.into()))?;
    let agents = js
        .get_key_value(ns.agents_bucket())
        .await
        .map_err(|e| unavailable(format!("bucket {}", ns.agents_bucket()))(e.into()))?;
    let files = match js.get_object_store(ns.files_bucket()).await {
        Ok(store) => store,
        Err(_) => js
            .create_object_store(object_store::Config {
                bucket: ns.files_bucket(),
                description: Some("jobd: files on their way to and from agents".to_owned()),
                max_age: retention.files_max_age,
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable(format!("bucket {}", ns.files_bucket()))(e.into()))?,
    };
    Ok(Jet {
        js,
        results,
        tasks,
        agents,
        files,
    })
}
