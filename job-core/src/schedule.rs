//! Schedule math for cron jobs: parse a cron expression with its IANA time zone once, at the
//! edge, into a [`CronSpec`] that can only hold a valid schedule.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Result};

/// How many upcoming fire times are shown by default.
pub const DEFAULT_UPCOMING: usize = 3;

/// Longest accepted cron expression, in bytes.
pub const MAX_EXPRESSION_LEN: usize = 256;

/// The instant from which a new expression must fire at least once (before croner's
/// search limit, the year 5000) to be accepted.
fn never_fires_probe() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::days(365 * 55)
}

/// Whether the day-of-month and month fields leave at least one real calendar day. This
/// answers the common never-firing case (`0 0 30 2 *`) at once, where croner's own search
/// would walk the calendar to the year 5000 before giving up.
fn calendar_has_a_day(cron: &Cron) -> bool {
    const DAYS_IN_MONTH: [u16; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let p = &cron.pattern;
    // Any weekday occurs in every month, and `L`/`W` always name an existing day.
    if p.is_dom_wildcard() || !p.is_dow_wildcard() || p.days.has_modifiers() {
        return true;
    }
    let days = p.days.values();
    let shortest_needed = days.iter().copied().min().unwrap_or(u16::MAX);
    p.months.values().iter().any(|m| {
        usize::from(*m)
            .checked_sub(1)
            .and_then(|i| DAYS_IN_MONTH.get(i))
            .is_some_and(|max| shortest_needed <= *max)
    })
}

/// A parsed cron schedule: 5-field (minutes), 6-field (seconds) or a nickname such as
/// `@daily`, evaluated in an IANA time zone.
#[derive(Clone)]
pub struct CronSpec {
    expression: String,
    timezone: Tz,
    cron: Cron,
}

impl CronSpec {
    /// Parses `expression` in `timezone` (an IANA name such as `Europe/Berlin`; `UTC` when
    /// empty). Errors name the field `expression` or `timezone`.
    ///
    /// Five fields (minute hour day-of-month month day-of-week), six fields (seconds first)
    /// or a nickname (`@yearly`, `@monthly`, `@weekly`, `@daily`, `@hourly`); month and day
    /// names (`JAN`, `MON-FRI`), `L` (last), `W` (nearest weekday) and `#` (nth weekday)
    /// are accepted. Days of the week count POSIX-style: 0 and 7 are Sunday, 1 is Monday.
    /// An expression that never fires (`0 0 30 2 *`) is refused.
    pub fn parse(expression: &str, timezone: &str) -> Result<Self> {
        let expression = expression.trim();
        if expression.is_empty() {
            return Err(Error::invalid("expression", "must not be empty"));
        }
        if expression.len() > MAX_EXPRESSION_LEN {
            return Err(Error::invalid(
                "expression",
                format!("must be at most {MAX_EXPRESSION_LEN} bytes"),
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(expression)
            .map_err(|e| Error::invalid("expression", format!("`{expression}`: {e}")))?;
        let tz_name = if timezone.trim().is_empty() {
            "UTC"
        } else {
            timezone.trim()
        };
        let timezone = Tz::from_str(tz_name).map_err(|_| {
            Error::invalid("timezone", format!("`{tz_name}` is not an IANA time zone"))
        })?;
        let spec = Self {
            expression: expression.to_owned(),
            timezone,
            cron,
        };
        if !calendar_has_a_day(&spec.cron) || spec.next_after(never_fires_probe()).is_none() {
            return Err(Error::invalid(
                "expression",
                format!("`{expression}` never fires"),
            ));
        }
        Ok(spec)
    }

    /// The expression as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The time zone the expression is evaluated in.
    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// The first fire time strictly after `after`, in UTC; `None` if it never fires again.
    ///
    /// Daylight saving time is handled as cron has always done (croner follows the Open
    /// Cron Pattern Specification): a fixed-time job whose time falls in a skipped hour
    /// fires at the first valid time after the gap, once; in a repeated hour a fixed-time
    /// job fires once (the first pass) while interval jobs (`*/15 * * * *`) fire in both
    /// passes. Instants are compared in real time, so fire times only ever move forward.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.timezone);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The next `n` fire times strictly after `after`, in UTC, in order (fewer if the
    /// schedule ends, which a valid 5/6-field expression never does).
    pub fn next_n(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut at = after.with_timezone(&self.timezone);
        while out.len() < n {
            match self.cron.find_next_occurrence(&at, false) {
                Ok(next) => {
                    out.push(next.with_timezone(&Utc));
                    at = next;
                }
                Err(_) => break,
            }
        }
        out
    }

    /// The next [`DEFAULT_UPCOMING`] fire times after `after`, as shown when a job is saved.
    pub fn upcoming(&self, after: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        self.next_n(after, DEFAULT_UPCOMING)
    }

    /// A description for people, with the time zone: `At 02:30, on Monday, Tuesday,
    /// Wednesday, Thursday, and Friday (Europe/Berlin)` for `30 2 * * MON-FRI`.
    pub fn describe(&self) -> String {
        let text = self.cron.describe();
        let text = text.trim().trim_end_matches('.');
        format!("{text} ({})", self.timezone.name())
    }
}

impl fmt::Debug for CronSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CronSpec")
            .field("expression", &self.expression)
            .field("timezone", &self.timezone.name())
            .finish()
    }
}

impl PartialEq for CronSpec {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression && self.timezone == other.timezone
    }
}

impl Eq for CronSpec {}

#[derive(Serialize, Deserialize)]
struct CronSpecWire {
    expression: String,
    #[serde(default)]
    timezone: String,
}

impl Serialize for CronSpec {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        CronSpecWire {
            expression: self.expression.clone(),
            timezone: self.timezone.name().to_owned(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for CronSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let w = CronSpecWire::deserialize(d)?;
        Self::parse(&w.expression, &w.timezone).map_err(serde::de::Error::custom)
    }
}
