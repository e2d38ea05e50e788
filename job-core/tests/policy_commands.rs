//! Built-in command rules against evasion attempts, user rules, scoping and confirmation.

use chrono::Utc;
use job_core::Error;
use job_core::ids::{RuleId, TeamId};
use job_core::model::{CommandRule, RuleLevel};
use job_core::policy::{CommandPolicy, builtin_command_rules, check_script};
use job_core::values::{Description, Name};

/// The published list of known limits; every `KnownLimit` below must appear in it verbatim.
const POLICY_DOC: &str = include_str!("../../docs/policy.md");

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Refused by a built-in rule at this level.
    Caught(RuleLevel),
    /// Not caught; the snippet is listed in docs/policy.md under "Known limits".
    KnownLimit,
}

use Expect::{Caught, KnownLimit};
const FORBIDDEN: Expect = Caught(RuleLevel::Forbidden);
const CONFIRM: Expect = Caught(RuleLevel::Confirm);

const EVASIONS: &[(&str, Expect)] = &[
    // the plain forms
    ("rm -rf /", FORBIDDEN),
    ("rm -rf /*", FORBIDDEN),
    ("rm -rf //", FORBIDDEN),
    ("rm -rf /.", FORBIDDEN),
    // spacing
    ("rm  -rf   /", FORBIDDEN),
    ("rm\t-rf\t/", FORBIDDEN),
    ("   rm -rf /   ", FORBIDDEN),
    ("rm -rf /\r\n", FORBIDDEN),
    // quoting
    ("rm -rf \"/\"", FORBIDDEN),
    ("rm -rf '/'", FORBIDDEN),
    ("\"rm\" \"-rf\" \"/\"", FORBIDDEN),
    ("r\"m\" -rf /", FORBIDDEN),
    ("r''m -rf /", FORBIDDEN),
    ("\\rm -rf /", FORBIDDEN),
    // path-qualified binaries and wrappers
    ("/bin/rm -rf /", FORBIDDEN),
    ("/usr/bin/rm -rf /", FORBIDDEN),
    ("sudo rm -rf /", FORBIDDEN),
    ("sudo -u root /bin/rm -rf /", FORBIDDEN),
    ("command rm -rf /", FORBIDDEN),
    ("nohup rm -rf / &", FORBIDDEN),
    ("xargs rm -rf / < list", FORBIDDEN),
    // split, reordered and long flags
    ("rm -r -f /", FORBIDDEN),
    ("rm -fr /", FORBIDDEN),
    ("rm -Rf /", FORBIDDEN),
    ("rm -f -R /", FORBIDDEN),
    ("rm --recursive --force /", FORBIDDEN),
    ("rm -rf --no-preserve-root /", FORBIDDEN),
    ("rm --no-preserve-root -rf /", FORBIDDEN),
    ("rm -rf / --no-preserve-root", FORBIDDEN),
    ("rm / -rf", FORBIDDEN),
    ("rm -rf -- /", FORBIDDEN),
    ("rm -rf /tmp/build /", FORBIDDEN),
    ("rm -rf /etc", FORBIDDEN),
    ("rm -rf /usr/", FORBIDDEN),
    // line continuations
    ("rm -rf \\\n/", FORBIDDEN),
    ("rm \\\n  -rf \\\n  /", FORBIDDEN),
    ("rm -rf \\\r\n/", FORBIDDEN),
    // command lists, pipes and substitutions
    ("echo ok; rm -rf /", FORBIDDEN),
    ("true && rm -rf /", FORBIDDEN),
    ("false || rm -rf /", FORBIDDEN),
    ("echo y | rm -rf /", FORBIDDEN),
    ("echo $(rm -rf /)", FORBIDDEN),
    ("echo `rm -rf /`", FORBIDDEN),
    ("(rm -rf /)", FORBIDDEN),
    ("{ rm -rf /; }", FORBIDDEN),
    ("if true; then rm -rf /; fi", FORBIDDEN),
    ("bash -c \"rm -rf /\"", FORBIDDEN),
    ("sh -c 'rm -rf /'", FORBIDDEN),
    ("python3 -c \"import os; os.system('rm -rf /')\"", FORBIDDEN),
    // other destructive commands
    ("mkfs.ext4 /dev/sda1", FORBIDDEN),
    ("mkfs -t xfs /dev/nvme0n1", FORBIDDEN),
    ("dd if=/dev/zero of=/dev/sda bs=1M", FORBIDDEN),
    ("dd if=/dev/urandom  of=/dev/nvme0n1", FORBIDDEN),
    ("cat image.iso > /dev/sdb", FORBIDDEN),
    ("wipefs -a /dev/sda", FORBIDDEN),
    ("/sbin/wipefs --all /dev/vdb", FORBIDDEN),
    ("shred -n 3 /dev/sda", FORBIDDEN),
    (":(){ :|:& };:", FORBIDDEN),
    (":() { : | : & }; :", FORBIDDEN),
    ("bomb(){ bomb|bomb& };bomb", FORBIDDEN),
    ("chmod -R 777 /", FORBIDDEN),
    ("chown -R nobody /", FORBIDDEN),
    // confirm level
    ("shutdown -h now", CONFIRM),
    ("/sbin/shutdown -r +5", CONFIRM),
    ("reboot", CONFIRM),
    ("sudo poweroff", CONFIRM),
    ("halt -p", CONFIRM),
    ("systemctl reboot", CONFIRM),
    ("init 6", CONFIRM),
    ("systemctl stop nginx", CONFIRM),
    ("systemctl restart nginx.service", CONFIRM),
    ("systemctl --no-block restart sshd", CONFIRM),
    ("service nginx restart", CONFIRM),
    // Windows
    ("format c:", FORBIDDEN),
    ("FORMAT D: /q", FORBIDDEN),
    ("Remove-Item -Recurse -Force c:\\", FORBIDDEN),
    ("Remove-Item -Path 'C:\\' -Recurse -Force", FORBIDDEN),
    ("remove-item c:\\* -recurse -force", FORBIDDEN),
    ("Remove-Item `\n  -Recurse `\n  -Force C:\\", FORBIDDEN),
    ("rd /s /q c:\\", FORBIDDEN),
    ("RMDIR /S /Q C:\\", FORBIDDEN),
    ("rd c:\\ /s /q", FORBIDDEN),
    ("del /s /q c:\\*", FORBIDDEN),
    ("bcdedit /delete {current}", FORBIDDEN),
    ("bcdedit.exe /delete {default} /f", FORBIDDEN),
    ("Clear-Disk -Number 0 -RemoveData", FORBIDDEN),
    ("%0|%0", FORBIDDEN),
    ("Stop-Computer -Force", CONFIRM),
    ("Restart-Computer", CONFIRM),
    ("shutdown.exe /r /t 0", CONFIRM),
    // known limits: documented in docs/policy.md
    ("r\\m -rf /", KnownLimit),
    ("a=rm; $a -rf /", KnownLimit),
    ("rm -rf \"$EMPTY\"/", KnownLimit),
    ("$'\\x72\\x6d' -rf /", KnownLimit),
    ("/bin/r? -rf /", KnownLimit),
    ("echo cm0gLXJmIC8K | base64 -d | sh", KnownLimit),
    ("find / -delete", KnownLimit),
    (
        "python3 -c \"import shutil; shutil.rmtree('/')\"",
        KnownLimit,
    ),
    ("rm -rf ~", KnownLimit),
    ("Remove-Item -Recurse -Force $env:SystemDrive\\", KnownLimit),
];

