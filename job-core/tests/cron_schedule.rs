//! Cron expressions: syntax, time zones, upcoming fire times, never-firing expressions and
//! daylight saving time in two zones.

use chrono::{DateTime, Duration, TimeZone, Utc};
use job_core::Error;
use job_core::schedule::{CronSpec, DEFAULT_UPCOMING};
use proptest::prelude::*;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn spec(expr: &str, tz: &str) -> CronSpec {
    CronSpec::parse(expr, tz).unwrap_or_else(|e| panic!("{expr} in {tz}: {e}"))
}

fn fires(expr: &str, tz: &str, after: &str, n: usize) -> Vec<String> {
    spec(expr, tz)
        .next_n(utc(after), n)
        .iter()
        .map(|t| t.to_rfc3339())
        .collect()
}

#[test]
fn five_and_six_field_expressions_nicknames_and_names_are_accepted() {
    assert_eq!(
        fires("30 2 * * *", "UTC", "2026-01-01T00:00:00Z", 1),
        ["2026-01-01T02:30:00+00:00"]
    );
    assert_eq!(
        fires("15 30 2 * * *", "UTC", "2026-01-01T00:00:00Z", 1),
        ["2026-01-01T02:30:15+00:00"]
    );
    assert_eq!(
        fires("@daily", "UTC", "2026-01-01T10:00:00Z", 1),
        ["2026-01-02T00:00:00+00:00"]
    );
    assert_eq!(
        fires("@hourly", "UTC", "2026-01-01T10:10:00Z", 1),
        ["2026-01-01T11:00:00+00:00"]
    );
    assert_eq!(
        fires("@weekly", "UTC", "2026-01-01T00:00:00Z", 1),
        ["2026-01-04T00:00:00+00:00"]
    );
    // 2026-01-05 is a Monday; days of the week are POSIX-numbered (1 = Monday)
    assert_eq!(
        fires("0 9 * JAN MON-FRI", "UTC", "2026-01-03T00:00:00Z", 1),
        ["2026-01-05T09:00:00+00:00"]
    );
    assert_eq!(
        fires("0 9 * * 1", "UTC", "2026-01-03T00:00:00Z", 1),
        ["2026-01-05T09:00:00+00:00"]
    );
    assert_eq!(
        fires("0 0 * * 7", "UTC", "2026-01-01T00:00:00Z", 1),
        ["2026-01-04T00:00:00+00:00"]
    );
}

#[test]
fn last_nearest_weekday_and_nth_weekday_are_understood() {
    // last day of February 2026
    assert_eq!(
        fires("0 0 L 2 *", "UTC", "2026-01-01T00:00:00Z", 1),
        ["2026-02-28T00:00:00+00:00"]
    );
    // nearest weekday to the 1st of August 2026 (a Saturday) is Monday the 3rd
    assert_eq!(
        fires("0 0 1W 8 *", "UTC", "2026-07-01T00:00:00Z", 1),
        ["2026-08-03T00:00:00+00:00"]
    );
    // second Tuesday of March 2026
    assert_eq!(
        fires("0 0 * 3 2#2", "UTC", "2026-01-01T00:00:00Z", 1),
        ["2026-03-10T00:00:00+00:00"]
    );
    // last Friday of January 2026
    assert_eq!(
        fires("0 0 * 1 5L", "UTC", "2026-01-01T00:00:00Z", 1),
        ["2026-01-30T00:00:00+00:00"]
    );
}

#[test]
fn the_next_three_fire_times_are_the_default_preview() {
    let s = spec("0 */6 * * *", "UTC");
    let next = s.upcoming(utc("2026-05-01T05:00:00Z"));
    assert_eq!(next.len(), DEFAULT_UPCOMING);
    assert_eq!(
        next,
        vec![
            utc("2026-05-01T06:00:00Z"),
            utc("2026-05-01T12:00:00Z"),
            utc("2026-05-01T18:00:00Z"),
        ]
    );
}

#[test]
fn expressions_that_never_fire_are_refused() {
    for expr in ["0 0 30 2 *", "0 0 31 4 *", "0 0 31 6,9,11 *", "0 0 31 2 *"] {
        match CronSpec::parse(expr, "UTC") {
            Err(Error::Invalid { field, reason }) => {
                assert_eq!(field, "expression");
                assert!(reason.contains("never fires"), "{expr}: {reason}");
            }
            other => panic!("{expr}: expected a refusal, got {other:?}"),
        }
    }
    // February 29th fires in leap years only, which is still firing
    assert_eq!(
        fires("0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z", 1),
        ["2028-02-29T00:00:00+00:00"]
    );
}

