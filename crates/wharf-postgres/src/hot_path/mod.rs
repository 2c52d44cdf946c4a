//! Push, pull and ack (without retries) as one SQL statement each, and
//! several concurrent requests of one queue as one statement together.
//!
//! These are what producers and consumers call thousands of times a second,
//! and on PostgreSQL a request's cost is mostly its round trips: each one is a
//! switch to a backend process and, for a transaction, a commit of its own.
//! So each of these runs as a single statement in its own implicit
//! transaction — queue lookup, the change, the counter delta and the metrics
//! read together — which is one round trip and one commit, as the raw
//! INSERT / UPDATE … SKIP LOCKED / DELETE pattern costs.
//!
//! While one of these runs for a queue, the next ones for that queue wait
//! and then run together (see `combine`): one statement and one commit for
//! many requests, which is what makes the database keep up.
//!
//! Counter deltas go to the slot numbered by the backend's pid: connections
//! that are open at the same time have different pids (mostly also modulo
//! 64), so concurrent statements rarely wait on one counter row (a wait would last until
//! the other's commit is flushed).
//!
//! A pull first brings its queue up to date when this node knows something
//! is due (see `due`). An ack needs no such pass: it deletes what it names,
//! except a message whose last delivery has expired, which belongs to the
//! dead letter queue as in the engine.

mod ack;
mod pull;

pub(crate) use pull::PullKey;
mod push;

use std::sync::LazyLock;

use wharf_core::MessageId;

use crate::oldest::{OLDEST_LOOKED_UP, OLDEST_SKIPPED};

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
/// visibility timeout in ms (NULL: the consumer's), $6 how many pulls this
/// statement serves (it leases up to that many batches). One row per leased
/// message, or one row of NULL message columns when none was, beside the
/// queue's consumer state and metrics; no row when the queue is not the
/// account's. Nothing is leased without a pull consumer or while paused.
///
/// The update finds the rows it locked by their `ctid`: one heap visit per
/// message instead of a descent of the primary key. A locked row cannot
/// move before this statement commits, and should a concurrent update have
/// moved it before the lock, the update's recheck fails on the new version
/// and the message is simply not leased this time.
const PULL_SQL: &str = "\
WITH ctx AS (
    SELECT q.delivery_paused AS paused, coalesce(c.kind = 'http_pull', false) AS pull_consumer,
           coalesce($4, c.batch_size::bigint, 0) AS batch_size,
           coalesce($5, c.visibility_timeout_ms, 0) AS visibility_timeout_ms
    FROM queues q LEFT JOIN consumers c ON c.queue_id = q.id
    WHERE q.id = $1 AND q.account_id = $2
), picked AS (
    SELECT ctid FROM messages
    WHERE queue_id = $1 AND lease_expiry_ms = 0 AND NOT delayed AND visible_at_ms <= $3
      AND coalesce((SELECT pull_consumer AND NOT paused FROM ctx), false)
    ORDER BY seq
    LIMIT (SELECT batch_size FROM ctx) * $6
    FOR UPDATE SKIP LOCKED
), leased AS (
    UPDATE messages m SET attempts = m.attempts + 1, lease_expiry_ms = $3 + (SELECT visibility_timeout_ms FROM ctx)
    FROM picked WHERE m.ctid = picked.ctid AND m.queue_id = $1
    RETURNING m.id, m.seq, m.body, m.content_type, m.timestamp_ms, m.attempts
), backlog AS (
    SELECT coalesce(sum(count), 0)::bigint AS count, coalesce(sum(bytes), 0)::bigint AS bytes,
           {oldest} AS oldest
    FROM queue_counters WHERE queue_id = $1
)
SELECT ctx.pull_consumer, ctx.paused, ctx.batch_size, ctx.visibility_timeout_ms AS lease_ms,
       backlog.count AS backlog_count, backlog.bytes AS backlog_bytes, backlog.oldest, leased.*
FROM ctx CROSS JOIN backlog LEFT JOIN leased ON true";

/// $1 queue, $2 account, $3 ids of messages to delete, $4 now, $5 default max
/// retries. Returns whether the queue is the account's and the ids deleted. A
/// message whose last delivery expired is not acked: it is the dead letter
/// queue's, as the engine has it (the sweeper or the next pull moves it).
const ACK_SQL: &str = concat!(
    "WITH q AS (
    SELECT coalesce(c.max_retries, $5) AS max_retries
    FROM queues q LEFT JOIN consumers c ON c.queue_id = q.id WHERE q.id = $1 AND q.account_id = $2
), gone AS (
    DELETE FROM messages WHERE queue_id = $1 AND id = ANY($3) AND EXISTS (SELECT 1 FROM q)
        AND NOT (lease_expiry_ms > 0 AND lease_expiry_ms <= $4 AND attempts > (SELECT max_retries FROM q))
    RETURNING id, body_len
), ",
    count_removed_cte!("gone"),
    "
SELECT EXISTS (SELECT 1 FROM q) AS found, ARRAY(SELECT id FROM gone) AS acked,
       (SELECT count(*) FROM counted) AS counted"
);

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
        for (sql, count) in [(PUSH_SQL, 10), (PULL_SQL, 6), (ACK_SQL, 5)] {
            assert!(sql.contains(&format!("${count}")), "{sql}");
            assert!(!sql.contains(&format!("${}", count + 1)), "{sql}");
        }
    }
}