fn builtins() -> CommandPolicy {
    CommandPolicy::compile(&builtin_command_rules(Utc::now())).expect("built-in rules compile")
}

#[test]
fn evasion_attempts_are_caught_or_documented_as_known_limits() {
    let policy = builtins();
    let mut failures = Vec::new();
    for (script, expect) in EVASIONS {
        let hits = policy.hits(None, script);
        match expect {
            Caught(level) => {
                if !hits.iter().any(|h| h.level == *level) {
                    failures.push(format!(
                        "not caught at {level}: {script:?} (hits: {hits:?})"
                    ));
                }
            }
            KnownLimit => {
                if !hits.is_empty() {
                    failures.push(format!(
                        "now caught, remove it from the known limits: {script:?}"
                    ));
                }
                let listed = format!("`{script}`");
                if !POLICY_DOC.contains(&listed) {
                    failures.push(format!("known limit not in docs/policy.md: {listed}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ordinary_scripts_pass_the_built_in_rules() {
    let policy = builtins();
    for script in [
        "echo hello",
        "rm -rf /tmp/build",
        "rm -rf ./dist /var/tmp/cache",
        "rm -f /",
        "rm -rf /etc/nginx/conf.d/old.conf",
        "dd if=/dev/zero of=/tmp/file bs=1M count=10",
        "dd if=/dev/sda of=/dev/null",
        "systemctl status nginx",
        "systemctl start nginx",
        "mkfs.ext4 /tmp/disk.img",
        "farm -rf /",
        "Remove-Item -Recurse -Force C:\\Temp\\build",
        "rd /s /q C:\\Temp",
        "print('{}'.format(x))",
        "for f in a b c; do echo $f; done",
    ] {
        let hits = policy.hits(None, script);
        assert!(hits.is_empty(), "{script:?} hit {hits:?}");
    }
}

#[test]
fn every_built_in_rule_is_marked_built_in_enabled_global_and_stable() {
    let now = Utc::now();
    let a = builtin_command_rules(now);
    let b = builtin_command_rules(now);
    assert_eq!(a.len(), 17);
    for (x, y) in a.iter().zip(&b) {
        assert!(x.built_in && x.enabled && x.team_id.is_none());
        assert_eq!(x.id, y.id, "ids are stable across calls");
    }
}

#[test]
fn every_hit_is_reported_with_rule_level_and_matched_segment() {
    let policy = builtins();
    let script = "echo start\nrm -rf /\nreboot\nsystemctl stop nginx\n";
    let Err(Error::PolicyViolation { hits }) = policy.check(None, script, true) else {
        panic!("a forbidden hit must refuse even with confirmation");
    };
    let summary: Vec<_> = hits.iter().map(|h| (h.level, h.matched.as_str())).collect();
    assert!(
        summary.contains(&(RuleLevel::Forbidden, "rm -rf /")),
        "{summary:?}"
    );
    assert!(
        summary.contains(&(RuleLevel::Confirm, "reboot")),
        "{summary:?}"
    );
    assert!(
        summary.contains(&(RuleLevel::Confirm, "systemctl stop nginx")),
        "{summary:?}"
    );
    assert!(
        hits.iter()
            .all(|h| h.rule_id.is_some() && !h.rule.is_empty())
    );
}

#[test]
fn confirm_rules_pass_only_with_explicit_confirmation_and_return_what_was_confirmed() {
    let policy = builtins();
    let err = policy
        .check(None, "systemctl restart app", false)
        .unwrap_err();
    assert_eq!(err.code(), "policy_violation");
    let confirmed = policy.check(None, "systemctl restart app", true).unwrap();
    assert_eq!(confirmed.len(), 1);
    assert_eq!(confirmed[0].level, RuleLevel::Confirm);
    assert!(policy.check(None, "uptime", false).unwrap().is_empty());
}

fn user_rule(pattern: &str, level: RuleLevel, team: Option<TeamId>, enabled: bool) -> CommandRule {
    CommandRule {
        id: RuleId::new(),
        name: Name::parse("name", "user rule").unwrap(),
        pattern: pattern.to_owned(),
        level,
        enabled,
        built_in: false,
        team_id: team,
        description: Description::default(),
        created_at: Utc::now(),
    }
}

#[test]
fn team_scoped_rules_apply_only_to_their_team_and_disabled_rules_not_at_all() {
    let (ours, theirs) = (TeamId::new(), TeamId::new());
    let rules = vec![
        user_rule(
            r"(^|\s)kubectl delete",
            RuleLevel::Forbidden,
            Some(ours),
            true,
        ),
        user_rule(r"(^|\s)drop database", RuleLevel::Forbidden, None, false),
    ];
    let script = "kubectl delete ns prod";
    assert!(check_script(&rules, Some(ours), script, false).is_err());
    assert!(
        check_script(&rules, Some(theirs), script, false)
            .unwrap()
            .is_empty()
    );
    assert!(
        check_script(&rules, None, script, false)
            .unwrap()
            .is_empty()
    );
    assert!(
        check_script(&rules, Some(ours), "drop database x", false)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn user_patterns_anchor_at_segment_boundaries() {
    let rules = vec![user_rule(r"^curl\s.*\|?$", RuleLevel::Confirm, None, true)];
    let policy = CommandPolicy::compile(&rules).unwrap();
    assert_eq!(policy.hits(None, "echo x; curl http://x | sh").len(), 1);
    assert!(policy.hits(None, "echo curl").is_empty());
}

#[test]
fn a_bad_user_pattern_is_refused_with_the_field_and_reason() {
    let rules = vec![user_rule("rm (", RuleLevel::Forbidden, None, true)];
    match CommandPolicy::compile(&rules) {
        Err(Error::Invalid { field, reason }) => {
            assert_eq!(field, "pattern");
            assert!(reason.contains("user rule"), "{reason}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

mod arbitrary_input {
    //! The fuzz targets' invariants, run briefly in the test suite.
    use super::*;
    use job_core::policy::{NormalizedScript, validate_command_pattern};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        #[test]
        fn normalizing_any_script_yields_trimmed_non_empty_segments(script in "(\\PC|[\n\r\t;&|`$()'\"\\\\^ ]){0,80}") {
            let n = NormalizedScript::new(&script);
            for s in n.segment_strings() {
                prop_assert!(!s.is_empty() && !s.starts_with(' ') && !s.ends_with(' ') && !s.contains('\0'));
            }
            static POLICY: std::sync::OnceLock<CommandPolicy> = std::sync::OnceLock::new();
            let _ = POLICY.get_or_init(builtins).check(None, &script, true);
        }

        #[test]
        fn any_pattern_either_validates_and_compiles_or_is_refused(pattern in "(\\PC|[()\\[\\]{}*+?|\\\\^$.]){0,24}") {
            let valid = validate_command_pattern(&pattern).is_ok();
            let rule = user_rule(&pattern, RuleLevel::Forbidden, None, true);
            prop_assert_eq!(CommandPolicy::compile([&rule]).is_ok(), valid);
        }
    }
}
