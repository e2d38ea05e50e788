//! The `Store` traits, split by capability (DESIGN §7). Filled by the storage work.
