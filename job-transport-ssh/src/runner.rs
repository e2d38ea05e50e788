//! Resident runners: one long-lived `bash` loop per pooled connection that runs scripts one
//! after another ([`remote::runner_program`]), so that a run over an open connection costs
//! the target a fork and an exec instead of a whole SSH session (the session alone is about
//! half of a pooled `echo`: `docs/performance.md`).
//!
//! A runner is used for the short shell scripts that already go through a pipe
//! ([`remote::Delivery::Pipe`]); starting one costs the target about what the first run's
//! own session would, so even a connection used once loses nothing. Each run is framed by a random nonce: the runner reports the
//! script's process group and, once the script and whatever it left in its group are gone,
//! an end marker on stdout and on stderr, so both streams are complete when both markers
//! have arrived. A runner that sends anything while idle (a process that left the run's
//! group and kept its output open), or a run that did not end cleanly, retires the runner:
//! its channel is closed, and the next run starts a fresh one.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use job_core::model::OutputStream;
use russh::ChannelMsg;
use tokio::sync::mpsc;

use crate::connection::{OutputPiece, RemoteScript, RunEnd, SshConnection, send};
use crate::resident::{MAX_RUNNERS, RunnerChannel};
use crate::{SshError, remote};

/// The runner did not start the script: it can still be run another way.
#[derive(Debug)]
pub(crate) struct NotStarted;

impl SshConnection {
    /// A runner for `script`, when one should run it: a short shell script through the
    /// pipe, with resident runners on and available. An idle runner if there is one, else a
    /// new one (which costs the target about what a session of its own would).
    pub(crate) async fn runner_for(
        &self,
        script: &RemoteScript<'_>,
        env: &str,
        delivery: remote::Delivery,
    ) -> Option<RunnerChannel> {
        let runners = &self.runners;
        if !self.options().resident_runner
            || delivery != remote::Delivery::Pipe
            || runners.unavailable.load(Ordering::SeqCst)
            || script.body.contains(&0)
            || env.contains('\0')
        {
            return None;
        }
        while let Some(mut ch) = runners.take_idle() {
            if is_quiet(&mut ch).await {
                return Some(ch);
            }
            tracing::debug!(target = %self.endpoint().host, "a runner spoke while idle: retired");
            runners.retire(ch).await;
        }
        self.start_runner().await
    }

