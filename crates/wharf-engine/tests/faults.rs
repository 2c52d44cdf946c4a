//! Injected storage faults: a failed fsync (log or catalog) poisons the
//! engine; a full disk refuses writes cleanly and they resume when space is
//! back.

mod common;

use std::sync::atomic::Ordering;

use common::*;
use wharf_core::model::QueueSettings;
use wharf_core::{Broker, ManualClock, WharfError};

#[tokio::test]
async fn failed_fsync_acknowledges_nothing_more_until_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let engine = open_tuned(dir.path(), &clock, small_segments());
    let account = account(&engine).await;
    let queue = queue_with_consumer(&engine, account, "fsync", &pull_consumer(3, None)).await;
    engine.push(account, queue, vec![text("before")]).await.expect("push");

    engine.faults().fail_next_sync.store(true, Ordering::SeqCst);
    let failed = engine.push(account, queue, vec![text("during")]).await;
    assert!(matches!(failed, Err(WharfError::StorageFailed { .. })), "{failed:?}");
    assert_eq!(failed.err().map(|e| e.code().status), Some(503));
    // The next fsync would succeed, but the engine must not trust it.
    let after = engine.push(account, queue, vec![text("after")]).await;
    assert!(matches!(after, Err(WharfError::StorageFailed { .. })), "{after:?}");
    let create = engine.create_queue(account, "new", QueueSettings::default()).await;
    assert!(matches!(create, Err(WharfError::StorageFailed { .. })), "{create:?}");
    let pull =
        engine.pull(account, queue, wharf_core::model::PullRequest { batch_size: None, visibility_timeout_ms: None });
    assert!(matches!(pull.await, Err(WharfError::StorageFailed { .. })));
    drop(engine);

    let engine = open_tuned(dir.path(), &clock, small_segments());
    let kept = bodies(&engine, account, queue).await;
    assert!(kept.starts_with(&["before".to_string()]), "{kept:?}");
    assert!(!kept.contains(&"after".to_string()));
    engine.push(account, queue, vec![text("restarted")]).await.expect("writes again after restart");
}

#[tokio::test]
async fn failed_catalog_fsync_puts_the_engine_in_the_failed_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let engine = open_tuned(dir.path(), &clock, small_segments());
    let account = account(&engine).await;
    let queue = queue_with_consumer(&engine, account, "kept", &pull_consumer(3, None)).await;
    engine.push(account, queue, vec![text("before")]).await.expect("push");

    engine.faults().fail_next_catalog_sync.store(true, Ordering::SeqCst);
    let failed = engine.create_queue(account, "lost", QueueSettings::default()).await;
    assert!(matches!(failed, Err(WharfError::StorageFailed { .. })), "{failed:?}");
    assert_eq!(failed.err().map(|e| e.code().status), Some(503));
    assert!(!dir.path().join("catalog.json.tmp").exists(), "no half-written catalog left behind");
    // The next catalog fsync would succeed; the engine must not try it,
    // nor acknowledge anything else.
    let retried = engine.create_queue(account, "lost", QueueSettings::default()).await;
    assert!(matches!(retried, Err(WharfError::StorageFailed { .. })), "{retried:?}");
    let push = engine.push(account, queue, vec![text("after")]).await;
    assert!(matches!(push, Err(WharfError::StorageFailed { .. })), "{push:?}");
    assert_eq!(engine.list_queues(account, &all()).await.expect("list").total_count, 1, "change undone in memory");
    drop(engine);

    let engine = open_tuned(dir.path(), &clock, small_segments());
    assert_eq!(engine.list_queues(account, &all()).await.expect("list").total_count, 1);
    assert_eq!(bodies(&engine, account, queue).await, ["before"]);
    engine.create_queue(account, "lost", QueueSettings::default()).await.expect("catalog writes after restart");
    engine.push(account, queue, vec![text("restarted")]).await.expect("log writes after restart");
}

#[tokio::test]
async fn full_disk_refuses_cleanly_and_resumes_when_space_is_freed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let engine = open_tuned(dir.path(), &clock, small_segments());
    let account = account(&engine).await;
    let queue = queue_with_consumer(&engine, account, "full", &pull_consumer(3, None)).await;
    let body = "x".repeat(20_000);
    // Two 20 KB messages fit in the first 64 KiB segment.
    engine.push(account, queue, vec![text(&body), text(&body)]).await.expect("push");
    let before = engine.metrics(account, queue).await.expect("metrics");

    engine.faults().disk_full.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        let refused = engine.push(account, queue, vec![text(&body), text(&body)]).await;
        assert_eq!(refused.as_ref().err(), Some(&WharfError::StorageFull), "{refused:?}");
        assert_eq!(refused.err().map(|e| e.code().status), Some(507));
    }
    let refused = engine.create_queue(account, "another", QueueSettings::default()).await;
    assert_eq!(refused.err(), Some(WharfError::StorageFull));
    assert_eq!(engine.metrics(account, queue).await.expect("metrics"), before, "nothing changed");
    assert_eq!(engine.list_queues(account, &all()).await.expect("list").total_count, 1);

    engine.faults().disk_full.store(false, Ordering::SeqCst);
    engine.push(account, queue, vec![text(&body), text(&body)]).await.expect("writes resume");
    engine.create_queue(account, "another", QueueSettings::default()).await.expect("catalog resumes");
    drop(engine);
    let engine = open_tuned(dir.path(), &clock, small_segments());
    assert_eq!(engine.metrics(account, queue).await.expect("metrics").backlog_count, 4);
}

