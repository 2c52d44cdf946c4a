//! Metadata: accounts, tokens, queues, consumers and subscriptions.
//!
//! The catalog is a JSON snapshot (`catalog.json`, replaced atomically:
//! write a temporary file, fsync it, rename it over the old one, fsync the
//! directory) plus a journal of the changes made since ([`journal`]). The
//! message log never holds metadata, which keeps segment deletion simple.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use wharf_core::model::{Account, Consumer, QueueSettings, Subscription, TokenRecord};
use wharf_core::{AccountId, QueueId, SubscriptionId, TokenId, WharfError, WharfResult};

use crate::segment::{self, Faults};

pub mod journal;
mod listing;

use listing::QueueListing;

pub const CATALOG_FILE: &str = "catalog.json";
/// 2: the snapshot has a journal beside it. A binary that knows only format
/// 1 would ignore the journal's changes, so it must refuse the directory.
const CATALOG_VERSION: u32 = 2;
/// Snapshots written before the journal; read, then rewritten as 2.
const CATALOG_VERSION_WITHOUT_JOURNAL: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueMeta {
    pub id: QueueId,
    pub account: AccountId,
    pub name: String,
    pub created_on_ms: u64,
    pub modified_on_ms: u64,
    pub settings: QueueSettings,
    pub consumer: Option<Consumer>,
    pub last_purge_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub format_version: u32,
    /// Key of the lease-token HMAC.
    pub handle_key: [u8; 32],
    /// High 64 bits of every message id minted here; the low 64 bits are
    /// the message's sequence number.
    pub id_prefix: u64,
    pub accounts: BTreeMap<AccountId, Account>,
    pub tokens: BTreeMap<TokenId, TokenRecord>,
    /// Changed only through [`Catalog::apply`], which keeps `listing` in step.
    queues: BTreeMap<QueueId, QueueMeta>,
    pub subscriptions: BTreeMap<SubscriptionId, Subscription>,
    /// Every sequence number in the log is below this. The engine raises it
    /// a block at a time before minting past it, and recovery starts
    /// numbering here, so a message id is never handed out twice, even when
    /// the segments that held the highest numbers were deleted or damaged.
    /// Absent (0) in catalogs written before it existed.
    #[serde(default)]
    pub seq_floor: u64,
    /// Derived from `queues`; rebuilt when a snapshot is loaded.
    #[serde(skip)]
    listing: QueueListing,
}

/// One metadata change as the journal keeps it. Each sets or removes one
/// entry, so applying a change the catalog already holds changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case", deny_unknown_fields)]
pub enum CatalogChange {
    PutAccount { account: Account },
    PutToken { token: TokenRecord },
    RemoveToken { id: TokenId },
    PutQueue { queue: Box<QueueMeta> },
    RemoveQueue { id: QueueId },
    PutSubscription { subscription: Subscription },
    RemoveSubscription { id: SubscriptionId },
    SeqFloor { floor: u64 },
}

impl CatalogChange {
    pub fn put_queue(meta: QueueMeta) -> Self {
        CatalogChange::PutQueue { queue: Box::new(meta) }
    }

    pub fn touches_tokens(&self) -> bool {
        matches!(self, CatalogChange::PutToken { .. } | CatalogChange::RemoveToken { .. })
    }
}

impl Catalog {
    pub fn apply(&mut self, change: CatalogChange) {
        match change {
            CatalogChange::PutAccount { account } => {
                self.accounts.insert(account.id, account);
            }
            CatalogChange::PutToken { token } => {
                self.tokens.insert(token.id, token);
            }
            CatalogChange::RemoveToken { id } => {
                self.tokens.remove(&id);
            }
            CatalogChange::PutQueue { queue } => {
                // Out under its old name and place, in under the new ones.
                if let Some(previous) = self.queues.get(&queue.id) {
                    self.listing.remove(previous);
                }
                self.listing.insert(&queue);
                self.queues.insert(queue.id, *queue);
            }
            CatalogChange::RemoveQueue { id } => {
                if let Some(removed) = self.queues.remove(&id) {
                    self.listing.remove(&removed);
                }
            }
            CatalogChange::PutSubscription { subscription } => {
                self.subscriptions.insert(subscription.id, subscription);
            }
            CatalogChange::RemoveSubscription { id } => {
                self.subscriptions.remove(&id);
            }
            CatalogChange::SeqFloor { floor } => self.seq_floor = floor,
        }
    }

