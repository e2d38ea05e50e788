//! Agentless targets over SSH (russh): run scripts, push and pull files, run Ansible playbooks.
//!
//! It will hold key and password authentication, host-key verification against known_hosts,
//! pooled keep-alive connections, scripts sent over stdin (never on the command line), a real
//! kill of the remote process group on cancel and timeout, and sha256-verified file transfer.
