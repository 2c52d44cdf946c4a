//! Measures disk use of the embedded engine at the peak of a large backlog
//! and after every message has been pulled and acked.
//!
//! ```text
//! cargo run --release -p wharf-engine --example space -- [MESSAGES] [BODY_BYTES]
//! ```
//! Defaults: 1,000,000 messages of 1,024 bytes. Prints one JSON object.

use std::path::Path;
use std::sync::Arc;

use wharf_core::model::{Account, ConsumerKind, ConsumerSettings, ConsumerSpec, ContentType, NewMessage, PullRequest};
use wharf_core::{AccountId, Broker, Limits, SystemClock};
use wharf_engine::{Engine, EngineConfig};

type Error = Box<dyn std::error::Error>;

/// Bytes the directory's files occupy on disk (allocated blocks).
fn disk_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.blocks() * 512).sum())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let messages: usize = args.get(1).map_or(Ok(1_000_000), |n| n.parse())?;
    let body_bytes: usize = args.get(2).map_or(Ok(1024), |n| n.parse())?;
    let dir = tempfile::tempdir()?;
    let config =
        EngineConfig { data_dir: dir.path().to_path_buf(), limits: Limits::cloudflare(), clock: Arc::new(SystemClock) };
    let engine = Engine::open(config).await?;
    let account = Account { id: AccountId::random(), email: "bench@example.com".into(), created_on_ms: 0 };
    engine.ensure_account(&account, "secret").await?;
    let queue = engine.create_queue(account.id, "space", Default::default()).await?.id;
    let kind = ConsumerKind::HttpPull;
    let spec = ConsumerSpec { settings: ConsumerSettings::defaults_for(&kind), kind, dead_letter_queue: None };
    engine.create_consumer(account.id, queue, &spec).await?;

    let body = vec![b'x'; body_bytes];
    for _ in 0..messages / 100 {
        let batch =
            (0..100).map(|_| NewMessage { body: body.clone(), content_type: ContentType::Bytes, delay_seconds: None });
        engine.push(account.id, queue, batch.collect()).await?;
    }
    let peak = disk_bytes(dir.path());
    let segments_at_peak = engine.segment_count();
    loop {
        let request = PullRequest { batch_size: Some(100), visibility_timeout_ms: None };
        let pulled = engine.pull(account.id, queue, request).await?.messages;
        if pulled.is_empty() {
            break;
        }
        let leases: Vec<String> = pulled.into_iter().map(|m| m.handle).collect();
        engine.ack(account.id, queue, &leases, &[]).await?;
    }
    engine.compact_now().await?;
    let report = serde_json::json!({
        "messages": messages,
        "body_bytes": body_bytes,
        "disk_bytes_at_peak": peak,
        "segments_at_peak": segments_at_peak,
        "disk_bytes_after_ack_all": disk_bytes(dir.path()),
        "segments_after_ack_all": engine.segment_count(),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
