//! The transport conformance suite: what every [`Transport`] promises, checked against a
//! real target.
//!
//! Each case is a `pub async fn` taking the transport and a [`TestHost`]: a target that
//! runs Linux with `bash`, coreutils and `/proc`, and a scratch directory on it that the
//! suite may fill. A backend's tests call [`run_all`] (or each case); a new transport is
//! done when they pass. Cases panic with a message on failure, like assertions.
//!
//! Cases that check that processes are gone look them up on the target through `/proc`
//! (a zombie waiting for its parent to reap it counts as gone), allowing a few seconds for
//! the kernel to finish a kill.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::model::OutputStream;
use crate::status::HostOutcome;
use crate::transport::{
    Cancel, CollectedRun, HostTarget, IfExists, MAX_OUTPUT_CHUNK, PullSpec, PushOutcome,
    PushSource, PushSpec, RunOutcome, TaskSpec, Transport, TransportError, TransportEvent,
    TransportExt,
};
use crate::values::Sha256Hex;

/// A target to run the suite against.
#[derive(Debug, Clone)]
pub struct TestHost {
    /// How to reach it.
    pub target: HostTarget,
    /// An absolute path of a directory on the target that the suite may fill (each case
    /// uses a subdirectory named after itself). It must exist and be writable.
    pub scratch_dir: String,
}

impl TestHost {
    /// A path inside the scratch directory.
    pub fn path(&self, rel: &str) -> String {
        format!("{}/{rel}", self.scratch_dir.trim_end_matches('/'))
    }
}

/// Runs every case, one after the other.
pub async fn run_all(t: &dyn Transport, host: &TestHost) {
    echo_streams_stdout_and_stderr_separately_with_gap_free_seq(t, host).await;
    exit_code_propagates_and_non_zero_fails(t, host).await;
    timeout_kills_the_process_group_and_reports_timeout(t, host).await;
    cancel_kills_the_process_group_and_reports_cancelled(t, host).await;
    a_run_cancelled_before_it_starts_ends_cancelled(t, host).await;
    a_script_that_forks_a_daemon_and_exits_ends_the_run(t, host).await;
    output_is_streamed_while_the_script_runs(t, host).await;
    large_output_arrives_whole_in_bounded_chunks(t, host).await;
    output_past_the_limit_is_counted_but_not_sent(t, host).await;
    script_text_arrives_verbatim(t, host).await;
    the_script_gets_an_empty_stdin_and_its_file_is_removed(t, host).await;
    env_workdir_and_script_args_are_honoured(t, host).await;
    a_missing_workdir_fails_the_run(t, host).await;
    push_writes_atomically_and_verifies_the_checksum(t, host).await;
    push_overwrites_or_skips_an_existing_file(t, host).await;
    push_sets_the_file_mode(t, host).await;
    pull_returns_the_bytes_and_refuses_missing_or_oversized_files(t, host).await;
}

/// `sha256("hello\n")`.
const HELLO_SHA256: &str = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn sha(hex: &str) -> Sha256Hex {
    Sha256Hex::parse("sha256", hex).expect("a valid digest literal")
}

fn bytes(data: &[u8]) -> PushSource {
    PushSource::Bytes(Arc::from(data))
}

async fn run(t: &dyn Transport, host: &TestHost, task: TaskSpec) -> CollectedRun {
    t.run_collected(&host.target, &task, &Cancel::new()).await
}

/// Runs `task` and calls `on_event` with each event and the run's cancel signal.
async fn run_watching(
    t: &dyn Transport,
    host: &TestHost,
    task: TaskSpec,
    capacity: usize,
    mut on_event: impl FnMut(&TransportEvent, &Cancel) + Send,
) -> CollectedRun {
    let cancel = Cancel::new();
    let (tx, mut rx) = mpsc::channel(capacity);
    let watch = async {
        let mut events = Vec::new();
        while let Some(event) = rx.recv().await {
            on_event(&event, &cancel);
            events.push(event);
        }
        events
    };
    let (result, events) = tokio::join!(t.run(&host.target, &task, tx, &cancel), watch);
    CollectedRun { result, events }
}

