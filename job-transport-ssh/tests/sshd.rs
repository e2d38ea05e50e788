//! The SSH transport against a real OpenSSH sshd on loopback.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use job_core::model::OutputStream;
use job_testsupport::{Sshd, TEST_PASSWORD, TEST_USER, require_service};
use job_transport_ssh::{
    Endpoint, HostKeyPolicy, OutputPiece, PushOutcome, RemoteScript, RunEnd, SshAuth,
    SshConnection, SshError, SshOptions, SshPool,
};
use tokio::sync::{mpsc, oneshot};

fn sshd() -> Option<Sshd> {
    if !require_service("OpenSSH sshd", Sshd::unavailable()) {
        return None;
    }
    Some(Sshd::start().expect("the harness sshd starts"))
}

fn endpoint(s: &Sshd) -> Endpoint {
    Endpoint {
        host: "127.0.0.1".into(),
        port: s.port(),
        user: TEST_USER.into(),
    }
}

fn options(s: &Sshd) -> SshOptions {
    let mut o = SshOptions::new(HostKeyPolicy::KnownHosts(s.known_hosts_file().unwrap()));
    o.kill_grace = Duration::from_millis(500);
    o
}

fn key(s: &Sshd) -> SshAuth {
    SshAuth::PrivateKey {
        pem: s.keys().ed25519.clone(),
        passphrase: None,
    }
}

async fn connect(s: &Sshd) -> SshConnection {
    SshConnection::connect(endpoint(s), &key(s), options(s))
        .await
        .unwrap()
}

/// A connection without resident runners: every run gets its own SSH session.
async fn connect_without_runner(s: &Sshd) -> SshConnection {
    let mut o = options(s);
    o.resident_runner = false;
    SshConnection::connect(endpoint(s), &key(s), o)
        .await
        .unwrap()
}

fn script<'a>(body: &'a str, env: &'a [(String, String)]) -> RemoteScript<'a> {
    RemoteScript {
        interpreter: "bash",
        args: &[],
        body: body.as_bytes(),
        extension: "sh",
        script_args: &[],
        env,
        workdir: None,
        timeout: Duration::from_secs(30),
    }
}

/// Runs `s` and returns (end, stdout, stderr).
async fn run(c: &SshConnection, s: &RemoteScript<'_>) -> (RunEnd, String, String) {
    run_until(c, s, std::future::pending()).await
}

