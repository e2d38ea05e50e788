//! Teams and memberships. Administrators manage them; members list their own teams.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use job_core::ids::{TeamId, UserId};
use job_core::model::{Role, Team};
use job_core::store::TeamScope;
use job_core::values::{Description, Name};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::caller::Caller;
use crate::error::ApiResult;
use crate::extract::JsonBody;

/// `POST /api/v1/teams` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateTeam {
    name: String,
    #[serde(default)]
    description: Option<String>,
}

/// `PUT /api/v1/teams/{team}/members/{user}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MemberBody {
    role: Role,
}

pub(crate) async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let teams = state
        .store()
        .list_teams(&TeamScope::of(&caller.actor))
        .await?;
    Ok(Json(json!({ "items": teams })))
}

pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateTeam>,
) -> ApiResult<(StatusCode, Json<Team>)> {
    caller.require_admin()?;
    let team = Team {
        id: TeamId::new(),
        name: Name::parse("name", &body.name)?,
        description: Description::parse("description", body.description.as_deref().unwrap_or(""))?,
        created_at: state.now(),
    };
    state.store().create_team(&team).await?;
    Ok((StatusCode::CREATED, Json(team)))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Team>> {
    let id = TeamId::parse_field("id", &id)?;
    Ok(Json(
        state
            .store()
            .get_team(&TeamScope::of(&caller.actor), id)
            .await?,
    ))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let id = TeamId::parse_field("id", &id)?;
    state.store().delete_team(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn member_ids(state: &AppState, team: &str, user: &str) -> ApiResult<(TeamId, UserId)> {
    let team = TeamId::parse_field("team", team)?;
    let user = UserId::parse_field("user", user)?;
    state.store().get_team(&TeamScope::All, team).await?;
    state.store().get_user(user).await?;
    Ok((team, user))
}

pub(crate) async fn set_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((team, user)): Path<(String, String)>,
    JsonBody(body): JsonBody<MemberBody>,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let (team, user) = member_ids(&state, &team, &user).await?;
    state
        .store()
        .set_membership(user, team, Some(body.role))
        .await?;
    Ok(Json(
        json!({ "team_id": team, "user_id": user, "role": body.role }),
    ))
}

pub(crate) async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((team, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let (team, user) = member_ids(&state, &team, &user).await?;
    state.store().set_membership(user, team, None).await?;
    Ok(StatusCode::NO_CONTENT)
}
