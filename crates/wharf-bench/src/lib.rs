//! `wharf-bench`: drives a running Wharf server over HTTP, and the pgmq
//! pattern on the local PostgreSQL, with the same named workloads, and
//! reports both side by side. [`run`] is the whole command, so the `wharf`
//! CLI can expose it as `wharf bench` by embedding [`BenchArgs`].

mod args;
mod body;
mod error;
mod http;
mod pacer;
mod pgmq;
mod phase;
mod procfs;
mod report;
mod server_log;
mod stats;
mod target;
mod wharf;
mod workload;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use args::{BenchArgs, TargetChoice, WorkloadChoice};
pub use error::{BenchError, BenchResult};
pub use report::{PhaseRow, Ratio, Report};
pub use stats::Percentiles;
pub use target::TargetKind;

use phase::{PhaseContext, PhaseMeasurement};
use procfs::Watched;
use stats::Percentiles as P;
use target::{Connection, Queue};
use workload::{PhaseKind, Workload};

/// Runs the selected workloads against the selected targets, prints the
/// table to stdout, writes the JSON report if asked, and returns the report.
pub async fn run(args: BenchArgs) -> BenchResult<Report> {
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let workloads = workload::selected(&args);
    let mut targets = Vec::new();
    for kind in args.target.kinds() {
        targets.push(connect(kind, &args)?);
    }
    let mut results = Vec::new();
    for workload in &workloads {
        for (kind, connection, watched) in &targets {
            // A target that cannot even set up (server down, bad credentials)
            // fails its rows, not the other target's.
            match run_workload(*kind, connection, watched, workload, &args).await {
                Ok(rows) => results.extend(rows),
                Err(failure) => results.push(PhaseRow {
                    workload: workload.name.to_owned(),
                    target: kind.name().to_owned(),
                    phase: "setup".to_owned(),
                    error: Some(failure.to_string()),
                    ..PhaseRow::default()
                }),
            }
        }
    }
    let report = Report {
        started_at,
        machine: report::Machine::current(),
        command: std::env::args().collect(),
        workloads,
        ratios: report::ratios(&results),
        results,
    };
    println!("{}", report::table(&report));
    if let Some(path) = &args.json_out {
        let write = |source| BenchError::WriteReport { path: path.display().to_string(), source };
        let json = serde_json::to_vec_pretty(&report).map_err(|source| write(source.into()))?;
        std::fs::write(path, json).map_err(write)?;
    }
    Ok(report)
}

fn port_of(url: &str, default: u16) -> u16 {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    host_port.rsplit_once(':').and_then(|(_, port)| port.parse().ok()).unwrap_or(default)
}

/// The processes whose CPU and memory a target's rows count.
#[derive(Default)]
struct WatchedProcesses {
    /// The server the bench talks to (for pgmq: PostgreSQL).
    server: Option<Watched>,
    /// The database behind a Wharf server on the postgres backend.
    database: Option<Watched>,
}

/// PostgreSQL, its backends included, as --postgres-pid or --database-url name it.
fn postgres(args: &BenchArgs) -> Option<Watched> {
    let pid = args.postgres_pid.or_else(|| procfs::pid_listening_on(port_of(&args.database_url, 5432)))?;
    Some(Watched { pid, with_children: true })
}

fn connect(kind: TargetKind, args: &BenchArgs) -> BenchResult<(TargetKind, Connection, WatchedProcesses)> {
    match kind {
        TargetKind::Wharf => {
            let account = args.account.clone().ok_or(BenchError::MissingCredential {
                what: "account id",
                flag: "--account",
                env: "WHARF_ACCOUNT_ID",
            })?;
            let token = args.token.clone().ok_or(BenchError::MissingCredential {
                what: "api token",
                flag: "--token",
                env: "WHARF_API_TOKEN",
            })?;
            let endpoint = Arc::new(http::Endpoint::parse(&args.url, &token)?);
            let pid = args.server_pid.or_else(|| procfs::pid_listening_on(port_of(&args.url, 80)));
            let connection = Connection::Wharf {
                endpoint,
                account,
                pull_wait_ms: args.pull_wait_ms,
                empty_poll_ms: args.empty_poll_ms,
            };
            let watched = WatchedProcesses {
                server: pid.map(|pid| Watched { pid, with_children: false }),
                database: if args.wharf_database_cpu { postgres(args) } else { None },
            };
            Ok((kind, connection, watched))
        }
        TargetKind::Pgmq => {
            let connection =
                Connection::Pgmq { database_url: args.database_url.clone(), empty_poll_ms: args.empty_poll_ms };
            Ok((kind, connection, WatchedProcesses { server: postgres(args), database: None }))
        }
    }
}

/// A queue name no other run uses: workload, pid and clock.
fn queue_name(workload: &Workload) -> String {
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_millis()).unwrap_or(0);
    format!("wharf-bench-{}-{}-{}", workload.name, std::process::id(), millis % 1_000_000_000)
}

