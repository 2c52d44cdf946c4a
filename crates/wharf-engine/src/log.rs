//! The segmented append-only log with group commit.
//!
//! Appends go into an in-memory buffer under a short lock and get a log
//! sequence number (LSN). One flusher thread takes everything buffered,
//! writes it and calls fdatasync once, then publishes the highest durable
//! LSN. Requests wait for their LSN before answering, so every request that
//! arrived during one fsync is served by the next: one write and one sync for
//! the whole group. Each group has its own signal (`durable`), so a sync
//! wakes only the requests it made durable.
//!
//! Any write or sync error poisons the log: the data may or may not be on
//! disk, and retrying an fsync after a failure can report success for data
//! the kernel already dropped. From then on nothing more is acknowledged
//! until the process restarts and recovers from what is really on disk.
//! Running out of space is different: segments are allocated whole, under the
//! append lock and before any state changes, so a full disk refuses the
//! write cleanly and later writes succeed once space is free.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use wharf_core::{WharfError, WharfResult};

use self::durable::{Durability, Wait};
use self::writer::{write_chunks, SegmentFile};

use crate::record::{self, Record, RecordRef, PUSH_FIXED_LEN, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use crate::segment::{self, segment_path, Faults};

/// Where a message body lives on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLocation {
    pub segment: u32,
    pub offset: u32,
}

mod durable;
mod writer;

/// Bytes waiting to be written at `offset` of `segment`.
struct Chunk {
    segment: u64,
    offset: u64,
    bytes: Vec<u8>,
}

struct Pending {
    chunks: Vec<Chunk>,
    appended_lsn: u64,
    segment: u64,
    segment_len: u64,
    failure: Option<String>,
    shutdown: bool,
    durability: Durability,
    /// The flusher waits on `wake` for chunks. Appends signal it only
    /// then: a condvar signal is a futex call even with nobody waiting, and
    /// while the flusher writes or syncs it looks for new chunks anyway.
    flusher_sleeping: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    /// Where the data written into segment files ends ([`written_mark`]):
    /// the flusher raises it after its writes return, before it syncs them.
    /// Below it a read sees the bytes (from the page cache), durable or not.
    written: AtomicU64,
    /// What the flusher has done, for monitoring; only it writes these.
    stats: LogStats,
}

/// Counters of the group commits the flusher has completed.
#[derive(Default)]
struct LogStats {
    syncs: AtomicU64,
    /// Appends (one per request that logged records) made durable.
    appends: AtomicU64,
    bytes: AtomicU64,
    /// Time spent writing and syncing the groups.
    busy_nanos: AtomicU64,
}

/// A reading of [`LogStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogCounters {
    pub syncs: u64,
    pub appends: u64,
    pub bytes: u64,
    pub busy_nanos: u64,
}

/// A log position as one number that orders like (segment, offset):
/// segments and offsets both fit in 32 bits ([`BodyLocation`]).
fn written_mark(segment: u64, offset: u64) -> u64 {
    (segment << 32) | (offset & u64::from(u32::MAX))
}

pub struct Log {
    dir: PathBuf,
    segment_bytes: u64,
    faults: Arc<Faults>,
    shared: Arc<Shared>,
    readers: Mutex<HashMap<u64, Arc<File>>>,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under these locks is a single assignment or push, so a
    // panic elsewhere cannot leave them torn.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Log {
    /// Opens the log for appending after recovery: `segment` is the last
    /// segment and `segment_len` its valid length; 0 means start `segment`
    /// as a new file.
    pub fn open(
        dir: &Path,
        segment: u64,
        segment_len: u64,
        segment_bytes: u64,
        faults: Arc<Faults>,
    ) -> WharfResult<Log> {
        let segment_len = if segment_len == 0 {
            segment::allocate(dir, segment, segment_bytes, &faults).map_err(storage_error)?;
            SEGMENT_HEADER_LEN
        } else {
            segment_len
        };
        let pending = Pending {
            chunks: Vec::new(),
            appended_lsn: 0,
            segment,
            segment_len,
            failure: None,
            shutdown: false,
            durability: Durability::default(),
            flusher_sleeping: false,
        };
        let written = AtomicU64::new(written_mark(segment, segment_len));
        let shared = Arc::new(Shared {
            pending: Mutex::new(pending),
            wake: Condvar::new(),
            written,
            stats: LogStats::default(),
        });
        let flusher_shared = Arc::clone(&shared);
        let flusher_dir = dir.to_path_buf();
        let flusher_faults = Arc::clone(&faults);
        let handle = std::thread::Builder::new()
            .name("wharf-log-flusher".into())
            .spawn(move || flush_loop(&flusher_dir, &flusher_shared, &flusher_faults))
            .map_err(storage_error)?;
        Ok(Log {
            dir: dir.to_path_buf(),
            segment_bytes,
            faults,
            shared,
            readers: Mutex::new(HashMap::new()),
            flusher: Mutex::new(Some(handle)),
        })
    }

