//! The routes, and what the handlers share: the team a request acts for, and listings.

mod auth;
mod credentials;
pub(crate) mod executions;
mod groups;
mod health;
mod targets;
mod teams;
mod tokens;
mod users;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use job_core::ids::TeamId;
use job_core::model::Actor;
use job_core::store::{MAX_PAGE, PageRequest};
use serde::Serialize;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::AppState;
use crate::error::ApiError;

/// How long a non-streaming request may take before it is answered 503.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Every route of the API.
pub(crate) fn routes(state: AppState) -> Router {
    let limit = state.config().max_body_bytes;
    let api = Router::new()
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/me", get(auth::me))
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route("/tokens/{id}", axum::routing::delete(tokens::revoke))
        .route("/teams", get(teams::list).post(teams::create))
        .route("/teams/{id}", get(teams::get).delete(teams::delete))
        .route(
            "/teams/{team}/members/{user}",
            put(teams::set_member).delete(teams::remove_member),
        )
        .route("/users", get(users::list).post(users::create))
        .route("/users/{id}", get(users::get).put(users::update))
        .route(
            "/credentials",
            get(credentials::list).post(credentials::create),
        )
        .route(
            "/credentials/{id}",
            get(credentials::get).delete(credentials::delete),
        )
        .route("/targets", get(targets::list).post(targets::create))
        .route(
            "/targets/{id}",
            get(targets::get)
                .put(targets::update)
                .delete(targets::delete),
        )
        .route("/target-groups", get(groups::list).post(groups::create))
        .route(
            "/target-groups/{id}",
            get(groups::get).put(groups::update).delete(groups::delete),
        )
        .route("/executions", get(executions::list))
        .route("/executions/quick", post(executions::quick))
        .route("/executions/{id}", get(executions::get))
        .route("/executions/{id}/output", get(executions::output))
        .route("/executions/{id}/cancel", post(executions::cancel))
        .route("/executions/{id}/re-execute", post(executions::re_execute))
        .route("/executions/{id}/resume", post(executions::resume))
        .route("/openapi.json", get(crate::openapi::document))
        // A request timeout for everything but the stream, which lasts as long as the run.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(axum::middleware::map_response(timeout_as_json))
        .route("/executions/{id}/stream", get(crate::sse::stream))
        .fallback(not_found);
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .nest("/api/v1", api)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Gives the bare 503 of the timeout layer the API's JSON error body.
async fn timeout_as_json(response: Response) -> Response {
    if response.status() == StatusCode::SERVICE_UNAVAILABLE
        && !response.headers().contains_key(header::CONTENT_TYPE)
    {
        return ApiError::unavailable("the request took too long; try again").into_response();
    }
    response
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

/// The team a request for a team asset acts for: the one given, else the actor's only
/// team. An actor of several teams must say which (400 naming `team_id`).
pub(crate) fn pick_team(actor: &Actor, given: Option<TeamId>) -> Result<TeamId, ApiError> {
    if let Some(team) = given {
        return Ok(team);
    }
    let mut teams = actor.teams.keys();
    match (teams.next(), teams.next()) {
        (Some(team), None) => Ok(*team),
        (None, _) => Err(ApiError::invalid(
            "team_id",
            "invalid team_id: required, as you belong to no team",
        )),
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "team_id",
            "invalid team_id: required, as you belong to several teams",
        )),
    }
}

/// One page of a listing, as answered: `{items, next}`.
#[derive(Debug, Serialize)]
pub(crate) struct PageOut<T> {
    pub(crate) items: Vec<T>,
    pub(crate) next: Option<String>,
}

/// The filter of an asset listing from its `team_id` and `name` query parameters (an empty
/// name filters nothing).
pub(crate) fn asset_filter(
    team_id: Option<&str>,
    name: Option<String>,
) -> job_core::Result<job_core::store::AssetFilter> {
    Ok(job_core::store::AssetFilter {
        team_id: team_id
            .map(|t| TeamId::parse_field("team_id", t))
            .transpose()?,
        name_contains: name.filter(|n| !n.is_empty()),
    })
}

/// Parses `limit` (1..=1000, default 50) and `after` (an id cursor) of a listing.
pub(crate) fn page_request<K>(
    limit: Option<&str>,
    after: Option<&str>,
    parse_after: impl FnOnce(&str) -> job_core::Result<K>,
) -> Result<PageRequest<K>, ApiError> {
    let limit = match limit.map(str::trim).filter(|v| !v.is_empty()) {
        None => 50,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid(
                    "limit",
                    format!("invalid limit: must be a whole number from 1 to {MAX_PAGE}"),
                ));
            }
        },
    };
    let after = match after.map(str::trim).filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(parse_after(v)?),
    };
    Ok(PageRequest { after, limit })
}
