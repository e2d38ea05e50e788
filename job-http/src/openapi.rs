//! The OpenAPI 3.1 document of the API, hand-written in `openapi.json` and served as is.

use axum::http::header;
use axum::response::IntoResponse;

/// The document's text.
pub(crate) const DOCUMENT: &str = include_str!("openapi.json");

/// `GET /api/v1/openapi.json`.
pub(crate) async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::DOCUMENT;

    const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

    /// `(method, path)` of every route registered in `api/mod.rs`, read from its source.
    fn routes_of_the_router() -> BTreeSet<(String, String)> {
        let src = include_str!("api/mod.rs");
        let body = src
            .split("pub(crate) fn routes(")
            .nth(1)
            .expect("the routes function");
        let body = body.split("\n}\n").next().unwrap_or(body);
        let mut out = BTreeSet::new();
        for part in body.split(".route(").skip(1) {
            let path = part.split('"').nth(1).expect("a route path");
            let full = if path == "/healthz" || path == "/readyz" {
                path.to_owned()
            } else {
                format!("/api/v1{path}")
            };
            for m in METHODS {
                let needle = format!("{m}(");
                let mut rest = part;
                while let Some(i) = rest.find(&needle) {
                    let before = rest[..i].chars().next_back();
                    if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                        out.insert((m.to_owned(), full.clone()));
                        break;
                    }
                    rest = &rest[i + needle.len()..];
                }
            }
        }
        out
    }

    #[test]
    fn the_document_parses_and_lists_exactly_the_routes_of_the_router() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).expect("valid JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        let routes = routes_of_the_router();
        assert!(routes.len() >= 35, "found only {} routes", routes.len());
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for m in METHODS {
                if item.get(m).is_some() {
                    documented.insert((m.to_owned(), path.clone()));
                }
            }
        }
        let missing: Vec<_> = routes.difference(&documented).collect();
        let stale: Vec<_> = documented.difference(&routes).collect();
        assert!(
            missing.is_empty(),
            "routes missing from openapi.json: {missing:?}"
        );
        assert!(stale.is_empty(), "documented but not routed: {stale:?}");
    }

    #[test]
    fn every_reference_in_the_document_resolves() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).expect("valid JSON");
        let text = DOCUMENT;
        for piece in text.split("\"$ref\": \"#/components/schemas/").skip(1) {
            let name = piece.split('"').next().expect("a name");
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "unresolved $ref {name}"
            );
        }
    }
}
