//! Measures what a large backlog costs the embedded engine: resident memory
//! per queued message and the time to reopen (recover) the data directory.
//!
//! ```text
//! cargo run --release -p wharf-engine --example backlog -- [--cold] [MESSAGES] [BODY_BYTES] [DATA_DIR]
//! ```
//! Defaults: 5,000,000 messages of 1,024 bytes in a temporary directory.
//! Prints one JSON object. The reopen is measured in a fresh child process,
//! so that memory the first engine freed cannot count against it; first
//! with the segments in the page cache (warm), then, with `--cold`, again
//! after dropping the page cache (needs root: it writes
//! /proc/sys/vm/drop_caches), so every segment is read from the disk.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use wharf_core::model::QueueListRequest;
use wharf_core::model::{Account, ConsumerKind, ConsumerSettings, ConsumerSpec, ContentType, NewMessage};
use wharf_core::{AccountId, Broker, Limits, SystemClock};
use wharf_engine::{Engine, EngineConfig};

const PRODUCERS: usize = 8;
const BATCH: usize = 100;

type Error = Box<dyn std::error::Error>;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

fn config(dir: &Path) -> EngineConfig {
    EngineConfig { data_dir: dir.to_path_buf(), limits: Limits::cloudflare(), clock: Arc::new(SystemClock) }
}

/// Child mode: open an existing directory and report time and memory.
async fn reopen(dir: &Path) -> Result<(), Error> {
    let rss_before = rss_bytes();
    let started = Instant::now();
    let engine = Engine::open(config(dir)).await?;
    let seconds = started.elapsed().as_secs_f64();
    let account = engine.list_accounts().await?.first().ok_or("no account")?.id;
    let all = QueueListRequest { names: vec![], page: 1, per_page: 10 };
    let queue = engine.list_queues(account, &all).await?.items.first().ok_or("no queue")?.id;
    let backlog = engine.metrics(account, queue).await?.backlog_count;
    let report = serde_json::json!({
        "reopen_seconds": seconds,
        "backlog_after_reopen": backlog,
        "rss_before_reopen_bytes": rss_before,
        "rss_after_reopen_bytes": rss_bytes(),
    });
    println!("{report}");
    Ok(())
}

async fn fill(engine: &Arc<Engine>, account: AccountId, messages: usize, body_bytes: usize) -> Result<f64, Error> {
    let queue = engine.create_queue(account, "backlog", Default::default()).await?.id;
    let spec = ConsumerSpec {
        kind: ConsumerKind::HttpPull,
        dead_letter_queue: None,
        settings: ConsumerSettings::defaults_for(&ConsumerKind::HttpPull),
    };
    engine.create_consumer(account, queue, &spec).await?;
    let started = Instant::now();
    let mut producers = Vec::new();
    for producer in 0..PRODUCERS {
        let engine = Arc::clone(engine);
        let share = messages / PRODUCERS + usize::from(producer < messages % PRODUCERS);
        producers.push(tokio::spawn(async move {
            let body = vec![b'x'; body_bytes];
            let mut left = share;
            while left > 0 {
                let count = left.min(BATCH);
                let batch = (0..count)
                    .map(|_| NewMessage { body: body.clone(), content_type: ContentType::Bytes, delay_seconds: None })
                    .collect();
                engine.push(account, queue, batch).await?;
                left -= count;
            }
            Ok::<_, wharf_core::WharfError>(())
        }));
    }
    for producer in producers {
        producer.await??;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Reopens the directory in a fresh process and returns its report.
fn reopen_in_child(dir: &Path) -> Result<serde_json::Value, Error> {
    let child = std::process::Command::new(std::env::current_exe()?).arg("reopen").arg(dir).output()?;
    if !child.status.success() {
        return Err(format!("reopen failed: {}", String::from_utf8_lossy(&child.stderr)).into());
    }
    Ok(serde_json::from_slice(&child.stdout)?)
}

/// Writes dirty pages out, then drops clean ones from the page cache.
fn drop_page_cache() -> Result<(), Error> {
    std::process::Command::new("sync").status()?;
    std::fs::write("/proc/sys/vm/drop_caches", b"3")
        .map_err(|error| format!("dropping the page cache needs root: {error}"))?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args: Vec<String> = std::env::args().collect();
    let cold = args.iter().any(|arg| arg == "--cold");
    args.retain(|arg| arg != "--cold");
    if args.get(1).map(String::as_str) == Some("reopen") {
        return reopen(Path::new(args.get(2).ok_or("reopen needs a directory")?)).await;
    }
    let messages: usize = args.get(1).map_or(Ok(5_000_000), |n| n.parse())?;
    let body_bytes: usize = args.get(2).map_or(Ok(1024), |n| n.parse())?;
    let temporary = tempfile::tempdir()?;
    let dir = args.get(3).map_or_else(|| temporary.path().to_path_buf(), std::path::PathBuf::from);

    let engine = Engine::open(config(&dir)).await?;
    let account = Account { id: AccountId::random(), email: "bench@example.com".into(), created_on_ms: 0 };
    engine.ensure_account(&account, "bench-secret").await?;
    let rss_before = rss_bytes();
    let push_seconds = fill(&engine, account.id, messages, body_bytes).await?;
    let rss_full = rss_bytes();
    engine.shutdown().await?;
    drop(engine);

    let reopened = reopen_in_child(&dir)?;
    let cold_reopen = if cold {
        drop_page_cache()?;
        reopen_in_child(&dir)?["reopen_seconds"].clone()
    } else {
        serde_json::Value::Null
    };
    let rss_reopened = reopened["rss_after_reopen_bytes"].as_u64().unwrap_or(0);
    let rss_child_before = reopened["rss_before_reopen_bytes"].as_u64().unwrap_or(0);
    let disk_bytes: u64 = std::fs::read_dir(&dir)?.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum();
    let report = serde_json::json!({
        "messages": messages,
        "body_bytes": body_bytes,
        "push_seconds": push_seconds,
        "push_msgs_per_second": messages as f64 / push_seconds,
        "rss_bytes_per_message_after_push": rss_full.saturating_sub(rss_before) as f64 / messages as f64,
        "disk_bytes": disk_bytes,
        "reopen_seconds_warm": reopened["reopen_seconds"],
        "reopen_seconds_cold": cold_reopen,
        "backlog_after_reopen": reopened["backlog_after_reopen"],
        "rss_bytes_per_message_after_reopen": rss_reopened.saturating_sub(rss_child_before) as f64 / messages as f64,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
