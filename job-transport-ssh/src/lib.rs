//! Agentless targets over SSH (russh): run scripts, push and pull files.
//!
//! - Key (ed25519, RSA, ECDSA) and password authentication; secrets stay in memory.
//! - Host keys verified against a known_hosts file; trust-on-first-use only when chosen
//!   ([`HostKeyPolicy::TrustOnFirstUse`]); never silently off.
//! - Scripts, environment and paths travel over stdin, never on the command line.
//! - Each script runs in its own session and process group on the target; cancel and timeout
//!   kill that whole group (TERM, then KILL).
//! - Files are written to a temporary name, verified by sha256 and renamed into place.
//! - [`SshPool`] keeps one connection per target and user, reused across runs and closed
//!   after an idle time.

mod auth;
mod connection;
mod host_key;
mod pool;
mod remote;
mod resident;
mod runner;
mod transport;

pub use auth::SshAuth;
pub use connection::{
    Endpoint, OutputPiece, PushOutcome, RemoteScript, RunEnd, SshConnection, SshOptions,
};
pub use host_key::HostKeyPolicy;
pub use pool::SshPool;
pub use transport::SshTransport;

/// What can go wrong talking to a target over SSH, told apart for the operator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SshError {
    /// The target could not be reached (refused, no route, handshake timeout).
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The target refused our credential.
    #[error("authentication failed: {0}")]
    AuthFailed(String),
    /// The host key differs from the recorded one: possibly a machine in the middle.
    #[error("host key mismatch: {0}")]
    HostKeyMismatch(String),
    /// The host key is not recorded and trust-on-first-use is off.
    #[error("unknown host key: {0}")]
    HostKeyUnknown(String),
    /// A transferred file's checksum did not match.
    #[error("checksum mismatch: expected {expected}, got {actual}")]
    ChecksumMismatch {
        /// The digest that was expected.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },
    /// The file does not exist on the target.
    #[error("{0}: no such file")]
    NotFound(String),
    /// The file is larger than allowed.
    #[error("{0} is larger than the limit")]
    TooLarge(String),
    /// The remote side reported an error.
    #[error("remote error: {0}")]
    Remote(String),
    /// The request itself is not valid.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The SSH connection failed mid-way.
    #[error("ssh protocol error: {0}")]
    Protocol(String),
}
