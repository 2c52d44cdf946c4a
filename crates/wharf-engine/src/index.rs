//! The in-memory index of one queue: every live message's metadata and where
//! its body is on disk, grouped by state (ready, delayed, leased).
//!
//! Sized for large backlogs: a message costs one 40-byte slot in a deque kept
//! in sequence order (no per-message allocation, no tree nodes) plus 8 bytes
//! in the ready queue while it is deliverable. Removal leaves a tombstone
//! that is trimmed from the front or compacted away in bulk; the ready queue
//! drops stale entries lazily when it meets them.
//!
//! Timestamps mostly rise with sequence numbers, which lets retention stop
//! at the first young message. A message older than one before it (a
//! dead-lettered message keeps its original timestamp but takes a new
//! sequence number; a wall clock may step back) is a straggler: flagged in
//! its entry and listed, by timestamp, in a set that only such messages
//! pay for.
//!
//! Pure bookkeeping: no I/O and no clock of its own, so the engine, recovery
//! and the model-based tests all drive the same code.

use std::collections::{BTreeSet, VecDeque};

use wharf_core::model::{ContentType, QueueMetrics};

use crate::log::BodyLocation;

const LEASED: u8 = 1;
const REMOVED: u8 = 2;
/// Older than a message before it in sequence order; listed in `stragglers`.
const STRAGGLER: u8 = 4;

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

    fn is_straggler(&self) -> bool {
        self.flags & STRAGGLER != 0
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
    /// (timestamp_ms, seq) of stragglers. Every other live message is at
    /// least as young as every live message before it.
    stragglers: BTreeSet<(u64, u64)>,
    /// Highest timestamp of the live messages: an appended message older
    /// than this is a straggler.
    newest_ms: u64,
    /// An insert before the end (recovery of copied-forward messages) may
    /// have broken the order above; `reorder` restores it.
    unordered: bool,
    /// Nothing in the queue falls due before this time, so the sweeper may
    /// pass it by until then ([`QueueIndex::settle`]). 0, "visit", until
    /// housekeeping works it out; every change that can bring a due time
    /// nearer (a new message, a lease, a shorter lease, a requeue) sets it
    /// back to 0.
    quiet_until_ms: u64,
}

impl QueueIndex {
    pub fn get(&self, seq: u64) -> Option<&Entry> {
        self.position(seq).map(|at| &self.slots[at].entry)
    }

