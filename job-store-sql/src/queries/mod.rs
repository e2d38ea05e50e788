//! The queries of every store trait, written once with `$N` placeholders.
//!
//! This folder is compiled once per backend (`#[path]` from `sqlite/mod.rs` and
//! `postgres/mod.rs`), with that backend's `dialect` and store type in scope, so each
//! backend's code is monomorphic: no generic bounds over `sqlx::Database`, no query builder
//! at run time.

use super::SqlStore;
use super::dialect;

mod assets;
mod db;
mod executions;
mod host_runs;
mod identity;
mod library;
mod outbox;
mod output;
mod rules;
mod stats;
