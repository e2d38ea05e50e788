//! The status machine: the only place that decides how an execution's status moves.
//!
//! ```text
//! pending    -> running | cancelled (cancel)
//! running    -> success | failed | timeout | cancelling (cancel)
//! cancelling -> cancelled (every host reported, or the convergence deadline passed)
//! ```
//!
//! Stores apply the decisions as compare-and-set writes (the `from` status must still hold),
//! so two nodes or two requests can never both win; [`ExecutionStatus::allows`] is the table
//! they check against. [`ExecutionMachine`] folds host events into the execution's status
//! and counters; the engine keeps one per running execution.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The seven statuses of an execution. Final: `success`, `failed`, `timeout`, `cancelled`.
/// Intermediate: `pending`, `running`, `cancelling`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    /// Created, waiting for a node to claim it.
    Pending,
    /// Claimed and running on its hosts.
    Running,
    /// Every host succeeded.
    Success,
    /// At least one host failed.
    Failed,
    /// No host failed, at least one timed out.
    Timeout,
    /// Cancel requested while running; waiting for the hosts to report.
    Cancelling,
    /// Cancelled.
    Cancelled,
}

impl ExecutionStatus {
    /// Every status, in wire order.
    pub const ALL: [Self; 7] = [
        Self::Pending,
        Self::Running,
        Self::Success,
        Self::Failed,
        Self::Timeout,
        Self::Cancelling,
        Self::Cancelled,
    ];

    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Timeout => "timeout",
            Self::Cancelling => "cancelling",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether no move leaves this status.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Success | Self::Failed | Self::Timeout | Self::Cancelled
        )
    }

    /// Whether `self -> to` is an allowed move. Stores check every compare-and-set against it.
    pub fn allows(self, to: Self) -> bool {
        use ExecutionStatus as S;
        matches!(
            (self, to),
            (S::Pending, S::Running | S::Cancelled)
                | (
                    S::Running,
                    S::Success | S::Failed | S::Timeout | S::Cancelling
                )
                | (S::Cancelling, S::Cancelled)
        )
    }

    /// Where a cancel request moves this status: `pending` is cancelled at once, `running`
    /// goes through `cancelling`. Anything else refuses with [`Error::Conflict`].
    pub fn on_cancel(self) -> Result<Self> {
        match self {
            Self::Pending => Ok(Self::Cancelled),
            Self::Running => Ok(Self::Cancelling),
            Self::Cancelling => Err(Error::conflict(
                "the execution is already being cancelled; a second cancel is refused",
            )),
            s => Err(Error::conflict(format!(
                "the execution already ended with status `{s}`; only pending or running executions can be cancelled"
            ))),
        }
    }

    /// Refuses to re-execute from a status that is not final.
    pub fn ensure_re_executable(self) -> Result<()> {
        if self.is_final() {
            Ok(())
        } else {
            Err(Error::conflict(format!(
                "the execution is still `{self}`; only a finished execution can be re-executed"
            )))
        }
    }
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExecutionStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "status",
                    format!(
                        "unknown status `{s}`; expected one of pending, running, success, failed, timeout, cancelling, cancelled"
                    ),
                )
            })
    }
}

/// The status of one host's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostStatus {
    /// Not started yet.
    Pending,
    /// Running.
    Running,
    /// Exited 0.
    Success,
    /// Exited non-zero, or could not run (unreachable, authentication failed, …).
    Failed,
    /// Killed at its timeout.
    Timeout,
    /// Killed or never started because the execution was cancelled.
    Cancelled,
}

impl HostStatus {
    /// Every host status, in wire order.
    pub const ALL: [Self; 6] = [
        Self::Pending,
        Self::Running,
        Self::Success,
        Self::Failed,
        Self::Timeout,
        Self::Cancelled,
    ];

    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Timeout => "timeout",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether the host's run has ended.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Pending | Self::Running)
    }
}

