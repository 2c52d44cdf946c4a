//! Unit tests of the queue index.

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
    index.insert(2, Entry { timestamp_ms: 9, ..entry(0) }, 0);
    assert_eq!(index.metrics(), QueueMetrics { backlog_count: 2, backlog_bytes: 20, oldest_message_timestamp_ms: 7 });
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

fn received_at(timestamp_ms: u64) -> Entry {
    Entry { timestamp_ms, ..entry(0) }
}

#[test]
fn an_older_message_behind_a_younger_one_expires_and_counts_as_oldest() {
    let mut index = QueueIndex::default();
    index.insert(1, received_at(100), 0);
    index.insert(2, received_at(200), 0);
    // Dead-lettered: original timestamp, new sequence number.
    index.insert(3, received_at(50), 0);
    index.insert(4, received_at(300), 0);
    assert_eq!(index.metrics().oldest_message_timestamp_ms, 50);
    assert_eq!(index.received_by(49), Vec::<u64>::new());
    assert_eq!(index.received_by(60), vec![3]);
    assert_eq!(index.received_by(150), vec![1, 3]);
    assert_eq!(index.received_by(1_000), vec![1, 2, 3, 4]);
    index.remove(3);
    assert_eq!(index.metrics().oldest_message_timestamp_ms, 100);
    assert!(index.stragglers.is_empty());
}

#[test]
fn a_straggler_stays_one_through_leases_and_requeues() {
    let mut index = QueueIndex::default();
    index.insert(1, received_at(100), 0);
    index.insert(2, received_at(50), 0);
    assert_eq!(index.lease_ready(2, 0, 10), vec![1, 2]);
    index.requeue(2, 0, 10);
    index.record_delivery(2, 2, 20);
    index.remove(1);
    assert_eq!(index.metrics().oldest_message_timestamp_ms, 50);
    assert_eq!(index.received_by(60), vec![2]);
    index.remove(2);
    assert!(index.stragglers.is_empty() && index.is_empty());
}

#[test]
fn an_insert_before_the_end_is_reordered_before_retention() {
    let mut index = QueueIndex::default();
    index.insert(2, received_at(100), 0);
    index.insert(3, received_at(200), 0);
    // Recovery of a copied-forward message younger than what follows it.
    index.insert(1, received_at(150), 0);
    assert_eq!(index.metrics().oldest_message_timestamp_ms, 100);
    assert_eq!(index.received_by(120), vec![2]);
    assert_eq!(index.received_by(160), vec![1, 2]);
    assert!(!index.unordered);
    assert_eq!(index.metrics().oldest_message_timestamp_ms, 100);
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

#[test]
fn lookups_find_every_slot_of_dense_sparse_and_wrapped_sequences() {
    // A deque that has wrapped (front trimmed, back appended) is two slices;
    // gaps in the sequence (other queues' messages) make the front-offset
    // guess miss, so the search below it must still find each slot.
    let mut slots = VecDeque::with_capacity(8);
    let slot = |seq: u64| Slot { seq, entry: entry(0) };
    for seq in [1, 2, 3, 4, 5, 6] {
        slots.push_back(slot(seq));
    }
    for _ in 0..4 {
        slots.pop_front();
    }
    for seq in [9, 10, 20, 21, 22, 40] {
        slots.push_back(slot(seq));
    }
    assert!(!slots.as_slices().1.is_empty(), "the deque should have wrapped");
    let present: Vec<u64> = slots.iter().map(|slot| slot.seq).collect();
    for seq in 0..45 {
        let expected = present.iter().position(|&at| at == seq);
        assert_eq!(slot_of(&slots, seq), expected, "seq {seq}");
    }
    assert_eq!(slot_of(&VecDeque::new(), 3), None);
}

#[test]
fn a_dense_queue_with_tombstones_finds_live_messages_only() {
    let mut index = QueueIndex::default();
    for seq in 10..30 {
        index.insert(seq, entry(0), 0);
    }
    for seq in [10, 11, 15, 29] {
        index.remove(seq);
    }
    for seq in 0..40 {
        let live = (12..29).contains(&seq) && seq != 15;
        assert_eq!(index.get(seq).is_some(), live, "seq {seq}");
    }
}

#[test]
fn a_settled_queue_is_quiet_until_its_next_due_time() {
    let mut index = QueueIndex::default();
    index.settle(10_000);
    assert_eq!(index.quiet_until_ms(), u64::MAX, "an empty queue has nothing due");
    // Timestamp 0 (see `entry`): retention of 10 s ends at 10,000.
    index.insert(1, entry(0), 0);
    assert_eq!(index.quiet_until_ms(), 0, "a new message makes the sweeper look");
    index.settle(10_000);
    assert_eq!(index.quiet_until_ms(), 10_000, "the oldest message's retention");
    index.insert(2, entry(4_000), 0);
    index.settle(10_000);
    assert_eq!(index.quiet_until_ms(), 4_000, "a delayed message becoming visible");
    assert_eq!(index.lease_ready(1, 0, 3_000), vec![1]);
    assert_eq!(index.quiet_until_ms(), 0, "a lease makes the sweeper look");
    index.settle(10_000);
    assert_eq!(index.quiet_until_ms(), 3_000, "the lease's end");
    assert!(index.extend_lease(1, 2_000));
    assert_eq!(index.quiet_until_ms(), 0);
    index.settle(10_000);
    assert_eq!(index.quiet_until_ms(), 2_000, "a shortened lease");
    index.unsettle();
    assert_eq!(index.quiet_until_ms(), 0);
}
