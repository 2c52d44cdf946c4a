//! The PostgreSQL backend through the `Broker` trait, with a clock the tests
//! move: the same semantics as the embedded engine.

mod common;

use common::broker;
use wharf_core::model::{
    Account, ConsumerKind, ConsumerSettings, ConsumerSpec, ContentType, NewMessage, PullRequest, QueueListRequest,
    QueueSettings, QueueUpdate, RetryRequest,
};
use wharf_core::{AccountId, Broker, ManualClock, QueueId, WharfError};

pub const START_MS: u64 = 1_700_000_000_000;

async fn account(broker: &dyn Broker) -> AccountId {
    let account = Account { id: AccountId(0xabc), email: "ops@example.com".into(), created_on_ms: 0 };
    broker.ensure_account(&account, "admin-secret").await.expect("account");
    account.id
}

fn pull_consumer(max_retries: u32, dead_letter_queue: Option<&str>) -> ConsumerSpec {
    let mut settings = ConsumerSettings::defaults_for(&ConsumerKind::HttpPull);
    settings.max_retries = max_retries;
    settings.visibility_timeout_ms = 1_000;
    ConsumerSpec { kind: ConsumerKind::HttpPull, dead_letter_queue: dead_letter_queue.map(str::to_string), settings }
}

async fn queue_with_consumer(broker: &dyn Broker, account: AccountId, name: &str, spec: &ConsumerSpec) -> QueueId {
    let queue = broker.create_queue(account, name, QueueSettings::default()).await.expect("queue");
    broker.create_consumer(account, queue.id, spec).await.expect("consumer");
    queue.id
}

fn text(body: &str) -> NewMessage {
    NewMessage { body: body.as_bytes().to_vec(), content_type: ContentType::Text, delay_seconds: None }
}

fn pull_all() -> PullRequest {
    PullRequest { batch_size: Some(100), visibility_timeout_ms: None }
}

fn names(names: &[&str]) -> QueueListRequest {
    QueueListRequest { names: names.iter().map(|n| n.to_string()).collect(), page: 1, per_page: 100 }
}

