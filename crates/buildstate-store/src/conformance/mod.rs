//! The conformance suite: one contract, every backend.
//!
//! A backend's test file provides a [`Harness`] and expands [`conformance_tests!`]:
//!
//! ```text
//! buildstate_store::conformance_tests!(my_backend::tests::harness());
//! ```
//!
//! Each case becomes its own `#[tokio::test]` (multi-threaded), so a failure names the
//! broken rule. Cases get fresh, empty stores from the harness; `open` may be called
//! more than once to get independent handles (connections) on the same store, which is
//! how the concurrency cases race real writers.
//!
//! The cases test the contract — the doc comments of [`Store`], SPEC §2 and the text
//! policy of `buildstate_core::clean_text` — and nothing a backend is free to choose
//! (row layout, ordering of ties, the exact wording of errors). Every refused call is
//! checked twice: for its typed error, and for leaving the exported build unchanged.

use std::sync::Arc;

use async_trait::async_trait;

use crate::Store;

/// Gives the suite handles on one fresh, empty store.
#[async_trait]
pub trait Harness: Send + Sync + 'static {
    /// Another handle on the same store (a new connection where the backend has them).
    async fn open(&self) -> Arc<dyn Store>;

    /// How the store records `actor`, the name a caller gave (`NewBuild::created_by`,
    /// a command's actor): as given, unless the store is a server's client, whose
    /// server records the token a change came with beside it (`alice via token:ci`).
    fn recorded_actor(&self, actor: &str) -> String {
        actor.to_owned()
    }

    /// What the store does with webhooks.
    fn webhooks(&self) -> Webhooks {
        Webhooks::Sent
    }
}

/// How far a store takes webhooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Webhooks {
    /// Keeps endpoints and an outbox, and lets a sender claim and record deliveries
    /// (the SQL stores).
    Sent,
    /// Keeps them, but a sender is the server's own business (a server's client).
    Kept,
    /// Refuses endpoints: it cannot write an outbox row in a transition's transaction
    /// (JSON files).
    Refused,
}

/// Expands to one `#[tokio::test]` per conformance case. `$harness` is an expression
/// (usually an `async` call) evaluating to a [`Harness`].
#[macro_export]
macro_rules! conformance_tests {
    ($harness:expr) => {
        $crate::conformance_tests!(@cases $harness;
            catalog_add_list_show_remove,
            catalog_duplicates_unknowns_and_namespaces,
            catalog_item_in_use_cannot_be_removed,
            create_build_starts_pending_at_zero,
            create_build_numbers_by_triple_and_day,
            create_build_chosen_number,
            create_build_numbers_past_lookalikes_numerically,
            create_build_with_unknown_catalog_items_creates_nothing,
            create_build_with_longest_names,
            concurrent_creates_get_distinct_numbers,
            find_build_by_id_number_and_prefix,
            list_builds_filters_newest_first,
            lifecycle_start_complete_to_delivered,
            fail_keeps_state_and_retry_reopens,
            retries_exhausted_need_a_person_and_force_is_recorded,
            persistent_failure_needs_a_person_at_once,
            rewind_invalidates_milestones_above,
            cancel_is_terminal_until_rewound,
            skip_advances_and_is_recorded,
            set_meta_sets_and_removes,
            custom_catalog_with_inserted_codes,
            rejects_codes_outside_the_catalog_and_out_of_order,
            rejects_by_attempt_and_retry_rules,
            rejects_everything_but_rewind_on_terminal_builds,
            rejects_rewind_forward_and_missing_reasons,
            version_mismatch_is_a_conflict,
            unknown_build_is_not_found,
            history_is_append_only_and_gapless,
            failures_are_recorded_filtered_and_resolved,
            artifacts_add_list_replace,
            an_artifact_without_a_cloud_reads_back_without_one,
            rewind_invalidates_the_artifacts_of_the_milestones_it_reruns,
            export_import_round_trip,
            import_registers_missing_catalog_items,
            import_refuses_broken_documents,
            import_replays_history_and_checks_the_provider,
            hostile_text_round_trips_by_policy,
            no_raw_control_characters_are_stored,
            every_text_field_reads_back_at_its_limit,
            concurrent_distinct_builds_run_to_delivery,
            concurrent_writers_on_one_build_lose_nothing,
            concurrent_artifacts_and_metadata_on_one_build,
            lease_acquire_renew_release,
            leases_are_listed_by_build_number,
            second_acquire_is_refused_naming_the_holder,
            expired_lease_is_taken_over_with_the_next_token,
            stale_token_writes_are_refused_and_change_nothing,
            untokened_writes_wait_for_the_lease,
            break_then_acquire_gets_the_next_token,
            lease_tokens_never_decrease,
            concurrent_acquirers_one_wins,
            artifact_and_resolution_writes_are_fenced,
            a_dead_holders_lease_is_taken_over_at_once,
            workers_are_recorded_listed_and_marked_exited,
            stale_workers_are_flagged_and_old_ones_left_out,
            tokens_are_stored_hashed_looked_up_and_revoked,
            webhooks_are_added_listed_and_removed,
            transitions_queue_webhook_deliveries_in_their_transaction,
            webhook_deliveries_are_claimed_retried_and_given_up,
            concurrent_claims_never_take_one_delivery_twice,
            list_builds_pages_by_cursor_without_gaps_or_repeats,
            prune_deletes_old_finished_builds_whole,
            prune_never_touches_running_leased_or_failed_open_builds,
            prune_of_a_build_that_changed_is_a_no_op,
            prune_racing_a_runner_deletes_the_build_or_leaves_it_leased,
            report_overview_agrees_with_the_records,
            report_platforms_agrees_with_the_records,
            report_os_agrees_with_the_records,
            report_images_agrees_with_the_records,
            report_matrix_agrees_with_the_records,
            report_running_agrees_with_the_records,
            report_attention_agrees_with_the_records,
            report_states_agrees_with_the_records,
            report_failures_agrees_with_the_records,
            report_durations_agrees_with_the_records,
            report_success_rate_agrees_with_the_records,
            report_platform_durations_agrees_with_the_records,
            report_excessive_failures_agrees_with_the_records,
            report_resumable_agrees_with_the_records,
            report_ready_agrees_with_the_records,
            report_eta_agrees_with_the_records,
            report_time_saved_agrees_with_the_records,
            report_cost_agrees_with_the_records,
            report_flaky_agrees_with_the_records,
            attempt_statistics_follow_every_change,
        );
    };
    (@cases $harness:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let harness = $harness;
                $crate::conformance::cases::$case(&harness).await;
            }
        )+
    };
}

mod seed;
pub use seed::{assert_attempt_stats_agree, seed_attempts, seed_sample_catalog};

/// The cases. Each takes a harness and panics (with a message naming the rule) when
/// the backend breaks the contract.
pub mod cases;
