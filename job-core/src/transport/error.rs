//! Why a transport could not do what was asked, named by meaning.

use std::time::Duration;

use crate::BoxError;
use crate::status::HostOutcome;
use crate::values::Sha256Hex;

/// Every way a transport operation can fail or end early.
///
/// The variants tell apart what an operator must act on differently: a host that cannot be
/// reached, a credential that is refused, a host key that changed, a run that timed out or
/// was cancelled, a script that failed. [`TransportError::code`] is the stable name used in
/// host run records and the APIs; [`TransportError::host_outcome`] is the final host
/// status it leads to.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The host could not be reached (connection refused, no route, connect timeout, the
    /// agent is offline).
    #[error("unreachable: {reason}")]
    Unreachable {
        /// What failed, for people.
        reason: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// The host refused the credential.
    #[error("authentication failed: {reason}")]
    AuthenticationFailed {
        /// What was refused, for people (never the secret).
        reason: String,
    },
    /// The host's key differs from the one on record, or there is no record and
    /// trust-on-first-use is off.
    #[error("host key mismatch: {reason}")]
    HostKeyMismatch {
        /// Which key was presented and which was expected.
        reason: String,
    },
    /// The run's timeout passed; its processes were killed.
    #[error("timed out after {after:?}")]
    Timeout {
        /// The timeout that passed.
        after: Duration,
    },
    /// The run was cancelled; its processes were killed.
    #[error("cancelled")]
    Cancelled,
    /// The script exited with a non-zero code.
    #[error("exited with code {code}")]
    NonZeroExit {
        /// The exit code.
        code: i32,
    },
    /// The script was killed by a signal that the transport did not send.
    #[error("killed by signal {signal}")]
    Killed {
        /// The signal number.
        signal: i32,
    },
    /// What landed on the target does not have the expected sha256; nothing was written
    /// at the destination.
    #[error("checksum mismatch for {path}: expected {}, got {}", expected.as_str(), actual.as_str())]
    ChecksumMismatch {
        /// The destination path.
        path: String,
        /// The digest that was expected.
        expected: Sha256Hex,
        /// The digest of what was written.
        actual: Sha256Hex,
    },
    /// A file or directory the operation needs does not exist on the target.
    #[error("{path}: no such file or directory")]
    NotFound {
        /// The missing path.
        path: String,
    },
    /// A pulled file is larger than the limit.
    #[error("{path} is larger than {limit} bytes")]
    TooLarge {
        /// The file.
        path: String,
        /// The limit it exceeds.
        limit: u64,
    },
    /// This transport cannot do what was asked: a target it does not serve, an
    /// interpreter that is not installed, a feature it lacks.
    #[error("unsupported: {reason}")]
    Unsupported {
        /// What is not supported.
        reason: String,
    },
    /// A task or file spec is malformed.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The spec field.
        field: String,
        /// Why it was refused.
        reason: String,
    },
    /// Anything else: an I/O error on the target, a lost connection, a protocol error.
    #[error("{reason}")]
    Failed {
        /// What failed, for people.
        reason: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
}

impl TransportError {
    /// An [`TransportError::Unreachable`] with the error that caused it.
    pub fn unreachable(reason: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Unreachable {
            reason: reason.into(),
            source: Some(source.into()),
        }
    }

    /// A [`TransportError::Failed`] with the error that caused it.
    pub fn failed(reason: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Failed {
            reason: reason.into(),
            source: Some(source.into()),
        }
    }

    /// An [`TransportError::Invalid`] for `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// An [`TransportError::Unsupported`] with its reason.
    pub fn unsupported(reason: impl Into<String>) -> Self {
        Self::Unsupported {
            reason: reason.into(),
        }
    }

    /// A stable machine-readable name for the variant, kept in host run records.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "unreachable",
            Self::AuthenticationFailed { .. } => "authentication_failed",
            Self::HostKeyMismatch { .. } => "host_key_mismatch",
            Self::Timeout { .. } => "timeout",
            Self::Cancelled => "cancelled",
            Self::NonZeroExit { .. } => "non_zero_exit",
            Self::Killed { .. } => "killed",
            Self::ChecksumMismatch { .. } => "checksum_mismatch",
            Self::NotFound { .. } => "not_found",
            Self::TooLarge { .. } => "too_large",
            Self::Unsupported { .. } => "unsupported",
            Self::Invalid { .. } => "invalid",
            Self::Failed { .. } => "failed",
        }
    }

    /// The final host status this error leads to: `timeout` for a timeout, `cancelled` for
    /// a cancel, `failed` for everything else.
    pub fn host_outcome(&self) -> HostOutcome {
        match self {
            Self::Timeout { .. } => HostOutcome::Timeout,
            Self::Cancelled => HostOutcome::Cancelled,
            _ => HostOutcome::Failed,
        }
    }
}

impl From<TransportError> for crate::Error {
    /// Spec errors stay [`crate::Error::Invalid`], a missing file stays
    /// [`crate::Error::NotFound`]; everything else is [`crate::Error::Unavailable`] with the
    /// transport error as its source.
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::Invalid { field, reason } => Self::Invalid { field, reason },
            TransportError::NotFound { path } => Self::NotFound { what: path },
            other => Self::Unavailable {
                reason: other.to_string(),
                source: Some(Box::new(other)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_timeout_and_cancel_lead_to_their_own_host_outcome() {
        assert_eq!(
            TransportError::Timeout {
                after: Duration::from_secs(1)
            }
            .host_outcome(),
            HostOutcome::Timeout
        );
        assert_eq!(
            TransportError::Cancelled.host_outcome(),
            HostOutcome::Cancelled
        );
        for e in [
            TransportError::NonZeroExit { code: 2 },
            TransportError::AuthenticationFailed {
                reason: "password refused".into(),
            },
            TransportError::unreachable("connect to 10.0.0.1:22", std::io::Error::other("x")),
        ] {
            assert_eq!(e.host_outcome(), HostOutcome::Failed, "{e}");
        }
    }

    #[test]
    fn a_transport_error_becomes_a_core_error_by_meaning() {
        let e: crate::Error = TransportError::NotFound {
            path: "/etc/x".into(),
        }
        .into();
        assert_eq!(e.code(), "not_found");
        let e: crate::Error = TransportError::HostKeyMismatch {
            reason: "ed25519 key changed".into(),
        }
        .into();
        assert_eq!(e.code(), "unavailable");
        assert!(e.to_string().contains("host key mismatch"), "{e}");
    }
}
