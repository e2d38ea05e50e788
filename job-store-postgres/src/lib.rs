//! PostgreSQL implementation of [`job_core`]'s `Store` traits, for clusters of `jobd` nodes.
//!
//! It will hold the sqlx PostgreSQL pool, `FOR UPDATE SKIP LOCKED` claims of pending
//! executions and cron occurrences, and embedded migrations that are safe when two nodes start
//! at once. Its tests run the whole `job_core::testkit` store conformance suite against a real
//! server, each run in its own database.
