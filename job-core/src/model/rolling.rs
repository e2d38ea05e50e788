//! Rolling execution: running an execution's hosts in batches instead of all at once.
//!
//! A [`Rolling`] plan splits the hosts, in host order, into batches of a fixed size — a
//! count, or a percentage of the hosts — and starts a batch only when every host of the one
//! before it has a final result. Its [`RollingMode`] says what a batch with a failure does to
//! the rest: [`RollingMode::Continue`] goes on regardless; [`RollingMode::PauseOnFailure`]
//! pauses the execution until someone resumes (or cancels) it.
//!
//! On the wire (JSON) a plan is `{"batch": 5, "mode": "continue"}` or
//! `{"batch": "10%", "mode": "pause_on_failure"}`; a batch may also be given as a string
//! count (`"5"`). Values are checked when they are parsed: a count of at least 1, a
//! percentage from 1 to 100; refusals name `rolling.batch` or `rolling.mode`.

use std::fmt;
use std::num::NonZeroU32;
use std::ops::Range;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Result};

/// The field name of a batch size in errors.
const BATCH_FIELD: &str = "rolling.batch";
/// The field name of a mode in errors.
const MODE_FIELD: &str = "rolling.mode";

/// A percentage from 1 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Percent(u8);

impl Percent {
    /// Checks `value` (1–100) as the field `field`.
    pub fn new(field: &str, value: u64) -> Result<Self> {
        match u8::try_from(value) {
            Ok(v @ 1..=100) => Ok(Self(v)),
            _ => Err(Error::invalid(
                field,
                format!("a percentage must be from 1 to 100, not {value}"),
            )),
        }
    }

    /// The percentage as a number from 1 to 100.
    pub fn get(self) -> u8 {
        self.0
    }
}

/// How many hosts one batch of a rolling execution holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RollingBatch {
    /// A fixed number of hosts (at least 1).
    Count(NonZeroU32),
    /// A percentage of the execution's hosts, rounded up, at least one host.
    Percent(Percent),
}

impl RollingBatch {
    /// The number of hosts per batch for an execution of `total` hosts: at least 1, at most
    /// `total` (when `total` is not 0).
    pub fn size(self, total: u32) -> u32 {
        let size = match self {
            Self::Count(n) => n.get(),
            Self::Percent(p) => {
                let exact = u64::from(total) * u64::from(p.get());
                u32::try_from(exact.div_ceil(100)).unwrap_or(u32::MAX)
            }
        };
        size.min(total).max(1)
    }

    fn from_count(value: u64) -> Result<Self> {
        u32::try_from(value)
            .ok()
            .and_then(NonZeroU32::new)
            .map(Self::Count)
            .ok_or_else(|| {
                Error::invalid(
                    BATCH_FIELD,
                    format!("a batch count must be from 1 to {}, not {value}", u32::MAX),
                )
            })
    }
}

impl FromStr for RollingBatch {
    type Err = Error;

    /// Parses `"5"` (a count) or `"10%"` (a percentage), refusing with field
    /// `rolling.batch`.
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let (digits, percent) = match s.strip_suffix('%') {
            Some(d) => (d.trim_end(), true),
            None => (s, false),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::invalid(
                BATCH_FIELD,
                format!(
                    "expected a host count such as `5` or a percentage such as `10%`, not `{s}`"
                ),
            ));
        }
        let value: u64 = digits.parse().unwrap_or(u64::MAX);
        if percent {
            Percent::new(BATCH_FIELD, value).map(Self::Percent)
        } else {
            Self::from_count(value)
        }
    }
}

impl fmt::Display for RollingBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Count(n) => write!(f, "{n}"),
            Self::Percent(p) => write!(f, "{}%", p.get()),
        }
    }
}

impl Serialize for RollingBatch {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Self::Count(n) => s.serialize_u32(n.get()),
            Self::Percent(_) => s.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for RollingBatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(i64),
            Text(String),
        }
        let parsed = match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom(Error::invalid(
                BATCH_FIELD,
                "expected a host count such as 5 or a percentage such as \"10%\"",
            ))
        })? {
            Raw::Count(n) => u64::try_from(n)
                .map_err(|_| {
                    Error::invalid(
                        BATCH_FIELD,
                        format!("a batch count must be at least 1, not {n}"),
                    )
                })
                .and_then(Self::from_count),
            Raw::Text(t) => t.parse(),
        };
        parsed.map_err(serde::de::Error::custom)
    }
}

/// What a rolling execution does after a batch in which a host did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RollingMode {
    /// Go on with the next batch regardless.
    Continue,
    /// Pause before the next batch; the execution stays `running` with its later hosts
    /// `pending` until it is resumed or cancelled.
    PauseOnFailure,
}

impl RollingMode {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Continue => "continue",
            Self::PauseOnFailure => "pause_on_failure",
        }
    }
}

impl FromStr for RollingMode {
    type Err = Error;

    /// Parses `continue` or `pause_on_failure`, refusing with field `rolling.mode`.
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "continue" => Ok(Self::Continue),
            "pause_on_failure" => Ok(Self::PauseOnFailure),
            other => Err(Error::invalid(
                MODE_FIELD,
                format!("expected `continue` or `pause_on_failure`, not `{other}`"),
            )),
        }
    }
}

