//! The engine's figures for `GET /metrics`: the group commits of its log,
//! and the backlog it holds.

use wharf_core::stats::Stat;

use crate::Engine;

impl Engine {
    pub(crate) fn stats(&self) -> Vec<Stat> {
        let log = self.log.counters();
        let (queues, messages, bytes) = {
            let state = self.state();
            let (messages, bytes) = state.queues.values().fold((0u64, 0u64), |(messages, bytes), index| {
                let metrics = index.metrics();
                (messages + metrics.backlog_count, bytes + metrics.backlog_bytes)
            });
            (state.catalog.all_queues().len(), messages, bytes)
        };
        vec![
            Stat::counter(
                "wharf_engine_log_syncs",
                "Group commits written and fsync'd: one write and one fdatasync each, for every request that joined the group.",
                log.syncs as f64,
            ),
            Stat::counter(
                "wharf_engine_log_synced_appends",
                "Appends made durable by group commits (about one per request that changed state); divided by syncs, the mean group size.",
                log.appends as f64,
            ),
            Stat::counter("wharf_engine_log_synced_bytes", "Log bytes written and fsync'd by group commits.", log.bytes as f64),
            Stat::counter(
                "wharf_engine_log_sync_seconds",
                "Time the log flusher spent writing and syncing group commits; its rate is the share of time the flusher is busy.",
                log.busy_nanos as f64 / 1e9,
            ),
            Stat::gauge("wharf_engine_queues", "Queues in the data directory, over all accounts.", queues as f64),
            Stat::gauge(
                "wharf_engine_backlog_messages",
                "Messages not yet acknowledged or dead-lettered (ready, leased and delayed), over all queues.",
                messages as f64,
            ),
            Stat::gauge("wharf_engine_backlog_bytes", "Body bytes of those messages.", bytes as f64),
        ]
    }
}
