//! A node that crashed (no destructor ran) leaves its runs' process groups behind; the run
//! records let the restarted node kill them, and never a process that merely reused a pid.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use job_core::transport::{Cancel, HostAccess, HostTarget, TaskSpec, Transport};
use job_transport_local::{LocalConfig, LocalTransport, reap_orphans};

/// Field 22 of `/proc/<pid>/stat`: the start time the records hold.
fn start_time(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let (_, rest) = stat.rsplit_once(')').unwrap();
    rest.split_whitespace().nth(19).unwrap().parse().unwrap()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.rsplit_once(')').unwrap().1.trim_start().starts_with('Z'))
}

/// A `sleep` leading its own process group, as a crashed node's run would have left it.
fn leftover() -> Child {
    use std::os::unix::process::CommandExt;
    Command::new("sleep")
        .arg("300")
        .process_group(0)
        .spawn()
        .unwrap()
}

fn wait_gone(child: &mut Child, within: Duration) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if child.try_wait().unwrap().is_some() || !alive(child.id()) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn record(dir: &Path, pid: u32, started: u64) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(pid.to_string()), format!("{started}\n")).unwrap();
}

#[tokio::test]
async fn a_recorded_group_left_running_is_killed_and_its_record_removed() {
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("runs");
    let mut child = leftover();
    record(&records, child.id(), start_time(child.id()));
    let killed = reap_orphans(&records, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(killed, 1);
    assert!(
        wait_gone(&mut child, Duration::from_secs(5)),
        "the leftover still runs"
    );
    assert_eq!(std::fs::read_dir(&records).unwrap().count(), 0);
}

#[tokio::test]
async fn a_process_that_reused_the_pid_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("runs");
    let mut child = leftover();
    // The record says the group's leader started earlier than this process did.
    record(&records, child.id(), start_time(child.id()) - 1);
    let killed = reap_orphans(&records, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(killed, 0);
    assert!(
        alive(child.id()),
        "a process that only reused the pid was killed"
    );
    assert_eq!(std::fs::read_dir(&records).unwrap().count(), 0);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn a_missing_record_directory_is_nothing_to_reap() {
    let dir = tempfile::tempdir().unwrap();
    let killed = reap_orphans(&dir.path().join("none"), Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(killed, 0);
}

#[tokio::test]
async fn a_run_keeps_its_record_while_it_runs_and_removes_it_when_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("runs");
    let transport = LocalTransport::with_config(LocalConfig::default().with_run_records(&records));
    let target = HostTarget {
        name: "self".into(),
        os: job_core::model::Os::Linux,
        access: HostAccess::Local,
    };
    let task = TaskSpec::bash("sleep 0.5; echo done");
    let (events, mut rx) = tokio::sync::mpsc::channel(64);
    let cancel = Cancel::new();
    let run = tokio::spawn({
        let (transport, target, task, cancel) = (
            transport.clone(),
            target.clone(),
            task.clone(),
            cancel.clone(),
        );
        async move { transport.run(&target, &task, events, &cancel).await }
    });
    // Wait for the start, then look at the records.
    let _started = rx.recv().await.expect("a started event");
    let during = std::fs::read_dir(&records).unwrap().count();
    while rx.recv().await.is_some() {}
    let outcome = run.await.unwrap().unwrap();
    assert_eq!(outcome.exit_code, Some(0), "{outcome:?}");
    assert_eq!(during, 1, "one record while the run ran");
    assert_eq!(std::fs::read_dir(&records).unwrap().count(), 0);
}