    /// Body bytes of every live message.
    pub fn backlog_bytes(&self) -> u64 {
        self.backlog_bytes
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
        self.quiet_until_ms = 0;
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
                // Recovery again: a message removed and replayed back in.
                self.slots[at].entry = entry;
                self.unordered = true;
                self.admit(seq, &entry, now_ms);
                None
            }
            Err(at) if at < self.slots.len() => {
                // Only recovery of messages copied forward out of deleted
                // segments inserts anywhere but at the end.
                self.slots.insert(at, Slot { seq, entry });
                self.unordered = true;
                self.admit(seq, &entry, now_ms);
                None
            }
            Err(at) => {
                let entry = if entry.timestamp_ms < self.newest_ms {
                    self.stragglers.insert((entry.timestamp_ms, seq));
                    Entry { flags: STRAGGLER, ..entry }
                } else {
                    self.newest_ms = entry.timestamp_ms;
                    entry
                };
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
        if entry.is_straggler() {
            self.stragglers.remove(&(entry.timestamp_ms, seq));
        }
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

    /// When the sweeper must look at this queue again: the sweep before
    /// `quiet_until_ms` would find nothing to do.
    pub fn quiet_until_ms(&self) -> u64 {
        self.quiet_until_ms
    }

    /// Called once housekeeping has done everything due: the earliest of
    /// the next delayed message, the next lease end and, with `retention_ms`,
    /// the oldest message's expiry. An empty queue is quiet until a change.
    pub fn settle(&mut self, retention_ms: u64) {
        if self.unordered {
            // The oldest message is not at the front; look again next pass.
            self.quiet_until_ms = 0;
            return;
        }
        // The front slot is the oldest of the ordered messages (it is never
        // a tombstone); only a straggler can be older.
        let oldest = self.slots.front().map(|slot| slot.entry.timestamp_ms);
        let oldest = [oldest, self.stragglers.first().map(|&(timestamp, _)| timestamp)].into_iter().flatten().min();
        let due = [
            self.delayed.first().map(|&(visible_at, _)| visible_at),
            self.leased.first().map(|&(expiry, _)| expiry),
            oldest.map(|timestamp| timestamp.saturating_add(retention_ms)),
        ];
        self.quiet_until_ms = due.into_iter().flatten().min().unwrap_or(u64::MAX);
    }

    /// Makes the sweeper look at this queue on its next pass (its
    /// retention changed, say).
    pub fn unsettle(&mut self) {
        self.quiet_until_ms = 0;
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
        self.quiet_until_ms = 0;
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
        self.quiet_until_ms = 0;
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
        self.quiet_until_ms = 0;
        let Some(at) = self.position(seq) else { return false };
        let entry = self.slots[at].entry;
        self.unplace(seq, &entry);
        let updated = Entry { flags: entry.flags & STRAGGLER, time_ms: visible_at_ms, ..entry };
        self.slots[at].entry = updated;
        self.place(seq, &updated, now_ms);
        true
    }

    /// Records a delivery: sets the count and, if the message is not leased
    /// (recovery replaying a delivery that was in flight at a crash), leases
    /// it until `lease_expiry_ms`, so the lost lease expires and counts as a
    /// failed delivery like any other.
    pub fn record_delivery(&mut self, seq: u64, attempts: u32, lease_expiry_ms: u64) {
        self.quiet_until_ms = 0;
        let Some(at) = self.position(seq) else { return };
        let entry = self.slots[at].entry;
        if entry.is_leased() {
            self.slots[at].entry.attempts = saturate(attempts);
            return;
        }
        self.unplace(seq, &entry);
        let flags = LEASED | (entry.flags & STRAGGLER);
        let leased = Entry { attempts: saturate(attempts), flags, time_ms: lease_expiry_ms, ..entry };
        self.slots[at].entry = leased;
        self.leased.insert((lease_expiry_ms, seq));
    }

    /// Up to `count` deliverable messages, in delivery order, not leased.
    pub fn first_ready(&self, count: usize, now_ms: u64) -> Vec<u64> {
        let mut seen = Vec::with_capacity(count.min(self.ready.len()));
        // A redrive asks for thousands: a set keeps the duplicate check cheap.
        let mut distinct = std::collections::HashSet::with_capacity(seen.capacity());
        for &seq in &self.ready {
            if seen.len() == count {
                break;
            }
            let deliverable = self.get(seq).is_some_and(|entry| entry.is_deliverable(now_ms));
            if deliverable && distinct.insert(seq) {
                seen.push(seq);
            }
        }
        seen
    }

    /// Messages received at or before `cutoff_ms`, for retention. Past the
    /// first younger message only stragglers can be older, so the scan stops
    /// there and the straggler set supplies the rest.
    pub fn received_by(&mut self, cutoff_ms: u64) -> Vec<u64> {
        if self.unordered {
            self.reorder();
        }
        let mut received = Vec::new();
        let mut younger_from = None;
        for (seq, entry) in self.entries() {
            if entry.timestamp_ms > cutoff_ms {
                younger_from = Some(seq);
                break;
            }
            received.push(seq);
        }
        if let Some(first_younger) = younger_from {
            let older = self.stragglers.range(..=(cutoff_ms, u64::MAX)).map(|&(_, seq)| seq);
            received.extend(older.filter(|seq| *seq > first_younger));
        }
        received
    }

    pub fn metrics(&self) -> QueueMetrics {
        QueueMetrics {
            backlog_count: self.live as u64,
            backlog_bytes: self.backlog_bytes,
            oldest_message_timestamp_ms: self.oldest_timestamp_ms(),
        }
    }

    /// The front message is at least as old as every non-straggler.
    fn oldest_timestamp_ms(&self) -> u64 {
        if self.unordered {
            return self.entries().map(|(_, entry)| entry.timestamp_ms).min().unwrap_or(0);
        }
        let front = self.slots.front().map(|slot| slot.entry.timestamp_ms);
        let straggler = self.stragglers.first().map(|&(timestamp_ms, _)| timestamp_ms);
        front.into_iter().chain(straggler).min().unwrap_or(0)
    }

    /// Recomputes which messages are stragglers, in one pass.
    fn reorder(&mut self) {
        self.stragglers.clear();
        let mut newest_ms = 0;
        for slot in self.slots.iter_mut().filter(|slot| !slot.entry.is_removed()) {
            let entry = &mut slot.entry;
            entry.flags &= !STRAGGLER;
            if entry.timestamp_ms < newest_ms {
                entry.flags |= STRAGGLER;
                self.stragglers.insert((entry.timestamp_ms, slot.seq));
            } else {
                newest_ms = entry.timestamp_ms;
            }
        }
        self.newest_ms = newest_ms;
        self.unordered = false;
    }

    fn position(&self, seq: u64) -> Option<usize> {
        let at = slot_of(&self.slots, seq)?;
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
            self.newest_ms = 0;
            self.unordered = false;
        } else if self.ready.len() > 1024 && self.ready.len() > 2 * self.live {
            let slots = &self.slots;
            self.ready.retain(|seq| {
                let at = slot_of(slots, *seq);
                at.is_some_and(|at| !slots[at].entry.is_removed() && !slots[at].entry.is_leased())
            });
        }
        if self.slots.capacity() > 4096 && self.slots.capacity() > 4 * self.slots.len() {
            self.slots.shrink_to(self.slots.len() * 2);
        }
    }
}

/// Where the slot of `seq` is, tombstone or not. Slots hold distinct
/// sequence numbers in increasing order, so `seq` can be no further from
/// the front than `seq - front`; with one queue taking every sequence
/// number, it is exactly there. Searching only up to that bound finds a
/// dense queue's slot in one step instead of a binary search over the
/// whole backlog (a pull or an ack looks up every message it names).
fn slot_of(slots: &VecDeque<Slot>, seq: u64) -> Option<usize> {
    let front = slots.front()?.seq;
    let furthest = usize::try_from(seq.checked_sub(front)?).unwrap_or(usize::MAX).min(slots.len() - 1);
    if slots[furthest].seq == seq {
        return Some(furthest);
    }
    // Below `furthest` now; the deque is at most two slices in order.
    let (head, tail) = slots.as_slices();
    let search = |part: &[Slot]| part.binary_search_by_key(&seq, |slot| slot.seq).ok();
    match head.last() {
        Some(last) if furthest <= head.len() || seq <= last.seq => search(&head[..furthest.min(head.len())]),
        _ => search(&tail[..furthest - head.len()]).map(|at| at + head.len()),
    }
}

#[cfg(test)]
mod tests;
