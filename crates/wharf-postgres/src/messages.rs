//! Message operations: push, pull, ack and retry, extend, preview, peek,
//! deletion by handle, metrics. Each runs in one transaction that commits
//! before the call returns; the warning texts are the engine's.

use std::collections::{BTreeMap, HashMap, HashSet};

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use wharf_core::lease::{HandleClaims, HandleKind, HandleProblem};
use wharf_core::model::{AckOutcome, ExtendOutcome, MessageView, QueueMetrics, RetryRequest};
use wharf_core::{validate, AccountId, MessageId, QueueId, WharfResult};

use crate::admin::id_bytes;
use crate::counters::{metrics_of, Deltas};
use crate::housekeeping::sizes;
use crate::rows::{self, u32_of, u64_of};
use crate::{db_error, prepared, PostgresBroker};

pub(crate) const GONE: &str = "message is no longer in the queue (already acknowledged, expired or purged)";
const NOT_CURRENT: &str = "lease is not the current delivery of this message (expired or redelivered)";
const NOT_LEASED: &str = "previewed messages are not leased; there is nothing to retry";

const VIEW_COLUMNS: &str = "id, seq, body, content_type, timestamp_ms, attempts";

/// A message's state as locked by ack, retry, extend or deletion.
#[derive(Debug, Clone, Copy)]
struct Live {
    attempts: u32,
    lease_expiry_ms: i64,
}