async fn run_workload(
    kind: TargetKind,
    connection: &Connection,
    watched: &WatchedProcesses,
    workload: &Workload,
    args: &BenchArgs,
) -> BenchResult<Vec<PhaseRow>> {
    let server = watched.server.as_ref();
    let queue = Queue::create(connection, &queue_name(workload)).await?;
    let mut rows = Vec::new();
    for phase in &workload.phases {
        let context = PhaseContext {
            label: format!("{} {} {}", workload.name, kind.name(), phase.name()),
            body_bytes: args.body_bytes,
            stall: Duration::from_secs(args.stall_secs.max(1)),
            progress: !args.quiet,
            server,
            database: watched.database.as_ref(),
        };
        let rss_before = server.map(Watched::rss);
        let log_before = server_log_counters(connection).await;
        let mut row = match phase::run(&queue, workload, *phase, &context).await {
            Ok(measured) => row_of(kind, workload, *phase, measured),
            Err(failure) => PhaseRow { error: Some(failure.to_string()), ..base_row(kind, workload, *phase) },
        };
        if let (Some(before), Some(after)) = (log_before, server_log_counters(connection).await) {
            let work = before.work_until(&after, row.elapsed_s);
            row.server_log_syncs = Some(work.syncs);
            row.server_log_appends_per_sync = Some(work.appends_per_sync);
            row.server_log_busy_percent = Some(work.busy_percent);
        }
        row.backlog_after = queue.backlog().await.ok();
        if let (PhaseKind::Produce, TargetKind::Wharf, Some(before), Some(server)) = (phase, kind, rss_before, server) {
            let added = server.rss().saturating_sub(before) as f64;
            row.rss_per_queued_message_bytes = Some((added / workload.messages as f64 * 10.0).round() / 10.0);
        }
        let failed = row.error.is_some();
        if !args.quiet {
            eprintln!("{}: {:.0} msg/s{}", context.label, row.msgs_per_s, if failed { " (failed)" } else { "" });
        }
        rows.push(row);
        if failed {
            break;
        }
    }
    if let Err(failure) = queue.delete().await {
        eprintln!("warning: cannot delete the bench queue: {failure}");
    }
    Ok(rows)
}

/// The engine log's counters of a Wharf server, when it reports them.
async fn server_log_counters(connection: &Connection) -> Option<server_log::LogCounters> {
    match connection {
        Connection::Wharf { endpoint, .. } => server_log::read(endpoint).await,
        Connection::Pgmq { .. } => None,
    }
}

fn base_row(kind: TargetKind, workload: &Workload, phase: PhaseKind) -> PhaseRow {
    PhaseRow {
        workload: workload.name.to_owned(),
        target: kind.name().to_owned(),
        phase: phase.name().to_owned(),
        messages: workload.messages,
        producers: if phase.produces() { workload.producers } else { 0 },
        consumers: if phase.consumes() { workload.consumers } else { 0 },
        push_batch: workload.push_batch,
        pull_batch: workload.pull_batch,
        offered_rate: if phase == PhaseKind::Paced { workload.rate } else { None },
        ..PhaseRow::default()
    }
}

fn row_of(kind: TargetKind, workload: &Workload, phase: PhaseKind, measured: PhaseMeasurement) -> PhaseRow {
    let seconds = measured.elapsed.as_secs_f64();
    let completed = if phase == PhaseKind::Produce { measured.pushed } else { measured.acked_unique };
    PhaseRow {
        elapsed_s: (seconds * 1000.0).round() / 1000.0,
        msgs_per_s: if seconds > 0.0 { (completed as f64 / seconds).round() } else { 0.0 },
        push_latency: P::of(&measured.stats.push),
        pull_latency: P::of(&measured.stats.pull),
        ack_latency: P::of(&measured.stats.ack),
        delivery_latency: P::of(&measured.stats.delivery),
        empty_pulls: measured.stats.empty_pulls,
        pushed: measured.pushed,
        acked: measured.acked_unique,
        duplicates: measured.duplicates,
        losses: measured.missing,
        strays: measured.strays,
        ack_shortfall: measured.ack_shortfall,
        server_cpu_s: measured.server_cpu_s,
        server_cores: measured
            .server_cpu_s
            .filter(|_| seconds > 0.0)
            .map(|cpu| (cpu / seconds * 100.0).round() / 100.0),
        database_cpu_s: measured.database_cpu_s,
        cpu_us_per_message: cpu_per_message(&measured, completed),
        server_rss_peak_bytes: measured.server_rss_peak,
        server_vm_hwm_bytes: measured.server_hwm,
        server_runqueue_wait_s: measured.server_runqueue_wait_s.map(|wait| (wait * 1000.0).round() / 1000.0),
        bench_cpu_s: (measured.bench_cpu_s * 100.0).round() / 100.0,
        bench_runqueue_wait_s: (measured.bench_runqueue_wait_s * 1000.0).round() / 1000.0,
        machine_steal_percent: measured.machine_steal_percent.map(|steal| (steal * 10.0).round() / 10.0),
        error: measured.error,
        ..base_row(kind, workload, phase)
    }
}

/// Server-side CPU (the server, and its database if counted) per message
/// completed, in µs: what each message costs the machine apart from the
/// load generator.
fn cpu_per_message(measured: &PhaseMeasurement, completed: u64) -> Option<f64> {
    let server = measured.server_cpu_s?;
    let total = server + measured.database_cpu_s.unwrap_or(0.0);
    (completed > 0).then(|| (total / completed as f64 * 1e6 * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::port_of;

    #[test]
    fn ports_come_from_urls_or_defaults() {
        assert_eq!(port_of("http://127.0.0.1:8787/client/v4", 80), 8787);
        assert_eq!(port_of("postgres://postgres@127.0.0.1:5433/test", 5432), 5433);
        assert_eq!(port_of("postgres://postgres@localhost/test", 5432), 5432);
    }
}
