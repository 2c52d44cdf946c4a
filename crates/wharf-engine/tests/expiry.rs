//! Time-driven edge cases on an engine without its sweeper, so nothing runs
//! between a clock step and the next call: an ended lease that was not swept
//! yet, and dead letter queue retention across a reopen.

mod common;

use common::*;
use wharf_core::model::{ConsumerKind, ConsumerSettings, ConsumerSpec, PullRequest, QueueUpdate, RetryRequest};
use wharf_core::{Broker, ManualClock};

fn pull_one() -> PullRequest {
    PullRequest { batch_size: Some(1), visibility_timeout_ms: None }
}

#[tokio::test]
async fn an_ended_lease_is_not_extended_before_housekeeping_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let engine = open(dir.path(), &clock);
    let account = account(&engine).await;
    let queue = queue_with_consumer(&engine, account, "slow", &pull_consumer(3, None)).await;
    engine.push(account, queue, vec![text("job")]).await.expect("push");
    let lease = engine.pull(account, queue, pull_one()).await.expect("pull").messages[0].handle.clone();

    clock.advance_ms(999);
    let live = engine.extend(account, queue, std::slice::from_ref(&lease), Some(1_000)).await.expect("extend");
    let renewed = live.extended.get(&lease).expect("a running lease is extended").clone();

    // The renewed lease ends at 999 + 1000 ms; at that instant it is over.
    clock.advance_ms(1_000);
    let ended = engine.extend(account, queue, std::slice::from_ref(&renewed), None).await.expect("extend");
    assert!(ended.extended.is_empty(), "{ended:?}");
    assert!(ended.warnings.contains_key(&renewed), "{ended:?}");
    let again = engine.pull(account, queue, pull_one()).await.expect("pull");
    assert_eq!(again.messages[0].attempts, 2, "the lease expired as a failed delivery");
}

#[tokio::test]
async fn dead_lettered_messages_expire_by_their_timestamp_after_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let engine = open(dir.path(), &clock);
    let account = account(&engine).await;
    let mut settings = ConsumerSettings::defaults_for(&ConsumerKind::HttpPull);
    settings.max_retries = 0;
    let spec = ConsumerSpec { kind: ConsumerKind::HttpPull, dead_letter_queue: Some("dead".into()), settings };
    let source = queue_with_consumer(&engine, account, "source", &spec).await;
    let dead = engine.create_queue(account, "dead", Default::default()).await.expect("dlq").id;
    let short = QueueUpdate { message_retention_period: Some(60), ..QueueUpdate::default() };
    engine.update_queue(account, dead, &short).await.expect("update");

    engine.push(account, source, vec![text("old")]).await.expect("push");
    clock.advance_ms(10_000);
    engine.push(account, dead, vec![text("young")]).await.expect("push");
    let lease = engine.pull(account, source, pull_one()).await.expect("pull").messages[0].handle.clone();
    let retry = RetryRequest { lease_id: lease, delay_seconds: Some(0) };
    assert_eq!(engine.ack(account, source, &[], &[retry]).await.expect("retry").retry_count, 1);
    drop(engine);

    let engine = open(dir.path(), &clock);
    let metrics = engine.metrics(account, dead).await.expect("metrics");
    assert_eq!((metrics.backlog_count, metrics.oldest_message_timestamp_ms), (2, START_MS));
    clock.advance_ms(50_000);
    let metrics = engine.metrics(account, dead).await.expect("metrics");
    assert_eq!((metrics.backlog_count, metrics.oldest_message_timestamp_ms), (1, START_MS + 10_000));
    assert_eq!(bodies(&engine, account, dead).await, ["young"]);
}