impl PostgresBroker {
    pub(crate) async fn ack_messages(
        &self,
        account: AccountId,
        queue: QueueId,
        acks: &[String],
        retries: &[RetryRequest],
    ) -> WharfResult<AckOutcome> {
        if retries.is_empty() {
            return self.ack_only(account, queue, acks).await;
        }
        for retry in retries {
            if let Some(delay) = retry.delay_seconds {
                validate::delay_seconds(delay, &self.limits)?;
            }
        }
        let mut outcome = AckOutcome::default();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        let context = self.context(&tx, account, queue).await?;
        let now_ms = self.now_ms();
        let mut deltas = Deltas::default();
        self.housekeep(&tx, &context, now_ms, &mut deltas).await?;
        let ack_claims = self.decode_all(queue, acks, HandleKind::Lease);
        let retry_handles: Vec<String> = retries.iter().map(|retry| retry.lease_id.clone()).collect();
        let retry_claims = self.decode_all(queue, &retry_handles, HandleKind::Lease);
        let live = lock_live(&tx, queue, ack_claims.iter().chain(&retry_claims)).await?;

        let mut settled = HashSet::new();
        let mut deleted = Vec::new();
        for (lease, claims) in acks.iter().zip(&ack_claims) {
            match claims {
                Ok(claims) if live.contains_key(&claims.message) && settled.insert(claims.message) => {
                    deleted.push(id_bytes(claims.message.0));
                    outcome.ack_count += 1;
                }
                Ok(_) => warn(&mut outcome.warnings, lease, GONE),
                Err(problem) => warn(&mut outcome.warnings, lease, problem),
            }
        }
        // Requeued messages: (id, visible_at); exhausted ones leave the queue.
        let (mut requeued, mut requeue_at, mut exhausted) = (Vec::new(), Vec::new(), Vec::new());
        for (retry, claims) in retries.iter().zip(&retry_claims) {
            let claims = match claims {
                Ok(claims) => claims,
                Err(problem) => {
                    warn(&mut outcome.warnings, &retry.lease_id, problem);
                    continue;
                }
            };
            let Some(state) = live.get(&claims.message) else {
                warn(&mut outcome.warnings, &retry.lease_id, GONE);
                continue;
            };
            if settled.contains(&claims.message) || !is_current(state, claims, now_ms) {
                warn(&mut outcome.warnings, &retry.lease_id, NOT_CURRENT);
                continue;
            }
            settled.insert(claims.message);
            if state.attempts <= context.consumer.max_retries {
                let delay = retry.delay_seconds.unwrap_or(context.consumer.retry_delay) as i64;
                requeued.push(id_bytes(claims.message.0));
                requeue_at.push(now_ms + delay * 1000);
            } else {
                exhausted.push(id_bytes(claims.message.0));
            }
            outcome.retry_count += 1;
        }
        if !deleted.is_empty() {
            let gone = tx
                .query(
                    &prepared(&tx, "DELETE FROM messages WHERE queue_id = $2 AND id = ANY($1) RETURNING body_len")
                        .await?,
                    &[&deleted, &id_bytes(queue.0)],
                )
                .await
                .map_err(db_error)?;
            let (count, bytes) = sizes(&gone)?;
            deltas.add(queue, -count, -bytes);
        }
        if !requeued.is_empty() {
            tx.execute(
                &prepared(
                    &tx,
                    "UPDATE messages m SET lease_expiry_ms = 0, visible_at_ms = r.visible_at_ms, \
                 delayed = r.visible_at_ms > $3 \
                 FROM unnest($1::bytea[], $2::bigint[]) AS r (id, visible_at_ms) \
                 WHERE m.queue_id = $4 AND m.id = r.id",
                )
                .await?,
                &[&requeued, &requeue_at, &now_ms, &id_bytes(queue.0)],
            )
            .await
            .map_err(db_error)?;
        }
        self.settle_exhausted(&tx, &context, &exhausted, now_ms, &mut deltas).await?;
        deltas.apply(&tx).await?;
        tx.commit().await.map_err(db_error)?;
        // Housekeeping may have delayed requeued messages: the next pull looks.
        self.due.forget(queue);
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
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        let context = self.context(&tx, account, queue).await?;
        let timeout_ms = visibility_timeout_ms.unwrap_or(context.consumer.visibility_timeout_ms);
        validate::visibility_timeout(timeout_ms, &self.limits)?;
        let now_ms = self.now_ms();
        let mut deltas = Deltas::default();
        self.housekeep(&tx, &context, now_ms, &mut deltas).await?;
        let claims = self.decode_all(queue, leases, HandleKind::Lease);
        let live = lock_live(&tx, queue, claims.iter()).await?;
        let mut extended = Vec::new();
        for (lease, claims) in leases.iter().zip(&claims) {
            match claims {
                Ok(claims) => match live.get(&claims.message) {
                    Some(state) if is_current(state, claims, now_ms) => {
                        extended.push(id_bytes(claims.message.0));
                        let renewed = self.codec.encode(HandleKind::Lease, queue, claims.message, claims.attempts);
                        outcome.extended.insert(lease.clone(), renewed);
                    }
                    Some(_) => warn(&mut outcome.warnings, lease, NOT_CURRENT),
                    None => warn(&mut outcome.warnings, lease, GONE),
                },
                Err(problem) => warn(&mut outcome.warnings, lease, problem),
            }
        }
        if !extended.is_empty() {
            let expiry = now_ms + crate::ms(timeout_ms);
            tx.execute(
                &prepared(&tx, "UPDATE messages SET lease_expiry_ms = $2 WHERE queue_id = $3 AND id = ANY($1)").await?,
                &[&extended, &expiry, &id_bytes(queue.0)],
            )
            .await
            .map_err(db_error)?;
        }
        deltas.apply(&tx).await?;
        tx.commit().await.map_err(db_error)?;
        // Housekeeping may have delayed requeued messages: the next pull looks.
        self.due.forget(queue);
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
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        let context = self.context(&tx, account, queue).await?;
        let now_ms = self.now_ms();
        let mut deltas = Deltas::default();
        self.housekeep(&tx, &context, now_ms, &mut deltas).await?;
        let sql = format!(
            "SELECT {VIEW_COLUMNS} FROM messages WHERE queue_id = $1 AND lease_expiry_ms = 0 AND NOT delayed \
             AND visible_at_ms <= $2 \
             ORDER BY seq LIMIT $3"
        );
        let found = tx
            .query(&prepared(&tx, &sql).await?, &[&id_bytes(queue.0), &now_ms, &(batch_size as i64)])
            .await
            .map_err(db_error)?;
        let views = self.views(queue, &found, kind)?;
        deltas.apply(&tx).await?;
        tx.commit().await.map_err(db_error)?;
        // Housekeeping may have delayed requeued messages: the next pull looks.
        self.due.forget(queue);
        Ok(views)
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
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        self.context(&tx, account, queue).await?;
        let claims = self.decode_all(queue, handles, kind);
        let live = lock_live(&tx, queue, claims.iter()).await?;
        let mut deleted = Vec::new();
        let mut seen = HashSet::new();
        for (handle, claims) in handles.iter().zip(&claims) {
            match claims {
                Ok(claims) if live.contains_key(&claims.message) && seen.insert(claims.message) => {
                    deleted.push(id_bytes(claims.message.0));
                    outcome.ack_count += 1;
                }
                Ok(_) => warn(&mut outcome.warnings, handle, GONE),
                Err(problem) => warn(&mut outcome.warnings, handle, problem),
            }
        }
        for retry in retries {
            warn(&mut outcome.warnings, &retry.lease_id, NOT_LEASED);
        }
        if !deleted.is_empty() {
            let gone = tx
                .query(
                    &prepared(&tx, "DELETE FROM messages WHERE queue_id = $2 AND id = ANY($1) RETURNING body_len")
                        .await?,
                    &[&deleted, &id_bytes(queue.0)],
                )
                .await
                .map_err(db_error)?;
            let (count, bytes) = sizes(&gone)?;
            let mut deltas = Deltas::default();
            deltas.add(queue, -count, -bytes);
            deltas.apply(&tx).await?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(outcome)
    }

    pub(crate) async fn queue_metrics(&self, account: AccountId, queue: QueueId) -> WharfResult<QueueMetrics> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        let context = self.context(&tx, account, queue).await?;
        let mut deltas = Deltas::default();
        self.housekeep(&tx, &context, self.now_ms(), &mut deltas).await?;
        deltas.apply(&tx).await?;
        let metrics = metrics_of(&tx, queue).await?;
        tx.commit().await.map_err(db_error)?;
        // Housekeeping may have delayed requeued messages: the next pull looks.
        self.due.forget(queue);
        Ok(metrics)
    }

