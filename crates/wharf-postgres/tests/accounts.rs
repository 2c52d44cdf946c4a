//! Accounts, tokens and event subscriptions on PostgreSQL.

mod common;

use common::broker;
use serde_json::json;
use wharf_core::auth::hash_secret;
use wharf_core::broker::NewSubscription;
use wharf_core::model::{Account, Scope, SubscriptionUpdate};
use wharf_core::{AccountId, Broker, ManualClock, QueueId, WharfError};

const START_MS: u64 = 1_700_000_000_000;

#[tokio::test]
async fn accounts_and_tokens_store_only_hashes() {
    let clock = ManualClock::new(START_MS);
    let broker = broker(&clock).await;
    let account = Account { id: AccountId(0xabc), email: "ops@example.com".into(), created_on_ms: START_MS };
    assert!(broker.ensure_account(&account, "first-secret").await.expect("create"));
    assert!(!broker.ensure_account(&account, "other-secret").await.expect("exists"), "idempotent");
    assert_eq!(broker.list_accounts().await.expect("list"), vec![account.clone()]);
    assert_eq!(broker.get_account(account.id).await.expect("get"), Some(account.clone()));
    assert_eq!(broker.get_account(AccountId(1)).await.expect("get"), None);

    let admin = broker.find_token(&hash_secret("first-secret")).await.expect("find").expect("admin token");
    assert_eq!((admin.name.as_str(), admin.scope, admin.account), ("admin", Scope::Write, account.id));
    assert!(broker.find_token(&hash_secret("other-secret")).await.expect("find").is_none(), "not replaced");

    let issued = broker.create_token(account.id, "reader", Scope::Read).await.expect("token");
    assert_eq!(issued.record.secret_hash, hash_secret(&issued.secret));
    let found = broker.find_token(&hash_secret(&issued.secret)).await.expect("find");
    assert_eq!(found, Some(issued.record.clone()));
    assert_eq!(broker.list_tokens(account.id).await.expect("tokens").len(), 2);
    let missing = broker.create_token(AccountId(1), "nobody", Scope::Read).await.map(|_| ());
    assert!(matches!(missing, Err(WharfError::WrongAccount { .. })), "{missing:?}");

    assert!(!broker.revoke_token(AccountId(1), issued.record.id).await.expect("revoke"), "other account's token");
    assert!(broker.revoke_token(account.id, issued.record.id).await.expect("revoke"));
    assert!(broker.find_token(&hash_secret(&issued.secret)).await.expect("find").is_none());

    let (client, connection) =
        tokio_postgres::connect(&common::database_url(), tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(connection);
    let sql = format!("SELECT count(*) FROM {}.tokens WHERE position($1::bytea in secret_hash) > 0", broker.schema);
    let plain: i64 = client.query_one(&sql, &[&b"first-secret".as_slice()]).await.expect("query").get(0);
    assert_eq!(plain, 0, "no secret stored in the clear");
    broker.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn subscriptions_follow_their_queue() {
    let clock = ManualClock::new(START_MS);
    let broker = broker(&clock).await;
    let account = Account { id: AccountId(0xabc), email: "ops@example.com".into(), created_on_ms: START_MS };
    broker.ensure_account(&account, "secret").await.expect("account");
    let queue = broker.create_queue(account.id, "events", Default::default()).await.expect("queue");
    let other = broker.create_queue(account.id, "other", Default::default()).await.expect("queue");
    let new = NewSubscription {
        name: "bucket-events".into(),
        enabled: true,
        source: json!({"type": "r2", "bucket_name": "b"}),
        destination_queue: queue.id,
        events: vec!["object-create".into()],
    };
    let created = broker.create_subscription(account.id, &new).await.expect("create");
    assert_eq!(created.created_at_ms, START_MS);
    assert_eq!(broker.create_subscription(account.id, &new).await.map(|_| ()), Err(WharfError::SubscriptionExists));
    let nowhere = NewSubscription { destination_queue: QueueId(5), ..new.clone() };
    let refused = broker.create_subscription(account.id, &nowhere).await.map(|_| ());
    assert_eq!(refused, Err(WharfError::SubscriptionDestinationMissing));
    assert_eq!(broker.get_subscription(account.id, created.id).await.expect("get"), created);
    assert_eq!(broker.get_subscription(AccountId(1), created.id).await, Err(WharfError::SubscriptionNotFound));

    clock.advance_ms(1_000);
    let update = SubscriptionUpdate {
        name: Some("renamed".into()),
        enabled: Some(false),
        events: None,
        destination_queue: Some(other.id),
    };
    let updated = broker.update_subscription(account.id, created.id, &update).await.expect("update");
    assert_eq!((updated.name.as_str(), updated.enabled, updated.destination_queue), ("renamed", false, other.id));
    assert_eq!(updated.modified_at_ms, START_MS + 1_000);
    assert_eq!(updated.events, new.events);
    let page = broker.list_subscriptions(account.id, Some(other.id), 1, 20).await.expect("list");
    assert_eq!((page.items.len(), page.total_count), (1, 1));
    assert_eq!(broker.list_subscriptions(account.id, Some(queue.id), 1, 20).await.expect("list").total_count, 0);

    broker.delete_queue(account.id, other.id).await.expect("delete queue");
    assert_eq!(broker.get_subscription(account.id, created.id).await, Err(WharfError::SubscriptionNotFound));
    let again = broker.create_subscription(account.id, &new).await.expect("create again");
    let deleted = broker.delete_subscription(account.id, again.id).await.expect("delete");
    assert_eq!(deleted.id, again.id);
    assert_eq!(broker.delete_subscription(account.id, again.id).await, Err(WharfError::SubscriptionNotFound));
    broker.shutdown().await.expect("shutdown");
}
