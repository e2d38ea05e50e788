//! Path canonicalization, path rules (deny wins, allow lists) and traversal attempts.

use chrono::Utc;
use job_core::Error;
use job_core::ids::{RuleId, TeamId};
use job_core::model::{Os, PathMatchType, PathRule, PathRuleKind, RuleLevel};
use job_core::policy::{
    OUTSIDE_ALLOW_RULES, PathPolicy, TargetPath, builtin_path_rules, validate_path_rule,
};
use job_core::values::{Description, Name};
use proptest::prelude::*;

fn linux(p: &str) -> TargetPath {
    TargetPath::parse("destination", p, Os::Linux).unwrap()
}

fn windows(p: &str) -> TargetPath {
    TargetPath::parse("destination", p, Os::Windows).unwrap()
}

fn builtins() -> PathPolicy {
    PathPolicy::compile(&builtin_path_rules(Utc::now())).unwrap()
}

fn levels(policy: &PathPolicy, team: Option<TeamId>, path: &TargetPath) -> Vec<RuleLevel> {
    policy.hits(team, path).iter().map(|h| h.level).collect()
}

#[test]
fn traversal_attempts_are_refused_before_any_rule_is_consulted() {
    for attempt in [
        "/tmp/../etc/shadow",
        "/tmp/upload/../../root/.ssh",
        "/..",
        "/tmp/..",
        "../etc/passwd",
        "tmp/x",
        "",
        "/etc/shadow\0.txt",
        "/tmp/x\n/etc/shadow",
        "/tmp/\u{1b}[2J",
    ] {
        match TargetPath::parse("destination", attempt, Os::Linux) {
            Err(Error::Invalid { field, .. }) => assert_eq!(field, "destination"),
            other => panic!("{attempt:?} was not refused: {other:?}"),
        }
    }
    for attempt in [
        r"C:\Temp\..\Windows\System32",
        r"C:/Temp/../Windows",
        r"C:\Temp\...\Windows",
        r"\\server\c$\Windows",
        r"\\?\C:\Windows",
        r"\Windows\System32",
        r"C:Windows",
        r"C:\Windows\System32\config\SAM:stream",
    ] {
        assert!(
            TargetPath::parse("destination", attempt, Os::Windows).is_err(),
            "{attempt:?} was not refused"
        );
    }
}

#[test]
fn spelled_differently_system_paths_still_hit_the_built_in_rules() {
    let p = builtins();
    for (path, level) in [
        ("/etc/shadow", RuleLevel::Forbidden),
        ("//etc//shadow", RuleLevel::Forbidden),
        ("/etc/./shadow/", RuleLevel::Forbidden),
        ("/root/.ssh/authorized_keys", RuleLevel::Forbidden),
        ("/boot", RuleLevel::Forbidden),
        ("/dev/sda", RuleLevel::Forbidden),
        ("/proc/sys/kernel", RuleLevel::Forbidden),
        ("/sys/", RuleLevel::Forbidden),
        ("/etc/nginx/nginx.conf", RuleLevel::Confirm),
        ("/usr/bin/", RuleLevel::Confirm),
        ("/sbin/init", RuleLevel::Confirm),
    ] {
        assert!(
            levels(&p, None, &linux(path)).contains(&level),
            "{path} should hit at {level}"
        );
    }
    for (path, level) in [
        (r"c:\windows\system32\CONFIG\sam", RuleLevel::Forbidden),
        (
            r"C:/Windows/System32/drivers/etc/hosts",
            RuleLevel::Forbidden,
        ),
        (r"C:\Windows.\System32. \config", RuleLevel::Forbidden),
        (r"c:\WINDOWS\Temp", RuleLevel::Confirm),
        (r"C:\Program Files\App", RuleLevel::Confirm),
    ] {
        assert!(
            levels(&p, None, &windows(path)).contains(&level),
            "{path} should hit at {level}"
        );
    }
}

#[test]
fn ordinary_destinations_pass_the_built_in_rules() {
    let p = builtins();
    for path in [
        "/tmp",
        "/opt/app/releases",
        "/home/deploy/.config",
        "/etcetera",
        "/devices",
    ] {
        assert!(p.hits(None, &linux(path)).is_empty(), "{path}");
    }
    for path in [r"D:\deploy", r"C:\Temp\x", r"C:\WindowsApps2"] {
        assert!(p.hits(None, &windows(path)).is_empty(), "{path}");
    }
}

fn rule(
    pattern: &str,
    match_type: PathMatchType,
    kind: PathRuleKind,
    level: RuleLevel,
    team_id: Option<TeamId>,
) -> PathRule {
    PathRule {
        id: RuleId::new(),
        name: Name::parse("name", pattern).unwrap(),
        pattern: pattern.to_owned(),
        match_type,
        kind,
        level,
        windows: pattern.contains(':'),
        enabled: true,
        built_in: false,
        team_id,
        description: Description::default(),
        created_at: Utc::now(),
    }
}

