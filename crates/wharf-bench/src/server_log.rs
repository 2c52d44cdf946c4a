//! The group commits a Wharf server on the embedded engine made during a
//! phase, read from its `GET /metrics` before and after: how many syncs,
//! how many requests each one served, how busy the log flusher was. They
//! say whether a phase was bound by the disk or by everything else.

use hyper::Method;

use crate::http::{Endpoint, HttpConn};

/// The engine's log counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogCounters {
    pub syncs: f64,
    pub appends: f64,
    pub busy_seconds: f64,
}

/// The log's work during a phase, as reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogWork {
    pub syncs: u64,
    /// Appends (about one per state-changing request) per sync: the mean
    /// size of a group commit.
    pub appends_per_sync: f64,
    /// Share of the phase the flusher spent writing and syncing.
    pub busy_percent: f64,
}

impl LogCounters {
    /// Reads the counters from the exposition text; `None` when the server
    /// reports no engine log (the postgres backend).
    pub fn parse(text: &str) -> Option<Self> {
        let sample = |name: &str| {
            text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.split(' ').next()?.parse().ok())
        };
        Some(Self {
            syncs: sample("wharf_engine_log_syncs_total")?,
            appends: sample("wharf_engine_log_synced_appends_total")?,
            busy_seconds: sample("wharf_engine_log_sync_seconds_total")?,
        })
    }

    /// What happened between `self` and `later`, over `elapsed_s` seconds.
    pub fn work_until(&self, later: &LogCounters, elapsed_s: f64) -> LogWork {
        let syncs = (later.syncs - self.syncs).max(0.0);
        let appends = (later.appends - self.appends).max(0.0);
        let busy = (later.busy_seconds - self.busy_seconds).max(0.0);
        LogWork {
            syncs: syncs as u64,
            appends_per_sync: if syncs > 0.0 { (appends / syncs * 100.0).round() / 100.0 } else { 0.0 },
            busy_percent: if elapsed_s > 0.0 { (busy / elapsed_s * 1000.0).round() / 10.0 } else { 0.0 },
        }
    }
}

/// Scrapes the server's `/metrics`. Any failure (an older server without
/// the endpoint, another backend) means no figures, never a failed run.
pub async fn read(endpoint: &std::sync::Arc<Endpoint>) -> Option<LogCounters> {
    let uri = endpoint.origin_uri("/metrics").ok()?;
    let mut conn = HttpConn::connect(endpoint.clone()).await.ok()?;
    let bytes = conn.send("metrics", Method::GET, &uri, bytes::Bytes::new()).await.ok()?;
    LogCounters::parse(std::str::from_utf8(&bytes).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_come_from_the_exposition_and_give_the_phase_work() {
        let before = "# TYPE wharf_engine_log_syncs counter\nwharf_engine_log_syncs_total 10.0\n\
            wharf_engine_log_synced_appends_total 15.0\nwharf_engine_log_sync_seconds_total 0.5\n# EOF\n";
        let after = "wharf_engine_log_syncs_total 110.0\nwharf_engine_log_synced_appends_total 265\n\
            wharf_engine_log_sync_seconds_total 0.75\n";
        let (before, after) = (LogCounters::parse(before), LogCounters::parse(after));
        let work = before.zip(after).map(|(before, after)| before.work_until(&after, 0.5));
        assert_eq!(work, Some(LogWork { syncs: 100, appends_per_sync: 2.5, busy_percent: 50.0 }));
        assert_eq!(LogCounters::parse("wharf_http_requests_total{operation=\"x\",status=\"200\"} 3\n# EOF\n"), None);
        // A longer name with the same start is another series.
        assert_eq!(LogCounters::parse("wharf_engine_log_syncs_total_x 1\n"), None);
    }
}
