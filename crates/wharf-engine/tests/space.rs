//! Space comes back: acked, expired and purged messages free their segments,
//! and a few long-lived messages are copied forward instead of pinning them.

mod common;

use common::*;
use wharf_core::model::{PullRequest, QueueUpdate};
use wharf_core::{AccountId, Broker, ManualClock, QueueId};
use wharf_engine::Engine;

fn dir_bytes(dir: &std::path::Path) -> u64 {
    segment_files(dir).iter().map(|path| std::fs::metadata(path).map_or(0, |m| m.len())).sum()
}

async fn push_many(engine: &Engine, account: AccountId, queue: QueueId, count: usize) {
    let body = "y".repeat(1024);
    for _ in 0..count / 50 {
        engine.push(account, queue, (0..50).map(|_| text(&body)).collect()).await.expect("push");
    }
}

async fn drain(engine: &Engine, account: AccountId, queue: QueueId) {
    loop {
        let request = PullRequest { batch_size: Some(100), visibility_timeout_ms: None };
        let pulled = engine.pull(account, queue, request).await.expect("pull").messages;
        if pulled.is_empty() {
            break;
        }
        let leases: Vec<String> = pulled.into_iter().map(|m| m.handle).collect();
        engine.ack(account, queue, &leases, &[]).await.expect("ack");
    }
}

#[tokio::test]
async fn acked_messages_free_their_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let engine = open_tuned(dir.path(), &clock, small_segments());
    let account = account(&engine).await;
    let queue = queue_with_consumer(&engine, account, "space", &pull_consumer(3, None)).await;
    push_many(&engine, account, queue, 2_000).await;
    let peak = dir_bytes(dir.path());
    assert!(segment_files(dir.path()).len() > 20);
    drain(&engine, account, queue).await;
    engine.compact_now().await.expect("compact");
    let after = dir_bytes(dir.path());
    assert!(segment_files(dir.path()).len() <= 2, "left {:?}", segment_files(dir.path()));
    assert!(after * 10 < peak, "peak {peak} after {after}");
}

#[tokio::test]
async fn purged_and_expired_messages_free_their_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let engine = open_tuned(dir.path(), &clock, small_segments());
    let account = account(&engine).await;
    let purged = queue_with_consumer(&engine, account, "purged", &pull_consumer(3, None)).await;
    let expiring = queue_with_consumer(&engine, account, "expiring", &pull_consumer(3, None)).await;
    let short = QueueUpdate { message_retention_period: Some(60), ..QueueUpdate::default() };
    engine.update_queue(account, expiring, &short).await.expect("retention");
    push_many(&engine, account, purged, 1_000).await;
    push_many(&engine, account, expiring, 1_000).await;
    engine.purge(account, purged).await.expect("purge");
    clock.advance_ms(60_000);
    engine.compact_now().await.expect("compact");
    assert_eq!(engine.metrics(account, expiring).await.expect("metrics").backlog_count, 0);
    assert!(segment_files(dir.path()).len() <= 2, "left {:?}", segment_files(dir.path()));
}

#[tokio::test]
async fn a_long_delayed_message_is_copied_forward_not_pinning_old_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let engine = open_tuned(dir.path(), &clock, small_segments());
    let account = account(&engine).await;
    let queue = queue_with_consumer(&engine, account, "pinned", &pull_consumer(3, None)).await;
    let mut delayed = text("wait a day");
    delayed.delay_seconds = Some(86_400);
    engine.push(account, queue, vec![delayed]).await.expect("push delayed");
    push_many(&engine, account, queue, 2_000).await;
    drain(&engine, account, queue).await;
    let copied = engine.compact_now().await.expect("compact");
    assert_eq!(copied, 1);
    assert!(segment_files(dir.path()).len() <= 2, "left {:?}", segment_files(dir.path()));

    // The copy keeps its delay and survives a restart.
    drop(engine);
    let engine = open_tuned(dir.path(), &clock, small_segments());
    assert!(bodies(&engine, account, queue).await.is_empty(), "still delayed");
    clock.advance_ms(86_400_000);
    assert_eq!(bodies(&engine, account, queue).await, ["wait a day"]);
}
