//! Crash cases (issue 6 item 5): the agent killed mid-run and restarted, the NATS server
//! restarted mid-run, the control side dropped and recreated mid-run. In each the run
//! reaches a final state and no output line that reached the server is lost.

mod common;

use std::future::Future;
use std::time::Duration;

use common::{Rig, RunningAgent};
use job_core::model::OutputStream;
use job_core::status::HostOutcome;
use job_core::transport::{
    Cancel, CollectedRun, RunOutcome, TaskSpec, Transport, TransportError, TransportEvent,
    TransportExt,
};
use job_transport_nats::{AgentTask, NatsTransport};
use tokio::sync::mpsc;

/// A script printing `line-1` … `line-{n}`, one every 50 ms.
fn counting(n: u32) -> TaskSpec {
    TaskSpec::bash(format!(
        "for i in $(seq 1 {n}); do echo line-$i; sleep 0.05; done"
    ))
    .with_timeout(Duration::from_secs(120))
}

fn expected_lines(n: u32) -> String {
    (1..=n).map(|i| format!("line-{i}\n")).collect()
}

/// Follows `task` on `t`, collecting its events; `progress` gets the number of stdout
/// lines seen so far after each event.
async fn follow_collecting(
    t: &NatsTransport,
    task: &AgentTask,
    progress: tokio::sync::watch::Sender<usize>,
) -> CollectedRun {
    let (tx, mut rx) = mpsc::channel(64);
    let collect = async move {
        let mut events = Vec::new();
        let mut lines = 0;
        while let Some(e) = rx.recv().await {
            if let TransportEvent::Output { data, .. } = &e {
                lines += data.iter().filter(|b| **b == b'\n').count();
                progress.send_replace(lines);
            }
            events.push(e);
        }
        events
    };
    let cancel = Cancel::new();
    let (result, events) = tokio::join!(t.follow(task, tx, &cancel), collect);
    CollectedRun { result, events }
}

/// Starts `task` and follows it on a background task; returns the handle, the follower
/// and its progress.
async fn start_following(
    t: &NatsTransport,
    rig: &Rig,
    task: TaskSpec,
) -> (
    AgentTask,
    tokio::task::JoinHandle<CollectedRun>,
    tokio::sync::watch::Receiver<usize>,
) {
    let handle = t.start(&rig.target(), &task).await.expect("start");
    let (progress_tx, progress) = tokio::sync::watch::channel(0);
    let follower = {
        let (t, handle) = (t.clone(), handle.clone());
        tokio::spawn(async move { follow_collecting(&t, &handle, progress_tx).await })
    };
    (handle, follower, progress)
}

async fn wait_lines(progress: &mut tokio::sync::watch::Receiver<usize>, n: usize) {
    tokio::time::timeout(Duration::from_secs(30), progress.wait_for(|l| *l >= n))
        .await
        .expect("output arrives")
        .expect("the follower runs");
}

