//! Live output over SSE: `GET /api/v1/executions/{id}/stream`.
//!
//! Output is sequenced per host (`seq` from 0, without gaps, as stored). The SSE `id` of
//! every `output` event is the stream cursor `h:s[,h:s…]`: for every host that has sent
//! output on this stream, the last `seq` delivered. A client that reconnects with
//! `Last-Event-ID` (or `?last_event_id=`) gets exactly what comes after it.
//!
//! On connect the handler subscribes to the event bus **first**, then replays the stored
//! output after the cursor (in pages), then follows the live tail: a live chunk whose `seq`
//! was already delivered for its host is dropped (no repeats), and a chunk that jumps ahead
//! (a lagged receiver, a lost event) first has the gap filled from the store (no gaps).
//! When the execution is final, whatever is left is replayed from the store and an `end`
//! event carries the final status and counters; then the stream closes. A final execution
//! at connect gets its stored snapshot and `end`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use job_core::bus::LiveEvent;
use job_core::ids::ExecutionId;
use job_core::model::OutputChunk;
use job_core::store::{MAX_PAGE, OutputCursor, TeamScope};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::AppState;
use crate::auth::caller::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{QueryParams, parse_opt};

/// A piece of stored output as the API shows it; the text is lossy UTF-8 of the bytes.
#[derive(Debug, Serialize)]
pub(crate) struct OutputOut {
    pub(crate) host: u32,
    pub(crate) seq: u64,
    pub(crate) stream: job_core::model::OutputStream,
    pub(crate) text: String,
    pub(crate) ts: chrono::DateTime<chrono::Utc>,
}

impl From<&OutputChunk> for OutputOut {
    fn from(c: &OutputChunk) -> Self {
        Self {
            host: c.host_index,
            seq: c.seq,
            stream: c.stream,
            text: String::from_utf8_lossy(&c.data).into_owned(),
            ts: c.ts,
        }
    }
}

/// How often keep-alive comments are sent on a quiet stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How long the live tail waits for an event before it checks the store for the end.
const IDLE_CHECK: Duration = Duration::from_secs(2);
/// Events buffered between the follower task and the client connection.
const BUFFER: usize = 256;

/// `GET /api/v1/executions/{id}/stream` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StreamQuery {
    /// Follow only this host.
    host: Option<String>,
    /// The cursor to resume after, for clients that cannot set `Last-Event-ID`.
    last_event_id: Option<String>,
}

/// The last `seq` delivered per host.
type Delivered = BTreeMap<u32, u64>;

/// Parses a stream cursor `h:s[,h:s…]` (empty: nothing delivered yet).
pub(crate) fn parse_cursor(text: &str) -> Option<Delivered> {
    let mut out = Delivered::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (h, s) = part.split_once(':')?;
        let (h, s) = (h.trim().parse().ok()?, s.trim().parse().ok()?);
        out.insert(h, s);
    }
    Some(out)
}

/// Formats a stream cursor.
pub(crate) fn format_cursor(delivered: &Delivered) -> String {
    let mut s = String::new();
    for (i, (h, seq)) in delivered.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!("{h}:{seq}"));
    }
    s
}

