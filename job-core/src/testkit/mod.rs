//! Public conformance suites that every backend's tests call (feature `testkit`).
//!
//! Like `object_store`'s integration module: each case is a `pub async fn` taking the
//! backend as a trait object, so a new backend is done when its tests call every case and
//! they pass.

pub mod resolver;
pub mod store;
pub mod transport;

pub use resolver::FixedResolver;
