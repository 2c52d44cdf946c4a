//! Wharf's embedded storage engine.
//!
//! Durability contract: a change is acknowledged (the `Broker` call returns
//! `Ok`) only after the log records describing it are fsync'd. Leases are
//! soft state: after a crash, leased messages become visible again with their
//! delivery count kept, because every delivery is logged before the pull
//! answers.
//!
//! Layout of a data directory: `catalog.json` (metadata, replaced
//! atomically) and `NNNNNNNNNN.log` segments (messages and their state
//! changes). See `docs/durability.md`.

mod admin;
mod arrivals;
mod broker;
mod catalog;
mod compaction;
mod housekeeping;
mod index;
mod log;
mod messages;
mod monitoring;
pub mod record;
pub mod recovery;
mod redrive;
mod segment;
mod state;
mod tokens;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use wharf_core::lease::HandleCodec;
use wharf_core::{Clock, Limits, WharfResult};

pub use recovery::RecoveryReport;

use crate::log::Log;
use crate::record::Record;
use crate::state::State;

/// How often the background sweeper runs lease expiry, delays, retention
/// and segment deletion.
const SWEEP_INTERVAL_MS: u64 = 100;

#[derive(Clone)]
pub struct EngineConfig {
    pub data_dir: PathBuf,
    pub limits: Limits,
    pub clock: Arc<dyn Clock>,
}

/// Knobs with good defaults that tests and benchmarks change.
#[derive(Debug, Clone, Copy)]
pub struct EngineTuning {
    /// Size of a log segment, reserved on disk when it is created.
    pub segment_bytes: u64,
}

impl Default for EngineTuning {
    fn default() -> Self {
        Self { segment_bytes: 64 * 1024 * 1024 }
    }
}

pub use segment::Faults;

pub struct Engine {
    limits: Limits,
    clock: Arc<dyn Clock>,
    codec: HandleCodec,
    state: Mutex<State>,
    log: Log,
    data_dir: PathBuf,
    recovery: RecoveryReport,
    sweeper: Mutex<Option<tokio::task::JoinHandle<()>>>,
    last_compaction: Mutex<Option<std::time::Instant>>,
    /// Wakes long-polling pulls when a queue gets deliverable messages.
    arrivals: arrivals::Arrivals,
    /// Tokens by secret hash, for authenticating requests without the
    /// state lock (see `tokens`).
    tokens: tokens::TokenIndex,
    /// Held open for the engine's life: the data directory's lock.
    _directory_lock: std::fs::File,
}

impl Engine {
    /// Opens (or creates) a data directory, recovers its state and starts the
    /// background sweeper on the current Tokio runtime.
    pub async fn open(config: EngineConfig) -> WharfResult<Arc<Engine>> {
        Self::open_tuned(config, EngineTuning::default()).await
    }

