//! The request decode / response encode path of the two hottest requests:
//! a batch push of 100 × 1 KiB JSON bodies, and a pull answer of 100 × 1 KiB.
//!
//! `cargo bench -p wharf-http --bench codec`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;
use wharf_core::model::{ContentType, MessageView, PullResult, QueueMetrics};
use wharf_core::{Limits, MessageId};
use wharf_http::fuzzing::{decode_batch, encode_pull};

fn codec(c: &mut Criterion) {
    let limits = Limits::cloudflare();
    let body = "x".repeat(1024);
    let text_batch: Vec<_> = (0..100).map(|_| json!({"body": body, "content_type": "text"})).collect();
    let text_request = serde_json::to_vec(&json!({ "messages": text_batch })).expect("json");
    let json_batch: Vec<_> = (0..100).map(|n| json!({"body": {"n": n, "payload": body}})).collect();
    let json_request = serde_json::to_vec(&json!({ "messages": json_batch })).expect("json");

    let views: Vec<MessageView> = (0..100)
        .map(|n| MessageView {
            id: MessageId(n),
            body: vec![b'x'; 1024],
            content_type: if n % 2 == 0 { ContentType::Text } else { ContentType::Json },
            timestamp_ms: 1_700_000_000_000,
            attempts: 1,
            handle: "A".repeat(76),
        })
        .collect();
    let pull = PullResult { messages: views, metrics: QueueMetrics::default() };

    let mut group = c.benchmark_group("http_codec");
    group.throughput(Throughput::Elements(100));
    group.bench_function("decode_batch_100x1KiB_text", |b| b.iter(|| decode_batch(&text_request, &limits)));
    group.bench_function("decode_batch_100x1KiB_json", |b| b.iter(|| decode_batch(&json_request, &limits)));
    group.bench_function("encode_pull_100x1KiB", |b| b.iter(|| encode_pull(&pull)));
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
