//! The SSH transport passes the whole transport conformance suite against a real sshd.

use std::time::Duration;

use job_core::model::{CredentialSecret, Os};
use job_core::testkit::transport::{TestHost, run_all};
use job_core::transport::{HostAccess, HostTarget, SshAccess};
use job_core::values::{Address, Port};
use job_testsupport::{Sshd, TEST_USER, require_service};
use job_transport_ssh::{HostKeyPolicy, SshOptions, SshTransport};

/// With resident runners (the default): every case after the first runs its short shell
/// scripts on the pooled connection's runner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ssh_transport_passes_the_conformance_suite() {
    conformance(true).await;
}

/// Without resident runners: every run in a session of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ssh_transport_passes_the_conformance_suite_without_resident_runners() {
    conformance(false).await;
}

async fn conformance(resident_runner: bool) {
    if !require_service("OpenSSH sshd", Sshd::unavailable()) {
        return;
    }
    let sshd = Sshd::start().expect("the harness sshd starts");
    let mut options = SshOptions::new(HostKeyPolicy::KnownHosts(sshd.known_hosts_file().unwrap()));
    options.kill_grace = Duration::from_millis(500);
    options.resident_runner = resident_runner;
    let transport = SshTransport::new(options, Duration::from_secs(60));

    let scratch = format!(
        "/tmp/jobd-ssh-conformance-{}-{resident_runner}",
        std::process::id()
    );
    std::fs::create_dir_all(&scratch).unwrap();
    std::process::Command::new("chmod")
        .args(["1777", &scratch])
        .status()
        .unwrap();

    let host = TestHost {
        target: HostTarget {
            name: "sshd-harness".into(),
            os: Os::Linux,
            access: HostAccess::Ssh(SshAccess {
                address: Address::parse("address", "127.0.0.1").unwrap(),
                port: Port::new("port", i64::from(sshd.port())).unwrap(),
                user: TEST_USER.into(),
                secret: CredentialSecret::PrivateKey {
                    private_key: sshd.keys().ed25519.clone(),
                    passphrase: None,
                },
            }),
        },
        scratch_dir: scratch.clone(),
    };
    run_all(&transport, &host).await;
    let _ = std::fs::remove_dir_all(&scratch);
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_printing_a_gibibyte_ends_normally_with_flat_memory() {
    use job_core::status::HostOutcome;
    use job_core::transport::{Cancel, TaskSpec, TransportExt};

    if !require_service("OpenSSH sshd", Sshd::unavailable()) {
        return;
    }
    let sshd = Sshd::start().expect("the harness sshd starts");
    let options = SshOptions::new(HostKeyPolicy::KnownHosts(sshd.known_hosts_file().unwrap()));
    let transport = SshTransport::new(options, Duration::from_secs(60));
    let target = HostTarget {
        name: "sshd-harness".into(),
        os: Os::Linux,
        access: HostAccess::Ssh(SshAccess {
            address: Address::parse("address", "127.0.0.1").unwrap(),
            port: Port::new("port", i64::from(sshd.port())).unwrap(),
            user: TEST_USER.into(),
            secret: CredentialSecret::PrivateKey {
                private_key: sshd.keys().ed25519.clone(),
                passphrase: None,
            },
        }),
    };
    let before = peak_rss_kib();
    let task = TaskSpec::bash("head -c 1073741824 /dev/zero; echo done >&2")
        .with_timeout(Duration::from_secs(600))
        .with_output_limit(1024 * 1024);
    // The first run has a session of its own; the second runs on the pooled connection's
    // resident runner.
    for _ in 0..2 {
        let run = transport
            .run_collected(&target, &task, &Cancel::new())
            .await;
        let stderr = String::from_utf8_lossy(&run.output(job_core::model::OutputStream::Stderr))
            .into_owned();
        let sent: usize = run.output(job_core::model::OutputStream::Stdout).len();
        let outcome = run.outcome();
        assert_eq!(outcome.outcome, HostOutcome::Success, "{outcome:?}");
        assert_eq!(
            outcome.output.stdout_bytes,
            1 << 30,
            "every byte is counted"
        );
        assert!(outcome.output.truncated);
        assert_eq!(sent, 1024 * 1024, "only the limit is sent on");
        assert_eq!(stderr, "done\n");
    }
    let grown_mib = (peak_rss_kib().saturating_sub(before)) / 1024;
    assert!(
        grown_mib < 64,
        "peak memory grew by {grown_mib} MiB for 1 GiB of output"
    );
}