async fn run_until(
    c: &SshConnection,
    s: &RemoteScript<'_>,
    cancel: impl Future<Output = ()>,
) -> (RunEnd, String, String) {
    let (tx, mut rx) = mpsc::channel::<OutputPiece>(64);
    let collect = tokio::spawn(async move {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some(p) = rx.recv().await {
            match p.stream {
                OutputStream::Stdout => out.extend(p.data),
                _ => err.extend(p.data),
            }
        }
        (
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    });
    let end = c.run(s, &tx, cancel).await.unwrap();
    drop(tx);
    let (out, err) = collect.await.unwrap();
    (end, out, err)
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
}

fn scratch(name: &str) -> String {
    let dir = format!("/tmp/jobd-ssh-test-{}", std::process::id());
    std::fs::create_dir_all(&dir).unwrap();
    std::process::Command::new("chmod")
        .args(["1777", &dir])
        .status()
        .unwrap();
    format!("{dir}/{name}")
}

#[tokio::test]
async fn key_authentication_works_with_ed25519_rsa_and_ecdsa() {
    let Some(s) = sshd() else { return };
    for pem in [&s.keys().ed25519, &s.keys().rsa, &s.keys().ecdsa] {
        let auth = SshAuth::PrivateKey {
            pem: pem.clone(),
            passphrase: None,
        };
        let c = SshConnection::connect(endpoint(&s), &auth, options(&s))
            .await
            .unwrap();
        let (end, out, _) = run(&c, &script("id -un", &[])).await;
        assert_eq!((end, out.trim()), (RunEnd::Exited(0), TEST_USER));
    }
}

#[tokio::test]
async fn password_authentication_works_and_a_wrong_password_is_refused() {
    let Some(s) = sshd() else { return };
    let ok = SshConnection::connect(
        endpoint(&s),
        &SshAuth::Password(TEST_PASSWORD.into()),
        options(&s),
    )
    .await;
    assert!(ok.is_ok(), "{ok:?}");
    let bad = SshConnection::connect(
        endpoint(&s),
        &SshAuth::Password("wrong".into()),
        options(&s),
    )
    .await;
    assert!(matches!(bad, Err(SshError::AuthFailed(_))), "{bad:?}");
    let stranger = SshAuth::PrivateKey {
        pem: s.keys().stranger.clone(),
        passphrase: None,
    };
    let bad = SshConnection::connect(endpoint(&s), &stranger, options(&s)).await;
    assert!(matches!(bad, Err(SshError::AuthFailed(_))), "{bad:?}");
}

#[tokio::test]
async fn an_unknown_host_key_is_refused_unless_trust_on_first_use_is_chosen() {
    let Some(s) = sshd() else { return };
    let empty = s.dir().join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    let strict = SshOptions::new(HostKeyPolicy::KnownHosts(empty.clone()));
    let r = SshConnection::connect(endpoint(&s), &key(&s), strict).await;
    assert!(matches!(r, Err(SshError::HostKeyUnknown(_))), "{r:?}");

    let tofu = SshOptions::new(HostKeyPolicy::TrustOnFirstUse(empty.clone()));
    SshConnection::connect(endpoint(&s), &key(&s), tofu)
        .await
        .unwrap();
    let learned = std::fs::read_to_string(&empty).unwrap();
    assert!(
        learned.contains(&format!("[127.0.0.1]:{}", s.port())),
        "{learned}"
    );
    // Once learned, the strict policy accepts it.
    let strict = SshOptions::new(HostKeyPolicy::KnownHosts(empty));
    SshConnection::connect(endpoint(&s), &key(&s), strict)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_changed_host_key_is_refused_even_with_trust_on_first_use() {
    let Some(a) = sshd() else { return };
    let b = Sshd::start().unwrap();
    // Record a's key under b's address: b's real key then looks changed.
    let kh = a.dir().join("poisoned_known_hosts");
    let mut parts = a.host_public_key().split_whitespace();
    let (alg, k) = (parts.next().unwrap(), parts.next().unwrap());
    std::fs::write(&kh, format!("[127.0.0.1]:{} {alg} {k}\n", b.port())).unwrap();
    let opts = SshOptions::new(HostKeyPolicy::TrustOnFirstUse(kh));
    let r = SshConnection::connect(endpoint(&b), &key(&b), opts).await;
    assert!(matches!(r, Err(SshError::HostKeyMismatch(_))), "{r:?}");
}

#[tokio::test]
async fn a_refused_connection_is_reported_as_unreachable() {
    let Some(s) = sshd() else { return };
    let port = job_testsupport::free_port().unwrap();
    let ep = Endpoint {
        host: "127.0.0.1".into(),
        port,
        user: TEST_USER.into(),
    };
    let r = SshConnection::connect(ep, &key(&s), options(&s)).await;
    assert!(matches!(r, Err(SshError::Unreachable(_))), "{r:?}");
}

#[tokio::test]
async fn output_streams_separately_and_the_exit_code_propagates() {
    let Some(s) = sshd() else { return };
    let c = connect(&s).await;
    let (end, out, err) = run(&c, &script("echo out; echo err >&2; exit 7", &[])).await;
    assert_eq!(end, RunEnd::Exited(7));
    assert_eq!(out, "out\n");
    assert_eq!(err, "err\n");
}

#[tokio::test]
async fn the_script_arrives_verbatim_and_never_on_the_command_line() {
    let Some(s) = sshd() else { return };
    let c = connect(&s).await;
    let marker = format!("SECRET-{}", std::process::id());
    let body = format!(
        "v='it'\"'\"'s $(not run) `nor this` ünïcødé 🚀 {marker}'\nprintf '%s\\n' \"$v\"\nsleep 1\n"
    );
    let probe = {
        let marker = marker.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let ps = std::process::Command::new("ps")
                .args(["-eo", "args"])
                .output()
                .unwrap();
            String::from_utf8_lossy(&ps.stdout).contains(&marker)
        })
    };
    let (end, out, _) = run(&c, &script(&body, &[])).await;
    assert_eq!(end, RunEnd::Exited(0));
    assert_eq!(
        out,
        format!("it's $(not run) `nor this` ünïcødé 🚀 {marker}\n")
    );
    assert!(
        !probe.await.unwrap(),
        "the script showed up in the process list"
    );
}

