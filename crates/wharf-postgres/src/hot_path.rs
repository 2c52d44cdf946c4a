//! Push, pull and ack (without retries) as one SQL statement each.
//!
//! These are what producers and consumers call thousands of times a second,
//! and on PostgreSQL a request's cost is mostly its round trips: each one is a
//! switch to a backend process and, for a transaction, a commit of its own.
//! So each of these runs as a single statement in its own implicit
//! transaction — queue lookup, the change, the counter delta and the metrics
//! read together — which is one round trip and one commit, as the raw
//! INSERT / UPDATE … SKIP LOCKED / DELETE pattern costs.
//!
//! Counter deltas go to the slot numbered by the backend's pid: connections
//! that are open at the same time have different pids, so concurrent
//! statements almost never wait on one counter row (a wait would last until
//! the other's commit is flushed).
//!
//! A pull first brings its queue up to date when this node knows something
//! is due (see `due`). An ack needs no such pass: it deletes what it names,
//! except a message whose last delivery has expired, which belongs to the
//! dead letter queue as in the engine.

use std::collections::HashSet;
use std::sync::LazyLock;

use deadpool_postgres::GenericClient;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use wharf_core::lease::HandleKind;
use wharf_core::model::{AckOutcome, NewMessage, PullRequest, PullResult, QueueMetrics};
use wharf_core::{validate, AccountId, MessageId, QueueId, WharfError, WharfResult};

use crate::admin::id_bytes;
use crate::due::{DEFAULT_MAX_RETRIES, DUE_SQL};
use crate::messages::{warn, GONE};
use crate::oldest::{OLDEST_LOOKED_UP, OLDEST_SKIPPED};
use crate::rows::{self, u64_of};
use crate::{db_error, ms, prepared, PostgresBroker};

/// $1 queue, $2 account, $3 now, $4 ids, $5 per-message delays (NULL: the
/// queue's), $6 content types, $7 bodies, $8 their total bytes, $9 the
/// backlog limit in bytes, $10 message count. Nothing is written unless the
/// queue is the account's and the backlog has room.
const PUSH_SQL: &str = "\
WITH q AS (
    SELECT delivery_delay FROM queues WHERE id = $1 AND account_id = $2
), backlog AS (
    SELECT coalesce(sum(count), 0)::bigint AS count, coalesce(sum(bytes), 0)::bigint AS bytes
    FROM queue_counters WHERE queue_id = $1
), admitted AS (
    SELECT q.delivery_delay FROM q, backlog WHERE backlog.bytes + $8 <= $9
), inserted AS (
    INSERT INTO messages (id, queue_id, timestamp_ms, visible_at_ms, delayed, content_type, body_len, body)
    SELECT new.id, $1, $3, due.at, due.at > $3, new.content_type, length(new.body), new.body
    FROM admitted,
         unnest($4::bytea[], $5::integer[], $6::smallint[], $7::bytea[])
             WITH ORDINALITY AS new (id, delay, content_type, body, position),
         LATERAL (SELECT $3 + coalesce(new.delay, admitted.delivery_delay)::bigint * 1000 AS at) due
    ORDER BY new.position
    RETURNING visible_at_ms
), counted AS (
    INSERT INTO queue_counters (queue_id, slot, count, bytes)
    SELECT $1, (pg_backend_pid() % 64)::smallint, $10, $8 FROM admitted
    ON CONFLICT (queue_id, slot) DO UPDATE
    SET count = queue_counters.count + excluded.count, bytes = queue_counters.bytes + excluded.bytes
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM q) AS found, EXISTS (SELECT 1 FROM admitted) AS admitted,
       backlog.count, backlog.bytes,
       {oldest} AS oldest,
       (SELECT min(visible_at_ms) FROM inserted WHERE visible_at_ms > $3) AS next_visible,
       (SELECT count(*) FROM counted) AS counted
FROM backlog";

/// PUSH_SQL and PULL_SQL with and without the oldest-message lookup.
static PUSH_STATEMENTS: LazyLock<[String; 2]> = LazyLock::new(|| with_and_without_oldest(PUSH_SQL));
static PULL_STATEMENTS: LazyLock<[String; 2]> = LazyLock::new(|| with_and_without_oldest(PULL_SQL));

