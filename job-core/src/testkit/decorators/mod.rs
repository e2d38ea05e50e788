//! Store decorators for tests: [`FaultyStore`] injects faults, [`CountingStore`] counts
//! calls (feature `testkit`).
//!
//! Like `object_store`'s `limit.rs` and `throttle.rs`, each wraps any [`Store`] and is a
//! [`Store`] itself, so an engine or a use case runs over it unchanged. They stack: a
//! `FaultyStore` over a `CountingStore` over a real backend fails calls before they reach
//! the counter, which then counts only what reached the database.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use job_core::store::Store;
//! use job_core::testkit::{CountingStore, FaultyStore, StoreMethod};
//!
//! fn decorate(backend: Arc<dyn Store>) -> (Arc<FaultyStore>, Arc<CountingStore>) {
//!     let counts = Arc::new(CountingStore::new(backend));
//!     let faults = Arc::new(FaultyStore::new(counts.clone() as Arc<dyn Store>));
//!     // The 2nd and 3rd output appends from now fail; every result write waits 50 ms.
//!     faults.fail_calls(StoreMethod::AppendOutput, 2..=3);
//!     faults.delay_calls(StoreMethod::UpdateHostRuns, 1.., Duration::from_millis(50));
//!     // From the 10th call from now, of any method, the database is gone until `restore`.
//!     faults.lose_connection_from_call(10);
//!     (faults, counts)
//! }
//! ```
//!
//! Every method of every capability trait is forwarded by one macro over one list of the
//! methods ([`StoreMethod`] names each), so a decorator is only its hook.

mod counting;
mod faults;

pub use counting::CountingStore;
pub use faults::FaultyStore;

use crate::Result;
use crate::ids::{
    CredentialId, CronJobId, DeliveryId, ExecutionId, FileId, GroupId, PlaybookId,
    PlaybookVersionId, RuleId, ScriptId, ScriptVersionId, TargetId, TeamId, TokenId, UserId,
};
use crate::model::{
    ApiToken, CommandRule, Credential, CronJob, Execution, HostRun, OutboxEntry, OutputChunk,
    PathRule, Playbook, PlaybookVersion, Role, Script, ScriptStatus, ScriptVersion, StagedFile,
    Target, TargetGroup, TargetSelector, Team, User,
};
use crate::status::HostStatus;
use crate::store::{
    AppendedOutput, AssetFilter, ClaimedExecution, CredentialStore, CronStore, DayTrend,
    ExecutionFilter, ExecutionStore, HostRunUpdate, IdentityStore, Lease, NewOutput, OutboxOutcome,
    OutboxStore, OutputCursor, OutputStore, Page, PageRequest, PlaybookStore, RuleStore,
    ScriptStore, StagedFileStore, StatsStore, Store, SuccessRate, TargetGroupStore, TargetStore,
    TeamScope, TimeRange, Totals, Transition,
};
use crate::values::Username;
use chrono::{DateTime, NaiveDate, Utc};