#[tokio::test]
async fn environment_and_working_directory_are_honoured() {
    let Some(s) = sshd() else { return };
    let c = connect(&s).await;
    let env = vec![("GREETING".to_owned(), "hello 'world' $HOME".to_owned())];
    let mut sc = script("printf '%s|%s\\n' \"$GREETING\" \"$PWD\"", &env);
    sc.workdir = Some("/tmp");
    let (end, out, _) = run(&c, &sc).await;
    assert_eq!(end, RunEnd::Exited(0));
    assert_eq!(out, "hello 'world' $HOME|/tmp\n");
}

async fn assert_group_killed(kind: &str, runner: bool) {
    let Some(s) = sshd() else { return };
    let c = if runner {
        connect(&s).await
    } else {
        connect_without_runner(&s).await
    };
    let pids = scratch(&format!("pids-{kind}-{runner}"));
    let body = format!("echo $$ > {pids}; sleep 300 & echo $! >> {pids}; wait");
    let mut sc = script(&body, &[]);
    let (cancel_tx, cancel_rx) = oneshot::channel::<()>();
    if kind == "timeout" {
        sc.timeout = Duration::from_secs(1);
    } else {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = cancel_tx.send(());
        });
    }
    let cancel = async move {
        if kind == "timeout" {
            std::future::pending::<()>().await
        } else {
            let _ = cancel_rx.await;
        }
    };
    let (end, _, _) = run_until(&c, &sc, cancel).await;
    let want = if kind == "timeout" {
        RunEnd::TimedOut
    } else {
        RunEnd::Cancelled
    };
    assert_eq!(end, want);
    let text = std::fs::read_to_string(&pids).unwrap();
    let pids: Vec<u32> = text.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(pids.len(), 2, "{text}");
    // The kill is confirmed before run returns; allow the kernel a moment to reap.
    for _ in 0..50 {
        if pids.iter().all(|p| !pid_alive(*p)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for p in pids {
        assert!(!pid_alive(p), "process {p} survived the {kind}");
    }
}

#[tokio::test]
async fn cancel_kills_the_remote_process_group_of_a_run_in_its_own_session() {
    assert_group_killed("cancel", false).await;
}

#[tokio::test]
async fn cancel_kills_the_remote_process_group_of_a_run_on_a_resident_runner() {
    assert_group_killed("cancel", true).await;
}

#[tokio::test]
async fn timeout_kills_the_remote_process_group_of_a_run_on_a_resident_runner() {
    assert_group_killed("timeout", true).await;
}

#[tokio::test]
async fn timeout_kills_the_remote_process_group_of_a_run_in_its_own_session() {
    assert_group_killed("timeout", false).await;
}

#[tokio::test]
async fn a_script_that_forks_a_daemon_and_exits_ends_its_run() {
    let Some(s) = sshd() else { return };
    let c = connect(&s).await;
    let pidfile = scratch("daemon-pid");
    let body = format!("sleep 300 & echo $! > {pidfile}; echo started");
    let (end, out, _) = tokio::time::timeout(Duration::from_secs(15), run(&c, &script(&body, &[])))
        .await
        .expect("the run ends although a background child holds its output");
    assert_eq!((end, out.as_str()), (RunEnd::Exited(0), "started\n"));
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    for _ in 0..50 {
        if !pid_alive(pid) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !pid_alive(pid),
        "the leftover background process was not cleaned up"
    );
}

#[tokio::test]
async fn push_writes_atomically_and_honours_overwrite_and_skip() {
    let Some(s) = sshd() else { return };
    let c = connect(&s).await;
    let dest = scratch("pushed/dir/file.bin");
    let content: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    assert_eq!(
        c.push(&dest, &content, true, 0o644).await.unwrap(),
        PushOutcome::Written
    );
    assert_eq!(std::fs::read(&dest).unwrap(), content);
    assert_eq!(
        c.push(&dest, b"new", false, 0o644).await.unwrap(),
        PushOutcome::Skipped
    );
    assert_eq!(std::fs::read(&dest).unwrap(), content);
    assert_eq!(
        c.push(&dest, b"new", true, 0o600).await.unwrap(),
        PushOutcome::Written
    );
    assert_eq!(std::fs::read(&dest).unwrap(), b"new");
    // No temporary files are left next to it.
    let dir = Path::new(&dest).parent().unwrap();
    let names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(matches!(
        c.push("relative/path", b"x", true, 0o644).await,
        Err(SshError::Invalid(_))
    ));
}

#[tokio::test]
async fn pull_returns_the_bytes_verified_and_refuses_missing_or_oversized_files() {
    let Some(s) = sshd() else { return };
    let c = connect(&s).await;
    let src = scratch("to-pull.txt");
    std::fs::write(&src, "line 1\nünïcødé\0binary\n").unwrap();
    std::process::Command::new("chmod")
        .args(["644", &src])
        .status()
        .unwrap();
    assert_eq!(
        c.pull(&src, 1 << 20).await.unwrap(),
        "line 1\nünïcødé\0binary\n".as_bytes()
    );
    assert!(matches!(
        c.pull(&scratch("missing"), 1024).await,
        Err(SshError::NotFound(_))
    ));
    assert!(matches!(c.pull(&src, 4).await, Err(SshError::TooLarge(_))));
}

#[tokio::test]
async fn the_pool_reuses_one_connection_per_target_and_closes_idle_ones() {
    let Some(s) = sshd() else { return };
    let pool = SshPool::new(options(&s), Duration::from_millis(200));
    let a = pool.get(&endpoint(&s), &key(&s)).await.unwrap();
    let b = pool.get(&endpoint(&s), &key(&s)).await.unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    assert_eq!(pool.open_connections().await, 1);
    drop((a, b));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(pool.close_idle().await, 1);
    assert_eq!(pool.open_connections().await, 0);
}

#[tokio::test]
async fn one_connection_runs_many_scripts_at_once() {
    let Some(s) = sshd() else { return };
    let c = std::sync::Arc::new(connect(&s).await);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let body = format!("echo {i}");
            let (end, out, _) = run(&c, &script(&body, &[])).await;
            (end, out)
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap(), (RunEnd::Exited(0), format!("{i}\n")));
    }
}

