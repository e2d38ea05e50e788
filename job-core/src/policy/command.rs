//! High-risk command rules: compiled once, matched against the normalized rendered script.

use std::collections::BTreeSet;
use std::fmt;

use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use super::normalize::{NormalizedScript, SEGMENT_SEPARATOR};
use crate::ids::{RuleId, TeamId};
use crate::model::{CommandRule, RuleLevel};
use crate::{Error, PolicyHit, Result};

/// Longest accepted rule pattern, in bytes.
pub const MAX_PATTERN_LEN: usize = 1024;
/// Largest compiled program one rule pattern may produce, in bytes.
pub const PATTERN_SIZE_LIMIT: usize = 256 * 1024;
/// Deepest nesting of groups and repetitions a rule pattern may use.
pub const PATTERN_NEST_LIMIT: u32 = 32;
/// Most hits reported for one check; further hits are dropped (the request is refused
/// either way).
pub const MAX_REPORTED_HITS: usize = 100;

/// Size limit of the compiled rule set (all rules together).
const SET_SIZE_LIMIT: usize = 256 * 1024 * 1024;
/// Cache of the lazy DFA that runs the rule set.
const SET_DFA_LIMIT: usize = 64 * 1024 * 1024;

fn configure_single(b: &mut RegexBuilder) -> &mut RegexBuilder {
    b.unicode(false)
        .multi_line(true)
        .line_terminator(SEGMENT_SEPARATOR)
        .size_limit(PATTERN_SIZE_LIMIT)
        .nest_limit(PATTERN_NEST_LIMIT)
}

/// Checks a user-written command rule pattern as it would be compiled, so a bad pattern is
/// refused when the rule is saved. Errors are [`Error::Invalid`] for the field `pattern`,
/// with the reason.
///
/// Patterns are regular expressions (the `regex` crate's syntax: no look-around, no
/// back-references, linear-time matching) over the normalized script. Character classes
/// such as `\w`, `\s` and `\b` are ASCII-only; `^` and `$` anchor at segment boundaries.
pub fn validate_command_pattern(pattern: &str) -> Result<()> {
    compile_one(pattern).map(|_| ())
}

fn compile_one(pattern: &str) -> Result<Regex> {
    if pattern.trim().is_empty() {
        return Err(Error::invalid("pattern", "must not be empty"));
    }
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(Error::invalid(
            "pattern",
            format!(
                "must be at most {MAX_PATTERN_LEN} bytes, got {}",
                pattern.len()
            ),
        ));
    }
    let re = configure_single(&mut RegexBuilder::new(pattern))
        .build()
        .map_err(|e| Error::invalid("pattern", one_line(&e.to_string())))?;
    if re.is_match(b"") {
        return Err(Error::invalid(
            "pattern",
            "matches the empty script, so it would refuse everything",
        ));
    }
    Ok(re)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

struct CompiledRule {
    id: RuleId,
    name: String,
    pattern: String,
    level: RuleLevel,
    team_id: Option<TeamId>,
    regex: Regex,
}

/// A set of command rules compiled once into a [`RegexSet`], ready to check scripts.
///
/// Compile it when rules change and share it (it is `Send + Sync`); checking does not
/// allocate per rule. Disabled rules are left out at compile time. Team-scoped rules apply
/// only to checks for their team; global rules apply to every team.
pub struct CommandPolicy {
    set: RegexSet,
    rules: Vec<CompiledRule>,
}

impl fmt::Debug for CommandPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandPolicy")
            .field("rules", &self.rules.len())
            .finish()
    }
}

