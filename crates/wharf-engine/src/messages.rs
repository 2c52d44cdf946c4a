//! Message operations: push, pull, ack and retry, extend, preview, peek,
//! purge, metrics. Each one changes state and logs records under the state
//! lock, then waits for durability (and reads bodies) after releasing it.

use std::collections::{BTreeMap, HashSet};

use wharf_core::lease::{HandleClaims, HandleKind, HandleProblem};
use wharf_core::model::{
    AckOutcome, ConsumerKind, ExtendOutcome, MessageView, NewMessage, PullRequest, PullResult, QueueMetrics,
    RetryRequest,
};
use wharf_core::{validate, AccountId, MessageId, QueueId, WharfError, WharfResult};

use crate::housekeeping::consumer_settings;
use crate::index::Entry;
use crate::record::Record;
use crate::state::State;
use crate::Engine;

const GONE: &str = "message is no longer in the queue (already acknowledged, expired or purged)";
const NOT_CURRENT: &str = "lease is not the current delivery of this message (expired or redelivered)";
const NOT_LEASED: &str = "previewed messages are not leased; there is nothing to retry";

/// A message picked under the lock, whose body is read after it.
struct Picked {
    seq: u64,
    id: MessageId,
    entry: Entry,
}

impl Engine {
    pub(crate) async fn push_messages(
        &self,
        account: AccountId,
        queue: QueueId,
        messages: Vec<NewMessage>,
    ) -> WharfResult<QueueMetrics> {
        validate::messages(&messages, &self.limits)?;
        self.ensure_writable()?;
        let (lsn, metrics) = {
            let mut state = self.state();
            let now_ms = self.now_ms();
            let default_delay = state.catalog.queue(account, queue)?.settings.delivery_delay;
            let backlog_bytes = state.queues.get(&queue).map_or(0, |index| index.backlog_bytes());
            let incoming: u64 = messages.iter().map(|message| message.body.len() as u64).sum();
            validate::backlog_room(backlog_bytes, incoming, &self.limits)?;
            let records: Vec<Record> = messages
                .into_iter()
                .map(|message| {
                    let delay_ms = message.delay_seconds.unwrap_or(default_delay) as u64 * 1000;
                    Record::Push {
                        queue,
                        seq: state.allocate_seq(),
                        timestamp_ms: now_ms,
                        visible_at_ms: now_ms + delay_ms,
                        attempts: 0,
                        content_type: message.content_type,
                        body: message.body,
                    }
                })
                .collect();
            let lsn = self.commit(&mut state, &records, now_ms)?;
            (lsn, metrics_of(&state, queue))
        };
        // A pull woken now answers after its own delivery record is durable,
        // which comes after this push's records in the log.
        self.announce_arrivals(queue);
        self.log.wait_durable(lsn).await?;
        Ok(metrics)
    }

