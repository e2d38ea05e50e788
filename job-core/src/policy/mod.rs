//! High-risk command and path rules, and team access; see docs/policy.md.
//!
//! Rules are a **guard-rail, not a sandbox**: they stop the common destructive commands
//! and destinations that a hurried operator or a careless script might run, in their usual
//! spellings. A determined author can always get past pattern matching (a variable holding
//! the command name, an encoded payload, an interpreter's own API); `docs/policy.md` lists
//! the known limits.
//!
//! - [`CommandPolicy`] compiles command rules once into a [`regex::RegexSet`] and checks
//!   the rendered script after [normalization](normalize).
//! - [`TargetPath`] is a canonical absolute destination path; [`PathPolicy`] checks it
//!   against path rules (deny wins; allow rules restrict a team's destinations).
//! - [`authorize`] is the one team-access decision every use case calls.
//! - [`builtin_command_rules`] and [`builtin_path_rules`] are the shipped presets.
//!
//! ```
//! use chrono::Utc;
//! use job_core::policy::{CommandPolicy, builtin_command_rules};
//!
//! let rules = builtin_command_rules(Utc::now());
//! let policy = CommandPolicy::compile(&rules)?;
//! assert!(policy.check(None, "echo hello", false)?.is_empty());
//! assert!(policy.check(None, "sudo /bin/rm -r -f /", true).is_err());
//! // `confirm` rules pass only with an explicit confirmation, and report what was confirmed.
//! assert!(policy.check(None, "systemctl restart nginx", false).is_err());
//! assert_eq!(policy.check(None, "systemctl restart nginx", true)?.len(), 1);
//! # Ok::<(), job_core::Error>(())
//! ```

mod access;
mod command;
pub mod normalize;
mod path;
mod path_rules;
mod presets;

pub use access::{Access, authorize, authorize_found};
pub use command::{
    CommandPolicy, MAX_PATTERN_LEN, MAX_REPORTED_HITS, PATTERN_NEST_LIMIT, PATTERN_SIZE_LIMIT,
    check_script, validate_command_pattern,
};
pub use normalize::NormalizedScript;
pub use path::{MAX_PATH_LEN, TargetPath};
pub use path_rules::{OUTSIDE_ALLOW_RULES, PathPolicy, validate_path_rule};
pub use presets::{builtin_command_rules, builtin_path_rules};
