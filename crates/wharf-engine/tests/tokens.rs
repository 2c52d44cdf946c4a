//! Authentication finds a token by the hash of its secret: every live token
//! is found with its own record, a revoked one is refused as soon as the
//! revocation returns, and the same holds after a restart.

mod common;

use wharf_core::auth::hash_secret;
use wharf_core::model::Scope;
use wharf_core::{Broker, ManualClock};

use common::{account, open, START_MS};

#[tokio::test]
async fn many_tokens_are_each_found_and_revoked_ones_are_refused_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(START_MS);
    let engine = open(dir.path(), &clock);
    let account = account(&engine).await;
    let mut issued = Vec::new();
    for n in 0..200 {
        let scope = if n % 2 == 0 { Scope::Write } else { Scope::Read };
        issued.push(engine.create_token(account, &format!("service-{n}"), scope).await.expect("token"));
    }
    let admin = engine.find_token(&hash_secret("admin-secret")).await.expect("find");
    assert_eq!(admin.map(|token| token.name), Some("admin".to_string()));
    for (n, token) in issued.iter().enumerate() {
        let found = engine.find_token(&hash_secret(&token.secret)).await.expect("find");
        assert_eq!(found.as_ref(), Some(&token.record), "token {n}");
        if n % 3 == 0 {
            assert!(engine.revoke_token(account, token.record.id).await.expect("revoke"));
            let after = engine.find_token(&hash_secret(&token.secret)).await.expect("find");
            assert_eq!(after, None, "token {n} is refused once its revocation returned");
        }
    }
    assert_eq!(engine.find_token(&hash_secret("not-a-token-secret")).await.expect("find"), None);
    engine.shutdown().await.expect("shutdown");
    drop(engine);

    let reopened = open(dir.path(), &clock);
    for (n, token) in issued.iter().enumerate() {
        let found = reopened.find_token(&hash_secret(&token.secret)).await.expect("find");
        let expected = (n % 3 != 0).then(|| token.record.clone());
        assert_eq!(found, expected, "token {n} after a restart");
    }
    reopened.shutdown().await.expect("shutdown");
}
