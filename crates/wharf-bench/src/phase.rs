//! Runs one phase of a workload: opens a connection per task, starts the
//! clock, lets producers and consumers run, stops at the last push (produce)
//! or the N-th distinct ack (the others), and gathers what was measured.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinHandle;

use crate::body::{self, BodyHeader};
use crate::error::{BenchError, BenchResult};
use crate::pacer::Pacer;
use crate::procfs::{self, Watched};
use crate::stats::{self, TaskStats, Tracker};
use crate::target::{Queue, Session};
use crate::workload::{PhaseKind, Workload};

/// What the caller decides for every phase.
pub struct PhaseContext<'a> {
    pub label: String,
    pub body_bytes: usize,
    pub stall: Duration,
    pub progress: bool,
    pub server: Option<&'a Watched>,
    /// PostgreSQL behind a Wharf server on the postgres backend.
    pub database: Option<&'a Watched>,
}

/// Raw measurements of one phase, before they are turned into a report row.
pub struct PhaseMeasurement {
    pub elapsed: Duration,
    pub stats: TaskStats,
    pub pushed: u64,
    pub acked_unique: u64,
    pub missing: u64,
    pub duplicates: u64,
    pub strays: u64,
    pub ack_shortfall: u64,
    pub server_cpu_s: Option<f64>,
    pub database_cpu_s: Option<f64>,
    pub server_rss_peak: Option<u64>,
    /// The kernel's lifetime peak (VmHWM) of a single-process server.
    pub server_hwm: Option<u64>,
    /// Seconds the server's threads were runnable but waiting for a core.
    pub server_runqueue_wait_s: Option<f64>,
    pub bench_cpu_s: f64,
    pub bench_runqueue_wait_s: f64,
    /// Percent of the machine's CPU time the hypervisor stole meanwhile.
    pub machine_steal_percent: Option<f64>,
    /// The first task error, if a task failed (the phase then ends early).
    pub error: Option<String>,
}

/// State every task of a phase shares.
struct Shared {
    kind: PhaseKind,
    total: u64,
    push_batch: usize,
    rate: Option<u64>,
    start: Instant,
    start_wall_us: u64,
    next_seq: AtomicU64,
    /// Precise sleeps for paced producers (`rate` set).
    pacer: Option<Pacer>,
    stop: AtomicBool,
    /// Set by a task that hit an error: the phase ends early.
    failed: AtomicBool,
    tracker: Tracker,
}

struct TaskOutcome {
    stats: TaskStats,
    /// When a producer sent its last message.
    finished: Instant,
    /// Kept open until the phase's CPU is read: a PostgreSQL backend's CPU
    /// time vanishes from /proc when its connection closes.
    _session: Session,
}

async fn produce(shared: Arc<Shared>, mut session: Session) -> BenchResult<TaskOutcome> {
    let mut stats = TaskStats::new();
    let batch = shared.push_batch as u64;
    while !shared.stop.load(Ordering::Relaxed) {
        let seq = shared.next_seq.fetch_add(batch, Ordering::Relaxed);
        if seq >= shared.total {
            break;
        }
        let count = batch.min(shared.total - seq);
        let sent_us = match shared.rate {
            // The scheduled send time, so a late send counts as latency
            // instead of silently lowering the offered rate.
            Some(rate) => {
                let offset = Duration::from_micros(seq * 1_000_000 / rate);
                match &shared.pacer {
                    Some(pacer) => pacer.sleep_until(shared.start + offset).await,
                    None => tokio::time::sleep_until((shared.start + offset).into()).await,
                }
                shared.start_wall_us + offset.as_micros() as u64
            }
            None => body::now_us(),
        };
        let began = Instant::now();
        session.push(seq, count as usize, sent_us).await?;
        stats::record(&mut stats.push, began.elapsed());
        shared.tracker.pushed.fetch_add(count, Ordering::Relaxed);
    }
    Ok(TaskOutcome { stats, finished: Instant::now(), _session: session })
}

async fn consume(shared: Arc<Shared>, mut session: Session) -> BenchResult<TaskOutcome> {
    let mut stats = TaskStats::new();
    let mut headers: Vec<BodyHeader> = Vec::with_capacity(128);
    let measure_delivery = shared.kind != PhaseKind::Consume;
    while !shared.stop.load(Ordering::Relaxed) {
        headers.clear();
        let began = Instant::now();
        session.pull(&mut headers).await?;
        if headers.is_empty() {
            stats.empty_pulls += 1;
            session.idle().await;
            continue;
        }
        stats::record(&mut stats.pull, began.elapsed());
        if measure_delivery {
            let now = body::now_us();
            for header in &headers {
                stats.delivery.saturating_record(now.saturating_sub(header.sent_us).max(1));
            }
        }
        let began = Instant::now();
        let acked = session.ack().await?;
        stats::record(&mut stats.ack, began.elapsed());
        let asked = headers.len() as u64;
        if acked < asked {
            shared.tracker.ack_shortfall.fetch_add(asked - acked, Ordering::Relaxed);
        }
        shared.tracker.record_acked(&headers);
    }
    Ok(TaskOutcome { stats, finished: Instant::now(), _session: session })
}

fn progress_bar(context: &PhaseContext<'_>, total: u64) -> ProgressBar {
    if !context.progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let template = "{prefix:>22} [{bar:32}] {pos:>7}/{len:7} {per_sec:>12} eta {eta}";
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(context.label.clone());
    bar
}