    /// Decodes handles; a problem becomes the warning text the engine gives.
    pub(crate) fn decode_all(
        &self,
        queue: QueueId,
        handles: &[String],
        kind: HandleKind,
    ) -> Vec<Result<HandleClaims, String>> {
        handles
            .iter()
            .map(|handle| {
                self.codec.decode(handle, queue, kind).map_err(|problem| match problem {
                    HandleProblem::WrongKind => format!("{problem}: use the id returned by the matching operation"),
                    other => other.to_string(),
                })
            })
            .collect()
    }

    /// Message views in queue order, with a fresh handle of `kind` each.
    pub(crate) fn views(&self, queue: QueueId, found: &[Row], kind: HandleKind) -> WharfResult<Vec<MessageView>> {
        let mut ordered: Vec<(i64, MessageView)> = Vec::with_capacity(found.len());
        for row in found {
            let id = rows::message_id(row, "id")?;
            let attempts = u32_of(row, "attempts")?;
            let view = MessageView {
                id,
                body: rows::get(row, "body")?,
                content_type: rows::content_type(row)?,
                timestamp_ms: u64_of(row, "timestamp_ms")?,
                attempts,
                handle: self.codec.encode(kind, queue, id, attempts),
            };
            ordered.push((rows::get(row, "seq")?, view));
        }
        // RETURNING does not keep the order of the sub-select.
        ordered.sort_by_key(|(seq, _)| *seq);
        Ok(ordered.into_iter().map(|(_, view)| view).collect())
    }
}

/// Locks (in id order, so concurrent callers cannot deadlock) the queue's
/// messages named by authentic handles, and returns their state.
async fn lock_live<'a, C: GenericClient + Sync>(
    client: &C,
    queue: QueueId,
    claims: impl Iterator<Item = &'a Result<HandleClaims, String>>,
) -> WharfResult<HashMap<MessageId, Live>> {
    let ids: Vec<Vec<u8>> = claims.filter_map(|claims| claims.as_ref().ok()).map(|c| id_bytes(c.message.0)).collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let found = client
        .query(
            &prepared(
                client,
                "SELECT id, attempts, lease_expiry_ms FROM messages WHERE queue_id = $1 AND id = ANY($2) \
             ORDER BY id FOR UPDATE",
            )
            .await?,
            &[&id_bytes(queue.0), &ids],
        )
        .await
        .map_err(db_error)?;
    let mut live = HashMap::with_capacity(found.len());
    for row in &found {
        let state = Live { attempts: u32_of(row, "attempts")?, lease_expiry_ms: rows::get(row, "lease_expiry_ms")? };
        live.insert(rows::message_id(row, "id")?, state);
    }
    Ok(live)
}

/// Whether a lease names the message's current delivery and it is leased now.
fn is_current(state: &Live, claims: &HandleClaims, now_ms: i64) -> bool {
    state.lease_expiry_ms > now_ms && state.attempts == claims.attempts
}

pub(crate) fn warn(warnings: &mut BTreeMap<String, String>, handle: &str, text: &str) {
    // Keys are echoed back; cap them so a huge bogus id cannot bloat replies.
    let key: String = handle.chars().take(512).collect();
    warnings.insert(key, text.to_string());
}
