//! `jobd token create`: a new API token for a user in a team, printed once.

use chrono::{Duration as Days, Utc};
use job_core::Error;
use job_core::ids::TokenId;
use job_core::model::ApiToken;
use job_core::store::{Store, TeamScope};
use job_core::values::{Name, Username};

use crate::Failure;

/// What `token create` was asked for.
#[derive(Debug)]
pub(crate) struct TokenRequest<'a> {
    /// The user the token acts for.
    pub(crate) user: &'a str,
    /// The team whose assets it may use.
    pub(crate) team: &'a str,
    /// Its label.
    pub(crate) name: &'a str,
    /// Days until it expires; `None` for never.
    pub(crate) expires_days: Option<u32>,
}

/// A created token: its record and the secret, which exists nowhere else.
#[derive(Debug)]
pub(crate) struct CreatedToken {
    /// What is stored.
    pub(crate) token: ApiToken,
    /// The secret to hand to the caller.
    pub(crate) secret: String,
}

/// Creates the token: the user and the team must exist (by name), and the user must be a
/// member of the team unless they are an administrator.
pub(crate) async fn create_token(
    store: &dyn Store,
    request: &TokenRequest<'_>,
) -> Result<CreatedToken, Failure> {
    let name = Name::parse("--name", request.name).map_err(|e| Failure::Usage(e.to_string()))?;
    let username =
        Username::parse("--user", request.user).map_err(|e| Failure::Usage(e.to_string()))?;
    let expires_days = match request.expires_days {
        Some(0) => {
            return Err(Failure::Usage(
                "invalid --expires-days: must be at least 1 (leave it out for a token that does not expire)".to_owned(),
            ));
        }
        Some(d) if d > 3650 => {
            return Err(Failure::Usage(
                "invalid --expires-days: must be at most 3650 (ten years)".to_owned(),
            ));
        }
        other => other,
    };
    let user = match store.get_user_by_username(&username).await {
        Ok(user) => user,
        Err(Error::NotFound { .. }) => {
            return Err(Failure::Run(format!("unknown user `{}`", request.user)));
        }
        Err(e) => return Err(Failure::Run(format!("cannot read users: {e}"))),
    };
    if user.disabled {
        return Err(Failure::Run(format!(
            "user `{}` is disabled; its tokens would not work",
            request.user
        )));
    }
    let teams = store
        .list_teams(&TeamScope::All)
        .await
        .map_err(|e| Failure::Run(format!("cannot read teams: {e}")))?;
    let Some(team) = teams.into_iter().find(|t| t.name.as_str() == request.team) else {
        return Err(Failure::Run(format!("unknown team `{}`", request.team)));
    };
    if !user.is_admin && !user.memberships.iter().any(|m| m.team_id == team.id) {
        return Err(Failure::Run(format!(
            "user `{}` is not a member of team `{}`",
            request.user, request.team
        )));
    }
    let (secret, token_hash) = job_http::auth::new_api_token();
    let now = Utc::now();
    let token = ApiToken {
        id: TokenId::new(),
        name,
        team_id: team.id,
        created_by: user.id,
        token_hash,
        expires_at: expires_days.map(|d| now + Days::days(i64::from(d))),
        revoked_at: None,
        created_at: now,
        last_used_at: None,
    };
    store
        .create_token(&token)
        .await
        .map_err(|e| Failure::Run(format!("cannot store the token: {e}")))?;
    Ok(CreatedToken { token, secret })
}
