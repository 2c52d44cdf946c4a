//! The flusher's side of the log: writing buffered chunks into segment
//! files, syncing them, and keeping zeroed blocks ahead of the log's end.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::Chunk;
use crate::segment::{segment_path, Faults};

/// How far past the log's end the flusher keeps blocks written with zeros.
/// Reserved space is allocated but unwritten (ext4 "unwritten extents"):
/// the first fdatasync after a write into it must also convert the extent,
/// a metadata write, which made a small fdatasync on this disk take ~250 µs
/// instead of ~150 µs into blocks written before. The flusher writes and
/// syncs zeros ahead of the records after each group is acknowledged, so
/// the next groups' syncs are pure data overwrites. The bytes are zeros
/// either way: what recovery reads does not change.
const ZERO_AHEAD: u64 = 256 * 1024;

/// Groups at least this big pay the conversion once for many bytes; behind
/// them no zeros are written, which would only add to the write volume.
const SMALL_WRITE: u64 = 64 * 1024;

static ZEROS: [u8; ZERO_AHEAD as usize] = [0; ZERO_AHEAD as usize];

/// A segment the flusher writes to: its size on disk, the end of the last
/// records written, and the offset below which this process has written
/// every block (records or zeros).
pub(super) struct SegmentFile {
    file: File,
    size: u64,
    end: u64,
    written_until: u64,
    last_write_small: bool,
}

impl SegmentFile {
    fn open(dir: &Path, segment: u64) -> io::Result<SegmentFile> {
        let file = OpenOptions::new().write(true).open(segment_path(dir, segment))?;
        let size = file.metadata()?.len();
        Ok(SegmentFile { file, size, end: 0, written_until: 0, last_write_small: false })
    }

    fn write(&mut self, bytes: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(bytes, offset)?;
        self.end = self.end.max(offset + bytes.len() as u64);
        self.written_until = self.written_until.max(self.end);
        self.last_write_small = (bytes.len() as u64) < SMALL_WRITE;
        Ok(())
    }

    /// Tops the zeroed margin past `end` back up to [`ZERO_AHEAD`] once it
    /// is down to half. Only the flusher writes the file and every record
    /// it still has to write lies past `end`, so a record written later
    /// simply overwrites these zeros; none is ever overwritten by them.
    pub(super) fn zero_ahead(&mut self) -> io::Result<()> {
        if !self.last_write_small || self.written_until >= self.end + ZERO_AHEAD / 2 {
            return Ok(());
        }
        let from = self.written_until;
        let to = (self.end + ZERO_AHEAD).min(self.size);
        if to <= from {
            return Ok(());
        }
        // A failed write (a filesystem without reserved space, full) only
        // loses the speed-up; a failed sync poisons the log like any other.
        if let Err(error) = self.file.write_all_at(&ZEROS[..(to - from) as usize], from) {
            tracing::debug!(%error, "writing zeros ahead of the log failed");
            self.last_write_small = false;
            return Ok(());
        }
        self.file.sync_data()?;
        self.written_until = to;
        Ok(())
    }
}

pub(super) fn write_chunks(
    dir: &Path,
    files: &mut BTreeMap<u64, SegmentFile>,
    chunks: Vec<Chunk>,
    faults: &Faults,
    on_written: impl FnOnce(u64, u64),
) -> io::Result<()> {
    let mut touched = Vec::new();
    let end = chunks.last().map(|last| (last.segment, last.offset + last.bytes.len() as u64));
    for chunk in chunks {
        let file = match files.entry(chunk.segment) {
            std::collections::btree_map::Entry::Occupied(open) => open.into_mut(),
            std::collections::btree_map::Entry::Vacant(slot) => slot.insert(SegmentFile::open(dir, chunk.segment)?),
        };
        file.write(&chunk.bytes, chunk.offset)?;
        if touched.last() != Some(&chunk.segment) {
            touched.push(chunk.segment);
        }
    }
    // Readable from here on: a pull can read bodies while they sync.
    if let Some((segment, offset)) = end {
        on_written(segment, offset);
    }
    for segment in &touched {
        faults.check_sync()?;
        if let Some(segment_file) = files.get(segment) {
            segment_file.file.sync_data()?;
        }
    }
    // Only the newest segment is still written to; keep just its handle.
    if let Some(&newest) = files.keys().next_back() {
        files.retain(|segment, _| *segment == newest);
    }
    Ok(())
}