impl fmt::Display for RollingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RollingMode {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RollingMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let raw = String::deserialize(d).map_err(|_| {
            serde::de::Error::custom(Error::invalid(
                MODE_FIELD,
                "expected `continue` or `pause_on_failure`",
            ))
        })?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

/// A rolling plan: batches of `batch` hosts, in host order, each started when the one
/// before it is entirely final; after a batch with a host that did not succeed, `mode` goes
/// on or pauses the execution until it is resumed
/// ([`resume_execution`](crate::engine::resume_execution)) or cancelled.
///
/// On the wire (JSON): `{"batch": 5, "mode": "continue"}` or
/// `{"batch": "10%", "mode": "pause_on_failure"}`; a batch may also be a string count
/// (`"5"`). A count is at least 1, a percentage 1–100 (rounded up to whole hosts, at least
/// one); refusals name the field `rolling.batch` or `rolling.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rolling {
    /// Hosts per batch.
    pub batch: RollingBatch,
    /// What a batch with a failure does to the rest.
    pub mode: RollingMode,
}

impl Rolling {
    /// Parses a plan from its two text fields (as a form sends them), each refusal naming
    /// `rolling.batch` or `rolling.mode`.
    pub fn parse(batch: &str, mode: &str) -> Result<Self> {
        Ok(Self {
            batch: batch.parse()?,
            mode: mode.parse()?,
        })
    }

    /// The host indexes of batch number `n` (from 0) of an execution of `total` hosts; an
    /// empty range past the last batch.
    pub fn batch_hosts(&self, n: u32, total: u32) -> Range<u32> {
        let size = self.batch.size(total);
        let start = n.saturating_mul(size).min(total);
        start..start.saturating_add(size).min(total)
    }

    /// The batch number (from 0) host `index` belongs to, in an execution of `total` hosts.
    pub fn batch_of(&self, index: u32, total: u32) -> u32 {
        index / self.batch.size(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(e: &Error) -> &str {
        match e {
            Error::Invalid { field, .. } => field,
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    #[test]
    fn a_percentage_rounds_up_and_is_never_below_one_host() {
        let p = |v| RollingBatch::Percent(Percent::new("p", v).unwrap());
        assert_eq!(p(10).size(25), 3);
        assert_eq!(p(50).size(4), 2);
        assert_eq!(p(1).size(3), 1);
        assert_eq!(p(100).size(7), 7);
        let c = |v| RollingBatch::Count(NonZeroU32::new(v).unwrap());
        assert_eq!(c(5).size(3), 3);
        assert_eq!(c(2).size(10), 2);
    }

    #[test]
    fn batches_cover_every_host_once_in_order() {
        let plan = Rolling::parse("40%", "continue").unwrap();
        let ranges: Vec<_> = (0..4).map(|n| plan.batch_hosts(n, 5)).collect();
        assert_eq!(ranges, [0..2, 2..4, 4..5, 5..5]);
        assert_eq!(plan.batch_of(3, 5), 1);
    }

    #[test]
    fn the_wire_form_is_a_count_or_a_percent_string_and_a_mode_name() {
        let plan: Rolling =
            serde_json::from_str(r#"{"batch": "10%", "mode": "pause_on_failure"}"#).unwrap();
        assert_eq!(plan.batch.to_string(), "10%");
        assert_eq!(plan.mode, RollingMode::PauseOnFailure);
        assert_eq!(
            serde_json::to_string(&plan).unwrap(),
            r#"{"batch":"10%","mode":"pause_on_failure"}"#
        );
        let plan: Rolling = serde_json::from_str(r#"{"batch": 5, "mode": "continue"}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&plan).unwrap(),
            r#"{"batch":5,"mode":"continue"}"#
        );
        let plan: Rolling = serde_json::from_str(r#"{"batch": "5", "mode": "continue"}"#).unwrap();
        assert_eq!(plan.batch.size(100), 5);
    }

    #[test]
    fn invalid_rolling_values_are_refused_by_name() {
        for batch in ["0", "0%", "101%", "-1", "ten", "", "%", "5 %x"] {
            let e = Rolling::parse(batch, "continue").unwrap_err();
            assert_eq!(field_of(&e), "rolling.batch", "{batch}");
        }
        let e = Rolling::parse("5", "stop").unwrap_err();
        assert_eq!(field_of(&e), "rolling.mode");
        for body in [
            r#"{"batch": 0, "mode": "continue"}"#,
            r#"{"batch": -3, "mode": "continue"}"#,
            r#"{"batch": "150%", "mode": "continue"}"#,
            r#"{"batch": 1.5, "mode": "continue"}"#,
        ] {
            let e = serde_json::from_str::<Rolling>(body).unwrap_err();
            assert!(e.to_string().contains("rolling.batch"), "{body}: {e}");
        }
        let e = serde_json::from_str::<Rolling>(r#"{"batch": 1, "mode": "halt"}"#).unwrap_err();
        assert!(e.to_string().contains("rolling.mode"), "{e}");
    }
}
