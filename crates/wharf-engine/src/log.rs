//! The segmented append-only log with group commit.
//!
//! Appends go into an in-memory buffer under a short lock and get a log
//! sequence number (LSN). One flusher thread takes everything buffered,
//! writes it and calls fdatasync once, then publishes the highest durable
//! LSN. Requests wait for their LSN before answering, so every request that
//! arrived during one fsync is served by the next: one write and one sync for
//! the whole group.
//!
//! Any write or sync error poisons the log: the data may or may not be on
//! disk, and retrying an fsync after a failure can report success for data
//! the kernel already dropped. From then on nothing more is acknowledged
//! until the process restarts and recovers from what is really on disk.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use tokio::sync::watch;
use wharf_core::{WharfError, WharfResult};

use crate::record::{segment_header, Record, PUSH_FIXED_LEN, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};

/// A new segment is started once the current one would grow past this.
pub const SEGMENT_TARGET_BYTES: u64 = 64 * 1024 * 1024;

/// Where a message body lives on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLocation {
    pub segment: u32,
    pub offset: u32,
}

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

#[derive(Debug, Clone, Default)]
struct DurableState {
    lsn: u64,
    failure: Option<String>,
}

struct Pending {
    /// Buffered bytes per segment, in log order.
    chunks: Vec<(u64, Vec<u8>)>,
    appended_lsn: u64,
    segment: u64,
    segment_len: u64,
    failure: Option<String>,
    shutdown: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
}

pub struct Log {
    dir: PathBuf,
    shared: Arc<Shared>,
    durable: watch::Receiver<DurableState>,
    readers: Mutex<HashMap<u64, Arc<File>>>,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave these structures torn
    // (every update is a single assignment or push), so keep going.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Log {
    /// Opens the log for appending after recovery: `segment` is the last
    /// segment and `segment_len` its valid length (anything after it was
    /// already truncated away). A fresh directory starts segment 1.
    pub fn open(dir: &Path, segment: u64, segment_len: u64) -> WharfResult<Log> {
        let (durable_tx, durable) = watch::channel(DurableState::default());
        let mut pending =
            Pending { chunks: Vec::new(), appended_lsn: 0, segment, segment_len, failure: None, shutdown: false };
        let current = if segment_len == 0 {
            // No segment yet: the first append creates it.
            None
        } else {
            let file = OpenOptions::new().append(true).open(segment_path(dir, segment)).map_err(io_failure)?;
            Some((segment, file))
        };
        if segment_len == 0 {
            pending.chunks.push((segment, segment_header(segment)));
            pending.segment_len = SEGMENT_HEADER_LEN;
        }
        let shared = Arc::new(Shared { pending: Mutex::new(pending), wake: Condvar::new() });
        let flusher_shared = Arc::clone(&shared);
        let flusher_dir = dir.to_path_buf();
        let handle = std::thread::Builder::new()
            .name("wharf-log-flusher".into())
            .spawn(move || flush_loop(&flusher_dir, &flusher_shared, current, &durable_tx))
            .map_err(io_failure)?;
        Ok(Log {
            dir: dir.to_path_buf(),
            shared,
            durable,
            readers: Mutex::new(HashMap::new()),
            flusher: Mutex::new(Some(handle)),
        })
    }

    /// Buffers records for the next group commit. For every `Push` record a
    /// body location is appended to `bodies`, in order. Returns the LSN to
    /// wait for.
    pub fn append(&self, records: &[Record], bodies: &mut Vec<BodyLocation>) -> WharfResult<u64> {
        let mut pending = lock(&self.shared.pending);
        if let Some(failure) = &pending.failure {
            return Err(WharfError::StorageFailed { detail: failure.clone() });
        }
        for record in records {
            let len = record.encoded_len();
            if pending.segment_len + len > SEGMENT_TARGET_BYTES && pending.segment_len > SEGMENT_HEADER_LEN {
                pending.segment += 1;
                let segment = pending.segment;
                pending.chunks.push((segment, segment_header(segment)));
                pending.segment_len = SEGMENT_HEADER_LEN;
            }
            if matches!(record, Record::Push { .. }) {
                bodies.push(BodyLocation {
                    segment: pending.segment as u32,
                    offset: (pending.segment_len + RECORD_HEADER_LEN + PUSH_FIXED_LEN) as u32,
                });
            }
            let segment = pending.segment;
            match pending.chunks.last_mut() {
                Some((chunk_segment, bytes)) if *chunk_segment == segment => record.encode_into(bytes),
                _ => {
                    let mut bytes = Vec::with_capacity(len as usize);
                    record.encode_into(&mut bytes);
                    pending.chunks.push((segment, bytes));
                }
            }
            pending.segment_len += len;
        }
        pending.appended_lsn += 1;
        let lsn = pending.appended_lsn;
        drop(pending);
        self.shared.wake.notify_one();
        Ok(lsn)
    }

