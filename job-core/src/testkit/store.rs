//! The store conformance suite. Filled by the storage work.