fn with_and_without_oldest(sql: &str) -> [String; 2] {
    [sql.replace("{oldest}", OLDEST_LOOKED_UP), sql.replace("{oldest}", OLDEST_SKIPPED)]
}

/// The statement to run: the lookup only when nothing fresh is remembered.
fn variant(statements: &[String; 2], cached: Option<i64>) -> &str {
    &statements[usize::from(cached.is_some())]
}

/// $1 queue, $2 account, $3 now, $4 batch size (NULL: the consumer's), $5
/// visibility timeout in ms (NULL: the consumer's). One row per leased
/// message, or one row of NULL message columns when none was, beside the
/// queue's consumer state and metrics; no row when the queue is not the
/// account's. Nothing is leased without a pull consumer or while paused.
const PULL_SQL: &str = "\
WITH ctx AS (
    SELECT q.delivery_paused AS paused, coalesce(c.kind = 'http_pull', false) AS pull_consumer,
           coalesce($4, c.batch_size::bigint, 0) AS batch_size,
           coalesce($5, c.visibility_timeout_ms, 0) AS visibility_timeout_ms
    FROM queues q LEFT JOIN consumers c ON c.queue_id = q.id
    WHERE q.id = $1 AND q.account_id = $2
), picked AS (
    SELECT id FROM messages
    WHERE queue_id = $1 AND lease_expiry_ms = 0 AND NOT delayed AND visible_at_ms <= $3
      AND coalesce((SELECT pull_consumer AND NOT paused FROM ctx), false)
    ORDER BY seq
    LIMIT (SELECT batch_size FROM ctx)
    FOR UPDATE SKIP LOCKED
), leased AS (
    UPDATE messages m SET attempts = m.attempts + 1, lease_expiry_ms = $3 + (SELECT visibility_timeout_ms FROM ctx)
    FROM picked WHERE m.id = picked.id
    RETURNING m.id, m.seq, m.body, m.content_type, m.timestamp_ms, m.attempts
), backlog AS (
    SELECT coalesce(sum(count), 0)::bigint AS count, coalesce(sum(bytes), 0)::bigint AS bytes,
           {oldest} AS oldest
    FROM queue_counters WHERE queue_id = $1
)
SELECT ctx.pull_consumer, ctx.paused, ctx.visibility_timeout_ms AS lease_ms, backlog.count AS backlog_count, backlog.bytes AS backlog_bytes,
       backlog.oldest, leased.*
FROM ctx CROSS JOIN backlog LEFT JOIN leased ON true";

/// $1 queue, $2 account, $3 ids of messages to delete, $4 now, $5 default max
/// retries. Returns whether the queue is the account's and the ids deleted. A
/// message whose last delivery expired is not acked: it is the dead letter
/// queue's, as the engine has it, once [`DUE_SQL`] has reported it.
const ACK_SQL: &str = "\
WITH q AS (
    SELECT coalesce(c.max_retries, $5) AS max_retries
    FROM queues q LEFT JOIN consumers c ON c.queue_id = q.id WHERE q.id = $1 AND q.account_id = $2
), gone AS (
    DELETE FROM messages WHERE queue_id = $1 AND id = ANY($3) AND EXISTS (SELECT 1 FROM q)
        AND NOT (lease_expiry_ms > 0 AND lease_expiry_ms <= $4 AND attempts > (SELECT max_retries FROM q))
    RETURNING id, body_len
), counted AS (
    INSERT INTO queue_counters (queue_id, slot, count, bytes)
    SELECT $1, (pg_backend_pid() % 64)::smallint, -count(*), -coalesce(sum(body_len), 0)::bigint FROM gone
    HAVING count(*) > 0
    ON CONFLICT (queue_id, slot) DO UPDATE
    SET count = queue_counters.count + excluded.count, bytes = queue_counters.bytes + excluded.bytes
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM q) AS found, ARRAY(SELECT id FROM gone) AS acked,
       (SELECT count(*) FROM counted) AS counted";

