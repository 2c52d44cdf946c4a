//! Rebuilding the in-memory state from the catalog and the log segments.
//!
//! Segments are replayed oldest first. A record that is cut short or fails
//! its checksum ends the replay of that segment: everything intact before it
//! is kept, what follows is reported and dropped. Zero bytes after the last
//! record are the segment's reserved, unwritten space, not damage.
//!
//! At the end of the last segment, a record cut short by a crash (a torn
//! write: nothing but zeros after it) is cut off so appends continue from
//! clean data. Damage anywhere else is left on disk untouched for
//! inspection, and appends continue in a new segment.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::Path;

use wharf_core::WharfResult;

use crate::catalog::journal::CatalogJournal;
use crate::catalog::Catalog;
use crate::log::BodyLocation;
use crate::record::{
    self, DecodeStop, RecordRef, MAX_PAYLOAD_LEN, PUSH_FIXED_LEN, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use crate::segment::{self, list_segments, segment_path, storage_failed};
use crate::state::State;

/// What recovery found, for the start-up log and for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub segments: usize,
    pub records: u64,
    /// (segment, byte offset, reason, bytes dropped) per damaged place.
    pub damage: Vec<Damage>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub segment: u64,
    pub offset: u64,
    pub reason: String,
    pub dropped_bytes: u64,
}

pub struct Recovered {
    pub state: State,
    /// Segment to append to and its valid length (0: start it fresh).
    pub append_segment: u64,
    pub append_len: u64,
    pub report: RecoveryReport,
}

pub fn recover(dir: &Path, now_ms: u64, segment_bytes: u64) -> WharfResult<Recovered> {
    fs::create_dir_all(dir).map_err(storage_failed("creating the data directory"))?;
    let (mut catalog, snapshot_len) = match Catalog::load(dir)? {
        Some(loaded) => loaded,
        None => {
            let catalog = Catalog::new();
            let len = catalog.save(dir)?;
            (catalog, len)
        }
    };
    let journal = CatalogJournal::open(dir, &mut catalog, snapshot_len)?;
    let segments = list_segments(dir).map_err(storage_failed("listing segments"))?;
    let mut state = State::new(catalog, journal, segments.first().copied().unwrap_or(1));
    let mut report = RecoveryReport { segments: segments.len(), ..RecoveryReport::default() };
    let mut append_segment = 1;
    let mut append_len = 0;
    for (position, &segment) in segments.iter().enumerate() {
        let is_last = position + 1 == segments.len();
        let path = segment_path(dir, segment);
        let bytes = fs::read(&path).map_err(storage_failed("reading a segment"))?;
        let end = replay_segment(&mut state, segment, &bytes, now_ms, &mut report);
        if is_last {
            match end {
                SegmentEnd::Clean(valid_len) => {
                    append_segment = segment;
                    append_len = valid_len;
                }
                SegmentEnd::Torn(valid_len) => {
                    cut_torn_tail(&path, valid_len, segment_bytes).map_err(storage_failed("cutting a torn tail"))?;
                    append_segment = segment;
                    append_len = valid_len;
                }
                SegmentEnd::Damaged => append_segment = segment + 1,
            }
        }
    }
    // Numbers handed out before the crash may have been in segments since
    // deleted or damaged; the catalog's floor is above all of them.
    state.next_seq = state.next_seq.max(state.catalog.seq_floor);
    Ok(Recovered { state, append_segment, append_len, report })
}

/// How a segment's replay ended.
enum SegmentEnd {
    /// After the last record there is nothing but reserved space.
    Clean(u64),
    /// The last record was cut short by a crash; its bytes start here.
    Torn(u64),
    /// Corrupt data that a crash cannot explain.
    Damaged,
}

fn replay_segment(
    state: &mut State,
    segment: u64,
    bytes: &[u8],
    now_ms: u64,
    report: &mut RecoveryReport,
) -> SegmentEnd {
    match record::parse_segment_header(bytes) {
        Ok(number) if number == segment => {}
        Ok(number) => {
            report.damage.push(damage(segment, 0, format!("header names segment {number}"), bytes.len()));
            return SegmentEnd::Damaged;
        }
        Err(problem) => {
            report.damage.push(damage(segment, 0, format!("bad segment header: {problem:?}"), bytes.len()));
            return SegmentEnd::Damaged;
        }
    }
    let mut offset = SEGMENT_HEADER_LEN as usize;
    loop {
        match record::decode_ref(&bytes[offset..]) {
            Ok((record, len)) => {
                match record {
                    RecordRef::Push(push) => {
                        let body = BodyLocation {
                            segment: segment as u32,
                            offset: (offset as u64 + RECORD_HEADER_LEN + PUSH_FIXED_LEN) as u32,
                        };
                        state.apply_push(&push, Some(body), now_ms);
                    }
                    RecordRef::Other(record) => state.apply(&record, None, now_ms),
                }
                report.records += 1;
                offset += len;
            }
            Err(DecodeStop::End) => return SegmentEnd::Clean(offset as u64),
            Err(_) if is_zero(&bytes[offset..]) => return SegmentEnd::Clean(offset as u64),
            Err(stop) => {
                let torn = is_torn(bytes, offset);
                let reason = match stop {
                    DecodeStop::Torn => "record cut short".to_string(),
                    DecodeStop::BadChecksum => "checksum mismatch".to_string(),
                    DecodeStop::Malformed(what) => format!("malformed record: {what}"),
                    DecodeStop::End => String::new(),
                };
                let reason = if torn { format!("{reason} at the end of the log") } else { reason };
                report.damage.push(damage(segment, offset as u64, reason, bytes.len() - offset));
                return if torn { SegmentEnd::Torn(offset as u64) } else { SegmentEnd::Damaged };
            }
        }
    }
}

fn is_zero(bytes: &[u8]) -> bool {
    // Reserved space is megabytes of zeros: compare whole blocks (memcmp)
    // rather than byte by byte.
    const ZEROS: [u8; 4096] = [0; 4096];
    bytes.chunks(ZEROS.len()).all(|block| block == &ZEROS[..block.len()])
}

/// A bad record is a torn write if nothing was written after it: the file
/// ends inside it, or only reserved (zero) space follows its claimed end.
fn is_torn(bytes: &[u8], offset: usize) -> bool {
    let rest = &bytes[offset..];
    if rest.len() < 4 {
        return true;
    }
    let payload_len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
    if payload_len > MAX_PAYLOAD_LEN {
        return false;
    }
    let end = RECORD_HEADER_LEN as usize + payload_len as usize;
    end >= rest.len() || is_zero(&rest[end..])
}

/// Drops a torn record: shrink the file to the intact prefix, then reserve
/// the segment's space again so appends cannot meet a full disk.
fn cut_torn_tail(path: &Path, valid_len: u64, segment_bytes: u64) -> io::Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(valid_len)?;
    segment::reserve(&file, segment_bytes)?;
    file.sync_all()
}

fn damage(segment: u64, offset: u64, reason: String, dropped: usize) -> Damage {
    Damage { segment, offset, reason, dropped_bytes: dropped as u64 }
}
