//! The NATS open interfaces: request/reply methods on `{namespace}.{method}` for other
//! platform services; see docs/nats-api.md.
//!
//! Methods ([`METHODS`]): `job_script_execute`, `job_file_distribute`,
//! `job_task_terminate`, `job_status_batch_query`, `job_detail_query`, `job_target_list`.
//! Every control node subscribes in the queue group `{namespace}-api`, so each request is
//! answered by one of them.
//!
//! A request is a JSON object, or the envelope `{"args":[{...}],"kwargs":{}}` (the first
//! argument merged with `kwargs`). The reply is `{"result":true,"data":…}` or
//! `{"result":false,"code":"…","message":"…"}`, the message naming the field and the
//! reason (`invalid team: no team named `ops``). Unknown fields are refused.
//!
//! Every request names its team (`team` by name or `team_id`) and acts as
//! `Actor::nats(team, operator)`: it sees only that team's tasks and targets, and another
//! team's task answers exactly like a missing one. Launches go through
//! [`job_core::launch::launch_script`] (the same target, template and high-risk checks as
//! the console), terminate through [`job_core::engine::request_cancel`] (the same status
//! machine and team check), and `callback_url` through the
//! [`job_core::callback::CallbackGuard`] REST uses, so both edges refuse the
//! same input with the same field and reason. The channel itself is trusted: NATS accounts decide who may publish here.
//!
//! `job_file_distribute` copies files from the team's targets (read once per execution
//! with the transports' pull) to the team's targets (push, checksum verified), through
//! [`job_core::launch::launch_file_distribution`] (the destination checked against the path
//! rules). `docs/nats-api.md` describes each method with examples.

mod methods;
mod request;

use std::fmt;
use std::sync::Arc;

use futures_util::StreamExt;
use job_core::Error;
use job_core::bus::EventBus;
use job_core::callback::CallbackGuard;
use job_core::clock::Clock;
use job_core::store::Store;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::naming::Namespace;

pub use methods::MAX_BATCH;

/// The most requests one node handles at once; further ones wait in the subscription
/// (and, past its capacity, in the server) until one is answered.
const MAX_IN_FLIGHT: usize = 256;

/// The methods served, as the last token of their subject `{namespace}.{method}`.
pub const METHODS: [&str; 6] = [
    "job_script_execute",
    "job_file_distribute",
    "job_task_terminate",
    "job_status_batch_query",
    "job_detail_query",
    "job_target_list",
];

/// What the methods work with.
#[derive(Clone)]
struct Context {
    store: Arc<dyn Store>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
    callback: CallbackGuard,
}

/// The open interfaces, subscribed and ready to answer; [`ApiServer::run`] answers
/// requests until shutdown.
pub struct ApiServer {
    client: async_nats::Client,
    namespace: Namespace,
    context: Context,
    subscriptions: Vec<(&'static str, async_nats::Subscriber)>,
}

impl fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiServer")
            .field("namespace", &self.namespace)
            .field("methods", &METHODS)
            .finish_non_exhaustive()
    }
}

impl ApiServer {
    /// Subscribes to every method on `client` under `namespace` (queue group
    /// `{namespace}-api`) and returns once the server has the subscriptions. `callback`
    /// checks every `callback_url` (jobd passes the guard REST uses: the same allow-list
    /// and resolver).
    pub async fn bind(
        client: async_nats::Client,
        namespace: Namespace,
        store: Arc<dyn Store>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
        callback: CallbackGuard,
    ) -> Result<Self, Error> {
        let group = format!("{}-api", namespace.as_str());
        let mut subscriptions = Vec::with_capacity(METHODS.len());
        for method in METHODS {
            let subject = format!("{}.{method}", namespace.as_str());
            let sub = client
                .queue_subscribe(subject.clone(), group.clone())
                .await
                .map_err(|e| Error::unavailable(format!("subscribing to {subject}"), e))?;
            subscriptions.push((method, sub));
        }
        client
            .flush()
            .await
            .map_err(|e| Error::unavailable("confirming the API subscriptions", e))?;
        Ok(Self {
            client,
            namespace,
            context: Context {
                store,
                bus,
                clock,
                callback,
            },
            subscriptions,
        })
    }

