//! What tasks measure: delivery bookkeeping shared by all tasks of a phase,
//! and per-task latency histograms merged at the end.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::body::BodyHeader;

/// Which sequence numbers of a phase were acked, and how often.
pub struct Tracker {
    phase: u8,
    total: u64,
    acked_times: Vec<AtomicU8>,
    pub pushed: AtomicU64,
    unique: AtomicU64,
    duplicates: AtomicU64,
    /// Bodies of another phase or out of range: leftovers of an earlier phase.
    strays: AtomicU64,
    /// Messages the server acked fewer than the bench asked it to.
    pub ack_shortfall: AtomicU64,
    last_ack_at: Mutex<Option<Instant>>,
}

impl Tracker {
    pub fn new(phase: u8, total: u64) -> Self {
        Self {
            phase,
            total,
            acked_times: (0..total).map(|_| AtomicU8::new(0)).collect(),
            pushed: AtomicU64::new(0),
            unique: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            strays: AtomicU64::new(0),
            ack_shortfall: AtomicU64::new(0),
            last_ack_at: Mutex::new(None),
        }
    }

    /// Records acked messages; notes the instant the last missing one arrives.
    pub fn record_acked(&self, headers: &[BodyHeader]) {
        for header in headers {
            let slot = (header.phase == self.phase).then(|| self.acked_times.get(header.seq as usize)).flatten();
            let Some(slot) = slot else {
                self.strays.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            if slot.fetch_add(1, Ordering::Relaxed) > 0 {
                self.duplicates.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if self.unique.fetch_add(1, Ordering::AcqRel) + 1 == self.total {
                if let Ok(mut last) = self.last_ack_at.lock() {
                    *last = Some(Instant::now());
                }
            }
        }
    }

    pub fn unique(&self) -> u64 {
        self.unique.load(Ordering::Acquire)
    }

    pub fn complete(&self) -> bool {
        self.unique() >= self.total
    }

    pub fn last_ack_at(&self) -> Option<Instant> {
        self.last_ack_at.lock().ok().and_then(|last| *last)
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates.load(Ordering::Relaxed)
    }

    pub fn strays(&self) -> u64 {
        self.strays.load(Ordering::Relaxed)
    }

    /// Sequence numbers never acked.
    pub fn missing(&self) -> u64 {
        self.total - self.unique().min(self.total)
    }
}

/// Latencies in microseconds, one histogram per request kind.
pub struct TaskStats {
    pub push: Histogram<u64>,
    pub pull: Histogram<u64>,
    pub ack: Histogram<u64>,
    /// Push-to-pull delay of each message (from the send time in its body).
    pub delivery: Histogram<u64>,
    pub empty_pulls: u64,
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 10 min at 3 significant digits: constant, valid bounds.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("constant histogram bounds are valid")
}

impl TaskStats {
    pub fn new() -> Self {
        Self { push: histogram(), pull: histogram(), ack: histogram(), delivery: histogram(), empty_pulls: 0 }
    }

    pub fn merge(&mut self, other: &TaskStats) {
        // Same bounds everywhere, so adding cannot fail.
        let _ = self.push.add(&other.push);
        let _ = self.pull.add(&other.pull);
        let _ = self.ack.add(&other.ack);
        let _ = self.delivery.add(&other.delivery);
        self.empty_pulls += other.empty_pulls;
    }
}

impl Default for TaskStats {
    fn default() -> Self {
        Self::new()
    }
}

pub fn record(histogram: &mut Histogram<u64>, elapsed: Duration) {
    histogram.saturating_record((elapsed.as_micros() as u64).max(1));
}

/// Percentiles of one histogram, in microseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl Percentiles {
    pub fn of(histogram: &Histogram<u64>) -> Option<Self> {
        (!histogram.is_empty()).then(|| Self {
            count: histogram.len(),
            mean_us: (histogram.mean() * 10.0).round() / 10.0,
            p50_us: histogram.value_at_quantile(0.50),
            p99_us: histogram.value_at_quantile(0.99),
            p999_us: histogram.value_at_quantile(0.999),
            max_us: histogram.max(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(phase: u8, seq: u64) -> BodyHeader {
        BodyHeader { phase, seq, sent_us: 0 }
    }

    #[test]
    fn tracker_counts_duplicates_strays_and_missing() {
        let tracker = Tracker::new(2, 4);
        tracker.record_acked(&[header(2, 0), header(2, 1), header(2, 1), header(1, 2), header(2, 9)]);
        assert_eq!((tracker.unique(), tracker.duplicates(), tracker.strays(), tracker.missing()), (2, 1, 2, 2));
        assert!(!tracker.complete() && tracker.last_ack_at().is_none());
        tracker.record_acked(&[header(2, 2), header(2, 3)]);
        assert!(tracker.complete() && tracker.last_ack_at().is_some());
        assert_eq!(tracker.missing(), 0);
    }
}
