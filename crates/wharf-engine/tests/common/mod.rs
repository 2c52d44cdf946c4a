#![allow(dead_code)] // each test file uses its own subset of these helpers

//! Helpers shared by the engine's integration tests.

use std::path::Path;
use std::sync::Arc;

use wharf_core::model::{
    Account, ConsumerKind, ConsumerSettings, ConsumerSpec, ContentType, NewMessage, QueueSettings,
};
use wharf_core::{AccountId, Broker, Limits, ManualClock, QueueId};
use wharf_engine::{Engine, EngineConfig, EngineTuning};

pub const START_MS: u64 = 1_700_000_000_000;

pub fn open(dir: &Path, clock: &ManualClock) -> Engine {
    open_tuned(dir, clock, EngineTuning::default())
}

/// Small segments, so that tests roll and delete segments quickly.
pub fn small_segments() -> EngineTuning {
    EngineTuning { segment_bytes: 64 * 1024 }
}

pub fn open_tuned(dir: &Path, clock: &ManualClock, tuning: EngineTuning) -> Engine {
    let config =
        EngineConfig { data_dir: dir.to_path_buf(), limits: Limits::cloudflare(), clock: Arc::new(clock.clone()) };
    Engine::open_without_sweeper(config, tuning).expect("engine opens")
}

pub async fn account(engine: &Engine) -> AccountId {
    let account = Account { id: AccountId(0xabc), email: "ops@example.com".into(), created_on_ms: 0 };
    engine.ensure_account(&account, "admin-secret").await.expect("account");
    account.id
}

pub fn pull_consumer(max_retries: u32, dead_letter_queue: Option<&str>) -> ConsumerSpec {
    let mut settings = ConsumerSettings::defaults_for(&ConsumerKind::HttpPull);
    settings.max_retries = max_retries;
    settings.visibility_timeout_ms = 1_000;
    ConsumerSpec { kind: ConsumerKind::HttpPull, dead_letter_queue: dead_letter_queue.map(str::to_string), settings }
}

pub async fn queue_with_consumer(engine: &Engine, account: AccountId, name: &str, spec: &ConsumerSpec) -> QueueId {
    let queue = engine.create_queue(account, name, QueueSettings::default()).await.expect("queue");
    engine.create_consumer(account, queue.id, spec).await.expect("consumer");
    queue.id
}

pub fn text(body: &str) -> NewMessage {
    NewMessage { body: body.as_bytes().to_vec(), content_type: ContentType::Text, delay_seconds: None }
}

/// Segment files of a data directory, oldest first.
pub fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    files.sort();
    files
}

/// (offset, length) of every record in a segment file.
pub fn record_spans(path: &Path) -> Vec<(usize, usize)> {
    let bytes = std::fs::read(path).expect("read segment");
    let mut offset = wharf_engine::record::SEGMENT_HEADER_LEN as usize;
    let mut spans = Vec::new();
    while let Ok((_, len)) = wharf_engine::record::decode(&bytes[offset..]) {
        spans.push((offset, len));
        offset += len;
    }
    spans
}

/// Bodies of every deliverable message, oldest first, without leasing.
pub async fn bodies(engine: &Engine, account: AccountId, queue: QueueId) -> Vec<String> {
    let views = engine.peek(account, queue, 100).await.expect("peek");
    views.iter().map(|view| String::from_utf8_lossy(&view.body).into_owned()).collect()
}
