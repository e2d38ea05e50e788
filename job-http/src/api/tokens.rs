//! API tokens: created by a user for one team, shown once, revocable.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Duration;
use job_core::ids::{TeamId, TokenId};
use job_core::model::ApiToken;
use job_core::policy::{Access, authorize};
use job_core::store::TeamScope;
use job_core::values::{ExpireDays, Name};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::caller::{Caller, Credentials};
use crate::auth::new_api_token;
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;

/// `POST /api/v1/tokens` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateToken {
    name: String,
    team_id: Option<TeamId>,
    /// Days until the token expires (1–365); no expiry when left out.
    expires_days: Option<i64>,
}

pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateToken>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if matches!(caller.via, Credentials::Token { .. }) {
        return Err(ApiError::forbidden(
            "API tokens cannot create tokens; log in as a user",
        ));
    }
    let name = Name::parse("name", &body.name)?;
    let team_id = super::pick_team(&caller.actor, body.team_id)?;
    authorize(
        &caller.actor,
        team_id,
        Access::Read,
        &format!("team {team_id}"),
    )
    .map_err(|e| ApiError::from(e).with_field("team_id"))?;
    let now = state.now();
    let expires_at = match body.expires_days {
        None => None,
        Some(d) => {
            Some(now + Duration::days(i64::from(ExpireDays::new("expires_days", d)?.days())))
        }
    };
    let (secret, hash) = new_api_token();
    let token = ApiToken {
        id: TokenId::new(),
        name,
        team_id,
        created_by: caller.user.id,
        token_hash: hash,
        expires_at,
        revoked_at: None,
        created_at: now,
        last_used_at: None,
    };
    state.store().create_token(&token).await?;
    let mut out = serde_json::to_value(&token).unwrap_or_default();
    if let Value::Object(map) = &mut out {
        map.insert("token".to_owned(), Value::String(secret));
    }
    Ok((StatusCode::CREATED, Json(out)))
}

pub(crate) async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let tokens = state
        .store()
        .list_tokens(&TeamScope::of(&caller.actor))
        .await?;
    Ok(Json(json!({ "items": tokens })))
}

pub(crate) async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = TokenId::parse_field("id", &id)?;
    let scope = TeamScope::of(&caller.actor);
    let token = state
        .store()
        .list_tokens(&scope)
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ApiError::not_found(format!("token {id} not found")))?;
    // Its creator, or a maintainer of its team, may revoke it.
    if token.created_by != caller.user.id {
        authorize(
            &caller.actor,
            token.team_id,
            Access::Change,
            &format!("token {id}"),
        )?;
    }
    state.store().revoke_token(&scope, id, state.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