pub(crate) async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<StreamQuery>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let id = ExecutionId::parse_field("id", &id)?;
    let host = parse_opt(
        "host",
        q.host.as_deref(),
        |v| v.parse::<u32>().ok(),
        "a host index",
    )?;
    let cursor_text =
        match headers.get("last-event-id") {
            Some(v) => Some(v.to_str().map(str::to_owned).map_err(|_| {
                ApiError::invalid("last_event_id", "invalid Last-Event-ID: not text")
            })?),
            None => q.last_event_id,
        };
    let delivered = match cursor_text {
        None => Delivered::new(),
        Some(t) => parse_cursor(&t).ok_or_else(|| {
            ApiError::invalid(
                "last_event_id",
                format!(
                    "invalid last_event_id: `{t}` is not a stream cursor `host:seq[,host:seq…]`"
                ),
            )
        })?,
    };
    let scope = TeamScope::of(&caller.actor);
    // Visible at all? (Another team's execution is "not found" before anything streams.)
    let at_connect = state.store().get_execution(&scope, id).await?;
    // Subscribe before reading anything else from the store, so nothing falls in between.
    // A final execution publishes nothing more: its stored record is all there is.
    let live = if at_connect.status.is_final() {
        None
    } else {
        Some(state.bus().subscribe(id).await)
    };
    let (tx, rx) = mpsc::channel(BUFFER);
    let follower = Follower {
        state,
        scope,
        id,
        host,
        delivered,
        tx,
    };
    tokio::spawn(follower.run(live));
    Ok(Sse::new(ReceiverStream::new(rx).map(Ok)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// Why following stopped early.
enum Stop {
    /// The client went away.
    Gone,
    /// The store failed; the stream ends (the client reconnects with its cursor).
    Store(job_core::Error),
}

impl From<job_core::Error> for Stop {
    fn from(e: job_core::Error) -> Self {
        Self::Store(e)
    }
}

/// Follows one execution for one client.
struct Follower {
    state: AppState,
    scope: TeamScope,
    id: ExecutionId,
    host: Option<u32>,
    delivered: Delivered,
    tx: mpsc::Sender<Event>,
}

impl Follower {
    async fn run(mut self, live: Option<broadcast::Receiver<LiveEvent>>) {
        match self.follow(live).await {
            Ok(()) | Err(Stop::Gone) => {}
            Err(Stop::Store(e)) => {
                tracing::warn!(execution = %self.id, error = %e, "live output stream ended by a store error");
            }
        }
    }

    async fn send(&self, event: Event) -> Result<(), Stop> {
        self.tx.send(event).await.map_err(|_| Stop::Gone)
    }

    async fn send_json(&self, kind: &str, data: serde_json::Value) -> Result<(), Stop> {
        self.send(Event::default().event(kind).data(data.to_string()))
            .await
    }

    fn follows(&self, host: u32) -> bool {
        self.host.is_none_or(|h| h == host)
    }

    /// Sends one chunk and advances the cursor.
    async fn emit(&mut self, chunk: &OutputChunk) -> Result<(), Stop> {
        self.delivered.insert(chunk.host_index, chunk.seq);
        let data = serde_json::to_string(&OutputOut::from(chunk)).unwrap_or_default();
        let event = Event::default()
            .event("output")
            .id(format_cursor(&self.delivered))
            .data(data);
        self.send(event).await
    }

    fn already_sent(&self, host: u32, seq: u64) -> bool {
        self.delivered.get(&host).is_some_and(|s| seq <= *s)
    }

    /// Replays stored output not delivered yet, of every followed host, in pages.
    async fn replay(&mut self) -> Result<(), Stop> {
        let mut after: Option<OutputCursor> = self
            .host
            .and_then(|h| self.delivered.get(&h).map(|s| (h, *s)));
        loop {
            let chunks = self
                .state
                .store()
                .read_output(&self.scope, self.id, self.host, after, MAX_PAGE)
                .await?;
            let full = chunks.len() >= MAX_PAGE as usize;
            let mut jumped = false;
            for c in &chunks {
                if let Some(&sent) = self.delivered.get(&c.host_index)
                    && c.seq <= sent
                {
                    // Skip the rest of what this host already delivered in one jump.
                    after = Some((c.host_index, sent));
                    jumped = true;
                    break;
                }
                self.emit(c).await?;
                after = Some((c.host_index, c.seq));
            }
            if chunks.is_empty() || (!jumped && !full) {
                return Ok(());
            }
        }
    }

    /// Fills a host's gap from the store up to and including `upto`.
    async fn fill(&mut self, host: u32, upto: u64) -> Result<(), Stop> {
        loop {
            let after = self.delivered.get(&host).map(|s| (host, *s));
            let chunks = self
                .state
                .store()
                .read_output(&self.scope, self.id, Some(host), after, MAX_PAGE)
                .await?;
            if chunks.is_empty() {
                return Ok(());
            }
            for c in &chunks {
                if c.seq > upto {
                    return Ok(());
                }
                if !self.already_sent(host, c.seq) {
                    self.emit(c).await?;
                }
            }
            if self.delivered.get(&host).is_some_and(|s| *s >= upto) {
                return Ok(());
            }
        }
    }

    /// Replays what is left and sends `end` with the final status and counters.
    async fn finish(&mut self) -> Result<(), Stop> {
        self.replay().await?;
        let execution = self
            .state
            .store()
            .get_execution(&self.scope, self.id)
            .await?;
        self.send_json(
            "end",
            json!({ "status": execution.status, "counters": execution.counters }),
        )
        .await
    }

    async fn final_in_store(&self) -> Result<bool, Stop> {
        let e = self
            .state
            .store()
            .get_execution(&self.scope, self.id)
            .await?;
        Ok(e.status.is_final())
    }

    async fn follow(&mut self, live: Option<broadcast::Receiver<LiveEvent>>) -> Result<(), Stop> {
        let execution = self
            .state
            .store()
            .get_execution(&self.scope, self.id)
            .await?;
        self.send_json("status", json!({ "status": execution.status }))
            .await?;
        let mut live = match live {
            Some(live) if !execution.status.is_final() => live,
            _ => return self.finish().await,
        };
        self.replay().await?;
        let mut lagged = false;
        let mut bus_open = true;
        loop {
            let wait = async {
                if bus_open {
                    tokio::time::timeout(IDLE_CHECK, live.recv()).await.ok()
                } else {
                    tokio::time::sleep(IDLE_CHECK).await;
                    None
                }
            };
            let next = tokio::select! {
                // The client went away: stop following now, not at the next event.
                () = self.tx.closed() => return Err(Stop::Gone),
                next = wait => next,
            };
            match next {
                None => {
                    // Quiet (or no bus): the store decides whether the run ended.
                    if lagged || !bus_open {
                        self.replay().await?;
                        lagged = false;
                    }
                    if self.final_in_store().await? {
                        return self.finish().await;
                    }
                }
                Some(Err(broadcast::error::RecvError::Lagged(n))) => {
                    tracing::debug!(execution = %self.id, missed = n, "live stream lagged; filling from the store");
                    lagged = true;
                }
                Some(Err(broadcast::error::RecvError::Closed)) => bus_open = false,
                Some(Ok(LiveEvent::Output(chunk))) => {
                    let h = chunk.host_index;
                    if !self.follows(h) || self.already_sent(h, chunk.seq) {
                        continue;
                    }
                    let expected = self.delivered.get(&h).map_or(0, |s| s + 1);
                    if chunk.seq > expected {
                        self.fill(h, chunk.seq - 1).await?;
                    }
                    if !self.already_sent(h, chunk.seq) {
                        self.emit(&chunk).await?;
                    }
                }
                Some(Ok(LiveEvent::Host {
                    host_index, status, ..
                })) => {
                    if self.follows(host_index) {
                        self.send_json("host", json!({ "host": host_index, "status": status }))
                            .await?;
                    }
                }
                Some(Ok(LiveEvent::Status { status, .. })) => {
                    self.send_json("status", json!({ "status": status }))
                        .await?;
                    if status.is_final() {
                        return self.finish().await;
                    }
                }
                Some(Ok(LiveEvent::Paused { .. })) => {
                    self.send_json("paused", json!({ "paused": true })).await?;
                }
                Some(Ok(LiveEvent::Resumed { .. })) => {
                    self.send_json("resumed", json!({ "paused": false }))
                        .await?;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = parse_cursor("0:5,2:17").unwrap();
        assert_eq!(c, Delivered::from([(0, 5), (2, 17)]));
        assert_eq!(format_cursor(&c), "0:5,2:17");
        assert_eq!(parse_cursor("").unwrap(), Delivered::new());
        assert_eq!(format_cursor(&parse_cursor("3:0").unwrap()), "3:0");
        for bad in ["x", "1", "1:", ":2", "1:-1", "a:b", "1:2;3:4"] {
            assert!(parse_cursor(bad).is_none(), "{bad}");
        }
    }
}
