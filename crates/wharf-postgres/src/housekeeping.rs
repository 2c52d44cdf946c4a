//! Due work: retention, expired leases (a failed delivery), delayed messages
//! whose time has come, and dead-lettering. Each node's sweeper runs it every
//! second for every queue with due work; the rarer message operations
//! (retry, extend, preview, peek, metrics) run it for their queue inside their
//! own transaction first; a pull runs the one-statement form in `due` when
//! something is due and falls back to this one only to dead-letter.
//!
//! Several nodes may do this at once: rows are taken with `FOR UPDATE SKIP
//! LOCKED` and changed in the transaction that took them, so a message is
//! requeued, dead-lettered or deleted by exactly one of them.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use wharf_core::model::{ConsumerKind, ConsumerSettings};
use wharf_core::{AccountId, QueueId, WharfError, WharfResult};

use crate::admin::id_bytes;
use crate::counters::Deltas;
use crate::rows::{self, u32_of, u64_of};
use crate::{db_error, prepared, PostgresBroker};

/// What message operations need to know about a queue and its consumer.
#[derive(Debug, Clone)]
pub(crate) struct QueueContext {
    pub account: AccountId,
    pub queue: QueueId,
    pub delivery_paused: bool,
    pub retention_seconds: u32,
    pub has_pull_consumer: bool,
    pub dead_letter_queue: Option<String>,
    /// The consumer's settings, or the defaults when there is none.
    pub consumer: ConsumerSettings,
}

/// One statement: retention deletes, promotion of delayed messages whose
/// time has come, requeues of expired leases with retries left, and the ids
/// (locked) of expired leases without retries left. The conditions do not
/// overlap: one statement must not change a row twice. $1 queue, $2
/// retention cutoff, $3 now, $4 visible_at of requeued messages, $5
/// max_retries.
const HOUSEKEEP_SQL: &str = "\
WITH expired AS (
    DELETE FROM messages WHERE queue_id = $1 AND id IN (
        SELECT id FROM messages WHERE queue_id = $1 AND id < substring(int8send($2::bigint + 1) FROM 3 FOR 6)
            AND timestamp_ms <= $2 FOR UPDATE SKIP LOCKED)
    RETURNING body_len
), promoted AS (
    UPDATE messages SET delayed = false WHERE queue_id = $1 AND id IN (
        SELECT id FROM messages WHERE queue_id = $1 AND delayed AND visible_at_ms <= $3
            AND timestamp_ms > $2 FOR UPDATE SKIP LOCKED)
    RETURNING 1
), requeued AS (
    UPDATE messages SET lease_expiry_ms = 0, visible_at_ms = $4, delayed = $4 > $3 WHERE queue_id = $1 AND id IN (
        SELECT id FROM messages WHERE queue_id = $1 AND lease_expiry_ms > 0 AND lease_expiry_ms <= $3
            AND timestamp_ms > $2 AND attempts <= $5 FOR UPDATE SKIP LOCKED)
    RETURNING 1
), exhausted AS (
    SELECT id FROM messages WHERE queue_id = $1 AND lease_expiry_ms > 0 AND lease_expiry_ms <= $3
        AND timestamp_ms > $2 AND attempts > $5 ORDER BY seq FOR UPDATE SKIP LOCKED
)
SELECT (SELECT count(*) FROM expired) AS expired, (SELECT coalesce(sum(body_len), 0)::bigint FROM expired) AS expired_bytes,
       (SELECT count(*) FROM promoted) AS promoted,
       (SELECT count(*) FROM requeued) AS requeued, ARRAY(SELECT id FROM exhausted) AS exhausted";

impl PostgresBroker {
    /// The queue's context; `QueueNotFound` if it is not the account's.
    pub(crate) async fn context<C: GenericClient + Sync>(
        &self,
        client: &C,
        account: AccountId,
        queue: QueueId,
    ) -> WharfResult<QueueContext> {
        let row = client
            .query_opt(
                &prepared(
                    client,
                    "SELECT q.delivery_paused, q.message_retention_period, c.kind, \
                 c.dead_letter_queue, c.batch_size, c.max_retries, c.retry_delay, c.visibility_timeout_ms \
                 FROM queues q LEFT JOIN consumers c ON c.queue_id = q.id WHERE q.id = $1 AND q.account_id = $2",
                )
                .await?,
                &[&id_bytes(queue.0), &id_bytes(account.0)],
            )
            .await
            .map_err(db_error)?
            .ok_or(WharfError::QueueNotFound)?;
        context_of(&row, account, queue)
    }

