use std::fs;

use wharf_core::model::{Account, QueueSettings};
use wharf_core::{AccountId, QueueId};

use super::*;
use crate::catalog::{QueueMeta, CATALOG_FILE};

fn queue(account: AccountId, name: &str) -> QueueMeta {
    QueueMeta {
        id: QueueId::random(),
        account,
        name: name.to_string(),
        created_on_ms: 1,
        modified_on_ms: 1,
        settings: QueueSettings::default(),
        consumer: None,
        last_purge_ms: None,
    }
}

/// A fresh directory with a saved empty catalog and its open journal.
fn fresh(dir: &Path) -> (Catalog, CatalogJournal) {
    let mut catalog = Catalog::new();
    let len = catalog.save(dir).expect("save");
    let journal = CatalogJournal::open(dir, &mut catalog, len).expect("open");
    (catalog, journal)
}

fn reopen(dir: &Path) -> WharfResult<(Catalog, CatalogJournal)> {
    let (mut catalog, len) = Catalog::load(dir)?.expect("snapshot present");
    let journal = CatalogJournal::open(dir, &mut catalog, len)?;
    Ok((catalog, journal))
}

fn commit(catalog: &mut Catalog, journal: &mut CatalogJournal, changes: Vec<CatalogChange>) {
    journal.append(&changes, &Faults::default()).expect("append");
    for change in changes {
        catalog.apply(change);
    }
}

#[test]
fn changes_survive_a_reopen_without_rewriting_the_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut catalog, mut journal) = fresh(dir.path());
    let snapshot_before = fs::read(dir.path().join(CATALOG_FILE)).expect("read");
    let account = AccountId::random();
    let kept = queue(account, "kept");
    let removed = queue(account, "removed");
    commit(
        &mut catalog,
        &mut journal,
        vec![
            CatalogChange::PutAccount { account: Account { id: account, email: "a@b.c".into(), created_on_ms: 1 } },
            CatalogChange::put_queue(kept.clone()),
            CatalogChange::put_queue(removed.clone()),
        ],
    );
    commit(&mut catalog, &mut journal, vec![CatalogChange::RemoveQueue { id: removed.id }]);
    commit(&mut catalog, &mut journal, vec![CatalogChange::SeqFloor { floor: 42 }]);
    assert_eq!(fs::read(dir.path().join(CATALOG_FILE)).expect("read"), snapshot_before, "snapshot untouched");
    drop(journal);

    let (loaded, journal) = reopen(dir.path()).expect("reopen");
    assert_eq!(loaded.all_queues().values().cloned().collect::<Vec<_>>(), vec![kept]);
    assert!(loaded.accounts.contains_key(&account));
    assert_eq!(loaded.seq_floor, 42);
    assert_eq!(journal.len(), fs::metadata(dir.path().join(JOURNAL_FILE)).expect("meta").len());
}

#[test]
fn a_torn_last_entry_is_cut_and_appends_continue_after_the_good_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut catalog, mut journal) = fresh(dir.path());
    let account = AccountId::random();
    let first = queue(account, "first");
    commit(&mut catalog, &mut journal, vec![CatalogChange::put_queue(first.clone())]);
    let good_len = journal.len();
    commit(&mut catalog, &mut journal, vec![CatalogChange::put_queue(queue(account, "torn"))]);
    drop(journal);
    // A crash in the middle of the second entry's write.
    let path = dir.path().join(JOURNAL_FILE);
    let bytes = fs::read(&path).expect("read");
    fs::write(&path, &bytes[..bytes.len() - 7]).expect("tear");

    let (mut loaded, mut journal) = reopen(dir.path()).expect("a torn tail is not damage");
    assert_eq!(loaded.all_queues().len(), 1);
    assert!(loaded.all_queues().contains_key(&first.id));
    assert_eq!(fs::metadata(&path).expect("meta").len(), good_len, "torn bytes cut off");
    let third = queue(account, "third");
    commit(&mut loaded, &mut journal, vec![CatalogChange::put_queue(third.clone())]);
    drop(journal);
    let (loaded, _) = reopen(dir.path()).expect("reopen");
    assert!(loaded.all_queues().contains_key(&first.id) && loaded.all_queues().contains_key(&third.id));
    assert_eq!(loaded.all_queues().len(), 2);
}

#[test]
fn damage_before_the_last_entry_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut catalog, mut journal) = fresh(dir.path());
    let account = AccountId::random();
    commit(&mut catalog, &mut journal, vec![CatalogChange::put_queue(queue(account, "first"))]);
    commit(&mut catalog, &mut journal, vec![CatalogChange::put_queue(queue(account, "second"))]);
    drop(journal);
    let path = dir.path().join(JOURNAL_FILE);
    let mut bytes = fs::read(&path).expect("read");
    bytes[ENTRY_HEADER_LEN + 3] ^= 0x20;
    fs::write(&path, &bytes).expect("damage");
    let refused = reopen(dir.path());
    assert!(matches!(refused, Err(WharfError::StorageFailed { ref detail }) if detail.contains("damaged")));
    assert_eq!(fs::read(&path).expect("read"), bytes, "a damaged journal is left as it is");
}