#[test]
fn malformed_expressions_and_zones_are_refused_naming_the_field() {
    for (expr, tz, field) in [
        ("", "UTC", "expression"),
        ("* * *", "UTC", "expression"),
        ("61 * * * *", "UTC", "expression"),
        ("0 0 * * * * 2030", "UTC", "expression"),
        ("@fortnightly", "UTC", "expression"),
        ("0 0 * * 8", "UTC", "expression"),
        ("* * * * *", "Mars/Olympus", "timezone"),
    ] {
        match CronSpec::parse(expr, tz) {
            Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field, "{expr:?} {tz}"),
            other => panic!("{expr:?}: expected Invalid, got {other:?}"),
        }
    }
    assert!(CronSpec::parse(&"1,".repeat(200), "UTC").is_err());
}

#[test]
fn descriptions_are_readable_and_name_the_zone() {
    let d = spec("30 2 * * MON-FRI", "Europe/Berlin").describe();
    assert!(d.ends_with("(Europe/Berlin)"), "{d}");
    assert!(d.contains("Monday") && d.contains("30"), "{d}");
}

#[test]
fn berlin_spring_forward_fires_a_skipped_fixed_time_once_after_the_gap() {
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
    let got = spec("30 2 * * *", "Europe/Berlin").next_n(utc("2026-03-28T12:00:00Z"), 2);
    assert_eq!(
        got[0],
        utc("2026-03-29T01:00:00Z"),
        "first valid time after the gap"
    );
    assert_eq!(
        got[1],
        utc("2026-03-30T00:30:00Z"),
        "02:30 CEST the next day"
    );
}

#[test]
fn berlin_fall_back_fires_fixed_times_once_and_intervals_in_both_passes() {
    // 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:00-03:00 happens twice.
    let once = spec("30 2 * * *", "Europe/Berlin").next_n(utc("2026-10-24T12:00:00Z"), 2);
    assert_eq!(
        once,
        vec![utc("2026-10-25T00:30:00Z"), utc("2026-10-26T01:30:00Z")]
    );
    let every = spec("*/30 2 * * *", "Europe/Berlin").next_n(utc("2026-10-24T23:00:00Z"), 4);
    assert_eq!(
        every,
        vec![
            utc("2026-10-25T00:00:00Z"),
            utc("2026-10-25T00:30:00Z"),
            utc("2026-10-25T01:00:00Z"),
            utc("2026-10-25T01:30:00Z"),
        ]
    );
}

#[test]
fn new_york_spring_forward_and_fall_back_are_handled() {
    // 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC).
    let gap = spec("30 2 * * *", "America/New_York").next_n(utc("2026-03-07T12:00:00Z"), 2);
    assert_eq!(
        gap,
        vec![utc("2026-03-08T07:00:00Z"), utc("2026-03-09T06:30:00Z")]
    );
    // 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 happens at 05:30Z and 06:30Z.
    let once = spec("30 1 * * *", "America/New_York").next_n(utc("2026-10-31T12:00:00Z"), 2);
    assert_eq!(
        once,
        vec![utc("2026-11-01T05:30:00Z"), utc("2026-11-02T06:30:00Z")]
    );
    let hourly = spec("0 * * * *", "America/New_York").next_n(utc("2026-11-01T04:30:00Z"), 3);
    assert_eq!(
        hourly,
        vec![
            utc("2026-11-01T05:00:00Z"),
            utc("2026-11-01T06:00:00Z"),
            utc("2026-11-01T07:00:00Z"),
        ]
    );
}

#[test]
fn fire_times_survive_a_serde_round_trip() {
    let s = spec("0 3 * * *", "America/New_York");
    let json = serde_json::to_string(&s).unwrap();
    let back: CronSpec = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
    assert!(
        serde_json::from_str::<CronSpec>(r#"{"expression":"0 0 30 2 *","timezone":"UTC"}"#)
            .is_err()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn upcoming_fire_times_are_strictly_increasing_and_match_the_expression(
        minute in 0u32..60,
        hour in 0u32..24,
        step in 1u32..8,
        zone in prop::sample::select(vec!["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]),
        start in 0i64..(20 * 365 * 24 * 3600),
    ) {
        let expr = format!("{minute} {hour}-23/{step} * * *");
        let s = spec(&expr, zone);
        let after = Utc.timestamp_opt(1_700_000_000 + start, 0).unwrap();
        let next = s.next_n(after, 5);
        prop_assert_eq!(next.len(), 5);
        let mut prev = after;
        for t in &next {
            prop_assert!(*t > prev);
            prop_assert!(*t - prev <= Duration::days(2));
            prev = *t;
        }
        prop_assert_eq!(s.next_after(after), next.first().copied());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_expression_is_parsed_or_refused_without_panicking(
        expr in "([0-9*/,LW#?@-]|[A-Za-z]{1,3}| ){0,24}",
    ) {
        if let Ok(s) = CronSpec::parse(&expr, "Europe/Berlin") {
            let next = s.upcoming(utc("2026-01-01T00:00:00Z"));
            prop_assert_eq!(next.len(), DEFAULT_UPCOMING);
            prop_assert!(next.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