    /// Buffers records for the next group commit. For every `Push` record a
    /// body location is appended to `bodies`, in order. Returns the LSN to
    /// wait for. On error nothing was buffered.
    pub fn append(&self, records: &[Record], bodies: &mut Vec<BodyLocation>) -> WharfResult<u64> {
        let mut pending = lock(&self.shared.pending);
        if let Some(failure) = &pending.failure {
            return Err(WharfError::StorageFailed { detail: failure.clone() });
        }
        let needed: u64 = records.iter().map(Record::encoded_len).sum();
        // Records of one call stay in one segment; a group bigger than a
        // segment gets a segment of its own size.
        if pending.segment_len + needed > self.segment_bytes && pending.segment_len > SEGMENT_HEADER_LEN {
            let next = pending.segment + 1;
            let size = self.segment_bytes.max(SEGMENT_HEADER_LEN + needed);
            segment::allocate(&self.dir, next, size, &self.faults).map_err(storage_error)?;
            pending.segment = next;
            pending.segment_len = SEGMENT_HEADER_LEN;
        }
        let (segment, offset) = (pending.segment, pending.segment_len);
        pending.segment_len += needed;
        // Encoded straight into the buffer the flusher will write: the
        // previous chunk when these records follow it in the file (they do
        // unless a new segment began), else a new one.
        let follows = |last: &Chunk| last.segment == segment && last.offset + last.bytes.len() as u64 == offset;
        let mut chunk = match pending.chunks.pop() {
            Some(last) if follows(&last) => last,
            other => {
                pending.chunks.extend(other);
                Chunk { segment, offset, bytes: Vec::new() }
            }
        };
        chunk.bytes.reserve(needed as usize);
        let before = chunk.bytes.len();
        for record in records {
            if matches!(record, Record::Push { .. }) {
                let body_offset = chunk.offset + chunk.bytes.len() as u64 + RECORD_HEADER_LEN + PUSH_FIXED_LEN;
                bodies.push(BodyLocation { segment: segment as u32, offset: body_offset as u32 });
            }
            record.encode_into(&mut chunk.bytes);
        }
        debug_assert_eq!((chunk.bytes.len() - before) as u64, needed);
        pending.chunks.push(chunk);
        pending.appended_lsn += 1;
        let lsn = pending.appended_lsn;
        let flusher_sleeping = pending.flusher_sleeping;
        drop(pending);
        if flusher_sleeping {
            self.shared.wake.notify_one();
        }
        Ok(lsn)
    }

    /// What the flusher has done since the log was opened.
    pub fn counters(&self) -> LogCounters {
        let stats = &self.shared.stats;
        LogCounters {
            syncs: stats.syncs.load(Ordering::Relaxed),
            appends: stats.appends.load(Ordering::Relaxed),
            bytes: stats.bytes.load(Ordering::Relaxed),
            busy_nanos: stats.busy_nanos.load(Ordering::Relaxed),
        }
    }

    /// Whether the log bytes before `end` in `segment` are in the segment
    /// file, so that reading them returns them, even if they are not yet
    /// durable.
    pub fn is_written(&self, segment: u32, end: u64) -> bool {
        written_mark(u64::from(segment), end) <= self.shared.written.load(Ordering::Acquire)
    }

    /// The latest LSN and the segment appended to, read together: once
    /// that LSN is durable, no buffered data remains for older segments.
    pub fn position(&self) -> (u64, u64) {
        let pending = lock(&self.shared.pending);
        (pending.appended_lsn, pending.segment)
    }

    /// Waits until everything up to `lsn` is on disk.
    pub async fn wait_durable(&self, lsn: u64) -> WharfResult<()> {
        let wait = lock(&self.shared.pending).durability.wait_for(lsn);
        let outcome = match wait {
            Wait::Ready => Ok(()),
            Wait::Failed(failure) => Err(failure),
            Wait::On(batch) => batch.wait().await,
        };
        outcome.map_err(|detail| WharfError::StorageFailed { detail })
    }

    /// Puts the log in the failed state from outside, as a failed fsync of
    /// its own would: a failed catalog fsync leaves the engine just as
    /// untrustworthy. Later appends are refused; what is already buffered
    /// is still written, and acknowledged only once durable.
    pub fn poison(&self, failure: String) {
        let mut pending = lock(&self.shared.pending);
        if pending.failure.is_none() {
            tracing::error!(%failure, "storage poisoned; restart to recover");
            pending.failure = Some(failure);
        }
    }

