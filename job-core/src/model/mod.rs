//! The domain model: teams, users, targets, scripts, executions and what they hold.
//!
//! Plain data, checked at construction through the types of [`crate::values`]. Wire names
//! follow the established contract of BlueKing's job platform where one exists, so other
//! platforms can call us without translation.

mod cron;
mod execution;
mod file;
mod identity;
mod outbox;
mod playbook;
mod rolling;
mod rule;
mod script;
mod target;

pub use cron::{CronJob, CronTask, MisfirePolicy, OverlapPolicy};
pub use execution::{
    ConfirmationRecord, DistributionSource, Execution, ExecutorSnapshot, HostRun, JobType,
    OutputChunk, OutputStream, TargetSnapshot, TaskSnapshot, TriggerSource,
};
pub use file::StagedFile;
pub use identity::{Actor, ActorKind, ApiToken, Membership, Role, Team, User};
pub use outbox::{OutboxEntry, OutboxKind, OutboxState};
pub use playbook::{Playbook, PlaybookVersion};
pub use rolling::{Percent, Rolling, RollingBatch, RollingMode};
pub use rule::{CommandRule, PathMatchType, PathRule, PathRuleKind, RuleLevel};
pub use script::{ParamDef, Script, ScriptLanguage, ScriptStatus, ScriptVersion};
pub use target::{
    Credential, CredentialSecret, Os, Target, TargetGroup, TargetMode, TargetSelector,
};
