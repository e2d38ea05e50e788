//! Typed identifiers: a `TargetId` can never be passed where an `ExecutionId` is expected.
//!
//! Every id is a UUIDv7, generated without a round trip to the store and ordered by creation
//! time, which keyset pagination relies on. Parsing a caller's id (`parse_field`,
//! `FromStr`) lives with the other edge values in [`crate::values`], so that this module,
//! below the error type, depends on nothing of the crate.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta] $name:ident, $label:literal;)*) => {$(
        #[$doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID (as read back from a store).
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }

            /// What it identifies, for people (`"target group"`).
            pub const LABEL: &'static str = $label;
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    )*};
}

id_type! {
    /// Identifies a [`Team`](crate::model::Team).
    TeamId, "team";
    /// Identifies a [`User`](crate::model::User).
    UserId, "user";
    /// Identifies an [`ApiToken`](crate::model::ApiToken).
    TokenId, "token";
    /// Identifies a [`Target`](crate::model::Target).
    TargetId, "target";
    /// Identifies a [`TargetGroup`](crate::model::TargetGroup).
    GroupId, "target group";
    /// Identifies a [`Credential`](crate::model::Credential).
    CredentialId, "credential";
    /// Identifies a [`Script`](crate::model::Script).
    ScriptId, "script";
    /// Identifies a [`ScriptVersion`](crate::model::ScriptVersion).
    ScriptVersionId, "script version";
    /// Identifies a [`Playbook`](crate::model::Playbook).
    PlaybookId, "playbook";
    /// Identifies a [`PlaybookVersion`](crate::model::PlaybookVersion).
    PlaybookVersionId, "playbook version";
    /// Identifies a [`StagedFile`](crate::model::StagedFile).
    FileId, "file";
    /// Identifies a [`CommandRule`](crate::model::CommandRule) or a [`PathRule`](crate::model::PathRule).
    RuleId, "rule";
    /// Identifies a [`CronJob`](crate::model::CronJob).
    CronJobId, "cron job";
    /// Identifies an [`Execution`](crate::model::Execution); on the wire this is the `task_id`.
    ExecutionId, "execution";
    /// Identifies an [`OutboxEntry`](crate::model::OutboxEntry) delivery; stable across retries.
    DeliveryId, "delivery";
}