    pub(crate) async fn pull_messages(
        &self,
        account: AccountId,
        queue: QueueId,
        request: PullRequest,
    ) -> WharfResult<PullResult> {
        let (mut picked, lsn, metrics) = {
            let mut state = self.state();
            let now_ms = self.now_ms();
            let meta = state.catalog.queue(account, queue)?;
            let consumer = meta.consumer.as_ref().filter(|consumer| consumer.kind == ConsumerKind::HttpPull);
            let Some(consumer) = consumer else { return Err(WharfError::PullConsumerMissing) };
            if meta.settings.delivery_paused {
                return Err(WharfError::DeliveryPaused);
            }
            let batch_size = request.batch_size.unwrap_or(consumer.settings.batch_size);
            validate::pull_batch_size(batch_size, &self.limits)?;
            let timeout_ms = request.visibility_timeout_ms.unwrap_or(consumer.settings.visibility_timeout_ms);
            validate::visibility_timeout(timeout_ms, &self.limits)?;
            self.ensure_writable()?;
            let housekeeping = self.housekeep_queue(&mut state, queue, now_ms)?;
            let leased = match state.queues.get_mut(&queue) {
                Some(index) => index.lease_ready(batch_size as usize, now_ms, now_ms + timeout_ms),
                None => Vec::new(),
            };
            let picked = pick(&state, queue, &leased);
            let records: Vec<Record> = picked
                .iter()
                .zip(&leased)
                .map(|(message, &seq)| Record::Deliver { queue, seq, attempts: message.entry.attempts() })
                .collect();
            // A pull that leased nothing has no delivery to make durable:
            // it waits only for what its own housekeeping logged, not for
            // everyone else's appends (a long-polling consumer's empty pull
            // used to sit through a whole group commit before it could start
            // waiting for arrivals).
            let lsn = if records.is_empty() { housekeeping } else { Some(self.commit(&mut state, &records, now_ms)?) };
            (picked, lsn, metrics_of(&state, queue))
        };
        // Bodies already in the segment files are read, checked and given
        // their lease ids while the delivery records sync, instead of after:
        // the answer still waits for the sync. Bodies pushed moments ago may
        // still be in the log's buffer; those are read once it is durable.
        let written = picked.iter().all(|message| {
            let location = message.entry.location;
            self.log.is_written(location.segment, u64::from(location.offset) + u64::from(message.entry.body_len))
        });
        let read_early = if written {
            Some(self.read_views(queue, std::mem::take(&mut picked), HandleKind::Lease).await?)
        } else {
            None
        };
        if let Some(lsn) = lsn {
            self.log.wait_durable(lsn).await?;
        }
        let messages = match read_early {
            Some(messages) => messages,
            None => self.read_views(queue, picked, HandleKind::Lease).await?,
        };
        Ok(PullResult { messages, metrics })
    }

    pub(crate) async fn ack_messages(
        &self,
        account: AccountId,
        queue: QueueId,
        acks: &[String],
        retries: &[RetryRequest],
    ) -> WharfResult<AckOutcome> {
        for retry in retries {
            if let Some(delay) = retry.delay_seconds {
                validate::delay_seconds(delay, &self.limits)?;
            }
        }
        let mut outcome = AckOutcome::default();
        // Lease ids are checked (an HMAC each) before the state lock, which
        // every other request of the engine waits for.
        let ack_claims: Vec<_> = acks.iter().map(|lease| self.claims_of(lease, queue, HandleKind::Lease)).collect();
        let retry_claims: Vec<_> =
            retries.iter().map(|retry| self.claims_of(&retry.lease_id, queue, HandleKind::Lease)).collect();
        let lsn = {
            let mut state = self.state();
            let now_ms = self.now_ms();
            state.catalog.queue(account, queue)?;
            self.ensure_writable()?;
            let housekeeping = self.housekeep_queue(&mut state, queue, now_ms)?;
            let mut records = Vec::new();
            let mut settled = HashSet::new();
            for (lease, claims) in acks.iter().zip(ack_claims) {
                match claims.and_then(|claims| live_seq_of(&state, queue, &claims)) {
                    Ok((seq, _)) if settled.insert(seq) => {
                        records.push(Record::Delete { queue, seq });
                        outcome.ack_count += 1;
                    }
                    Ok(_) => warn(&mut outcome.warnings, lease, GONE),
                    Err(problem) => warn(&mut outcome.warnings, lease, &problem),
                }
            }
            for (retry, claims) in retries.iter().zip(retry_claims) {
                match claims.and_then(|claims| live_seq_of(&state, queue, &claims)) {
                    Ok((seq, attempts))
                        if !settled.contains(&seq) && is_current(&state, queue, seq, attempts, now_ms) =>
                    {
                        settled.insert(seq);
                        records.push(self.failed_delivery(&mut state, queue, seq, retry.delay_seconds, now_ms)?);
                        outcome.retry_count += 1;
                    }
                    Ok(_) => warn(&mut outcome.warnings, &retry.lease_id, NOT_CURRENT),
                    Err(problem) => warn(&mut outcome.warnings, &retry.lease_id, &problem),
                }
            }
            if records.is_empty() {
                housekeeping
            } else {
                Some(self.commit(&mut state, &records, now_ms)?)
            }
        };
        if outcome.retry_count > 0 {
            self.announce_arrivals(queue);
        }
        if let Some(lsn) = lsn {
            self.log.wait_durable(lsn).await?;
        }
        Ok(outcome)
    }