    pub fn failure(&self) -> Option<String> {
        lock(&self.shared.pending).failure.clone()
    }

    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }

    /// Reads a message body and checks its record's checksum. `Ok(None)`
    /// means the bytes on disk are damaged: the body must not be served.
    pub fn read_body(&self, location: BodyLocation, len: u32) -> WharfResult<Option<Vec<u8>>> {
        let mut bodies = self.read_bodies(&[(location, len)])?;
        Ok(bodies.pop().flatten())
    }

    /// Reads many bodies, in the order asked, each checked like
    /// [`Log::read_body`]. Bodies whose records lie back to back in one
    /// segment (a batch pushed together, pulled together) are read with one
    /// `pread` per run instead of one per message.
    pub fn read_bodies(&self, wanted: &[(BodyLocation, u32)]) -> WharfResult<Vec<Option<Vec<u8>>>> {
        let mut bodies = Vec::with_capacity(wanted.len());
        let mut next = 0;
        while next < wanted.len() {
            let run = run_length(&wanted[next..]);
            let (first, _) = wanted[next];
            let (last, last_len) = wanted[next + run - 1];
            let Some(start) = (first.offset as u64).checked_sub(BODY_PREFIX) else {
                bodies.push(None);
                next += 1;
                continue;
            };
            let end = last.offset as u64 + last_len as u64;
            let mut bytes = vec![0u8; (end - start) as usize];
            self.reader(first.segment as u64)?
                .read_exact_at(&mut bytes, start)
                .map_err(|error| WharfError::StorageFailed { detail: format!("reading message bodies: {error}") })?;
            for &(location, len) in &wanted[next..next + run] {
                let from = (location.offset as u64 - BODY_PREFIX - start) as usize;
                bodies.push(intact_body(&bytes[from..], len).map(<[u8]>::to_vec));
            }
            next += run;
        }
        Ok(bodies)
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

    /// Deletes a segment whose every record is no longer needed. A reader
    /// holding its handle can still finish reading it.
    pub fn remove_segment(&self, segment: u64) -> io::Result<()> {
        lock(&self.readers).remove(&segment);
        std::fs::remove_file(segment_path(&self.dir, segment))
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

/// Bytes of a Push record before its body.
const BODY_PREFIX: u64 = RECORD_HEADER_LEN + PUSH_FIXED_LEN;

/// Largest read that [`Log::read_bodies`] merges several bodies into.
const MAX_MERGED_READ: u64 = 1 << 20;

/// How many of `wanted`, from the first, are records lying back to back in
/// one segment (each record starts where the previous body ends).
fn run_length(wanted: &[(BodyLocation, u32)]) -> usize {
    let Some(&(first, _)) = wanted.first() else { return 0 };
    let mut run = 1;
    while let (Some(&(previous, previous_len)), Some(&(location, len))) = (wanted.get(run - 1), wanted.get(run)) {
        let adjacent = location.segment == first.segment
            && location.offset as u64 == previous.offset as u64 + previous_len as u64 + BODY_PREFIX;
        // Adjacent records only move forward, so this cannot underflow.
        if !adjacent || location.offset as u64 + len as u64 - first.offset as u64 > MAX_MERGED_READ {
            break;
        }
        run += 1;
    }
    run
}

/// The body of the Push record at the start of `bytes`, if that record is
/// intact (checksum, framing) and its body is `len` bytes long.
fn intact_body(bytes: &[u8], len: u32) -> Option<&[u8]> {
    match record::decode_ref(bytes) {
        Ok((RecordRef::Push(push), _)) if push.body.len() == len as usize => Some(push.body),
        _ => None,
    }
}

fn storage_error(error: io::Error) -> WharfError {
    if segment::is_disk_full(&error) {
        return WharfError::StorageFull;
    }
    WharfError::StorageFailed { detail: error.to_string() }
}

fn flush_loop(dir: &Path, shared: &Shared, faults: &Faults) {
    // However the loop ends (a panic included), nobody is left waiting.
    let _stop = StopOnExit(shared);
    let mut files: BTreeMap<u64, SegmentFile> = BTreeMap::new();
    let mut durable_lsn = 0;
    loop {
        let (chunks, batch, last_lsn) = {
            let mut pending = lock(&shared.pending);
            while pending.chunks.is_empty() && !pending.shutdown {
                pending.flusher_sleeping = true;
                pending = shared.wake.wait(pending).unwrap_or_else(|poisoned| poisoned.into_inner());
                pending.flusher_sleeping = false;
            }
            if pending.chunks.is_empty() {
                stop_flushing(&mut pending, "the engine is shut down");
                return;
            }
            let last_lsn = pending.appended_lsn;
            (std::mem::take(&mut pending.chunks), pending.durability.start_flush(last_lsn), last_lsn)
        };
        let started = Instant::now();
        let bytes: usize = chunks.iter().map(|chunk| chunk.bytes.len()).sum();
        let raise_written =
            |segment: u64, end: u64| shared.written.store(written_mark(segment, end), Ordering::Release);
        let written = write_chunks(dir, &mut files, chunks, faults, raise_written).and_then(|()| {
            // Counted before the waiters are released, so that anyone who
            // got an answer sees the commit that made it durable counted.
            let stats = &shared.stats;
            stats.syncs.fetch_add(1, Ordering::Relaxed);
            stats.appends.fetch_add(last_lsn - durable_lsn, Ordering::Relaxed);
            stats.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
            stats.busy_nanos.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
            durable_lsn = last_lsn;
            lock(&shared.pending).durability.finish_flush();
            batch.complete(Ok(()));
            // After the waiters are released, off their path.
            files.values_mut().next_back().map_or(Ok(()), |newest| newest.zero_ahead())
        });
        if let Err(error) = written {
            let failure = format!("log write failed: {error}");
            tracing::error!(%failure, "storage poisoned; restart to recover");
            let mut pending = lock(&shared.pending);
            pending.failure = Some(failure.clone());
            stop_flushing(&mut pending, &failure);
            return;
        }
    }
}

struct StopOnExit<'a>(&'a Shared);

impl Drop for StopOnExit<'_> {
    fn drop(&mut self) {
        stop_flushing(&mut lock(&self.0.pending), "log flusher stopped");
    }
}

