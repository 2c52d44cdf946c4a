//! The in-memory index of one queue: every live message's metadata and where
//! its body is on disk, grouped by state (ready, delayed, leased).
//!
//! Sized for large backlogs: a message costs one 40-byte slot in a deque kept
//! in sequence order (no per-message allocation, no tree nodes) plus 8 bytes
//! in the ready queue while it is deliverable. Removal leaves a tombstone
//! that is trimmed from the front or compacted away in bulk; the ready queue
//! drops stale entries lazily when it meets them.
//!
//! Pure bookkeeping: no I/O and no clock of its own, so the engine, recovery
//! and the model-based tests all drive the same code.

use std::collections::{BTreeSet, VecDeque};

use wharf_core::model::{ContentType, QueueMetrics};

use crate::log::BodyLocation;

const LEASED: u8 = 1;
const REMOVED: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub location: BodyLocation,
    pub body_len: u32,
    attempts: u16,
    pub content_type: ContentType,
    flags: u8,
    pub timestamp_ms: u64,
    /// When not leased: not deliverable before this time. When leased: the
    /// lease's end.
    time_ms: u64,
}

impl Entry {
    pub fn new(
        location: BodyLocation,
        body_len: u32,
        content_type: ContentType,
        attempts: u32,
        timestamp_ms: u64,
        visible_at_ms: u64,
    ) -> Self {
        Self {
            location,
            body_len,
            attempts: saturate(attempts),
            content_type,
            flags: 0,
            timestamp_ms,
            time_ms: visible_at_ms,
        }
    }

    /// Deliveries so far.
    pub fn attempts(&self) -> u32 {
        self.attempts as u32
    }

    pub fn is_leased(&self) -> bool {
        self.flags & LEASED != 0
    }

    /// When the lease of a leased message ends.
    pub fn lease_expiry_ms(&self) -> Option<u64> {
        self.is_leased().then_some(self.time_ms)
    }

    /// When an unleased message becomes deliverable.
    pub fn visible_at_ms(&self) -> u64 {
        self.time_ms
    }

    /// Neither leased nor waiting for a later time.
    fn is_deliverable(&self, now_ms: u64) -> bool {
        !self.is_leased() && self.time_ms <= now_ms
    }

    fn is_removed(&self) -> bool {
        self.flags & REMOVED != 0
    }
}

/// Deliveries are bounded by `max_retries` (at most 100) + 1, so u16 is ample.
fn saturate(attempts: u32) -> u16 {
    attempts.min(u16::MAX as u32) as u16
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    seq: u64,
    entry: Entry,
}

#[derive(Debug, Default)]
pub struct QueueIndex {
    /// In sequence order, with tombstones; the front is never a tombstone.
    slots: VecDeque<Slot>,
    live: usize,
    /// Deliverable messages in the order they became deliverable. May hold
    /// stale sequence numbers (removed, leased); they are skipped.
    ready: VecDeque<u64>,
    /// (visible_at_ms, seq) of messages not yet deliverable.
    delayed: BTreeSet<(u64, u64)>,
    /// (lease_expiry_ms, seq) of leased messages.
    leased: BTreeSet<(u64, u64)>,
    backlog_bytes: u64,
}