pub async fn run(
    queue: &Queue,
    workload: &Workload,
    kind: PhaseKind,
    context: &PhaseContext<'_>,
) -> BenchResult<PhaseMeasurement> {
    let tag = kind.body_tag();
    let total = workload.messages;
    // Connections are opened before the clock starts.
    let mut producers = Vec::new();
    if kind.produces() {
        for _ in 0..workload.producers {
            producers.push(queue.session(tag, context.body_bytes, workload.pull_batch).await?);
        }
    }
    let mut consumers = Vec::new();
    if kind.consumes() {
        for _ in 0..workload.consumers {
            consumers.push(queue.session(tag, context.body_bytes, workload.pull_batch).await?);
        }
    }
    let bar = progress_bar(context, total);
    let cpu_before = context.server.map(Watched::cpu);
    let database_before = context.database.map(Watched::cpu);
    let bench_before = procfs::own().cpu();
    let machine_before = procfs::machine_times();
    let pacer = if kind == PhaseKind::Paced { Some(Pacer::start().map_err(BenchError::Pacer)?) } else { None };
    let shared = Arc::new(Shared {
        kind,
        total,
        push_batch: workload.push_batch,
        rate: if kind == PhaseKind::Paced { workload.rate } else { None },
        start: Instant::now(),
        start_wall_us: body::now_us(),
        next_seq: AtomicU64::new(0),
        pacer,
        stop: AtomicBool::new(false),
        failed: AtomicBool::new(false),
        tracker: Tracker::new(tag, total),
    });
    let producer_handles: Vec<_> =
        producers.into_iter().map(|session| spawn_task(&shared, produce(shared.clone(), session))).collect();
    let consumer_handles: Vec<_> =
        consumers.into_iter().map(|session| spawn_task(&shared, consume(shared.clone(), session))).collect();

    let mut rss_peak = context.server.map(Watched::rss);
    let mut last_progress = (0u64, Instant::now());
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let done = if kind == PhaseKind::Produce {
            shared.tracker.pushed.load(Ordering::Relaxed)
        } else {
            shared.tracker.unique()
        };
        bar.set_position(done);
        if let (Some(server), Some(peak)) = (context.server, rss_peak.as_mut()) {
            *peak = (*peak).max(server.rss());
        }
        let finished = if kind == PhaseKind::Produce {
            producer_handles.iter().all(JoinHandle::is_finished)
        } else {
            shared.tracker.complete()
        };
        if finished || shared.failed.load(Ordering::Relaxed) {
            break;
        }
        if done != last_progress.0 {
            last_progress = (done, Instant::now());
        } else if last_progress.1.elapsed() >= context.stall {
            break;
        }
    }
    let cpu_after = context.server.map(Watched::cpu);
    let database_after = context.database.map(Watched::cpu);
    let bench_after = procfs::own().cpu();
    let machine_after = procfs::machine_times();
    shared.stop.store(true, Ordering::Relaxed);
    bar.finish_and_clear();

    let mut stats = TaskStats::new();
    let mut error = None;
    let mut last_push = shared.start;
    for handle in producer_handles.into_iter().chain(consumer_handles) {
        match handle.await? {
            Ok(outcome) => {
                stats.merge(&outcome.stats);
                last_push = last_push.max(outcome.finished);
            }
            Err(failure) => {
                error.get_or_insert_with(|| failure.to_string());
            }
        }
    }
    let tracker = &shared.tracker;
    let end = match kind {
        PhaseKind::Produce => last_push,
        _ => tracker.last_ack_at().unwrap_or_else(Instant::now),
    };
    Ok(PhaseMeasurement {
        elapsed: end.saturating_duration_since(shared.start),
        stats,
        pushed: tracker.pushed.load(Ordering::Relaxed),
        acked_unique: tracker.unique(),
        missing: if kind.consumes() { tracker.missing() } else { 0 },
        duplicates: tracker.duplicates(),
        strays: tracker.strays(),
        ack_shortfall: tracker.ack_shortfall.load(Ordering::Relaxed),
        server_cpu_s: cpu_before.as_ref().zip(cpu_after.as_ref()).map(|(a, b)| procfs::cpu_seconds_between(a, b)),
        database_cpu_s: database_before.zip(database_after).map(|(a, b)| procfs::cpu_seconds_between(&a, &b)),
        server_runqueue_wait_s: cpu_before.zip(cpu_after).map(|(a, b)| procfs::runqueue_wait_seconds_between(&a, &b)),
        bench_cpu_s: procfs::cpu_seconds_between(&bench_before, &bench_after),
        bench_runqueue_wait_s: procfs::runqueue_wait_seconds_between(&bench_before, &bench_after),
        machine_steal_percent: machine_before
            .zip(machine_after)
            .and_then(|(before, after)| procfs::steal_percent_between(&before, &after)),
        server_rss_peak: rss_peak,
        server_hwm: context.server.filter(|server| !server.with_children).and_then(Watched::peak_rss),
        error,
    })
}

/// Spawns a task that flags the phase as failed when it returns an error.
fn spawn_task(
    shared: &Arc<Shared>,
    task: impl std::future::Future<Output = BenchResult<TaskOutcome>> + Send + 'static,
) -> JoinHandle<BenchResult<TaskOutcome>> {
    let shared = shared.clone();
    tokio::spawn(async move {
        let outcome = task.await;
        if outcome.is_err() {
            shared.failed.store(true, Ordering::Relaxed);
        }
        outcome
    })
}
