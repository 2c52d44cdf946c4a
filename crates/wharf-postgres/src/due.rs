//! When a request must bring its queue up to date first.
//!
//! Due work — delayed messages whose time has come, expired leases, retention
//! — is done by each node's sweeper every second, and by a pull when this
//! node knows something of its queue is due: a pull runs [`DUE_SQL`] first
//! (pipelined on the same connection, so no extra round trip) when the
//! earliest due time this node knows of has come, or when it has not looked
//! for [`RECHECK_MS`]. The node learns due times from [`DUE_SQL`] itself and
//! from its own requests: a pull's lease expiry, a push's delayed message, and
//! any full housekeeping pass (which forgets what it knew, so the next pull
//! looks). Leases and delays set through other nodes are seen within
//! [`RECHECK_MS`] (or by the sweeper), through this node at their exact time.

use std::collections::HashMap;
use std::sync::Mutex;

use wharf_core::limits::defaults;
use wharf_core::{AccountId, QueueId, WharfError, WharfResult};

use crate::{db_error, rows, PostgresBroker};

/// Longest a node goes without looking for due work of a queue it pulls from.
pub const RECHECK_MS: i64 = 1_000;

/// Bound on remembered queues; when full, the map starts over (and every
/// queue is looked at on its next pull).
const MAX_QUEUES: usize = 100_000;

/// Retry settings of a queue without a consumer (a pull needs one, but
/// leases outlive a deleted consumer): the defaults, as in the engine.
pub(crate) const DEFAULT_MAX_RETRIES: i32 = defaults::MAX_RETRIES as i32;
const DEFAULT_RETRY_DELAY: i32 = defaults::RETRY_DELAY_SECONDS as i32;

/// $1 queue, $2 now, $3 and $4 the default retry delay and max retries (for a
/// queue without a consumer). Retention deletes (with their counter delta),
/// promotion of due delayed messages, requeue of expired leases with retries
/// left; says whether expired leases without retries left are waiting, and
/// the earliest time something is due next as this statement saw it. The
/// conditions do not overlap: one statement must not change a row twice.
pub(crate) const DUE_SQL: &str = concat!(
    "WITH ctx AS (
    SELECT $2 - q.message_retention_period::bigint * 1000 AS cutoff,
           substring(int8send($2 - q.message_retention_period::bigint * 1000 + 1) FROM 3 FOR 6) AS id_bound,
           $2 + coalesce(c.retry_delay, $3)::bigint * 1000 AS requeue_at,
           coalesce(c.max_retries, $4) AS max_retries
    FROM queues q LEFT JOIN consumers c ON c.queue_id = q.id WHERE q.id = $1
), expired AS (
    DELETE FROM messages WHERE queue_id = $1 AND id IN (
        SELECT id FROM messages WHERE queue_id = $1 AND id < (SELECT id_bound FROM ctx)
            AND timestamp_ms <= (SELECT cutoff FROM ctx)
        FOR UPDATE SKIP LOCKED)
    RETURNING body_len
), promoted AS (
    UPDATE messages SET delayed = false WHERE queue_id = $1 AND id IN (
        SELECT id FROM messages WHERE queue_id = $1 AND delayed AND visible_at_ms <= $2
            AND timestamp_ms > (SELECT cutoff FROM ctx) FOR UPDATE SKIP LOCKED)
    RETURNING 1
), requeued AS (
    UPDATE messages SET lease_expiry_ms = 0, visible_at_ms = (SELECT requeue_at FROM ctx),
        delayed = (SELECT requeue_at FROM ctx) > $2
    WHERE queue_id = $1 AND id IN (
        SELECT id FROM messages WHERE queue_id = $1 AND lease_expiry_ms > 0 AND lease_expiry_ms <= $2
            AND timestamp_ms > (SELECT cutoff FROM ctx) AND attempts <= (SELECT max_retries FROM ctx)
            FOR UPDATE SKIP LOCKED)
    RETURNING 1
), ",
    count_removed_cte!("expired"),
    "