fn assert_gap_free_stdout(run: &CollectedRun) -> String {
    let seqs: Vec<u64> = run
        .events
        .iter()
        .filter_map(|e| match e {
            TransportEvent::Output { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(
        seqs,
        (0..seqs.len() as u64).collect::<Vec<_>>(),
        "every event once, in order"
    );
    String::from_utf8(run.output(OutputStream::Stdout)).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_mid_run_and_restarted_fails_the_run_and_keeps_every_stored_line() {
    let Some(mut rig) = Rig::start("crashing-agent").await else {
        return;
    };
    let t = rig.transport.clone();
    let (handle, follower, mut progress) = start_following(&t, &rig, counting(400)).await;
    wait_lines(&mut progress, 5).await;

    rig.agent.take().expect("agent").kill();
    let _restarted = RunningAgent::start(&rig.server.url(), "crashing-agent", &rig.work_dir());

    let run = follower.await.expect("follower");
    let stdout = assert_gap_free_stdout(&run);
    match &run.result {
        Err(TransportError::Failed { reason, .. }) => assert!(
            reason.contains("agent crashing-agent stopped while the task ran"),
            "{reason}"
        ),
        other => panic!("expected a failure naming the agent restart, got {other:?}"),
    }
    assert!(stdout.lines().count() >= 5, "{stdout}");
    assert!(
        expected_lines(400).starts_with(&stdout),
        "lines out of order or lost: {stdout}"
    );

    // What the follower got is everything the server stored: a second follower, from
    // the stream, sees the same lines and the same end.
    let again = follow_collecting(&t, &handle, tokio::sync::watch::channel(0).0).await;
    assert_eq!(assert_gap_free_stdout(&again), stdout);
    assert!(matches!(again.result, Err(TransportError::Failed { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_restart_mid_run_loses_no_line_and_repeats_none() {
    let Some(mut rig) = Rig::start("steady-agent").await else {
        return;
    };
    let t = NatsTransport::connect(
        common::config(&rig.server.url()).with_offline_after(Duration::from_secs(15)),
    )
    .await
    .expect("control side");
    let (_handle, follower, mut progress) = start_following(&t, &rig, counting(60)).await;
    wait_lines(&mut progress, 5).await;

    rig.server.stop();
    tokio::time::sleep(Duration::from_millis(500)).await; // the script keeps printing
    rig.server.start_again().expect("restart nats-server");

    let run = tokio::time::timeout(Duration::from_secs(90), follower)
        .await
        .expect("the run ends")
        .expect("follower");
    let stdout = assert_gap_free_stdout(&run);
    assert_eq!(stdout, expected_lines(60));
    let outcome = run.result.expect("the run completes");
    assert_eq!(outcome.outcome, HostOutcome::Success, "{outcome:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_side_recreated_mid_run_still_receives_every_line_and_the_result() {
    let Some(rig) = Rig::start("patient-agent").await else {
        return;
    };
    let first = common::transport(&rig.server.url()).await;
    let (handle, follower, mut progress) = start_following(&first, &rig, counting(40)).await;
    wait_lines(&mut progress, 5).await;
    follower.abort();
    let _ = follower.await;
    drop(first);

    // A new control side, on a new connection, knows only the stored handle.
    let stored = serde_json::to_string(&handle).expect("store the handle");
    let handle: AgentTask = serde_json::from_str(&stored).expect("load the handle");
    let second = common::transport(&rig.server.url()).await;
    let run = follow_collecting(&second, &handle, tokio::sync::watch::channel(0).0).await;
    assert_eq!(assert_gap_free_stdout(&run), expected_lines(40));
    let outcome: RunOutcome = run.result.expect("the run completes");
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(outcome.output.stdout_bytes, expected_lines(40).len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_stopped_mid_run_fails_the_run_saying_so() {
    let Some(mut rig) = Rig::start("leaving-agent").await else {
        return;
    };
    let t = rig.transport.clone();
    let (_handle, follower, mut progress) = start_following(&t, &rig, counting(400)).await;
    wait_lines(&mut progress, 3).await;
    rig.agent.take().expect("agent").stop().await;
    let run = follower.await.expect("follower");
    match &run.result {
        Err(TransportError::Failed { reason, .. }) => assert!(
            reason.contains("agent leaving-agent was stopped while the task ran"),
            "{reason}"
        ),
        other => panic!("expected a failure naming the agent stop, got {other:?}"),
    }
    assert!(expected_lines(400).starts_with(&assert_gap_free_stdout(&run)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_agent_dies_for_good_fails_once_the_agent_is_lost() {
    let Some(mut rig) = Rig::start("lost-agent").await else {
        return;
    };
    let t = NatsTransport::connect(
        common::config(&rig.server.url()).with_lost_after(Duration::from_secs(2)),
    )
    .await
    .expect("control side");
    let (_handle, follower, mut progress) = start_following(&t, &rig, counting(4000)).await;
    wait_lines(&mut progress, 3).await;
    rig.agent.take().expect("agent").kill();
    let run = tokio::time::timeout(Duration::from_secs(60), follower)
        .await
        .expect("the run ends long before its timeout")
        .expect("follower");
    match &run.result {
        Err(TransportError::Unreachable { reason, .. }) => assert!(
            reason.contains("the run did not end: agent lost-agent is offline, last seen"),
            "{reason}"
        ),
        other => panic!("expected unreachable, got {other:?}"),
    }
    assert!(expected_lines(4000).starts_with(&assert_gap_free_stdout(&run)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_restart_mid_run_loses_no_line_through_the_shared_results_feed() {
    let Some(mut rig) = Rig::start("feed-agent").await else {
        return;
    };
    let t = NatsTransport::connect(
        common::config(&rig.server.url()).with_offline_after(Duration::from_secs(15)),
    )
    .await
    .expect("control side");
    let (progress_tx, mut progress) = tokio::sync::watch::channel(0usize);
    let run = {
        let (t, target) = (t.clone(), rig.target());
        tokio::spawn(async move {
            let (tx, mut rx) = mpsc::channel(64);
            let collect = async move {
                let mut events = Vec::new();
                let mut lines = 0;
                while let Some(e) = rx.recv().await {
                    if let TransportEvent::Output { data, .. } = &e {
                        lines += data.iter().filter(|b| **b == b'\n').count();
                        progress_tx.send_replace(lines);
                    }
                    events.push(e);
                }
                events
            };
            let (cancel, task) = (Cancel::new(), counting(60));
            let (result, events) = tokio::join!(t.run(&target, &task, tx, &cancel), collect);
            CollectedRun { result, events }
        })
    };
    wait_lines(&mut progress, 5).await;
    rig.server.stop();
    tokio::time::sleep(Duration::from_millis(500)).await; // the script keeps printing
    rig.server.start_again().expect("restart nats-server");
    let run = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("the run ends")
        .expect("run task");
    assert_eq!(assert_gap_free_stdout(&run), expected_lines(60));
    assert!(run.result.expect("the run completes").is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_takes_new_tasks_after_a_nats_restart_and_runs_each_once() {
    // The agent's task consumer keeps its state in the server's memory: after a restart
    // the agent must still receive tasks, and only new ones.
    let Some(mut rig) = Rig::start("restart-agent").await else {
        return;
    };
    let t = NatsTransport::connect(common::config(&rig.server.url()))
        .await
        .expect("control side");
    let marker = std::path::Path::new(&rig.scratch_dir()).join("runs");
    let appending = |word: &str| {
        TaskSpec::bash(format!(
            "echo {word}; echo {word} >> '{}'",
            marker.display()
        ))
    };
    let first = t
        .run_collected(&rig.target(), &appending("before"), &Cancel::new())
        .await;
    assert_eq!(first.output(OutputStream::Stdout), b"before\n");

    rig.server.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    rig.server.start_again().expect("restart nats-server");
    common::wait_online(&t, "restart-agent").await;

    let after = tokio::time::timeout(
        Duration::from_secs(60),
        t.run_collected(&rig.target(), &appending("after"), &Cancel::new()),
    )
    .await
    .expect("the task after the restart ends");
    assert_eq!(after.output(OutputStream::Stdout), b"after\n");
    let outcome = after.outcome();
    assert!(outcome.error.is_none(), "{outcome:?}");
    // The task acknowledged before the restart did not come back.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let runs = std::fs::read_to_string(&marker).expect("marker file");
    assert_eq!(runs, "before\nafter\n");
}

/// Runs `task` through [`Transport::run`] on a background task, collecting stdout lines
/// into `progress`.
fn run_in_background(
    t: NatsTransport,
    target: job_core::transport::HostTarget,
    task: TaskSpec,
    progress: tokio::sync::watch::Sender<usize>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let (tx, mut rx) = mpsc::channel(64);
        let count = async move {
            let mut lines = 0;
            while let Some(e) = rx.recv().await {
                if let TransportEvent::Output { data, .. } = &e {
                    lines += data.iter().filter(|b| **b == b'\n').count();
                    progress.send_replace(lines);
                }
            }
        };
        let cancel = Cancel::new();
        let _ = tokio::join!(t.run(&target, &task, tx, &cancel), count);
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_resumed_by_its_key_on_a_new_control_side_replays_every_line_once() {
    let Some(rig) = Rig::start("resumed-agent").await else {
        return;
    };
    let task = counting(40).with_run_key("exec-1234-0");
    let first = common::transport(&rig.server.url()).await;
    let (progress_tx, mut progress) = tokio::sync::watch::channel(0);
    let running = run_in_background(first.clone(), rig.target(), task.clone(), progress_tx);
    wait_lines(&mut progress, 5).await;
    // The control side goes away mid-run: nothing of it is left.
    running.abort();
    let _ = running.await;
    drop(first);

    let second = common::transport(&rig.server.url()).await;
    let target = rig.target();
    let (tx, rx) = mpsc::channel(64);
    let cancel = Cancel::new();
    let (result, events) = tokio::join!(second.resume(&target, &task, tx, &cancel), collect(rx));
    let run = CollectedRun { result, events };
    assert_eq!(assert_gap_free_stdout(&run), expected_lines(40));
    let outcome = run.result.expect("the run completes");
    assert!(outcome.is_success(), "{outcome:?}");
    // The script ran once: the agent's ledger knows this one task only, and it is done
    // (the agent marks it done just after its result is stored: wait for that).
    let ledger = || -> Vec<String> {
        std::fs::read_dir(rig.work_dir().join("tasks"))
            .expect("the ledger")
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let until = std::time::Instant::now() + Duration::from_secs(10);
    let mut names = ledger();
    while !names.iter().any(|n| n.ends_with(".done")) && std::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
        names = ledger();
    }
    let mut ids: Vec<&str> = names.iter().filter_map(|n| n.split('.').next()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 1, "{names:?}");
    assert!(names.iter().any(|n| n.ends_with(".done")), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_can_be_cancelled_and_a_key_never_started_gives_up() {
    let Some(rig) = Rig::start("resumed-cancel-agent").await else {
        return;
    };
    let task = counting(2000).with_run_key("exec-5678-0");
    let first = common::transport(&rig.server.url()).await;
    let (progress_tx, mut progress) = tokio::sync::watch::channel(0);
    let running = run_in_background(first.clone(), rig.target(), task.clone(), progress_tx);
    wait_lines(&mut progress, 3).await;
    running.abort();
    let _ = running.await;

    let second = common::transport(&rig.server.url()).await;
    let target = rig.target();
    let (tx, rx) = mpsc::channel(64);
    let cancel = Cancel::new();
    let stopper = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            cancel.cancel();
        })
    };
    let (result, _) = tokio::time::timeout(
        Duration::from_secs(30),
        futures_join(second.resume(&target, &task, tx, &cancel), collect(rx)),
    )
    .await
    .expect("a cancelled resume ends");
    stopper.await.unwrap();
    let outcome = result.expect("the run ends");
    assert_eq!(outcome.outcome, HostOutcome::Cancelled, "{outcome:?}");

    // A key that was never started: no result ever comes; the follower gives up after the
    // time left and says so, without running anything.
    let never = counting(1)
        .with_run_key("exec-never-0")
        .with_timeout(Duration::from_secs(1));
    let (tx, rx) = mpsc::channel(64);
    let (result, events) = tokio::time::timeout(
        Duration::from_secs(60),
        futures_join(
            second.resume(&target, &never, tx, &Cancel::new()),
            collect(rx),
        ),
    )
    .await
    .expect("the follower gives up");
    assert!(events.is_empty(), "{events:?}");
    match result {
        Err(TransportError::Failed { reason, .. }) => {
            assert!(reason.contains("no result"), "{reason}");
        }
        other => panic!("expected no result: {other:?}"),
    }
}

async fn collect(mut rx: mpsc::Receiver<TransportEvent>) -> Vec<TransportEvent> {
    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    events
}

async fn futures_join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    tokio::join!(a, b)
}
