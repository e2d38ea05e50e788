//! Users, for administrators.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use job_core::ids::{TeamId, UserId};
use job_core::model::{Membership, Role, User};
use job_core::values::{Name, Username};
use serde::Deserialize;

use crate::AppState;
use crate::api::{PageOut, page_request};
use crate::auth::caller::Caller;
use crate::auth::hash_password;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, QueryParams};

/// The shortest password accepted for a new or changed password.
const MIN_PASSWORD_CHARS: usize = 8;

/// `POST /api/v1/users` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateUser {
    username: String,
    password: String,
    display_name: Option<String>,
    #[serde(default)]
    is_admin: bool,
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    memberships: Vec<MembershipBody>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MembershipBody {
    team_id: TeamId,
    role: Role,
}

/// `PUT /api/v1/users/{id}` body: every field optional, absent ones unchanged.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateUser {
    password: Option<String>,
    display_name: Option<String>,
    is_admin: Option<bool>,
    disabled: Option<bool>,
}

/// `GET /api/v1/users` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    limit: Option<String>,
    after: Option<String>,
}

async fn hashed(password: String) -> ApiResult<String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::invalid(
            "password",
            format!("invalid password: must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|_| ApiError::unavailable("password hashing failed"))?
        .map_err(ApiError::from)
}

pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    caller.require_admin()?;
    let username = Username::parse("username", &body.username)?;
    let display_name = Name::parse(
        "display_name",
        body.display_name.as_deref().unwrap_or(username.as_str()),
    )?;
    for (i, m) in body.memberships.iter().enumerate() {
        state
            .store()
            .get_team(&job_core::store::TeamScope::All, m.team_id)
            .await
            .map_err(|e| ApiError::from(e).with_field(format!("memberships[{i}].team_id")))?;
    }
    let user = User {
        id: UserId::new(),
        username,
        display_name,
        password_hash: hashed(body.password).await?,
        is_admin: body.is_admin,
        disabled: body.disabled,
        memberships: body
            .memberships
            .iter()
            .map(|m| Membership {
                team_id: m.team_id,
                role: m.role,
            })
            .collect(),
        created_at: state.now(),
    };
    state.store().create_user(&user).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<ListQuery>,
) -> ApiResult<Json<PageOut<User>>> {
    caller.require_admin()?;
    let page = page_request(q.limit.as_deref(), q.after.as_deref(), |v| {
        UserId::parse_field("after", v)
    })?;
    let got = state.store().list_users(page).await?;
    Ok(Json(PageOut {
        items: got.items,
        next: got.next.map(|n| n.to_string()),
    }))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<User>> {
    let id = UserId::parse_field("id", &id)?;
    if id != caller.user.id {
        caller.require_admin()?;
    }
    Ok(Json(state.store().get_user(id).await?))
}

pub(crate) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateUser>,
) -> ApiResult<Json<User>> {
    caller.require_admin()?;
    let id = UserId::parse_field("id", &id)?;
    let mut user = state.store().get_user(id).await?;
    if let Some(name) = body.display_name {
        user.display_name = Name::parse("display_name", &name)?;
    }
    if let Some(is_admin) = body.is_admin {
        user.is_admin = is_admin;
    }
    if let Some(disabled) = body.disabled {
        user.disabled = disabled;
    }
    if let Some(password) = body.password {
        // A new hash also ends every session of the user (their cookies carry the old
        // hash's fingerprint).
        user.password_hash = hashed(password).await?;
    }
    state.store().update_user(&user).await?;
    Ok(Json(user))
}
