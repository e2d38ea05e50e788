//! A user-written command rule pattern through validation and compilation.
#![no_main]

use chrono::Utc;
use job_core::ids::RuleId;
use job_core::model::{CommandRule, RuleLevel};
use job_core::policy::{CommandPolicy, validate_command_pattern};
use job_core::values::{Description, Name};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str)| {
    let (pattern, script) = input;
    let valid = validate_command_pattern(pattern).is_ok();
    let rule = CommandRule {
        id: RuleId::new(),
        name: Name::parse("name", "fuzz").expect("constant name"),
        pattern: pattern.to_owned(),
        level: RuleLevel::Forbidden,
        enabled: true,
        built_in: false,
        team_id: None,
        description: Description::default(),
        created_at: Utc::now(),
    };
    match CommandPolicy::compile([&rule]) {
        Ok(policy) => {
            assert!(valid, "compiled a pattern that validation refused");
            let _ = policy.check(None, script, false);
        }
        Err(_) => assert!(
            !valid,
            "validation accepted a pattern that does not compile"
        ),
    }
});
