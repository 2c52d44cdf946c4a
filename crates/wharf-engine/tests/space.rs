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
    eprintln!("ack all: peak {peak} bytes, after {after} bytes");
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
    let peak = dir_bytes(dir.path());
    engine.purge(account, purged).await.expect("purge");
    engine.compact_now().await.expect("compact");
    let after_purge = dir_bytes(dir.path());
    clock.advance_ms(60_000);
    engine.compact_now().await.expect("compact");
    let after_expiry = dir_bytes(dir.path());
    eprintln!("purge and expiry: peak {peak} bytes, after purge {after_purge}, after expiry {after_expiry}");
    assert_eq!(engine.metrics(account, expiring).await.expect("metrics").backlog_count, 0);
    assert!(after_purge * 3 < peak * 2, "the purged half is freed: peak {peak}, after purge {after_purge}");
    assert!(segment_files(dir.path()).len() <= 2, "left {:?}", segment_files(dir.path()));
    assert!(after_expiry * 10 < peak, "peak {peak} after {after_expiry}");
}

#[tokio::test]
async fn long_retained_messages_in_several_segments_are_copied_forward() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let engine = open_tuned(dir.path(), &clock, small_segments());
    let account = account(&engine).await;
    let busy = queue_with_consumer(&engine, account, "busy", &pull_consumer(3, None)).await;
    // Retained for 14 days and never consumed: nobody pulls this queue.
    let archive = queue_with_consumer(&engine, account, "archive", &pull_consumer(3, None)).await;
    let long = QueueUpdate { message_retention_period: Some(14 * 86_400), ..QueueUpdate::default() };
    engine.update_queue(account, archive, &long).await.expect("retention");
    // One archived message between every few hundred busy ones: each of the
    // first segments holds one of them.
    let mut kept = Vec::new();
    for round in 0..5 {
        let body = format!("keep {round}");
        engine.push(account, archive, vec![text(&body)]).await.expect("push archived");
        kept.push(body);
        push_many(&engine, account, busy, 300).await;
    }
    let pinned = segment_files(dir.path()).len();
    assert!(pinned > 20, "{pinned} segments");
    drain(&engine, account, busy).await;

    let mut copied = 0;
    for _ in 0..pinned {
        copied += engine.compact_now().await.expect("compact");
    }
    let left = segment_files(dir.path());
    eprintln!("pinned: {pinned} segments at peak, {} after, {copied} messages copied", left.len());
    assert_eq!(copied, kept.len(), "each archived message copied once");
    assert!(left.len() <= 2, "left {left:?}");

    drop(engine);
    let engine = open_tuned(dir.path(), &clock, small_segments());
    assert_eq!(bodies(&engine, account, archive).await, kept, "copies keep order and survive a restart");
    clock.advance_ms(13 * 86_400_000);
    engine.tick().await.expect("tick");
    assert_eq!(bodies(&engine, account, archive).await.len(), kept.len(), "retention is counted from the push");
    clock.advance_ms(86_400_000);
    engine.tick().await.expect("tick");
    assert!(bodies(&engine, account, archive).await.is_empty(), "and still ends on time");
}

#[tokio::test]
async fn message_ids_are_not_reused_after_their_segments_are_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let engine = open_tuned(dir.path(), &clock, small_segments());
    let account = account(&engine).await;
    let queue = queue_with_consumer(&engine, account, "ids", &pull_consumer(3, None)).await;
    push_many(&engine, account, queue, 1_000).await;
    let first = engine.peek(account, queue, 1).await.expect("peek")[0].id;
    drain(&engine, account, queue).await;
    engine.compact_now().await.expect("compact");
    assert!(segment_files(dir.path()).len() <= 2, "the pushes' segments are gone");
    drop(engine);

    let engine = open_tuned(dir.path(), &clock, small_segments());
    engine.push(account, queue, vec![text("new")]).await.expect("push");
    let new = engine.peek(account, queue, 1).await.expect("peek")[0].id;
    // Ids end in the sequence number: the new one is past all 1,000 before.
    assert!(new.0 as u64 > first.0 as u64 + 1_000, "first {first}, new {new}");
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