#[tokio::test]
async fn a_short_shell_script_is_streamed_to_bash_through_a_pipe_with_an_empty_stdin() {
    let Some(s) = sshd() else { return };
    let c = connect_without_runner(&s).await;
    let env = vec![("GREETING".to_owned(), "hi 'there'\nsecond line".to_owned())];
    let args = ["a b".to_owned(), "c".to_owned()];
    let body = "ps -o args= -p $$\n\
                if read -r line; then echo \"read:$line\"; else echo no-input; fi\n\
                printf '%s|%s|[%s][%s]\\n' \"$GREETING\" \"$PWD\" \"$1\" \"$2\"\n\
                exit 3\n";
    let mut sc = script(body, &env);
    sc.workdir = Some("/tmp");
    sc.script_args = &args;
    let (end, out, err) = run(&c, &sc).await;
    assert_eq!(end, RunEnd::Exited(3), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    let command = lines.first().copied().unwrap_or_default();
    let path = command
        .strip_prefix("bash /proc/")
        .and_then(|rest| rest.strip_suffix("/fd/0 a b c"));
    assert!(
        path.is_some_and(|pid| pid.parse::<u32>().is_ok()),
        "not read from the wrapper's pipe: {out}"
    );
    assert_eq!(
        &lines[1..],
        ["no-input", "hi 'there'", "second line|/tmp|[a b][c]"]
    );
    // /bin/sh reads its script from the pipe the same way.
    let mut sh = sc.clone();
    sh.interpreter = "sh";
    let (end, out, err) = run(&c, &sh).await;
    assert_eq!(end, RunEnd::Exited(3), "{err}");
    assert!(out.starts_with("sh /proc/"), "{out}");
    assert!(
        out.ends_with("no-input\nhi 'there'\nsecond line|/tmp|[a b][c]\n"),
        "{out}"
    );
}

#[tokio::test]
async fn a_script_that_reads_its_own_file_gets_a_real_file_that_is_removed_afterwards() {
    let Some(s) = sshd() else { return };
    let c = connect(&s).await;
    let body = "# a self-reading script\ncat \"$0\"\necho \"path:$0\"\n";
    let (end, out, _) = run(&c, &script(body, &[])).await;
    assert_eq!(end, RunEnd::Exited(0));
    let (copy, path) = out.rsplit_once("path:").unwrap();
    assert_eq!(copy, body, "the script did not see all of itself");
    let path = path.trim();
    assert!(path.starts_with("/tmp/jobd."), "{path}");
    assert!(!Path::new(path).exists(), "{path} was left behind");
}

#[tokio::test]
async fn a_long_shell_script_and_other_interpreters_run_from_a_temporary_file() {
    let Some(s) = sshd() else { return };
    let c = connect(&s).await;
    let padding = "# padding\n".repeat(2000);
    let body = format!("{padding}ps -o args= -p $$\n");
    let (end, out, _) = run(&c, &script(&body, &[])).await;
    assert_eq!(end, RunEnd::Exited(0));
    assert!(
        out.starts_with("bash /tmp/jobd.") && out.trim_end().ends_with("/script.sh"),
        "{out}"
    );
    let mut py = script(
        "import os, sys\nprint(sys.argv[0].endswith('.py'), os.getpid())\n",
        &[],
    );
    py.interpreter = "python3";
    py.extension = "py";
    let (end, out, err) = run(&c, &py).await;
    assert_eq!(end, RunEnd::Exited(0), "{err}");
    assert!(out.starts_with("True "), "{out}");
}

#[tokio::test]
async fn a_pushed_file_gets_its_mode_with_or_without_execute_bits() {
    let Some(s) = sshd() else { return };
    let c = connect(&s).await;
    for (name, mode) in [("plain", 0o644), ("private", 0o600), ("tool", 0o755)] {
        let dest = scratch(&format!("modes/{name}"));
        assert_eq!(
            c.push(&dest, name.as_bytes(), true, mode).await.unwrap(),
            PushOutcome::Written
        );
        let meta = std::fs::metadata(&dest).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o7777, mode, "{name}");
        assert_eq!(std::fs::read(&dest).unwrap(), name.as_bytes());
    }
}

