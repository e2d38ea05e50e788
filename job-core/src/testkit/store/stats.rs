//! Conformance cases for the dashboard aggregates.

use chrono::Duration;

use super::fixtures::*;
use crate::ids::TeamId;
use crate::model::JobType;
use crate::status::ExecutionStatus as S;
use crate::store::{Store, TimeRange, Transition};

/// Creates an execution of `team` at `created` that ends in `status` after `secs` seconds.
async fn run(
    store: &dyn Store,
    team: TeamId,
    created: chrono::DateTime<chrono::Utc>,
    job_type: JobType,
    status: S,
    secs: i64,
) {
    let (mut e, runs) = execution(team, 1, created);
    e.job_type = job_type;
    store.create_execution(&e, &runs).await.expect("create");
    match status {
        S::Pending => {}
        S::Cancelled => {
            store
                .transition(e.id, &Transition::new(S::Pending, S::Cancelled, created))
                .await
                .expect("cancel");
        }
        _ => {
            store
                .transition(e.id, &Transition::new(S::Pending, S::Running, created))
                .await
                .expect("start");
            if status != S::Running {
                let end = created + Duration::seconds(secs);
                store
                    .transition(e.id, &Transition::new(S::Running, status, end))
                    .await
                    .expect("finish");
            }
        }
    }
}

/// Totals count every status and kind of work, zeros included, within the period only.
pub async fn dashboard_totals_count_by_status_and_type(store: &dyn Store) {
    let a = team(store, "stats-totals").await;
    let sc = scope(a.id);
    run(store, a.id, at(10, 0), JobType::Script, S::Success, 1).await;
    run(store, a.id, at(10, 60), JobType::Script, S::Failed, 1).await;
    run(store, a.id, at(10, 120), JobType::Playbook, S::Running, 0).await;
    run(
        store,
        a.id,
        at(11, 0),
        JobType::FileDistribution,
        S::Success,
        1,
    )
    .await;
    run(store, a.id, at(12, 0), JobType::Script, S::Success, 1).await;
    let t = store
        .totals(&sc, TimeRange::new(at(10, 0), at(12, 0)).expect("range"))
        .await
        .expect("totals");
    assert_eq!(t.total, 4);
    assert_eq!(
        (
            t.status(S::Success),
            t.status(S::Failed),
            t.status(S::Running),
            t.status(S::Cancelled)
        ),
        (2, 1, 1, 0)
    );
    assert_eq!(t.by_status.len(), 7);
    assert_eq!(
        (
            t.job_type(JobType::Script),
            t.job_type(JobType::Playbook),
            t.job_type(JobType::FileDistribution)
        ),
        (2, 1, 1)
    );
    let none = store
        .totals(&sc, TimeRange::new(at(20, 0), at(21, 0)).expect("range"))
        .await
        .expect("totals");
    assert_eq!((none.total, none.by_type.len()), (0, 3));
}

/// The trend has one entry per day, zeros for days without executions.
pub async fn daily_trend_fills_days_without_executions_with_zeros(store: &dyn Store) {
    let a = team(store, "stats-trend").await;
    run(store, a.id, at(30, 10), JobType::Script, S::Success, 1).await;
    run(store, a.id, at(30, 86_399), JobType::Script, S::Timeout, 1).await;
    run(store, a.id, at(32, 0), JobType::Script, S::Failed, 1).await;
    run(store, a.id, at(33, 0), JobType::Script, S::Success, 1).await;
    let first = at(29, 0).date_naive();
    let trend = store
        .daily_trend(&scope(a.id), first, 4)
        .await
        .expect("trend");
    let got: Vec<_> = trend
        .iter()
        .map(|d| (d.day, d.total, d.success, d.failed))
        .collect();
    let day = |n: i64| at(n, 0).date_naive();
    assert_eq!(
        got,
        vec![
            (day(29), 0, 0, 0),
            (day(30), 2, 1, 1),
            (day(31), 0, 0, 0),
            (day(32), 1, 0, 1)
        ]
    );
}

/// Average run time covers finished runs; the success rate compares with the period before.
pub async fn average_duration_and_success_rate_compare_with_the_period_before(store: &dyn Store) {
    let a = team(store, "stats-rate").await;
    let sc = scope(a.id);
    // Previous period (days 40-41): 1 of 4 ended runs succeeded.
    run(store, a.id, at(40, 0), JobType::Script, S::Success, 10).await;
    run(store, a.id, at(40, 60), JobType::Script, S::Failed, 10).await;
    run(store, a.id, at(40, 120), JobType::Script, S::Failed, 10).await;
    run(store, a.id, at(40, 180), JobType::Script, S::Timeout, 10).await;
    // Current period (days 41-42): 3 of 4 ended runs succeeded; cancelled and running
    // runs do not count.
    run(store, a.id, at(41, 0), JobType::Script, S::Success, 2).await;
    run(store, a.id, at(41, 60), JobType::Script, S::Success, 4).await;
    run(store, a.id, at(41, 120), JobType::Script, S::Success, 6).await;
    run(store, a.id, at(41, 180), JobType::Script, S::Failed, 8).await;
    run(store, a.id, at(41, 240), JobType::Script, S::Cancelled, 0).await;
    run(store, a.id, at(41, 300), JobType::Script, S::Running, 0).await;
    let range = TimeRange::new(at(41, 0), at(42, 0)).expect("range");
    let rate = store.success_rate(&sc, range).await.expect("rate");
    assert_eq!((rate.current, rate.previous), (Some(0.75), Some(0.25)));
    let avg = store
        .average_duration_ms(&sc, range)
        .await
        .expect("avg")
        .expect("some finished");
    assert!((avg - 5000.0).abs() < 1.0, "{avg}");
    let empty = TimeRange::new(at(50, 0), at(51, 0)).expect("range");
    assert_eq!(
        store.average_duration_ms(&sc, empty).await.expect("avg"),
        None
    );
    let rate = store.success_rate(&sc, empty).await.expect("rate");
    assert_eq!((rate.current, rate.previous), (None, None));
}
