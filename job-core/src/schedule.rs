//! Schedule math for cron jobs: parse a cron expression with its IANA time zone once, at the
//! edge, into a [`CronSpec`] that can only hold a valid schedule.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Result};

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
    pub fn parse(expression: &str, timezone: &str) -> Result<Self> {
        let expression = expression.trim();
        if expression.is_empty() {
            return Err(Error::invalid("expression", "must not be empty"));
        }
        let cron = Cron::from_str(expression)
            .map_err(|e| Error::invalid("expression", format!("`{expression}`: {e}")))?;
        let tz_name = if timezone.trim().is_empty() {
            "UTC"
        } else {
            timezone.trim()
        };
        let timezone = Tz::from_str(tz_name).map_err(|_| {
            Error::invalid("timezone", format!("`{tz_name}` is not an IANA time zone"))
        })?;
        Ok(Self {
            expression: expression.to_owned(),
            timezone,
            cron,
        })
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
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.timezone);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
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
