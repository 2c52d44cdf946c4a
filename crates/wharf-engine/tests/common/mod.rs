//! Helpers shared by the engine's integration tests.

use std::path::Path;
use std::sync::Arc;

use wharf_core::model::{
    Account, ConsumerKind, ConsumerSettings, ConsumerSpec, ContentType, NewMessage, QueueSettings,
};
use wharf_core::{AccountId, Broker, Limits, ManualClock, QueueId};
use wharf_engine::{Engine, EngineConfig};

pub const START_MS: u64 = 1_700_000_000_000;

pub fn open(dir: &Path, clock: &ManualClock) -> Engine {
    let config =
        EngineConfig { data_dir: dir.to_path_buf(), limits: Limits::cloudflare(), clock: Arc::new(clock.clone()) };
    Engine::open_without_sweeper(config).expect("engine opens")
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
