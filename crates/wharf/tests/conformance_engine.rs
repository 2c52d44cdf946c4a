//! The API conformance suite on the embedded engine.

use std::sync::Arc;

use wharf_core::{Broker, Limits, ManualClock};
use wharf_engine::{Engine, EngineConfig};
use wharf_testkit::{Backend, TestServer};

/// A fresh engine in its own directory under Cargo's test scratch space.
/// The directory lives as long as the test server and is removed after the
/// engine shuts down, so a run leaves no segments behind.
/// The engine's own sweeper runs too; on a manual clock it only finds work
/// after a test advances time, as `tick` does.
async fn engine(clock: ManualClock) -> Backend {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("scratch directory");
    let config =
        EngineConfig { data_dir: dir.path().to_path_buf(), limits: Limits::cloudflare(), clock: Arc::new(clock) };
    let engine: Arc<dyn Broker> = Engine::open(config).await.expect("engine opens");
    Backend::with_guard(engine, dir)
}

wharf_testkit::api_conformance_suite!(engine);

/// The limit case needs a backend opened with small limits, so it is not
/// part of the suite's factory-built cases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_count_and_backlog_limits() {
    let limits = wharf_testkit::conformance::limits::small_limits();
    let clock = ManualClock::new(wharf_testkit::START_MS);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("scratch directory");
    let config =
        EngineConfig { data_dir: dir.path().to_path_buf(), limits: limits.clone(), clock: Arc::new(clock.clone()) };
    let engine: Arc<dyn Broker> = Engine::open(config).await.expect("engine opens");
    let server = TestServer::start(engine, clock, limits).await;
    wharf_testkit::conformance::limits::queue_count_and_backlog_limits(&server).await;
    server.stop().await;
}

/// The engine's own figures on `GET /metrics`: its group commits count
/// every push, pull and ack that logged records, and its backlog gauges
/// follow the queue's metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_the_engines_group_commits_and_backlog() {
    use wharf_testkit::conformance::monitoring::{sample, scrape};

    let server = TestServer::start_with(engine).await;
    let queue = server.pull_queue("engine-metrics", serde_json::json!({"visibility_timeout_ms": 60_000})).await;
    let before = scrape(&server).await;
    for text in ["one", "two", "three"] {
        server.push_text(&queue, text).await;
    }
    let pushed = scrape(&server).await;
    let grew = |series: &str| sample(&pushed, series).unwrap_or(0.0) - sample(&before, series).unwrap_or(0.0);
    assert!(grew("wharf_engine_log_syncs_total") >= 1.0, "{pushed}");
    assert!(grew("wharf_engine_log_synced_appends_total") >= 3.0, "{pushed}");
    assert!(grew("wharf_engine_log_synced_bytes_total") > 0.0, "{pushed}");
    assert_eq!(sample(&pushed, "wharf_engine_queues"), Some(1.0), "{pushed}");
    assert_eq!(sample(&pushed, "wharf_engine_backlog_messages"), Some(3.0), "{pushed}");
    assert_eq!(sample(&pushed, "wharf_engine_backlog_bytes"), Some(11.0), "{pushed}");

    let pulled = server.pull(&queue, serde_json::json!({"batch_size": 10})).await;
    let acks: Vec<_> = pulled.iter().map(|message| serde_json::json!({"lease_id": message["lease_id"]})).collect();
    server.post(&format!("/queues/{queue}/messages/ack"), serde_json::json!({"acks": acks})).await.ok();
    let acked = scrape(&server).await;
    assert_eq!(sample(&acked, "wharf_engine_backlog_messages"), Some(0.0), "{acked}");
    let appends = |text: &str| sample(text, "wharf_engine_log_synced_appends_total").unwrap_or(0.0);
    assert!(appends(&acked) >= appends(&pushed) + 2.0, "the pull and the ack logged records: {acked}");
    server.stop().await;
}
