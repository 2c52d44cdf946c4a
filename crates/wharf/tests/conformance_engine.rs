//! The API conformance suite on the embedded engine.

use std::sync::Arc;

use wharf_core::{Broker, Limits, ManualClock};
use wharf_engine::{Engine, EngineConfig};

/// A fresh engine in its own directory under Cargo's test scratch space.
/// The engine's own sweeper runs too; on a manual clock it only finds work
/// after a test advances time, as `tick` does.
async fn engine(clock: ManualClock) -> Arc<dyn Broker> {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("scratch directory").keep();
    let config = EngineConfig { data_dir: dir, limits: Limits::cloudflare(), clock: Arc::new(clock) };
    Engine::open(config).await.expect("engine opens")
}

wharf_testkit::api_conformance_suite!(engine);