/// Calls `$then!` with `($($extra)*)` followed by every capability trait of [`Store`] and
/// its methods: `Variant method(arg: Type, …) -> Output;`. The one list of the methods.
macro_rules! with_store_methods {
    ($then:ident $($extra:tt)*) => {
        $then! {
            ($($extra)*)
        TargetStore {
            CreateTarget create_target(target: &Target) -> ();
            GetTarget get_target(scope: &TeamScope, id: TargetId) -> Target;
            UpdateTarget update_target(scope: &TeamScope, target: &Target) -> ();
            DeleteTarget delete_target(scope: &TeamScope, id: TargetId) -> ();
            ListTargets list_targets(scope: &TeamScope, filter: &AssetFilter, page: PageRequest<TargetId>) -> Page<Target, TargetId>;
            TargetsMatching targets_matching(team: TeamId, selector: &TargetSelector) -> Vec<Target>;
        }
        CredentialStore {
            CreateCredential create_credential(credential: &Credential) -> ();
            GetCredential get_credential(scope: &TeamScope, id: CredentialId) -> Credential;
            DeleteCredential delete_credential(scope: &TeamScope, id: CredentialId) -> ();
            ListCredentials list_credentials(scope: &TeamScope, filter: &AssetFilter, page: PageRequest<CredentialId>) -> Page<Credential, CredentialId>;
        }
        TargetGroupStore {
            CreateGroup create_group(group: &TargetGroup) -> ();
            GetGroup get_group(scope: &TeamScope, id: GroupId) -> TargetGroup;
            UpdateGroup update_group(scope: &TeamScope, group: &TargetGroup) -> ();
            DeleteGroup delete_group(scope: &TeamScope, id: GroupId) -> ();
            ListGroups list_groups(scope: &TeamScope, filter: &AssetFilter, page: PageRequest<GroupId>) -> Page<TargetGroup, GroupId>;
        }
        ScriptStore {
            CreateScript create_script(script: &Script, first: &ScriptVersion) -> ();
            GetScript get_script(scope: &TeamScope, id: ScriptId) -> Script;
            UpdateScript update_script(scope: &TeamScope, script: &Script) -> ();
            DeleteScript delete_script(scope: &TeamScope, id: ScriptId) -> ();
            ListScripts list_scripts(scope: &TeamScope, filter: &AssetFilter, page: PageRequest<ScriptId>) -> Page<Script, ScriptId>;
            AddScriptVersion add_script_version(scope: &TeamScope, version: &ScriptVersion) -> ();
            GetScriptVersion get_script_version(scope: &TeamScope, id: ScriptVersionId) -> ScriptVersion;
            ListScriptVersions list_script_versions(scope: &TeamScope, script: ScriptId) -> Vec<ScriptVersion>;
            SetScriptVersionStatus set_script_version_status(scope: &TeamScope, id: ScriptVersionId, status: ScriptStatus) -> ();
        }
        PlaybookStore {
            CreatePlaybook create_playbook(playbook: &Playbook) -> ();
            GetPlaybook get_playbook(scope: &TeamScope, id: PlaybookId) -> Playbook;
            DeletePlaybook delete_playbook(scope: &TeamScope, id: PlaybookId) -> ();
            ListPlaybooks list_playbooks(scope: &TeamScope, filter: &AssetFilter, page: PageRequest<PlaybookId>) -> Page<Playbook, PlaybookId>;
            AddPlaybookVersion add_playbook_version(scope: &TeamScope, version: &PlaybookVersion) -> ();
            GetPlaybookVersion get_playbook_version(scope: &TeamScope, id: PlaybookVersionId) -> PlaybookVersion;
            ListPlaybookVersions list_playbook_versions(scope: &TeamScope, playbook: PlaybookId) -> Vec<PlaybookVersion>;
        }
        StagedFileStore {
            CreateStagedFile create_staged_file(file: &StagedFile) -> ();
            GetStagedFile get_staged_file(scope: &TeamScope, id: FileId) -> StagedFile;
            DeleteStagedFile delete_staged_file(scope: &TeamScope, id: FileId) -> ();
            ListStagedFiles list_staged_files(scope: &TeamScope, filter: &AssetFilter, page: PageRequest<FileId>) -> Page<StagedFile, FileId>;
            StagedFilesDue staged_files_due(now: DateTime<Utc>, limit: u32) -> Vec<StagedFile>;
        }
        RuleStore {
            CreateCommandRule create_command_rule(rule: &CommandRule) -> ();
            UpdateCommandRule update_command_rule(scope: &TeamScope, rule: &CommandRule) -> ();
            DeleteCommandRule delete_command_rule(scope: &TeamScope, id: RuleId) -> ();
            ListCommandRules list_command_rules(scope: &TeamScope) -> Vec<CommandRule>;
            CreatePathRule create_path_rule(rule: &PathRule) -> ();
            UpdatePathRule update_path_rule(scope: &TeamScope, rule: &PathRule) -> ();
            DeletePathRule delete_path_rule(scope: &TeamScope, id: RuleId) -> ();
            ListPathRules list_path_rules(scope: &TeamScope) -> Vec<PathRule>;
        }
        CronStore {
            CreateCronJob create_cron_job(job: &CronJob) -> ();
            GetCronJob get_cron_job(scope: &TeamScope, id: CronJobId) -> CronJob;
            UpdateCronJob update_cron_job(scope: &TeamScope, job: &CronJob) -> ();
            DeleteCronJob delete_cron_job(scope: &TeamScope, id: CronJobId) -> ();
            ListCronJobs list_cron_jobs(scope: &TeamScope, filter: &AssetFilter, page: PageRequest<CronJobId>) -> Page<CronJob, CronJobId>;
            CronJobsDue cron_jobs_due(now: DateTime<Utc>, limit: u32) -> Vec<CronJob>;
            ClaimCronOccurrence claim_cron_occurrence(job: CronJobId, fire_at: DateTime<Utc>, next_fire_at: Option<DateTime<Utc>>, node: &str) -> bool;
        }
        ExecutionStore {
            CreateExecution create_execution(execution: &Execution, hosts: &[HostRun]) -> ();
            GetExecution get_execution(scope: &TeamScope, id: ExecutionId) -> Execution;
            ListExecutions list_executions(scope: &TeamScope, filter: &ExecutionFilter, page: PageRequest<ExecutionId>) -> Page<Execution, ExecutionId>;
            ListHostRuns list_host_runs(scope: &TeamScope, id: ExecutionId, status: Option<HostStatus>, page: PageRequest<u32>) -> Page<HostRun, u32>;
            Transition transition(id: ExecutionId, transition: &Transition) -> Execution;
            UpdateHostRuns update_host_runs(id: ExecutionId, updates: &[HostRunUpdate]) -> u32;
            ClaimExecutions claim_executions(lease: &Lease, limit: u32) -> Vec<ClaimedExecution>;
            RenewLease renew_lease(id: ExecutionId, lease: &Lease) -> ();
            ReleaseLease release_lease(id: ExecutionId, node: &str) -> ();
            ReleaseNodeLeases release_node_leases(node: &str) -> u64;
            PauseExecution pause_execution(id: ExecutionId, at: DateTime<Utc>) -> Execution;
            UnpauseExecution unpause_execution(id: ExecutionId) -> Execution;
        }
        OutputStore {
            AppendOutput append_output(id: ExecutionId, chunks: &[NewOutput], cap_bytes: u64) -> AppendedOutput;
            ReadOutput read_output(scope: &TeamScope, id: ExecutionId, host: Option<u32>, after: Option<OutputCursor>, limit: u32) -> Vec<OutputChunk>;
        }
        OutboxStore {
            EnqueueOutbox enqueue_outbox(entries: &[OutboxEntry]) -> ();
            ClaimDueOutbox claim_due_outbox(now: DateTime<Utc>, lease_until: DateTime<Utc>, limit: u32) -> Vec<OutboxEntry>;
            RecordOutboxAttempt record_outbox_attempt(id: DeliveryId, outcome: &OutboxOutcome) -> ();
            GetOutboxEntry get_outbox_entry(scope: &TeamScope, id: DeliveryId) -> OutboxEntry;
            ListOutboxForExecution list_outbox_for_execution(scope: &TeamScope, id: ExecutionId) -> Vec<OutboxEntry>;
        }
        IdentityStore {
            CreateTeam create_team(team: &Team) -> ();
            GetTeam get_team(scope: &TeamScope, id: TeamId) -> Team;
            ListTeams list_teams(scope: &TeamScope) -> Vec<Team>;
            DeleteTeam delete_team(id: TeamId) -> ();
            CreateUser create_user(user: &User) -> ();
            GetUser get_user(id: UserId) -> User;
            GetUserByUsername get_user_by_username(username: &Username) -> User;
            UpdateUser update_user(user: &User) -> ();
            ListUsers list_users(page: PageRequest<UserId>) -> Page<User, UserId>;
            SetMembership set_membership(user: UserId, team: TeamId, role: Option<Role>) -> ();
            CreateToken create_token(token: &ApiToken) -> ();
            GetTokenByHash get_token_by_hash(token_hash: &str) -> ApiToken;
            ListTokens list_tokens(scope: &TeamScope) -> Vec<ApiToken>;
            RevokeToken revoke_token(scope: &TeamScope, id: TokenId, at: DateTime<Utc>) -> ();
            TouchToken touch_token(id: TokenId, at: DateTime<Utc>) -> ();
        }
        StatsStore {
            Totals totals(scope: &TeamScope, range: TimeRange) -> Totals;
            DailyTrend daily_trend(scope: &TeamScope, first_day: NaiveDate, days: u32) -> Vec<DayTrend>;
            AverageDurationMs average_duration_ms(scope: &TeamScope, range: TimeRange) -> Option<f64>;
            SuccessRate success_rate(scope: &TeamScope, range: TimeRange) -> SuccessRate;
        }
        }
    };
}

