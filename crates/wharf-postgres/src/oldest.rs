//! `oldest_message_timestamp_ms` for push and pull answers.
//!
//! Finding a queue's oldest message is an index scan from the queue's start,
//! where consumed messages leave dead index entries until vacuum comes; on a
//! busy queue that walk is the largest part of a push or pull. So those
//! answers reuse the value this node found for the queue in the last
//! [`OLDEST_TTL_MS`] (by the broker's clock) and look again only when it is
//! older. The API calls metrics best-effort; `GET …/metrics` always looks.
//! An empty queue is exact either way: its oldest is 0, and after a push into
//! it, the push's own timestamp.

use std::collections::HashMap;
use std::sync::Mutex;

use wharf_core::QueueId;

/// How long a found oldest timestamp is reused for answers.
pub const OLDEST_TTL_MS: i64 = 1_000;

/// Bound on remembered queues; when full, the cache starts over.
const MAX_QUEUES: usize = 100_000;

/// The statement fragment that looks, and the one that does not.
/// A queue's first key is its oldest message (ids begin with the timestamp).
pub(crate) const OLDEST_LOOKED_UP: &str = "(SELECT timestamp_ms FROM messages WHERE queue_id = $1 ORDER BY id LIMIT 1)";
pub(crate) const OLDEST_SKIPPED: &str = "NULL::bigint";

#[derive(Default)]
pub(crate) struct OldestCache {
    queues: Mutex<HashMap<QueueId, (i64, i64)>>,
}

impl OldestCache {
    /// The remembered oldest timestamp of `queue`, if found since
    /// `now_ms - OLDEST_TTL_MS`.
    pub fn fresh(&self, queue: QueueId, now_ms: i64) -> Option<i64> {
        let queues = crate::lock(&self.queues);
        let &(oldest, found_at) = queues.get(&queue)?;
        (now_ms >= found_at && now_ms - found_at < OLDEST_TTL_MS).then_some(oldest)
    }

    pub fn put(&self, queue: QueueId, oldest: i64, now_ms: i64) {
        let mut queues = crate::lock(&self.queues);
        if queues.len() >= MAX_QUEUES {
            queues.clear();
        }
        queues.insert(queue, (oldest, now_ms));
    }

    /// The answer's oldest timestamp: `looked_up` is what the statement found
    /// (NULL when it did not look, or found no message), `cached` what
    /// `fresh` gave before it ran, `backlog` the count the answer reports.
    pub fn resolve(
        &self,
        queue: QueueId,
        looked_up: Option<i64>,
        cached: Option<i64>,
        backlog: u64,
        now_ms: i64,
    ) -> u64 {
        if backlog == 0 {
            return 0;
        }
        let oldest = match (looked_up, cached) {
            (Some(found), _) => {
                self.put(queue, found, now_ms);
                found
            }
            (None, Some(remembered)) => remembered,
            // Counted but not found: messages are arriving as we look.
            (None, None) => now_ms,
        };
        oldest.max(0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_values_are_reused_until_they_are_stale() {
        let cache = OldestCache::default();
        let queue = QueueId(7);
        assert_eq!(cache.fresh(queue, 5_000), None);
        assert_eq!(cache.resolve(queue, Some(4_000), None, 3, 5_000), 4_000);
        assert_eq!(cache.fresh(queue, 5_999), Some(4_000));
        assert_eq!(cache.resolve(queue, None, Some(4_000), 3, 5_999), 4_000);
        assert_eq!(cache.fresh(queue, 6_000), None, "stale after the ttl");
        assert_eq!(cache.fresh(queue, 4_999), None, "a clock that went back does not trust it");
    }

    #[test]
    fn an_empty_queue_is_exact() {
        let cache = OldestCache::default();
        assert_eq!(cache.resolve(QueueId(1), None, Some(4_000), 0, 5_000), 0);
        assert_eq!(cache.resolve(QueueId(1), None, None, 2, 5_000), 5_000);
    }
}
