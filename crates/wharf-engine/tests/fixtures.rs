//! Committed data directories of the on-disk format. Opening them must keep
//! working: a change of the record or catalog format that old data can no
//! longer be read with fails here. Regenerate (only with a version bump) by
//! `cargo test -p wharf-engine --test fixtures -- --ignored`.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use wharf_core::model::{ContentType, NewMessage, PullRequest, QueueListRequest, RetryRequest};
use wharf_core::{Broker, ManualClock};
use wharf_engine::EngineTuning;

const FIXTURE_START_MS: u64 = 1_750_000_000_000;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-v1")
}

fn tiny_segments() -> EngineTuning {
    EngineTuning { segment_bytes: 4096 }
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("fixture dir") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, to.join(path.file_name().expect("name"))).expect("copy");
    }
}

fn by_name(name: &str) -> QueueListRequest {
    QueueListRequest { names: vec![name.into()], page: 1, per_page: 10 }
}

#[tokio::test]
async fn format_v1_fixture_opens_with_every_message_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixture_dir(), dir.path());
    let clock = ManualClock::new(FIXTURE_START_MS + 10_000);
    let engine = open_tuned(dir.path(), &clock, tiny_segments());
    assert!(engine.recovery_report().damage.is_empty(), "{:?}", engine.recovery_report());
    let account = engine.list_accounts().await.expect("accounts")[0].id;
    let find = |name: &'static str| {
        let engine = &engine;
        async move { engine.list_queues(account, &by_name(name)).await.expect("list").items[0].id }
    };
    let (main, dlq, purged) = (find("fixture-main").await, find("fixture-dlq").await, find("fixture-purged").await);

    assert_eq!(bodies(&engine, account, purged).await, ["after purge"]);
    engine.tick().await.expect("the sweeper's first pass");
    // "hello" was acked. "doomed" failed twice (max_retries 1) and was
    // dead-lettered. {"n":1} was retried once and was leased again when the
    // fixture was closed: that delivery ends at recovery as a failed one,
    // its second, so it follows "doomed" into the dead letter queue.
    assert_eq!(bodies(&engine, account, dlq).await, ["doomed", "{\"n\":1}"]);
    let dead = engine.peek(account, dlq, 10).await.expect("peek");
    assert_eq!((dead[1].content_type, dead[1].attempts), (ContentType::Json, 0));
    // "later" is delayed a minute past the fixture's start.
    assert_eq!(engine.metrics(account, main).await.expect("metrics").backlog_count, 1);
    let request = PullRequest { batch_size: Some(10), visibility_timeout_ms: None };
    assert!(engine.pull(account, main, request).await.expect("pull").messages.is_empty());
    clock.advance_ms(60_000);
    let later = engine.pull(account, main, request).await.expect("pull").messages;
    assert_eq!((later[0].body.as_slice(), later[0].attempts), (&b"later"[..], 1));
}

/// Reading alone would not notice a writer that changed the bytes it puts
/// down: every record of the committed segment must decode and encode back
/// to exactly the bytes on disk, and the header must be what a new segment
/// gets today.
#[test]
fn format_v1_fixture_records_re_encode_to_the_same_bytes() {
    use wharf_engine::record::{decode, segment_header, Record, SEGMENT_HEADER_LEN};
    let bytes = std::fs::read(fixture_dir().join("0000000001.log")).expect("fixture segment");
    let header_len = SEGMENT_HEADER_LEN as usize;
    assert_eq!(&bytes[..header_len], segment_header(1).as_slice(), "segment header");
    assert_eq!(&bytes[..8], b"WHARFLOG");
    assert_eq!(bytes[8..12], 1u32.to_le_bytes(), "format version 1");
    let mut offset = header_len;
    let mut kinds = std::collections::BTreeSet::new();
    while let Ok((record, len)) = decode(&bytes[offset..]) {
        let mut encoded = Vec::new();
        record.encode_into(&mut encoded);
        assert_eq!(encoded, bytes[offset..offset + len], "record at {offset}: {record:?}");
        kinds.insert(match record {
            Record::Push { .. } => "push",
            Record::Delete { .. } => "delete",
            Record::Deliver { .. } => "deliver",
            Record::Requeue { .. } => "requeue",
            Record::Purge { .. } => "purge",
            Record::Move { .. } => "move",
        });
        offset += len;
    }
    assert!(offset > header_len, "no record decoded");
    assert!(bytes[offset..].iter().all(|&byte| byte == 0), "undecodable bytes at {offset}");
    assert_eq!(kinds.len(), 6, "the fixture covers every record kind: {kinds:?}");
}

#[tokio::test]
#[ignore = "writes the committed fixture; run only when the format version changes"]
async fn generate_format_v1_fixture() {
    let target = fixture_dir();
    let _ = std::fs::remove_dir_all(&target);
    std::fs::create_dir_all(&target).expect("fixture dir");
    let clock = ManualClock::new(FIXTURE_START_MS);
    let engine = open_tuned(&target, &clock, tiny_segments());
    let account = account(&engine).await;
    let main = queue_with_consumer(&engine, account, "fixture-main", &pull_consumer(1, Some("fixture-dlq"))).await;
    let json = NewMessage { body: b"{\"n\":1}".to_vec(), content_type: ContentType::Json, delay_seconds: None };
    engine.push(account, main, vec![text("hello"), json, text("doomed")]).await.expect("push");
    let pull = PullRequest { batch_size: Some(10), visibility_timeout_ms: None };
    let first = engine.pull(account, main, pull).await.expect("pull").messages;
    let retry = RetryRequest { lease_id: first[1].handle.clone(), delay_seconds: Some(0) };
    engine.ack(account, main, &[first[0].handle.clone()], &[retry]).await.expect("ack");
    // "doomed" fails twice (max_retries 1) and moves to the dead letter queue;
    // {"n":1} is pulled again and its lease expires too.
    clock.advance_ms(1_000);
    engine.tick().await.expect("tick");
    let again = engine.pull(account, main, PullRequest { batch_size: Some(10), visibility_timeout_ms: None });
    let again = again.await.expect("pull").messages;
    let doomed: Vec<_> = again.iter().filter(|m| m.body == b"doomed").map(|m| m.handle.clone()).collect();
    let retries: Vec<_> = doomed.into_iter().map(|lease_id| RetryRequest { lease_id, delay_seconds: None }).collect();
    engine.ack(account, main, &[], &retries).await.expect("retry doomed");
    let mut later = text("later");
    later.delay_seconds = Some(60);
    engine.push(account, main, vec![later]).await.expect("push delayed");
    let purged = queue_with_consumer(&engine, account, "fixture-purged", &pull_consumer(3, None)).await;
    engine.push(account, purged, vec![text("gone"), text("gone too")]).await.expect("push");
    engine.purge(account, purged).await.expect("purge");
    engine.push(account, purged, vec![text("after purge")]).await.expect("push");
    engine.shutdown().await.expect("shutdown");
}