    /// Starts a runner, unless as many as allowed are alive already.
    async fn start_runner(&self) -> Option<RunnerChannel> {
        let runners = &self.runners;
        if runners.live.fetch_add(1, Ordering::SeqCst) >= MAX_RUNNERS {
            runners.live.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let ch = match self.open().await {
            Ok(ch) => ch,
            Err(_) => {
                runners.live.fetch_sub(1, Ordering::SeqCst);
                return None;
            }
        };
        if ch.exec(false, remote::runner_program()).await.is_err() {
            runners.retire(ch).await;
            return None;
        }
        Some(ch)
    }

    /// Runs `script` on runner `ch`: the same promises as [`SshConnection::run`]. The runner
    /// goes back to the idle ones when the run ended cleanly, and is retired otherwise.
    pub(crate) async fn run_on_runner(
        &self,
        mut ch: RunnerChannel,
        script: &RemoteScript<'_>,
        env: &str,
        out: &mpsc::Sender<OutputPiece>,
        cancelled: &mut (impl Future<Output = ()> + Unpin),
    ) -> Result<Result<RunEnd, SshError>, NotStarted> {
        let runners = &self.runners;
        let nonce = job_core::ids::DeliveryId::new()
            .as_uuid()
            .simple()
            .to_string();
        let command = if script.args.is_empty() {
            script.interpreter.to_owned()
        } else {
            format!("{} {}", script.interpreter, script.args.join(" "))
        };
        let request = remote::runner_request(&nonce, &command, env, script.body);
        if ch.data(&request[..]).await.is_err() {
            runners.retire(ch).await;
            return Err(NotStarted);
        }
        let mut scanners = [MarkerScanner::new(&nonce), MarkerScanner::new(&nonce)];
        let mut ends: [Option<i32>; 2] = [None, None];
        let mut pgid: Option<u32> = None;
        let mut killed: Option<RunEnd> = None;
        let mut kill_sent = false;
        let far = Duration::from_secs(86_400 * 365);
        let timeout = tokio::time::sleep(script.timeout);
        let give_up = tokio::time::sleep(far);
        tokio::pin!(timeout, give_up);

        loop {
            tokio::select! {
                msg = ch.wait() => {
                    let Some(msg) = msg else { break };
                    if let Some((stream, data)) = stream_of(&msg) {
                        let i = usize::from(stream == OutputStream::Stderr);
                        let (bytes, markers) = scanners[i].feed(data);
                        send(out, stream, &bytes).await;
                        for marker in markers {
                            match marker {
                                Marker::Pgid(p) => {
                                    pgid = Some(p);
                                    if killed.is_some() && !kill_sent {
                                        kill_sent = self.kill_group(pgid).await;
                                    }
                                }
                                Marker::End(status) => ends[i] = Some(status),
                            }
                        }
                        if let [Some(status), Some(_)] = ends {
                            runners.put_idle(ch);
                            return Ok(Ok(killed.unwrap_or(RunEnd::Exited(status))));
                        }
                    } else if matches!(
                        msg,
                        ChannelMsg::Close | ChannelMsg::ExitStatus { .. } | ChannelMsg::ExitSignal { .. }
                    ) {
                        break;
                    }
                }
                () = &mut timeout, if killed.is_none() => {
                    killed = Some(RunEnd::TimedOut);
                    kill_sent = self.kill_group(pgid).await;
                    give_up.as_mut().reset(tokio::time::Instant::now() + self.options().kill_confirm_timeout);
                }
                () = &mut *cancelled, if killed.is_none() => {
                    killed = Some(RunEnd::Cancelled);
                    kill_sent = self.kill_group(pgid).await;
                    give_up.as_mut().reset(tokio::time::Instant::now() + self.options().kill_confirm_timeout);
                }
                () = &mut give_up, if killed.is_some() => break,
            }
        }
        // The runner stopped (or did not confirm a kill): it serves no further run.
        for (i, stream) in [OutputStream::Stdout, OutputStream::Stderr]
            .into_iter()
            .enumerate()
        {
            send(out, stream, &scanners[i].flush()).await;
        }
        runners.retire(ch).await;
        if let Some(k) = killed {
            return Ok(Ok(k));
        }
        if pgid.is_none() {
            // It never started the script: most likely there is no bash to run it. Runs on
            // this connection go through their own sessions from now on.
            runners.unavailable.store(true, Ordering::SeqCst);
            return Err(NotStarted);
        }
        Ok(Err(SshError::Protocol(format!(
            "the runner on {}:{} stopped before the script reported its end",
            self.endpoint().host,
            self.endpoint().port
        ))))
    }
}

/// What a run on a runner found in one of its streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Marker {
    /// The script's process group.
    Pgid(u32),
    /// The run is over, with this status (128 + signal when killed by one).
    End(i32),
}

/// Splits one output stream of a runner into the script's bytes and the run's markers.
///
/// A marker is `\x1e<nonce> <word> <number>\n` anywhere in the stream (the script's last
/// line need not end in a newline). Bytes that might be the start of a marker split across
/// two pieces are held back until the next piece shows what they are.
#[derive(Debug)]
pub(crate) struct MarkerScanner {
    prefix: Vec<u8>,
    held: Vec<u8>,
}

impl MarkerScanner {
    pub(crate) fn new(nonce: &str) -> Self {
        let mut prefix = vec![0x1e];
        prefix.extend_from_slice(nonce.as_bytes());
        prefix.push(b' ');
        Self {
            prefix,
            held: Vec::new(),
        }
    }

    /// Feeds a piece of the stream: returns the script's bytes to pass on and the markers.
    pub(crate) fn feed(&mut self, data: &[u8]) -> (Vec<u8>, Vec<Marker>) {
        let mut buf = std::mem::take(&mut self.held);
        buf.extend_from_slice(data);
        let mut out = Vec::with_capacity(buf.len());
        let mut markers = Vec::new();
        let mut rest = &buf[..];
        loop {
            match find(rest, &self.prefix) {
                Some(at) => {
                    out.extend_from_slice(&rest[..at]);
                    let after = &rest[at + self.prefix.len()..];
                    let window = &after[..after.len().min(remote::RUNNER_MARKER_MAX + 1)];
                    let newline = window.iter().position(|b| *b == b'\n');
                    match newline.map(|nl| (nl, parse_marker(&after[..nl]))) {
                        Some((nl, Some(marker))) => {
                            markers.push(marker);
                            rest = &after[nl + 1..];
                        }
                        None if window.len() <= remote::RUNNER_MARKER_MAX => {
                            // The marker's end has not arrived yet.
                            self.held = rest[at..].to_vec();
                            return (out, markers);
                        }
                        _ => {
                            // Our nonce, but not one of our lines: output, and look on.
                            out.extend_from_slice(&rest[at..at + self.prefix.len()]);
                            rest = after;
                        }
                    }
                }
                None => {
                    let keep = partial_prefix_len(rest, &self.prefix);
                    out.extend_from_slice(&rest[..rest.len() - keep]);
                    self.held = rest[rest.len() - keep..].to_vec();
                    return (out, markers);
                }
            }
        }
    }

