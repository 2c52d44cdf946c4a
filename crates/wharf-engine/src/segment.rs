//! Segment files: naming, listing, and allocation.
//!
//! A segment's whole size is reserved when it is created, so appends inside
//! it cannot run out of disk space: a full disk is found when a segment is
//! allocated, before any state changes, and is reported as a clean error.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use wharf_core::WharfError;

use crate::record::segment_header;

pub fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:010}.log"))
}

/// Every segment file in `dir`, oldest first.
pub fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(number) = name.strip_suffix(".log").and_then(|stem| stem.parse::<u64>().ok()) {
            segments.push(number);
        }
    }
    segments.sort_unstable();
    Ok(segments)
}

/// Faults that tests switch on to exercise the failure paths for real.
#[derive(Debug, Default)]
pub struct Faults {
    /// The next fdatasync of the log fails.
    pub fail_next_sync: AtomicBool,
    /// Allocating space (segments, catalog) fails as if the disk were full.
    pub disk_full: AtomicBool,
    /// The next fsync of a new catalog file fails.
    pub fail_next_catalog_sync: AtomicBool,
    /// Log syncs wait while this is set, so a test can see who waits for one.
    pub hold_syncs: AtomicBool,
}

impl Faults {
    pub fn check_sync(&self) -> io::Result<()> {
        while self.hold_syncs.load(Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        if self.fail_next_sync.swap(false, Ordering::SeqCst) {
            return Err(io::Error::other("injected fsync failure"));
        }
        Ok(())
    }

    pub fn check_catalog_sync(&self) -> io::Result<()> {
        if self.fail_next_catalog_sync.swap(false, Ordering::SeqCst) {
            return Err(io::Error::other("injected catalog fsync failure"));
        }
        Ok(())
    }

    pub fn check_space(&self) -> io::Result<()> {
        if self.disk_full.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        Ok(())
    }
}

/// Creates a segment, reserves `size` bytes for it, writes its header and
/// makes file and directory entry durable. A half-made file is removed.
pub fn allocate(dir: &Path, segment: u64, size: u64, faults: &Faults) -> io::Result<File> {
    let path = segment_path(dir, segment);
    let result = (|| {
        faults.check_space()?;
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
        reserve(&file, size)?;
        file.write_all_at(&segment_header(segment), 0)?;
        file.sync_all()?;
        File::open(dir)?.sync_all()?;
        Ok(file)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&path);
    }
    result
}

/// Reserves disk blocks for the first `size` bytes of the file.
pub fn reserve(file: &File, size: u64) -> io::Result<()> {
    let length = libc::off_t::try_from(size).map_err(io::Error::other)?;
    // SAFETY: posix_fallocate only reads the descriptor and two integers;
    // the descriptor is valid for as long as `file` is borrowed.
    let code = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, length) };
    match code {
        0 => Ok(()),
        // Filesystems without fallocate: appends may then meet a full disk,
        // which poisons the log instead of failing cleanly.
        libc::EOPNOTSUPP | libc::EINVAL => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

pub fn is_disk_full(error: &io::Error) -> bool {
    error.raw_os_error() == Some(libc::ENOSPC)
}

/// A failed write: a full disk is `StorageFull`, a clean refusal that later
/// writes retry; anything else is `StorageFailed`, which the engine treats
/// as fatal.
pub fn write_failure(context: &str, error: &io::Error) -> WharfError {
    if is_disk_full(error) {
        WharfError::StorageFull
    } else {
        WharfError::StorageFailed { detail: format!("{context}: {error}") }
    }
}

/// For `map_err` where any failure (reading, opening, listing) is fatal.
pub fn storage_failed(context: &'static str) -> impl Fn(io::Error) -> WharfError {
    move |error| WharfError::StorageFailed { detail: format!("{context}: {error}") }
}

/// Takes an exclusive lock on the data directory for as long as the returned
/// file is open: two engines appending to one log would interleave records.
pub fn lock_directory(dir: &Path) -> io::Result<File> {
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(dir.join("LOCK"))?;
    // SAFETY: flock only reads the descriptor, which `file` keeps open.
    let code = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if code == 0 {
        Ok(file)
    } else {
        Err(io::Error::last_os_error())
    }
}