    pub fn new() -> Self {
        Self {
            format_version: CATALOG_VERSION,
            handle_key: rand::random(),
            id_prefix: rand::random(),
            accounts: BTreeMap::new(),
            tokens: BTreeMap::new(),
            queues: BTreeMap::new(),
            subscriptions: BTreeMap::new(),
            seq_floor: 0,
            listing: QueueListing::default(),
        }
    }

    /// Loads the snapshot and its length in bytes, or `None` if the
    /// directory has none yet. The journal's changes are not in it.
    pub fn load(dir: &Path) -> WharfResult<Option<(Catalog, u64)>> {
        let bytes = match fs::read(dir.join(CATALOG_FILE)) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(WharfError::StorageFailed { detail: format!("reading catalog: {error}") }),
        };
        let mut catalog: Catalog = serde_json::from_slice(&bytes)
            .map_err(|error| WharfError::StorageFailed { detail: format!("catalog is corrupt: {error}") })?;
        for meta in catalog.queues.values() {
            catalog.listing.insert(meta);
        }
        match catalog.format_version {
            CATALOG_VERSION => {}
            CATALOG_VERSION_WITHOUT_JOURNAL => {
                // Marked as journaled before any journal entry exists, so an
                // older binary can never open it and miss a change.
                catalog.format_version = CATALOG_VERSION;
                let len = catalog.save(dir)?;
                return Ok(Some((catalog, len)));
            }
            other => {
                return Err(WharfError::StorageFailed { detail: format!("catalog format {other} is not supported") });
            }
        }
        Ok(Some((catalog, bytes.len() as u64)))
    }

    /// Replaces the snapshot on disk atomically and durably; returns its
    /// length in bytes.
    pub fn save(&self, dir: &Path) -> WharfResult<u64> {
        self.save_with_faults(dir, &Faults::default())
    }

    /// [`Catalog::save`] with injectable faults. A full disk is
    /// `StorageFull`; any other failure (a failed fsync above all) is
    /// `StorageFailed`, which the engine treats as fatal.
    pub fn save_with_faults(&self, dir: &Path, faults: &Faults) -> WharfResult<u64> {
        let bytes = serde_json::to_vec(self).map_err(WharfError::internal)?;
        write_atomically(dir, CATALOG_FILE, &bytes, faults)
            .map_err(|error| segment::write_failure("writing catalog", &error))?;
        Ok(bytes.len() as u64)
    }

    pub fn queue_by_name(&self, account: AccountId, name: &str) -> Option<&QueueMeta> {
        self.queues.get(&self.listing.by_name(account, name)?)
    }

    /// Every queue of every account, by id.
    pub fn all_queues(&self) -> &BTreeMap<QueueId, QueueMeta> {
        &self.queues
    }

    /// The account's queues in listing order: creation time, then name.
    pub fn queues_of(&self, account: AccountId) -> impl Iterator<Item = &QueueMeta> + '_ {
        self.listing.in_order(account).filter_map(|id| self.queues.get(&id))
    }

    pub fn queue_count_of(&self, account: AccountId) -> usize {
        self.listing.count(account)
    }

    pub fn queue(&self, account: AccountId, queue: QueueId) -> WharfResult<&QueueMeta> {
        self.queues.get(&queue).filter(|meta| meta.account == account).ok_or(WharfError::QueueNotFound)
    }

    /// A copy of the queue's entry, to change and put back as a
    /// [`CatalogChange`].
    pub fn queue_copy(&self, account: AccountId, queue: QueueId) -> WharfResult<QueueMeta> {
        self.queue(account, queue).cloned()
    }
}

impl Default for Catalog {
    fn default() -> Self {
        Self::new()
    }
}

