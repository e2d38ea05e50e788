//! The [`Caller`] extractor: who sends a request, as a `job_core` [`Actor`].

use std::collections::BTreeMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use chrono::Duration;
use job_core::model::{Actor, ActorKind, ApiToken, Role, User};

use super::{CSRF_HEADER, SESSION_COOKIE, Session, token_hash};
use crate::AppState;
use crate::error::ApiError;

/// How often at most a token's `last_used_at` is written.
const TOUCH_EVERY_SECS: i64 = 60;

/// How a caller authenticated.
#[derive(Debug, Clone)]
pub(crate) enum Credentials {
    /// A session cookie of this user.
    Session { session: Session },
    /// An API token.
    Token { token: ApiToken },
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// Who acts, with their teams and roles.
    pub(crate) actor: Actor,
    /// The user behind it (the session's user, or the token's creator).
    pub(crate) user: User,
    /// How they authenticated.
    pub(crate) via: Credentials,
}

impl Caller {
    /// The session, for cookie-authenticated callers.
    pub(crate) fn session(&self) -> Option<&Session> {
        match &self.via {
            Credentials::Session { session } => Some(session),
            Credentials::Token { .. } => None,
        }
    }

    /// Refuses callers that are not administrators.
    pub(crate) fn require_admin(&self) -> Result<(), ApiError> {
        if self.actor.is_admin {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "{} is not an administrator; only administrators may do this",
                self.actor.label()
            )))
        }
    }
}

/// The actor of a user logged in to the console.
fn user_actor(user: &User) -> Actor {
    Actor {
        kind: ActorKind::User {
            user_id: user.id,
            username: user.username.to_string(),
        },
        is_admin: user.is_admin,
        teams: user
            .memberships
            .iter()
            .map(|m| (m.team_id, m.role))
            .collect(),
    }
}

/// The actor of a token: its one team, with at most its creator's role there (an
/// administrator's token acts as a maintainer, never as an administrator).
fn token_actor(token: &ApiToken, creator: &User) -> Actor {
    let role = if creator.is_admin {
        Some(Role::Maintainer)
    } else {
        creator
            .memberships
            .iter()
            .find(|m| m.team_id == token.team_id)
            .map(|m| m.role)
    };
    Actor {
        kind: ActorKind::Token {
            token_id: token.id,
            created_by: token.created_by,
            name: token.name.to_string(),
        },
        is_admin: false,
        teams: role
            .map(|r| BTreeMap::from([(token.team_id, r)]))
            .unwrap_or_default(),
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// The API token secret of the request, if it carries one.
fn token_secret(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let v = v.to_str().unwrap_or_default().trim();
        let secret = v
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, s)| s.trim())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ApiError::unauthenticated("the Authorization header must be `Bearer <token>`")
            })?;
        return Ok(Some(secret));
    }
    if let Some(v) = headers.get("api-authorization") {
        let secret = v.to_str().unwrap_or_default().trim();
        if secret.is_empty() {
            return Err(ApiError::unauthenticated(
                "the Api-Authorization header is empty",
            ));
        }
        return Ok(Some(secret));
    }
    Ok(None)
}

async fn by_token(state: &AppState, secret: &str) -> Result<Caller, ApiError> {
    let now = state.now();
    let token = match state.store().get_token_by_hash(&token_hash(secret)).await {
        Ok(t) => t,
        Err(job_core::Error::NotFound { .. }) => {
            return Err(ApiError::unauthenticated("unknown API token"));
        }
        Err(e) => return Err(e.into()),
    };
    if token.revoked_at.is_some() {
        return Err(ApiError::unauthenticated("the API token was revoked"));
    }
    if !token.is_usable_at(now) {
        return Err(ApiError::unauthenticated("the API token has expired"));
    }
    let creator = match state.store().get_user(token.created_by).await {
        Ok(u) => u,
        Err(job_core::Error::NotFound { .. }) => {
            return Err(ApiError::unauthenticated(
                "the API token's user no longer exists",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if creator.disabled {
        return Err(ApiError::unauthenticated(
            "the API token's user is disabled",
        ));
    }
    if token
        .last_used_at
        .is_none_or(|t| now - t >= Duration::seconds(TOUCH_EVERY_SECS))
        && let Err(e) = state.store().touch_token(token.id, now).await
    {
        tracing::warn!(token = %token.id, error = %e, "could not record the token's use");
    }
    Ok(Caller {
        actor: token_actor(&token, &creator),
        user: creator,
        via: Credentials::Token { token },
    })
}

const SESSION_ENDED: &str = "the session has ended or is not valid; log in again";

async fn by_session(state: &AppState, parts: &Parts, value: &str) -> Result<Caller, ApiError> {
    let keys = state.sessions();
    let session = keys
        .verify(value, state.now())
        .ok_or_else(|| ApiError::unauthenticated(SESSION_ENDED))?;
    let user = match state.store().get_user(session.user_id).await {
        Ok(u) => u,
        Err(job_core::Error::NotFound { .. }) => {
            return Err(ApiError::unauthenticated(SESSION_ENDED));
        }
        Err(e) => return Err(e.into()),
    };
    if user.disabled || !keys.matches_password(&session, &user.password_hash) {
        return Err(ApiError::unauthenticated(SESSION_ENDED));
    }
    let unsafe_method = !matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    if unsafe_method {
        match parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
            None => {
                return Err(ApiError::csrf(
                    "a cookie-authenticated write needs the X-CSRF-Token header (the csrf_token from login or /api/v1/auth/me)",
                ));
            }
            Some(t) if !keys.csrf_matches(&session, t) => {
                return Err(ApiError::csrf(
                    "the X-CSRF-Token header does not match this session",
                ));
            }
            Some(_) => {}
        }
    }
    Ok(Caller {
        actor: user_actor(&user),
        user,
        via: Credentials::Session { session },
    })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(secret) = token_secret(&parts.headers)? {
            return by_token(state, secret).await;
        }
        match cookie(&parts.headers, SESSION_COOKIE) {
            Some(value) => by_session(state, parts, value).await,
            None => Err(ApiError::unauthenticated(
                "log in (session cookie) or send an API token (Authorization: Bearer <token>)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn cookies_are_found_among_several_headers() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; jobd_session=xyz"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&h, "jobd_session"), Some("xyz"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn a_malformed_authorization_header_is_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(token_secret(&h).is_err());
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  t1 "),
        );
        assert_eq!(token_secret(&h).unwrap(), Some("t1"));
    }
}