    /// The latest LSN and the segment appended to, read together: once
    /// that LSN is durable, no buffered data remains for older segments.
    pub fn position(&self) -> (u64, u64) {
        let pending = lock(&self.shared.pending);
        (pending.appended_lsn, pending.segment)
    }

    /// Waits until everything up to `lsn` is on disk.
    pub async fn wait_durable(&self, lsn: u64) -> WharfResult<()> {
        let mut durable = self.durable.clone();
        let state = durable
            .wait_for(|state| state.lsn >= lsn || state.failure.is_some())
            .await
            .map_err(|_| WharfError::StorageFailed { detail: "log flusher stopped".into() })?;
        match &state.failure {
            Some(failure) if state.lsn < lsn => Err(WharfError::StorageFailed { detail: failure.clone() }),
            _ => Ok(()),
        }
    }

    pub fn failure(&self) -> Option<String> {
        lock(&self.shared.pending).failure.clone()
    }

    /// Reads a message body. The segment's file handle is cached and shared,
    /// so a segment deleted meanwhile stays readable through it.
    pub fn read_body(&self, location: BodyLocation, len: u32) -> WharfResult<Vec<u8>> {
        let file = self.reader(location.segment as u64)?;
        let mut body = vec![0u8; len as usize];
        file.read_exact_at(&mut body, location.offset as u64)
            .map_err(|error| WharfError::StorageFailed { detail: format!("reading a message body: {error}") })?;
        Ok(body)
    }

    fn reader(&self, segment: u64) -> WharfResult<Arc<File>> {
        let mut readers = lock(&self.readers);
        if let Some(file) = readers.get(&segment) {
            return Ok(Arc::clone(file));
        }
        let file = File::open(segment_path(&self.dir, segment))
            .map_err(|error| WharfError::StorageFailed { detail: format!("opening segment {segment}: {error}") })?;
        let file = Arc::new(file);
        readers.insert(segment, Arc::clone(&file));
        Ok(file)
    }

    /// Deletes a segment whose every record is no longer needed.
    pub fn remove_segment(&self, segment: u64) -> io::Result<()> {
        lock(&self.readers).remove(&segment);
        fs::remove_file(segment_path(&self.dir, segment))
    }

    /// Flushes what is buffered and stops the flusher thread; later
    /// appends are refused.
    pub fn close(&self) {
        lock(&self.shared.pending).shutdown = true;
        self.shared.wake.notify_one();
        if let Some(handle) = lock(&self.flusher).take() {
            let _ = handle.join();
        }
        let mut pending = lock(&self.shared.pending);
        if pending.failure.is_none() {
            pending.failure = Some("the engine is shut down".into());
        }
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.close();
    }
}

fn io_failure(error: io::Error) -> WharfError {
    if error.raw_os_error() == Some(28) {
        return WharfError::StorageFull;
    }
    WharfError::StorageFailed { detail: error.to_string() }
}

fn flush_loop(dir: &Path, shared: &Shared, mut current: Option<(u64, File)>, durable_tx: &watch::Sender<DurableState>) {
    loop {
        let (chunks, lsn) = {
            let mut pending = lock(&shared.pending);
            while pending.chunks.is_empty() && !pending.shutdown {
                pending = shared.wake.wait(pending).unwrap_or_else(|poisoned| poisoned.into_inner());
            }
            if pending.chunks.is_empty() {
                return;
            }
            (std::mem::take(&mut pending.chunks), pending.appended_lsn)
        };
        match write_chunks(dir, &mut current, chunks) {
            Ok(()) => durable_tx.send_modify(|state| state.lsn = lsn),
            Err(error) => {
                let failure = format!("log write failed: {error}");
                tracing::error!(%failure, "storage poisoned; restart to recover");
                lock(&shared.pending).failure = Some(failure.clone());
                durable_tx.send_modify(|state| state.failure = Some(failure));
                return;
            }
        }
    }
}

fn write_chunks(dir: &Path, current: &mut Option<(u64, File)>, chunks: Vec<(u64, Vec<u8>)>) -> io::Result<()> {
    for (segment, bytes) in chunks {
        let switch = current.as_ref().is_none_or(|(open, _)| *open != segment);
        if switch {
            if let Some((_, file)) = current.take() {
                file.sync_data()?;
            }
            let file = OpenOptions::new().create(true).append(true).open(segment_path(dir, segment))?;
            // The new file's directory entry must be durable too.
            File::open(dir)?.sync_all()?;
            *current = Some((segment, file));
        }
        if let Some((_, file)) = current.as_mut() {
            file.write_all(&bytes)?;
        }
    }
    if let Some((_, file)) = current.as_ref() {
        file.sync_data()?;
    }
    Ok(())
}
