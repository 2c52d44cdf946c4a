//! Due work: delayed messages becoming visible, retention, expired leases
//! (a failed delivery), dead-lettering, and deleting segments nothing needs.
//! Run lazily on every access to a queue and by the sweeper for all queues.

use wharf_core::model::{ConsumerKind, ConsumerSettings, QueueSettings};
use wharf_core::{QueueId, WharfResult};

use crate::catalog::{CatalogChange, QueueMeta};
use crate::record::Record;
use crate::state::State;
use crate::Engine;

/// Queues the sweeper brings up to date per hold of the state lock (a few
/// tens of microseconds of work).
const SWEEP_QUEUES_PER_LOCK: usize = 128;

impl Engine {
    /// Brings one queue up to date with the clock. Returns the LSN to wait
    /// for if anything was logged.
    pub(crate) fn housekeep_queue(&self, state: &mut State, queue: QueueId, now_ms: u64) -> WharfResult<Option<u64>> {
        let Some(meta) = state.catalog.all_queues().get(&queue) else { return Ok(None) };
        let retention_ms = meta.settings.message_retention_period as u64 * 1000;
        let Some(index) = state.queues.get_mut(&queue) else { return Ok(None) };
        index.promote(now_ms);
        let expiring = index.received_by(now_ms.saturating_sub(retention_ms));
        let expired_leases: Vec<u64> =
            index.expired_leases(now_ms).into_iter().filter(|seq| !expiring.contains(seq)).collect();
        if expiring.is_empty() && expired_leases.is_empty() {
            index.settle(retention_ms);
            return Ok(None);
        }
        let mut records: Vec<Record> = expiring.into_iter().map(|seq| Record::Delete { queue, seq }).collect();
        for seq in expired_leases {
            records.push(self.failed_delivery(state, queue, seq, None, now_ms)?);
        }
        let lsn = self.commit(state, &records, now_ms)?;
        if let Some(index) = state.queues.get_mut(&queue) {
            index.settle(retention_ms);
        }
        Ok(Some(lsn))
    }

    /// The record for a failed delivery (lease expired or retried): back to
    /// the queue after the retry delay, or, once `attempts > max_retries`, to
    /// the dead letter queue or gone.
    pub(crate) fn failed_delivery(
        &self,
        state: &mut State,
        queue: QueueId,
        seq: u64,
        delay_seconds: Option<u32>,
        now_ms: u64,
    ) -> WharfResult<Record> {
        let (settings, dead_letter, account) = match state.catalog.all_queues().get(&queue) {
            Some(meta) => (consumer_settings(meta), dead_letter_name(meta), meta.account),
            None => return Ok(Record::Delete { queue, seq }),
        };
        let attempts = state.queues.get(&queue).and_then(|index| index.get(seq)).map_or(0, |entry| entry.attempts());
        if attempts <= settings.max_retries {
            let delay = delay_seconds.unwrap_or(settings.retry_delay) as u64;
            return Ok(Record::Requeue { queue, seq, visible_at_ms: now_ms + delay * 1000 });
        }
        let Some(name) = dead_letter else { return Ok(Record::Delete { queue, seq }) };
        let to_queue = self.dead_letter_queue(state, account, &name, now_ms)?;
        Ok(Record::Move { queue, seq, to_queue, new_seq: state.allocate_seq() })
    }

    /// Finds the dead letter queue by name, creating it if missing.
    fn dead_letter_queue(
        &self,
        state: &mut State,
        account: wharf_core::AccountId,
        name: &str,
        now_ms: u64,
    ) -> WharfResult<QueueId> {
        if let Some(existing) = state.catalog.queue_by_name(account, name) {
            return Ok(existing.id);
        }
        let id = QueueId::random();
        let meta = QueueMeta {
            id,
            account,
            name: name.to_string(),
            created_on_ms: now_ms,
            modified_on_ms: now_ms,
            settings: QueueSettings::default(),
            consumer: None,
            last_purge_ms: None,
        };
        self.change_catalog_locked(state, vec![CatalogChange::put_queue(meta)])?;
        tracing::info!(queue = %id, name, "created dead letter queue");
        Ok(id)
    }

    /// One pass over every queue, then segment deletion and, if due,
    /// copying forward. Returns how many messages were copied forward.
    pub(crate) async fn sweep(&self) -> WharfResult<usize> {
        if self.log.failure().is_some() {
            return Ok(0);
        }
        let queues: Vec<QueueId> = self.state().queues.keys().copied().collect();
        let mut lsn = None;
        // A few queues per turn of the state lock, which every push and pull
        // also takes: one pass over 4,000 queues holding it throughout
        // doubled the push p99 (1.1 -> 2.1 ms) every 100 ms.
        for some in queues.chunks(SWEEP_QUEUES_PER_LOCK) {
            let mut state = self.state();
            let now_ms = self.now_ms();
            for &queue in some {
                // A queue whose next due time is still ahead has nothing to
                // do: passed by without looking up its settings or sets.
                if state.queues.get(&queue).is_some_and(|index| now_ms < index.quiet_until_ms()) {
                    continue;
                }
                if let Some(logged) = self.housekeep_queue(&mut state, queue, now_ms)? {
                    lsn = Some(logged);
                }
            }
        }
        if let Some(lsn) = lsn {
            self.log.wait_durable(lsn).await?;
        }
        self.delete_dead_segments().await?;
        let copied = self.copy_forward_oldest(false).await?;
        if copied > 0 {
            self.delete_dead_segments().await?;
        }
        Ok(copied)
    }

    /// Deletes, oldest first, segments whose every message is gone. Only
    /// segments below the one being appended to when everything buffered was
    /// durable qualify, so no buffered write can recreate a deleted file.
    async fn delete_dead_segments(&self) -> WharfResult<()> {
        let (lsn, current) = self.log.position();
        self.log.wait_durable(lsn).await?;
        let dead = self.state().take_dead_segments(current);
        for segment in dead {
            match self.log.remove_segment(segment) {
                Ok(()) => tracing::debug!(segment, "deleted segment"),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => tracing::warn!(segment, %error, "could not delete segment"),
            }
        }
        Ok(())
    }
}

pub(crate) fn consumer_settings(meta: &QueueMeta) -> ConsumerSettings {
    match &meta.consumer {
        Some(consumer) => consumer.settings,
        None => ConsumerSettings::defaults_for(&ConsumerKind::HttpPull),
    }
}

fn dead_letter_name(meta: &QueueMeta) -> Option<String> {
    meta.consumer.as_ref().and_then(|consumer| consumer.dead_letter_queue.clone())
}