impl PostgresBroker {
    pub(crate) async fn push_messages(
        &self,
        account: AccountId,
        queue: QueueId,
        messages: Vec<NewMessage>,
    ) -> WharfResult<QueueMetrics> {
        validate::messages(&messages, &self.limits)?;
        let now_ms = self.now_ms();
        let incoming: i64 = messages.iter().map(|message| message.body.len() as i64).sum();
        let ids: Vec<Vec<u8>> = messages.iter().map(|_| time_ordered_id(now_ms).to_bytes().to_vec()).collect();
        let delays: Vec<Option<i32>> =
            messages.iter().map(|message| message.delay_seconds.map(|delay| delay as i32)).collect();
        let content_types: Vec<i16> = messages.iter().map(|message| message.content_type.to_byte() as i16).collect();
        let bodies: Vec<&[u8]> = messages.iter().map(|message| message.body.as_slice()).collect();
        let limit = i64::try_from(self.limits.max_queue_backlog_bytes).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let cached = self.oldest.fresh(queue, now_ms);
        let stmt = prepared(&client, variant(&PUSH_STATEMENTS, cached)).await?;
        let params: [&(dyn ToSql + Sync); 10] = [
            &id_bytes(queue.0),
            &id_bytes(account.0),
            &now_ms,
            &ids,
            &delays,
            &content_types,
            &bodies,
            &incoming,
            &limit,
            &(messages.len() as i64),
        ];
        let row = match client.query_one(&stmt, &params).await {
            Ok(row) => row,
            // The queue was deleted by another request during the statement.
            Err(error) if error.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => {
                return Err(WharfError::QueueNotFound)
            }
            Err(error) => return Err(db_error(error)),
        };
        if !rows::get::<bool>(&row, "found")? {
            return Err(WharfError::QueueNotFound);
        }
        let (count, bytes) = (u64_of(&row, "count")?, u64_of(&row, "bytes")?);
        // Before this push; an empty queue's oldest is now this push's.
        let looked_up = rows::get::<Option<i64>>(&row, "oldest")?;
        let oldest = match count {
            0 => now_ms.max(0) as u64,
            _ => self.oldest.resolve(queue, looked_up, cached, count, now_ms),
        };
        if let Some(at) = rows::get::<Option<i64>>(&row, "next_visible")? {
            self.due.expect(queue, at);
        }
        if !rows::get::<bool>(&row, "admitted")? {
            validate::backlog_room(bytes, incoming as u64, &self.limits)?;
            // The statement decided on these same figures, so this is only
            // reached if the two checks ever disagree.
            return Err(WharfError::internal("backlog check disagrees with the statement's"));
        }
        Ok(QueueMetrics {
            backlog_count: count + messages.len() as u64,
            backlog_bytes: bytes + incoming as u64,
            oldest_message_timestamp_ms: oldest,
        })
    }

    pub(crate) async fn pull_messages(
        &self,
        account: AccountId,
        queue: QueueId,
        request: PullRequest,
    ) -> WharfResult<PullResult> {
        if let Err(invalid) = self.check_pull_request(&request) {
            // The queue's own problems come first, as in the engine.
            self.pull_context(account, queue).await?;
            return Err(invalid);
        }
        let now_ms = self.now_ms();
        let client = self.client().await?;
        let cached = self.oldest.fresh(queue, now_ms);
        let stmt = prepared(&client, variant(&PULL_STATEMENTS, cached)).await?;
        let batch_size = request.batch_size.map(i64::from);
        let timeout_ms = request.visibility_timeout_ms.map(ms);
        let (queue_bytes, account_bytes) = (id_bytes(queue.0), id_bytes(account.0));
        let params: [&(dyn ToSql + Sync); 5] = [&queue_bytes, &account_bytes, &now_ms, &batch_size, &timeout_ms];
        let found = if self.due.is_due(queue, now_ms) {
            let due = prepared(&client, DUE_SQL).await?;
            // Polled together, the two are sent back to back: one round trip.
            let (housekept, found) =
                tokio::join!(self.run_due(&client, &due, &queue_bytes, now_ms), client.query(&stmt, &params));
            let found = found.map_err(db_error)?;
            self.settle_due(account, queue, now_ms, housekept).await?;
            found
        } else {
            client.query(&stmt, &params).await.map_err(db_error)?
        };
        let first = found.first().ok_or(WharfError::QueueNotFound)?;
        if !rows::get::<bool>(first, "pull_consumer")? {
            return Err(WharfError::PullConsumerMissing);
        }
        if rows::get::<bool>(first, "paused")? {
            return Err(WharfError::DeliveryPaused);
        }
        let backlog_count = u64_of(first, "backlog_count")?;
        let lease_ms: i64 = rows::get(first, "lease_ms")?;
        let looked_up = rows::get::<Option<i64>>(first, "oldest")?;
        let metrics = QueueMetrics {
            backlog_count,
            backlog_bytes: u64_of(first, "backlog_bytes")?,
            oldest_message_timestamp_ms: self.oldest.resolve(queue, looked_up, cached, backlog_count, now_ms),
        };
        let mut leased = Vec::with_capacity(found.len());
        for row in found {
            if rows::get::<Option<&[u8]>>(&row, "id")?.is_some() {
                leased.push(row);
            }
        }
        if !leased.is_empty() {
            self.due.expect(queue, now_ms.saturating_add(lease_ms));
        }
        let messages = self.views(queue, &leased, HandleKind::Lease)?;
        Ok(PullResult { messages, metrics })
    }