    /// Brings one queue up to date with the clock, inside the caller's
    /// transaction; backlog changes go into `deltas`.
    pub(crate) async fn housekeep<C: GenericClient + Sync>(
        &self,
        client: &C,
        context: &QueueContext,
        now_ms: i64,
        deltas: &mut Deltas,
    ) -> WharfResult<()> {
        let cutoff = now_ms - context.retention_seconds as i64 * 1000;
        let requeue_at = now_ms + context.consumer.retry_delay as i64 * 1000;
        let row = client
            .query_one(
                &prepared(client, HOUSEKEEP_SQL).await?,
                &[&id_bytes(context.queue.0), &cutoff, &now_ms, &requeue_at, &(context.consumer.max_retries as i32)],
            )
            .await
            .map_err(db_error)?;
        deltas.add(context.queue, -rows::get::<i64>(&row, "expired")?, -rows::get::<i64>(&row, "expired_bytes")?);
        let exhausted: Vec<Vec<u8>> = rows::get(&row, "exhausted")?;
        self.settle_exhausted(client, context, &exhausted, now_ms, deltas).await
    }

    /// Messages whose failed delivery used up their retries (rows already
    /// locked by this transaction): to the dead letter queue, created if
    /// missing, or deleted when the consumer has none.
    pub(crate) async fn settle_exhausted<C: GenericClient + Sync>(
        &self,
        client: &C,
        context: &QueueContext,
        ids: &[Vec<u8>],
        now_ms: i64,
        deltas: &mut Deltas,
    ) -> WharfResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let Some(name) = &context.dead_letter_queue else {
            let deleted = client
                .query(
                    &prepared(client, "DELETE FROM messages WHERE queue_id = $2 AND id = ANY($1) RETURNING body_len")
                        .await?,
                    &[&ids, &id_bytes(context.queue.0)],
                )
                .await
                .map_err(db_error)?;
            let (count, bytes) = sizes(&deleted)?;
            deltas.add(context.queue, -count, -bytes);
            return Ok(());
        };
        let target = dead_letter_queue(client, context.account, name, now_ms).await?;
        move_messages(client, context.queue, target, ids, now_ms, deltas).await?;
        tracing::debug!(queue = %context.queue, dead_letter_queue = %target, count = ids.len(), "dead-lettered messages");
        Ok(())
    }

    /// One pass over every queue with due work, each in its own transaction.
    pub(crate) async fn sweep(&self) -> WharfResult<()> {
        let now_ms = self.now_ms();
        let due = {
            let client = self.client().await?;
            client
                .query(
                    "SELECT q.id, q.account_id FROM queues q WHERE \
                     EXISTS (SELECT 1 FROM messages m WHERE m.queue_id = q.id \
                             AND m.lease_expiry_ms > 0 AND m.lease_expiry_ms <= $1) \
                     OR EXISTS (SELECT 1 FROM messages m WHERE m.queue_id = q.id \
                             AND m.delayed AND m.visible_at_ms <= $1) \
                     OR EXISTS (SELECT 1 FROM messages m WHERE m.queue_id = q.id \
                             AND m.id < substring(int8send($1 - q.message_retention_period::bigint * 1000 + 1) \
                                 FROM 3 FOR 6) \
                             AND m.timestamp_ms <= $1 - q.message_retention_period::bigint * 1000)",
                    &[&now_ms],
                )
                .await
                .map_err(db_error)?
        };
        // One queue failing (say, a deadlock reported as 503) does not hold
        // back the others; the first failure is reported after the pass.
        let mut first_error = None;
        for row in due {
            let (queue, account) = (rows::queue_id(&row, "id")?, rows::account_id(&row, "account_id")?);
            match self.housekeep_alone(account, queue, now_ms).await {
                Ok(()) | Err(WharfError::QueueNotFound) => {}
                Err(error) => {
                    tracing::warn!(%queue, %error, "housekeeping failed for a queue");
                    first_error.get_or_insert(error);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Housekeeping of one queue in a transaction of its own.
    pub(crate) async fn housekeep_alone(&self, account: AccountId, queue: QueueId, now_ms: i64) -> WharfResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        // QueueNotFound if it was deleted since the scan.
        let context = self.context(&tx, account, queue).await?;
        let mut deltas = Deltas::default();
        self.housekeep(&tx, &context, now_ms, &mut deltas).await?;
        deltas.apply(&tx).await?;
        tx.commit().await.map_err(db_error)?;
        // It may have delayed requeued messages: the next pull looks.
        self.due.forget(queue);
        Ok(())
    }
}

/// (rows, sum of `body_len`) of rows returned by a change.
pub(crate) fn sizes(changed: &[Row]) -> WharfResult<(i64, i64)> {
    let mut bytes = 0i64;
    for row in changed {
        bytes += rows::get::<i32>(row, "body_len")? as i64;
    }
    Ok((changed.len() as i64, bytes))
}

fn context_of(row: &Row, account: AccountId, queue: QueueId) -> WharfResult<QueueContext> {
    let kind: Option<&str> = rows::get(row, "kind")?;
    let mut consumer = ConsumerSettings::defaults_for(&ConsumerKind::HttpPull);
    if kind.is_some() {
        consumer.batch_size = u32_of(row, "batch_size")?;
        consumer.max_retries = u32_of(row, "max_retries")?;
        consumer.retry_delay = u32_of(row, "retry_delay")?;
        consumer.visibility_timeout_ms = u64_of(row, "visibility_timeout_ms")?;
    }
    Ok(QueueContext {
        account,
        queue,
        delivery_paused: rows::get(row, "delivery_paused")?,
        retention_seconds: u32_of(row, "message_retention_period")?,
        has_pull_consumer: kind == Some("http_pull"),
        dead_letter_queue: rows::get(row, "dead_letter_queue")?,
        consumer,
    })
}

/// Finds the account's queue by name, creating it with default settings if
/// missing. Concurrent creators meet on the (account, name) unique key.
async fn dead_letter_queue<C: GenericClient + Sync>(
    client: &C,
    account: AccountId,
    name: &str,
    now_ms: i64,
) -> WharfResult<QueueId> {
    let defaults = wharf_core::model::QueueSettings::default();
    let id = QueueId::random();
    let created = client
        .execute(
            "INSERT INTO queues (id, account_id, name, created_on_ms, modified_on_ms, delivery_delay, \
             delivery_paused, message_retention_period) VALUES ($1, $2, $3, $4, $4, $5, $6, $7) \
             ON CONFLICT (account_id, name) DO NOTHING",
            &[
                &id_bytes(id.0),
                &id_bytes(account.0),
                &name,
                &now_ms,
                &(defaults.delivery_delay as i32),
                &defaults.delivery_paused,
                &(defaults.message_retention_period as i32),
            ],
        )
        .await
        .map_err(db_error)?;
    if created > 0 {
        tracing::info!(queue = %id, name, "created dead letter queue");
        return Ok(id);
    }
    let row = client
        .query_one("SELECT id FROM queues WHERE account_id = $1 AND name = $2", &[&id_bytes(account.0), &name])
        .await
        .map_err(db_error)?;
    rows::queue_id(&row, "id")
}

/// Moves messages (rows already locked by this transaction) into another
/// queue: each becomes a new message there (new id, new place in line, no
/// deliveries yet, ready now) that keeps its timestamp, so its new id begins
/// with that timestamp. Dead-lettering and redrive both move this way.
pub(crate) async fn move_messages<C: GenericClient + Sync>(
    client: &C,
    from: QueueId,
    to: QueueId,
    ids: &[Vec<u8>],
    now_ms: i64,
    deltas: &mut Deltas,
) -> WharfResult<u64> {
    // The new ids' random bytes; their first six are the timestamp's.
    let new_ids: Vec<Vec<u8>> =
        ids.iter().map(|_| crate::hot_path::time_ordered_id(now_ms).to_bytes().to_vec()).collect();
    let moved = client
        .query(
            &prepared(
                client,
                "UPDATE messages m SET queue_id = $1, \
             id = substring(int8send(m.timestamp_ms) FROM 3 FOR 6) || substring(moved.new_id FROM 7 FOR 10), \
             seq = nextval('message_seq'), attempts = 0, visible_at_ms = 0, delayed = false, lease_expiry_ms = 0 \
             FROM unnest($2::bytea[], $3::bytea[]) AS moved (old_id, new_id) \
             WHERE m.queue_id = $4 AND m.id = moved.old_id \
             RETURNING m.body_len",
            )
            .await?,
            &[&id_bytes(to.0), &ids, &new_ids, &id_bytes(from.0)],
        )
        .await
        .map_err(db_error)?;
    let (count, bytes) = sizes(&moved)?;
    deltas.add(from, -count, -bytes);
    deltas.add(to, count, bytes);
    Ok(count as u64)
}