impl fmt::Display for HostStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HostStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| Error::invalid("host status", format!("unknown host status `{s}`")))
    }
}

/// How a host's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostOutcome {
    /// Exited 0.
    Success,
    /// Failed.
    Failed,
    /// Timed out.
    Timeout,
    /// Cancelled.
    Cancelled,
}

impl From<HostOutcome> for HostStatus {
    fn from(o: HostOutcome) -> Self {
        match o {
            HostOutcome::Success => Self::Success,
            HostOutcome::Failed => Self::Failed,
            HostOutcome::Timeout => Self::Timeout,
            HostOutcome::Cancelled => Self::Cancelled,
        }
    }
}

/// How many host runs of an execution are in each status. The parts always add up to
/// `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HostCounters {
    /// Number of hosts.
    pub total: u32,
    /// Not started.
    pub pending: u32,
    /// Running.
    pub running: u32,
    /// Succeeded.
    pub success: u32,
    /// Failed.
    pub failed: u32,
    /// Timed out.
    pub timeout: u32,
    /// Cancelled.
    pub cancelled: u32,
}

impl HostCounters {
    /// Counters for `total` hosts, all pending.
    pub fn all_pending(total: u32) -> Self {
        Self {
            total,
            pending: total,
            ..Self::default()
        }
    }

    /// Counters computed from host statuses.
    pub fn from_statuses(statuses: impl IntoIterator<Item = HostStatus>) -> Self {
        let mut c = Self::default();
        for s in statuses {
            c.total += 1;
            *c.slot(s) += 1;
        }
        c
    }

    /// The count of hosts in `status`.
    pub fn get(&self, status: HostStatus) -> u32 {
        match status {
            HostStatus::Pending => self.pending,
            HostStatus::Running => self.running,
            HostStatus::Success => self.success,
            HostStatus::Failed => self.failed,
            HostStatus::Timeout => self.timeout,
            HostStatus::Cancelled => self.cancelled,
        }
    }

    fn slot(&mut self, status: HostStatus) -> &mut u32 {
        match status {
            HostStatus::Pending => &mut self.pending,
            HostStatus::Running => &mut self.running,
            HostStatus::Success => &mut self.success,
            HostStatus::Failed => &mut self.failed,
            HostStatus::Timeout => &mut self.timeout,
            HostStatus::Cancelled => &mut self.cancelled,
        }
    }

    fn shift(&mut self, from: HostStatus, to: HostStatus) {
        *self.slot(from) -= 1;
        *self.slot(to) += 1;
    }

    /// Whether the parts add up to `total`.
    pub fn is_consistent(&self) -> bool {
        HostStatus::ALL
            .iter()
            .map(|s| u64::from(self.get(*s)))
            .sum::<u64>()
            == u64::from(self.total)
    }

    /// Whether every host has reported a final status.
    pub fn all_final(&self) -> bool {
        self.pending == 0 && self.running == 0
    }

    /// The execution status these final host results aggregate into: all success →
    /// `success`; else any failed (or cancelled on its own) → `failed`; else → `timeout`.
    /// `None` while some host has not finished.
    pub fn aggregate(&self) -> Option<ExecutionStatus> {
        if !self.all_final() {
            return None;
        }
        Some(if self.success == self.total {
            ExecutionStatus::Success
        } else if self.failed > 0 || self.cancelled > 0 {
            ExecutionStatus::Failed
        } else {
            ExecutionStatus::Timeout
        })
    }
}

/// Something that happens to an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A node claimed the pending execution and starts it.
    Start,
    /// Host `host` started running.
    HostStarted {
        /// Host index.
        host: u32,
    },
    /// Host `host` finished.
    HostFinished {
        /// Host index.
        host: u32,
        /// How it ended.
        outcome: HostOutcome,
    },
    /// Someone asked to cancel; hosts that have not reported by `deadline` are forced to
    /// `cancelled`.
    Cancel {
        /// The convergence deadline.
        deadline: DateTime<Utc>,
    },
    /// The execution's timeout passed: every host still pending or running timed out.
    TimedOut,
    /// The clock reached `now`; converges a `cancelling` execution whose deadline passed.
    Tick {
        /// The current instant.
        now: DateTime<Utc>,
    },
}