/// Defines [`StoreMethod`] from the list.
macro_rules! define_store_method {
    (() $($trait:ident { $($variant:ident $method:ident ($($arg:ident : $ty:ty),*) -> $ret:ty;)* })*) => {
        /// One method of the [`Store`] capability traits, as decorators name it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum StoreMethod {
            $($(
                #[doc = concat!("[`", stringify!($trait), "::", stringify!($method), "`]")]
                $variant,
            )*)*
        }

        impl StoreMethod {
            /// Every method, in trait order.
            pub const ALL: &'static [StoreMethod] = &[$($(StoreMethod::$variant,)*)*];

            /// The method's name in its trait (`append_output`).
            pub fn name(self) -> &'static str {
                match self {
                    $($(StoreMethod::$variant => stringify!($method),)*)*
                }
            }
        }
    };
}

with_store_methods!(define_store_method);

impl std::fmt::Display for StoreMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Implements every capability trait for `$decorator<S>`: each method first awaits
/// `self.before(StoreMethod::…)` (an `Err` is returned as the call's result), then forwards
/// to `self.inner`.
macro_rules! forward_store {
    (($decorator:ident) $($trait:ident { $($variant:ident $method:ident ($($arg:ident : $ty:ty),*) -> $ret:ty;)* })*) => {
        $(
            #[async_trait::async_trait]
            impl<S: Store + ?Sized> $trait for $decorator<S> {
                $(
                    async fn $method(&self, $($arg: $ty),*) -> Result<$ret> {
                        self.before(StoreMethod::$variant).await?;
                        self.inner.$method($($arg),*).await
                    }
                )*
            }
        )*
    };
}

