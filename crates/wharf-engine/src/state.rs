//! Everything the engine keeps in memory, and how each log record changes it.
//! Live operations and recovery both go through [`State::apply`], so a
//! replayed log rebuilds exactly the state the records described.

use std::collections::HashMap;

use wharf_core::{MessageId, QueueId};

use crate::catalog::journal::CatalogJournal;
use crate::catalog::Catalog;
use crate::index::{Entry, QueueIndex};
use crate::log::BodyLocation;
use crate::record::{PushRef, Record};

pub struct State {
    pub catalog: Catalog,
    /// Where catalog changes are made durable; changed only with `catalog`.
    pub catalog_journal: CatalogJournal,
    pub queues: HashMap<QueueId, QueueIndex>,
    /// Next message sequence number; shared by all queues.
    pub next_seq: u64,
    /// Live messages whose body is in each segment.
    pub segment_live: HashMap<u64, u64>,
    /// Oldest segment file still on disk.
    pub oldest_segment: u64,
}

impl State {
    pub fn new(catalog: Catalog, catalog_journal: CatalogJournal, oldest_segment: u64) -> Self {
        Self {
            catalog,
            catalog_journal,
            queues: HashMap::new(),
            next_seq: 1,
            segment_live: HashMap::new(),
            oldest_segment,
        }
    }

    pub fn message_id(&self, seq: u64) -> MessageId {
        MessageId(((self.catalog.id_prefix as u128) << 64) | seq as u128)
    }

    /// The sequence number of a message id minted by this data directory.
    pub fn seq_of(&self, id: MessageId) -> Option<u64> {
        ((id.0 >> 64) as u64 == self.catalog.id_prefix).then_some(id.0 as u64)
    }

    pub fn allocate_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Applies one record. `body` is where a `Push` record's body was
    /// written. Records for queues that no longer exist are ignored.
    pub fn apply(&mut self, record: &Record, body: Option<BodyLocation>, now_ms: u64) {
        match record {
            Record::Push { queue, seq, timestamp_ms, visible_at_ms, attempts, content_type, body: bytes } => {
                let push = PushRef {
                    queue: *queue,
                    seq: *seq,
                    timestamp_ms: *timestamp_ms,
                    visible_at_ms: *visible_at_ms,
                    attempts: *attempts,
                    content_type: *content_type,
                    body: bytes,
                };
                self.apply_push(&push, body, now_ms);
            }
            Record::Delete { queue, seq } => {
                self.remove_entry(*queue, *seq);
            }
            Record::Deliver { queue, seq, attempts } => {
                if let Some(index) = self.queues.get_mut(queue) {
                    index.record_delivery(*seq, *attempts, now_ms);
                }
            }
            Record::Requeue { queue, seq, visible_at_ms } => {
                if let Some(index) = self.queues.get_mut(queue) {
                    index.requeue(*seq, *visible_at_ms, now_ms);
                }
            }
            Record::Purge { queue, before_seq } => {
                let removed = self.queues.get_mut(queue).map(|index| index.remove_before(*before_seq));
                for (_, entry) in removed.unwrap_or_default() {
                    self.release_segment(entry.location.segment as u64);
                }
            }
            Record::Move { queue, seq, to_queue, new_seq } => {
                self.next_seq = self.next_seq.max(new_seq + 1);
                let Some(entry) = self.remove_entry(*queue, *seq) else { return };
                if !self.catalog.all_queues().contains_key(to_queue) {
                    return;
                }
                let moved = Entry::new(entry.location, entry.body_len, entry.content_type, 0, entry.timestamp_ms, 0);
                self.insert_entry(*to_queue, *new_seq, moved, now_ms);
            }
        }
    }

    /// Applies a push record; recovery calls this with the body borrowed
    /// from the segment it reads, so replay copies no bodies.
    pub fn apply_push(&mut self, push: &PushRef<'_>, body: Option<BodyLocation>, now_ms: u64) {
        self.next_seq = self.next_seq.max(push.seq + 1);
        let Some(location) = body else { return };
        if !self.catalog.all_queues().contains_key(&push.queue) {
            return;
        }
        let entry = Entry::new(
            location,
            push.body.len() as u32,
            push.content_type,
            push.attempts,
            push.timestamp_ms,
            push.visible_at_ms,
        );
        self.insert_entry(push.queue, push.seq, entry, now_ms);
    }

    fn insert_entry(&mut self, queue: QueueId, seq: u64, entry: Entry, now_ms: u64) {
        let segment = entry.location.segment as u64;
        let replaced = self.queues.entry(queue).or_default().insert(seq, entry, now_ms);
        if let Some(old) = replaced {
            self.release_segment(old.location.segment as u64);
        }
        *self.segment_live.entry(segment).or_insert(0) += 1;
    }

    pub fn remove_entry(&mut self, queue: QueueId, seq: u64) -> Option<Entry> {
        let entry = self.queues.get_mut(&queue)?.remove(seq)?;
        self.release_segment(entry.location.segment as u64);
        Some(entry)
    }

    /// Forgets a deleted queue's messages.
    pub fn drop_queue(&mut self, queue: QueueId) {
        if let Some(index) = self.queues.remove(&queue) {
            for (_, entry) in index.entries() {
                self.release_segment(entry.location.segment as u64);
            }
        }
    }

    fn release_segment(&mut self, segment: u64) {
        if let Some(live) = self.segment_live.get_mut(&segment) {
            *live = live.saturating_sub(1);
            if *live == 0 {
                self.segment_live.remove(&segment);
            }
        }
    }

    /// Segments below `below` that no live message needs, oldest first;
    /// they are forgotten here and must be deleted by the caller.
    pub fn take_dead_segments(&mut self, below: u64) -> Vec<u64> {
        let mut dead = Vec::new();
        while self.oldest_segment < below && !self.segment_live.contains_key(&self.oldest_segment) {
            dead.push(self.oldest_segment);
            self.oldest_segment += 1;
        }
        dead
    }
}