/// Runs a bash snippet that must succeed and returns its stdout.
async fn sh(t: &dyn Transport, host: &TestHost, script: &str) -> String {
    let run = run(
        t,
        host,
        TaskSpec::bash(script).with_timeout(Duration::from_secs(60)),
    )
    .await;
    let stdout = text(&run.output(OutputStream::Stdout));
    let stderr = text(&run.output(OutputStream::Stderr));
    let outcome = run.outcome();
    assert!(
        outcome.is_success(),
        "helper script failed: {outcome:?}\nscript: {script}\nstdout: {stdout}\nstderr: {stderr}"
    );
    stdout
}

/// Makes an empty directory for one case and returns its path.
async fn case_dir(t: &dyn Transport, host: &TestHost, case: &str) -> String {
    let dir = host.path(case);
    sh(t, host, &format!("rm -rf '{dir}' && mkdir -p '{dir}'")).await;
    dir
}

/// Asserts that none of `pids` is alive on the target (zombies count as gone), allowing
/// up to ten seconds for a kill to complete.
async fn assert_gone(t: &dyn Transport, host: &TestHost, pids: &[u32], what: &str) {
    assert!(!pids.is_empty(), "{what}: no pids to check");
    let list = pids
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    let script = format!(
        r#"alive() {{
  [ -r "/proc/$1/stat" ] || return 1
  s=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
  [ -n "$s" ] && [ "$s" != Z ] && [ "$s" != X ]
}}
for i in $(seq 1 100); do
  left=""
  for p in {list}; do alive "$p" && left="$left $p"; done
  [ -z "$left" ] && {{ echo gone; exit 0; }}
  sleep 0.1
done
echo "alive:$left""#
    );
    let out = sh(t, host, &script).await;
    assert_eq!(out.trim(), "gone", "{what}: processes still running");
}