fn write_atomically(dir: &Path, name: &str, bytes: &[u8], faults: &Faults) -> io::Result<()> {
    let temporary = dir.join(format!("{name}.tmp"));
    let written = (|| {
        faults.check_space()?;
        let mut file = File::create(&temporary)?;
        file.write_all(bytes)?;
        faults.check_catalog_sync()?;
        file.sync_all()
    })();
    if let Err(error) = written {
        // The old catalog is untouched; do not leave a half-written copy.
        let _ = fs::remove_file(&temporary);
        return Err(error);
    }
    fs::rename(&temporary, dir.join(name))?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_the_same_catalog() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(Catalog::load(dir.path()).expect("load").is_none());
        let mut catalog = Catalog::new();
        let account = AccountId::random();
        catalog.accounts.insert(account, Account { id: account, email: "a@b.c".into(), created_on_ms: 1 });
        catalog.save(dir.path()).expect("save");
        let (loaded, _) = Catalog::load(dir.path()).expect("load").expect("present");
        assert_eq!(loaded.accounts, catalog.accounts);
        assert_eq!(loaded.handle_key, catalog.handle_key);
        assert!(!dir.path().join("catalog.json.tmp").exists());
    }

    #[test]
    fn a_corrupt_catalog_is_refused_not_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(CATALOG_FILE), b"{not json").expect("write");
        assert!(matches!(Catalog::load(dir.path()), Err(WharfError::StorageFailed { .. })));
    }

    fn meta(account: AccountId, name: &str, created_on_ms: u64) -> QueueMeta {
        QueueMeta {
            id: QueueId::random(),
            account,
            name: name.into(),
            created_on_ms,
            modified_on_ms: created_on_ms,
            settings: QueueSettings::default(),
            consumer: None,
            last_purge_ms: None,
        }
    }

    fn listed(catalog: &Catalog, account: AccountId) -> Vec<&str> {
        catalog.queues_of(account).map(|queue| queue.name.as_str()).collect()
    }

    #[test]
    fn the_listing_follows_every_change_and_survives_a_reload() {
        let mut catalog = Catalog::new();
        let (one, two) = (AccountId::random(), AccountId::random());
        let late = meta(one, "a-late", 30);
        let early = meta(one, "z-early", 10);
        let tie = meta(one, "m-tie", 10);
        let other = meta(two, "a-late", 5);
        for queue in [&late, &early, &tie, &other] {
            catalog.apply(CatalogChange::put_queue(queue.clone()));
        }
        assert_eq!(listed(&catalog, one), ["m-tie", "z-early", "a-late"], "creation time, then name");
        assert_eq!(catalog.queue_by_name(two, "a-late").map(|queue| queue.id), Some(other.id));

        let mut renamed = early.clone();
        renamed.name = "b-renamed".into();
        catalog.apply(CatalogChange::put_queue(renamed.clone()));
        assert_eq!(listed(&catalog, one), ["b-renamed", "m-tie", "a-late"]);
        assert!(catalog.queue_by_name(one, "z-early").is_none(), "the old name is free");
        assert_eq!(catalog.queue_by_name(one, "b-renamed").map(|queue| queue.id), Some(early.id));
        catalog.apply(CatalogChange::put_queue(renamed.clone()));
        assert_eq!(catalog.queue_count_of(one), 3, "putting the same queue again adds nothing");

        catalog.apply(CatalogChange::RemoveQueue { id: tie.id });
        assert_eq!(listed(&catalog, one), ["b-renamed", "a-late"]);
        assert!(catalog.queue_by_name(one, "m-tie").is_none());
        assert_eq!((catalog.queue_count_of(one), catalog.queue_count_of(two)), (2, 1));

        let dir = tempfile::tempdir().expect("tempdir");
        catalog.save(dir.path()).expect("save");
        let (loaded, _) = Catalog::load(dir.path()).expect("load").expect("present");
        assert_eq!(listed(&loaded, one), ["b-renamed", "a-late"]);
        assert_eq!(loaded.queue_by_name(two, "a-late").map(|queue| queue.id), Some(other.id));
    }
}
