//! Conformance cases for cron jobs and their occurrences.

use super::fixtures::*;
use crate::ids::*;
use crate::store::{AssetFilter, PageRequest, Store};

/// Cron jobs round-trip, list the due ones, and keep the last fire an edit cannot move.
pub async fn cron_jobs_round_trip_and_list_due(store: &dyn Store) {
    let a = team(store, "cron-a").await;
    let b = team(store, "cron-b").await;
    let mut job = cron_job(a.id, "every five minutes");
    store.create_cron_job(&job).await.expect("create");
    assert_eq!(
        store.get_cron_job(&scope(a.id), job.id).await.expect("get"),
        job
    );
    assert_not_found(store.get_cron_job(&scope(b.id), job.id).await);
    assert_conflict(
        store
            .create_cron_job(&cron_job(a.id, "every five minutes"))
            .await,
    );
    let due = store.cron_jobs_due(at(0, 300), 1000).await.expect("due");
    assert!(due.iter().any(|j| j.id == job.id));
    assert!(
        !store
            .cron_jobs_due(at(0, 299), 1000)
            .await
            .expect("due")
            .iter()
            .any(|j| j.id == job.id)
    );
    job.enabled = false;
    store
        .update_cron_job(&scope(a.id), &job)
        .await
        .expect("pause");
    assert!(
        !store
            .cron_jobs_due(at(0, 300), 1000)
            .await
            .expect("due")
            .iter()
            .any(|j| j.id == job.id)
    );
    assert_not_found(store.update_cron_job(&scope(b.id), &job).await);
    let page = store
        .list_cron_jobs(
            &scope(a.id),
            &AssetFilter::default(),
            PageRequest::first(10),
        )
        .await
        .expect("list");
    assert_eq!(page.items, vec![job.clone()]);
    store
        .delete_cron_job(&scope(a.id), job.id)
        .await
        .expect("delete");
    assert_not_found(store.get_cron_job(&scope(a.id), job.id).await);
}

/// Of many nodes claiming one cron occurrence at once, exactly one gets it.
pub async fn a_cron_occurrence_is_claimed_once_however_many_nodes_try(store: &dyn Store) {
    let a = team(store, "cron-claim").await;
    let job = cron_job(a.id, "claimed");
    store.create_cron_job(&job).await.expect("create");
    let fire = at(0, 300);
    let next = Some(at(0, 600));
    let nodes: Vec<String> = (0..8).map(|i| format!("node-{i}")).collect();
    let claims = join_all(
        nodes
            .iter()
            .map(|n| store.claim_cron_occurrence(job.id, fire, next, n))
            .collect(),
    )
    .await;
    let won = claims
        .into_iter()
        .map(|r| r.expect("claim"))
        .filter(|w| *w)
        .count();
    assert_eq!(won, 1);
    assert!(
        !store
            .claim_cron_occurrence(job.id, fire, next, "late")
            .await
            .expect("claim again")
    );
    let stored = store.get_cron_job(&scope(a.id), job.id).await.expect("get");
    assert_eq!(
        (stored.last_fire_at, stored.next_fire_at),
        (Some(fire), next)
    );
    let mut edited = stored.clone();
    edited.last_fire_at = None;
    store
        .update_cron_job(&scope(a.id), &edited)
        .await
        .expect("edit");
    assert_eq!(
        store
            .get_cron_job(&scope(a.id), job.id)
            .await
            .expect("get")
            .last_fire_at,
        Some(fire)
    );
    assert!(
        store
            .claim_cron_occurrence(job.id, at(0, 600), Some(at(0, 900)), "node-1")
            .await
            .expect("next fire")
    );
    assert_not_found(
        store
            .claim_cron_occurrence(CronJobId::new(), fire, None, "node-1")
            .await,
    );
}
