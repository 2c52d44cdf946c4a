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