/// The parent of each run's script: the same resident runner for every pooled run, a new
/// wrapper for each run without one.
async fn script_parents(c: &SshConnection, n: usize) -> Vec<String> {
    let mut parents = Vec::new();
    for _ in 0..n {
        let (end, out, err) = run(c, &script("echo $PPID", &[])).await;
        assert_eq!(end, RunEnd::Exited(0), "{err}");
        parents.push(out);
    }
    parents
}

#[tokio::test]
async fn runs_of_short_shell_scripts_share_one_resident_runner() {
    let Some(s) = sshd() else { return };
    let c = connect(&s).await;
    let parents = script_parents(&c, 4).await;
    assert!(parents.windows(2).all(|w| w[0] == w[1]), "{parents:?}");
    let c = connect_without_runner(&s).await;
    let parents = script_parents(&c, 4).await;
    assert!(parents.windows(2).all(|w| w[0] != w[1]), "{parents:?}");
}

#[tokio::test]
async fn a_run_on_a_resident_runner_keeps_every_promise_of_a_run() {
    let Some(s) = sshd() else { return };
    let c = connect(&s).await;
    let env = vec![
        ("GREETING".to_owned(), "hi 'there'\nsecond line".to_owned()),
        ("UTF".to_owned(), "caf\u{e9} \u{1f600}".to_owned()),
    ];
    let args = ["a b".to_owned(), "c".to_owned()];
    // Multi-byte text, a fake marker, stderr without a final newline, and no final newline.
    let body = "if read -r line; then echo \"read:$line\"; else echo no-input; fi\n\
                printf '%s|%s|%s|[%s][%s]\\n' \"$GREETING\" \"$UTF\" \"$PWD\" \"$1\" \"$2\"\n\
                printf '\\036deadbeef end 0\\n\\036'\n\
                printf 'caf\\303\\251 err' >&2\n\
                exit 3";
    let mut sc = script(body, &env);
    sc.workdir = Some("/tmp");
    sc.script_args = &args;
    for _ in 0..2 {
        let (end, out, err) = run(&c, &sc).await;
        assert_eq!(end, RunEnd::Exited(3), "{err}");
        assert_eq!(
            out,
            "no-input\nhi 'there'\nsecond line|caf\u{e9} \u{1f600}|/tmp|[a b][c]\n\u{1e}deadbeef end 0\n\u{1e}"
        );
        assert_eq!(err, "caf\u{e9} err");
    }
    // `/bin/sh` scripts run on the runner too (the same parent as a bash script's), in
    // their own process group.
    let (_, bash_parent, _) = run(&c, &script("echo $PPID", &[])).await;
    let (end, out, err) = run(
        &c,
        &RemoteScript {
            interpreter: "sh",
            ..script("echo $PPID; ps -o pgid= -p $$ | tr -d ' '; echo $$", &[])
        },
    )
    .await;
    assert_eq!(end, RunEnd::Exited(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], bash_parent.trim(), "not on the runner: {out}");
    assert_eq!(
        lines[1], lines[2],
        "the script leads its own process group: {out}"
    );
    // A missing working directory fails the run, and the runner serves the next one.
    let mut missing = script("echo never", &[]);
    missing.workdir = Some("/nonexistent/dir");
    let (end, out, _) = run(&c, &missing).await;
    assert_eq!((end, out.as_str()), (RunEnd::Exited(126), ""));
    let (end, out, _) = run(&c, &script("echo again", &[])).await;
    assert_eq!((end, out.as_str()), (RunEnd::Exited(0), "again\n"));
}

