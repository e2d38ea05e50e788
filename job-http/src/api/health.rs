//! Liveness and readiness probes.

use axum::extract::State;
use axum::http::StatusCode;
use job_core::ids::TeamId;
use job_core::store::TeamScope;

use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// `GET /healthz`: the process is up.
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: the node was marked ready and its store answers.
pub(crate) async fn readyz(State(state): State<AppState>) -> ApiResult<(StatusCode, &'static str)> {
    if !state.is_ready() {
        return Err(ApiError::unavailable("the node is starting up"));
    }
    // A lookup of an id that cannot exist: "not found" proves the store answered.
    match state.store().get_team(&TeamScope::All, TeamId::new()).await {
        Ok(_) | Err(job_core::Error::NotFound { .. }) => Ok((StatusCode::OK, "ready")),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: the store does not answer");
            Err(ApiError::unavailable("the store is not reachable"))
        }
    }
}