fn all() -> wharf_core::model::QueueListRequest {
    wharf_core::model::QueueListRequest { names: Vec::new(), page: 1, per_page: 100 }
}

#[tokio::test]
async fn a_data_directory_serves_one_engine_at_a_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let first = open_tuned(dir.path(), &clock, small_segments());
    let config = wharf_engine::EngineConfig {
        data_dir: dir.path().to_path_buf(),
        limits: wharf_core::Limits::cloudflare(),
        clock: std::sync::Arc::new(clock.clone()),
    };
    let second = wharf_engine::Engine::open_without_sweeper(config, small_segments());
    match second {
        Err(WharfError::StorageFailed { detail }) => assert!(detail.contains("in use"), "{detail}"),
        other => panic!("a second engine opened the same directory: {:?}", other.map(|_| ())),
    }
    drop(first);
    open_tuned(dir.path(), &clock, small_segments());
}

#[tokio::test]
async fn an_empty_pull_does_not_wait_for_other_writers_syncs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let engine = std::sync::Arc::new(open(dir.path(), &clock));
    let account = account(&engine).await;
    let busy = queue_with_consumer(&engine, account, "busy", &pull_consumer(3, None)).await;
    let empty = queue_with_consumer(&engine, account, "empty", &pull_consumer(3, None)).await;

    engine.faults().hold_syncs.store(true, Ordering::SeqCst);
    let pusher = {
        let engine = std::sync::Arc::clone(&engine);
        tokio::spawn(async move { engine.push(account, busy, vec![text("held")]).await })
    };
    // Let the push append its record and start waiting for the held sync.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let request = wharf_core::model::PullRequest { batch_size: None, visibility_timeout_ms: None };
    let pulled = tokio::time::timeout(std::time::Duration::from_secs(5), engine.pull(account, empty, request)).await;
    let still_waiting = !pusher.is_finished();
    engine.faults().hold_syncs.store(false, Ordering::SeqCst);

    let pulled = pulled.expect("an empty pull answers while another queue's push waits for its sync");
    assert!(pulled.expect("pull").messages.is_empty());
    assert!(still_waiting, "the push should have been waiting for the held sync");
    pusher.await.expect("push task").expect("push is durable once syncs resume");
}

/// A pull reads the bodies of messages already in the segment files while
/// its delivery records sync; it must still answer only after that sync.
#[tokio::test]
async fn a_pull_answers_only_once_its_deliveries_are_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let engine = std::sync::Arc::new(open(dir.path(), &clock));
    let account = account(&engine).await;
    let queue = queue_with_consumer(&engine, account, "held", &pull_consumer(3, None)).await;
    engine.push(account, queue, vec![text("one"), text("two")]).await.expect("push");

    engine.faults().hold_syncs.store(true, Ordering::SeqCst);
    let puller = {
        let engine = std::sync::Arc::clone(&engine);
        let request = wharf_core::model::PullRequest { batch_size: Some(10), visibility_timeout_ms: None };
        tokio::spawn(async move { engine.pull(account, queue, request).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let answered_early = puller.is_finished();
    engine.faults().hold_syncs.store(false, Ordering::SeqCst);

    let pulled = puller.await.expect("pull task").expect("pull succeeds once syncs resume");
    assert!(!answered_early, "the pull answered before its delivery records were synced");
    let bodies: Vec<_> = pulled.messages.iter().map(|message| message.body.clone()).collect();
    assert_eq!(bodies, vec![b"one".to_vec(), b"two".to_vec()]);
}

#[tokio::test]
async fn a_pull_whose_delivery_sync_fails_serves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let engine = open(dir.path(), &clock);
    let account = account(&engine).await;
    let queue = queue_with_consumer(&engine, account, "failing", &pull_consumer(3, None)).await;
    engine.push(account, queue, vec![text("kept")]).await.expect("push");

    engine.faults().fail_next_sync.store(true, Ordering::SeqCst);
    let request = wharf_core::model::PullRequest { batch_size: Some(10), visibility_timeout_ms: None };
    let pulled = engine.pull(account, queue, request).await;
    assert!(
        matches!(pulled, Err(WharfError::StorageFailed { .. })),
        "{:?}",
        pulled.map(|result| result.messages.len())
    );
    drop(engine);

    let engine = open(dir.path(), &clock);
    assert_eq!(bodies(&engine, account, queue).await, vec!["kept".to_string()]);
}
