//! Capabilities over the assets a team owns: targets, credentials, groups, scripts,
//! playbooks, staged files, high-risk rules and cron jobs.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{AssetFilter, Page, PageRequest, TeamScope};
use crate::Result;
use crate::ids::{
    CredentialId, CronJobId, FileId, GroupId, PlaybookId, PlaybookVersionId, RuleId, ScriptId,
    ScriptVersionId, TargetId, TeamId,
};
use crate::model::{
    CommandRule, Credential, CronJob, PathRule, Playbook, PlaybookVersion, Script, ScriptStatus,
    ScriptVersion, StagedFile, Target, TargetGroup, TargetSelector,
};

/// Targets (hosts).
#[async_trait]
pub trait TargetStore: Send + Sync {
    /// Stores a new target. A duplicate name within its team is a conflict; an agentless
    /// target must reference a credential of the same team.
    async fn create_target(&self, target: &Target) -> Result<()>;
    /// The target `id`, if visible.
    async fn get_target(&self, scope: &TeamScope, id: TargetId) -> Result<Target>;
    /// Replaces a visible target's fields (its team never changes).
    async fn update_target(&self, scope: &TeamScope, target: &Target) -> Result<()>;
    /// Deletes a visible target.
    async fn delete_target(&self, scope: &TeamScope, id: TargetId) -> Result<()>;
    /// Visible targets, newest first.
    async fn list_targets(
        &self,
        scope: &TeamScope,
        filter: &AssetFilter,
        page: PageRequest<TargetId>,
    ) -> Result<Page<Target, TargetId>>;
    /// The targets of `team` that `selector` names by id, address or tag expression
    /// (groups are not expanded here; see [`StoreExt::resolve_selector`](super::StoreExt::resolve_selector)).
    /// Ids of other teams are silently left out.
    async fn targets_matching(
        &self,
        team: TeamId,
        selector: &TargetSelector,
    ) -> Result<Vec<Target>>;
}

/// Login credentials of agentless targets (their secret stays encrypted).
#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// Stores a new credential. A duplicate name within its team is a conflict.
    async fn create_credential(&self, credential: &Credential) -> Result<()>;
    /// The credential `id` with its ciphertext, if visible.
    async fn get_credential(&self, scope: &TeamScope, id: CredentialId) -> Result<Credential>;
    /// Deletes a visible credential; one still used by a target is a conflict.
    async fn delete_credential(&self, scope: &TeamScope, id: CredentialId) -> Result<()>;
    /// Visible credentials, newest first.
    async fn list_credentials(
        &self,
        scope: &TeamScope,
        filter: &AssetFilter,
        page: PageRequest<CredentialId>,
    ) -> Result<Page<Credential, CredentialId>>;
}

/// Named target selectors.
#[async_trait]
pub trait TargetGroupStore: Send + Sync {
    /// Stores a new group. A duplicate name within its team is a conflict.
    async fn create_group(&self, group: &TargetGroup) -> Result<()>;
    /// The group `id`, if visible.
    async fn get_group(&self, scope: &TeamScope, id: GroupId) -> Result<TargetGroup>;
    /// Replaces a visible group's fields.
    async fn update_group(&self, scope: &TeamScope, group: &TargetGroup) -> Result<()>;
    /// Deletes a visible group.
    async fn delete_group(&self, scope: &TeamScope, id: GroupId) -> Result<()>;
    /// Visible groups, newest first.
    async fn list_groups(
        &self,
        scope: &TeamScope,
        filter: &AssetFilter,
        page: PageRequest<GroupId>,
    ) -> Result<Page<TargetGroup, GroupId>>;
}

/// The script library and its immutable versions.
#[async_trait]
pub trait ScriptStore: Send + Sync {
    /// Stores a new script together with its first version, in one transaction.
    async fn create_script(&self, script: &Script, first: &ScriptVersion) -> Result<()>;
    /// The script `id`, if visible.
    async fn get_script(&self, scope: &TeamScope, id: ScriptId) -> Result<Script>;
    /// Replaces a visible script's metadata (name, description, language, tags).
    async fn update_script(&self, scope: &TeamScope, script: &Script) -> Result<()>;
    /// Deletes a visible script with all its versions.
    async fn delete_script(&self, scope: &TeamScope, id: ScriptId) -> Result<()>;
    /// Visible scripts, newest first.
    async fn list_scripts(
        &self,
        scope: &TeamScope,
        filter: &AssetFilter,
        page: PageRequest<ScriptId>,
    ) -> Result<Page<Script, ScriptId>>;
    /// Adds a version to a visible script. Its `version` number must be new for the script
    /// (a concurrent edit that took it first is a conflict).
    async fn add_script_version(&self, scope: &TeamScope, version: &ScriptVersion) -> Result<()>;
    /// The version `id`, if its script is visible.
    async fn get_script_version(
        &self,
        scope: &TeamScope,
        id: ScriptVersionId,
    ) -> Result<ScriptVersion>;
    /// Every version of a visible script, oldest first.
    async fn list_script_versions(
        &self,
        scope: &TeamScope,
        script: ScriptId,
    ) -> Result<Vec<ScriptVersion>>;
    /// Moves a version to `status` (draft, online, offline).
    async fn set_script_version_status(
        &self,
        scope: &TeamScope,
        id: ScriptVersionId,
        status: ScriptStatus,
    ) -> Result<()>;
}