/// What one applied event changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Applied {
    /// The execution's status moves, in order, each one allowed by
    /// [`ExecutionStatus::allows`] (a cancel of a running execution whose hosts had not
    /// started yet moves `running -> cancelling -> cancelled` in one event).
    pub status: Vec<(ExecutionStatus, ExecutionStatus)>,
    /// Host moves: `(host, from, to)`.
    pub hosts: Vec<(u32, HostStatus, HostStatus)>,
}

/// The status of one execution and of each of its hosts, moved only by [`Event`]s.
///
/// Events that do not fit the current state are refused with [`Error::Conflict`] and change
/// nothing; in particular nothing leaves a final state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionMachine {
    status: ExecutionStatus,
    hosts: Vec<HostStatus>,
    counters: HostCounters,
    cancel_deadline: Option<DateTime<Utc>>,
}

impl ExecutionMachine {
    /// A new `pending` execution of `host_count` hosts (at least one).
    pub fn new(host_count: u32) -> Result<Self> {
        if host_count == 0 {
            return Err(Error::invalid(
                "targets",
                "an execution needs at least one host",
            ));
        }
        Ok(Self {
            status: ExecutionStatus::Pending,
            hosts: vec![HostStatus::Pending; host_count as usize],
            counters: HostCounters::all_pending(host_count),
            cancel_deadline: None,
        })
    }

    /// Rebuilds the machine from stored state (after a restart or a lease take-over).
    pub fn restore(
        status: ExecutionStatus,
        hosts: Vec<HostStatus>,
        cancel_deadline: Option<DateTime<Utc>>,
    ) -> Result<Self> {
        if hosts.is_empty() {
            return Err(Error::invalid(
                "hosts",
                "an execution needs at least one host",
            ));
        }
        if status == ExecutionStatus::Cancelling && cancel_deadline.is_none() {
            return Err(Error::invalid(
                "cancel_deadline",
                "a cancelling execution needs its convergence deadline",
            ));
        }
        let counters = HostCounters::from_statuses(hosts.iter().copied());
        Ok(Self {
            status,
            hosts,
            counters,
            cancel_deadline,
        })
    }

    /// The execution's status.
    pub fn status(&self) -> ExecutionStatus {
        self.status
    }

    /// Each host's status, by index.
    pub fn hosts(&self) -> &[HostStatus] {
        &self.hosts
    }

    /// Host counters.
    pub fn counters(&self) -> HostCounters {
        self.counters
    }

    /// The convergence deadline, once cancel was requested while running.
    pub fn cancel_deadline(&self) -> Option<DateTime<Utc>> {
        self.cancel_deadline
    }

