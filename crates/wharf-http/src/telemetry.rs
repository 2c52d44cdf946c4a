//! `GET /metrics`: Prometheus (OpenMetrics text) figures of the server.
//!
//! Per operation of the API, requests by status and their handling time;
//! and what the backend reports of itself ([`Broker::stats`]: the engine's
//! group commits and backlog). Without a token only totals: no queue name,
//! id or account appears, so the endpoint needs no token, like `/healthz`.
//! With a token, the figures of each queue of the token's account follow
//! ([`Telemetry::render`]).

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use wharf_core::model::QueueBacklog;

use crate::queue_counts::QueueCounts;
use wharf_core::stats::StatKind;
use wharf_core::Broker;

/// The content type of the OpenMetrics text exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the request-duration buckets, in seconds: from a
/// fraction of a group commit (~0.1-0.3 ms on a fast disk) to the longest
/// long poll.
const DURATION_BUCKETS: [f64; 16] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue_id: String,
    queue_name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// The server's registry and the request metrics it holds.
pub struct Telemetry {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<OperationLabels, Histogram, fn() -> Histogram>,
}

impl Telemetry {
    pub fn new(broker: Arc<dyn Broker>) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "wharf_http_requests",
            "Requests answered, by operation (the API's operation id) and HTTP status",
            requests.clone(),
        );
        let durations = Family::<OperationLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_histogram as fn() -> Histogram,
        );
        registry.register(
            "wharf_http_request_duration_seconds",
            "Time from a request's arrival to its answer, by operation (long polls included)",
            durations.clone(),
        );
        registry.register_collector(Box::new(BackendStats(broker)));
        Self { registry, requests, durations }
    }

    /// Counts one answered request.
    pub fn observe(&self, operation: &'static str, status: u16, elapsed: Duration) {
        self.requests.get_or_create(&RequestLabels { operation, status }).inc();
        self.durations.get_or_create(&OperationLabels { operation }).observe(elapsed.as_secs_f64());
    }

    /// The exposition of every metric, read now, then, when given, the
    /// figures of each of `queues`.
    pub fn render(&self, queues: Option<&[QueueBacklog]>, counts: &QueueCounts) -> String {
        let mut text = String::with_capacity(16 * 1024);
        let mut encode = || -> Result<(), std::fmt::Error> {
            prometheus_client::encoding::text::encode_registry(&mut text, &self.registry)?;
            if let Some(queues) = queues {
                prometheus_client::encoding::text::encode_registry(&mut text, &queue_registry(queues, counts))?;
            }
            prometheus_client::encoding::text::encode_eof(&mut text)
        };
        // Writing into a String cannot fail; a collector's own error would
        // only cut the text short.
        if let Err(error) = encode() {
            tracing::warn!(%error, "encoding /metrics failed");
        }
        text
    }
}

/// The per-queue figures, built for one scrape.
fn queue_registry(queues: &[QueueBacklog], counts: &QueueCounts) -> Registry {
    let mut registry = Registry::default();
    let messages = Family::<QueueLabels, Gauge>::default();
    let bytes = Family::<QueueLabels, Gauge>::default();
    let oldest = Family::<QueueLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let paused = Family::<QueueLabels, Gauge>::default();
    let [pushed, delivered, acked, retried] = std::array::from_fn(|_| Family::<QueueLabels, Counter>::default());
    for queue in queues {
        let labels = QueueLabels { queue_id: queue.id.to_string(), queue_name: queue.name.clone() };
        let metrics = &queue.metrics;
        messages.get_or_create(&labels).set(i64::try_from(metrics.backlog_count).unwrap_or(i64::MAX));
        bytes.get_or_create(&labels).set(i64::try_from(metrics.backlog_bytes).unwrap_or(i64::MAX));
        oldest.get_or_create(&labels).set(metrics.oldest_message_timestamp_ms as f64 / 1000.0);
        paused.get_or_create(&labels).set(i64::from(queue.delivery_paused));
        let count = counts.get(queue.id);
        pushed.get_or_create(&labels).inc_by(count.pushed);
        delivered.get_or_create(&labels).inc_by(count.delivered);
        acked.get_or_create(&labels).inc_by(count.acked);
        retried.get_or_create(&labels).inc_by(count.retried);
    }
    registry.register(
        "wharf_queue_backlog_messages",
        "Messages in the queue not yet acknowledged (ready, leased and delayed)",
        messages,
    );
    registry.register("wharf_queue_backlog_bytes", "Bytes of the bodies of the queue's backlog", bytes);
    registry.register(
        "wharf_queue_oldest_message_timestamp_seconds",
        "When the queue's oldest message was pushed (Unix time); 0 when the queue is empty",
        oldest,
    );
    registry.register("wharf_queue_delivery_paused", "1 while the queue's delivery is paused", paused);
    registry.register("wharf_queue_messages_pushed", "Messages pushed through this node since it started", pushed);
    registry.register(
        "wharf_queue_messages_delivered",
        "Messages pulled (leased) through this node since it started, redeliveries included",
        delivered,
    );
    registry.register("wharf_queue_messages_acked", "Messages acknowledged through this node since it started", acked);
    registry.register(
        "wharf_queue_messages_retried",
        "Messages a consumer asked to retry through this node since it started",
        retried,
    );
    registry
}

/// The backend's own figures, read on every scrape.
struct BackendStats(Arc<dyn Broker>);

impl std::fmt::Debug for BackendStats {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("BackendStats")
    }
}

impl Collector for BackendStats {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for stat in self.0.stats() {
            match stat.kind {
                StatKind::Counter => {
                    let counter = ConstCounter::new(stat.value);
                    let metric = encoder.encode_descriptor(stat.name, stat.help, None, counter.metric_type())?;
                    counter.encode(metric)?;
                }
                StatKind::Gauge => {
                    let gauge = ConstGauge::new(stat.value);
                    let metric = encoder.encode_descriptor(stat.name, stat.help, None, gauge.metric_type())?;
                    gauge.encode(metric)?;
                }
            }
        }
        Ok(())
    }
}
