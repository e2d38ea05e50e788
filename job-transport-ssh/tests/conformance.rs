//! The SSH transport passes the whole transport conformance suite against a real sshd.

use std::time::Duration;

use job_core::model::{CredentialSecret, Os};
use job_core::testkit::transport::{TestHost, run_all};
use job_core::transport::{HostAccess, HostTarget, SshAccess};
use job_core::values::{Address, Port};
use job_testsupport::{Sshd, TEST_USER, require_service};
use job_transport_ssh::{HostKeyPolicy, SshOptions, SshTransport};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ssh_transport_passes_the_conformance_suite() {
    if !require_service("OpenSSH sshd", Sshd::unavailable()) {
        return;
    }
    let sshd = Sshd::start().expect("the harness sshd starts");
    let mut options = SshOptions::new(HostKeyPolicy::KnownHosts(sshd.known_hosts_file().unwrap()));
    options.kill_grace = Duration::from_millis(500);
    let transport = SshTransport::new(options, Duration::from_secs(60));

    let scratch = format!("/tmp/jobd-ssh-conformance-{}", std::process::id());
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
