//! The report: one row per workload × target × phase, ratios between the
//! targets, the machine it ran on; printed as a table and written as JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::stats::Percentiles;
use crate::workload::Workload;

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub kernel: String,
}

impl Machine {
    pub fn current() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map(|(_, model)| model.trim().to_owned())
            .unwrap_or_default();
        Self {
            nproc: std::thread::available_parallelism().map(usize::from).unwrap_or(0),
            cpu_model,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseRow {
    pub workload: String,
    pub target: String,
    pub phase: String,
    pub messages: u64,
    pub producers: usize,
    pub consumers: usize,
    pub push_batch: usize,
    pub pull_batch: usize,
    pub offered_rate: Option<u64>,
    pub elapsed_s: f64,
    pub msgs_per_s: f64,
    pub push_latency: Option<Percentiles>,
    pub pull_latency: Option<Percentiles>,
    pub ack_latency: Option<Percentiles>,
    /// Push-to-pull delay of each message (both and paced phases).
    pub delivery_latency: Option<Percentiles>,
    pub empty_pulls: u64,
    pub pushed: u64,
    pub acked: u64,
    pub duplicates: u64,
    /// Messages of the phase never acked (consume, both and paced phases).
    pub losses: u64,
    pub strays: u64,
    pub ack_shortfall: u64,
    /// Backlog the target reports once the phase ended.
    pub backlog_after: Option<u64>,
    pub server_cpu_s: Option<f64>,
    /// Server CPU seconds per wall second: 2.0 means both cores.
    pub server_cores: Option<f64>,
    /// CPU seconds of the PostgreSQL behind a Wharf server on the postgres
    /// backend (`--wharf-database-cpu`); not in `server_cpu_s`.
    pub database_cpu_s: Option<f64>,
    /// Server CPU plus database CPU per message completed, in µs.
    pub cpu_us_per_message: Option<f64>,
    /// Peak resident memory sampled every 100 ms during the phase (for
    /// PostgreSQL: all its processes, shared memory counted once).
    pub server_rss_peak_bytes: Option<u64>,
    /// The server's lifetime peak resident memory (VmHWM; single process only).
    pub server_vm_hwm_bytes: Option<u64>,
    /// Server resident memory added per queued message (produce phase, Wharf).
    pub rss_per_queued_message_bytes: Option<f64>,
    /// Seconds the server's threads (PostgreSQL: processes) were runnable
    /// but waited for a core: time lost to everything else on the machine.
    pub server_runqueue_wait_s: Option<f64>,
    pub bench_cpu_s: f64,
    pub bench_runqueue_wait_s: f64,
    /// Percent of the machine's CPU time the hypervisor gave to other
    /// guests during the phase (/proc/stat steal): on a shared host, runs
    /// with high steal are slower for reasons outside both targets.
    pub machine_steal_percent: Option<f64>,
    /// Group commits (write + fdatasync) the server's embedded engine made
    /// during the phase, from its `/metrics` (none for other backends).
    pub server_log_syncs: Option<u64>,
    /// Appends, about one per state-changing request, per group commit.
    pub server_log_appends_per_sync: Option<f64>,
    /// Percent of the phase the engine's log flusher spent writing and syncing.
    pub server_log_busy_percent: Option<f64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub workload: String,
    pub phase: String,
    pub wharf_msgs_per_s: f64,
    pub pgmq_msgs_per_s: f64,
    /// Wharf throughput divided by pgmq throughput.
    pub throughput_ratio: f64,
    pub wharf_delivery_p50_us: Option<u64>,
    pub pgmq_delivery_p50_us: Option<u64>,
    /// Server-side CPU per message, µs (see `PhaseRow::cpu_us_per_message`).
    pub wharf_cpu_us_per_message: Option<f64>,
    pub pgmq_cpu_us_per_message: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub started_at: String,
    pub machine: Machine,
    pub command: Vec<String>,
    pub workloads: Vec<Workload>,
    pub results: Vec<PhaseRow>,
    pub ratios: Vec<Ratio>,
}

/// Pairs the Wharf and pgmq rows of each workload and phase.
pub fn ratios(rows: &[PhaseRow]) -> Vec<Ratio> {
    let usable = |row: &&PhaseRow| row.error.is_none() && row.msgs_per_s > 0.0;
    rows.iter()
        .filter(|row| row.target == "wharf")
        .filter(usable)
        .filter_map(|wharf| {
            let pgmq = rows
                .iter()
                .filter(usable)
                .find(|row| row.target == "pgmq" && row.workload == wharf.workload && row.phase == wharf.phase)?;
            Some(Ratio {
                workload: wharf.workload.clone(),
                phase: wharf.phase.clone(),
                wharf_msgs_per_s: wharf.msgs_per_s,
                pgmq_msgs_per_s: pgmq.msgs_per_s,
                throughput_ratio: (wharf.msgs_per_s / pgmq.msgs_per_s * 100.0).round() / 100.0,
                wharf_delivery_p50_us: wharf.delivery_latency.as_ref().map(|p| p.p50_us),
                pgmq_delivery_p50_us: pgmq.delivery_latency.as_ref().map(|p| p.p50_us),
                wharf_cpu_us_per_message: wharf.cpu_us_per_message,
                pgmq_cpu_us_per_message: pgmq.cpu_us_per_message,
            })
        })
        .collect()
}

fn us(percentiles: &Option<Percentiles>) -> String {
    match percentiles {
        Some(p) => format!("{}/{}", short_us(p.p50_us), short_us(p.p99_us)),
        None => "-".to_owned(),
    }
}

/// Microseconds as µs below 10 ms, else ms.
fn short_us(value: u64) -> String {
    if value < 10_000 {
        format!("{value}µs")
    } else {
        format!("{}ms", value / 1000)
    }
}

fn optional<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}

/// The human table: one line per row, then the ratios. "wait" columns are
/// seconds runnable but waiting for a core (the machine is shared).
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<4} {:<6} {:<8} {:>9} {:>11} {:>15} {:>15} {:>15} {:>22} {:>4} {:>5} {:>11} {:>11} {:>7} {:>8} {:>9} {:>8} {:>8} {:>6}",
        "wl",
        "target",
        "phase",
        "messages",
        "msgs/s",
        "push p50/p99",
        "pull p50/p99",
        "ack p50/p99",
        "deliver p50/p99/p99.9",
        "dup",
        "lost",
        "srv cpu(s)",
        "db cpu(s)",
        "µs/msg",
        "srv wait",
        "srv rss",
        "bench s",
        "b. wait",
        "steal"
    );
    for row in &report.results {
        let delivery = row.delivery_latency.as_ref().map_or_else(
            || "-".to_owned(),
            |p| format!("{}/{}/{}", short_us(p.p50_us), short_us(p.p99_us), short_us(p.p999_us)),
        );
        let cpu = row
            .server_cpu_s
            .map_or_else(|| "-".to_owned(), |cpu| format!("{cpu:.1} ({:.2}c)", row.server_cores.unwrap_or(0.0)));
        let rss = optional(row.server_rss_peak_bytes.map(|bytes| format!("{}MiB", bytes / (1024 * 1024))));
        let _ = writeln!(
            out,
            "{:<4} {:<6} {:<8} {:>9} {:>11.0} {:>15} {:>15} {:>15} {:>22} {:>4} {:>5} {:>11} {:>11} {:>7} {:>8} {:>9} {:>8.1} {:>8.1} {:>6}",
            row.workload,
            row.target,
            row.phase,
            row.messages,
            row.msgs_per_s,
            us(&row.push_latency),
            us(&row.pull_latency),
            us(&row.ack_latency),
            delivery,
            row.duplicates,
            row.losses,
            cpu,
            optional(row.database_cpu_s.map(|cpu| format!("{cpu:.1}"))),
            optional(row.cpu_us_per_message.map(|cpu| format!("{cpu:.1}"))),
            optional(row.server_runqueue_wait_s.map(|wait| format!("{wait:.1}"))),
            rss,
            row.bench_cpu_s,
            row.bench_runqueue_wait_s,
            optional(row.machine_steal_percent.map(|steal| format!("{steal:.0}%")))
        );
        if let Some(per_message) = row.rss_per_queued_message_bytes {
            let _ = writeln!(out, "     server memory per queued message: {per_message:.0} bytes");
        }
        if let (Some(syncs), Some(group), Some(busy)) =
            (row.server_log_syncs, row.server_log_appends_per_sync, row.server_log_busy_percent)
        {
            let _ = writeln!(out, "     log: {syncs} group commits, {group:.1} requests each, flusher busy {busy:.0}%");
        }
        if let Some(error) = &row.error {
            let _ = writeln!(out, "     error: {error}");
        }
    }
    if !report.ratios.is_empty() {
        let _ = writeln!(out, "\nwharf ÷ pgmq (same machine, same run):");
        for ratio in &report.ratios {
            let _ = write!(
                out,
                "  {:<4} {:<8} {:>11.0} vs {:>9.0} msg/s = {:>6.2}×",
                ratio.workload, ratio.phase, ratio.wharf_msgs_per_s, ratio.pgmq_msgs_per_s, ratio.throughput_ratio
            );
            if let (Some(wharf), Some(pgmq)) = (ratio.wharf_delivery_p50_us, ratio.pgmq_delivery_p50_us) {
                let _ = write!(out, "   delivery p50 {} vs {}", short_us(wharf), short_us(pgmq));
            }
            if let (Some(wharf), Some(pgmq)) = (ratio.wharf_cpu_us_per_message, ratio.pgmq_cpu_us_per_message) {
                let _ = write!(out, "   server-side CPU {wharf:.1} vs {pgmq:.1} µs/msg");
            }
            out.push('\n');
        }
    }
    out
}
