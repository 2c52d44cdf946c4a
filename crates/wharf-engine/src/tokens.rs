//! Tokens by the hash of their secret. Every request authenticates first;
//! finding its token by a scan of the catalog under the state lock made
//! each request take the lock every other request waits for, and cost a
//! comparison per token of the data directory. This index is rebuilt from
//! the catalog whenever its tokens change (a rare, administrative event)
//! and read without the state lock.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use wharf_core::model::TokenRecord;

use crate::catalog::Catalog;

#[derive(Default)]
pub(crate) struct TokenIndex {
    by_secret_hash: RwLock<HashMap<[u8; 32], TokenRecord>>,
}

impl TokenIndex {
    /// Makes the index hold exactly the catalog's tokens.
    pub(crate) fn replace(&self, catalog: &Catalog) {
        let index = catalog.tokens.values().map(|token| (token.secret_hash, token.clone())).collect();
        // A panic elsewhere cannot leave the map torn: it is replaced whole.
        *self.by_secret_hash.write().unwrap_or_else(PoisonError::into_inner) = index;
    }

    pub(crate) fn find(&self, secret_hash: &[u8; 32]) -> Option<TokenRecord> {
        self.by_secret_hash.read().unwrap_or_else(PoisonError::into_inner).get(secret_hash).cloned()
    }
}
