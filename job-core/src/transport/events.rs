//! What a run streams back while it runs, and the sequencer every transport uses for it.

use tokio::sync::mpsc;

use crate::model::OutputStream;

/// The largest `data` of one [`TransportEvent::Output`], in bytes (64 KiB).
pub const MAX_OUTPUT_CHUNK: usize = 64 * 1024;

/// The sending half of a run's event channel. The engine chooses the capacity; a full
/// channel pauses the run's output (back-pressure), never buffers it.
pub type EventSender = mpsc::Sender<TransportEvent>;

/// Something a run reports while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportEvent {
    /// The process is running on the target. Sent once, before any output.
    Started,
    /// A piece of output, in order.
    Output {
        /// Which stream it came from. [`OutputStream::System`] carries a note from the
        /// transport itself, such as the output limit being reached.
        stream: OutputStream,
        /// Position among the run's output events: from 0, without gaps, one counter for
        /// all streams.
        seq: u64,
        /// The bytes, at most [`MAX_OUTPUT_CHUNK`]; untrusted, not necessarily UTF-8.
        data: Vec<u8>,
    },
}

/// How much output a run produced, including what was not sent past the output limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutputCounts {
    /// Bytes the script wrote to stdout.
    pub stdout_bytes: u64,
    /// Bytes the script wrote to stderr.
    pub stderr_bytes: u64,
    /// Whether a stream passed the output limit, so not all of it was sent.
    pub truncated: bool,
}

/// Turns raw reads into numbered [`TransportEvent`]s: every transport sends its events
/// through one, so numbering, chunk size and the output limit mean the same everywhere.
///
/// It counts every byte, sends at most `limit` bytes of each stream (then one
/// [`OutputStream::System`] note per stream that passed it), splits data into pieces of
/// at most [`MAX_OUTPUT_CHUNK`], and when the receiver is gone keeps counting without
/// sending.
#[derive(Debug)]
pub struct OutputEmitter {
    events: Option<EventSender>,
    next_seq: u64,
    limit: Option<u64>,
    counts: OutputCounts,
    started: bool,
    noted_stdout: bool,
    noted_stderr: bool,
}

impl OutputEmitter {
    /// An emitter sending to `events`, with at most `limit` bytes sent per stream
    /// (`None`: everything).
    pub fn new(events: EventSender, limit: Option<u64>) -> Self {
        Self {
            events: Some(events),
            next_seq: 0,
            limit,
            counts: OutputCounts::default(),
            started: false,
            noted_stdout: false,
            noted_stderr: false,
        }
    }

    /// Sends [`TransportEvent::Started`] (once; later calls do nothing).
    pub async fn started(&mut self) {
        if !self.started {
            self.started = true;
            self.send(TransportEvent::Started).await;
        }
    }

    /// Counts `data` as output of `stream` and sends what the limit allows.
    pub async fn output(&mut self, stream: OutputStream, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.started().await;
        let len = data.len() as u64;
        let before = match stream {
            OutputStream::Stdout => {
                let before = self.counts.stdout_bytes;
                self.counts.stdout_bytes += len;
                before
            }
            OutputStream::Stderr => {
                let before = self.counts.stderr_bytes;
                self.counts.stderr_bytes += len;
                before
            }
            OutputStream::System => 0,
        };
        let limit = match stream {
            OutputStream::System => None,
            _ => self.limit,
        };
        let allowed = limit.map_or(data.len(), |limit| {
            usize::try_from(limit.saturating_sub(before))
                .map_or(data.len(), |room| room.min(data.len()))
        });
        for piece in data[..allowed].chunks(MAX_OUTPUT_CHUNK) {
            self.send_output(stream, piece.to_vec()).await;
        }
        if allowed < data.len() {
            self.counts.truncated = true;
            let noted = match stream {
                OutputStream::Stderr => &mut self.noted_stderr,
                _ => &mut self.noted_stdout,
            };
            if !std::mem::replace(noted, true) {
                let note = format!(
                    "[{} truncated after {} bytes: the rest was not sent]\n",
                    if stream == OutputStream::Stderr {
                        "stderr"
                    } else {
                        "stdout"
                    },
                    limit.unwrap_or_default()
                );
                self.send_output(OutputStream::System, note.into_bytes())
                    .await;
            }
        }
    }

