use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{TeamId, TokenId, UserId};
use crate::values::{Description, Name, Username};

/// A team: the unit of ownership and isolation. Every asset belongs to exactly one team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    /// Its id.
    pub id: TeamId,
    /// Unique name.
    pub name: Name,
    /// Free text.
    #[serde(default)]
    pub description: Description,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// What a member may do within a team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read the team's assets and runs.
    Viewer,
    /// Also launch and cancel runs with the team's assets.
    Operator,
    /// Also create, change and delete the team's assets and rules.
    Maintainer,
}

impl Role {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Maintainer => "maintainer",
        }
    }
}

/// A user's membership of one team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Membership {
    /// The team.
    pub team_id: TeamId,
    /// The role in it.
    pub role: Role,
}

/// A person who logs in to the console or owns API tokens.
///
/// The password is only ever held as an argon2 PHC string; it never leaves the store in an
/// API response (it is skipped when serialized).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// Unique login name.
    pub username: Username,
    /// Name shown to people.
    pub display_name: Name,
    /// The argon2 hash of the password (PHC string format).
    #[serde(skip_serializing, default)]
    pub password_hash: String,
    /// Administrators manage teams, users and global rules, and see every team.
    pub is_admin: bool,
    /// Disabled users cannot log in and their tokens stop working.
    pub disabled: bool,
    /// Team memberships.
    pub memberships: Vec<Membership>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// An API token, bound to one team and to the user who created it. Only its hash is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// Its id.
    pub id: TokenId,
    /// A label for people ("patch-manager", "ci").
    pub name: Name,
    /// The team whose assets the token may use.
    pub team_id: TeamId,
    /// The user who created it; the token acts with at most this user's role in the team.
    pub created_by: UserId,
    /// SHA-256 of the secret, hex. The secret itself is shown once, at creation.
    #[serde(skip_serializing, default)]
    pub token_hash: String,
    /// After this instant the token is refused.
    pub expires_at: Option<DateTime<Utc>>,
    /// Set when revoked; a revoked token is refused.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last used, if ever.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl ApiToken {
    /// Whether the token may be used at `now`.
    pub fn is_usable_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

/// Through what an actor acts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActorKind {
    /// A user in the console (session cookie).
    User {
        /// The user.
        user_id: UserId,
        /// Their login name, snapshotted for the record.
        username: String,
    },
    /// A caller holding an API token.
    Token {
        /// The token.
        token_id: TokenId,
        /// The user who created the token.
        created_by: UserId,
        /// The token's label, snapshotted for the record.
        name: String,
    },
    /// The cron scheduler firing a job.
    Scheduler,
    /// A caller on the trusted NATS channel.
    Nats {
        /// The caller's own name, if it gave one (`operator` in BlueKing's contract).
        caller: Option<String>,
    },
}

/// Who performs a use case, with the teams they act for.
///
/// Every use case takes an `Actor`; nothing reads "the current user" from a global.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Through what they act.
    pub kind: ActorKind,
    /// Administrators see and manage every team.
    pub is_admin: bool,
    /// The teams they act for, with their role in each.
    pub teams: BTreeMap<TeamId, Role>,
}

impl Actor {
    /// The actor's role in `team`, if any (administrators act as maintainers everywhere).
    pub fn role_in(&self, team: TeamId) -> Option<Role> {
        if self.is_admin {
            return Some(Role::Maintainer);
        }
        self.teams.get(&team).copied()
    }

    /// The scheduler acting for one team (a cron job's owner).
    pub fn scheduler(team: TeamId) -> Self {
        Self {
            kind: ActorKind::Scheduler,
            is_admin: false,
            teams: BTreeMap::from([(team, Role::Operator)]),
        }
    }

    /// A NATS caller acting for one team.
    pub fn nats(team: TeamId, caller: Option<String>) -> Self {
        Self {
            kind: ActorKind::Nats { caller },
            is_admin: false,
            teams: BTreeMap::from([(team, Role::Operator)]),
        }
    }

    /// A short description for records and logs: `user:alice`, `token:ci`, `scheduler`, `nats`.
    pub fn label(&self) -> String {
        match &self.kind {
            ActorKind::User { username, .. } => format!("user:{username}"),
            ActorKind::Token { name, .. } => format!("token:{name}"),
            ActorKind::Scheduler => "scheduler".to_owned(),
            ActorKind::Nats { caller: Some(c) } => format!("nats:{c}"),
            ActorKind::Nats { caller: None } => "nats".to_owned(),
        }
    }
}
