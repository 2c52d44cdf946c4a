//! A redrive is durable once it returns: after a restart the moved messages
//! are in their new queue (ready, attempts counted afresh) and not in the
//! old one, and a redrive of thousands moves them all in order.

mod common;

use wharf_core::model::{PullRequest, QueueListRequest, RedriveRequest};
use wharf_core::{Broker, ManualClock};

use common::{account, bodies, open, pull_consumer, queue_with_consumer, text, START_MS};

#[tokio::test]
async fn redriven_messages_stay_moved_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let engine = open(dir.path(), &clock);
    let account = account(&engine).await;
    let source = queue_with_consumer(&engine, account, "jobs", &pull_consumer(0, Some("jobs-dlq"))).await;
    let messages: Vec<_> = (0..2_500).map(|n| text(&format!("job-{n}"))).collect();
    for chunk in messages.chunks(100) {
        engine.push(account, source, chunk.to_vec()).await.expect("push");
    }
    let everything = PullRequest { batch_size: Some(100), visibility_timeout_ms: Some(1_000) };
    while !engine.pull(account, source, everything).await.expect("pull").messages.is_empty() {}
    clock.advance_ms(1_000);
    engine.tick().await.expect("tick");
    let named = QueueListRequest { names: vec!["jobs-dlq".into()], page: 1, per_page: 1 };
    let dlq = engine.list_queues(account, &named).await.expect("list").items[0].id;
    assert_eq!(engine.metrics(account, dlq).await.expect("metrics").backlog_count, 2_500);

    let request = RedriveRequest { destination: None, max_messages: 2_000 };
    let first = engine.redrive(account, dlq, request).await.expect("redrive");
    assert_eq!((first.moved, first.destination, first.metrics.backlog_count), (2_000, source, 500));
    engine.shutdown().await.expect("shutdown");
    drop(engine);

    let engine = open(dir.path(), &clock);
    assert_eq!(engine.metrics(account, dlq).await.expect("metrics").backlog_count, 500);
    assert_eq!(engine.metrics(account, source).await.expect("metrics").backlog_count, 2_000);
    let rest = engine.redrive(account, dlq, request).await.expect("redrive");
    assert_eq!(rest.moved, 500);
    let pulled = engine.pull(account, source, everything).await.expect("pull");
    assert_eq!(pulled.messages[0].body, b"job-0", "oldest first");
    assert!(pulled.messages.iter().all(|message| message.attempts == 1), "attempts start again");
    assert_eq!(bodies(&engine, account, dlq).await, Vec::<String>::new());
    engine.shutdown().await.expect("shutdown");
}