#[tokio::test]
async fn a_background_process_left_on_a_resident_runner_is_killed_with_the_run() {
    let Some(s) = sshd() else { return };
    let c = connect(&s).await;
    for (what, body) in [
        ("holding stdout", "sleep 300 & echo $!"),
        ("redirected", "nohup sleep 300 >/dev/null 2>&1 & echo $!"),
    ] {
        let (end, out, _) =
            tokio::time::timeout(Duration::from_secs(15), run(&c, &script(body, &[])))
                .await
                .expect("the run ends although a background child is left");
        assert_eq!(end, RunEnd::Exited(0), "{what}");
        let pid: u32 = out.trim().parse().unwrap();
        for _ in 0..50 {
            if !pid_alive(pid) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(!pid_alive(pid), "{what}: the leftover process survived");
    }
}

#[tokio::test]
async fn output_of_a_process_that_escaped_its_run_never_reaches_a_later_run() {
    let Some(s) = sshd() else { return };
    let c = connect(&s).await;
    // A new session: out of the run's process group, so the sweep cannot reach it, and it
    // keeps the runner's output open.
    let (end, out, _) = run(
        &c,
        &script(
            "setsid sh -c 'sleep 0.5; echo LATE; echo LATE >&2' & echo first",
            &[],
        ),
    )
    .await;
    assert_eq!((end, out.as_str()), (RunEnd::Exited(0), "first\n"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    for i in 0..3 {
        let (end, out, err) = run(&c, &script("echo next", &[])).await;
        assert_eq!(
            (end, out.as_str(), err.as_str()),
            (RunEnd::Exited(0), "next\n", ""),
            "run {i}"
        );
    }
}

#[tokio::test]
async fn many_runs_at_once_on_one_connection_use_runners_and_sessions_alike() {
    let Some(s) = sshd() else { return };
    let c = std::sync::Arc::new(connect(&s).await);
    for round in 0..2 {
        let mut tasks = Vec::new();
        for i in 0..12 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                let body = format!("sleep 0.2; echo {round}-{i}");
                run(&c, &script(&body, &[])).await
            }));
        }
        for (i, t) in tasks.into_iter().enumerate() {
            let (end, out, err) = t.await.unwrap();
            assert_eq!(
                (end, out),
                (RunEnd::Exited(0), format!("{round}-{i}\n")),
                "{err}"
            );
        }
    }
}
