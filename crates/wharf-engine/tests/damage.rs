//! Damaged logs: recovery keeps every intact record before the damage,
//! reports what it dropped and why, and never serves a corrupt body.

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use common::*;
use wharf_core::{AccountId, Broker, ManualClock, QueueId};

/// Pushes `count` one-message batches "m0".."m{count-1}" and closes the engine.
async fn fill(dir: &std::path::Path, clock: &ManualClock, count: usize, body_len: usize) -> (AccountId, QueueId) {
    let engine = open_tuned(dir, clock, small_segments());
    let account = account(&engine).await;
    let queue = queue_with_consumer(&engine, account, "damaged", &pull_consumer(3, None)).await;
    for n in 0..count {
        let body = format!("m{n}-{}", "x".repeat(body_len));
        engine.push(account, queue, vec![text(&body)]).await.expect("push");
    }
    (account, queue)
}

fn prefixes(bodies: &[String]) -> Vec<String> {
    bodies.iter().map(|body| body.split('-').next().unwrap_or_default().to_string()).collect()
}

#[tokio::test]
async fn truncated_tail_keeps_every_complete_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let (account, queue) = fill(dir.path(), &clock, 5, 10).await;
    let segment = segment_files(dir.path()).pop().expect("a segment");
    let (last_offset, last_len) = *record_spans(&segment).last().expect("records");
    // A crash in the middle of writing the last record: the file ends inside it.
    let file = OpenOptions::new().write(true).open(&segment).expect("open");
    file.set_len((last_offset + last_len - 7) as u64).expect("truncate");
    drop(file);

    let engine = open_tuned(dir.path(), &clock, small_segments());
    let report = engine.recovery_report().clone();
    assert_eq!(report.damage.len(), 1, "{report:?}");
    assert_eq!(report.damage[0].offset, last_offset as u64);
    assert_eq!(report.damage[0].dropped_bytes, (last_len - 7) as u64, "the file ends 7 bytes short");
    assert!(report.damage[0].reason.contains("end of the log"), "{report:?}");
    assert_eq!(prefixes(&bodies(&engine, account, queue).await), ["m0", "m1", "m2", "m3"]);

    // Appending continues cleanly after the cut, and nothing is reported again.
    engine.push(account, queue, vec![text("after")]).await.expect("push");
    drop(engine);
    let engine = open_tuned(dir.path(), &clock, small_segments());
    assert!(engine.recovery_report().damage.is_empty(), "{:?}", engine.recovery_report());
    assert_eq!(prefixes(&bodies(&engine, account, queue).await), ["m0", "m1", "m2", "m3", "after"]);
}

#[tokio::test]
async fn torn_write_followed_by_reserved_space_is_cut_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let (account, queue) = fill(dir.path(), &clock, 4, 10).await;
    let segment = segment_files(dir.path()).pop().expect("a segment");
    let (last_offset, last_len) = *record_spans(&segment).last().expect("records");
    // Only the first half of the last record reached the disk.
    let file = OpenOptions::new().write(true).open(&segment).expect("open");
    let half = last_len / 2;
    file.write_all_at(&vec![0u8; last_len - half], (last_offset + half) as u64).expect("zero");
    drop(file);

    let file_len = std::fs::metadata(&segment).expect("metadata").len();
    let engine = open_tuned(dir.path(), &clock, small_segments());
    let report = engine.recovery_report().clone();
    assert_eq!(report.damage.len(), 1);
    assert_eq!(report.damage[0].offset, last_offset as u64);
    assert_eq!(report.damage[0].dropped_bytes, file_len - last_offset as u64, "{report:?}");
    assert_eq!(prefixes(&bodies(&engine, account, queue).await), ["m0", "m1", "m2"]);
    engine.push(account, queue, vec![text("after")]).await.expect("push");
    drop(engine);
    let engine = open_tuned(dir.path(), &clock, small_segments());
    assert!(engine.recovery_report().damage.is_empty());
    assert_eq!(prefixes(&bodies(&engine, account, queue).await), ["m0", "m1", "m2", "after"]);
}

#[tokio::test]
async fn zero_filled_tail_is_reserved_space_not_damage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let (account, queue) = fill(dir.path(), &clock, 3, 10).await;
    let segment = segment_files(dir.path()).pop().expect("a segment");
    // Grow the file with zeros well past its reservation.
    let file = OpenOptions::new().write(true).open(&segment).expect("open");
    let len = file.metadata().expect("metadata").len();
    file.set_len(len + 1_000_000).expect("extend");
    drop(file);

    let engine = open_tuned(dir.path(), &clock, small_segments());
    assert!(engine.recovery_report().damage.is_empty(), "{:?}", engine.recovery_report());
    assert_eq!(prefixes(&bodies(&engine, account, queue).await), ["m0", "m1", "m2"]);
}

