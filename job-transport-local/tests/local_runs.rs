//! What is particular to running on the control node: interpreters, the scrubbed
//! environment, the private script file, and refusing targets it cannot reach.

use job_core::model::OutputStream;
use job_core::status::HostOutcome;
use job_core::transport::{
    Cancel, HostAccess, HostTarget, PullSpec, PushSource, PushSpec, TaskSpec, Transport,
    TransportError, TransportExt,
};
use job_transport_local::LocalTransport;

fn installed(program: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

async fn stdout_of(task: TaskSpec) -> (String, HostOutcome) {
    let run = LocalTransport::new()
        .run_collected(&HostTarget::local(), &task, &Cancel::new())
        .await;
    let stdout = String::from_utf8_lossy(&run.output(OutputStream::Stdout)).into_owned();
    (stdout, run.outcome().outcome)
}

#[tokio::test]
async fn python_scripts_run_with_python3() {
    if !installed("python3") {
        eprintln!("notice: python3 is not installed; skipping");
        return;
    }
    let (stdout, outcome) = stdout_of(
        TaskSpec::python3("import sys\nprint('py', sys.version_info[0], sys.argv[1:])")
            .with_script_args(["x"]),
    )
    .await;
    assert_eq!(outcome, HostOutcome::Success);
    assert_eq!(stdout, "py 3 ['x']\n");
}

#[tokio::test]
async fn powershell_scripts_run_with_pwsh_when_it_is_installed() {
    if !installed("pwsh") {
        eprintln!("notice: pwsh is not installed; skipping");
        return;
    }
    let (stdout, outcome) = stdout_of(TaskSpec::pwsh("Write-Output 'ps-ok'")).await;
    assert_eq!(outcome, HostOutcome::Success);
    assert_eq!(stdout.trim(), "ps-ok");
}

#[tokio::test]
async fn a_missing_interpreter_is_reported_as_unsupported() {
    let result = LocalTransport::new()
        .run_collected(
            &HostTarget::local(),
            &TaskSpec::new("jobd-no-such-interpreter", "echo hi"),
            &Cancel::new(),
        )
        .await
        .result;
    assert!(
        matches!(&result, Err(TransportError::Unsupported { reason }) if reason.contains("jobd-no-such-interpreter")),
        "{result:?}"
    );
}

#[tokio::test]
async fn the_control_nodes_environment_does_not_reach_scripts() {
    // cargo runs tests with CARGO_* variables set; none of them may leak into a run.
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    let (stdout, outcome) = stdout_of(TaskSpec::bash("env").with_env("JOB_OWN", "1")).await;
    assert_eq!(outcome, HostOutcome::Success);
    let names: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_once('=').map(|(n, _)| n))
        .collect();
    assert!(names.contains(&"PATH"), "{names:?}");
    assert!(names.contains(&"JOB_OWN"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("CARGO")),
        "leaked: {names:?}"
    );
}

#[tokio::test]
async fn the_script_file_is_private_to_the_run_user() {
    let (stdout, outcome) =
        stdout_of(TaskSpec::bash("stat -c %a \"$0\" \"$(dirname \"$0\")\"")).await;
    assert_eq!(outcome, HostOutcome::Success);
    assert_eq!(stdout, "600\n700\n");
}

#[tokio::test]
async fn targets_other_than_the_control_node_are_refused() {
    let t = LocalTransport::new();
    let agent = HostTarget {
        name: "web-1".into(),
        os: job_core::model::Os::Linux,
        access: HostAccess::Agent {
            agent_id: "web-1".into(),
        },
    };
    let run = t
        .run_collected(&agent, &TaskSpec::bash("echo hi"), &Cancel::new())
        .await
        .result;
    assert!(
        matches!(run, Err(TransportError::Unsupported { .. })),
        "{run:?}"
    );
    let pushed = t
        .push(
            &agent,
            &PushSpec::new(PushSource::Bytes(b"x".as_slice().into()), "/tmp/x"),
            &Cancel::new(),
        )
        .await;
    assert!(
        matches!(pushed, Err(TransportError::Unsupported { .. })),
        "{pushed:?}"
    );
    let pulled = t
        .pull(&agent, &PullSpec::new("/etc/hostname"), &Cancel::new())
        .await;
    assert!(
        matches!(pulled, Err(TransportError::Unsupported { .. })),
        "{pulled:?}"
    );
}

#[tokio::test]
async fn a_receiver_that_goes_away_does_not_stop_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let done = dir.path().join("done");
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    drop(rx);
    let task = TaskSpec::bash(format!(
        "head -c 1000000 /dev/zero\ntouch '{}'\n",
        done.display()
    ));
    let outcome = LocalTransport::new()
        .run(&HostTarget::local(), &task, tx, &Cancel::new())
        .await
        .expect("run");
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(outcome.output.stdout_bytes, 1_000_000);
    assert!(done.exists(), "the script ran to its end");
}
