//! Figures a backend reports about itself for monitoring (`GET /metrics`):
//! named counters and gauges read at scrape time, with no dependency on any
//! monitoring library.

/// Whether a figure only ever grows (a count of events since start) or
/// goes up and down (a level now).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatKind {
    Counter,
    Gauge,
}

/// One figure. `name` is a Prometheus metric name without the `_total`
/// suffix of counters, which the exposition adds.
#[derive(Debug, Clone, PartialEq)]
pub struct Stat {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: StatKind,
    pub value: f64,
}

impl Stat {
    pub fn counter(name: &'static str, help: &'static str, value: f64) -> Self {
        Self { name, help, kind: StatKind::Counter, value }
    }

    pub fn gauge(name: &'static str, help: &'static str, value: f64) -> Self {
        Self { name, help, kind: StatKind::Gauge, value }
    }
}
