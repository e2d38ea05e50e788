//! A high-risk rule that matched a request, as the error that refuses it and the record of
//! a confirmation carry it. It sits below the error type, which holds it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::RuleId;

/// How severe a high-risk rule is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleLevel {
    /// Passes only when the request carries an explicit confirmation, which is recorded.
    Confirm,
    /// Always blocks.
    Forbidden,
}

impl fmt::Display for RuleLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Confirm => "confirm",
            Self::Forbidden => "forbidden",
        })
    }
}

/// One high-risk rule that matched a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyHit {
    /// The rule that matched (`None` for a check that is not a stored rule, such as a
    /// malformed path).
    pub rule_id: Option<RuleId>,
    /// The rule's name or pattern, for people.
    pub rule: String,
    /// The rule's pattern as it was checked (empty in records stored before it was kept).
    #[serde(default)]
    pub pattern: String,
    /// How severe the rule is.
    pub level: RuleLevel,
    /// The text that matched: a segment of the rendered script or the destination path.
    pub matched: String,
}
