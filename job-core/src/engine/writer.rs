//! One writer per running execution: host-run changes and output go to the store in
//! batches, then to the event bus with their stored sequence numbers.
//!
//! Batching adapts to load: the writer takes whatever is queued when it wakes (up to a
//! batch limit), so a quiet run writes each piece at once (low latency) and a busy one
//! writes few large batches (high throughput).
//!
//! A store that is unavailable is retried a few times per write. Output it still refuses is
//! not stored (and not published: the bus only carries stored chunks); host results it
//! still refuses are kept, tried again with the next batches and finally written with the
//! execution's final status.

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
    // Host results not stored yet: tried again with every later batch, and handed back at
    // the end, so a result is never lost to a store that was unavailable for a while.
    let mut unwritten = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        flush(&*store, &*bus, id, cap_bytes, &mut batch, &mut unwritten).await;
    }
    unwritten
}

/// Writes a batch in order: host starts, then output, then host results, so a host's
/// output is stored before its final status. Host results that could not be written are
/// left in `unwritten` (with those of earlier batches that still could not).
async fn flush(
    store: &dyn Store,
    bus: &dyn EventBus,
    id: ExecutionId,
    cap: u64,
    batch: &mut Vec<Write>,
    unwritten: &mut Vec<HostRunUpdate>,
) {
    let mut started = Vec::new();
    let mut output = Vec::new();
    let mut finished = std::mem::take(unwritten);
    for w in batch.drain(..) {
        match w {
            Write::Host(u) if u.status.is_final() => finished.push(u),
            Write::Host(u) => started.push(u),
            Write::Output(o) => output.push(o),
        }
    }
    // A start that is not stored is not kept: the host's result moves it on anyway.
    let _ = write_hosts(store, bus, id, &started).await;
    if !output.is_empty() {
        let appended = retry("append output", || store.append_output(id, &output, cap)).await;
        if let Ok(appended) = appended {
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
    if let Err(crate::Error::Unavailable { .. }) = write_hosts(store, bus, id, &finished).await {
        *unwritten = finished;
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