    /// An ack without retries: one statement.
    pub(crate) async fn ack_only(
        &self,
        account: AccountId,
        queue: QueueId,
        acks: &[String],
    ) -> WharfResult<AckOutcome> {
        let now_ms = self.now_ms();
        let claims = self.decode_all(queue, acks, HandleKind::Lease);
        let mut ids: Vec<Vec<u8>> =
            claims.iter().filter_map(|claims| claims.as_ref().ok()).map(|c| id_bytes(c.message.0)).collect();
        // Sorted, so that two acks of the same messages lock them in one order.
        ids.sort_unstable();
        ids.dedup();
        let client = self.client().await?;
        let stmt = prepared(&client, ACK_SQL).await?;
        let params: [&(dyn ToSql + Sync); 5] =
            [&id_bytes(queue.0), &id_bytes(account.0), &ids, &now_ms, &DEFAULT_MAX_RETRIES];
        let row = client.query_one(&stmt, &params).await.map_err(db_error)?;
        if !rows::get::<bool>(&row, "found")? {
            return Err(WharfError::QueueNotFound);
        }
        let deleted: HashSet<Vec<u8>> = rows::get::<Vec<Vec<u8>>>(&row, "acked")?.into_iter().collect();
        let mut outcome = AckOutcome::default();
        let mut settled = HashSet::new();
        for (lease, claims) in acks.iter().zip(&claims) {
            match claims {
                Ok(claims) if deleted.contains(&id_bytes(claims.message.0)) && settled.insert(claims.message) => {
                    outcome.ack_count += 1;
                }
                Ok(_) => warn(&mut outcome.warnings, lease, GONE),
                Err(problem) => warn(&mut outcome.warnings, lease, problem),
            }
        }
        Ok(outcome)
    }

    fn check_pull_request(&self, request: &PullRequest) -> WharfResult<()> {
        if let Some(batch_size) = request.batch_size {
            validate::pull_batch_size(batch_size, &self.limits)?;
        }
        if let Some(timeout_ms) = request.visibility_timeout_ms {
            validate::visibility_timeout(timeout_ms, &self.limits)?;
        }
        Ok(())
    }

    /// The queue's context, checked as a pull checks it.
    async fn pull_context(&self, account: AccountId, queue: QueueId) -> WharfResult<()> {
        let client = self.client().await?;
        let context = self.context(&client, account, queue).await?;
        if !context.has_pull_consumer {
            return Err(WharfError::PullConsumerMissing);
        }
        if context.delivery_paused {
            return Err(WharfError::DeliveryPaused);
        }
        Ok(())
    }
}

/// A message id whose first 48 bits are the time in ms and the other 80
/// random: new rows then land at the right edge of the primary key's index,
/// as a sequence's would, instead of on a random page of it.
pub(crate) fn time_ordered_id(now_ms: i64) -> MessageId {
    let time = (now_ms.max(0) as u128) & ((1 << 48) - 1);
    MessageId((time << 80) | (rand::random::<u128>() & ((1 << 80) - 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_differ() {
        let (earlier, later) = (time_ordered_id(1_000), time_ordered_id(1_001));
        assert!(earlier < later);
        assert_ne!(time_ordered_id(1_000), time_ordered_id(1_000));
    }

    #[test]
    fn statements_name_every_parameter_they_are_given() {
        for (sql, count) in [(PUSH_SQL, 10), (PULL_SQL, 5), (ACK_SQL, 5)] {
            assert!(sql.contains(&format!("${count}")), "{sql}");
            assert!(!sql.contains(&format!("${}", count + 1)), "{sql}");
        }
    }
}