/// The playbook library and its uploaded versions.
#[async_trait]
pub trait PlaybookStore: Send + Sync {
    /// Stores a new playbook. A duplicate name within its team is a conflict.
    async fn create_playbook(&self, playbook: &Playbook) -> Result<()>;
    /// The playbook `id`, if visible.
    async fn get_playbook(&self, scope: &TeamScope, id: PlaybookId) -> Result<Playbook>;
    /// Deletes a visible playbook with all its versions.
    async fn delete_playbook(&self, scope: &TeamScope, id: PlaybookId) -> Result<()>;
    /// Visible playbooks, newest first.
    async fn list_playbooks(
        &self,
        scope: &TeamScope,
        filter: &AssetFilter,
        page: PageRequest<PlaybookId>,
    ) -> Result<Page<Playbook, PlaybookId>>;
    /// Adds an uploaded version to a visible playbook; its `version` number must be new.
    async fn add_playbook_version(
        &self,
        scope: &TeamScope,
        version: &PlaybookVersion,
    ) -> Result<()>;
    /// The version `id`, if its playbook is visible.
    async fn get_playbook_version(
        &self,
        scope: &TeamScope,
        id: PlaybookVersionId,
    ) -> Result<PlaybookVersion>;
    /// Every version of a visible playbook, oldest first.
    async fn list_playbook_versions(
        &self,
        scope: &TeamScope,
        playbook: PlaybookId,
    ) -> Result<Vec<PlaybookVersion>>;
}

/// Files uploaded for distribution.
#[async_trait]
pub trait StagedFileStore: Send + Sync {
    /// Records an uploaded file.
    async fn create_staged_file(&self, file: &StagedFile) -> Result<()>;
    /// The file `id`, if visible.
    async fn get_staged_file(&self, scope: &TeamScope, id: FileId) -> Result<StagedFile>;
    /// Forgets a visible file (its blob is the caller's to delete).
    async fn delete_staged_file(&self, scope: &TeamScope, id: FileId) -> Result<()>;
    /// Visible files, newest first.
    async fn list_staged_files(
        &self,
        scope: &TeamScope,
        filter: &AssetFilter,
        page: PageRequest<FileId>,
    ) -> Result<Page<StagedFile, FileId>>;
    /// Files of every team whose `expire_at` is at or before `now`, soonest first, at most
    /// `limit` of them.
    async fn staged_files_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<StagedFile>>;
}

/// High-risk command and path rules. Global rules (no team) are visible to every scope but
/// changed only with [`TeamScope::All`].
#[async_trait]
pub trait RuleStore: Send + Sync {
    /// Stores a new command rule.
    async fn create_command_rule(&self, rule: &CommandRule) -> Result<()>;
    /// Replaces a command rule changeable in `scope`.
    async fn update_command_rule(&self, scope: &TeamScope, rule: &CommandRule) -> Result<()>;
    /// Deletes a command rule changeable in `scope`; a built-in rule is a conflict (it can
    /// only be disabled).
    async fn delete_command_rule(&self, scope: &TeamScope, id: RuleId) -> Result<()>;
    /// The global command rules and those of the teams in `scope`, oldest first.
    async fn list_command_rules(&self, scope: &TeamScope) -> Result<Vec<CommandRule>>;
    /// Stores a new path rule.
    async fn create_path_rule(&self, rule: &PathRule) -> Result<()>;
    /// Replaces a path rule changeable in `scope`.
    async fn update_path_rule(&self, scope: &TeamScope, rule: &PathRule) -> Result<()>;
    /// Deletes a path rule changeable in `scope`; a built-in rule is a conflict.
    async fn delete_path_rule(&self, scope: &TeamScope, id: RuleId) -> Result<()>;
    /// The global path rules and those of the teams in `scope`, oldest first.
    async fn list_path_rules(&self, scope: &TeamScope) -> Result<Vec<PathRule>>;
}

/// Cron jobs and their occurrences.
#[async_trait]
pub trait CronStore: Send + Sync {
    /// Stores a new cron job. A duplicate name within its team is a conflict.
    async fn create_cron_job(&self, job: &CronJob) -> Result<()>;
    /// The cron job `id`, if visible.
    async fn get_cron_job(&self, scope: &TeamScope, id: CronJobId) -> Result<CronJob>;
    /// Replaces a visible cron job (schedule, task, enabled, next fire…).
    async fn update_cron_job(&self, scope: &TeamScope, job: &CronJob) -> Result<()>;
    /// Deletes a visible cron job; its past executions keep their record.
    async fn delete_cron_job(&self, scope: &TeamScope, id: CronJobId) -> Result<()>;
    /// Visible cron jobs, newest first.
    async fn list_cron_jobs(
        &self,
        scope: &TeamScope,
        filter: &AssetFilter,
        page: PageRequest<CronJobId>,
    ) -> Result<Page<CronJob, CronJobId>>;
    /// Enabled jobs of every team whose next fire is at or before `now`, soonest first.
    async fn cron_jobs_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<CronJob>>;
    /// Claims the occurrence of `job` intended for `fire_at` (a UTC instant) for `node`, and
    /// records `fire_at` as the job's last fire and `next_fire_at` as its next one.
    ///
    /// Returns `true` for exactly one caller per `(job, fire_at)`, however many nodes try;
    /// every other caller gets `false` and changes nothing.
    async fn claim_cron_occurrence(
        &self,
        job: CronJobId,
        fire_at: DateTime<Utc>,
        next_fire_at: Option<DateTime<Utc>>,
        node: &str,
    ) -> Result<bool>;
}
