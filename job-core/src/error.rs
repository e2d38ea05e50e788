//! The one error type of `job-core`, named by meaning rather than by backend.

use std::fmt;

/// A boxed error from a backend, kept as the `source` of [`Error::Unavailable`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result type used throughout `job-core` and by every backend trait.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every way a use case of the job platform can fail.
///
/// Variants say what went wrong for the caller (an HTTP handler maps them to status codes,
/// the NATS interface to `{"result":false,"message":…}`), never which backend failed: the
/// backend's own error is kept as the `source` of [`Error::Unavailable`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The object does not exist, or exists but belongs to a team the actor cannot see;
    /// the two cases are deliberately indistinguishable.
    #[error("{what} not found")]
    NotFound {
        /// What was looked up, e.g. `"execution 0193…"`.
        what: String,
    },
    /// The request conflicts with the current state (a second cancel, a stale
    /// compare-and-set, a duplicate name).
    #[error("conflict: {reason}")]
    Conflict {
        /// Why the request cannot be applied now.
        reason: String,
    },
    /// The actor is known but may not do this.
    #[error("forbidden: {reason}")]
    Forbidden {
        /// Why the actor may not do this.
        reason: String,
    },
    /// High-risk command or path rules refused the request.
    #[error("refused by high-risk rules: {}", DisplayHits(.hits))]
    PolicyViolation {
        /// Every rule that matched, with its level.
        hits: Vec<PolicyHit>,
    },
    /// A value failed validation.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field, in the wire name the caller used (`timeout`, `targets.ips[2]`, …).
        field: String,
        /// Why the value was refused.
        reason: String,
    },
    /// A backend or remote service could not do its part.
    #[error("unavailable: {reason}")]
    Unavailable {
        /// What was being attempted.
        reason: String,
        /// The backend's own error, if any.
        #[source]
        source: Option<BoxError>,
    },
}

impl Error {
    /// An [`Error::Invalid`] for `field` with `reason`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// An [`Error::NotFound`] naming what was looked up.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    /// An [`Error::Conflict`] with its reason.
    pub fn conflict(reason: impl Into<String>) -> Self {
        Self::Conflict {
            reason: reason.into(),
        }
    }

    /// An [`Error::Forbidden`] with its reason.
    pub fn forbidden(reason: impl Into<String>) -> Self {
        Self::Forbidden {
            reason: reason.into(),
        }
    }

    /// An [`Error::Unavailable`] wrapping a backend error.
    pub fn unavailable(reason: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            reason: reason.into(),
            source: Some(source.into()),
        }
    }

    /// A stable machine-readable code for the variant (`not_found`, `conflict`, …), used by
    /// the HTTP and NATS interfaces.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::Conflict { .. } => "conflict",
            Self::Forbidden { .. } => "forbidden",
            Self::PolicyViolation { .. } => "policy_violation",
            Self::Invalid { .. } => "invalid",
            Self::Unavailable { .. } => "unavailable",
        }
    }
}

/// One high-risk rule that matched a request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PolicyHit {
    /// The rule that matched (`None` for a check that is not a stored rule, such as a
    /// malformed path).
    pub rule_id: Option<crate::ids::RuleId>,
    /// The rule's name or pattern, for people.
    pub rule: String,
    /// The rule's pattern as it was checked (empty in records stored before it was kept).
    #[serde(default)]
    pub pattern: String,
    /// How severe the rule is.
    pub level: crate::model::RuleLevel,
    /// The text that matched: a segment of the rendered script or the destination path.
    pub matched: String,
}

struct DisplayHits<'a>(&'a [PolicyHit]);

impl fmt::Display for DisplayHits<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, hit) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(
                f,
                "{} rule `{}` matched `{}`",
                hit.level, hit.rule, hit.matched
            )?;
        }
        Ok(())
    }
}
