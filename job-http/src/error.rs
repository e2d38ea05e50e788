//! The one error answer of the API: `{"error":{"code","message","field"?,"hits"?}}` with a
//! stable code per status.
//!
//! A `job_core::Error` maps by meaning (`Invalid` → 400 `invalid` naming the field,
//! `NotFound` → 404, `Conflict` → 409, `Forbidden` → 403, `PolicyViolation` → 422 with the
//! hits, `Unavailable` → 503). The text of a 5xx never reaches the client: it is logged.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use job_core::ids::RuleId;
use job_core::model::RuleLevel;
use serde::Serialize;

/// One matched high-risk rule, as the API reports it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct HitWire {
    pub(crate) rule_id: Option<RuleId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    pub(crate) pattern: String,
    pub(crate) level: RuleLevel,
    pub(crate) matched: String,
}

/// An error answer.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
    hits: Option<Vec<HitWire>>,
}

/// The result of a handler.
pub(crate) type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            hits: None,
        }
    }

    /// 400 `invalid`, naming `field`.
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", message).with_field(field)
    }

    /// 401 `unauthenticated`.
    pub(crate) fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// 403 `forbidden`.
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 403 `csrf`.
    pub(crate) fn csrf(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "csrf", message)
    }

    /// 404 `not_found`.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 413 `too_large`.
    pub(crate) fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
        .with_field("body")
    }

    /// 503 `unavailable` with a message safe to show.
    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// Names the field the error is about.
    pub(crate) fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 422 `policy_violation` with the rules that matched.
    pub(crate) fn policy(hits: Vec<HitWire>) -> Self {
        let mut err = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "policy_violation",
            policy_message(&hits),
        );
        err.hits = Some(hits);
        err
    }
}

/// The message of a policy refusal: it says when `confirm: true` would let the run through.
fn policy_message(hits: &[HitWire]) -> String {
    if !hits.is_empty() && hits.iter().all(|h| h.level == RuleLevel::Confirm) {
        "the script matches high-risk rules that need an explicit confirmation: send it again with `confirm: true` to run it anyway".to_owned()
    } else {
        "the script matches forbidden high-risk rules and cannot be run".to_owned()
    }
}

impl From<job_core::Error> for ApiError {
    fn from(e: job_core::Error) -> Self {
        use job_core::Error as E;
        match e {
            E::Invalid { field, reason } => {
                Self::invalid(field.clone(), format!("invalid {field}: {reason}"))
            }
            E::NotFound { what } => {
                // Use cases name the field first where one applies: "targets.target_ids[0]: …".
                let field = what
                    .split_once(": ")
                    .map(|(f, _)| f)
                    .filter(|f| !f.is_empty() && !f.contains(' '))
                    .map(str::to_owned);
                let mut err = Self::not_found(format!("{what} not found"));
                err.field = field;
                err
            }
            E::Conflict { reason } => Self::new(StatusCode::CONFLICT, "conflict", reason),
            E::Forbidden { reason } => Self::forbidden(reason),
            E::PolicyViolation { hits } => {
                let hits: Vec<HitWire> = hits
                    .into_iter()
                    .map(|h| HitWire {
                        rule_id: h.rule_id,
                        name: Some(h.rule),
                        pattern: h.pattern,
                        level: h.level,
                        matched: h.matched,
                    })
                    .collect();
                Self::policy(hits)
            }
            other => {
                // `Unavailable` and anything added later: log the detail, show none of it.
                tracing::error!(error = %other, source = ?std::error::Error::source(&other), "request failed");
                Self::unavailable("the service is temporarily unavailable; try again later")
            }
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hits: Option<&'a [HitWire]>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
                hits: self.hits.as_deref(),
            },
        };
        (self.status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_named_target_reports_its_field() {
        let e = ApiError::from(job_core::Error::not_found(
            "targets.target_ids[0]: target 0193",
        ));
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        assert_eq!(e.field.as_deref(), Some("targets.target_ids[0]"));
        let e = ApiError::from(job_core::Error::not_found("execution 0193"));
        assert_eq!(e.field, None);
    }

    #[test]
    fn unavailable_errors_hide_their_detail() {
        let e = ApiError::from(job_core::Error::unavailable(
            "SELECT * FROM secret_table failed",
            std::io::Error::other("disk on fire"),
        ));
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!e.message.contains("secret_table"));
    }
}
