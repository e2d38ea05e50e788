//! A destination path through `TargetPath` and the built-in path rules.
#![no_main]

use std::sync::OnceLock;

use job_core::model::Os;
use job_core::policy::{PathPolicy, TargetPath, builtin_path_rules};
use libfuzzer_sys::fuzz_target;

static POLICY: OnceLock<PathPolicy> = OnceLock::new();

fuzz_target!(|input: (bool, &str)| {
    let (windows, raw) = input;
    let policy = POLICY.get_or_init(|| {
        PathPolicy::compile(&builtin_path_rules(chrono::Utc::now())).expect("built-ins compile")
    });
    let os = if windows { Os::Windows } else { Os::Linux };
    if let Ok(path) = TargetPath::parse("destination", raw, os) {
        let again =
            TargetPath::parse("destination", path.as_str(), os).expect("canonical form parses");
        assert_eq!(again, path, "canonicalization is idempotent");
        let sep = if windows { '\\' } else { '/' };
        assert!(!path.as_str().split(sep).any(|c| c == ".."));
        let _ = policy.check(None, &path, false);
    }
});