with_store_methods!(forward_store FaultyStore);
with_store_methods!(forward_store CountingStore);

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::Error;

    /// A store holding nothing: every call reaches it and is answered `NotFound` naming the
    /// method, so a test tells a call that went through from an injected fault.
    #[derive(Debug)]
    pub(crate) struct EmptyStore;

    macro_rules! answer_not_found {
        (($store:ident) $($trait:ident { $($variant:ident $method:ident ($($arg:ident : $ty:ty),*) -> $ret:ty;)* })*) => {
            $(
                #[async_trait::async_trait]
                impl $trait for $store {
                    $(
                        async fn $method(&self, $($arg: $ty),*) -> Result<$ret> {
                            $(let _ = $arg;)*
                            Err(Error::not_found(stringify!($method)))
                        }
                    )*
                }
            )*
        };
    }

    with_store_methods!(answer_not_found EmptyStore);

    #[test]
    fn every_method_has_its_own_name() {
        let names: std::collections::BTreeSet<&str> =
            StoreMethod::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(names.len(), StoreMethod::ALL.len());
        assert_eq!(StoreMethod::AppendOutput.to_string(), "append_output");
    }

    #[tokio::test]
    async fn every_call_is_forwarded_to_the_wrapped_store() {
        let store = FaultyStore::new(Arc::new(EmptyStore));
        let err = store.list_teams(&TeamScope::All).await.unwrap_err();
        assert!(
            matches!(&err, Error::NotFound { what } if what == "list_teams"),
            "{err}"
        );
        let err = store
            .append_output(ExecutionId::new(), &[], 10)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::NotFound { what } if what == "append_output"),
            "{err}"
        );
    }
}
