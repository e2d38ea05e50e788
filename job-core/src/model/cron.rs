use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{CronJobId, ScriptVersionId, TeamId, UserId};
use crate::model::{ScriptLanguage, TargetSelector};
use crate::schedule::CronSpec;
use crate::values::{Name, ScriptContent, TimeoutSecs};

/// What a cron job runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CronTask {
    /// An online version of a library script, with its param values.
    Script {
        /// The script version (must be online when the job fires).
        script_version_id: ScriptVersionId,
        /// Param values by name.
        #[serde(default)]
        params: BTreeMap<String, String>,
    },
    /// An inline script saved with the job (from Quick Execute).
    Inline {
        /// Its language.
        language: ScriptLanguage,
        /// Its text.
        content: ScriptContent,
    },
}

/// What happens when a job fires while its previous run is still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverlapPolicy {
    /// Skip this fire (recorded).
    #[default]
    Skip,
    /// Start it when the previous run finishes.
    Queue,
    /// Start it anyway.
    Run,
}

/// What happens to fires missed while no node was running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MisfirePolicy {
    /// Drop missed fires; wait for the next one.
    #[default]
    Skip,
    /// Run once for all missed fires, as soon as possible.
    RunOnce,
}

/// A task fired on a schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CronJob {
    /// Its id.
    pub id: CronJobId,
    /// Owner team.
    pub team_id: TeamId,
    /// Name, unique within the team.
    pub name: Name,
    /// When it fires.
    pub schedule: CronSpec,
    /// What it runs.
    pub task: CronTask,
    /// Where it runs.
    pub targets: TargetSelector,
    /// Timeout of each run.
    pub timeout: TimeoutSecs,
    /// Paused jobs do not fire.
    pub enabled: bool,
    /// Overlap policy.
    pub overlap: OverlapPolicy,
    /// Misfire policy.
    pub misfire: MisfirePolicy,
    /// Callback URL for each run, if any.
    pub callback_url: Option<String>,
    /// Who created it.
    pub created_by: Option<UserId>,
    /// The last intended fire instant that was claimed.
    pub last_fire_at: Option<DateTime<Utc>>,
    /// The next intended fire instant.
    pub next_fire_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}
