//! The in-memory index of one queue: every live message's metadata and where
//! its body is on disk, grouped by state (ready, delayed, leased).
//!
//! Pure bookkeeping: no I/O and no clock of its own, so the engine, recovery
//! and the model-based tests all drive the same code.

use std::collections::{BTreeMap, BTreeSet};

use wharf_core::model::{ContentType, QueueMetrics};

use crate::log::BodyLocation;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub location: BodyLocation,
    pub body_len: u32,
    pub content_type: ContentType,
    /// Deliveries so far.
    pub attempts: u32,
    pub timestamp_ms: u64,
    /// Not deliverable before this time.
    pub visible_at_ms: u64,
    /// Leased until this time; 0 when not leased.
    pub lease_expiry_ms: u64,
}

impl Entry {
    pub fn is_leased(&self) -> bool {
        self.lease_expiry_ms != 0
    }
}

#[derive(Debug, Default)]
pub struct QueueIndex {
    entries: BTreeMap<u64, Entry>,
    /// Deliverable now, in sequence (arrival) order.
    ready: BTreeSet<u64>,
    /// (visible_at_ms, seq) of messages not yet deliverable.
    delayed: BTreeSet<(u64, u64)>,
    /// (lease_expiry_ms, seq) of leased messages.
    leased: BTreeSet<(u64, u64)>,
    backlog_bytes: u64,
}

