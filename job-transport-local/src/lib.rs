//! Runs a task on the control node itself as a local process group.
//!
//! It will hold the process runner shared by the control node's own target and by
//! `jobd agent`: interpreter choice, environment and working directory, streamed and capped
//! stdout/stderr, and timeout and cancel that kill the whole process group, children included.