    pub(crate) async fn extend_leases(
        &self,
        account: AccountId,
        queue: QueueId,
        leases: &[String],
        visibility_timeout_ms: Option<u64>,
    ) -> WharfResult<ExtendOutcome> {
        let mut outcome = ExtendOutcome::default();
        let mut state = self.state();
        let now_ms = self.now_ms();
        let meta = state.catalog.queue(account, queue)?;
        let timeout_ms = visibility_timeout_ms.unwrap_or(consumer_settings(meta).visibility_timeout_ms);
        validate::visibility_timeout(timeout_ms, &self.limits)?;
        // No housekeeping here (extend logs nothing), so a lease that ended
        // but was not swept yet is still marked leased: `is_current` checks
        // its end against the clock, so it is refused rather than revived.
        for lease in leases {
            match self.live_seq(&state, queue, lease, HandleKind::Lease) {
                Ok((seq, attempts)) if is_current(&state, queue, seq, attempts, now_ms) => {
                    if let Some(index) = state.queues.get_mut(&queue) {
                        index.extend_lease(seq, now_ms + timeout_ms);
                    }
                    let renewed = self.codec.encode(HandleKind::Lease, queue, state.message_id(seq), attempts);
                    outcome.extended.insert(lease.clone(), renewed);
                }
                Ok(_) => warn(&mut outcome.warnings, lease, NOT_CURRENT),
                Err(problem) => warn(&mut outcome.warnings, lease, &problem),
            }
        }
        Ok(outcome)
    }

    /// Preview and peek: deliverable messages, not leased.
    pub(crate) async fn browse(
        &self,
        account: AccountId,
        queue: QueueId,
        batch_size: u32,
        kind: HandleKind,
    ) -> WharfResult<Vec<MessageView>> {
        validate::pull_batch_size(batch_size, &self.limits)?;
        let (picked, lsn) = {
            let mut state = self.state();
            let now_ms = self.now_ms();
            state.catalog.queue(account, queue)?;
            if self.log.failure().is_none() {
                self.housekeep_queue(&mut state, queue, now_ms)?;
            }
            let seqs = state
                .queues
                .get(&queue)
                .map(|index| index.first_ready(batch_size as usize, now_ms))
                .unwrap_or_default();
            (pick(&state, queue, &seqs), self.log.position().0)
        };
        // Bodies of messages pushed moments ago may still be in the buffer.
        self.log.wait_durable(lsn).await?;
        self.read_views(queue, picked, kind).await
    }

    /// Deletes messages named by preview lease ids or peek refs.
    pub(crate) async fn delete_by_handles(
        &self,
        account: AccountId,
        queue: QueueId,
        handles: &[String],
        retries: &[RetryRequest],
        kind: HandleKind,
    ) -> WharfResult<AckOutcome> {
        let mut outcome = AckOutcome::default();
        let lsn = {
            let mut state = self.state();
            let now_ms = self.now_ms();
            state.catalog.queue(account, queue)?;
            self.ensure_writable()?;
            let mut records = Vec::new();
            let mut deleted = HashSet::new();
            for handle in handles {
                match self.live_seq(&state, queue, handle, kind) {
                    Ok((seq, _)) if deleted.insert(seq) => {
                        records.push(Record::Delete { queue, seq });
                        outcome.ack_count += 1;
                    }
                    Ok(_) => warn(&mut outcome.warnings, handle, GONE),
                    Err(problem) => warn(&mut outcome.warnings, handle, &problem),
                }
            }
            for retry in retries {
                warn(&mut outcome.warnings, &retry.lease_id, NOT_LEASED);
            }
            (!records.is_empty()).then(|| self.commit(&mut state, &records, now_ms)).transpose()?
        };
        if let Some(lsn) = lsn {
            self.log.wait_durable(lsn).await?;
        }
        Ok(outcome)
    }

    pub(crate) async fn queue_metrics(&self, account: AccountId, queue: QueueId) -> WharfResult<QueueMetrics> {
        let (lsn, metrics) = {
            let mut state = self.state();
            let now_ms = self.now_ms();
            state.catalog.queue(account, queue)?;
            let lsn =
                if self.log.failure().is_none() { self.housekeep_queue(&mut state, queue, now_ms)? } else { None };
            (lsn, metrics_of(&state, queue))
        };
        if let Some(lsn) = lsn {
            self.log.wait_durable(lsn).await?;
        }
        Ok(metrics)
    }

