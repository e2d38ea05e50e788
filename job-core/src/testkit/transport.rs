//! The transport conformance suite. Filled by the transport work.