/// The sweeper takes the state lock for a few queues at a time; one tick
/// must still reach every queue.
#[tokio::test]
async fn one_sweep_reaches_every_queue_however_many_there_are() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let engine = open(dir.path(), &clock);
    let account = account(&engine).await;
    let spec = pull_consumer(0, Some("swept-dlq"));
    for index in 0..300 {
        let queue = queue_with_consumer(&engine, account, &format!("swept-{index:03}"), &spec).await;
        engine.push(account, queue, vec![text("job")]).await.expect("push");
        assert_eq!(engine.pull(account, queue, pull_one()).await.expect("pull").messages.len(), 1);
    }
    clock.advance_ms(1_001);
    engine.tick().await.expect("one sweep");
    // Only the sweep moves an expired lease's message of its last attempt
    // to the dead letter queue, so its backlog counts the queues reached.
    let queues = engine
        .list_queues(
            account,
            &wharf_core::model::QueueListRequest { names: vec!["swept-dlq".into()], page: 1, per_page: 1 },
        )
        .await
        .expect("list");
    let dlq = queues.items[0].id;
    assert_eq!(engine.metrics(account, dlq).await.expect("metrics").backlog_count, 300);
}

fn dlq_backlog_of(name: &'static str) -> wharf_core::model::QueueListRequest {
    wharf_core::model::QueueListRequest { names: vec![name.into()], page: 1, per_page: 1 }
}

/// The sweeper passes a queue by until its next due time; a lease that an
/// extension shortened must bring that time nearer. Only the sweep moves a
/// last attempt's expired lease to the dead letter queue, so this is seen
/// without touching the queue.
#[tokio::test]
async fn the_sweeper_passes_a_quiet_queue_by_but_not_past_its_next_due_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let engine = open_tuned(dir.path(), &clock, small_segments());
    let account = account(&engine).await;
    let queue = queue_with_consumer(&engine, account, "quiet", &pull_consumer(0, Some("quiet-dlq"))).await;
    engine.push(account, queue, vec![text("first"), text("second")]).await.expect("push");
    let long = PullRequest { batch_size: Some(1), visibility_timeout_ms: Some(60_000) };
    let lease = engine.pull(account, queue, long).await.expect("pull").messages[0].handle.clone();
    engine.tick().await.expect("settles the queue: next due in 60 s");
    let dlq = engine.list_queues(account, &dlq_backlog_of("quiet-dlq")).await.expect("list").items;
    assert!(dlq.is_empty(), "nothing dead-lettered yet");

    engine.extend(account, queue, std::slice::from_ref(&lease), Some(100)).await.expect("shorten the lease");
    clock.advance_ms(99);
    engine.tick().await.expect("tick");
    assert!(engine.list_queues(account, &dlq_backlog_of("quiet-dlq")).await.expect("list").items.is_empty());
    clock.advance_ms(1);
    engine.tick().await.expect("tick at the shortened lease's end");
    let dlq = engine.list_queues(account, &dlq_backlog_of("quiet-dlq")).await.expect("list").items[0].id;
    assert_eq!(engine.metrics(account, dlq).await.expect("metrics").backlog_count, 1);
}

#[tokio::test]
async fn a_shorter_retention_brings_a_quiet_queue_back_into_the_sweep() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let engine = open_tuned(dir.path(), &clock, small_segments());
    let account = account(&engine).await;
    let queue = queue_with_consumer(&engine, account, "retained", &pull_consumer(3, None)).await;
    // Enough to fill a few small segments; settled with a 4-day retention.
    let body = "x".repeat(20_000);
    for _ in 0..8 {
        engine.push(account, queue, vec![text(&body)]).await.expect("push");
    }
    engine.tick().await.expect("tick");
    let segments = segment_files(dir.path()).len();
    let short = QueueUpdate { message_retention_period: Some(60), ..QueueUpdate::default() };
    engine.update_queue(account, queue, &short).await.expect("shorter retention");
    clock.advance_ms(61_000);
    // Only the sweep deletes segments whose messages all expired.
    engine.tick().await.expect("tick past the shorter retention");
    assert!(
        segment_files(dir.path()).len() < segments,
        "expired messages freed their segments: {segments} before, {:?} after",
        segment_files(dir.path())
    );
}
