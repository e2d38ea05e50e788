//! A script that prints a lot is streamed, never held: the control process's peak memory
//! barely moves while 50 MiB pass through, and a script that prints without end is stopped
//! by its timeout with memory still flat.
//!
//! This file holds a single test so that nothing else in the process moves the peak.

use std::time::Duration;

use job_core::model::OutputStream;
use job_core::status::HostOutcome;
use job_core::transport::{Cancel, HostTarget, TaskSpec, Transport, TransportEvent};
use job_transport_local::LocalTransport;
use tokio::sync::mpsc;

/// The process's peak resident memory (`VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Runs `task`, counting stdout bytes and events without keeping them.
async fn run_counting(task: &TaskSpec) -> (job_core::transport::RunOutcome, u64, u64) {
    let (tx, mut rx) = mpsc::channel(8);
    let count = async {
        let (mut bytes, mut events) = (0u64, 0u64);
        while let Some(event) = rx.recv().await {
            if let TransportEvent::Output {
                stream: OutputStream::Stdout,
                data,
                ..
            } = event
            {
                bytes += data.len() as u64;
                events += 1;
            }
        }
        (bytes, events)
    };
    let (transport, target, cancel) = (LocalTransport::new(), HostTarget::local(), Cancel::new());
    let (result, (bytes, events)) = tokio::join!(transport.run(&target, task, tx, &cancel), count);
    (result.expect("run"), bytes, events)
}

#[tokio::test]
async fn fifty_mebibytes_of_output_stream_through_without_growing_memory() {
    const SIZE: u64 = 50 * 1024 * 1024;
    let before = peak_rss_kib();

    let task = TaskSpec::bash(format!("head -c {SIZE} /dev/zero | tr '\\0' y\n"));
    let (outcome, bytes, events) = run_counting(&task).await;
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(bytes, SIZE);
    assert_eq!(outcome.output.stdout_bytes, SIZE);
    assert!(
        events >= SIZE / (64 * 1024),
        "{events} events: not streamed in chunks"
    );

    // Output without end: the timeout stops it; nothing piles up meanwhile.
    let task = TaskSpec::bash("yes 'endless output'\n").with_timeout(Duration::from_secs(2));
    let (outcome, bytes, _) = run_counting(&task).await;
    assert_eq!(outcome.outcome, HostOutcome::Timeout, "{outcome:?}");
    assert!(bytes > 0);

    let grown_kib = peak_rss_kib().saturating_sub(before);
    assert!(
        grown_kib < 16 * 1024,
        "peak memory grew by {grown_kib} KiB while streaming {SIZE} bytes"
    );
}
