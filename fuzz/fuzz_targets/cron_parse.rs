//! A cron expression and time zone through parsing and the next fire times.
#![no_main]

use chrono::{DateTime, Utc};
use job_core::schedule::CronSpec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str, i32)| {
    let (expression, timezone, offset) = input;
    if let Ok(spec) = CronSpec::parse(expression, timezone) {
        let after = DateTime::<Utc>::UNIX_EPOCH
            + chrono::Duration::seconds(1_700_000_000 + i64::from(offset));
        let next = spec.upcoming(after);
        assert!(next.windows(2).all(|w| w[0] < w[1]));
        assert!(next.iter().all(|t| *t > after));
        let _ = spec.describe();
    }
});