#[tokio::test]
async fn flipped_byte_mid_segment_keeps_records_before_and_later_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    // 1 KiB bodies, 64 KiB segments: about 60 messages a segment.
    let (account, queue) = fill(dir.path(), &clock, 150, 1024).await;
    let segments = segment_files(dir.path());
    assert!(segments.len() >= 3, "need several segments, got {}", segments.len());
    let spans = record_spans(&segments[0]);
    let (offset, len) = spans[10];
    let file = OpenOptions::new().read(true).write(true).open(&segments[0]).expect("open");
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, (offset + len / 2) as u64).expect("read");
    file.write_all_at(&[byte[0] ^ 0x55], (offset + len / 2) as u64).expect("flip");
    let file_len = file.metadata().expect("metadata").len();
    drop(file);

    let engine = open_tuned(dir.path(), &clock, small_segments());
    let report = engine.recovery_report().clone();
    assert_eq!(report.damage.len(), 1, "{report:?}");
    assert!(report.damage[0].reason.contains("checksum"), "{report:?}");
    assert_eq!(report.damage[0].offset, offset as u64);
    assert_eq!(report.damage[0].dropped_bytes, file_len - offset as u64, "the rest of the segment");
    let metrics = engine.metrics(account, queue).await.expect("metrics");
    // Records 0..10 of the first segment survive (record 0 is the push of m0),
    // the rest of that segment is dropped, every later segment is kept.
    let first_segment_pushes = spans.len() as u64;
    assert_eq!(metrics.backlog_count, 150 - (first_segment_pushes - 10));
    let kept = prefixes(&bodies(&engine, account, queue).await);
    assert_eq!(kept[..10], (0..10).map(|n| format!("m{n}")).collect::<Vec<_>>()[..]);
    // The damaged file is left as it was for inspection.
    assert_eq!(segment_files(dir.path()).len(), segments.len());
}

#[tokio::test]
async fn bad_segment_header_drops_that_segment_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let (account, queue) = fill(dir.path(), &clock, 150, 1024).await;
    let segments = segment_files(dir.path());
    let first_segment_pushes = record_spans(&segments[0]).len() as u64;
    let file = OpenOptions::new().write(true).open(&segments[0]).expect("open");
    file.write_all_at(b"NOTWHARF", 0).expect("overwrite magic");
    let file_len = file.metadata().expect("metadata").len();
    drop(file);

    let engine = open_tuned(dir.path(), &clock, small_segments());
    let report = engine.recovery_report().clone();
    assert_eq!(report.damage.len(), 1, "{report:?}");
    assert!(report.damage[0].reason.contains("header"), "{report:?}");
    assert_eq!((report.damage[0].offset, report.damage[0].dropped_bytes), (0, file_len), "the whole segment");
    let metrics = engine.metrics(account, queue).await.expect("metrics");
    assert_eq!(metrics.backlog_count, 150 - first_segment_pushes);
}

#[tokio::test]
async fn bad_header_on_the_last_segment_continues_in_a_new_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let (account, queue) = fill(dir.path(), &clock, 3, 10).await;
    let segment = segment_files(dir.path()).pop().expect("a segment");
    let file = OpenOptions::new().write(true).open(&segment).expect("open");
    file.write_all_at(&[9, 9, 9, 9], 8).expect("bad version");
    drop(file);

    let engine = open_tuned(dir.path(), &clock, small_segments());
    assert!(engine.recovery_report().damage[0].reason.contains("UnsupportedVersion"));
    engine.push(account, queue, vec![text("fresh")]).await.expect("push");
    drop(engine);
    let engine = open_tuned(dir.path(), &clock, small_segments());
    assert_eq!(bodies(&engine, account, queue).await, ["fresh"]);
    assert_eq!(segment_files(dir.path()).len(), 2, "damaged file kept, new segment added");
}

#[tokio::test]
async fn a_body_damaged_while_running_is_never_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let engine = open_tuned(dir.path(), &clock, small_segments());
    let account = account(&engine).await;
    let queue = queue_with_consumer(&engine, account, "rot", &pull_consumer(3, None)).await;
    engine.push(account, queue, vec![text("good-1"), text("rotten"), text("good-2")]).await.expect("push");
    let segment = segment_files(dir.path()).pop().expect("segment");
    let (offset, len) = record_spans(&segment)[1];
    let file = OpenOptions::new().write(true).open(&segment).expect("open");
    file.write_all_at(b"R", (offset + len - 2) as u64).expect("rot a byte");
    drop(file);

    assert_eq!(bodies(&engine, account, queue).await, ["good-1", "good-2"]);
    assert_eq!(engine.metrics(account, queue).await.expect("metrics").backlog_count, 2, "dropped, not redelivered");
}

#[tokio::test]
async fn message_ids_of_a_dropped_last_segment_are_never_handed_out_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let (account, queue) = fill(dir.path(), &clock, 3, 10).await;
    let engine = open_tuned(dir.path(), &clock, small_segments());
    let before: Vec<_> = engine.peek(account, queue, 100).await.expect("peek").into_iter().map(|m| m.id).collect();
    assert_eq!(before.len(), 3);
    drop(engine);
    // The only segment holding those messages becomes unreadable.
    let segment = segment_files(dir.path()).pop().expect("a segment");
    let file = OpenOptions::new().write(true).open(&segment).expect("open");
    file.write_all_at(b"NOTWHARF", 0).expect("overwrite magic");
    drop(file);

    let engine = open_tuned(dir.path(), &clock, small_segments());
    assert_eq!(engine.recovery_report().damage.len(), 1);
    engine.push(account, queue, (0..5).map(|n| text(&format!("new{n}"))).collect()).await.expect("push");
    let after = engine.peek(account, queue, 100).await.expect("peek");
    assert_eq!(after.len(), 5);
    for message in &after {
        assert!(!before.contains(&message.id), "{} was handed out before the damage", message.id);
    }
}
