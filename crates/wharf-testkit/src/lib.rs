//! Test support for Wharf backends: a [`TestServer`] that serves the real
//! HTTP router in-process on `127.0.0.1:0` over any [`Broker`], and the API
//! conformance suite every backend must pass.
//!
//! ```ignore
//! async fn engine(clock: ManualClock) -> Arc<dyn Broker> { /* open a backend on `clock` */ }
//! wharf_testkit::api_conformance_suite!(engine);
//! ```
//!
//! The calling crate needs `tokio` (with `macros` and `rt-multi-thread`) as a
//! dev-dependency. Time only moves when a test calls [`TestServer::advance`],
//! which moves the clock and runs `Broker::tick`: no test sleeps through a
//! visibility timeout or a delay.

pub mod conformance;
mod server;

pub use server::{assert_envelope, Backend, Reply, TestServer, START_MS};

/// Expands to one `#[tokio::test]` per conformance case, each on a fresh
/// backend from `$factory` (`fn(ManualClock) -> impl Future<Output = B>`, where
/// `B` is an `Arc<dyn Broker>` or a [`Backend`] holding what must outlive it).
#[macro_export]
macro_rules! api_conformance_suite {
    ($factory:path) => {
        $crate::__conformance_cases!($factory;
            queues::queue_create_and_get_return_every_field,
            queues::queue_list_pages_and_filters_by_name,
            queues::queue_put_replaces_and_patch_merges,
            queues::queue_delete_removes_queue_and_messages,
            queues::queue_name_rules_and_duplicates,
            queues::queue_settings_are_validated,
            queues::unknown_and_malformed_ids,
            consumers::pull_consumer_lifecycle,
            consumers::worker_consumer_fields,
            consumers::one_consumer_per_queue,
            consumers::consumer_settings_are_validated,
            consumers::put_consumer_creates_missing_consumer,
            messages::push_and_pull_round_trip,
            messages::push_and_batch_limits,
            messages::failed_batch_stores_nothing,
            messages::malformed_json_and_wrong_shape,
            messages::pull_needs_http_pull_consumer,
            delivery::visibility_timeout_expiry_redelivers,
            delivery::retry_with_delay,
            delivery::max_retries_moves_to_created_dead_letter_queue,
            delivery::max_retries_without_dead_letter_queue_deletes,
            delivery::queue_delay_and_message_delay_override,
            delivery::retention_expiry_deletes,
            delivery::pause_refuses_pull_but_accepts_push,
            delivery::purge_and_purge_status,
            messages::metrics_are_exact,
            messages::preview_and_peek_do_not_lease,
            messages::purge_by_ref_and_preview_ack_delete,
            delivery::extend_gives_new_leases,
            delivery::ack_with_expired_lease_still_acks,
            delivery::bad_leases_are_warnings,
            delivery::long_poll_pull_waits_for_a_message,
            delivery::retry_acts_only_on_the_current_delivery,
            delivery::concurrent_pulls_get_distinct_messages,
            access::chunked_oversized_body_is_refused,
            access::credentials_are_checked,
            access::scopes_and_accounts_are_enforced,
            access::routing_errors_use_the_envelope,
            monitoring::metrics_with_a_token_show_each_queue_of_its_account,
            monitoring::metrics_with_a_token_count_each_queues_messages,
            monitoring::metrics_count_requests_by_operation_and_status,
            access::garbage_requests_get_envelopes,
            subscriptions::subscription_lifecycle,
            subscriptions::subscription_list_pages_orders_and_filters,
            admin::read_token_reads_and_revoked_token_is_refused,
            admin::token_lists_never_show_secrets,
            admin::last_write_token_is_kept,
            admin::only_the_operator_creates_accounts,
            limits::retry_delay_out_of_range_is_invalid_metadata,
            expiry::extend_refuses_a_lease_that_has_ended,
            expiry::dead_letter_queue_retention_and_oldest_use_timestamps,
            redrive::redrive_returns_dead_letters_to_their_queue,
            redrive::redrive_moves_ready_messages_in_order_up_to_the_maximum,
            redrive::redrive_refuses_bad_requests_and_changes_nothing,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($factory:path; $($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let server = $crate::TestServer::start_with($factory).await;
                $crate::conformance::$module::$name(&server).await;
                server.stop().await;
            }
        )*
    };
}
