use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{RuleId, TeamId};
use crate::values::{Description, Name};

pub use crate::rule_hit::RuleLevel;

/// A high-risk command rule: a regular expression matched against the rendered,
/// normalized script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRule {
    /// Its id.
    pub id: RuleId,
    /// Name for people.
    pub name: Name,
    /// The regular expression.
    pub pattern: String,
    /// Severity.
    pub level: RuleLevel,
    /// Disabled rules are kept but not applied.
    pub enabled: bool,
    /// Shipped with the platform (can be disabled, not deleted).
    pub built_in: bool,
    /// `None` applies to every team.
    pub team_id: Option<TeamId>,
    /// Why the rule exists.
    #[serde(default)]
    pub description: Description,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// How a path rule's pattern is compared with a canonical destination path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathMatchType {
    /// The path equals the pattern or lies under it.
    Prefix,
    /// The regular expression matches the path.
    Regex,
}

/// Whether a path rule forbids or permits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathRuleKind {
    /// Destinations matching are refused (at the rule's level).
    Deny,
    /// Where a team has allow rules, a destination must match one of them.
    Allow,
}

/// A high-risk path rule for file distribution destinations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathRule {
    /// Its id.
    pub id: RuleId,
    /// Name for people.
    pub name: Name,
    /// A path prefix or a regular expression, per `match_type`.
    pub pattern: String,
    /// How `pattern` is compared.
    pub match_type: PathMatchType,
    /// Deny or allow.
    pub kind: PathRuleKind,
    /// Severity of a deny hit.
    pub level: RuleLevel,
    /// Whether the rule is for Windows paths (compared case-insensitively).
    pub windows: bool,
    /// Disabled rules are kept but not applied.
    pub enabled: bool,
    /// Shipped with the platform (can be disabled, not deleted).
    pub built_in: bool,
    /// `None` applies to every team.
    pub team_id: Option<TeamId>,
    /// Why the rule exists.
    #[serde(default)]
    pub description: Description,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}