    /// Applies `event`, or refuses it with [`Error::Conflict`] (changing nothing).
    pub fn apply(&mut self, event: Event) -> Result<Applied> {
        use ExecutionStatus as S;
        if self.status.is_final() {
            return Err(Error::conflict(format!(
                "the execution already ended with status `{}`",
                self.status
            )));
        }
        let mut applied = Applied::default();
        match (self.status, event) {
            (S::Pending, Event::Start) => self.move_to(S::Running, &mut applied),
            (S::Running, Event::HostStarted { host }) => {
                self.check_host(host, |s| s == HostStatus::Pending, "has already started")?;
                self.move_host(host, HostStatus::Running, &mut applied);
            }
            (S::Running | S::Cancelling, Event::HostFinished { host, outcome }) => {
                self.check_host(host, |s| !s.is_final(), "has already reported")?;
                self.move_host(host, outcome.into(), &mut applied);
                self.settle(&mut applied);
            }
            (S::Pending, Event::Cancel { .. }) => {
                self.finish_open_hosts(HostStatus::Cancelled, &mut applied);
                self.move_to(S::Cancelled, &mut applied);
            }
            (S::Running, Event::Cancel { deadline }) => {
                self.cancel_deadline = Some(deadline);
                self.move_to(S::Cancelling, &mut applied);
                // Hosts that never started are cancelled at once; running ones are killed
                // and report back.
                for i in 0..self.hosts.len() {
                    if self.hosts[i] == HostStatus::Pending {
                        self.move_host(i as u32, HostStatus::Cancelled, &mut applied);
                    }
                }
                self.settle(&mut applied);
            }
            (S::Cancelling, Event::Cancel { .. }) => {
                return Err(S::Cancelling.on_cancel().unwrap_err());
            }
            (S::Running, Event::TimedOut) => {
                self.finish_open_hosts(HostStatus::Timeout, &mut applied);
                self.settle(&mut applied);
            }
            (S::Cancelling, Event::TimedOut) => {
                self.finish_open_hosts(HostStatus::Cancelled, &mut applied);
                self.settle(&mut applied);
            }
            (S::Cancelling, Event::Tick { now }) => {
                if self.cancel_deadline.is_some_and(|d| now >= d) {
                    self.finish_open_hosts(HostStatus::Cancelled, &mut applied);
                    self.settle(&mut applied);
                }
            }
            (S::Pending | S::Running, Event::Tick { .. }) => {}
            (status, event) => {
                return Err(Error::conflict(format!(
                    "{} does not apply to an execution that is `{status}`",
                    event_name(event)
                )));
            }
        }
        debug_assert!(self.counters.is_consistent());
        Ok(applied)
    }

    fn check_host(&self, host: u32, ok: impl Fn(HostStatus) -> bool, refusal: &str) -> Result<()> {
        match self.hosts.get(host as usize) {
            None => Err(Error::invalid(
                "host",
                format!(
                    "host {host} is not part of this execution of {} hosts",
                    self.hosts.len()
                ),
            )),
            Some(s) if !ok(*s) => Err(Error::conflict(format!("host {host} {refusal} (`{s}`)"))),
            Some(_) => Ok(()),
        }
    }

    fn move_to(&mut self, to: ExecutionStatus, applied: &mut Applied) {
        debug_assert!(self.status.allows(to), "{} -> {to}", self.status);
        applied.status.push((self.status, to));
        self.status = to;
    }

    fn move_host(&mut self, host: u32, to: HostStatus, applied: &mut Applied) {
        let slot = &mut self.hosts[host as usize];
        let from = *slot;
        *slot = to;
        self.counters.shift(from, to);
        applied.hosts.push((host, from, to));
    }

    fn finish_open_hosts(&mut self, to: HostStatus, applied: &mut Applied) {
        for i in 0..self.hosts.len() {
            if !self.hosts[i].is_final() {
                self.move_host(i as u32, to, applied);
            }
        }
    }

    /// Once every host has reported, moves to the final status.
    fn settle(&mut self, applied: &mut Applied) {
        if !self.counters.all_final() {
            return;
        }
        let to = match self.status {
            ExecutionStatus::Cancelling => ExecutionStatus::Cancelled,
            _ => match self.counters.aggregate() {
                Some(s) => s,
                None => return,
            },
        };
        self.move_to(to, applied);
    }
}

