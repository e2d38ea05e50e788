//! The HTTP face of the job platform, built on axum.
//!
//! It will hold the REST API under `/api/v1` (console and open API), authentication by session
//! cookie and API token, SSE live output with `Last-Event-ID` resume, the OpenAPI document and
//! the server-rendered web console.
