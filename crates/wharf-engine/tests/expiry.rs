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
