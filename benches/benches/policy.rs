//! Command rules: 1,000 rules (the built-ins plus generated user rules) against a 64 KiB
//! rendered script; path rules against a destination.

use std::hint::black_box;

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use job_core::ids::RuleId;
use job_core::model::{CommandRule, Os, RuleLevel};
use job_core::policy::{
    CommandPolicy, NormalizedScript, PathPolicy, TargetPath, builtin_command_rules,
    builtin_path_rules,
};
use job_core::values::{Description, Name};

/// The built-in rules plus user rules of the shapes people write, 1,000 in all.
fn thousand_rules() -> Vec<CommandRule> {
    let now = Utc::now();
    let mut rules = builtin_command_rules(now);
    let mut i = 0;
    while rules.len() < 1000 {
        let pattern = match i % 4 {
            0 => format!(r"(?:^|\s)tool{i}\s+--danger(?:\s|$)"),
            1 => format!(r"(?:^|[\s/])bin{i}\s.*-rf\s+/srv/data{i}"),
            2 => format!(r"(?i)drop\s+table\s+t{i}\b"),
            _ => format!(r"^cmd{i}(?:\s|$)"),
        };
        rules.push(CommandRule {
            id: RuleId::new(),
            name: Name::parse("name", &format!("user rule {i}")).unwrap(),
            pattern,
            level: if i % 2 == 0 {
                RuleLevel::Forbidden
            } else {
                RuleLevel::Confirm
            },
            enabled: true,
            built_in: false,
            team_id: None,
            description: Description::default(),
            created_at: now,
        });
        i += 1;
    }
    rules
}

/// About 64 KiB of ordinary deployment shell that hits no rule.
fn script_64k() -> String {
    let lines = [
        "echo \"deploying ${APP} to $(hostname)\" && cp -r /opt/app/releases/current /tmp/backup-$(date +%s)\n",
        "for f in /var/log/app/*.log; do gzip -9 \"$f\" || true; done\n",
        "if [ -f /etc/app/app.conf ]; then systemctl status app --no-pager | head -n 20; fi\n",
        "curl -fsS https://example.invalid/health | grep -q ok || exit 1\n",
        "rm -rf /tmp/build-cache/* && mkdir -p /tmp/build-cache\n",
        "awk '{ sum += $3 } END { print sum }' /var/log/app/requests.log > /tmp/sum.txt\n",
    ];
    let mut s = String::with_capacity(64 * 1024 + 256);
    let mut i = 0;
    while s.len() < 64 * 1024 {
        s.push_str(lines[i % lines.len()]);
        i += 1;
    }
    s
}

fn command_rules(c: &mut Criterion) {
    let rules = thousand_rules();
    let policy = CommandPolicy::compile(&rules).unwrap();
    let script = script_64k();
    assert!(policy.hits(None, &script).is_empty());
    // Warm the lazy DFA caches once, as a long-running server would have.
    black_box(policy.hits(None, &script));
    c.bench_function("policy/1000_rules_vs_64KiB_script", |b| {
        b.iter(|| black_box(policy.hits(None, black_box(&script))))
    });
    c.bench_function("policy/normalize_64KiB_script", |b| {
        b.iter(|| black_box(NormalizedScript::new(black_box(&script))))
    });
    let builtins = CommandPolicy::compile(&builtin_command_rules(Utc::now())).unwrap();
    c.bench_function("policy/builtin_rules_vs_64KiB_script", |b| {
        b.iter(|| black_box(builtins.hits(None, black_box(&script))))
    });
    let mut group = c.benchmark_group("policy_compile");
    group.sample_size(10);
    group.bench_function("policy/compile_1000_rules", |b| {
        b.iter(|| black_box(CommandPolicy::compile(black_box(&rules)).unwrap()))
    });
    group.finish();
}

fn path_rules(c: &mut Criterion) {
    let policy = PathPolicy::compile(&builtin_path_rules(Utc::now())).unwrap();
    c.bench_function("policy/canonicalize_and_check_path", |b| {
        b.iter(|| {
            let p = TargetPath::parse("dest", black_box("/opt//app/./releases/v42/"), Os::Linux)
                .unwrap();
            black_box(policy.hits(None, &p))
        })
    });
}

criterion_group!(benches, command_rules, path_rules);
criterion_main!(benches);
