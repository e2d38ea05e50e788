//! The store conformance suite: every case a backend must pass (feature `testkit`).
//!
//! Each case is a `pub async fn` over `&dyn Store`. Cases create their own teams with
//! unique names and only assert on what they created, so they can share one store
//! ([`run_all`]) or each get a fresh one ([`store_conformance_tests!`](crate::store_conformance_tests)).
//! They need a multi-threaded Tokio runtime only in the sense that backends may; the races
//! are driven by concurrent futures on one task.
//!
//! A backend's `tests/conformance.rs`:
//!
//! ```ignore
//! async fn store() -> Option<MyStore> { Some(MyStore::open_fresh().await) }
//! job_core::store_conformance_tests!(store);
//! ```

mod assets;
mod cron;
mod executions;
pub mod fixtures;
mod hostile;
mod identity;
mod library;
mod listings;
mod rolling;
mod rules;
mod runs;
mod stats;

pub use assets::{
    agentless_targets_need_a_credential_of_their_team,
    target_selectors_resolve_ids_addresses_tags_and_groups,
    targets_round_trip_and_names_are_unique_per_team,
};
pub use cron::{
    a_cron_occurrence_is_claimed_once_however_many_nodes_try, cron_jobs_round_trip_and_list_due,
};
pub use executions::{
    a_final_move_writes_its_outbox_entries_in_the_same_transaction,
    a_refused_execution_leaves_nothing_half_written,
    an_execution_is_created_with_all_its_host_runs,
    cancel_of_a_pending_execution_cancels_its_hosts_in_one_move,
    exactly_one_of_many_concurrent_transitions_wins,
    host_updates_only_move_forward_and_keep_counters_true,
    outbox_entries_are_claimed_retried_and_delivered,
    status_moves_are_compare_and_set_against_the_move_table,
};
pub use hostile::{
    hostile_values_are_stored_and_read_back_unchanged,
    values_the_schema_cannot_hold_are_refused_naming_the_field,
};
pub use identity::users_teams_memberships_and_tokens;
pub use library::{
    playbooks_keep_their_versions, scripts_keep_their_versions,
    staged_files_are_listed_and_due_for_expiry,
};
pub use listings::{
    execution_listings_filter_by_status_type_trigger_team_time_and_name,
    nothing_of_another_team_is_visible, pagination_is_stable_under_inserts,
};
pub use rolling::{
    a_node_releases_its_own_leases_at_once,
    a_rolling_plan_and_its_pause_are_stored_with_the_execution,
};
pub use rules::rules_are_global_or_per_team_and_built_ins_cannot_be_deleted;
pub use runs::{
    concurrent_appends_to_one_host_get_gapless_sequences,
    leases_are_renewed_released_and_taken_over_when_expired, output_bytes_are_stored_unchanged,
    output_keeps_sequence_order_per_host, output_past_the_cap_is_cut_with_a_visible_marker,
    two_claimers_never_get_the_same_execution,
};
pub use stats::{
    average_duration_and_success_rate_compare_with_the_period_before,
    daily_trend_fills_days_without_executions_with_zeros,
    dashboard_totals_count_by_status_and_type,
};

use crate::store::Store;

/// Holds the one list of conformance cases and expands it into tests or calls.
#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_cases {
    ($mode:ident $args:tt) => {
        $crate::__store_conformance_cases! {
            @expand $mode $args
                targets_round_trip_and_names_are_unique_per_team,
                agentless_targets_need_a_credential_of_their_team,
                target_selectors_resolve_ids_addresses_tags_and_groups,
                scripts_keep_their_versions,
                playbooks_keep_their_versions,
                staged_files_are_listed_and_due_for_expiry,
                rules_are_global_or_per_team_and_built_ins_cannot_be_deleted,
                cron_jobs_round_trip_and_list_due,
                a_cron_occurrence_is_claimed_once_however_many_nodes_try,
                users_teams_memberships_and_tokens,
                an_execution_is_created_with_all_its_host_runs,
                a_refused_execution_leaves_nothing_half_written,
                status_moves_are_compare_and_set_against_the_move_table,
                exactly_one_of_many_concurrent_transitions_wins,
                a_final_move_writes_its_outbox_entries_in_the_same_transaction,
                host_updates_only_move_forward_and_keep_counters_true,
                cancel_of_a_pending_execution_cancels_its_hosts_in_one_move,
                outbox_entries_are_claimed_retried_and_delivered,
                two_claimers_never_get_the_same_execution,
                leases_are_renewed_released_and_taken_over_when_expired,
                a_rolling_plan_and_its_pause_are_stored_with_the_execution,
                a_node_releases_its_own_leases_at_once,
                output_keeps_sequence_order_per_host,
                output_past_the_cap_is_cut_with_a_visible_marker,
                concurrent_appends_to_one_host_get_gapless_sequences,
                output_bytes_are_stored_unchanged,
                execution_listings_filter_by_status_type_trigger_team_time_and_name,
                pagination_is_stable_under_inserts,
                nothing_of_another_team_is_visible,
                hostile_values_are_stored_and_read_back_unchanged,
                values_the_schema_cannot_hold_are_refused_naming_the_field,
                dashboard_totals_count_by_status_and_type,
                daily_trend_fills_days_without_executions_with_zeros,
                average_duration_and_success_rate_compare_with_the_period_before,
        }
    };
    (@expand tests ($make:path, $finish:path) $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(store) = $make().await else {
                    return;
                };
                $crate::testkit::store::$case(&*store).await;
                let _ = $finish(store).await;
            }
        )*
    };
    (@expand run ($store:expr) $($case:ident),* $(,)?) => {
        $(
            ::tracing::info!(case = stringify!($case), "store conformance");
            $crate::testkit::store::$case($store).await;
        )*
    };
}

/// Generates one `#[tokio::test]` per conformance case, each on a fresh store.
///
/// `$make` is an async fn returning `Some` value that dereferences to the store (the store
/// itself, a `Box`, an `Arc`, or a guard), or `None` to skip the case (only for a server that
/// cannot be reached outside CI). With a second argument `$finish`, an async fn taking that
/// value, it is called after the case passed (to drop a throwaway database).
/// The calling crate needs `tokio` with the `macros` and `rt-multi-thread` features.
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:path) => {
        $crate::store_conformance_tests!($make, $crate::testkit::store::fixtures::discard);
    };
    ($make:path, $finish:path) => {
        $crate::__store_conformance_cases! { tests ($make, $finish) }
    };
}

/// Runs every case, one after the other, on `store`.
pub async fn run_all(store: &dyn Store) {
    crate::__store_conformance_cases! { run (store) }
}
