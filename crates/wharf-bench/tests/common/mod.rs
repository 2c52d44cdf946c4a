//! Checks shared by the smoke tests.

use wharf_bench::PhaseRow;

/// Every row finished, every message was acked exactly once, the queue
/// ended as expected and the measurements are present.
pub fn assert_clean(rows: &[PhaseRow], expected_rows: usize) {
    assert_eq!(rows.len(), expected_rows, "one row per workload and phase: {rows:#?}");
    for row in rows {
        let name = format!("{} {} {}", row.workload, row.target, row.phase);
        assert_eq!(row.error, None, "{name} failed");
        assert!(row.msgs_per_s > 0.0, "{name} measured no throughput");
        assert_eq!(row.duplicates, 0, "{name} saw duplicates");
        assert_eq!(row.losses, 0, "{name} lost messages");
        assert_eq!(row.strays, 0, "{name} saw bodies of another phase");
        assert_eq!(row.ack_shortfall, 0, "{name}: the target acked fewer than asked");
        if row.phase == "produce" {
            assert_eq!(row.pushed, row.messages, "{name} pushed everything");
            assert_eq!(row.backlog_after, Some(row.messages), "{name}: the queue holds every pushed message");
            assert!(row.push_latency.as_ref().is_some_and(|p| p.count > 0), "{name} has push latencies");
        } else {
            assert_eq!(row.acked, row.messages, "{name} acked everything");
            assert_eq!(row.backlog_after, Some(0), "{name}: the queue is empty afterwards");
            assert!(row.pull_latency.as_ref().is_some_and(|p| p.count > 0), "{name} has pull latencies");
        }
        if row.phase == "both" || row.phase == "paced" {
            let delivery = row.delivery_latency.as_ref().expect("delivery latency is measured");
            assert_eq!(delivery.count, row.messages, "{name}: one delivery latency per message");
        }
        assert!(row.server_cpu_s.is_some() && row.server_rss_peak_bytes.is_some(), "{name} has server resources");
    }
}
