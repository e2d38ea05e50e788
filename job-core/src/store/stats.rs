//! Capability over dashboard statistics of executions.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::TeamScope;
use crate::model::JobType;
use crate::status::ExecutionStatus;
use crate::{Error, Result};

/// A half-open period `[from, to)` of creation instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

impl TimeRange {
    /// The period from `from` (inclusive) to `to` (exclusive); `from` must be before `to`.
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Self> {
        if from >= to {
            return Err(Error::invalid("time_range", "`from` must be before `to`"));
        }
        Ok(Self { from, to })
    }

    /// Where the period starts (inclusive).
    pub fn from(&self) -> DateTime<Utc> {
        self.from
    }

    /// Where the period ends (exclusive).
    pub fn to(&self) -> DateTime<Utc> {
        self.to
    }

    /// The period of equal length just before this one.
    pub fn previous(&self) -> Self {
        let len = self.to - self.from;
        Self {
            from: self.from - len,
            to: self.from,
        }
    }
}

/// How many executions there are, by status and by kind of work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    /// All of them.
    pub total: u64,
    /// Per status, every status present (zero when none), in wire order.
    pub by_status: Vec<(ExecutionStatus, u64)>,
    /// Per kind of work, every kind present (zero when none), in wire order.
    pub by_type: Vec<(JobType, u64)>,
}

impl Totals {
    /// Every kind of work, in wire order.
    pub const JOB_TYPES: [JobType; 3] = [
        JobType::Script,
        JobType::FileDistribution,
        JobType::Playbook,
    ];

    /// Totals from per-status and per-type counts (missing ones are zero).
    pub fn from_counts(
        by_status: impl IntoIterator<Item = (ExecutionStatus, u64)>,
        by_type: impl IntoIterator<Item = (JobType, u64)>,
    ) -> Self {
        let mut status: Vec<(ExecutionStatus, u64)> =
            ExecutionStatus::ALL.iter().map(|s| (*s, 0)).collect();
        for (s, n) in by_status {
            if let Some(slot) = status.iter_mut().find(|(k, _)| *k == s) {
                slot.1 += n;
            }
        }
        let mut types: Vec<(JobType, u64)> = Self::JOB_TYPES.iter().map(|t| (*t, 0)).collect();
        for (t, n) in by_type {
            if let Some(slot) = types.iter_mut().find(|(k, _)| *k == t) {
                slot.1 += n;
            }
        }
        Self {
            total: status.iter().map(|(_, n)| n).sum(),
            by_status: status,
            by_type: types,
        }
    }

    /// The count of executions in `status`.
    pub fn status(&self, status: ExecutionStatus) -> u64 {
        self.by_status
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n)
    }

    /// The count of executions of `job_type`.
    pub fn job_type(&self, job_type: JobType) -> u64 {
        self.by_type
            .iter()
            .find(|(t, _)| *t == job_type)
            .map_or(0, |(_, n)| *n)
    }
}

/// Executions created on one UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayTrend {
    /// The day (UTC).
    pub day: NaiveDate,
    /// Executions created that day.
    pub total: u64,
    /// Of them, ended in `success`.
    pub success: u64,
    /// Of them, ended in `failed` or `timeout`.
    pub failed: u64,
}

/// The success rate of a period and of the equal period just before it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SuccessRate {
    /// `success / (success + failed + timeout)` of executions created in the period;
    /// `None` when none of them ended that way. Cancelled runs are left out.
    pub current: Option<f64>,
    /// The same for the period before.
    pub previous: Option<f64>,
}

impl SuccessRate {
    /// The rate of `success` out of `success + failed` ended runs, `None` when there are none.
    pub fn rate(success: u64, ended: u64) -> Option<f64> {
        (ended > 0).then(|| success as f64 / ended as f64)
    }
}

/// The longest trend a dashboard asks for, in days.
pub const MAX_TREND_DAYS: u32 = 366;

/// Dashboard aggregates over the visible executions, by creation instant.
#[async_trait]
pub trait StatsStore: Send + Sync {
    /// Totals by status and by kind of work of executions created in `range`.
    async fn totals(&self, scope: &TeamScope, range: TimeRange) -> Result<Totals>;
    /// One entry per UTC day from `first_day`, `days` of them (clamped to
    /// `1..=`[`MAX_TREND_DAYS`]), days without executions included with zeros.
    async fn daily_trend(
        &self,
        scope: &TeamScope,
        first_day: NaiveDate,
        days: u32,
    ) -> Result<Vec<DayTrend>>;
    /// The average run time (started to finished) in milliseconds of executions created in
    /// `range` that ran to an end; `None` when there are none.
    async fn average_duration_ms(&self, scope: &TeamScope, range: TimeRange)
    -> Result<Option<f64>>;
    /// The success rate of `range` and of the equal period before it.
    async fn success_rate(&self, scope: &TeamScope, range: TimeRange) -> Result<SuccessRate>;
}

/// Builds a zero-filled trend from sparse `(day, total, success, failed)` counts.
pub fn fill_trend(
    first_day: NaiveDate,
    days: u32,
    counts: impl IntoIterator<Item = DayTrend>,
) -> Vec<DayTrend> {
    let days = days.clamp(1, MAX_TREND_DAYS);
    let mut out: Vec<DayTrend> = first_day
        .iter_days()
        .take(days as usize)
        .map(|day| DayTrend {
            day,
            total: 0,
            success: 0,
            failed: 0,
        })
        .collect();
    for c in counts {
        let offset = (c.day - first_day).num_days();
        if let Some(slot) = usize::try_from(offset).ok().and_then(|i| out.get_mut(i)) {
            slot.total += c.total;
            slot.success += c.success;
            slot.failed += c.failed;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 2, d).unwrap()
    }

    #[test]
    fn trends_are_zero_filled_and_ignore_days_outside_the_window() {
        let count = |d, total| DayTrend {
            day: day(d),
            total,
            success: total,
            failed: 0,
        };
        let t = fill_trend(day(1), 3, [count(2, 5), count(9, 7)]);
        assert_eq!(
            t.iter().map(|d| (d.day, d.total)).collect::<Vec<_>>(),
            [(day(1), 0), (day(2), 5), (day(3), 0)]
        );
        assert_eq!(fill_trend(day(1), 0, []).len(), 1);
        assert_eq!(fill_trend(day(1), 9999, []).len(), MAX_TREND_DAYS as usize);
    }

    #[test]
    fn the_previous_period_has_the_same_length_and_ends_where_this_one_starts() {
        let from = day(10).and_hms_opt(0, 0, 0).unwrap().and_utc();
        let r = TimeRange::new(from, from + chrono::Duration::days(7)).unwrap();
        let p = r.previous();
        assert_eq!((p.from(), p.to()), (from - chrono::Duration::days(7), from));
        assert!(TimeRange::new(from, from).is_err());
        assert_eq!(SuccessRate::rate(3, 4), Some(0.75));
        assert_eq!(SuccessRate::rate(0, 0), None);
    }

    #[test]
    fn totals_list_every_status_and_kind_with_zeros() {
        let t = Totals::from_counts(
            [(ExecutionStatus::Failed, 2), (ExecutionStatus::Failed, 1)],
            [(JobType::Playbook, 3)],
        );
        assert_eq!((t.total, t.status(ExecutionStatus::Failed)), (3, 3));
        assert_eq!(t.by_status.len(), ExecutionStatus::ALL.len());
        assert_eq!(t.job_type(JobType::Script), 0);
    }
}