    /// [`Engine::open`] with non-default tuning.
    pub async fn open_tuned(config: EngineConfig, tuning: EngineTuning) -> WharfResult<Arc<Engine>> {
        let engine = Arc::new(Self::open_without_sweeper(config, tuning)?);
        let weak = Arc::downgrade(&engine);
        let handle = tokio::spawn(async move {
            let mut interval = tokio::time::interval(std::time::Duration::from_millis(SWEEP_INTERVAL_MS));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(engine) = weak.upgrade() else { break };
                if let Err(error) = engine.sweep().await {
                    tracing::warn!(%error, "sweeper pass failed");
                }
            }
        });
        *lock(&engine.sweeper) = Some(handle);
        Ok(engine)
    }

    /// Opens a data directory without any background task; the owner calls
    /// `tick` to run due work. Used by tests that control every step.
    pub fn open_without_sweeper(config: EngineConfig, tuning: EngineTuning) -> WharfResult<Engine> {
        std::fs::create_dir_all(&config.data_dir).map_err(|error| wharf_core::WharfError::StorageFailed {
            detail: format!("creating {}: {error}", config.data_dir.display()),
        })?;
        let directory_lock = segment::lock_directory(&config.data_dir).map_err(|error| {
            let detail = if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
                format!("{} is in use by another wharf process", config.data_dir.display())
            } else {
                format!("locking {}: {error}", config.data_dir.display())
            };
            wharf_core::WharfError::StorageFailed { detail }
        })?;
        let now = config.clock.now_ms();
        let recovered = recovery::recover(&config.data_dir, now, tuning.segment_bytes)?;
        for damage in &recovered.report.damage {
            tracing::warn!(
                segment = damage.segment,
                offset = damage.offset,
                dropped_bytes = damage.dropped_bytes,
                reason = %damage.reason,
                "recovery dropped damaged log data"
            );
        }
        tracing::info!(
            segments = recovered.report.segments,
            records = recovered.report.records,
            "recovered data directory"
        );
        let faults = Arc::new(Faults::default());
        let log =
            Log::open(&config.data_dir, recovered.append_segment, recovered.append_len, tuning.segment_bytes, faults)?;
        let codec = HandleCodec::new(recovered.state.catalog.handle_key);
        let tokens = tokens::TokenIndex::default();
        tokens.replace(&recovered.state.catalog);
        Ok(Engine {
            limits: config.limits,
            clock: config.clock,
            codec,
            state: Mutex::new(recovered.state),
            log,
            data_dir: config.data_dir,
            recovery: recovered.report,
            sweeper: Mutex::new(None),
            last_compaction: Mutex::new(None),
            arrivals: arrivals::Arrivals::default(),
            tokens,
            _directory_lock: directory_lock,
        })
    }

    /// Switches for injecting storage faults (tests only).
    #[doc(hidden)]
    pub fn faults(&self) -> &Faults {
        self.log.faults()
    }

    /// Runs the whole background pass now, including copying the oldest
    /// segment forward regardless of when that last ran; returns how many
    /// messages were copied. For tests and maintenance.
    pub async fn compact_now(&self) -> WharfResult<usize> {
        let mut copied = self.sweep().await?;
        copied += self.copy_forward_oldest(true).await?;
        copied += self.sweep().await?;
        Ok(copied)
    }

    /// Segment files currently on disk.
    pub fn segment_count(&self) -> usize {
        segment::list_segments(&self.data_dir).map_or(0, |segments| segments.len())
    }

    /// What recovery found when this engine was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.recovery
    }

    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Logs records and applies them to the state; the caller waits for the
    /// returned LSN after releasing the state lock.
    fn commit(&self, state: &mut State, records: &[Record], now_ms: u64) -> WharfResult<u64> {
        // Every sequence number these records mint must be below the
        // catalog's durable floor before the log can hold it.
        self.reserve_seqs(state)?;
        let mut bodies = Vec::new();
        let lsn = self.log.append(records, &mut bodies)?;
        let mut bodies = bodies.into_iter();
        for record in records {
            let body = if matches!(record, Record::Push { .. }) { bodies.next() } else { None };
            state.apply(record, body, now_ms);
        }
        Ok(lsn)
    }

    /// Whether a pull of the queue would find a message now.
    pub(crate) fn has_deliverable(&self, queue: wharf_core::QueueId) -> bool {
        let state = self.state();
        let now_ms = self.now_ms();
        state.queues.get(&queue).is_some_and(|index| !index.first_ready(1, now_ms).is_empty())
    }

    /// Wakes whoever long-polls the queue; cheap when nobody does.
    pub(crate) fn announce_arrivals(&self, queue: wharf_core::QueueId) {
        self.arrivals.announce(queue);
    }

    /// Fails a write early once the log is poisoned, before touching state.
    fn ensure_writable(&self) -> WharfResult<()> {
        match self.log.failure() {
            Some(detail) => Err(wharf_core::WharfError::StorageFailed { detail }),
            None => Ok(()),
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(handle) = lock(&self.sweeper).take() {
            handle.abort();
        }
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // State updates are applied record by record; a panic mid-way (a bug)
    // would leave at worst one record unapplied, which recovery redoes.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
