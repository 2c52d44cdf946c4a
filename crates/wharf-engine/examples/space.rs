//! Measures disk use of the embedded engine at the peak of a large backlog
//! and after it is gone, three ways: every message pulled and acked, every
//! message expired by retention, and the queue purged.
//!
//! ```text
//! cargo run --release -p wharf-engine --example space -- [MESSAGES] [BODY_BYTES]
//! ```
//! Defaults: 200,000 messages of 1,024 bytes per phase. Prints one JSON
//! object. A manual clock stands in for the wall clock so retention can be
//! reached without waiting a minute.

use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use wharf_core::model::{
    Account, ConsumerKind, ConsumerSettings, ConsumerSpec, ContentType, NewMessage, PullRequest, QueueUpdate,
};
use wharf_core::{AccountId, Broker, Clock, Limits, ManualClock, QueueId, SystemClock};
use wharf_engine::{Engine, EngineConfig};

type Error = Box<dyn std::error::Error>;

/// Bytes the directory's files occupy on disk (allocated blocks).
fn disk_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.blocks() * 512).sum())
        .unwrap_or(0)
}

enum Phase {
    AckAll,
    RetentionExpiry,
    Purge,
}

async fn push_all(engine: &Engine, account: AccountId, queue: QueueId, messages: usize, body_bytes: usize) {
    let body = vec![b'x'; body_bytes];
    for _ in 0..messages / 100 {
        let batch =
            (0..100).map(|_| NewMessage { body: body.clone(), content_type: ContentType::Bytes, delay_seconds: None });
        if let Err(error) = engine.push(account, queue, batch.collect()).await {
            eprintln!("push failed: {error}");
            return;
        }
    }
}

async fn ack_all(engine: &Engine, account: AccountId, queue: QueueId) -> Result<(), Error> {
    loop {
        let request = PullRequest { batch_size: Some(100), visibility_timeout_ms: None };
        let pulled = engine.pull(account, queue, request).await?.messages;
        if pulled.is_empty() {
            return Ok(());
        }
        let leases: Vec<String> = pulled.into_iter().map(|m| m.handle).collect();
        engine.ack(account, queue, &leases, &[]).await?;
    }
}

/// One phase in a fresh data directory: fill, make the backlog go, compact.
async fn measure(phase: Phase, messages: usize, body_bytes: usize) -> Result<Value, Error> {
    let dir = tempfile::tempdir()?;
    let clock = ManualClock::new(SystemClock.now_ms());
    let config = EngineConfig {
        data_dir: dir.path().to_path_buf(),
        limits: Limits::cloudflare(),
        clock: Arc::new(clock.clone()),
    };
    let engine = Engine::open(config).await?;
    let account = Account { id: AccountId::random(), email: "bench@example.com".into(), created_on_ms: 0 };
    engine.ensure_account(&account, "secret").await?;
    let queue = engine.create_queue(account.id, "space", Default::default()).await?.id;
    let kind = ConsumerKind::HttpPull;
    let spec = ConsumerSpec { settings: ConsumerSettings::defaults_for(&kind), kind, dead_letter_queue: None };
    engine.create_consumer(account.id, queue, &spec).await?;
    let retention = QueueUpdate { message_retention_period: Some(60), ..QueueUpdate::default() };
    if matches!(phase, Phase::RetentionExpiry) {
        engine.update_queue(account.id, queue, &retention).await?;
    }

    push_all(&engine, account.id, queue, messages, body_bytes).await;
    let peak = disk_bytes(dir.path());
    let segments_at_peak = engine.segment_count();
    match phase {
        Phase::AckAll => ack_all(&engine, account.id, queue).await?,
        Phase::RetentionExpiry => clock.advance_ms(61_000),
        Phase::Purge => {
            engine.purge(account.id, queue).await?;
        }
    }
    engine.compact_now().await?;
    let backlog_after = engine.metrics(account.id, queue).await?.backlog_count;
    let report = json!({
        "disk_bytes_at_peak": peak,
        "segments_at_peak": segments_at_peak,
        "disk_bytes_after": disk_bytes(dir.path()),
        "segments_after": engine.segment_count(),
        "backlog_after": backlog_after,
    });
    engine.shutdown().await?;
    Ok(report)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let messages: usize = args.get(1).map_or(Ok(200_000), |n| n.parse())?;
    let body_bytes: usize = args.get(2).map_or(Ok(1024), |n| n.parse())?;
    let report = json!({
        "messages": messages,
        "body_bytes": body_bytes,
        "ack_all": measure(Phase::AckAll, messages, body_bytes).await?,
        "retention_expiry": measure(Phase::RetentionExpiry, messages, body_bytes).await?,
        "purge": measure(Phase::Purge, messages, body_bytes).await?,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