impl CommandPolicy {
    /// Compiles the enabled rules among `rules`. A rule whose pattern does not compile is an
    /// [`Error::Invalid`] for `pattern` naming the rule.
    pub fn compile<'a>(rules: impl IntoIterator<Item = &'a CommandRule>) -> Result<Self> {
        let mut compiled = Vec::new();
        for rule in rules.into_iter().filter(|r| r.enabled) {
            let regex = compile_one(&rule.pattern).map_err(|e| match e {
                Error::Invalid { reason, .. } => Error::invalid(
                    "pattern",
                    format!("rule `{}`: {reason}", rule.name.as_str()),
                ),
                other => other,
            })?;
            compiled.push(CompiledRule {
                id: rule.id,
                name: rule.name.as_str().to_owned(),
                pattern: rule.pattern.clone(),
                level: rule.level,
                team_id: rule.team_id,
                regex,
            });
        }
        let set = RegexSetBuilder::new(compiled.iter().map(|r| r.regex.as_str()))
            .unicode(false)
            .multi_line(true)
            .line_terminator(SEGMENT_SEPARATOR)
            .size_limit(SET_SIZE_LIMIT)
            .dfa_size_limit(SET_DFA_LIMIT)
            .nest_limit(PATTERN_NEST_LIMIT)
            .build()
            .map_err(|e| Error::invalid("pattern", one_line(&e.to_string())))?;
        Ok(Self {
            set,
            rules: compiled,
        })
    }

    /// How many enabled rules were compiled.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether no rule is enabled.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Every hit of the rules that apply to `team` in the rendered `script`, without
    /// deciding anything. One hit per rule and matching segment, in rule order, at most
    /// [`MAX_REPORTED_HITS`].
    pub fn hits(&self, team: Option<TeamId>, script: &str) -> Vec<PolicyHit> {
        self.hits_normalized(team, &NormalizedScript::new(script))
    }

    /// Like [`hits`](Self::hits) for an already normalized script.
    pub fn hits_normalized(
        &self,
        team: Option<TeamId>,
        script: &NormalizedScript,
    ) -> Vec<PolicyHit> {
        let text = script.as_bytes();
        let mut hits = Vec::new();
        // The common case is a script that hits nothing: `is_match` can use the set's
        // prefilters and stop early, where `matches` must run every rule to the end.
        if !self.set.is_match(text) {
            return hits;
        }
        for index in self.set.matches(text).iter() {
            let rule = &self.rules[index];
            if rule.team_id.is_some() && rule.team_id != team {
                continue;
            }
            let mut seen = BTreeSet::new();
            for m in rule.regex.find_iter(text) {
                let matched = script.context_of(m.start(), m.end());
                if seen.insert(matched.clone()) {
                    hits.push(PolicyHit {
                        rule_id: Some(rule.id),
                        rule: rule.name.clone(),
                        pattern: rule.pattern.clone(),
                        level: rule.level,
                        matched,
                    });
                    if hits.len() >= MAX_REPORTED_HITS {
                        return hits;
                    }
                }
            }
        }
        hits
    }

    /// Decides whether the rendered `script` may run for `team`.
    ///
    /// - No hit: `Ok(vec![])`.
    /// - Only `confirm` hits and `confirmed` is true (the request carried an explicit
    ///   confirmation): `Ok(hits)`, the confirmed hits, to be recorded with the execution.
    /// - Any `forbidden` hit, or `confirm` hits without confirmation:
    ///   `Err(Error::PolicyViolation { hits })` with every hit.
    pub fn check(
        &self,
        team: Option<TeamId>,
        script: &str,
        confirmed: bool,
    ) -> Result<Vec<PolicyHit>> {
        decide(self.hits(team, script), confirmed)
    }
}

/// Turns hits into the decision described at [`CommandPolicy::check`]; shared with path
/// rules.
pub(crate) fn decide(hits: Vec<PolicyHit>, confirmed: bool) -> Result<Vec<PolicyHit>> {
    let forbidden = hits.iter().any(|h| h.level == RuleLevel::Forbidden);
    if hits.is_empty() || (!forbidden && confirmed) {
        Ok(hits)
    } else {
        Err(Error::PolicyViolation { hits })
    }
}

/// Compiles `rules` and checks `script` for `team` in one call; see
/// [`CommandPolicy::check`]. Prefer compiling a [`CommandPolicy`] once when checking many
/// scripts.
pub fn check_script(
    rules: &[CommandRule],
    team: Option<TeamId>,
    script: &str,
    confirmed: bool,
) -> Result<Vec<PolicyHit>> {
    CommandPolicy::compile(rules)?.check(team, script, confirmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_that_are_too_long_nested_or_broken_are_refused_with_a_reason() {
        let long = "a".repeat(MAX_PATTERN_LEN + 1);
        let nested = format!("{}a{}", "(".repeat(40), ")".repeat(40));
        for (bad, reason) in [
            (long.as_str(), "at most"),
            (nested.as_str(), "nest"),
            ("rm (", "unclosed"),
            ("a{1000}{1000}", "size limit"),
            ("x*", "empty script"),
            ("  ", "empty"),
        ] {
            match validate_command_pattern(bad) {
                Err(Error::Invalid { field, reason: r }) => {
                    assert_eq!(field, "pattern");
                    assert!(r.contains(reason), "{bad}: {r}");
                }
                other => panic!("{bad}: expected Invalid, got {other:?}"),
            }
        }
        assert!(validate_command_pattern(r"(^|\s)rm\s").is_ok());
    }
}
