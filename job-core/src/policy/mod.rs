//! High-risk command and path rules and team access (DESIGN §5). Filled by the policy work.