impl QueueIndex {
    pub fn get(&self, seq: u64) -> Option<&Entry> {
        self.position(seq).map(|at| &self.slots[at].entry)
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    pub fn entries(&self) -> impl Iterator<Item = (u64, &Entry)> {
        self.slots.iter().filter(|slot| !slot.entry.is_removed()).map(|slot| (slot.seq, &slot.entry))
    }

    /// Adds a message, ready or delayed by its visible-at time. If the
    /// message exists (copied forward), only where its body lives changes.
    /// Returns the entry as it was before.
    pub fn insert(&mut self, seq: u64, entry: Entry, now_ms: u64) -> Option<Entry> {
        let entry = Entry { flags: 0, ..entry };
        let at = match self.slots.back() {
            Some(last) if last.seq >= seq => self.slots.binary_search_by_key(&seq, |slot| slot.seq),
            _ => Err(self.slots.len()),
        };
        match at {
            Ok(at) if !self.slots[at].entry.is_removed() => {
                let existing = &mut self.slots[at].entry;
                let before = *existing;
                self.backlog_bytes = self.backlog_bytes - before.body_len as u64 + entry.body_len as u64;
                existing.location = entry.location;
                existing.body_len = entry.body_len;
                Some(before)
            }
            Ok(at) => {
                self.slots[at].entry = entry;
                self.admit(seq, &entry, now_ms);
                None
            }
            Err(at) => {
                // Only recovery of messages copied forward out of deleted
                // segments inserts anywhere but at the end.
                self.slots.insert(at, Slot { seq, entry });
                self.admit(seq, &entry, now_ms);
                None
            }
        }
    }

    pub fn remove(&mut self, seq: u64) -> Option<Entry> {
        let at = self.position(seq)?;
        let entry = self.slots[at].entry;
        self.slots[at].entry.flags = REMOVED;
        self.unplace(seq, &entry);
        self.live -= 1;
        self.backlog_bytes -= entry.body_len as u64;
        self.trim();
        Some(entry)
    }

    /// Removes every message with a smaller sequence number.
    pub fn remove_before(&mut self, before_seq: u64) -> Vec<(u64, Entry)> {
        let doomed: Vec<u64> = self.entries().take_while(|(seq, _)| *seq < before_seq).map(|(seq, _)| seq).collect();
        doomed.into_iter().filter_map(|seq| self.remove(seq).map(|entry| (seq, entry))).collect()
    }

    /// Makes delayed messages whose time has come deliverable.
    pub fn promote(&mut self, now_ms: u64) {
        while let Some(&(visible_at, seq)) = self.delayed.first() {
            if visible_at > now_ms {
                break;
            }
            self.delayed.remove(&(visible_at, seq));
            self.ready.push_back(seq);
        }
    }

    /// Sequence numbers of leases that ended at or before `now_ms`.
    pub fn expired_leases(&self, now_ms: u64) -> Vec<u64> {
        self.leased.iter().take_while(|(expiry, _)| *expiry <= now_ms).map(|(_, seq)| *seq).collect()
    }

    /// Leases up to `count` ready messages until `lease_expiry_ms`, counting
    /// a delivery for each. Returns their sequence numbers.
    pub fn lease_ready(&mut self, count: usize, now_ms: u64, lease_expiry_ms: u64) -> Vec<u64> {
        let mut taken = Vec::with_capacity(count.min(self.ready.len()));
        while taken.len() < count {
            let Some(seq) = self.ready.pop_front() else { break };
            let Some(at) = self.position(seq) else { continue };
            let entry = &mut self.slots[at].entry;
            // A stale copy: leased since, or requeued with a delay.
            if !entry.is_deliverable(now_ms) {
                continue;
            }
            // Due but not yet promoted: it leaves the delayed set now.
            self.delayed.remove(&(entry.time_ms, seq));
            entry.attempts = entry.attempts.saturating_add(1);
            entry.flags |= LEASED;
            entry.time_ms = lease_expiry_ms;
            self.leased.insert((lease_expiry_ms, seq));
            taken.push(seq);
        }
        taken
    }

    /// Moves a lease's end; the message must be leased.
    pub fn extend_lease(&mut self, seq: u64, lease_expiry_ms: u64) -> bool {
        let Some(at) = self.position(seq) else { return false };
        let entry = &mut self.slots[at].entry;
        if !entry.is_leased() {
            return false;
        }
        self.leased.remove(&(entry.time_ms, seq));
        entry.time_ms = lease_expiry_ms;
        self.leased.insert((lease_expiry_ms, seq));
        true
    }

    /// Ends any lease and makes the message deliverable at `visible_at_ms`.
    pub fn requeue(&mut self, seq: u64, visible_at_ms: u64, now_ms: u64) -> bool {
        let Some(at) = self.position(seq) else { return false };
        let entry = self.slots[at].entry;
        self.unplace(seq, &entry);
        let updated = Entry { flags: 0, time_ms: visible_at_ms, ..entry };
        self.slots[at].entry = updated;
        self.place(seq, &updated, now_ms);
        true
    }

    /// Records a delivery: sets the count and, if the message is not leased
    /// (recovery replaying a delivery that was in flight at a crash), leases
    /// it until `lease_expiry_ms`, so the lost lease expires and counts as a
    /// failed delivery like any other.
    pub fn record_delivery(&mut self, seq: u64, attempts: u32, lease_expiry_ms: u64) {
        let Some(at) = self.position(seq) else { return };
        let entry = self.slots[at].entry;
        if entry.is_leased() {
            self.slots[at].entry.attempts = saturate(attempts);
            return;
        }
        self.unplace(seq, &entry);
        let leased = Entry { attempts: saturate(attempts), flags: LEASED, time_ms: lease_expiry_ms, ..entry };
        self.slots[at].entry = leased;
        self.leased.insert((lease_expiry_ms, seq));
    }

    /// Up to `count` deliverable messages, in delivery order, not leased.
    pub fn first_ready(&self, count: usize, now_ms: u64) -> Vec<u64> {
        let mut seen = Vec::with_capacity(count);
        for &seq in &self.ready {
            if seen.len() == count {
                break;
            }
            let deliverable = self.get(seq).is_some_and(|entry| entry.is_deliverable(now_ms));
            if deliverable && !seen.contains(&seq) {
                seen.push(seq);
            }
        }
        seen
    }

    /// Messages received at or before `cutoff_ms`, for retention. Sequence
    /// order follows arrival, so the scan stops at the first younger message.
    pub fn received_by(&self, cutoff_ms: u64) -> Vec<u64> {
        self.entries().take_while(|(_, entry)| entry.timestamp_ms <= cutoff_ms).map(|(seq, _)| seq).collect()
    }

    pub fn metrics(&self) -> QueueMetrics {
        QueueMetrics {
            backlog_count: self.live as u64,
            backlog_bytes: self.backlog_bytes,
            oldest_message_timestamp_ms: self.slots.front().map_or(0, |slot| slot.entry.timestamp_ms),
        }
    }

    fn position(&self, seq: u64) -> Option<usize> {
        let at = self.slots.binary_search_by_key(&seq, |slot| slot.seq).ok()?;
        (!self.slots[at].entry.is_removed()).then_some(at)
    }

    /// Counts a new live entry and files it as ready or delayed.
    fn admit(&mut self, seq: u64, entry: &Entry, now_ms: u64) {
        self.live += 1;
        self.backlog_bytes += entry.body_len as u64;
        self.place(seq, entry, now_ms);
    }

    fn place(&mut self, seq: u64, entry: &Entry, now_ms: u64) {
        if entry.is_leased() {
            self.leased.insert((entry.time_ms, seq));
        } else if entry.time_ms > now_ms {
            self.delayed.insert((entry.time_ms, seq));
        } else {
            self.ready.push_back(seq);
        }
    }

    /// Takes a message out of the delayed or leased set; a stale entry left
    /// in the ready queue is skipped when met.
    fn unplace(&mut self, seq: u64, entry: &Entry) {
        if entry.is_leased() {
            self.leased.remove(&(entry.time_ms, seq));
        } else {
            self.delayed.remove(&(entry.time_ms, seq));
        }
    }

    /// Drops tombstones from the front, and compacts when they outnumber
    /// live entries (a long-lived message at the front holds the rest).
    fn trim(&mut self) {
        while self.slots.front().is_some_and(|slot| slot.entry.is_removed()) {
            self.slots.pop_front();
        }
        let tombstones = self.slots.len() - self.live;
        if tombstones > 1024 && tombstones > self.live {
            self.slots.retain(|slot| !slot.entry.is_removed());
        }
        if self.live == 0 {
            self.ready.clear();
        } else if self.ready.len() > 1024 && self.ready.len() > 2 * self.live {
            let slots = &self.slots;
            self.ready.retain(|seq| {
                let at = slots.binary_search_by_key(seq, |slot| slot.seq).ok();
                at.is_some_and(|at| !slots[at].entry.is_removed() && !slots[at].entry.is_leased())
            });
        }
        if self.slots.capacity() > 4096 && self.slots.capacity() > 4 * self.slots.len() {
            self.slots.shrink_to(self.slots.len() * 2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(visible_at_ms: u64) -> Entry {
        Entry::new(BodyLocation { segment: 1, offset: 0 }, 10, ContentType::Text, 0, 0, visible_at_ms)
    }

    #[test]
    fn an_entry_is_32_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 32);
        assert_eq!(std::mem::size_of::<Slot>(), 40);
    }

    #[test]
    fn delayed_messages_wait_for_their_time() {
        let mut index = QueueIndex::default();
        index.insert(1, entry(500), 0);
        assert!(index.lease_ready(10, 0, 1_000).is_empty());
        index.promote(500);
        assert_eq!(index.lease_ready(10, 500, 1_000), vec![1]);
    }

    #[test]
    fn leasing_counts_attempts_and_requeue_goes_to_the_back() {
        let mut index = QueueIndex::default();
        index.insert(1, entry(0), 0);
        index.insert(2, entry(0), 0);
        assert_eq!(index.lease_ready(1, 0, 100), vec![1]);
        assert_eq!(index.get(1).map(Entry::attempts), Some(1));
        assert_eq!(index.expired_leases(99), Vec::<u64>::new());
        assert_eq!(index.expired_leases(100), vec![1]);
        index.requeue(1, 0, 100);
        assert_eq!(index.lease_ready(5, 100, 200), vec![2, 1]);
        assert_eq!(index.get(1).map(Entry::attempts), Some(2));
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
        assert!(index.lease_ready(1, 0, 1).is_empty());
    }

    #[test]
    fn remove_before_takes_only_older_messages() {
        let mut index = QueueIndex::default();
        for seq in 1..=5 {
            index.insert(seq, entry(0), 0);
        }
        assert_eq!(index.remove_before(4).len(), 3);
        assert_eq!(index.first_ready(10, 0), vec![4, 5]);
    }

    #[test]
    fn tombstones_behind_a_pinned_message_are_compacted() {
        let mut index = QueueIndex::default();
        index.insert(1, entry(u64::MAX), 0);
        for seq in 2..5_000 {
            index.insert(seq, entry(0), 0);
        }
        for seq in 2..5_000 {
            index.remove(seq);
        }
        assert_eq!(index.len(), 1);
        assert!(index.slots.len() < 1_100, "{} slots kept", index.slots.len());
        assert!(index.ready.len() < 1_100, "{} ready kept", index.ready.len());
    }

    #[test]
    fn a_stale_ready_copy_of_a_delayed_message_is_not_delivered_early() {
        let mut index = QueueIndex::default();
        index.insert(1, entry(0), 0);
        // As recovery replays Deliver then Requeue with a delay: the ready
        // queue still holds the message's first position.
        index.record_delivery(1, 1, 0);
        index.requeue(1, 5_000, 0);
        assert!(index.lease_ready(10, 100, 1_000).is_empty());
        assert!(index.first_ready(10, 100).is_empty());
        index.promote(5_000);
        assert_eq!(index.lease_ready(10, 5_000, 9_000), vec![1]);
        assert!(index.lease_ready(10, 5_000, 9_000).is_empty(), "leased once only");
    }

    #[test]
    fn out_of_order_insert_keeps_sequence_order() {
        let mut index = QueueIndex::default();
        index.insert(5, entry(0), 0);
        index.insert(2, entry(0), 0);
        let order: Vec<u64> = index.entries().map(|(seq, _)| seq).collect();
        assert_eq!(order, [2, 5]);
        assert!(index.get(2).is_some());
    }
}