#[tokio::test]
async fn push_pull_ack_round_trip_with_exact_metrics() {
    let clock = ManualClock::new(START_MS);
    let broker = broker(&clock).await;
    let account = account(&*broker).await;
    let queue = queue_with_consumer(&*broker, account, "orders", &pull_consumer(3, None)).await;

    let metrics = broker.push(account, queue, vec![text("a"), text("bb")]).await.expect("push");
    assert_eq!((metrics.backlog_count, metrics.backlog_bytes, metrics.oldest_message_timestamp_ms), (2, 3, START_MS));

    let pulled = broker.pull(account, queue, pull_all()).await.expect("pull");
    let bodies: Vec<&[u8]> = pulled.messages.iter().map(|m| m.body.as_slice()).collect();
    assert_eq!(bodies, [b"a".as_slice(), b"bb"], "arrival order");
    assert_eq!(pulled.messages[0].attempts, 1);
    assert_eq!(pulled.messages[0].content_type, ContentType::Text);
    assert_eq!(pulled.messages[0].timestamp_ms, START_MS);
    assert_eq!(pulled.metrics.backlog_count, 2, "leased messages stay in the backlog");
    assert!(broker.pull(account, queue, pull_all()).await.expect("pull").messages.is_empty(), "all leased");

    let leases: Vec<String> = pulled.messages.iter().map(|m| m.handle.clone()).collect();
    let outcome = broker.ack(account, queue, &leases, &[]).await.expect("ack");
    assert_eq!((outcome.ack_count, outcome.warnings.len()), (2, 0));
    let metrics = broker.metrics(account, queue).await.expect("metrics");
    assert_eq!((metrics.backlog_count, metrics.backlog_bytes, metrics.oldest_message_timestamp_ms), (0, 0, 0));
    broker.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn lease_expiry_redelivers_then_dead_letters_after_max_retries() {
    let clock = ManualClock::new(START_MS);
    let broker = broker(&clock).await;
    let account = account(&*broker).await;
    let queue = queue_with_consumer(&*broker, account, "work", &pull_consumer(1, Some("work-dlq"))).await;
    broker.push(account, queue, vec![text("job")]).await.expect("push");

    for expected_attempts in 1..=2 {
        let pulled = broker.pull(account, queue, pull_all()).await.expect("pull");
        assert_eq!(pulled.messages.len(), 1);
        assert_eq!(pulled.messages[0].attempts, expected_attempts);
        assert!(broker.pull(account, queue, pull_all()).await.expect("pull").messages.is_empty(), "leased");
        clock.advance_ms(999);
        assert!(broker.pull(account, queue, pull_all()).await.expect("pull").messages.is_empty(), "lease not over");
        clock.advance_ms(1);
        broker.tick().await.expect("tick");
    }
    let metrics = broker.metrics(account, queue).await.expect("metrics");
    assert_eq!(metrics.backlog_count, 0, "two failed deliveries with max_retries 1 leave the queue");
    let dead_letters = broker.list_queues(account, &names(&["work-dlq"])).await.expect("list");
    assert_eq!(dead_letters.items.len(), 1, "dead letter queue created on first use");
    let dlq = dead_letters.items[0].id;
    assert_eq!(dead_letters.items[0].settings, QueueSettings::default());
    assert_eq!(broker.metrics(account, dlq).await.expect("metrics").backlog_count, 1);
    let peeked = broker.peek(account, dlq, 10).await.expect("peek");
    assert_eq!(peeked[0].body, b"job");
    assert_eq!(peeked[0].attempts, 0, "a dead letter starts with no deliveries");
    assert_eq!(peeked[0].timestamp_ms, START_MS, "and keeps its timestamp");
    broker.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn retry_with_delay_and_without_dead_letter_queue_deletes() {
    let clock = ManualClock::new(START_MS);
    let broker = broker(&clock).await;
    let account = account(&*broker).await;
    let queue = queue_with_consumer(&*broker, account, "retry", &pull_consumer(1, None)).await;
    broker.push(account, queue, vec![text("x")]).await.expect("push");

    let lease = broker.pull(account, queue, pull_all()).await.expect("pull").messages[0].handle.clone();
    let retry = RetryRequest { lease_id: lease.clone(), delay_seconds: Some(5) };
    let outcome = broker.ack(account, queue, &[], std::slice::from_ref(&retry)).await.expect("retry");
    assert_eq!(outcome.retry_count, 1);
    let again = broker.ack(account, queue, &[], &[retry]).await.expect("stale retry");
    assert_eq!((again.retry_count, again.warnings.len()), (0, 1), "retry acts only on the current delivery");
    assert!(again.warnings[&lease].contains("not the current delivery"), "{:?}", again.warnings);
    clock.advance_ms(4_999);
    assert!(broker.pull(account, queue, pull_all()).await.expect("pull").messages.is_empty(), "still delayed");
    assert_eq!(broker.metrics(account, queue).await.expect("metrics").backlog_count, 1, "delayed counts");
    clock.advance_ms(1);
    let second = broker.pull(account, queue, pull_all()).await.expect("pull").messages;
    assert_eq!(second[0].attempts, 2);
    let retry = RetryRequest { lease_id: second[0].handle.clone(), delay_seconds: None };
    broker.ack(account, queue, &[], &[retry]).await.expect("retry");
    assert_eq!(broker.metrics(account, queue).await.expect("metrics").backlog_count, 0, "deleted, no DLQ");

    let late = broker.ack(account, queue, std::slice::from_ref(&lease), &[]).await.expect("ack");
    assert_eq!((late.ack_count, late.warnings.len()), (0, 1));
    assert!(late.warnings[&lease].contains("no longer in the queue"));
    broker.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn consumer_retry_delay_applies_to_retries_and_expired_leases() {
    let clock = ManualClock::new(START_MS);
    let broker = broker(&clock).await;
    let account = account(&*broker).await;
    let mut spec = pull_consumer(5, None);
    spec.settings.retry_delay = 10;
    let queue = queue_with_consumer(&*broker, account, "slow", &spec).await;
    broker.push(account, queue, vec![text("x")]).await.expect("push");
    broker.pull(account, queue, pull_all()).await.expect("pull");
    clock.advance_ms(1_000);
    broker.tick().await.expect("tick");
    clock.advance_ms(9_999);
    assert!(broker.pull(account, queue, pull_all()).await.expect("pull").messages.is_empty(), "retry_delay");
    clock.advance_ms(1);
    let again = broker.pull(account, queue, pull_all()).await.expect("pull").messages;
    assert_eq!(again.len(), 1);
    let retry = RetryRequest { lease_id: again[0].handle.clone(), delay_seconds: None };
    broker.ack(account, queue, &[], &[retry]).await.expect("retry");
    clock.advance_ms(9_999);
    assert!(broker.pull(account, queue, pull_all()).await.expect("pull").messages.is_empty(), "retry_delay");
    clock.advance_ms(1);
    assert_eq!(broker.pull(account, queue, pull_all()).await.expect("pull").messages[0].attempts, 3);
    broker.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn retry_past_max_retries_dead_letters_immediately() {
    let clock = ManualClock::new(START_MS);
    let broker = broker(&clock).await;
    let account = account(&*broker).await;
    let queue = queue_with_consumer(&*broker, account, "once", &pull_consumer(0, Some("once-dlq"))).await;
    broker.push(account, queue, vec![text("a"), text("b")]).await.expect("push");
    let pulled = broker.pull(account, queue, pull_all()).await.expect("pull").messages;
    let retries: Vec<RetryRequest> =
        pulled.iter().map(|m| RetryRequest { lease_id: m.handle.clone(), delay_seconds: None }).collect();
    let outcome = broker.ack(account, queue, &[], &retries).await.expect("retry");
    assert_eq!(outcome.retry_count, 2);
    let dlq = broker.list_queues(account, &names(&["once-dlq"])).await.expect("list").items[0].id;
    let bodies: Vec<Vec<u8>> = broker.peek(account, dlq, 10).await.expect("peek").into_iter().map(|m| m.body).collect();
    assert_eq!(bodies, [b"a".to_vec(), b"b".to_vec()]);
    assert_eq!(broker.metrics(account, queue).await.expect("metrics").backlog_count, 0);
    broker.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn expired_lease_can_still_ack_and_garbage_leases_warn() {
    let clock = ManualClock::new(START_MS);
    let broker = broker(&clock).await;
    let account = account(&*broker).await;
    let queue = queue_with_consumer(&*broker, account, "permissive", &pull_consumer(5, None)).await;
    let other = queue_with_consumer(&*broker, account, "other", &pull_consumer(5, None)).await;
    broker.push(account, queue, vec![text("m")]).await.expect("push");
    broker.push(account, other, vec![text("n")]).await.expect("push");
    let lease = broker.pull(account, queue, pull_all()).await.expect("pull").messages[0].handle.clone();
    let foreign = broker.pull(account, other, pull_all()).await.expect("pull").messages[0].handle.clone();
    clock.advance_ms(5_000);
    broker.tick().await.expect("tick");
    // Redelivered: the first lease is stale, yet still acks the message.
    let redelivered = broker.pull(account, queue, pull_all()).await.expect("pull").messages;
    assert_eq!(redelivered[0].attempts, 2);
    let outcome = broker.ack(account, queue, &[lease, "garbage".into(), foreign.clone()], &[]).await.expect("ack");
    assert_eq!(outcome.ack_count, 1);
    assert_eq!(outcome.warnings.len(), 2);
    assert_eq!(outcome.warnings["garbage"], "malformed lease id");
    assert!(outcome.warnings[&foreign].contains("another queue"));
    assert_eq!(broker.metrics(account, other).await.expect("metrics").backlog_count, 1, "foreign lease did nothing");
    assert_eq!(broker.metrics(account, queue).await.expect("metrics").backlog_count, 0);
    broker.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn delays_pause_and_retention() {
    let clock = ManualClock::new(START_MS);
    let broker = broker(&clock).await;
    let account = account(&*broker).await;
    let queue = queue_with_consumer(&*broker, account, "timed", &pull_consumer(3, None)).await;
    let update = QueueUpdate { delivery_delay: Some(10), message_retention_period: Some(60), ..QueueUpdate::default() };
    broker.update_queue(account, queue, &update).await.expect("update");

    let mut immediate = text("now");
    immediate.delay_seconds = Some(0);
    broker.push(account, queue, vec![text("later"), immediate]).await.expect("push");
    let first = broker.pull(account, queue, pull_all()).await.expect("pull").messages;
    assert_eq!(first.len(), 1, "delay_seconds 0 overrides the queue delay");
    assert_eq!(first[0].body, b"now");
    broker.ack(account, queue, &[first[0].handle.clone()], &[]).await.expect("ack");
    clock.advance_ms(9_999);
    assert!(broker.pull(account, queue, pull_all()).await.expect("pull").messages.is_empty(), "queue delay");
    clock.advance_ms(1);
    let later = broker.pull(account, queue, pull_all()).await.expect("pull").messages;
    assert_eq!(later.len(), 1, "the queue delay has passed");

    let paused = QueueUpdate { delivery_paused: Some(true), ..QueueUpdate::default() };
    broker.update_queue(account, queue, &paused).await.expect("pause");
    assert_eq!(broker.pull(account, queue, pull_all()).await.map(|_| ()), Err(WharfError::DeliveryPaused));
    broker.push(account, queue, vec![text("while paused")]).await.expect("push while paused");
    assert_eq!(broker.metrics(account, queue).await.expect("metrics").backlog_count, 2);

    clock.advance_ms(50_000);
    broker.tick().await.expect("tick");
    assert_eq!(broker.metrics(account, queue).await.expect("metrics").backlog_count, 1, "the first is 60 s old");
    clock.advance_ms(10_000);
    broker.tick().await.expect("tick");
    assert_eq!(broker.metrics(account, queue).await.expect("metrics").backlog_count, 0, "retention runs while paused");
    broker.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn purge_empties_and_status_reports_it() {
    let clock = ManualClock::new(START_MS);
    let broker = broker(&clock).await;
    let account = account(&*broker).await;
    let queue = queue_with_consumer(&*broker, account, "purged", &pull_consumer(3, None)).await;
    assert!(!broker.purge_status(account, queue).await.expect("status").completed);
    broker.push(account, queue, vec![text("a"), text("b")]).await.expect("push");
    broker.pull(account, queue, PullRequest { batch_size: Some(1), visibility_timeout_ms: None }).await.expect("pull");
    broker.purge(account, queue).await.expect("purge");
    broker.push(account, queue, vec![text("after")]).await.expect("push");
    let status = broker.purge_status(account, queue).await.expect("status");
    assert_eq!((status.started_at_ms, status.completed), (Some(START_MS), true));
    let left = broker.peek(account, queue, 10).await.expect("peek");
    assert_eq!(left.len(), 1, "purge removed leased and ready messages, later pushes are kept");
    assert_eq!(left[0].body, b"after");
    broker.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn extend_renews_only_current_leases() {
    let clock = ManualClock::new(START_MS);
    let broker = broker(&clock).await;
    let account = account(&*broker).await;
    let queue = queue_with_consumer(&*broker, account, "extended", &pull_consumer(5, None)).await;
    broker.push(account, queue, vec![text("a")]).await.expect("push");
    let lease = broker.pull(account, queue, pull_all()).await.expect("pull").messages[0].handle.clone();
    clock.advance_ms(900);
    let outcome = broker.extend(account, queue, std::slice::from_ref(&lease), Some(5_000)).await.expect("extend");
    let renewed = outcome.extended[&lease].clone();
    assert_ne!(renewed, lease, "an extended lease gets a new id");
    clock.advance_ms(4_000);
    broker.tick().await.expect("tick");
    assert!(broker.pull(account, queue, pull_all()).await.expect("pull").messages.is_empty(), "still leased");
    clock.advance_ms(1_000);
    broker.tick().await.expect("tick");
    let stale = broker.extend(account, queue, std::slice::from_ref(&renewed), None).await.expect("extend");
    assert!(stale.extended.is_empty());
    assert!(stale.warnings[&renewed].contains("not the current delivery"));
    assert_eq!(broker.pull(account, queue, pull_all()).await.expect("pull").messages[0].attempts, 2);
    broker.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn preview_and_peek_do_not_lease_and_delete_by_handle() {
    let clock = ManualClock::new(START_MS);
    let broker = broker(&clock).await;
    let account = account(&*broker).await;
    let queue = queue_with_consumer(&*broker, account, "browsed", &pull_consumer(5, None)).await;
    broker.push(account, queue, vec![text("a"), text("b"), text("c")]).await.expect("push");
    let previewed = broker.preview(account, queue, 2).await.expect("preview");
    assert_eq!(previewed.len(), 2);
    assert_eq!(previewed[0].attempts, 0, "preview is not a delivery");
    let peeked = broker.peek(account, queue, 10).await.expect("peek");
    assert_eq!(peeked.len(), 3);

    let retry = RetryRequest { lease_id: previewed[1].handle.clone(), delay_seconds: None };
    let outcome = broker
        .preview_ack(account, queue, &[previewed[0].handle.clone(), peeked[0].handle.clone()], &[retry])
        .await
        .expect("preview ack");
    assert_eq!(outcome.ack_count, 1);
    assert!(outcome.warnings[&peeked[0].handle].contains("expected kind"), "a peek ref is not a preview lease");
    assert!(outcome.warnings[&previewed[1].handle].contains("not leased"));

    let warnings =
        broker.purge_refs(account, queue, &[peeked[1].handle.clone(), peeked[0].handle.clone()]).await.expect("refs");
    assert_eq!(warnings.len(), 1, "the first was already deleted: {warnings:?}");
    assert!(warnings[&peeked[0].handle].contains("no longer in the queue"));
    let left = broker.pull(account, queue, pull_all()).await.expect("pull").messages;
    assert_eq!(left.len(), 1);
    assert_eq!((left[0].body.as_slice(), left[0].attempts), (b"c".as_slice(), 1));
    broker.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn queues_and_consumers_follow_the_engine_rules() {
    let clock = ManualClock::new(START_MS);
    let broker = broker(&clock).await;
    let account = account(&*broker).await;
    let queue = queue_with_consumer(&*broker, account, "single", &pull_consumer(3, None)).await;
    let second = broker.create_consumer(account, queue, &pull_consumer(3, None)).await;
    assert_eq!(second.map(|_| ()), Err(WharfError::ConsumerExists));
    let duplicate = broker.create_queue(account, "single", Default::default()).await;
    assert!(matches!(duplicate, Err(WharfError::QueueNameTaken { .. })));
    let bad = broker.create_queue(account, "Bad_Name", Default::default()).await;
    assert!(matches!(bad, Err(WharfError::QueueNameInvalid { .. })));
    let bare = broker.create_queue(account, "bare", Default::default()).await.expect("queue");
    assert_eq!(broker.pull(account, bare.id, pull_all()).await.map(|_| ()), Err(WharfError::PullConsumerMissing));
    let worker = ConsumerSpec {
        kind: ConsumerKind::Worker { script_name: "w".into(), environment_name: None },
        dead_letter_queue: None,
        settings: ConsumerSettings::defaults_for(&ConsumerKind::HttpPull),
    };
    broker.create_consumer(account, bare.id, &worker).await.expect("worker consumer");
    assert_eq!(broker.pull(account, bare.id, pull_all()).await.map(|_| ()), Err(WharfError::PullConsumerMissing));
    let self_dlq = pull_consumer(3, Some("single"));
    let refused = broker.put_consumer(account, queue, wharf_core::ConsumerId(7), &self_dlq).await;
    assert!(matches!(refused, Err(WharfError::ConsumerSettingsInvalid { .. })));

    let consumer = broker.list_consumers(account, queue).await.expect("consumers")[0].clone();
    let replaced = broker.put_consumer(account, queue, consumer.id, &pull_consumer(9, None)).await.expect("put");
    assert_eq!((replaced.settings.max_retries, replaced.created_on_ms), (9, consumer.created_on_ms));
    let other_id = broker.put_consumer(account, queue, wharf_core::ConsumerId(1), &pull_consumer(9, None)).await;
    assert_eq!(other_id.map(|_| ()), Err(WharfError::ConsumerExists));
    broker.delete_consumer(account, queue, consumer.id).await.expect("delete consumer");
    assert_eq!(broker.delete_consumer(account, queue, consumer.id).await, Err(WharfError::ConsumerNotFound));

    let rename = QueueUpdate { name: Some("bare".into()), ..Default::default() };
    let renamed = broker.update_queue(account, queue, &rename).await;
    assert!(matches!(renamed, Err(WharfError::QueueNameTaken { .. })));
    let retention = QueueUpdate { message_retention_period: Some(59), ..Default::default() };
    let invalid = broker.update_queue(account, queue, &retention).await;
    assert!(matches!(invalid, Err(WharfError::QueueSettingsInvalid { .. })));
    broker.push(account, bare.id, vec![text("gone with the queue")]).await.expect("push");
    broker.delete_queue(account, bare.id).await.expect("delete");
    assert_eq!(broker.get_queue(account, bare.id).await.map(|_| ()), Err(WharfError::QueueNotFound));
    assert_eq!(broker.metrics(account, bare.id).await.map(|_| ()), Err(WharfError::QueueNotFound));
    let other_account = AccountId(0xdef);
    assert_eq!(broker.get_queue(other_account, queue).await.map(|_| ()), Err(WharfError::QueueNotFound));

    let page = broker.list_queues(account, &QueueListRequest { names: vec![], page: 1, per_page: 1 }).await;
    let page = page.expect("list");
    assert_eq!((page.items.len(), page.total_count), (1, 1));
    broker.shutdown().await.expect("shutdown");
}

/// Metrics come from counters kept by every change; check them against the
/// rows themselves after each kind of change.
#[tokio::test]
async fn metrics_match_the_rows_after_every_kind_of_change() {
    let clock = ManualClock::new(START_MS);
    let broker = broker(&clock).await;
    let account = account(&*broker).await;
    let queue = queue_with_consumer(&*broker, account, "counted", &pull_consumer(0, Some("counted-dlq"))).await;
    let update = QueueUpdate { message_retention_period: Some(60), ..QueueUpdate::default() };
    broker.update_queue(account, queue, &update).await.expect("update");
    let check = |step: &'static str| {
        let broker = broker.clone();
        async move {
            let metrics = broker.metrics(account, queue).await.expect("metrics");
            let reported = (metrics.backlog_count, metrics.backlog_bytes, metrics.oldest_message_timestamp_ms);
            assert_eq!(reported, common::counted_backlog(&broker.schema, queue).await, "after {step}");
            reported
        }
    };
    let batch: Vec<NewMessage> = (0..10).map(|n| text(&"x".repeat(n + 1))).collect();
    broker.push(account, queue, batch).await.expect("push");
    assert_eq!(check("push").await, (10, 55, START_MS));
    let pulled = broker.pull(account, queue, PullRequest { batch_size: Some(4), visibility_timeout_ms: None });
    let pulled = pulled.await.expect("pull").messages;
    broker.ack(account, queue, &[pulled[0].handle.clone()], &[]).await.expect("ack");
    check("ack").await;
    let retry = RetryRequest { lease_id: pulled[1].handle.clone(), delay_seconds: None };
    broker.ack(account, queue, &[], &[retry]).await.expect("retry to the DLQ");
    check("retry").await;
    clock.advance_ms(1_000);
    broker.tick().await.expect("expired leases to the DLQ");
    check("lease expiry").await;
    let peeked = broker.peek(account, queue, 2).await.expect("peek");
    broker.purge_refs(account, queue, &[peeked[0].handle.clone()]).await.expect("refs");
    check("purge by ref").await;
    let previewed = broker.preview(account, queue, 1).await.expect("preview");
    broker.preview_ack(account, queue, &[previewed[0].handle.clone()], &[]).await.expect("preview ack");
    check("preview ack").await;
    clock.advance_ms(30_000);
    broker.push(account, queue, vec![text("young")]).await.expect("push");
    clock.advance_ms(30_000);
    broker.tick().await.expect("retention");
    assert_eq!(check("retention").await, (1, 5, START_MS + 31_000));
    broker.purge(account, queue).await.expect("purge");
    assert_eq!(check("purge").await, (0, 0, 0));
    let dlq = broker.list_queues(account, &names(&["counted-dlq"])).await.expect("list").items[0].id;
    let moved = broker.metrics(account, dlq).await.expect("metrics");
    assert_eq!(
        (moved.backlog_count, moved.backlog_bytes, moved.oldest_message_timestamp_ms),
        common::counted_backlog(&broker.schema, dlq).await
    );
    assert_eq!(moved.backlog_count, 3, "one retried, two expired");
    broker.shutdown().await.expect("shutdown");
}
