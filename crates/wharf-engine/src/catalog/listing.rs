//! Each account's queues in listing order (creation time, then name) and by
//! name, kept in memory beside the catalog and changed with it. Listing a
//! page and finding a queue by name happen under the state lock that every
//! push and pull also takes; a scan and sort of every queue there cost the
//! message path milliseconds per call once an account had thousands of
//! queues (docs/performance.md, "Metadata changes and the message path").

use std::collections::{BTreeSet, HashMap};

use wharf_core::{AccountId, QueueId};

use super::QueueMeta;

/// Listing order: creation time, then name; the id only makes keys unique.
type ListingKey = (u64, String, QueueId);

#[derive(Debug, Clone, Default)]
pub struct QueueListing {
    ordered: HashMap<AccountId, BTreeSet<ListingKey>>,
    by_name: HashMap<AccountId, HashMap<String, QueueId>>,
}

fn key(meta: &QueueMeta) -> ListingKey {
    (meta.created_on_ms, meta.name.clone(), meta.id)
}

impl QueueListing {
    pub fn insert(&mut self, meta: &QueueMeta) {
        self.ordered.entry(meta.account).or_default().insert(key(meta));
        self.by_name.entry(meta.account).or_default().insert(meta.name.clone(), meta.id);
    }

    pub fn remove(&mut self, meta: &QueueMeta) {
        if let Some(ordered) = self.ordered.get_mut(&meta.account) {
            ordered.remove(&key(meta));
            if ordered.is_empty() {
                self.ordered.remove(&meta.account);
            }
        }
        if let Some(names) = self.by_name.get_mut(&meta.account) {
            if names.get(&meta.name) == Some(&meta.id) {
                names.remove(&meta.name);
            }
            if names.is_empty() {
                self.by_name.remove(&meta.account);
            }
        }
    }

    pub fn by_name(&self, account: AccountId, name: &str) -> Option<QueueId> {
        self.by_name.get(&account)?.get(name).copied()
    }

    /// The account's queue ids in listing order.
    pub fn in_order(&self, account: AccountId) -> impl Iterator<Item = QueueId> + '_ {
        self.ordered.get(&account).into_iter().flatten().map(|(_, _, id)| *id)
    }

    pub fn count(&self, account: AccountId) -> usize {
        self.ordered.get(&account).map_or(0, BTreeSet::len)
    }
}
