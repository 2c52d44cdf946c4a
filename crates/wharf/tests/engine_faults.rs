//! Storage faults seen from a client: an embedded engine in the failed
//! state answers every write over HTTP with a v4 error envelope, status 503
//! and code 15001, until it is restarted.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::json;
use wharf_core::model::QueueListRequest;
use wharf_core::{Broker, Limits, ManualClock};
use wharf_engine::{Engine, EngineConfig};
use wharf_testkit::{assert_envelope, Reply, TestServer, START_MS};

const STORAGE_FAILED: u64 = 15001;

/// An engine and the server over it; the engine handle reaches its faults.
async fn serve(dir: &std::path::Path) -> (Arc<Engine>, TestServer) {
    let clock = ManualClock::new(START_MS);
    let config =
        EngineConfig { data_dir: dir.to_path_buf(), limits: Limits::cloudflare(), clock: Arc::new(clock.clone()) };
    let engine = Engine::open(config).await.expect("engine opens");
    let broker: Arc<dyn Broker> = engine.clone();
    let server = TestServer::start(broker, clock, Limits::cloudflare()).await;
    (engine, server)
}

#[track_caller]
fn storage_failed(reply: &Reply) {
    assert_envelope(&reply.body);
    reply.fails(503, STORAGE_FAILED);
    let message = reply.body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("restart"), "the message says what to do: {message}");
}

#[tokio::test]
async fn a_failed_log_fsync_answers_writes_with_503_until_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (engine, server) = serve(dir.path()).await;
    let queue = server.pull_queue("faulty", json!({})).await;
    server.push_text(&queue, "before").await;

    engine.faults().fail_next_sync.store(true, Ordering::SeqCst);
    let messages = format!("/queues/{queue}/messages");
    storage_failed(&server.post(&messages, json!({"body": "during", "content_type": "text"})).await);
    // The next fsync would succeed; nothing more is acknowledged anyway.
    storage_failed(&server.post(&messages, json!({"body": "after", "content_type": "text"})).await);
    storage_failed(&server.post(&format!("{messages}/batch"), json!({"messages": [{"body": "b"}]})).await);
    storage_failed(&server.post("/queues", json!({"queue_name": "another"})).await);
    // Reads still answer: an operator can look before restarting.
    assert_eq!(server.get("/queues").await.status, 200);
    // Not `stop`: a clean shutdown cannot flush what never became durable.
    drop(server);
}

#[tokio::test]
async fn a_failed_catalog_fsync_answers_writes_with_503_until_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (engine, server) = serve(dir.path()).await;
    let queue = server.pull_queue("faulty", json!({})).await;

    engine.faults().fail_next_catalog_sync.store(true, Ordering::SeqCst);
    storage_failed(&server.post("/queues", json!({"queue_name": "lost"})).await);
    storage_failed(&server.post("/queues", json!({"queue_name": "lost"})).await);
    let push = json!({"body": "after", "content_type": "text"});
    storage_failed(&server.post(&format!("/queues/{queue}/messages"), push).await);
    let account = server.account;
    drop(engine);
    server.stop().await;

    // A restart recovers from what is on disk and writes again.
    let (engine, server) = serve(dir.path()).await;
    let all = QueueListRequest { names: Vec::new(), page: 1, per_page: 100 };
    let queues = engine.list_queues(account, &all).await.expect("queues");
    let names: Vec<&str> = queues.items.iter().map(|queue| queue.name.as_str()).collect();
    assert_eq!(names, ["faulty"], "the failed change is not on disk");
    server.create_queue("lost").await;
    drop(engine);
    server.stop().await;
}
