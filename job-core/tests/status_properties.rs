//! Property tests of the status machine over random event sequences.

use chrono::{DateTime, Duration, TimeZone, Utc};
use job_core::status::{Event, ExecutionMachine, ExecutionStatus, HostCounters, HostOutcome};
use proptest::prelude::*;

fn base() -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000, 0).unwrap()
}

fn outcome() -> impl Strategy<Value = HostOutcome> {
    prop_oneof![
        Just(HostOutcome::Success),
        Just(HostOutcome::Failed),
        Just(HostOutcome::Timeout),
        Just(HostOutcome::Cancelled),
    ]
}

/// Any event, including ones that do not fit the state (hosts out of range, repeated
/// cancels, late results): the machine must refuse those without changing.
fn event(hosts: u32) -> impl Strategy<Value = Event> {
    let host = 0..hosts + 1; // one past the end on purpose
    prop_oneof![
        1 => Just(Event::Start),
        3 => host.clone().prop_map(|host| Event::HostStarted { host }),
        4 => (host, outcome()).prop_map(|(host, outcome)| Event::HostFinished { host, outcome }),
        1 => (0i64..120).prop_map(|s| Event::Cancel { deadline: base() + Duration::seconds(s) }),
        1 => Just(Event::TimedOut),
        1 => (0i64..240).prop_map(|s| Event::Tick { now: base() + Duration::seconds(s) }),
    ]
}

fn scenario() -> impl Strategy<Value = (u32, Vec<Event>)> {
    (1u32..6).prop_flat_map(|n| (Just(n), prop::collection::vec(event(n), 0..40)))
}

/// Applies `events`, checking the invariants that must hold after every step.
fn run_checked(n: u32, events: &[Event]) -> ExecutionMachine {
    let mut m = ExecutionMachine::new(n).unwrap();
    let mut cancelled_once = false;
    for ev in events {
        let before = m.clone();
        let result = m.apply(*ev);
        match &result {
            Err(_) => assert_eq!(m, before, "a refused {ev:?} changed the machine"),
            Ok(applied) => {
                // Every step is in the move table, and the steps chain from the old status
                // to the new one.
                let mut at = before.status();
                for (from, to) in &applied.status {
                    assert!(from.allows(*to), "{from} -> {to}");
                    assert_eq!(*from, at);
                    at = *to;
                }
                assert_eq!(at, m.status());
            }
        }
        // Nothing leaves a final state.
        if before.status().is_final() {
            assert!(result.is_err(), "{ev:?} was accepted on a final execution");
            assert_eq!(m.status(), before.status());
        }
        // Counters always add up and agree with the hosts.
        let c = m.counters();
        assert!(c.is_consistent(), "{c:?}");
        assert_eq!(c, HostCounters::from_statuses(m.hosts().iter().copied()));
        assert_eq!(c.total, n);
        // A second cancel is always refused.
        if matches!(ev, Event::Cancel { .. }) {
            if cancelled_once {
                assert!(result.is_err(), "a second cancel was accepted");
            }
            if result.is_ok() {
                cancelled_once = true;
            }
        }
    }
    m
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn invariants_hold_after_every_event((n, events) in scenario()) {
        run_checked(n, &events);
    }

    #[test]
    fn every_sequence_ends_final_once_all_hosts_report((n, events) in scenario(), o in outcome()) {
        let mut m = run_checked(n, &events);
        if m.status() == ExecutionStatus::Pending {
            m.apply(Event::Start).unwrap();
        }
        for host in 0..n {
            if !m.hosts()[host as usize].is_final() {
                m.apply(Event::HostFinished { host, outcome: o }).unwrap();
            }
        }
        prop_assert!(m.status().is_final(), "ended {}", m.status());
        prop_assert!(m.counters().all_final());
    }

    #[test]
    fn every_sequence_ends_final_once_the_deadline_passes((n, events) in scenario()) {
        let mut m = run_checked(n, &events);
        if !m.status().is_final() && m.status() != ExecutionStatus::Cancelling {
            m.apply(Event::Cancel { deadline: base() + Duration::seconds(300) }).unwrap();
        }
        if !m.status().is_final() {
            let deadline = m.cancel_deadline().unwrap();
            m.apply(Event::Tick { now: deadline }).unwrap();
        }
        prop_assert!(m.status().is_final(), "ended {}", m.status());
        prop_assert!(m.counters().all_final());
    }

    #[test]
    fn without_cancel_the_final_status_is_the_aggregate_of_host_results(
        outcomes in prop::collection::vec(outcome(), 1..8)
    ) {
        let mut m = ExecutionMachine::new(outcomes.len() as u32).unwrap();
        m.apply(Event::Start).unwrap();
        for (i, o) in outcomes.iter().enumerate() {
            m.apply(Event::HostFinished { host: i as u32, outcome: *o }).unwrap();
        }
        let want = if outcomes.iter().all(|o| *o == HostOutcome::Success) {
            ExecutionStatus::Success
        } else if outcomes.iter().any(|o| matches!(o, HostOutcome::Failed | HostOutcome::Cancelled)) {
            ExecutionStatus::Failed
        } else {
            ExecutionStatus::Timeout
        };
        prop_assert_eq!(m.status(), want);
    }
}
