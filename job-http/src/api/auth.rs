//! Login, logout and "who am I".

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use job_core::model::Role;
use job_core::values::Username;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::caller::{Caller, Credentials};
use crate::auth::{CSRF_COOKIE, SESSION_COOKIE, dummy_hash, verify_password};
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;

const LOGIN_REFUSED: &str = "unknown username or wrong password";

/// `POST /api/v1/auth/login` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginBody {
    username: String,
    password: String,
}

#[derive(Debug, Serialize)]
struct TeamRole {
    team_id: job_core::ids::TeamId,
    role: Role,
}

fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    max_age: i64,
    http_only: bool,
) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; Max-Age={max_age}; SameSite=Lax");
    if http_only {
        c.push_str("; HttpOnly");
    }
    if state.config().cookie_secure {
        c.push_str("; Secure");
    }
    // Cookie values are base64url or hex: always a valid header value.
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Checks a password off the async threads (argon2 is slow on purpose).
async fn check_password(password: String, phc: String) -> bool {
    tokio::task::spawn_blocking(move || verify_password(&password, &phc))
        .await
        .unwrap_or(false)
}

pub(crate) async fn login(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<LoginBody>,
) -> ApiResult<Response> {
    let user = match Username::parse("username", &body.username) {
        Ok(name) => match state.store().get_user_by_username(&name).await {
            Ok(u) => Some(u),
            Err(job_core::Error::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        },
        Err(_) => None,
    };
    // Unknown users cost as much as wrong passwords, and get the same answer.
    let phc = user
        .as_ref()
        .map_or_else(|| dummy_hash().to_owned(), |u| u.password_hash.clone());
    let ok = check_password(body.password, phc).await;
    let user = match user {
        Some(u) if ok && !u.disabled => u,
        _ => return Err(ApiError::unauthenticated(LOGIN_REFUSED)),
    };
    let ttl = state.config().session_ttl;
    let expires_at = state.now() + Duration::from_std(ttl).unwrap_or(Duration::hours(12));
    let (session, cookie) = state
        .sessions()
        .issue(user.id, &user.password_hash, expires_at);
    let csrf = state.sessions().csrf_token(&session);
    let max_age = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
    let mut response = Json(json!({
        "user": user,
        "csrf_token": csrf,
        "expires_at": expires_at,
    }))
    .into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, &cookie, max_age, true),
    );
    headers.append(
        header::SET_COOKIE,
        set_cookie(&state, CSRF_COOKIE, &csrf, max_age, false),
    );
    tracing::info!(user = %user.username, "logged in");
    Ok(response)
}

pub(crate) async fn logout(State(state): State<AppState>, caller: Caller) -> Response {
    if let Some(session) = caller.session() {
        state.sessions().revoke(session, state.now());
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", 0, true),
    );
    headers.append(
        header::SET_COOKIE,
        set_cookie(&state, CSRF_COOKIE, "", 0, false),
    );
    response
}

pub(crate) async fn me(State(state): State<AppState>, caller: Caller) -> Json<Value> {
    let teams: Vec<TeamRole> = caller
        .actor
        .teams
        .iter()
        .map(|(t, r)| TeamRole {
            team_id: *t,
            role: *r,
        })
        .collect();
    let (via, token, csrf_token) = match &caller.via {
        Credentials::Session { session } => {
            ("session", None, Some(state.sessions().csrf_token(session)))
        }
        Credentials::Token { token } => (
            "token",
            Some(json!({ "id": token.id, "name": token.name, "team_id": token.team_id })),
            None,
        ),
    };
    Json(json!({
        "user": caller.user,
        "actor": caller.actor.label(),
        "is_admin": caller.actor.is_admin,
        "teams": teams,
        "via": via,
        "token": token,
        "csrf_token": csrf_token,
    }))
}
