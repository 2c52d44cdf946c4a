//! Metadata: accounts, tokens, queues, consumers and subscriptions.
//!
//! Metadata changes are rare and small, so the whole catalog is one JSON file
//! replaced atomically on every change (write a temporary file, fsync it,
//! rename it over the old one, fsync the directory). The message log never
//! holds metadata, which keeps segment deletion simple.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use wharf_core::model::{Account, Consumer, QueueSettings, Subscription, TokenRecord};
use wharf_core::{AccountId, QueueId, SubscriptionId, TokenId, WharfError, WharfResult};

use crate::segment::{self, Faults};

pub const CATALOG_FILE: &str = "catalog.json";
const CATALOG_VERSION: u32 = 1;

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
    pub queues: BTreeMap<QueueId, QueueMeta>,
    pub subscriptions: BTreeMap<SubscriptionId, Subscription>,
    /// Every sequence number in the log is below this. The engine raises it
    /// a block at a time before minting past it, and recovery starts
    /// numbering here, so a message id is never handed out twice, even when
    /// the segments that held the highest numbers were deleted or damaged.
    /// Absent (0) in catalogs written before it existed.
    #[serde(default)]
    pub seq_floor: u64,
}

impl Catalog {
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
        }
    }

    /// Loads the catalog, or `None` if the directory has none yet.
    pub fn load(dir: &Path) -> WharfResult<Option<Catalog>> {
        let bytes = match fs::read(dir.join(CATALOG_FILE)) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(WharfError::StorageFailed { detail: format!("reading catalog: {error}") }),
        };
        let catalog: Catalog = serde_json::from_slice(&bytes)
            .map_err(|error| WharfError::StorageFailed { detail: format!("catalog is corrupt: {error}") })?;
        if catalog.format_version != CATALOG_VERSION {
            return Err(WharfError::StorageFailed {
                detail: format!("catalog format {} is not supported", catalog.format_version),
            });
        }
        Ok(Some(catalog))
    }

    /// Replaces the catalog on disk atomically and durably.
    pub fn save(&self, dir: &Path) -> WharfResult<()> {
        self.save_with_faults(dir, &Faults::default())
    }

    /// [`Catalog::save`] with injectable faults. A full disk is
    /// `StorageFull`; any other failure (a failed fsync above all) is
    /// `StorageFailed`, which the engine treats as fatal.
    pub fn save_with_faults(&self, dir: &Path, faults: &Faults) -> WharfResult<()> {
        let bytes = serde_json::to_vec(self).map_err(WharfError::internal)?;
        write_atomically(dir, CATALOG_FILE, &bytes, faults).map_err(|error| {
            if segment::is_disk_full(&error) {
                WharfError::StorageFull
            } else {
                WharfError::StorageFailed { detail: format!("writing catalog: {error}") }
            }
        })
    }

    pub fn queue_by_name(&self, account: AccountId, name: &str) -> Option<&QueueMeta> {
        self.queues.values().find(|queue| queue.account == account && queue.name == name)
    }

    pub fn queue(&self, account: AccountId, queue: QueueId) -> WharfResult<&QueueMeta> {
        self.queues.get(&queue).filter(|meta| meta.account == account).ok_or(WharfError::QueueNotFound)
    }

    pub fn queue_mut(&mut self, account: AccountId, queue: QueueId) -> WharfResult<&mut QueueMeta> {
        self.queues.get_mut(&queue).filter(|meta| meta.account == account).ok_or(WharfError::QueueNotFound)
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
        let loaded = Catalog::load(dir.path()).expect("load").expect("present");
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
}