/// Parses whitespace-separated pids from the first line of `out`.
fn pids_in(out: &str) -> Vec<u32> {
    out.lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

fn seqs_and_chunks(events: &[TransportEvent]) -> (Vec<u64>, usize) {
    let mut seqs = Vec::new();
    let mut largest = 0;
    for e in events {
        if let TransportEvent::Output { seq, data, .. } = e {
            seqs.push(*seq);
            largest = largest.max(data.len());
        }
    }
    (seqs, largest)
}

fn assert_gap_free(events: &[TransportEvent]) {
    let (seqs, largest) = seqs_and_chunks(events);
    let expected: Vec<u64> = (0..seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "seq numbers must count from 0 without gaps");
    assert!(largest <= MAX_OUTPUT_CHUNK, "a chunk of {largest} bytes");
    let started = events
        .iter()
        .filter(|e| matches!(e, TransportEvent::Started))
        .count();
    assert!(started <= 1, "Started sent {started} times");
    if let Some(first_output) = events
        .iter()
        .position(|e| matches!(e, TransportEvent::Output { .. }))
    {
        assert_eq!(
            events.first(),
            Some(&TransportEvent::Started),
            "Started must come before output (first output at {first_output})"
        );
    }
}

/// Stdout and stderr arrive apart, each in order, numbered by one counter from 0 without
/// gaps, after one `Started`; a clean exit is a success with code 0 and counted bytes.
pub async fn echo_streams_stdout_and_stderr_separately_with_gap_free_seq(
    t: &dyn Transport,
    host: &TestHost,
) {
    let run = run(
        t,
        host,
        TaskSpec::bash("echo out-1\necho err-1 >&2\necho out-2\nprintf err-2 >&2\n"),
    )
    .await;
    assert_gap_free(&run.events);
    assert_eq!(text(&run.output(OutputStream::Stdout)), "out-1\nout-2\n");
    assert_eq!(text(&run.output(OutputStream::Stderr)), "err-1\nerr-2");
    let outcome = run.outcome();
    assert_eq!(outcome.outcome, HostOutcome::Success, "{outcome:?}");
    assert_eq!(outcome.exit_code, Some(0));
    assert!(outcome.error.is_none(), "{outcome:?}");
    assert_eq!(outcome.output.stdout_bytes, 12);
    assert_eq!(outcome.output.stderr_bytes, 11);
    assert!(!outcome.output.truncated);
}

/// A silent script that exits 0 sends only `Started` and succeeds; a non-zero exit code is
/// reported as it is, and the host run fails with [`TransportError::NonZeroExit`].
pub async fn exit_code_propagates_and_non_zero_fails(t: &dyn Transport, host: &TestHost) {
    let silent = run(t, host, TaskSpec::bash("exit 0")).await;
    assert_eq!(
        silent.events,
        [TransportEvent::Started],
        "a silent script still reports that it started"
    );
    assert!(silent.outcome().is_success());
    for code in [1, 3, 42] {
        let outcome = run(t, host, TaskSpec::bash(format!("echo before\nexit {code}")))
            .await
            .outcome();
        assert_eq!(outcome.outcome, HostOutcome::Failed, "exit {code}");
        assert_eq!(outcome.exit_code, Some(code));
        assert!(
            matches!(outcome.error, Some(TransportError::NonZeroExit { code: c }) if c == code),
            "{outcome:?}"
        );
    }
}

const SLEEPER: &str = "sleep 300 &\necho \"$$ $!\"\nwait\necho never\n";

/// The timeout stops the run: the host outcome is `timeout`, and the script and its
/// children are gone from the target.
pub async fn timeout_kills_the_process_group_and_reports_timeout(
    t: &dyn Transport,
    host: &TestHost,
) {
    let run = run(
        t,
        host,
        TaskSpec::bash(SLEEPER).with_timeout(Duration::from_secs(2)),
    )
    .await;
    let stdout = text(&run.output(OutputStream::Stdout));
    let outcome = run.outcome();
    assert_eq!(outcome.outcome, HostOutcome::Timeout, "{outcome:?}");
    assert!(
        matches!(outcome.error, Some(TransportError::Timeout { .. })),
        "{outcome:?}"
    );
    assert!(!stdout.contains("never"), "{stdout}");
    assert_gone(t, host, &pids_in(&stdout), "after a timeout").await;
}

/// A cancel stops the run: the host outcome is `cancelled`, and the script and its
/// children are gone from the target.
pub async fn cancel_kills_the_process_group_and_reports_cancelled(
    t: &dyn Transport,
    host: &TestHost,
) {
    let mut seen = Vec::new();
    let run = run_watching(t, host, TaskSpec::bash(SLEEPER), 16, |event, cancel| {
        if let TransportEvent::Output {
            stream: OutputStream::Stdout,
            data,
            ..
        } = event
        {
            seen.extend_from_slice(data);
            if seen.contains(&b'\n') {
                cancel.cancel();
            }
        }
    })
    .await;
    let stdout = text(&run.output(OutputStream::Stdout));
    let outcome = run.outcome();
    assert_eq!(outcome.outcome, HostOutcome::Cancelled, "{outcome:?}");
    assert!(
        matches!(outcome.error, Some(TransportError::Cancelled)),
        "{outcome:?}"
    );
    assert!(!stdout.contains("never"), "{stdout}");
    assert_gone(t, host, &pids_in(&stdout), "after a cancel").await;
}

/// A run whose cancel signal fired before it was called ends `cancelled` without running
/// the script to its end.
pub async fn a_run_cancelled_before_it_starts_ends_cancelled(t: &dyn Transport, host: &TestHost) {
    let dir = case_dir(t, host, "cancelled_before_start").await;
    let cancel = Cancel::new();
    cancel.cancel();
    let task = TaskSpec::bash(format!("sleep 2\ntouch '{dir}/ran'"));
    let outcome = t
        .run_collected(&host.target, &task, &cancel)
        .await
        .outcome();
    assert_eq!(outcome.outcome, HostOutcome::Cancelled, "{outcome:?}");
    let ran = sh(
        t,
        host,
        &format!("sleep 3; test -e '{dir}/ran' && echo ran || echo no"),
    )
    .await;
    assert_eq!(ran.trim(), "no");
}

/// A script that starts a background process and exits ends the run with its own exit
/// code — the background process keeps neither the run open (through an inherited
/// stdout) nor itself alive: the run owns its process group.
pub async fn a_script_that_forks_a_daemon_and_exits_ends_the_run(
    t: &dyn Transport,
    host: &TestHost,
) {
    for (what, script) in [
        ("holding stdout", "sleep 300 &\necho $!\nexit 0\n"),
        (
            "with its output redirected",
            "nohup sleep 300 >/dev/null 2>&1 &\necho $!\nexit 0\n",
        ),
        ("a grandchild", "( sleep 300 & echo $! ) \nexit 0\n"),
    ] {
        let run = run(
            t,
            host,
            TaskSpec::bash(script).with_timeout(Duration::from_secs(60)),
        )
        .await;
        let stdout = text(&run.output(OutputStream::Stdout));
        let outcome = run.outcome();
        assert_eq!(
            outcome.outcome,
            HostOutcome::Success,
            "{what}: the run must end with the script: {outcome:?}"
        );
        assert_gone(t, host, &pids_in(&stdout), what).await;
    }
}

/// Output reaches the receiver while the script still runs: the script prints a line and
/// then waits forever; the line arrives, and a cancel ends the run.
pub async fn output_is_streamed_while_the_script_runs(t: &dyn Transport, host: &TestHost) {
    let mut got_first = false;
    let run = run_watching(
        t,
        host,
        TaskSpec::bash("echo first\nexec sleep 300\n"),
        4,
        |event, cancel| {
            if let TransportEvent::Output { data, .. } = event
                && data.windows(5).any(|w| w == b"first")
            {
                got_first = true;
                cancel.cancel();
            }
        },
    )
    .await;
    assert!(
        got_first,
        "the first line never arrived while the script ran"
    );
    assert_eq!(run.outcome().outcome, HostOutcome::Cancelled);
}

/// 8 MiB of output arrives whole, in order, in many chunks no larger than
/// [`MAX_OUTPUT_CHUNK`], through a small channel (back-pressure, not buffering).
pub async fn large_output_arrives_whole_in_bounded_chunks(t: &dyn Transport, host: &TestHost) {
    const SIZE: usize = 8 * 1024 * 1024;
    let mut received = 0usize;
    let mut all_x = true;
    let mut chunks = 0usize;
    let run = run_watching(
        t,
        host,
        TaskSpec::bash(format!(
            "head -c {SIZE} /dev/zero | tr '\\0' x\necho done >&2\n"
        ))
        .with_timeout(Duration::from_secs(120)),
        2,
        |event, _| {
            if let TransportEvent::Output {
                stream: OutputStream::Stdout,
                data,
                ..
            } = event
            {
                received += data.len();
                chunks += 1;
                all_x &= data.iter().all(|b| *b == b'x');
            }
        },
    )
    .await;
    assert_gap_free(&run.events);
    assert_eq!(received, SIZE);
    assert!(all_x, "output bytes changed on the way");
    assert!(chunks >= SIZE / MAX_OUTPUT_CHUNK, "{chunks} chunks");
    assert_eq!(text(&run.output(OutputStream::Stderr)), "done\n");
    let outcome = run.outcome();
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(outcome.output.stdout_bytes, SIZE as u64);
}

/// With an output limit, each stream sends at most that many bytes, counts all of them,
/// and says so once in a `system` event.
pub async fn output_past_the_limit_is_counted_but_not_sent(t: &dyn Transport, host: &TestHost) {
    let run = run(
        t,
        host,
        TaskSpec::bash(
            "head -c 5000 /dev/zero | tr '\\0' a\nhead -c 10 /dev/zero | tr '\\0' b >&2\n",
        )
        .with_output_limit(1000),
    )
    .await;
    assert_gap_free(&run.events);
    assert_eq!(run.output(OutputStream::Stdout), vec![b'a'; 1000]);
    assert_eq!(run.output(OutputStream::Stderr), vec![b'b'; 10]);
    assert!(!run.output(OutputStream::System).is_empty());
    let outcome = run.outcome();
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(outcome.output.stdout_bytes, 5000);
    assert_eq!(outcome.output.stderr_bytes, 10);
    assert!(outcome.output.truncated);
}

/// Quotes, backslashes, `$(…)`, backticks, unicode and a long body reach the interpreter
/// exactly as written: nothing is expanded on the way.
pub async fn script_text_arrives_verbatim(t: &dyn Transport, host: &TestHost) {
    let tricky = "it's \"quoted\" \\back\\slash $(echo injected) `echo injected` ${HOME} $$ \
                  ünïcødé 🚀 中文 'single' %s %n \t tab";
    let padding = format!("# {}\n", "p".repeat(100)).repeat(2048); // ~200 KiB
    let script = format!("{padding}cat <<'JOB_EOF'\n{tricky}\nJOB_EOF\nprintf '%s' 'end'");
    let run = run(t, host, TaskSpec::bash(script)).await;
    assert_eq!(
        text(&run.output(OutputStream::Stdout)),
        format!("{tricky}\nend")
    );
    assert!(run.outcome().is_success());
}

/// The script's stdin is empty (the script itself is not read through it), and the
/// temporary script file is gone after the run.
pub async fn the_script_gets_an_empty_stdin_and_its_file_is_removed(
    t: &dyn Transport,
    host: &TestHost,
) {
    let run = run(
        t,
        host,
        TaskSpec::bash(
            "if read -r line; then echo \"read:$line\"; else echo no-input; fi\necho \"$0\"\necho after\n",
        ),
    )
    .await;
    let stdout = text(&run.output(OutputStream::Stdout));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"no-input"), "{stdout}");
    assert_eq!(lines.get(2), Some(&"after"), "{stdout}");
    let script_path = lines.get(1).copied().unwrap_or_default().to_owned();
    assert!(script_path.starts_with('/'), "script path {script_path:?}");
    assert!(run.outcome().is_success());
    let left = sh(
        t,
        host,
        &format!("test -e '{script_path}' && echo present || echo absent"),
    )
    .await;
    assert_eq!(left.trim(), "absent", "{script_path} was left behind");
}