SELECT EXISTS (
           SELECT 1 FROM messages WHERE queue_id = $1 AND lease_expiry_ms > 0 AND lease_expiry_ms <= $2
               AND timestamp_ms > (SELECT cutoff FROM ctx) AND attempts > (SELECT max_retries FROM ctx)
       ) AS exhausted,
       (SELECT count(*) FROM promoted) + (SELECT count(*) FROM requeued) + (SELECT count(*) FROM counted) AS changed,
       least((SELECT min(visible_at_ms) FROM messages WHERE queue_id = $1 AND delayed),
             (SELECT min(lease_expiry_ms) FROM messages WHERE queue_id = $1 AND lease_expiry_ms > 0)) AS next_due"
);

/// Per queue, the broker-clock time from which a pull must look for due work.
#[derive(Default)]
pub(crate) struct DueTimes {
    next_check: Mutex<HashMap<QueueId, i64>>,
}

impl DueTimes {
    /// Whether a pull at `now_ms` must run [`DUE_SQL`] first.
    pub fn is_due(&self, queue: QueueId, now_ms: i64) -> bool {
        crate::lock(&self.next_check).get(&queue).is_none_or(|&next| now_ms >= next)
    }

    /// After [`DUE_SQL`] ran at `now_ms` and saw `next_due` as the earliest
    /// pending due time.
    pub fn checked(&self, queue: QueueId, now_ms: i64, next_due: Option<i64>) {
        let next = next_due.map_or(now_ms + RECHECK_MS, |due| due.min(now_ms + RECHECK_MS));
        let mut next_check = crate::lock(&self.next_check);
        if next_check.len() >= MAX_QUEUES {
            next_check.clear();
        }
        next_check.insert(queue, next);
    }

    /// This node just made something of `queue` due at `at` (a lease's end,
    /// a delayed message's time).
    pub fn expect(&self, queue: QueueId, at: i64) {
        if let Some(next) = crate::lock(&self.next_check).get_mut(&queue) {
            *next = (*next).min(at);
        }
    }

    /// Forget what is known of `queue`: its next pull looks.
    pub fn forget(&self, queue: QueueId) {
        crate::lock(&self.next_check).remove(&queue);
    }
}

impl PostgresBroker {
    /// Runs [`DUE_SQL`]; true when expired leases without retries left wait
    /// for the full pass.
    pub(crate) async fn run_due(
        &self,
        client: &deadpool_postgres::Object,
        due: &tokio_postgres::Statement,
        queue: &Vec<u8>,
        now_ms: i64,
    ) -> WharfResult<bool> {
        let retry_delay = DEFAULT_RETRY_DELAY;
        let max_retries = DEFAULT_MAX_RETRIES;
        let row = client.query_one(due, &[queue, &now_ms, &retry_delay, &max_retries]).await.map_err(db_error)?;
        let next_due: Option<i64> = rows::get(&row, "next_due")?;
        if let Ok(queue) = <[u8; 16]>::try_from(queue.as_slice()) {
            self.due.checked(QueueId::from_bytes(queue), now_ms, next_due);
        }
        rows::get(&row, "exhausted")
    }

    /// After the request's own statement: dead-letters what [`DUE_SQL`]
    /// found exhausted. Its failure fails the request, whose own change has
    /// committed; the client's retry is then harmless (a push is not here).
    pub(crate) async fn settle_due(
        &self,
        account: AccountId,
        queue: QueueId,
        now_ms: i64,
        housekept: WharfResult<bool>,
    ) -> WharfResult<()> {
        if housekept? {
            match self.housekeep_alone(account, queue, now_ms).await {
                Ok(()) | Err(WharfError::QueueNotFound) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_is_due_until_looked_at_then_at_its_next_due_time() {
        let due = DueTimes::default();
        let queue = QueueId(3);
        assert!(due.is_due(queue, 0), "never looked at");
        due.checked(queue, 1_000, None);
        assert!(!due.is_due(queue, 1_999));
        assert!(due.is_due(queue, 2_000), "looked at again after RECHECK_MS");
        due.checked(queue, 2_000, Some(2_500));
        assert!(!due.is_due(queue, 2_499));
        assert!(due.is_due(queue, 2_500));
        due.checked(queue, 3_000, None);
        due.expect(queue, 3_100);
        assert!(due.is_due(queue, 3_100), "a lease this node gave ends");
        due.forget(queue);
        assert!(due.is_due(queue, 3_001));
    }

    #[test]
    fn due_sql_names_every_parameter_it_is_given() {
        assert!(DUE_SQL.contains("$4") && !DUE_SQL.contains("$5"));
    }
}
