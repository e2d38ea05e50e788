//! Request extractors whose refusals are API errors naming the field: JSON bodies
//! (malformed, unknown fields, wrong types, too large) and query strings.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::ApiError;

/// A JSON request body, parsed with the field path of any error.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub(crate) T);

/// A JSON request body that may be left out entirely (an empty body is `T::default()`).
#[derive(Debug)]
pub(crate) struct OptionalJsonBody<T>(pub(crate) T);

async fn read_body(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    let limit = state.config().max_body_bytes;
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(limit)
        } else {
            ApiError::invalid(
                "body",
                format!("the request body could not be read: {rejection}"),
            )
        }
    })
}

/// Parses `bytes` as `T`, naming the field of a data error and refusing trailing input.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        json_error(&path, &inner)
    })?;
    de.end().map_err(|e| json_error(".", &e))?;
    Ok(value)
}

fn json_error(path: &str, e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::invalid("body", format!("malformed JSON: {e}"))
        }
        Category::Data => {
            let text = e.to_string();
            // serde_json appends " at line L column C"; the field path says more.
            let reason = text
                .rsplit_once(" at line ")
                .map_or(text.as_str(), |(r, _)| r)
                .to_owned();
            let base = if path == "." { "" } else { path };
            let field = match unknown_field(&reason) {
                Some(name) if base.is_empty() => name.to_owned(),
                Some(name) if !base.ends_with(name) => format!("{base}.{name}"),
                _ if base.is_empty() => "body".to_owned(),
                _ => base.to_owned(),
            };
            // Values checked by job-core already say "invalid <field>: …".
            let message = if reason.starts_with("invalid ") && reason.contains(':') {
                reason
            } else {
                format!("invalid {field}: {reason}")
            };
            ApiError::invalid(field, message)
        }
    }
}

/// The field name of serde's "unknown field `x`, expected …" message.
fn unknown_field(reason: &str) -> Option<&str> {
    let (_, rest) = reason.split_once("unknown field `")?;
    rest.split_once('`').map(|(name, _)| name)
}

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::invalid(
                "body",
                "the request body is empty; expected a JSON object",
            ));
        }
        parse_json(&bytes).map(Self)
    }
}

impl<T: DeserializeOwned + Default> FromRequest<AppState> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        parse_json(&bytes).map(Self)
    }
}

/// A query string; unknown parameters are refused naming them. Query structs hold text
/// (`Option<String>`) that handlers parse with the field name, so the only refusal here is
/// an unknown or repeated parameter.
#[derive(Debug)]
pub(crate) struct QueryParams<T>(pub(crate) T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(Self(v)),
            Err(rejection) => {
                let text = rejection.body_text();
                let reason = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                let field = unknown_field(reason).unwrap_or("query").to_owned();
                Err(ApiError::invalid(
                    field,
                    format!("invalid query string: {reason}"),
                ))
            }
        }
    }
}

/// Parses an optional query value with `parse`, naming `field`.
pub(crate) fn parse_opt<T>(
    field: &str,
    value: Option<&str>,
    parse: impl FnOnce(&str) -> Option<T>,
    expected: &str,
) -> Result<Option<T>, ApiError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => parse(v).map(Some).ok_or_else(|| {
            ApiError::invalid(field, format!("invalid {field}: `{v}` is not {expected}"))
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        #[serde(default)]
        inner: Option<InnerBody>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct InnerBody {
        timeout: Option<i64>,
    }

    fn field_of(json: &str) -> String {
        let e = parse_json::<Outer>(json.as_bytes()).unwrap_err();
        format!("{e:?}")
    }

    #[test]
    fn body_errors_name_the_field() {
        assert!(field_of(r#"{"name":"a","bogus":1}"#).contains("field: Some(\"bogus\")"));
        assert!(
            field_of(r#"{"name":"a","inner":{"timeout":"x"}}"#)
                .contains("field: Some(\"inner.timeout\")")
        );
        assert!(
            field_of(r#"{"name":"a","inner":{"nope":1}}"#).contains("field: Some(\"inner.nope\")")
        );
        assert!(field_of(r#"{"name":"a""#).contains("malformed JSON"));
        assert!(field_of(r#"{"name":"a"} x"#).contains("malformed JSON"));
        assert!(field_of(r#"{}"#).contains("missing field `name`"));
    }
}