#[test]
fn where_a_team_has_allow_rules_destinations_outside_them_are_refused() {
    use PathMatchType::{Prefix, Regex};
    use PathRuleKind::{Allow, Deny};
    let (ours, theirs) = (TeamId::new(), TeamId::new());
    let rules = vec![
        rule("/srv/app", Prefix, Allow, RuleLevel::Forbidden, Some(ours)),
        rule(
            r"^/data/[a-z]+/incoming$",
            Regex,
            Allow,
            RuleLevel::Forbidden,
            Some(ours),
        ),
        rule("/srv/app/secrets", Prefix, Deny, RuleLevel::Forbidden, None),
    ];
    let policy = PathPolicy::compile(&rules).unwrap();
    assert!(
        policy
            .check(Some(ours), &linux("/srv/app/releases"), false)
            .unwrap()
            .is_empty()
    );
    assert!(
        policy
            .check(Some(ours), &linux("/data/web/incoming/"), false)
            .unwrap()
            .is_empty()
    );
    let Err(Error::PolicyViolation { hits }) = policy.check(Some(ours), &linux("/tmp"), true)
    else {
        panic!("outside the allow rules must be refused");
    };
    assert_eq!(hits[0].rule, OUTSIDE_ALLOW_RULES);
    // deny wins over allow
    assert!(
        policy
            .check(Some(ours), &linux("/srv/app/secrets/key"), true)
            .is_err()
    );
    // another team has no allow rules, so only the deny rule applies to it
    assert!(
        policy
            .check(Some(theirs), &linux("/tmp"), false)
            .unwrap()
            .is_empty()
    );
    assert!(
        policy
            .check(Some(theirs), &linux("/srv/app/secrets"), false)
            .is_err()
    );
}

#[test]
fn confirm_path_rules_pass_only_with_confirmation() {
    let p = builtins();
    assert!(p.check(None, &linux("/etc/app.conf"), false).is_err());
    assert_eq!(
        p.check(None, &linux("/etc/app.conf"), true).unwrap().len(),
        1
    );
    assert!(p.check(None, &linux("/etc/shadow"), true).is_err());
}

#[test]
fn bad_path_rule_patterns_are_refused_when_saved() {
    use PathMatchType::{Prefix, Regex};
    let bad = [
        rule(
            "etc",
            Prefix,
            PathRuleKind::Deny,
            RuleLevel::Forbidden,
            None,
        ),
        rule(
            "/a/../b",
            Prefix,
            PathRuleKind::Deny,
            RuleLevel::Forbidden,
            None,
        ),
        rule("/(", Regex, PathRuleKind::Deny, RuleLevel::Forbidden, None),
    ];
    for r in &bad {
        match validate_path_rule(r) {
            Err(Error::Invalid { field, .. }) => assert_eq!(field, "pattern"),
            other => panic!("{}: {other:?}", r.pattern),
        }
    }
}

fn path_chars() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("/".to_owned()),
            Just("\\".to_owned()),
            Just(".".to_owned()),
            Just("..".to_owned()),
            Just(" ".to_owned()),
            Just(":".to_owned()),
            "[a-zA-Z0-9_-]{1,4}",
            "\\PC",
        ],
        0..12,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn canonicalization_is_idempotent_and_never_yields_dot_dot(tail in path_chars(), win in any::<bool>()) {
        let (raw, os) = if win { (format!("C:{tail}"), Os::Windows) } else { (format!("/{tail}"), Os::Linux) };
        if let Ok(p) = TargetPath::parse("p", &raw, os) {
            let again = TargetPath::parse("p", p.as_str(), os).unwrap();
            prop_assert_eq!(&again, &p);
            let sep = if win { '\\' } else { '/' };
            prop_assert!(!p.as_str().split(sep).any(|c| c == ".." || c == "."));
            let doubled = if win { "\\\\" } else { "//" };
            prop_assert!(!p.as_str().contains(doubled));
        }
    }

    #[test]
    fn arbitrary_input_never_panics_and_never_escapes_with_dot_dot(raw in "\\PC{0,40}", win in any::<bool>()) {
        let os = if win { Os::Windows } else { Os::Linux };
        if let Ok(p) = TargetPath::parse("p", &raw, os) {
            prop_assert!(!p.as_str().contains("/../") && !p.as_str().ends_with("/.."));
            prop_assert!(!p.as_str().contains("\\..\\") && !p.as_str().ends_with("\\.."));
        }
    }
}