impl QueueIndex {
    pub fn get(&self, seq: u64) -> Option<&Entry> {
        self.entries.get(&seq)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> impl Iterator<Item = (u64, &Entry)> {
        self.entries.iter().map(|(seq, entry)| (*seq, entry))
    }

    /// Adds (or replaces) a message; it is ready or delayed by `visible_at_ms`.
    /// Returns the entry it replaced.
    pub fn insert(&mut self, seq: u64, mut entry: Entry, now_ms: u64) -> Option<Entry> {
        let replaced = self.remove(seq);
        entry.lease_expiry_ms = 0;
        self.place(seq, &entry, now_ms);
        self.backlog_bytes += entry.body_len as u64;
        self.entries.insert(seq, entry);
        replaced
    }

    pub fn remove(&mut self, seq: u64) -> Option<Entry> {
        let entry = self.entries.remove(&seq)?;
        self.unplace(seq, &entry);
        self.backlog_bytes -= entry.body_len as u64;
        Some(entry)
    }

    /// Removes every message with a smaller sequence number.
    pub fn remove_before(&mut self, before_seq: u64) -> Vec<(u64, Entry)> {
        let doomed: Vec<u64> = self.entries.range(..before_seq).map(|(seq, _)| *seq).collect();
        doomed.into_iter().filter_map(|seq| self.remove(seq).map(|entry| (seq, entry))).collect()
    }

    /// Makes delayed messages whose time has come deliverable.
    pub fn promote(&mut self, now_ms: u64) {
        while let Some(&(visible_at, seq)) = self.delayed.first() {
            if visible_at > now_ms {
                break;
            }
            self.delayed.remove(&(visible_at, seq));
            self.ready.insert(seq);
        }
    }

    /// Sequence numbers of leases that ended at or before `now_ms`.
    pub fn expired_leases(&self, now_ms: u64) -> Vec<u64> {
        self.leased.iter().take_while(|(expiry, _)| *expiry <= now_ms).map(|(_, seq)| *seq).collect()
    }

    /// Leases up to `count` ready messages until `lease_expiry_ms`, counting
    /// a delivery for each. Returns their sequence numbers.
    pub fn lease_ready(&mut self, count: usize, lease_expiry_ms: u64) -> Vec<u64> {
        let mut taken = Vec::with_capacity(count.min(self.ready.len()));
        while taken.len() < count {
            let Some(seq) = self.ready.pop_first() else { break };
            if let Some(entry) = self.entries.get_mut(&seq) {
                entry.attempts += 1;
                entry.lease_expiry_ms = lease_expiry_ms;
                self.leased.insert((lease_expiry_ms, seq));
                taken.push(seq);
            }
        }
        taken
    }

    /// Moves a lease's end; the message must be leased.
    pub fn extend_lease(&mut self, seq: u64, lease_expiry_ms: u64) -> bool {
        let Some(entry) = self.entries.get_mut(&seq) else { return false };
        if !entry.is_leased() {
            return false;
        }
        self.leased.remove(&(entry.lease_expiry_ms, seq));
        entry.lease_expiry_ms = lease_expiry_ms;
        self.leased.insert((lease_expiry_ms, seq));
        true
    }

    /// Ends any lease and makes the message deliverable at `visible_at_ms`.
    pub fn requeue(&mut self, seq: u64, visible_at_ms: u64, now_ms: u64) -> bool {
        let Some(entry) = self.entries.get(&seq).copied() else { return false };
        self.unplace(seq, &entry);
        let updated = Entry { visible_at_ms, lease_expiry_ms: 0, ..entry };
        self.place(seq, &updated, now_ms);
        self.entries.insert(seq, updated);
        true
    }

    /// Records a delivery: sets the count and, if the message is not leased
    /// (recovery replaying a delivery that was in flight at a crash), leases
    /// it until `lease_expiry_ms`, so the lost lease expires and counts as a
    /// failed delivery like any other.
    pub fn record_delivery(&mut self, seq: u64, attempts: u32, lease_expiry_ms: u64) {
        let Some(entry) = self.entries.get(&seq).copied() else { return };
        if entry.is_leased() {
            if let Some(live) = self.entries.get_mut(&seq) {
                live.attempts = attempts;
            }
            return;
        }
        self.unplace(seq, &entry);
        let leased = Entry { attempts, lease_expiry_ms: lease_expiry_ms.max(1), ..entry };
        self.place(seq, &leased, lease_expiry_ms);
        self.entries.insert(seq, leased);
    }

    /// Up to `count` deliverable messages, oldest first, without leasing them.
    pub fn first_ready(&self, count: usize) -> Vec<u64> {
        self.ready.iter().take(count).copied().collect()
    }

    /// Messages received at or before `cutoff_ms`, for retention. Sequence order
    /// follows arrival, so the scan stops at the first younger message.
    pub fn received_by(&self, cutoff_ms: u64) -> Vec<u64> {
        self.entries.iter().take_while(|(_, entry)| entry.timestamp_ms <= cutoff_ms).map(|(seq, _)| *seq).collect()
    }

    pub fn metrics(&self) -> QueueMetrics {
        QueueMetrics {
            backlog_count: self.entries.len() as u64,
            backlog_bytes: self.backlog_bytes,
            oldest_message_timestamp_ms: self.entries.values().next().map_or(0, |entry| entry.timestamp_ms),
        }
    }

    fn place(&mut self, seq: u64, entry: &Entry, now_ms: u64) {
        if entry.is_leased() {
            self.leased.insert((entry.lease_expiry_ms, seq));
        } else if entry.visible_at_ms > now_ms {
            self.delayed.insert((entry.visible_at_ms, seq));
        } else {
            self.ready.insert(seq);
        }
    }

    fn unplace(&mut self, seq: u64, entry: &Entry) {
        self.ready.remove(&seq);
        self.delayed.remove(&(entry.visible_at_ms, seq));
        self.leased.remove(&(entry.lease_expiry_ms, seq));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(visible_at_ms: u64) -> Entry {
        Entry {
            location: BodyLocation { segment: 1, offset: 0 },
            body_len: 10,
            content_type: ContentType::Text,
            attempts: 0,
            timestamp_ms: 0,
            visible_at_ms,
            lease_expiry_ms: 0,
        }
    }

    #[test]
    fn delayed_messages_wait_for_their_time() {
        let mut index = QueueIndex::default();
        index.insert(1, entry(500), 0);
        assert!(index.lease_ready(10, 1_000).is_empty());
        index.promote(500);
        assert_eq!(index.lease_ready(10, 1_000), vec![1]);
    }

    #[test]
    fn leasing_counts_attempts_and_requeue_makes_visible_again() {
        let mut index = QueueIndex::default();
        index.insert(1, entry(0), 0);
        index.insert(2, entry(0), 0);
        assert_eq!(index.lease_ready(1, 100), vec![1]);
        assert_eq!(index.get(1).map(|e| e.attempts), Some(1));
        assert_eq!(index.expired_leases(99), Vec::<u64>::new());
        assert_eq!(index.expired_leases(100), vec![1]);
        index.requeue(1, 0, 100);
        assert_eq!(index.lease_ready(5, 200), vec![1, 2]);
        assert_eq!(index.get(1).map(|e| e.attempts), Some(2));
    }

    #[test]
    fn metrics_follow_inserts_and_removals() {
        let mut index = QueueIndex::default();
        index.insert(1, Entry { timestamp_ms: 7, ..entry(0) }, 0);
        index.insert(2, entry(0), 0);
        assert_eq!(
            index.metrics(),
            QueueMetrics { backlog_count: 2, backlog_bytes: 20, oldest_message_timestamp_ms: 7 }
        );
        index.remove(1);
        index.remove(2);
        assert_eq!(index.metrics(), QueueMetrics::default());
        assert!(index.lease_ready(1, 1).is_empty());
    }

    #[test]
    fn remove_before_takes_only_older_messages() {
        let mut index = QueueIndex::default();
        for seq in 1..=5 {
            index.insert(seq, entry(0), 0);
        }
        assert_eq!(index.remove_before(4).len(), 3);
        assert_eq!(index.first_ready(10), vec![4, 5]);
    }
}
