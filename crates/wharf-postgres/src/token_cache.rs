//! Tokens this node has looked up recently.
//!
//! Every request authenticates, and on PostgreSQL a lookup is a statement of
//! its own: a round trip and a backend's work for each request. A token found
//! here is trusted for [`TOKEN_TTL`] of wall-clock time after the lookup. A
//! revocation through this node takes effect at once (the cache is cleared);
//! through another node, within [`TOKEN_TTL`]. Unknown tokens are never
//! cached, so a token created on another node works on its first use here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use wharf_core::model::TokenRecord;

/// How long a looked-up token is trusted without asking the database again.
pub const TOKEN_TTL: Duration = Duration::from_secs(1);

/// Bound on cached tokens; when full, the cache starts over.
const MAX_TOKENS: usize = 10_000;

#[derive(Default)]
pub(crate) struct TokenCache {
    entries: Mutex<HashMap<[u8; 32], (TokenRecord, Instant)>>,
}

impl TokenCache {
    pub fn get(&self, secret_hash: &[u8; 32]) -> Option<TokenRecord> {
        let entries = crate::lock(&self.entries);
        let (record, found_at) = entries.get(secret_hash)?;
        (found_at.elapsed() < TOKEN_TTL).then(|| record.clone())
    }

    pub fn put(&self, record: &TokenRecord) {
        let mut entries = crate::lock(&self.entries);
        if entries.len() >= MAX_TOKENS {
            entries.clear();
        }
        entries.insert(record.secret_hash, (record.clone(), Instant::now()));
    }

    /// Forgets every token, after a revocation.
    pub fn clear(&self) {
        crate::lock(&self.entries).clear();
    }
}

#[cfg(test)]
mod tests {
    use wharf_core::model::Scope;
    use wharf_core::{AccountId, TokenId};

    use super::*;

    fn record(byte: u8) -> TokenRecord {
        TokenRecord {
            id: TokenId(byte as u128),
            account: AccountId(1),
            name: "t".into(),
            scope: Scope::Write,
            secret_hash: [byte; 32],
            created_on_ms: 0,
        }
    }

    #[test]
    fn remembers_found_tokens_until_cleared() {
        let cache = TokenCache::default();
        assert!(cache.get(&[1; 32]).is_none());
        cache.put(&record(1));
        assert_eq!(cache.get(&[1; 32]), Some(record(1)));
        assert!(cache.get(&[2; 32]).is_none());
        cache.clear();
        assert!(cache.get(&[1; 32]).is_none());
    }

    #[test]
    fn stays_bounded() {
        let cache = TokenCache::default();
        for index in 0..=MAX_TOKENS {
            let mut token = record(0);
            token.secret_hash[..8].copy_from_slice(&(index as u64).to_be_bytes());
            cache.put(&token);
        }
        assert!(crate::lock(&cache.entries).len() <= MAX_TOKENS);
    }
}
