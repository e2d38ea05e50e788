//! Capability over identity: teams, users with their memberships, and hashed API tokens.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Page, PageRequest, TeamScope};
use crate::Result;
use crate::ids::{TeamId, TokenId, UserId};
use crate::model::{ApiToken, Role, Team, User};
use crate::values::Username;

/// Teams, users, memberships and API tokens.
#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// Stores a new team; a duplicate name is a conflict.
    async fn create_team(&self, team: &Team) -> Result<()>;
    /// The team `id`, if visible.
    async fn get_team(&self, scope: &TeamScope, id: TeamId) -> Result<Team>;
    /// Visible teams, by name.
    async fn list_teams(&self, scope: &TeamScope) -> Result<Vec<Team>>;
    /// Deletes a team; one that still owns anything is a conflict.
    async fn delete_team(&self, id: TeamId) -> Result<()>;

    /// Stores a new user with its memberships; a duplicate username is a conflict.
    async fn create_user(&self, user: &User) -> Result<()>;
    /// The user `id` with its password hash and memberships.
    async fn get_user(&self, id: UserId) -> Result<User>;
    /// The user logging in as `username`.
    async fn get_user_by_username(&self, username: &Username) -> Result<User>;
    /// Replaces a user's display name, password hash and flags (not its memberships).
    async fn update_user(&self, user: &User) -> Result<()>;
    /// Every user, newest first.
    async fn list_users(&self, page: PageRequest<UserId>) -> Result<Page<User, UserId>>;
    /// Sets `user`'s role in `team`, or removes the membership with `None`.
    async fn set_membership(&self, user: UserId, team: TeamId, role: Option<Role>) -> Result<()>;

    /// Stores a new token (only its hash); a duplicate hash is a conflict.
    async fn create_token(&self, token: &ApiToken) -> Result<()>;
    /// The token whose secret hashes to `token_hash`, usable or not (the caller checks
    /// [`ApiToken::is_usable_at`]).
    async fn get_token_by_hash(&self, token_hash: &str) -> Result<ApiToken>;
    /// Tokens of the visible teams, newest first.
    async fn list_tokens(&self, scope: &TeamScope) -> Result<Vec<ApiToken>>;
    /// Revokes a visible token at `at` (revoking twice keeps the first instant).
    async fn revoke_token(&self, scope: &TeamScope, id: TokenId, at: DateTime<Utc>) -> Result<()>;
    /// Records that a token was used at `at`.
    async fn touch_token(&self, id: TokenId, at: DateTime<Utc>) -> Result<()>;
}
