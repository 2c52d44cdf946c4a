//! Micro-benchmarks of the embedded engine's hot paths:
//! record encoding and decoding, append with group commit (one producer and
//! eight), and a pull + ack cycle (selection, delivery logging, body reads).
//!
//! `cargo bench -p wharf-engine --bench engine`

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use wharf_core::model::{Account, ConsumerKind, ConsumerSettings, ConsumerSpec, ContentType, NewMessage, PullRequest};
use wharf_core::{AccountId, Broker, Limits, QueueId, SystemClock};
use wharf_engine::record::{decode, Record};
use wharf_engine::{Engine, EngineConfig};

const BODY: usize = 1024;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

fn batch(count: usize) -> Vec<NewMessage> {
    (0..count)
        .map(|_| NewMessage { body: vec![b'x'; BODY], content_type: ContentType::Bytes, delay_seconds: None })
        .collect()
}

async fn engine_with_queue(dir: &std::path::Path) -> (Arc<Engine>, AccountId, QueueId) {
    let config =
        EngineConfig { data_dir: dir.to_path_buf(), limits: Limits::cloudflare(), clock: Arc::new(SystemClock) };
    let engine = Engine::open(config).await.expect("open");
    let account = Account { id: AccountId::random(), email: "bench@example.com".into(), created_on_ms: 0 };
    engine.ensure_account(&account, "secret").await.expect("account");
    let queue = engine.create_queue(account.id, "bench", Default::default()).await.expect("queue").id;
    let kind = ConsumerKind::HttpPull;
    let spec = ConsumerSpec { settings: ConsumerSettings::defaults_for(&kind), kind, dead_letter_queue: None };
    engine.create_consumer(account.id, queue, &spec).await.expect("consumer");
    (engine, account.id, queue)
}

fn records(c: &mut Criterion) {
    let record = Record::Push {
        queue: QueueId(7),
        seq: 42,
        timestamp_ms: 1,
        visible_at_ms: 1,
        attempts: 0,
        content_type: ContentType::Bytes,
        body: vec![b'x'; BODY],
    };
    let mut encoded = Vec::new();
    record.encode_into(&mut encoded);
    let mut group = c.benchmark_group("record");
    group.throughput(Throughput::Bytes(encoded.len() as u64));
    group.bench_function("encode_push_1KiB", |b| {
        let mut out = Vec::with_capacity(2048);
        b.iter(|| {
            out.clear();
            record.encode_into(&mut out);
            out.len()
        })
    });
    group.bench_function("decode_push_1KiB", |b| b.iter(|| decode(&encoded).map(|(_, len)| len)));
    group.finish();
}

fn group_commit(c: &mut Criterion) {
    let runtime = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let (engine, account, queue) = runtime.block_on(engine_with_queue(dir.path()));
    let mut group = c.benchmark_group("append_group_commit");
    group.sample_size(20).measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(100));
    group.bench_function("push_100x1KiB_one_producer", |b| {
        b.to_async(&runtime).iter_batched(
            || batch(100),
            |messages| {
                let engine = Arc::clone(&engine);
                async move { engine.push(account, queue, messages).await.expect("push") }
            },
            BatchSize::SmallInput,
        )
    });
    group.throughput(Throughput::Elements(800));
    group.bench_function("push_100x1KiB_eight_producers", |b| {
        b.to_async(&runtime).iter_custom(|iterations| {
            let engine = Arc::clone(&engine);
            async move {
                let started = Instant::now();
                for _ in 0..iterations {
                    let tasks: Vec<_> = (0..8)
                        .map(|_| {
                            let engine = Arc::clone(&engine);
                            let messages = batch(100);
                            tokio::spawn(async move { engine.push(account, queue, messages).await.expect("push") })
                        })
                        .collect();
                    for task in tasks {
                        task.await.expect("task");
                    }
                }
                started.elapsed()
            }
        })
    });
    group.finish();
}

fn pull_and_ack(c: &mut Criterion) {
    let runtime = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let (engine, account, queue) = runtime.block_on(engine_with_queue(dir.path()));
    // A standing backlog, refilled as the benchmark drains it.
    runtime.block_on(async {
        for _ in 0..200 {
            engine.push(account, queue, batch(100)).await.expect("fill");
        }
    });
    let mut group = c.benchmark_group("pull_ack");
    group.sample_size(20).measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(100));
    group.bench_function("pull_100_then_ack_100", |b| {
        b.to_async(&runtime).iter(|| {
            let engine = Arc::clone(&engine);
            async move {
                let request = PullRequest { batch_size: Some(100), visibility_timeout_ms: None };
                let mut pulled = engine.pull(account, queue, request).await.expect("pull").messages;
                if pulled.len() < 100 {
                    engine.push(account, queue, batch(100)).await.expect("refill");
                    pulled = engine.pull(account, queue, request).await.expect("pull").messages;
                }
                let leases: Vec<String> = pulled.into_iter().map(|m| m.handle).collect();
                engine.ack(account, queue, &leases, &[]).await.expect("ack")
            }
        })
    });
    group.finish();
}

criterion_group!(benches, records, group_commit, pull_and_ack);
criterion_main!(benches);
