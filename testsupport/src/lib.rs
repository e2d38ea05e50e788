//! Harnesses for the job platform's own tests (never a runtime dependency).
//!
//! - [`Sshd`]: a real OpenSSH `sshd` on a loopback port, with its own host key, its own
//!   authorized_keys and an unprivileged user whose login shell is `/bin/sh` (no rc files
//!   that skew behaviour or timings).
//! - [`NatsServer`]: a throwaway `nats-server -js` on a loopback port with its own store,
//!   which a test can restart mid-run.
//! - [`require_service`]: the one rule for tests that need an outside service — when it is
//!   missing, the test fails under `CI=true` and is skipped with a notice otherwise.

pub mod nats;
mod sshd;

pub use nats::NatsServer;
pub use sshd::{Sshd, SshdKeys, TEST_PASSWORD, TEST_USER};

/// Whether the tests run in CI (`CI=true`), where a missing service is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Checks that a service a test needs is there. Returns `false` (after printing a notice)
/// when it is missing outside CI, so the test can return early; panics when it is missing
/// in CI.
pub fn require_service(name: &str, available: Result<(), String>) -> bool {
    match available {
        Ok(()) => true,
        Err(why) if in_ci() => panic!("{name} is required when CI=true but is not usable: {why}"),
        Err(why) => {
            eprintln!("notice: skipping, {name} is not usable here: {why}");
            false
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; the race is acceptable for tests).
pub fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}
