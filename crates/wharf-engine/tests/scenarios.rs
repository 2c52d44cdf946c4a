//! Engine behaviour through the `Broker` trait, with a clock the tests move.

mod common;

use common::*;
use wharf_core::model::{PullRequest, QueueUpdate, RetryRequest};
use wharf_core::{Broker, ManualClock, WharfError};

fn pull_all() -> PullRequest {
    PullRequest { batch_size: Some(100), visibility_timeout_ms: None }
}

#[tokio::test]
async fn push_pull_ack_round_trip_with_exact_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let engine = open(dir.path(), &clock);
    let account = account(&engine).await;
    let queue = queue_with_consumer(&engine, account, "orders", &pull_consumer(3, None)).await;

    let metrics = engine.push(account, queue, vec![text("a"), text("bb")]).await.expect("push");
    assert_eq!((metrics.backlog_count, metrics.backlog_bytes, metrics.oldest_message_timestamp_ms), (2, 3, START_MS));

    let pulled = engine.pull(account, queue, pull_all()).await.expect("pull");
    assert_eq!(pulled.messages.len(), 2);
    assert_eq!(pulled.messages[0].body, b"a");
    assert_eq!(pulled.messages[0].attempts, 1);
    assert_eq!(pulled.metrics.backlog_count, 2, "leased messages stay in the backlog");

    let leases: Vec<String> = pulled.messages.iter().map(|m| m.handle.clone()).collect();
    let outcome = engine.ack(account, queue, &leases, &[]).await.expect("ack");
    assert_eq!((outcome.ack_count, outcome.warnings.len()), (2, 0));
    let metrics = engine.metrics(account, queue).await.expect("metrics");
    assert_eq!((metrics.backlog_count, metrics.backlog_bytes, metrics.oldest_message_timestamp_ms), (0, 0, 0));
}

#[tokio::test]
async fn lease_expiry_redelivers_then_dead_letters_after_max_retries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let engine = open(dir.path(), &clock);
    let account = account(&engine).await;
    let queue = queue_with_consumer(&engine, account, "work", &pull_consumer(1, Some("work-dlq"))).await;
    engine.push(account, queue, vec![text("job")]).await.expect("push");

    for expected_attempts in 1..=2 {
        let pulled = engine.pull(account, queue, pull_all()).await.expect("pull");
        assert_eq!(pulled.messages.len(), 1);
        assert_eq!(pulled.messages[0].attempts, expected_attempts);
        assert!(engine.pull(account, queue, pull_all()).await.expect("pull").messages.is_empty(), "leased");
        clock.advance_ms(1_000);
        engine.tick().await.expect("tick");
    }
    let metrics = engine.metrics(account, queue).await.expect("metrics");
    assert_eq!(metrics.backlog_count, 0, "two failed deliveries with max_retries 1 leave the queue");
    let dead_letters = engine.list_queues(account, &names(&["work-dlq"])).await.expect("list");
    assert_eq!(dead_letters.items.len(), 1, "dead letter queue created on first use");
    let dlq = dead_letters.items[0].id;
    assert_eq!(engine.metrics(account, dlq).await.expect("metrics").backlog_count, 1);
    let peeked = engine.peek(account, dlq, 10).await.expect("peek");
    assert_eq!(peeked[0].body, b"job");
}

#[tokio::test]
async fn retry_with_delay_and_without_dead_letter_queue_deletes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let engine = open(dir.path(), &clock);
    let account = account(&engine).await;
    let queue = queue_with_consumer(&engine, account, "retry", &pull_consumer(1, None)).await;
    engine.push(account, queue, vec![text("x")]).await.expect("push");

    let lease = engine.pull(account, queue, pull_all()).await.expect("pull").messages[0].handle.clone();
    let retry = RetryRequest { lease_id: lease.clone(), delay_seconds: Some(5) };
    let outcome = engine.ack(account, queue, &[], std::slice::from_ref(&retry)).await.expect("retry");
    assert_eq!(outcome.retry_count, 1);
    let again = engine.ack(account, queue, &[], &[retry]).await.expect("stale retry");
    assert_eq!((again.retry_count, again.warnings.len()), (0, 1), "retry acts only on the current delivery");
    clock.advance_ms(4_999);
    assert!(engine.pull(account, queue, pull_all()).await.expect("pull").messages.is_empty(), "still delayed");
    clock.advance_ms(1);
    let second = engine.pull(account, queue, pull_all()).await.expect("pull").messages;
    assert_eq!(second[0].attempts, 2);
    let retry = RetryRequest { lease_id: second[0].handle.clone(), delay_seconds: None };
    engine.ack(account, queue, &[], &[retry]).await.expect("retry");
    assert_eq!(engine.metrics(account, queue).await.expect("metrics").backlog_count, 0, "deleted, no DLQ");

    // A stale lease still acks nothing now, with a warning, not an error.
    let late = engine.ack(account, queue, &[lease], &[]).await.expect("ack");
    assert_eq!((late.ack_count, late.warnings.len()), (0, 1));
}