    /// What is held back when the stream ends without the rest of a marker: output.
    pub(crate) fn flush(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }
}

fn parse_marker(line: &[u8]) -> Option<Marker> {
    let line = std::str::from_utf8(line).ok()?;
    let (word, value) = line.split_once(' ')?;
    match word {
        "pgid" => value.parse().ok().map(Marker::Pgid),
        "end" => value.parse().ok().map(Marker::End),
        _ => None,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = needle[0];
    let mut from = 0;
    while let Some(i) = haystack[from..].iter().position(|b| *b == first) {
        let at = from + i;
        if haystack[at..].starts_with(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// How many bytes at the end of `data` could begin `prefix` (a marker cut in two).
fn partial_prefix_len(data: &[u8], prefix: &[u8]) -> usize {
    let longest = (prefix.len() - 1).min(data.len());
    (1..=longest)
        .rev()
        .find(|n| prefix.starts_with(&data[data.len() - n..]))
        .unwrap_or(0)
}

/// Whether an idle runner is still fit for a run: no output, end or close arrived on it
/// while it was idle.
async fn is_quiet(ch: &mut RunnerChannel) -> bool {
    // `timeout` polls the inner future once before looking at its zero deadline, so a
    // message already queued is seen and nothing waits.
    loop {
        match tokio::time::timeout(Duration::ZERO, ch.wait()).await {
            Err(_) => return true,
            Ok(Some(ChannelMsg::WindowAdjusted { .. } | ChannelMsg::Success)) => {}
            Ok(_) => return false,
        }
    }
}

/// The stream a channel message belongs to, with its bytes.
fn stream_of(msg: &ChannelMsg) -> Option<(OutputStream, &[u8])> {
    match msg {
        ChannelMsg::Data { data } => Some((OutputStream::Stdout, data)),
        ChannelMsg::ExtendedData { data, ext: 1 } => Some((OutputStream::Stderr, data)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(pieces: &[&[u8]]) -> (Vec<u8>, Vec<Marker>) {
        let mut s = MarkerScanner::new("abc123");
        let (mut out, mut markers) = (Vec::new(), Vec::new());
        for p in pieces {
            let (o, m) = s.feed(p);
            out.extend(o);
            markers.extend(m);
        }
        out.extend(s.flush());
        (out, markers)
    }

    #[test]
    fn markers_are_found_anywhere_and_taken_out_of_the_output() {
        let (out, m) = scan(&[b"hello\n\x1eabc123 pgid 42\nno newline\x1eabc123 end 3\n"]);
        assert_eq!(out, b"hello\nno newline");
        assert_eq!(m, vec![Marker::Pgid(42), Marker::End(3)]);
    }

    #[test]
    fn a_marker_cut_between_pieces_is_still_found() {
        let whole = b"out\x1eabc123 end 0\n";
        for cut in 0..whole.len() {
            let (a, b) = whole.split_at(cut);
            let (out, m) = scan(&[a, b]);
            assert_eq!(
                (out.as_slice(), m.as_slice()),
                (&b"out"[..], &[Marker::End(0)][..]),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn look_alikes_and_other_nonces_stay_output() {
        let input: &[u8] =
            b"\x1eabc124 end 0\n\x1eabc123 endx 1\n\x1e\x1eabc12\n\x1eabc123 end 99999999999999999999999999\n";
        let (out, m) = scan(&[input]);
        assert!(m.is_empty(), "{m:?}");
        assert_eq!(out, input);
    }

    #[test]
    fn a_partial_marker_at_the_end_of_the_stream_is_flushed_as_output() {
        let (out, m) = scan(&[b"tail\x1eabc1"]);
        assert!(m.is_empty());
        assert_eq!(out, b"tail\x1eabc1");
    }
}
