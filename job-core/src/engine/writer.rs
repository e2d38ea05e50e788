//! One writer per running execution: host-run changes and output go to the store in
//! batches, then to the event bus with their stored sequence numbers.
//!
//! Batching adapts to load: the writer takes whatever is queued when it wakes (up to a
//! batch limit), so a quiet run writes each piece at once (low latency) and a busy one
//! writes few large batches (high throughput).
//!
//! A store that is unavailable is retried a few times per write. What it still refuses is
//! kept and tried again first with the next batches: output (up to a bound; the bus only
//! carries stored chunks) and host results, which wait for their host's output and, still
//! refused at the end, are written with the execution's final status.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::bus::{EventBus, LiveEvent};
use crate::ids::ExecutionId;
use crate::model::OutputChunk;
use crate::store::{HostRunUpdate, NewOutput, Store};

const BATCH: usize = 1024;
const RETRIES: u32 = 5;
/// Output bytes kept for a later batch while the store refuses them; past this, the oldest
/// kept output is given up, so an outage cannot grow a run's memory without bound.
const MAX_UNSTORED_OUTPUT: usize = 8 * 1024 * 1024;

#[derive(Debug)]
pub(crate) enum Write {
    Host(HostRunUpdate),
    Output(NewOutput),
}

/// The sending side; cheap to clone into host tasks.
#[derive(Debug, Clone)]
pub(crate) struct WriterHandle {
    tx: mpsc::Sender<Write>,
}

impl WriterHandle {
    pub(crate) async fn send(&self, w: Write) {
        // The writer only stops after every handle is dropped, so this cannot fail while a
        // handle exists; ignore the impossible case rather than panic.
        let _ = self.tx.send(w).await;
    }
}

pub(crate) struct Writer {
    handle: WriterHandle,
    task: JoinHandle<Vec<HostRunUpdate>>,
}

impl Writer {
    pub(crate) fn spawn(
        store: Arc<dyn Store>,
        bus: Arc<dyn EventBus>,
        id: ExecutionId,
        cap_bytes: u64,
    ) -> Self {
        let (tx, rx) = mpsc::channel(BATCH * 4);
        let task = tokio::spawn(run(store, bus, id, cap_bytes, rx));
        Self {
            handle: WriterHandle { tx },
            task,
        }
    }

    pub(crate) fn handle(&self) -> WriterHandle {
        self.handle.clone()
    }

    /// Waits until everything sent so far is written. Every other handle must be dropped.
    /// Returns the host results the store did not take (it stayed unavailable through every
    /// retry), for the final status move to write with it.
    pub(crate) async fn finish(self) -> Vec<HostRunUpdate> {
        drop(self.handle);
        self.task.await.unwrap_or_default()
    }
}

async fn run(
    store: Arc<dyn Store>,
    bus: Arc<dyn EventBus>,
    id: ExecutionId,
    cap_bytes: u64,
    mut rx: mpsc::Receiver<Write>,
) -> Vec<HostRunUpdate> {
    let mut batch = Vec::with_capacity(BATCH);
    let mut unstored = Unstored::default();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        flush(&*store, &*bus, id, cap_bytes, &mut batch, &mut unstored).await;
    }
    if !unstored.output.is_empty() {
        // One more try for output kept from the last batches.
        flush(&*store, &*bus, id, cap_bytes, &mut batch, &mut unstored).await;
    }
    unstored.hosts
}

/// What the store refused (it stayed unavailable through the retries), tried again first
/// with every later batch, so a store that is unavailable for a while loses nothing.
#[derive(Default)]
struct Unstored {
    /// Output in the order it came; up to [`MAX_UNSTORED_OUTPUT`] bytes.
    output: Vec<NewOutput>,
    /// Host results, handed back at the end for the final status move to write.
    hosts: Vec<HostRunUpdate>,
}

/// Writes a batch in order: host starts, then output, then host results, so a host's
/// output is stored before its final status. What the store refuses while unavailable is
/// left in `unstored`, after what it still held from earlier batches.
async fn flush(
    store: &dyn Store,
    bus: &dyn EventBus,
    id: ExecutionId,
    cap: u64,
    batch: &mut Vec<Write>,
    unstored: &mut Unstored,
) {
    let mut started = Vec::new();
    let mut output = std::mem::take(&mut unstored.output);
    let mut finished = std::mem::take(&mut unstored.hosts);
    for w in batch.drain(..) {
        match w {
            Write::Host(u) if u.status.is_final() => finished.push(u),
            Write::Host(u) => started.push(u),
            Write::Output(o) => output.push(o),
        }
    }
    // A start that is not stored is not kept: the host's result moves it on anyway.
    let _ = write_hosts(store, bus, id, &started).await;
    let mut output_kept = false;
    if !output.is_empty() {
        let appended = retry("append output", || store.append_output(id, &output, cap)).await;
        if let Err(crate::Error::Unavailable { .. }) = appended {
            keep_output(&mut unstored.output, output);
            output_kept = true;
        } else if let Ok(appended) = appended {
            for (chunk, seq) in output.into_iter().zip(appended.seqs) {
                if let Some(seq) = seq {
                    bus.publish(LiveEvent::Output(OutputChunk {
                        execution_id: id,
                        host_index: chunk.host_index,
                        seq,
                        stream: chunk.stream,
                        data: chunk.data,
                        ts: chunk.ts,
                    }))
                    .await;
                }
            }
        }
    }
    // A host's result waits for its output, so it is never stored before it.
    if output_kept
        || matches!(
            write_hosts(store, bus, id, &finished).await,
            Err(crate::Error::Unavailable { .. })
        )
    {
        unstored.hosts = finished;
    }
}

/// Keeps `output` for a later batch, giving up the oldest output past
/// [`MAX_UNSTORED_OUTPUT`] bytes.
fn keep_output(kept: &mut Vec<NewOutput>, output: Vec<NewOutput>) {
    *kept = output;
    let mut bytes: usize = kept.iter().map(|o| o.data.len()).sum();
    let mut dropped = 0;
    while bytes > MAX_UNSTORED_OUTPUT && dropped < kept.len() {
        bytes -= kept[dropped].data.len();
        dropped += 1;
    }
    if dropped > 0 {
        tracing::error!(
            chunks = dropped,
            "the store stayed unavailable: output given up, not stored"
        );
        kept.drain(..dropped);
    }
}

/// Writes host run changes and tells the bus.
async fn write_hosts(
    store: &dyn Store,
    bus: &dyn EventBus,
    id: ExecutionId,
    updates: &[HostRunUpdate],
) -> crate::Result<()> {
    if updates.is_empty() {
        return Ok(());
    }
    retry("update host runs", || store.update_host_runs(id, updates)).await?;
    {
        for u in updates {
            bus.publish(LiveEvent::Host {
                execution_id: id,
                host_index: u.index,
                status: u.status,
            })
            .await;
        }
    }
    Ok(())
}

/// Retries a store write a few times on `Unavailable` (a busy database); other errors are
/// bugs or refusals and are logged once. Returns the last error when every try failed.
async fn retry<T, F, Fut>(what: &str, mut op: F) -> crate::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = crate::Result<T>>,
{
    let mut wait = Duration::from_millis(20);
    let mut attempt = 1;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(crate::Error::Unavailable { reason, .. }) if attempt < RETRIES => {
                tracing::warn!(attempt, %reason, "{what} failed; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
            }
            Err(e) => {
                tracing::error!(error = %e, "{what} failed; not stored");
                return Err(e);
            }
        }
    }
}
