//! The SQL core of the job platform's stores: every query of [`job_core`]'s
//! [`Store`](job_core::store::Store) traits written once, compiled for SQLite (feature
//! `sqlite`) and PostgreSQL (feature `postgres`).
//!
//! The shared queries live in `src/queries/` and are written with `$N` placeholders, which
//! both databases accept. Each backend module (`sqlite`, `postgres`) compiles them with its own
//! `dialect` module in scope, the one place where the databases differ: the concrete sqlx
//! types, how an instant is stored, the text search function, row locks, the claim of
//! executions (PostgreSQL: one `UPDATE … FROM (SELECT … FOR NO KEY UPDATE SKIP LOCKED)`;
//! SQLite: select then update on the single writer), the dashboard's day and duration
//! arithmetic, and what the tokens of the migrations (written once, in `migrations/`) render
//! to. Each backend is thus monomorphic
//! code, as fast as a hand-written store, with no generic bounds over `sqlx::Database` and no
//! run-time query builder.
//!
//! Applications use the thin crates `job-store-sqlite` and `job-store-postgres`, which
//! re-export [`sqlite::SqliteStore`] and [`postgres::PgStore`].

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod common;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod migrations;

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;
