//! SQLite implementation of [`job_core`]'s `Store` traits: the embedded default of `jobd`.
//!
//! It will hold the sqlx SQLite pool (WAL, busy timeout, foreign keys on, serialized writes
//! with concurrent readers) and the embedded migrations applied on open, and it runs the
//! whole `job_core::testkit` store conformance suite in its tests.