/// The task's environment, working directory and positional parameters reach the script.
pub async fn env_workdir_and_script_args_are_honoured(t: &dyn Transport, host: &TestHost) {
    let dir = case_dir(t, host, "env_workdir").await;
    let pushed = t
        .push(
            &host.target,
            &PushSpec::new(bytes(b"marker-content"), format!("{dir}/wd/marker.txt")),
            &Cancel::new(),
        )
        .await
        .expect("push the marker");
    assert!(matches!(pushed, PushOutcome::Written { .. }), "{pushed:?}");
    let value = "héllo $(not expanded) 'q' \"dq\"";
    let task =
        TaskSpec::bash("printf '%s|' \"$JOB_TEST_VALUE\"\ncat marker.txt\nprintf '|[%s]' \"$@\"\n")
            .with_env("JOB_TEST_VALUE", value)
            .with_workdir(format!("{dir}/wd"))
            .with_script_args(["a b", "c"]);
    let run = run(t, host, task).await;
    assert_eq!(
        text(&run.output(OutputStream::Stdout)),
        format!("{value}|marker-content|[a b]|[c]")
    );
    assert!(run.outcome().is_success());
}

/// A working directory that does not exist fails the host run with an error; nothing runs.
pub async fn a_missing_workdir_fails_the_run(t: &dyn Transport, host: &TestHost) {
    let dir = case_dir(t, host, "missing_workdir").await;
    let outcome = run(
        t,
        host,
        TaskSpec::bash("echo ran").with_workdir(format!("{dir}/does/not/exist")),
    )
    .await
    .outcome();
    assert_eq!(outcome.outcome, HostOutcome::Failed, "{outcome:?}");
    assert!(outcome.error.is_some());
}

