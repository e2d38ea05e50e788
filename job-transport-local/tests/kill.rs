//! Timeout, cancel and the end of a script really remove its processes from the control
//! node: each test has the script record the pids of its process tree, then looks them up
//! in `/proc` after the run (a zombie waiting to be reaped counts as gone).

use std::time::Duration;

use job_core::model::OutputStream;
use job_core::status::HostOutcome;
use job_core::transport::{
    Cancel, HostTarget, RunOutcome, TaskSpec, Transport, TransportError, TransportEvent,
    TransportExt,
};
use job_transport_local::{LocalConfig, LocalTransport};
use tokio::sync::mpsc;

fn transport() -> LocalTransport {
    LocalTransport::with_config(LocalConfig::default().with_kill_grace(Duration::from_secs(1)))
}

/// Whether `pid` is a running (not zombie) process.
fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| !matches!(state, "Z" | "X")),
        Err(_) => false,
    }
}

/// Waits up to ten seconds for every pid to be gone; returns those still alive.
async fn still_alive_after_kill(pids: &[u32]) -> Vec<u32> {
    for _ in 0..100 {
        let alive: Vec<u32> = pids.iter().copied().filter(|p| is_alive(*p)).collect();
        if alive.is_empty() {
            return alive;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pids.iter().copied().filter(|p| is_alive(*p)).collect()
}

fn read_pids(path: &std::path::Path) -> Vec<u32> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

/// A script whose main process, child and grandchild write their pids to `pidfile`, then
/// print `ready` and wait.
fn tree_script(pidfile: &std::path::Path, prelude: &str) -> String {
    format!(
        "{prelude}\n\
         ( sleep 300 & echo $! >> '{f}'; wait ) &\n\
         sleep 300 &\n\
         echo $$ $! >> '{f}'\n\
         while [ \"$(wc -w < '{f}')\" -lt 3 ]; do sleep 0.05; done\n\
         echo ready\n\
         wait\n",
        f = pidfile.display()
    )
}

/// Runs `task`, firing `cancel` (if given) once `ready` is printed.
async fn run_until_ready(
    t: &LocalTransport,
    task: &TaskSpec,
    cancel_when_ready: bool,
) -> (Result<RunOutcome, TransportError>, bool) {
    let cancel = Cancel::new();
    let (tx, mut rx) = mpsc::channel(16);
    let watch = async {
        let mut ready = false;
        while let Some(event) = rx.recv().await {
            if let TransportEvent::Output { data, .. } = event
                && data.windows(5).any(|w| w == b"ready")
            {
                ready = true;
                if cancel_when_ready {
                    cancel.cancel();
                }
            }
        }
        ready
    };
    let target = HostTarget::local();
    tokio::join!(t.run(&target, task, tx, &cancel), watch)
}

#[tokio::test]
async fn cancel_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pidfile = dir.path().join("pids");
    let task = TaskSpec::bash(tree_script(&pidfile, ""));
    let (result, ready) = run_until_ready(&transport(), &task, true).await;
    assert!(ready);
    let outcome = result.expect("run");
    assert_eq!(outcome.outcome, HostOutcome::Cancelled, "{outcome:?}");
    let pids = read_pids(&pidfile);
    assert_eq!(pids.len(), 3, "main, child and grandchild: {pids:?}");
    assert_eq!(still_alive_after_kill(&pids).await, Vec::<u32>::new());
}

#[tokio::test]
async fn timeout_kills_a_script_that_ignores_sigterm_with_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pidfile = dir.path().join("pids");
    // An ignored signal stays ignored in children: the whole tree shrugs off SIGTERM.
    let task =
        TaskSpec::bash(tree_script(&pidfile, "trap '' TERM")).with_timeout(Duration::from_secs(2));
    let (result, ready) = run_until_ready(&transport(), &task, false).await;
    assert!(ready);
    let outcome = result.expect("run");
    assert_eq!(outcome.outcome, HostOutcome::Timeout, "{outcome:?}");
    assert!(matches!(
        outcome.error,
        Some(TransportError::Timeout { .. })
    ));
    let pids = read_pids(&pidfile);
    assert_eq!(pids.len(), 3, "{pids:?}");
    assert_eq!(still_alive_after_kill(&pids).await, Vec::<u32>::new());
}

#[tokio::test]
async fn a_background_child_that_ignores_sigterm_is_killed_when_the_script_exits() {
    let task = TaskSpec::bash("( trap '' TERM; exec sleep 300 ) &\necho $!\nexit 7\n");
    let run = transport()
        .run_collected(&HostTarget::local(), &task, &Cancel::new())
        .await;
    let stdout = String::from_utf8_lossy(&run.output(OutputStream::Stdout)).into_owned();
    let outcome = run.outcome();
    assert_eq!(
        outcome.exit_code,
        Some(7),
        "the script's own exit code counts"
    );
    assert_eq!(outcome.outcome, HostOutcome::Failed);
    let pid: u32 = stdout.trim().parse().expect("the child's pid");
    assert_eq!(still_alive_after_kill(&[pid]).await, Vec::<u32>::new());
}

#[tokio::test]
async fn dropping_the_run_kills_the_process_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pidfile = dir.path().join("pids");
    let task = TaskSpec::bash(tree_script(&pidfile, ""));
    let (tx, mut rx) = mpsc::channel(16);
    let run = tokio::spawn(async move {
        transport()
            .run(&HostTarget::local(), &task, tx, &Cancel::new())
            .await
    });
    while let Some(event) = rx.recv().await {
        if let TransportEvent::Output { data, .. } = event
            && data.windows(5).any(|w| w == b"ready")
        {
            break;
        }
    }
    run.abort();
    assert!(run.await.is_err_and(|e| e.is_cancelled()));
    let pids = read_pids(&pidfile);
    assert_eq!(pids.len(), 3, "{pids:?}");
    assert_eq!(still_alive_after_kill(&pids).await, Vec::<u32>::new());
}

#[tokio::test]
async fn a_process_that_leaves_the_group_survives_but_cannot_hold_the_run_open() {
    // `setsid` is the documented way to start something that outlives the run. Even when
    // it keeps the run's stdout open, the run ends one grace period after the group is
    // empty.
    let task = TaskSpec::bash("setsid sh -c 'echo $$; exec sleep 300' &\nsleep 0.5\nexit 0\n")
        .with_timeout(Duration::from_secs(60));
    let run = transport()
        .run_collected(&HostTarget::local(), &task, &Cancel::new())
        .await;
    let stdout = String::from_utf8_lossy(&run.output(OutputStream::Stdout)).into_owned();
    let outcome = run.outcome();
    assert_eq!(outcome.outcome, HostOutcome::Success, "{outcome:?}");
    let pid: u32 = stdout.trim().parse().expect("the detached pid");
    let survived = is_alive(pid);
    // Clean up what the test started on purpose.
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
    assert!(
        survived,
        "a process that left the group is not the run's to kill"
    );
}

#[tokio::test]
async fn a_script_killed_by_a_signal_fails_naming_the_signal() {
    let run = transport()
        .run_collected(
            &HostTarget::local(),
            &TaskSpec::bash("kill -KILL $$"),
            &Cancel::new(),
        )
        .await;
    let outcome = run.outcome();
    assert_eq!(outcome.outcome, HostOutcome::Failed);
    assert_eq!(outcome.exit_code, None);
    assert!(
        matches!(outcome.error, Some(TransportError::Killed { signal: 9 })),
        "{outcome:?}"
    );
}