/// Ends the flusher's service: appends are refused from now on, and every
/// wait for something not yet durable fails with `failure`.
fn stop_flushing(pending: &mut Pending, failure: &str) {
    if pending.failure.is_none() {
        pending.failure = Some(failure.to_string());
    }
    for batch in pending.durability.stop(failure) {
        batch.complete(Err(failure.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(segment: u32, offset: u64) -> BodyLocation {
        BodyLocation { segment, offset: offset as u32 }
    }

    #[test]
    fn only_back_to_back_records_of_one_segment_are_read_together() {
        let first = SEGMENT_HEADER_LEN + BODY_PREFIX;
        let second = first + 10 + BODY_PREFIX;
        let third = second + 20 + BODY_PREFIX;
        assert_eq!(run_length(&[(at(1, first), 10), (at(1, second), 20), (at(1, third), 5)]), 3);
        // A record in between (a delete, another queue's push) ends the run.
        assert_eq!(run_length(&[(at(1, first), 10), (at(1, second + 24), 20)]), 1);
        assert_eq!(run_length(&[(at(1, first), 10), (at(2, second), 20)]), 1);
        // Pulled out of file order (a retried message is older).
        assert_eq!(run_length(&[(at(1, second), 20), (at(1, first), 10)]), 1);
        assert_eq!(run_length(&[]), 0);
    }

    #[test]
    fn appended_bytes_are_readable_before_their_sync_completes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let faults = Arc::new(Faults::default());
        let log = Log::open(dir.path(), 1, 0, 1 << 20, Arc::clone(&faults)).expect("open");
        faults.hold_syncs.store(true, std::sync::atomic::Ordering::SeqCst);
        let record = Record::Push {
            queue: wharf_core::QueueId::random(),
            seq: 1,
            timestamp_ms: 0,
            visible_at_ms: 0,
            attempts: 0,
            content_type: wharf_core::model::ContentType::Text,
            body: b"early".to_vec(),
        };
        let mut bodies = Vec::new();
        let lsn = log.append(std::slice::from_ref(&record), &mut bodies).expect("append");
        let location = bodies[0];
        let end = u64::from(location.offset) + 5;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !log.is_written(location.segment, end) {
            assert!(std::time::Instant::now() < deadline, "the flusher never wrote the record");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(log.read_body(location, 5).expect("read"), Some(b"early".to_vec()));
        assert!(!log.is_written(location.segment, end + 1), "nothing past the log's end is written");
        let waiting = matches!(lock(&log.shared.pending).durability.wait_for(lsn), Wait::On(_));
        assert!(waiting, "the record is readable while its sync is still held");
        faults.hold_syncs.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    #[test]
    fn a_run_never_grows_past_the_merged_read_limit() {
        let len = 100_000u32;
        let wanted: Vec<_> = (0..30u64)
            .map(|n| (at(1, SEGMENT_HEADER_LEN + BODY_PREFIX + n * (len as u64 + BODY_PREFIX)), len))
            .collect();
        let run = run_length(&wanted);
        assert!(run > 1 && run < 30, "run of {run}");
        let (last, last_len) = wanted[run - 1];
        assert!(last.offset as u64 + last_len as u64 - wanted[0].0.offset as u64 <= MAX_MERGED_READ);
    }
}
