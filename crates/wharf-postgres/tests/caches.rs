//! What a node remembers to spare the database a statement, and for how
//! long: tokens it found (`TOKEN_TTL`, wall clock) and the oldest message
//! of a queue for push and pull answers (`OLDEST_TTL_MS`, broker clock).

mod common;

use std::sync::Arc;

use common::{broker, config, pull_queue};
use wharf_core::auth::hash_secret;
use wharf_core::model::{Account, ContentType, NewMessage, PullRequest, Scope};
use wharf_core::{AccountId, Broker, ManualClock};
use wharf_postgres::{PostgresBroker, OLDEST_TTL_MS, TOKEN_TTL};

const START_MS: u64 = 1_700_000_000_000;

fn text(body: &str) -> NewMessage {
    NewMessage { body: body.as_bytes().to_vec(), content_type: ContentType::Text, delay_seconds: None }
}

#[tokio::test]
async fn a_token_revoked_on_one_node_stops_working_on_another_within_the_ttl() {
    let clock = ManualClock::new(START_MS);
    let first = broker(&clock).await;
    let second =
        Arc::new(PostgresBroker::connect_without_sweeper(config(&clock, &first.schema)).await.expect("second node"));
    let account = Account { id: AccountId(0x70c), email: "ops@example.com".into(), created_on_ms: 0 };
    first.ensure_account(&account, "admin-secret").await.expect("account");
    let issued = first.create_token(account.id, "short-lived", Scope::Write).await.expect("token");
    let hash = hash_secret(&issued.secret);
    assert!(second.find_token(&hash).await.expect("lookup").is_some(), "a new token works on another node at once");

    assert!(first.revoke_token(account.id, issued.record.id).await.expect("revoke"));
    assert!(first.find_token(&hash).await.expect("lookup").is_none(), "revoked on this node at once");
    assert!(second.find_token(&hash).await.expect("lookup").is_some(), "the other node still trusts what it found");
    tokio::time::sleep(TOKEN_TTL + std::time::Duration::from_millis(100)).await;
    assert!(second.find_token(&hash).await.expect("lookup").is_none(), "and stops once the ttl has passed");
    first.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn push_and_pull_answers_reuse_the_oldest_timestamp_for_a_second() {
    let clock = ManualClock::new(START_MS);
    let broker = broker(&clock).await;
    let (account, queue) = pull_queue(&*broker, 0x01d, "aging").await;

    let first = broker.push(account, queue, vec![text("first")]).await.expect("push");
    assert_eq!(first.oldest_message_timestamp_ms, START_MS, "an empty queue's oldest is the push's own");
    clock.advance_ms(10);
    let second = broker.push(account, queue, vec![text("second")]).await.expect("push");
    assert_eq!(second.oldest_message_timestamp_ms, START_MS, "looked up: the first is older");
    let one = PullRequest { batch_size: Some(1), visibility_timeout_ms: None };
    let pulled = broker.pull(account, queue, one).await.expect("pull");
    broker.ack(account, queue, &[pulled.messages[0].handle.clone()], &[]).await.expect("ack");

    let exact = broker.metrics(account, queue).await.expect("metrics");
    assert_eq!(exact.oldest_message_timestamp_ms, START_MS + 10, "GET metrics always looks");
    let reused = broker.pull(account, queue, one).await.expect("pull").metrics;
    assert_eq!(reused.oldest_message_timestamp_ms, START_MS, "within the ttl the answer reuses what it found");
    clock.advance_ms(OLDEST_TTL_MS as u64);
    let fresh = broker.pull(account, queue, one).await.expect("pull").metrics;
    assert_eq!(fresh.oldest_message_timestamp_ms, START_MS + 10, "after it, it looks again");
    broker.shutdown().await.expect("shutdown");
}
