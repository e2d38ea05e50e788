//! Schedule math: the next 3 fire times, and parsing.

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use job_core::schedule::CronSpec;

fn cron(c: &mut Criterion) {
    let now = Utc.with_ymd_and_hms(2026, 3, 28, 23, 59, 30).unwrap();
    for (name, expr, tz) in [
        ("every_5_minutes_berlin", "*/5 * * * *", "Europe/Berlin"),
        (
            "weekdays_0930_new_york",
            "30 9 * * MON-FRI",
            "America/New_York",
        ),
        ("last_friday_of_month_utc", "0 0 * * 5L", "UTC"),
    ] {
        let spec = CronSpec::parse(expr, tz).unwrap();
        c.bench_function(&format!("cron/next_3_{name}"), |b| {
            b.iter(|| black_box(spec.upcoming(black_box(now))))
        });
    }
    c.bench_function("cron/parse_and_validate", |b| {
        b.iter(|| {
            black_box(CronSpec::parse(black_box("30 9 * * MON-FRI"), "Europe/Berlin").unwrap())
        })
    });
    c.bench_function("cron/refuse_never_firing", |b| {
        b.iter(|| black_box(CronSpec::parse(black_box("0 0 30 2 *"), "UTC").is_err()))
    });
}

criterion_group!(benches, cron);
criterion_main!(benches);