#[tokio::test]
async fn expired_lease_can_still_ack_and_garbage_leases_warn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let engine = open(dir.path(), &clock);
    let account = account(&engine).await;
    let queue = queue_with_consumer(&engine, account, "permissive", &pull_consumer(5, None)).await;
    let other = queue_with_consumer(&engine, account, "other", &pull_consumer(5, None)).await;
    engine.push(account, queue, vec![text("m")]).await.expect("push");
    engine.push(account, other, vec![text("n")]).await.expect("push");
    let lease = engine.pull(account, queue, pull_all()).await.expect("pull").messages[0].handle.clone();
    let foreign = engine.pull(account, other, pull_all()).await.expect("pull").messages[0].handle.clone();
    clock.advance_ms(5_000);
    engine.tick().await.expect("tick");
    let outcome = engine.ack(account, queue, &[lease, "garbage".into(), foreign.clone()], &[]).await.expect("ack");
    assert_eq!(outcome.ack_count, 1);
    assert_eq!(outcome.warnings.len(), 2);
    assert!(outcome.warnings[&foreign].contains("another queue"));
    assert_eq!(engine.metrics(account, other).await.expect("metrics").backlog_count, 1, "foreign lease did nothing");
}

#[tokio::test]
async fn delays_pause_and_retention() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let engine = open(dir.path(), &clock);
    let account = account(&engine).await;
    let queue = queue_with_consumer(&engine, account, "timed", &pull_consumer(3, None)).await;
    let update = QueueUpdate { delivery_delay: Some(10), message_retention_period: Some(60), ..QueueUpdate::default() };
    engine.update_queue(account, queue, &update).await.expect("update");

    let mut immediate = text("now");
    immediate.delay_seconds = Some(0);
    engine.push(account, queue, vec![text("later"), immediate]).await.expect("push");
    let first = engine.pull(account, queue, pull_all()).await.expect("pull").messages;
    assert_eq!(first.len(), 1, "delay_seconds 0 overrides the queue delay");
    assert_eq!(first[0].body, b"now");

    let paused = QueueUpdate { delivery_paused: Some(true), ..QueueUpdate::default() };
    engine.update_queue(account, queue, &paused).await.expect("pause");
    assert_eq!(engine.pull(account, queue, pull_all()).await.map(|_| ()), Err(WharfError::DeliveryPaused));
    engine.push(account, queue, vec![text("while paused")]).await.expect("push while paused");

    clock.advance_ms(60_000);
    engine.tick().await.expect("tick");
    assert_eq!(engine.metrics(account, queue).await.expect("metrics").backlog_count, 0, "retention runs while paused");
}

#[tokio::test]
async fn unacked_messages_survive_reopen_with_attempts_and_acked_ones_do_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let (account, queue);
    {
        let engine = open(dir.path(), &clock);
        account = common::account(&engine).await;
        queue = queue_with_consumer(&engine, account, "durable", &pull_consumer(5, None)).await;
        let batch: Vec<_> = (0..10).map(|n| text(&format!("m{n}"))).collect();
        engine.push(account, queue, batch).await.expect("push");
        let pulled = engine.pull(account, queue, PullRequest { batch_size: Some(4), visibility_timeout_ms: None });
        let pulled = pulled.await.expect("pull").messages;
        let acks: Vec<String> = pulled[..2].iter().map(|m| m.handle.clone()).collect();
        engine.ack(account, queue, &acks, &[]).await.expect("ack");
        // Dropped without shutdown: only what was acknowledged is promised.
    }
    let engine = open(dir.path(), &clock);
    let metrics = engine.metrics(account, queue).await.expect("metrics");
    assert_eq!(metrics.backlog_count, 8);
    let messages = engine.pull(account, queue, pull_all()).await.expect("pull").messages;
    let bodies: Vec<String> = messages.iter().map(|m| String::from_utf8_lossy(&m.body).into_owned()).collect();
    assert_eq!(bodies, ["m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"]);
    let attempts: Vec<u32> = messages.iter().map(|m| m.attempts).collect();
    assert_eq!(attempts, [2, 2, 1, 1, 1, 1, 1, 1], "leased-but-unacked deliveries were counted");
}

