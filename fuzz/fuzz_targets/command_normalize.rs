//! A rendered script through normalization and the built-in command rules.
#![no_main]

use std::sync::OnceLock;

use job_core::policy::{CommandPolicy, NormalizedScript, builtin_command_rules};
use libfuzzer_sys::fuzz_target;

static POLICY: OnceLock<CommandPolicy> = OnceLock::new();

fuzz_target!(|script: &str| {
    let policy = POLICY.get_or_init(|| {
        CommandPolicy::compile(&builtin_command_rules(chrono::Utc::now()))
            .expect("built-ins compile")
    });
    let normalized = NormalizedScript::new(script);
    // Normalizing the normalized segments again changes nothing.
    for segment in normalized.segment_strings() {
        assert!(!segment.is_empty() && !segment.starts_with(' ') && !segment.ends_with(' '));
        assert!(!segment.contains('\0'));
    }
    let _ = policy.hits_normalized(None, &normalized);
    let _ = policy.check(None, script, true);
});