    /// Decodes a handle and finds its message; returns (seq, attempts named
    /// by the handle) or the reason it cannot be used.
    fn live_seq(&self, state: &State, queue: QueueId, handle: &str, kind: HandleKind) -> Result<(u64, u32), String> {
        live_seq_of(state, queue, &self.claims_of(handle, queue, kind)?)
    }

    /// Checks a handle's authenticity and what it names; needs no state.
    fn claims_of(&self, handle: &str, queue: QueueId, kind: HandleKind) -> Result<HandleClaims, String> {
        self.codec.decode(handle, queue, kind).map_err(|problem| match problem {
            HandleProblem::WrongKind => format!("{problem}: use the id returned by the matching operation"),
            other => other.to_string(),
        })
    }

    /// Reads the bodies of picked messages. A body whose bytes on disk fail
    /// their checksum is never served: the message is dropped and reported.
    async fn read_views(&self, queue: QueueId, picked: Vec<Picked>, kind: HandleKind) -> WharfResult<Vec<MessageView>> {
        let wanted: Vec<_> = picked.iter().map(|message| (message.entry.location, message.entry.body_len)).collect();
        let bodies = self.log.read_bodies(&wanted)?;
        let mut views = Vec::with_capacity(picked.len());
        let mut corrupt = Vec::new();
        for (Picked { seq, id, entry }, body) in picked.into_iter().zip(bodies) {
            match body {
                Some(body) => views.push(MessageView {
                    id,
                    body,
                    content_type: entry.content_type,
                    timestamp_ms: entry.timestamp_ms,
                    attempts: entry.attempts(),
                    handle: self.codec.encode(kind, queue, id, entry.attempts()),
                }),
                None => {
                    tracing::error!(%queue, message = %id, segment = entry.location.segment, "message body failed its checksum; dropping the message");
                    corrupt.push(Record::Delete { queue, seq });
                }
            }
        }
        if !corrupt.is_empty() {
            let lsn = {
                let mut state = self.state();
                let now_ms = self.now_ms();
                self.commit(&mut state, &corrupt, now_ms)?
            };
            self.log.wait_durable(lsn).await?;
        }
        Ok(views)
    }
}

/// The message a checked handle names, if it is still in the queue:
/// (seq, attempts named by the handle), or the reason it cannot be used.
fn live_seq_of(state: &State, queue: QueueId, claims: &HandleClaims) -> Result<(u64, u32), String> {
    let seq = state.seq_of(claims.message).ok_or_else(|| GONE.to_string())?;
    match state.queues.get(&queue).and_then(|index| index.get(seq)) {
        Some(_) => Ok((seq, claims.attempts)),
        None => Err(GONE.to_string()),
    }
}

fn pick(state: &State, queue: QueueId, seqs: &[u64]) -> Vec<Picked> {
    let Some(index) = state.queues.get(&queue) else { return Vec::new() };
    seqs.iter()
        .filter_map(|&seq| index.get(seq).map(|entry| Picked { seq, id: state.message_id(seq), entry: *entry }))
        .collect()
}

/// Whether a lease names the message's current delivery and has not ended
/// by `now_ms` (a lease ends at its expiry, as housekeeping counts it).
fn is_current(state: &State, queue: QueueId, seq: u64, attempts: u32, now_ms: u64) -> bool {
    state
        .queues
        .get(&queue)
        .and_then(|index| index.get(seq))
        .is_some_and(|entry| entry.lease_expiry_ms().is_some_and(|end| end > now_ms) && entry.attempts() == attempts)
}

pub(crate) fn metrics_of(state: &State, queue: QueueId) -> QueueMetrics {
    state.queues.get(&queue).map(|index| index.metrics()).unwrap_or_default()
}

fn warn(warnings: &mut BTreeMap<String, String>, handle: &str, text: &str) {
    // Keys are echoed back; cap them so a huge bogus id cannot bloat replies.
    let key: String = handle.chars().take(512).collect();
    warnings.insert(key, text.to_string());
}