    /// The bytes counted so far.
    pub fn counts(&self) -> OutputCounts {
        self.counts
    }

    /// Whether the receiver is still listening.
    pub fn is_listening(&self) -> bool {
        self.events.as_ref().is_some_and(|tx| !tx.is_closed())
    }

    async fn send_output(&mut self, stream: OutputStream, data: Vec<u8>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.send(TransportEvent::Output { stream, seq, data })
            .await;
    }

    async fn send(&mut self, event: TransportEvent) {
        if let Some(tx) = &self.events
            && tx.send(event).await.is_err()
        {
            // The receiver is gone: keep counting, stop sending.
            self.events = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn drain(mut rx: mpsc::Receiver<TransportEvent>) -> Vec<TransportEvent> {
        let mut out = Vec::new();
        while let Some(e) = rx.recv().await {
            out.push(e);
        }
        out
    }

    #[tokio::test]
    async fn output_is_numbered_without_gaps_across_streams_and_split_into_chunks() {
        let (tx, rx) = mpsc::channel(1024);
        let mut emitter = OutputEmitter::new(tx, None);
        emitter.output(OutputStream::Stdout, b"a").await;
        emitter.output(OutputStream::Stderr, b"b").await;
        emitter
            .output(OutputStream::Stdout, &vec![b'x'; MAX_OUTPUT_CHUNK + 1])
            .await;
        assert_eq!(emitter.counts().stdout_bytes, MAX_OUTPUT_CHUNK as u64 + 2);
        drop(emitter);
        let events = drain(rx).await;
        assert_eq!(events[0], TransportEvent::Started);
        let seqs: Vec<u64> = events
            .iter()
            .filter_map(|e| match e {
                TransportEvent::Output { seq, data, .. } => {
                    assert!(data.len() <= MAX_OUTPUT_CHUNK);
                    Some(*seq)
                }
                TransportEvent::Started => None,
            })
            .collect();
        assert_eq!(seqs, vec![0, 1, 2, 3]);
    }

    #[tokio::test]
    async fn output_past_the_limit_is_counted_not_sent_and_noted_once() {
        let (tx, rx) = mpsc::channel(1024);
        let mut emitter = OutputEmitter::new(tx, Some(5));
        emitter.output(OutputStream::Stdout, b"abc").await;
        emitter.output(OutputStream::Stdout, b"defgh").await;
        emitter.output(OutputStream::Stdout, b"ijk").await;
        emitter.output(OutputStream::Stderr, b"12").await;
        let counts = emitter.counts();
        assert_eq!((counts.stdout_bytes, counts.stderr_bytes), (11, 2));
        assert!(counts.truncated);
        drop(emitter);
        let events = drain(rx).await;
        let mut stdout = Vec::new();
        let mut notes = 0;
        for e in &events {
            match e {
                TransportEvent::Output {
                    stream: OutputStream::Stdout,
                    data,
                    ..
                } => stdout.extend_from_slice(data),
                TransportEvent::Output {
                    stream: OutputStream::System,
                    ..
                } => notes += 1,
                _ => {}
            }
        }
        assert_eq!(stdout, b"abcde");
        assert_eq!(notes, 1);
    }

    #[tokio::test]
    async fn a_dropped_receiver_stops_sending_but_not_counting() {
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let mut emitter = OutputEmitter::new(tx, None);
        emitter.output(OutputStream::Stdout, b"abc").await;
        assert!(!emitter.is_listening());
        assert_eq!(emitter.counts().stdout_bytes, 3);
    }
}
