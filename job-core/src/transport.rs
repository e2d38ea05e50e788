//! The `Transport` trait: run a task on one target, push and pull files (DESIGN §7).