#[tokio::test]
async fn purge_empties_and_status_reports_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let engine = open(dir.path(), &clock);
    let account = account(&engine).await;
    let queue = queue_with_consumer(&engine, account, "purged", &pull_consumer(3, None)).await;
    assert!(!engine.purge_status(account, queue).await.expect("status").completed);
    engine.push(account, queue, vec![text("a"), text("b")]).await.expect("push");
    engine.purge(account, queue).await.expect("purge");
    engine.push(account, queue, vec![text("after")]).await.expect("push");
    let status = engine.purge_status(account, queue).await.expect("status");
    assert_eq!(status.started_at_ms, Some(START_MS));
    drop(engine);
    let engine = open(dir.path(), &clock);
    let left = engine.peek(account, queue, 10).await.expect("peek");
    assert_eq!(left.len(), 1, "purge survives reopen, later pushes are kept");
    assert_eq!(left[0].body, b"after");
}

#[tokio::test]
async fn one_consumer_per_queue_and_queue_names_are_unique() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let engine = open(dir.path(), &clock);
    let account = account(&engine).await;
    let queue = queue_with_consumer(&engine, account, "single", &pull_consumer(3, None)).await;
    let second = engine.create_consumer(account, queue, &pull_consumer(3, None)).await;
    assert_eq!(second.map(|_| ()), Err(WharfError::ConsumerExists));
    let duplicate = engine.create_queue(account, "single", Default::default()).await;
    assert!(matches!(duplicate, Err(WharfError::QueueNameTaken { .. })));
    let pull_without_consumer = {
        let bare = engine.create_queue(account, "bare", Default::default()).await.expect("queue");
        engine.pull(account, bare.id, pull_all()).await.map(|_| ())
    };
    assert_eq!(pull_without_consumer, Err(WharfError::PullConsumerMissing));
}

fn names(names: &[&str]) -> wharf_core::model::QueueListRequest {
    wharf_core::model::QueueListRequest { names: names.iter().map(|n| n.to_string()).collect(), page: 1, per_page: 100 }
}

#[tokio::test]
async fn retention_and_delays_hold_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let (account, queue);
    {
        let engine = open(dir.path(), &clock);
        account = common::account(&engine).await;
        queue = queue_with_consumer(&engine, account, "restarts", &pull_consumer(3, None)).await;
        let short = QueueUpdate { message_retention_period: Some(120), ..QueueUpdate::default() };
        engine.update_queue(account, queue, &short).await.expect("retention");
        let mut delayed = text("delayed");
        delayed.delay_seconds = Some(60);
        engine.push(account, queue, vec![text("old"), delayed]).await.expect("push");
    }
    clock.advance_ms(30_000);
    let engine = open(dir.path(), &clock);
    assert_eq!(bodies(&engine, account, queue).await, ["old"], "the delay is still counted from the push");
    clock.advance_ms(30_000);
    assert_eq!(bodies(&engine, account, queue).await, ["old", "delayed"]);
    drop(engine);
    clock.advance_ms(60_000);
    let engine = open(dir.path(), &clock);
    engine.tick().await.expect("tick");
    assert_eq!(engine.metrics(account, queue).await.expect("metrics").backlog_count, 0, "retention deadline kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_wakes_a_long_polling_pull() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let engine = std::sync::Arc::new(open(dir.path(), &clock));
    let account = account(&engine).await;
    let queue = queue_with_consumer(&engine, account, "woken", &pull_consumer(3, None)).await;
    // The waiter's own time-out is a minute: only a wake-up ends it sooner.
    let waiter = {
        let engine = std::sync::Arc::clone(&engine);
        tokio::spawn(async move { engine.wait_for_messages(queue, 60_000).await })
    };
    // Push until the waiter is woken, in case the first push came before it waited.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !waiter.is_finished() {
        assert!(std::time::Instant::now() < deadline, "a push did not wake the long-polling pull");
        engine.push(account, queue, vec![text("wake up")]).await.expect("push");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(waiter.await.expect("waiter"), "the engine has an arrival signal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_does_not_wait_when_a_message_arrived_before_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let engine = open(dir.path(), &clock);
    let account = account(&engine).await;
    let queue = queue_with_consumer(&engine, account, "early", &pull_consumer(3, None)).await;
    // The push lands after the caller's (here: imagined) empty pull and
    // before its wait: the wait must see it rather than sleep a minute.
    engine.push(account, queue, vec![text("already here")]).await.expect("push");
    let waited = tokio::time::timeout(std::time::Duration::from_secs(10), engine.wait_for_messages(queue, 60_000));
    assert!(waited.await.is_ok(), "the wait missed a message that was already deliverable");
}
