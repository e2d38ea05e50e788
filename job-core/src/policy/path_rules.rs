//! High-risk path rules for file distribution destinations.

use std::fmt;

use regex::{Regex, RegexBuilder};

use super::command::{MAX_PATTERN_LEN, PATTERN_NEST_LIMIT, PATTERN_SIZE_LIMIT, decide};
use super::path::TargetPath;
use crate::ids::{RuleId, TeamId};
use crate::model::{Os, PathMatchType, PathRule, PathRuleKind, RuleLevel};
use crate::{Error, PolicyHit, Result};

/// The rule name reported when a destination lies outside every allow rule.
pub const OUTSIDE_ALLOW_RULES: &str = "outside every allow rule";

enum Matcher {
    Prefix(TargetPath),
    Regex(Regex),
}

struct CompiledPathRule {
    id: RuleId,
    name: String,
    pattern: String,
    kind: PathRuleKind,
    level: RuleLevel,
    windows: bool,
    team_id: Option<TeamId>,
    matcher: Matcher,
}

impl CompiledPathRule {
    fn applies(&self, team: Option<TeamId>, path: &TargetPath) -> bool {
        (self.team_id.is_none() || self.team_id == team) && self.windows == path.is_windows()
    }

    fn matches(&self, path: &TargetPath) -> bool {
        match &self.matcher {
            Matcher::Prefix(prefix) => path.starts_with(prefix),
            Matcher::Regex(re) => re.is_match(path.as_str()),
        }
    }
}

/// Checks a path rule's pattern as it will be compiled, so a bad rule is refused when it is
/// saved. A prefix pattern must be an absolute path for the rule's system; a regex pattern
/// is compiled with the same limits as command patterns (and case-insensitively for
/// Windows rules). Errors are [`Error::Invalid`] for the field `pattern`.
pub fn validate_path_rule(rule: &PathRule) -> Result<()> {
    compile_matcher(rule).map(|_| ())
}

fn compile_matcher(rule: &PathRule) -> Result<Matcher> {
    let os = if rule.windows { Os::Windows } else { Os::Linux };
    match rule.match_type {
        PathMatchType::Prefix => {
            TargetPath::parse("pattern", &rule.pattern, os).map(Matcher::Prefix)
        }
        PathMatchType::Regex => {
            if rule.pattern.len() > MAX_PATTERN_LEN {
                return Err(Error::invalid(
                    "pattern",
                    format!("must be at most {MAX_PATTERN_LEN} bytes"),
                ));
            }
            RegexBuilder::new(&rule.pattern)
                .case_insensitive(rule.windows)
                .size_limit(PATTERN_SIZE_LIMIT)
                .nest_limit(PATTERN_NEST_LIMIT)
                .build()
                .map(Matcher::Regex)
                .map_err(|e| {
                    let reason = e
                        .to_string()
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ");
                    Error::invalid("pattern", reason)
                })
        }
    }
}

/// A set of path rules compiled once, ready to check destinations.
///
/// For a destination of a team: every enabled deny rule that applies (global, or the team's
/// own, for the path's system) and matches is a hit at its level; if any allow rule applies,
/// a destination matched by none of them is a `forbidden` hit ([`OUTSIDE_ALLOW_RULES`]).
/// Deny wins: matching an allow rule never cancels a deny hit.
pub struct PathPolicy {
    rules: Vec<CompiledPathRule>,
}

impl fmt::Debug for PathPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PathPolicy")
            .field("rules", &self.rules.len())
            .finish()
    }
}

impl PathPolicy {
    /// Compiles the enabled rules among `rules`; a rule that does not compile is an
    /// [`Error::Invalid`] for `pattern` naming the rule.
    pub fn compile<'a>(rules: impl IntoIterator<Item = &'a PathRule>) -> Result<Self> {
        let mut compiled = Vec::new();
        for rule in rules.into_iter().filter(|r| r.enabled) {
            let matcher = compile_matcher(rule).map_err(|e| match e {
                Error::Invalid { reason, .. } => Error::invalid(
                    "pattern",
                    format!("rule `{}`: {reason}", rule.name.as_str()),
                ),
                other => other,
            })?;
            compiled.push(CompiledPathRule {
                id: rule.id,
                name: rule.name.as_str().to_owned(),
                pattern: rule.pattern.clone(),
                kind: rule.kind,
                level: rule.level,
                windows: rule.windows,
                team_id: rule.team_id,
                matcher,
            });
        }
        Ok(Self { rules: compiled })
    }

    /// Every hit for `path` as a destination of `team`, without deciding anything.
    pub fn hits(&self, team: Option<TeamId>, path: &TargetPath) -> Vec<PolicyHit> {
        let mut hits = Vec::new();
        let mut allow_rules = false;
        let mut allowed = false;
        for rule in self.rules.iter().filter(|r| r.applies(team, path)) {
            match rule.kind {
                PathRuleKind::Deny => {
                    if rule.matches(path) {
                        hits.push(PolicyHit {
                            rule_id: Some(rule.id),
                            rule: rule.name.clone(),
                            pattern: rule.pattern.clone(),
                            level: rule.level,
                            matched: path.as_str().to_owned(),
                        });
                    }
                }
                PathRuleKind::Allow => {
                    allow_rules = true;
                    allowed = allowed || rule.matches(path);
                }
            }
        }
        if allow_rules && !allowed {
            hits.push(PolicyHit {
                rule_id: None,
                rule: OUTSIDE_ALLOW_RULES.to_owned(),
                pattern: OUTSIDE_ALLOW_RULES.to_owned(),
                level: RuleLevel::Forbidden,
                matched: path.as_str().to_owned(),
            });
        }
        hits
    }

    /// Decides whether `path` may be written for `team`: `Ok(confirmed hits)` or
    /// `Err(Error::PolicyViolation { hits })`, exactly as
    /// [`CommandPolicy::check`](super::CommandPolicy::check) does.
    pub fn check(
        &self,
        team: Option<TeamId>,
        path: &TargetPath,
        confirmed: bool,
    ) -> Result<Vec<PolicyHit>> {
        decide(self.hits(team, path), confirmed)
    }
}