/// A push creates missing directories, reports the verified sha256, leaves no temporary
/// file behind, and on a checksum mismatch writes nothing at the destination.
pub async fn push_writes_atomically_and_verifies_the_checksum(t: &dyn Transport, host: &TestHost) {
    let dir = case_dir(t, host, "push_checksum").await;
    let dest = format!("{dir}/a/b/hello.txt");
    let written = t
        .push(
            &host.target,
            &PushSpec::new(bytes(b"hello\n"), &dest),
            &Cancel::new(),
        )
        .await
        .expect("push");
    assert_eq!(
        written,
        PushOutcome::Written {
            bytes: 6,
            sha256: sha(HELLO_SHA256)
        }
    );
    let pulled = t
        .pull(&host.target, &PullSpec::new(&dest), &Cancel::new())
        .await
        .expect("pull");
    assert_eq!(pulled.data, b"hello\n");
    assert_eq!(pulled.sha256, sha(HELLO_SHA256));

    // The recorded digest matches: accepted.
    let ok = t
        .push(
            &host.target,
            &PushSpec::new(bytes(b"hello\n"), format!("{dir}/a/b/same.txt"))
                .with_sha256(sha(HELLO_SHA256)),
            &Cancel::new(),
        )
        .await;
    assert!(matches!(ok, Ok(PushOutcome::Written { .. })), "{ok:?}");

    // The recorded digest does not match what is sent: refused, nothing written.
    let bad = t
        .push(
            &host.target,
            &PushSpec::new(bytes(b"tampered\n"), format!("{dir}/a/b/bad.txt"))
                .with_sha256(sha(HELLO_SHA256)),
            &Cancel::new(),
        )
        .await;
    assert!(
        matches!(bad, Err(TransportError::ChecksumMismatch { .. })),
        "{bad:?}"
    );
    let listing = sh(t, host, &format!("ls -A '{dir}/a/b'")).await;
    let mut names: Vec<&str> = listing.lines().collect();
    names.sort_unstable();
    assert_eq!(names, ["hello.txt", "same.txt"], "leftovers: {listing}");
}