#[test]
fn a_failed_append_changes_nothing_on_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut catalog, mut journal) = fresh(dir.path());
    let account = AccountId::random();
    commit(&mut catalog, &mut journal, vec![CatalogChange::put_queue(queue(account, "kept"))]);
    let len = journal.len();
    let faults = Faults::default();
    faults.fail_next_catalog_sync.store(true, std::sync::atomic::Ordering::SeqCst);
    let failed = journal.append(&[CatalogChange::put_queue(queue(account, "failed"))], &faults);
    assert!(matches!(failed, Err(WharfError::StorageFailed { .. })), "{failed:?}");
    faults.disk_full.store(true, std::sync::atomic::Ordering::SeqCst);
    let full = journal.append(&[CatalogChange::put_queue(queue(account, "full"))], &faults);
    assert_eq!(full, Err(WharfError::StorageFull));
    assert_eq!(journal.len(), len);
    assert_eq!(fs::metadata(dir.path().join(JOURNAL_FILE)).expect("meta").len(), len);
    drop(journal);
    assert_eq!(reopen(dir.path()).expect("reopen").0.all_queues().len(), 1);
}

#[test]
fn compaction_folds_the_journal_into_the_snapshot_and_a_crash_before_emptying_it_is_harmless() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut catalog, mut journal) = fresh(dir.path());
    let account = AccountId::random();
    let mut kept = Vec::new();
    for index in 0..50 {
        let meta = queue(account, &format!("q{index}"));
        commit(&mut catalog, &mut journal, vec![CatalogChange::put_queue(meta.clone())]);
        if index % 2 == 0 {
            commit(&mut catalog, &mut journal, vec![CatalogChange::RemoveQueue { id: meta.id }]);
        } else {
            kept.push(meta.id);
        }
    }
    let journal_bytes = fs::read(dir.path().join(JOURNAL_FILE)).expect("read");
    // Not due: far below 1 MiB.
    journal.compact_if_due(&catalog, &Faults::default()).expect("no-op");
    assert_eq!(journal.len(), journal_bytes.len() as u64);

    journal.compact(&catalog, &Faults::default()).expect("compact");
    assert_eq!(journal.len(), 0);
    assert_eq!(fs::metadata(dir.path().join(JOURNAL_FILE)).expect("meta").len(), 0);
    drop(journal);
    let (loaded, _) = reopen(dir.path()).expect("reopen");
    assert_eq!(loaded.all_queues().keys().copied().collect::<Vec<_>>(), sorted(kept.clone()));

    // The snapshot was written but the journal not emptied: every change
    // is replayed over a catalog that already holds it.
    fs::write(dir.path().join(JOURNAL_FILE), &journal_bytes).expect("restore journal");
    let (replayed, _) = reopen(dir.path()).expect("reopen");
    assert_eq!(replayed.all_queues(), loaded.all_queues());
}

#[test]
fn a_snapshot_from_before_the_journal_is_marked_so_older_binaries_refuse_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut old = Catalog::new();
    old.format_version = 1;
    old.save(dir.path()).expect("save");
    let (loaded, _) = Catalog::load(dir.path()).expect("load").expect("present");
    assert_eq!(loaded.format_version, 2);
    let on_disk: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join(CATALOG_FILE)).expect("read")).expect("json");
    assert_eq!(on_disk["format_version"], 2);
    assert_eq!(loaded.handle_key, old.handle_key);
}

fn sorted(mut ids: Vec<QueueId>) -> Vec<QueueId> {
    ids.sort();
    ids
}

#[test]
fn compaction_is_due_once_the_journal_outgrows_the_snapshot_and_one_mebibyte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut catalog, mut journal) = fresh(dir.path());
    let account = AccountId::random();
    // Names far longer than the API allows, only to grow the journal fast.
    for index in 0..3 {
        let big = queue(account, &format!("{index}{}", "x".repeat(400_000)));
        commit(&mut catalog, &mut journal, vec![CatalogChange::put_queue(big)]);
        journal.compact_if_due(&catalog, &Faults::default()).expect("compact if due");
    }
    // 1.2 MB of entries: folded once, after the third.
    assert_eq!(journal.len(), 0);
    let snapshot_len = fs::metadata(dir.path().join(CATALOG_FILE)).expect("meta").len();
    assert!(snapshot_len > 1_200_000, "{snapshot_len}");
    // Now the snapshot is the larger: the next 1.2 MB do not trigger it.
    for index in 3..6 {
        let big = queue(account, &format!("{index}{}", "x".repeat(400_000)));
        commit(&mut catalog, &mut journal, vec![CatalogChange::put_queue(big)]);
        journal.compact_if_due(&catalog, &Faults::default()).expect("compact if due");
    }
    assert!(journal.len() > 1_200_000);
    drop(journal);
    assert_eq!(reopen(dir.path()).expect("reopen").0.all_queues().len(), 6);
}