    /// Answers requests until `shutdown` completes (or the connection is closed for good),
    /// then unsubscribes and waits for the requests under way to be answered. At most 256
    /// requests are handled at once.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Self {
            client,
            namespace,
            context,
            subscriptions,
        } = self;
        let mut requests = futures_util::stream::select_all(
            subscriptions
                .into_iter()
                .map(|(method, sub)| sub.map(move |msg| (method, msg))),
        );
        let mut under_way = JoinSet::new();
        tokio::pin!(shutdown);
        tracing::info!(
            namespace = namespace.as_str(),
            "NATS open interfaces serving"
        );
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                next = requests.next(), if under_way.len() < MAX_IN_FLIGHT => {
                    let Some((method, msg)) = next else { break };
                    let context = context.clone();
                    let client = client.clone();
                    under_way.spawn(async move {
                        answer(&context, &client, method, msg).await;
                    });
                }
                Some(_) = under_way.join_next(), if !under_way.is_empty() => {}
            }
        }
        drop(requests);
        while under_way.join_next().await.is_some() {}
        tracing::info!(
            namespace = namespace.as_str(),
            "NATS open interfaces stopped"
        );
    }
}

/// Serves the open interfaces on `client` under `namespace` until `shutdown` completes:
/// [`ApiServer::bind`] then [`ApiServer::run`].
pub async fn serve(
    client: async_nats::Client,
    namespace: Namespace,
    store: Arc<dyn Store>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
    callback: CallbackGuard,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    ApiServer::bind(client, namespace, store, bus, clock, callback)
        .await?
        .run(shutdown)
        .await;
    Ok(())
}

/// Handles one request and publishes its reply (a request without a reply subject is
/// handled for its effect only).
async fn answer(
    context: &Context,
    client: &async_nats::Client,
    method: &'static str,
    msg: async_nats::Message,
) {
    let outcome = match request::Fields::parse(&msg.payload) {
        Ok(fields) => Box::pin(dispatch(context, method, fields)).await,
        Err(e) => Err(e),
    };
    let body = reply(method, outcome);
    let Some(reply_to) = msg.reply else {
        tracing::debug!(method, "request without a reply subject; no answer sent");
        return;
    };
    let payload = match serde_json::to_vec(&body) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(method, error = %e, "reply could not be encoded");
            return;
        }
    };
    if let Err(e) = client.publish(reply_to, payload.into()).await {
        tracing::warn!(method, error = %e, "reply could not be sent");
    }
}

async fn dispatch(
    context: &Context,
    method: &str,
    fields: request::Fields,
) -> Result<Value, Error> {
    match method {
        "job_script_execute" => methods::script_execute(context, fields).await,
        "job_file_distribute" => methods::file_distribute(context, fields).await,
        "job_task_terminate" => methods::task_terminate(context, fields).await,
        "job_status_batch_query" => methods::status_batch_query(context, fields).await,
        "job_detail_query" => methods::detail_query(context, fields).await,
        "job_target_list" => methods::target_list(context, fields).await,
        other => Err(Error::invalid(
            "method",
            format!("unknown method `{other}`"),
        )),
    }
}

/// The reply body of an outcome.
fn reply(method: &str, outcome: Result<Value, Error>) -> Value {
    match outcome {
        Ok(data) => json!({ "result": true, "data": data }),
        Err(e) => {
            if matches!(e, Error::Unavailable { .. }) {
                tracing::warn!(method, error = ?e, "request failed");
            }
            json!({ "result": false, "code": e.code(), "message": e.to_string() })
        }
    }
}
