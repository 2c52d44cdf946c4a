//! Messages this node pushed, delivered, acknowledged and retried, per
//! queue since it started: the per-queue rates of `GET /metrics` (with a
//! token). Counted where the API answers, so both backends count alike;
//! with several PostgreSQL nodes, Prometheus sums the nodes' series.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use wharf_core::QueueId;

/// One queue's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub pushed: u64,
    pub delivered: u64,
    pub acked: u64,
    pub retried: u64,
}

#[derive(Default)]
struct AtomicCounts([AtomicU64; 4]);

impl AtomicCounts {
    fn add(&self, change: Counts) {
        let values = [change.pushed, change.delivered, change.acked, change.retried];
        for (counter, value) in self.0.iter().zip(values) {
            if value > 0 {
                counter.fetch_add(value, Ordering::Relaxed);
            }
        }
    }

    fn read(&self) -> Counts {
        let [pushed, delivered, acked, retried] = [0, 1, 2, 3].map(|n| self.0[n].load(Ordering::Relaxed));
        Counts { pushed, delivered, acked, retried }
    }
}

/// Counting takes the map's read lock and adds to atomics: no request waits
/// for another. (A mutex here was contended right after every group commit,
/// when the requests it made durable all answer at once.) The write lock is
/// taken only for a queue's first count and for a deletion.
#[derive(Default)]
pub struct QueueCounts {
    queues: RwLock<HashMap<QueueId, AtomicCounts>>,
}

impl QueueCounts {
    // Counter updates cannot leave the map torn: recover from poisoning.
    fn read(&self) -> RwLockReadGuard<'_, HashMap<QueueId, AtomicCounts>> {
        self.queues.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<QueueId, AtomicCounts>> {
        self.queues.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn add(&self, queue: QueueId, change: Counts) {
        if let Some(counts) = self.read().get(&queue) {
            counts.add(change);
            return;
        }
        self.write().entry(queue).or_default().add(change);
    }

    /// A deleted queue's counts go with it.
    pub fn forget(&self, queue: QueueId) {
        self.write().remove(&queue);
    }

    pub fn get(&self, queue: QueueId) -> Counts {
        self.read().get(&queue).map(AtomicCounts::read).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_per_queue_and_go_with_the_queue() {
        let counts = QueueCounts::default();
        let (one, two) = (QueueId::random(), QueueId::random());
        counts.add(one, Counts { pushed: 3, ..Counts::default() });
        counts.add(one, Counts { delivered: 2, acked: 1, retried: 1, ..Counts::default() });
        counts.add(two, Counts { pushed: 1, ..Counts::default() });
        assert_eq!(counts.get(one), Counts { pushed: 3, delivered: 2, acked: 1, retried: 1 });
        assert_eq!(counts.get(two).pushed, 1);
        counts.forget(one);
        assert_eq!(counts.get(one), Counts::default());
    }
}
