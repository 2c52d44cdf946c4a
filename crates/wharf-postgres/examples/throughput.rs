//! Rough push / pull+ack throughput of the PostgreSQL backend through the
//! `Broker` trait (no HTTP), in a schema of its own that is dropped after.
//!
//! `cargo run --release -p wharf-postgres --example throughput -- [URL] [MESSAGES] [BACKLOG]`
//!
//! BACKLOG messages are left in the queue first, to see what a deep backlog
//! costs each pull (metrics are exact, so they count it).

use std::sync::Arc;
use std::time::Instant;

use wharf_core::model::{
    Account, ConsumerKind, ConsumerSettings, ConsumerSpec, ContentType, NewMessage, PullRequest, QueueSettings,
};
use wharf_core::{AccountId, Broker, Limits, SystemClock};
use wharf_postgres::{PostgresBroker, PostgresConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
    let count: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(10_000);
    let backlog: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(0);
    let schema = format!("wharf_bench_{}", std::process::id());
    let config = PostgresConfig {
        database_url: url.clone(),
        pool_size: 8,
        limits: Limits::cloudflare(),
        clock: Arc::new(SystemClock),
        schema: Some(schema.clone()),
        vacuum_after_rows: wharf_postgres::VACUUM_AFTER_ROWS,
    };
    let broker = PostgresBroker::connect(config).await?;
    let result = run(&broker, count, backlog).await;
    broker.shutdown().await?;
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await?;
    result
}

async fn run(broker: &PostgresBroker, count: usize, backlog: usize) -> Result<(), Box<dyn std::error::Error>> {
    let account = Account { id: AccountId(1), email: "bench@example.com".into(), created_on_ms: 0 };
    broker.ensure_account(&account, "bench-secret").await?;
    let spec = ConsumerSpec {
        kind: ConsumerKind::HttpPull,
        dead_letter_queue: None,
        settings: ConsumerSettings::defaults_for(&ConsumerKind::HttpPull),
    };
    let body = vec![b'x'; 128];
    let batch =
        |n: usize| vec![NewMessage { body: body.clone(), content_type: ContentType::Text, delay_seconds: None }; n];
    let queue = broker.create_queue(account.id, "bench", QueueSettings::default()).await?;
    // Delayed a day: counted by metrics, never pulled.
    let mut delayed = batch(100);
    delayed.iter_mut().for_each(|message| message.delay_seconds = Some(86_400));
    for _ in 0..backlog / 100 {
        broker.push(account.id, queue.id, delayed.clone()).await?;
    }
    measure(broker, account.id, queue.id, &spec, count, backlog, &batch).await
}

async fn measure(
    broker: &PostgresBroker,
    account: AccountId,
    queue: wharf_core::QueueId,
    spec: &ConsumerSpec,
    count: usize,
    backlog: usize,
    batch: &dyn Fn(usize) -> Vec<NewMessage>,
) -> Result<(), Box<dyn std::error::Error>> {
    broker.create_consumer(account, queue, spec).await?;
    let started = Instant::now();
    for _ in 0..count / 100 {
        broker.push(account, queue, batch(100)).await?;
    }
    let push_rate = count as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut done = 0;
    while done < count {
        let request = PullRequest { batch_size: Some(100), visibility_timeout_ms: None };
        let pulled = broker.pull(account, queue, request).await?;
        if pulled.messages.is_empty() {
            break;
        }
        let leases: Vec<String> = pulled.messages.iter().map(|message| message.handle.clone()).collect();
        broker.ack(account, queue, &leases, &[]).await?;
        done += leases.len();
    }
    let pull_rate = done as f64 / started.elapsed().as_secs_f64();
    let metrics = broker.metrics(account, queue).await?;
    println!(
        "{count} messages of 128 B, batches of 100, one client, {backlog} delayed in the queue: \
         push {push_rate:.0} msg/s, pull+ack {pull_rate:.0} msg/s; backlog left {}",
        metrics.backlog_count
    );
    Ok(())
}
