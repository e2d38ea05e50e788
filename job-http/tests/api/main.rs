//! The REST API and SSE, driven over HTTP on loopback as a client would: a real SQLite
//! store, a real engine running local processes, reqwest with cookies.

mod harness;

mod auth;
mod bad_input;
mod executions;
mod isolation;
mod stream;
