//! The catalog's journal: every metadata change is appended here and synced
//! before it is applied, so a change costs one small write whatever the size
//! of the catalog. Rewriting the whole `catalog.json` on each change made
//! creating the 4,000th queue take 7-9 ms under the state lock, stalling every
//! push and pull meanwhile, and creating N queues cost O(N²) bytes.
//!
//! Entry: `[len: u32 LE][crc32 of json: u32 LE][json array of changes]`.
//! One entry per operation, so an operation's changes are replayed all or
//! not at all. When the journal outgrows the snapshot (and 1 MiB), the
//! catalog is written whole to `catalog.json` and the journal emptied: the
//! rewrite is paid once per as many changes as the catalog has bytes.
//!
//! Replaying a change the snapshot already holds leaves the catalog as it
//! is (each change sets or removes one entry), so a crash between writing
//! the snapshot and emptying the journal loses nothing and duplicates
//! nothing.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use wharf_core::{WharfError, WharfResult};

use super::{Catalog, CatalogChange};
use crate::segment::{storage_failed, write_failure, Faults};

pub const JOURNAL_FILE: &str = "catalog.journal";
const ENTRY_HEADER_LEN: usize = 8;
/// The journal is folded into the snapshot once it is larger than both this
/// and the snapshot itself.
const MIN_COMPACTION_BYTES: u64 = 1 << 20;

pub struct CatalogJournal {
    dir: PathBuf,
    file: File,
    /// Where the next entry goes: the end of the last complete entry.
    len: u64,
    snapshot_len: u64,
}

impl CatalogJournal {
    /// Opens (or creates) the journal of `dir` and replays it into
    /// `catalog`, which was loaded from a snapshot of `snapshot_len` bytes.
    /// A torn last entry (a crash during its write, so never acknowledged)
    /// is cut off; damage before the last entry is refused.
    pub fn open(dir: &Path, catalog: &mut Catalog, snapshot_len: u64) -> WharfResult<Self> {
        let path = dir.join(JOURNAL_FILE);
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(storage_failed("opening the catalog journal"))?;
        if !existed {
            // The new file's directory entry must be durable before the
            // first change acknowledged through it.
            File::open(dir)
                .and_then(|directory| directory.sync_all())
                .map_err(storage_failed("syncing the data directory"))?;
        }
        let bytes = std::fs::read(&path).map_err(storage_failed("reading the catalog journal"))?;
        let len = replay(&bytes, catalog)?;
        if len < bytes.len() as u64 {
            tracing::warn!(kept = len, dropped = bytes.len() as u64 - len, "cut a torn catalog journal entry");
            file.set_len(len).and_then(|()| file.sync_all()).map_err(storage_failed("cutting the catalog journal"))?;
        }
        Ok(Self { dir: dir.to_path_buf(), file, len, snapshot_len })
    }

    /// Appends one operation's changes and syncs them. On failure the file
    /// is cut back to where it was, so a later entry never follows a
    /// half-written one. A full disk is `StorageFull`; anything else is
    /// `StorageFailed`, which the engine treats as fatal.
    pub fn append(&mut self, changes: &[CatalogChange], faults: &Faults) -> WharfResult<()> {
        let json = serde_json::to_vec(changes).map_err(WharfError::internal)?;
        let len = u32::try_from(json.len()).map_err(WharfError::internal)?;
        let mut entry = Vec::with_capacity(ENTRY_HEADER_LEN + json.len());
        entry.extend_from_slice(&len.to_le_bytes());
        entry.extend_from_slice(&crc32fast::hash(&json).to_le_bytes());
        entry.extend_from_slice(&json);
        let written = (|| {
            faults.check_space()?;
            self.file.write_all_at(&entry, self.len)?;
            faults.check_catalog_sync()?;
            self.file.sync_data()
        })();
        match written {
            Ok(()) => {
                self.len += entry.len() as u64;
                Ok(())
            }
            Err(error) => {
                let _ = self.file.set_len(self.len);
                Err(write_failure("writing the catalog journal", &error))
            }
        }
    }

    /// Folds the journal into a new snapshot of `catalog` when it has grown
    /// past the snapshot. Only called after the journal's changes are
    /// applied to `catalog`.
    pub fn compact_if_due(&mut self, catalog: &Catalog, faults: &Faults) -> WharfResult<()> {
        if self.len <= self.snapshot_len.max(MIN_COMPACTION_BYTES) {
            return Ok(());
        }
        self.compact(catalog, faults)
    }

    /// Writes `catalog` as the snapshot, then empties the journal.
    pub fn compact(&mut self, catalog: &Catalog, faults: &Faults) -> WharfResult<()> {
        self.snapshot_len = catalog.save_with_faults(&self.dir, faults)?;
        self.file
            .set_len(0)
            .and_then(|()| self.file.sync_all())
            .map_err(|error| write_failure("emptying the catalog journal", &error))?;
        self.len = 0;
        Ok(())
    }

    /// Bytes of changes not yet folded into the snapshot.
    pub fn len(&self) -> u64 {
        self.len
    }
}

/// Applies every complete entry of `bytes` to `catalog` and returns where
/// the complete entries end.
fn replay(bytes: &[u8], catalog: &mut Catalog) -> WharfResult<u64> {
    let mut at = 0usize;
    while bytes.len() - at >= ENTRY_HEADER_LEN {
        let len = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let crc = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        let end = at + ENTRY_HEADER_LEN + len;
        if len == 0 || end > bytes.len() {
            break;
        }
        let json = &bytes[at + ENTRY_HEADER_LEN..end];
        if crc32fast::hash(json) != crc {
            if end == bytes.len() {
                break;
            }
            return Err(damaged(at, "checksum mismatch"));
        }
        let changes: Vec<CatalogChange> =
            serde_json::from_slice(json).map_err(|error| damaged(at, &error.to_string()))?;
        for change in changes {
            catalog.apply(change);
        }
        at = end;
    }
    Ok(at as u64)
}

fn damaged(at: usize, reason: &str) -> WharfError {
    WharfError::StorageFailed { detail: format!("catalog journal is damaged at byte {at}: {reason}") }
}

#[cfg(test)]
mod tests;