fn event_name(e: Event) -> &'static str {
    match e {
        Event::Start => "start",
        Event::HostStarted { .. } => "a host start",
        Event::HostFinished { .. } => "a host result",
        Event::Cancel { .. } => "cancel",
        Event::TimedOut => "a timeout",
        Event::Tick { .. } => "a clock tick",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
    }

    fn running(n: u32) -> ExecutionMachine {
        let mut m = ExecutionMachine::new(n).unwrap();
        m.apply(Event::Start).unwrap();
        m
    }

    #[test]
    fn wire_names_are_the_seven_statuses() {
        let names: Vec<_> = ExecutionStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "pending",
                "running",
                "success",
                "failed",
                "timeout",
                "cancelling",
                "cancelled"
            ]
        );
        for s in ExecutionStatus::ALL {
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
            assert_eq!(s.as_str().parse::<ExecutionStatus>().unwrap(), s);
        }
        assert!("done".parse::<ExecutionStatus>().is_err());
    }

    #[test]
    fn cancel_on_pending_is_immediate() {
        let mut m = ExecutionMachine::new(3).unwrap();
        let applied = m.apply(Event::Cancel { deadline: t(30) }).unwrap();
        assert_eq!(
            applied.status,
            [(ExecutionStatus::Pending, ExecutionStatus::Cancelled)]
        );
        assert_eq!(m.counters().cancelled, 3);
    }

    #[test]
    fn cancel_on_running_goes_through_cancelling_until_hosts_report() {
        let mut m = running(2);
        m.apply(Event::HostStarted { host: 0 }).unwrap();
        m.apply(Event::HostStarted { host: 1 }).unwrap();
        m.apply(Event::Cancel { deadline: t(30) }).unwrap();
        assert_eq!(m.status(), ExecutionStatus::Cancelling);
        m.apply(Event::HostFinished {
            host: 0,
            outcome: HostOutcome::Cancelled,
        })
        .unwrap();
        assert_eq!(m.status(), ExecutionStatus::Cancelling);
        let a = m
            .apply(Event::HostFinished {
                host: 1,
                outcome: HostOutcome::Success,
            })
            .unwrap();
        assert_eq!(
            a.status,
            [(ExecutionStatus::Cancelling, ExecutionStatus::Cancelled)]
        );
    }

    #[test]
    fn cancelling_converges_at_the_deadline_when_hosts_stay_silent() {
        let mut m = running(1);
        m.apply(Event::HostStarted { host: 0 }).unwrap();
        m.apply(Event::Cancel { deadline: t(30) }).unwrap();
        assert_eq!(
            m.apply(Event::Tick { now: t(29) }).unwrap(),
            Applied::default()
        );
        m.apply(Event::Tick { now: t(30) }).unwrap();
        assert_eq!(m.status(), ExecutionStatus::Cancelled);
        assert_eq!(m.hosts(), [HostStatus::Cancelled]);
    }

    #[test]
    fn cancel_before_any_host_started_reports_both_steps() {
        let mut m = running(2);
        let a = m.apply(Event::Cancel { deadline: t(30) }).unwrap();
        assert_eq!(
            a.status,
            [
                (ExecutionStatus::Running, ExecutionStatus::Cancelling),
                (ExecutionStatus::Cancelling, ExecutionStatus::Cancelled)
            ]
        );
    }

    #[test]
    fn a_second_cancel_is_refused_with_a_clear_error() {
        let mut m = running(1);
        m.apply(Event::HostStarted { host: 0 }).unwrap();
        m.apply(Event::Cancel { deadline: t(30) }).unwrap();
        let err = m.apply(Event::Cancel { deadline: t(60) }).unwrap_err();
        assert!(err.to_string().contains("already being cancelled"), "{err}");
        assert_eq!(m.cancel_deadline(), Some(t(30)));
    }

    #[test]
    fn cancel_on_a_final_execution_is_refused() {
        let mut m = running(1);
        m.apply(Event::HostFinished {
            host: 0,
            outcome: HostOutcome::Success,
        })
        .unwrap();
        let err = m.apply(Event::Cancel { deadline: t(1) }).unwrap_err();
        assert_eq!(err.code(), "conflict");
        assert!(err.to_string().contains("success"), "{err}");
        assert!(ExecutionStatus::Success.on_cancel().is_err());
    }

    #[test]
    fn host_results_aggregate_into_the_execution_status() {
        use HostOutcome as O;
        let cases: [(&[O], ExecutionStatus); 5] = [
            (&[O::Success, O::Success], ExecutionStatus::Success),
            (&[O::Success, O::Failed], ExecutionStatus::Failed),
            (&[O::Timeout, O::Failed], ExecutionStatus::Failed),
            (&[O::Success, O::Timeout], ExecutionStatus::Timeout),
            (&[O::Timeout, O::Timeout], ExecutionStatus::Timeout),
        ];
        for (outcomes, want) in cases {
            let mut m = running(outcomes.len() as u32);
            for (i, o) in outcomes.iter().enumerate() {
                m.apply(Event::HostFinished {
                    host: i as u32,
                    outcome: *o,
                })
                .unwrap();
            }
            assert_eq!(m.status(), want, "{outcomes:?}");
        }
    }

    #[test]
    fn one_unreachable_host_fails_alone_and_the_rest_go_on() {
        let mut m = running(3);
        m.apply(Event::HostFinished {
            host: 1,
            outcome: HostOutcome::Failed,
        })
        .unwrap();
        assert_eq!(m.status(), ExecutionStatus::Running);
        m.apply(Event::HostStarted { host: 0 }).unwrap();
        m.apply(Event::HostFinished {
            host: 0,
            outcome: HostOutcome::Success,
        })
        .unwrap();
        m.apply(Event::HostFinished {
            host: 2,
            outcome: HostOutcome::Success,
        })
        .unwrap();
        assert_eq!(m.status(), ExecutionStatus::Failed);
        assert_eq!(m.counters().success, 2);
    }

    #[test]
    fn a_host_cannot_report_twice_or_out_of_range() {
        let mut m = running(1);
        m.apply(Event::HostStarted { host: 0 }).unwrap();
        assert!(m.apply(Event::HostStarted { host: 0 }).is_err());
        assert_eq!(
            m.apply(Event::HostStarted { host: 7 }).unwrap_err().code(),
            "invalid"
        );
    }

    #[test]
    fn timeout_marks_open_hosts() {
        let mut m = running(2);
        m.apply(Event::HostFinished {
            host: 0,
            outcome: HostOutcome::Success,
        })
        .unwrap();
        m.apply(Event::TimedOut).unwrap();
        assert_eq!(m.status(), ExecutionStatus::Timeout);
        assert_eq!(m.hosts(), [HostStatus::Success, HostStatus::Timeout]);
    }

    #[test]
    fn re_execute_only_from_a_final_state() {
        for s in ExecutionStatus::ALL {
            assert_eq!(s.ensure_re_executable().is_ok(), s.is_final(), "{s}");
        }
    }

    #[test]
    fn restore_rebuilds_counters_and_requires_a_deadline_when_cancelling() {
        let m = ExecutionMachine::restore(
            ExecutionStatus::Running,
            vec![HostStatus::Success, HostStatus::Running],
            None,
        )
        .unwrap();
        assert_eq!(m.counters().success, 1);
        assert!(
            ExecutionMachine::restore(ExecutionStatus::Cancelling, vec![HostStatus::Running], None)
                .is_err()
        );
        assert!(ExecutionMachine::new(0).is_err());
    }

    #[test]
    fn the_move_table_matches_the_design() {
        use ExecutionStatus as S;
        let allowed: Vec<_> = S::ALL
            .iter()
            .flat_map(|a| S::ALL.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a.allows(*b))
            .collect();
        assert_eq!(
            allowed,
            [
                (S::Pending, S::Running),
                (S::Pending, S::Cancelled),
                (S::Running, S::Success),
                (S::Running, S::Failed),
                (S::Running, S::Timeout),
                (S::Running, S::Cancelling),
                (S::Cancelling, S::Cancelled),
            ]
        );
    }
}
