//! The floor under the fan-out benchmark: what running something over an already open SSH
//! connection costs on this machine, with no engine, no store and no wrapper program.
//!
//! ```text
//! cargo run --release -p job-transport-ssh --example exec_floor -- 500
//! ```
//!
//! Starts the test sshd (needs root, like the benchmark), opens one connection to each of
//! N loopback addresses with a bare russh client, then runs each command below on all N at
//! once, three rounds, printing the wall time and the CPU the whole machine spent (busy
//! time from `/proc/stat`, so other work on the machine counts too: run it quiet). The
//! steps add one piece at a time what a real run needs: a session (`true`), `/bin/sh`
//! re-exec'd whatever the login shell is, `bash`, and `bash` in its own process group
//! (fork + `setsid`), which is the floor of a run that can be killed as a group.

// An example's output is its product; its set-up may panic.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use job_testsupport::{Sshd, TEST_USER};
use russh::ChannelMsg;
use russh::client;
use russh::keys::{PrivateKeyWithHashAlg, decode_secret_key};

/// Accepts the test sshd's host key (it was generated a moment ago by the harness).
struct TrustTheHarness;

impl client::Handler for TrustTheHarness {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

type Handle = client::Handle<TrustTheHarness>;

fn address(i: usize) -> String {
    format!("127.0.{}.{}", 1 + i / 250, 1 + i % 250)
}

/// Busy CPU seconds of the whole machine so far.
fn machine_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    // user, nice, system, irq, softirq (idle and iowait left out).
    [0, 1, 2, 5, 6]
        .iter()
        .map(|i| ticks.get(*i).copied().unwrap_or(0.0))
        .sum::<f64>()
        / 100.0
}

async fn exec(h: &Handle, command: &str) -> Option<u32> {
    let mut ch = h.channel_open_session().await.ok()?;
    ch.exec(true, command).await.ok()?;
    ch.eof().await.ok()?;
    let mut code = None;
    while let Some(msg) = ch.wait().await {
        match msg {
            ChannelMsg::ExitStatus { exit_status } => code = Some(exit_status),
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    code
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sshd =
        Sshd::start_on_all_loopback_addresses("MaxStartups 10000:30:20000\nMaxSessions 10000")
            .expect("the sshd harness starts (run as root with openssh-server installed)");
    let port = sshd.port();
    let key = Arc::new(decode_secret_key(&sshd.keys().ed25519, None).unwrap());
    rt.block_on(async {
        let handshakes = Arc::new(tokio::sync::Semaphore::new(32));
        let mut set = tokio::task::JoinSet::new();
        let (t0, c0) = (Instant::now(), machine_cpu());
        for i in 0..n {
            let (key, handshakes) = (key.clone(), handshakes.clone());
            set.spawn(async move {
                let _slot = handshakes.acquire().await.unwrap();
                let config = Arc::new(client::Config {
                    nodelay: true,
                    ..Default::default()
                });
                let mut h = client::connect(config, (address(i), port), TrustTheHarness)
                    .await
                    .unwrap();
                let auth = h
                    .authenticate_publickey(TEST_USER, PrivateKeyWithHashAlg::new(key, None))
                    .await
                    .unwrap();
                assert!(auth.success());
                (i, h)
            });
        }
        let mut handles = Vec::new();
        while let Some(done) = set.join_next().await {
            handles.push(done.unwrap());
        }
        handles.sort_by_key(|(i, _)| *i);
        let handles: Vec<Handle> = handles.into_iter().map(|(_, h)| h).collect();
        println!(
            "connect + authenticate {n} hosts (32 at a time): {:.2} s, {:.2} s machine CPU = {:.1} ms a host",
            t0.elapsed().as_secs_f64(),
            machine_cpu() - c0,
            (machine_cpu() - c0) * 1000.0 / n as f64
        );
        let handles = Arc::new(handles);
        let steps = [
            ("session: true", "true"),
            ("+ /bin/sh re-exec", "exec /bin/sh -c 'true'"),
            ("+ bash", "exec /bin/sh -c 'exec bash -c \"echo hi\"'"),
            (
                "+ own process group",
                "exec /bin/sh -c '{ exec setsid bash -c \"echo hi\"; } </dev/null & wait $!'",
            ),
        ];
        println!("| step ({n} hosts at once) | wall (3 rounds) | machine CPU a host |");
        println!("|---|---|---|");
        for (name, command) in steps {
            let mut walls = Vec::new();
            let mut cpus = Vec::new();
            for _ in 0..3 {
                let (t0, c0) = (Instant::now(), machine_cpu());
                let mut set = tokio::task::JoinSet::new();
                for i in 0..n {
                    let handles = handles.clone();
                    set.spawn(async move { exec(&handles[i], command).await });
                }
                let mut failed = 0;
                while let Some(code) = set.join_next().await {
                    if code.ok().flatten() != Some(0) {
                        failed += 1;
                    }
                }
                assert_eq!(failed, 0, "{name}: {failed} hosts failed");
                walls.push(format!("{:.2}", t0.elapsed().as_secs_f64()));
                cpus.push(format!("{:.1}", (machine_cpu() - c0) * 1000.0 / n as f64));
            }
            println!(
                "| {name} | {} s | {} ms |",
                walls.join(" / "),
                cpus.join(" / ")
            );
        }
    });
}