/// An existing destination is replaced with `overwrite` and kept with `skip`.
pub async fn push_overwrites_or_skips_an_existing_file(t: &dyn Transport, host: &TestHost) {
    let dir = case_dir(t, host, "push_exists").await;
    let dest = format!("{dir}/file.txt");
    let push = |data: &'static [u8], if_exists| {
        let spec = PushSpec::new(bytes(data), &dest).with_if_exists(if_exists);
        async move { t.push(&host.target, &spec, &Cancel::new()).await }
    };
    let pull = || async {
        t.pull(&host.target, &PullSpec::new(&dest), &Cancel::new())
            .await
            .expect("pull")
            .data
    };
    assert!(matches!(
        push(b"one", IfExists::Skip).await,
        Ok(PushOutcome::Written { bytes: 3, .. })
    ));
    assert_eq!(
        push(b"two", IfExists::Skip).await.expect("skip"),
        PushOutcome::Skipped
    );
    assert_eq!(pull().await, b"one");
    assert!(matches!(
        push(b"three", IfExists::Overwrite).await,
        Ok(PushOutcome::Written { bytes: 5, .. })
    ));
    assert_eq!(pull().await, b"three");
    let listing = sh(t, host, &format!("ls -A '{dir}'")).await;
    assert_eq!(listing.trim(), "file.txt", "leftovers: {listing}");
}

/// A pushed file gets the requested mode (`0o644` by default), so a pushed script can be
/// executed.
pub async fn push_sets_the_file_mode(t: &dyn Transport, host: &TestHost) {
    let dir = case_dir(t, host, "push_mode").await;
    let tool = format!("{dir}/tool.sh");
    t.push(
        &host.target,
        &PushSpec::new(bytes(b"#!/bin/sh\necho tool-ran\n"), &tool).with_mode(0o755),
        &Cancel::new(),
    )
    .await
    .expect("push tool");
    t.push(
        &host.target,
        &PushSpec::new(bytes(b"data"), format!("{dir}/data.txt")),
        &Cancel::new(),
    )
    .await
    .expect("push data");
    let out = sh(
        t,
        host,
        &format!("'{tool}'\nstat -c %a '{tool}' '{dir}/data.txt'"),
    )
    .await;
    assert_eq!(out, "tool-ran\n755\n644\n");
}

/// A pull returns the file's bytes and sha256, and refuses a missing file
/// ([`TransportError::NotFound`]) or one over the size limit ([`TransportError::TooLarge`]).
pub async fn pull_returns_the_bytes_and_refuses_missing_or_oversized_files(
    t: &dyn Transport,
    host: &TestHost,
) {
    let dir = case_dir(t, host, "pull").await;
    sh(t, host, &format!("printf 'hello\\n' > '{dir}/hello.txt'")).await;
    let pulled = t
        .pull(
            &host.target,
            &PullSpec::new(format!("{dir}/hello.txt")),
            &Cancel::new(),
        )
        .await
        .expect("pull");
    assert_eq!(pulled.data, b"hello\n");
    assert_eq!(pulled.sha256, sha(HELLO_SHA256));
    let missing = t
        .pull(
            &host.target,
            &PullSpec::new(format!("{dir}/missing.txt")),
            &Cancel::new(),
        )
        .await;
    assert!(
        matches!(missing, Err(TransportError::NotFound { .. })),
        "{missing:?}"
    );
    let large = t
        .pull(
            &host.target,
            &PullSpec::new(format!("{dir}/hello.txt")).with_max_bytes(3),
            &Cancel::new(),
        )
        .await;
    assert!(
        matches!(large, Err(TransportError::TooLarge { limit: 3, .. })),
        "{large:?}"
    );
}

/// Folds a run's result into its outcome, for callers of single cases.
pub fn outcome_of(result: Result<RunOutcome, TransportError>) -> RunOutcome {
    result.unwrap_or_else(RunOutcome::from_error)
}
