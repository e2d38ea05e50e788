//! Public conformance suites that every backend's tests call, and store decorators for
//! tests (feature `testkit`).
//!
//! Like `object_store`'s integration module: each case is a `pub async fn` taking the
//! backend as a trait object, so a new backend is done when its tests call every case and
//! they pass.
//!
//! Like `object_store`'s `limit.rs` and `throttle.rs`, the decorators wrap any store and are
//! stores themselves: [`FaultyStore`] makes chosen calls fail with
//! [`Error::Unavailable`](crate::Error::Unavailable), wait, or lose the connection until it
//! is restored, and [`CountingStore`] counts calls per [`StoreMethod`]. Engine tests run
//! over them to show what a run does when its store fails mid-way.

mod decorators;
pub mod store;
pub mod transport;

pub use crate::callback::FixedResolver;
pub use decorators::{CountingStore, FaultyStore, StoreMethod};
