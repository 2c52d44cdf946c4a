//! The on-disk record format of the message log.
//!
//! A segment file starts with a header (magic, format version, segment
//! number); then records follow back to back:
//!
//! ```text
//! [payload_len: u32 LE][crc32 of kind+payload: u32 LE][kind: u8][payload]
//! ```
//!
//! Every integer is little-endian. Records only ever refer to messages pushed
//! earlier, so deleting segments oldest-first never loses a needed record.

use wharf_core::model::ContentType;
use wharf_core::QueueId;

pub const SEGMENT_MAGIC: &[u8; 8] = b"WHARFLOG";
pub const FORMAT_VERSION: u32 = 1;
/// Magic + version + segment number.
pub const SEGMENT_HEADER_LEN: u64 = 8 + 4 + 8;
/// Length + CRC + kind.
pub const RECORD_HEADER_LEN: u64 = 4 + 4 + 1;
/// Fixed part of a push payload before the body.
pub const PUSH_FIXED_LEN: u64 = 16 + 8 + 8 + 8 + 4 + 1 + 4;
/// A record larger than this is corrupt: no valid record comes near it.
pub const MAX_PAYLOAD_LEN: u32 = 16 * 1024 * 1024;

const KIND_PUSH: u8 = 1;
const KIND_DELETE: u8 = 2;
const KIND_DELIVER: u8 = 3;
const KIND_REQUEUE: u8 = 4;
const KIND_PURGE: u8 = 5;
const KIND_MOVE: u8 = 6;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A message enters a queue, or is copied forward with its state.
    Push {
        queue: QueueId,
        seq: u64,
        timestamp_ms: u64,
        visible_at_ms: u64,
        attempts: u32,
        content_type: ContentType,
        body: Vec<u8>,
    },
    /// A message leaves its queue (ack, purge by ref, retention, dead-lettering).
    Delete { queue: QueueId, seq: u64 },
    /// A delivery started; `attempts` is the count after it.
    Deliver { queue: QueueId, seq: u64, attempts: u32 },
    /// A message becomes visible again at `visible_at_ms`.
    Requeue { queue: QueueId, seq: u64, visible_at_ms: u64 },
    /// Every message of the queue with a smaller sequence number is gone.
    Purge { queue: QueueId, before_seq: u64 },
    /// A message is dead-lettered into another queue under a new sequence
    /// number; its body stays where it is.
    Move { queue: QueueId, seq: u64, to_queue: QueueId, new_seq: u64 },
}

pub fn segment_header(segment: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(SEGMENT_HEADER_LEN as usize);
    out.extend_from_slice(SEGMENT_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&segment.to_le_bytes());
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderProblem {
    TooShort,
    BadMagic,
    UnsupportedVersion(u32),
}

/// Checks a segment header and returns the segment number it names.
pub fn parse_segment_header(bytes: &[u8]) -> Result<u64, HeaderProblem> {
    if bytes.len() < SEGMENT_HEADER_LEN as usize {
        return Err(HeaderProblem::TooShort);
    }
    if &bytes[..8] != SEGMENT_MAGIC {
        return Err(HeaderProblem::BadMagic);
    }
    let version = u32::from_le_bytes(array(&bytes[8..12]));
    if version != FORMAT_VERSION {
        return Err(HeaderProblem::UnsupportedVersion(version));
    }
    Ok(u64::from_le_bytes(array(&bytes[12..20])))
}

impl Record {
    /// Appends the framed record to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0u8; 8]);
        match self {
            Record::Push { queue, seq, timestamp_ms, visible_at_ms, attempts, content_type, body } => {
                out.push(KIND_PUSH);
                out.extend_from_slice(&queue.to_bytes());
                out.extend_from_slice(&seq.to_le_bytes());
                out.extend_from_slice(&timestamp_ms.to_le_bytes());
                out.extend_from_slice(&visible_at_ms.to_le_bytes());
                out.extend_from_slice(&attempts.to_le_bytes());
                out.push(content_type.to_byte());
                out.extend_from_slice(&(body.len() as u32).to_le_bytes());
                out.extend_from_slice(body);
            }
            Record::Delete { queue, seq } => {
                out.push(KIND_DELETE);
                out.extend_from_slice(&queue.to_bytes());
                out.extend_from_slice(&seq.to_le_bytes());
            }
            Record::Deliver { queue, seq, attempts } => {
                out.push(KIND_DELIVER);
                out.extend_from_slice(&queue.to_bytes());
                out.extend_from_slice(&seq.to_le_bytes());
                out.extend_from_slice(&attempts.to_le_bytes());
            }
            Record::Requeue { queue, seq, visible_at_ms } => {
                out.push(KIND_REQUEUE);
                out.extend_from_slice(&queue.to_bytes());
                out.extend_from_slice(&seq.to_le_bytes());
                out.extend_from_slice(&visible_at_ms.to_le_bytes());
            }
            Record::Purge { queue, before_seq } => {
                out.push(KIND_PURGE);
                out.extend_from_slice(&queue.to_bytes());
                out.extend_from_slice(&before_seq.to_le_bytes());
            }
            Record::Move { queue, seq, to_queue, new_seq } => {
                out.push(KIND_MOVE);
                out.extend_from_slice(&queue.to_bytes());
                out.extend_from_slice(&seq.to_le_bytes());
                out.extend_from_slice(&to_queue.to_bytes());
                out.extend_from_slice(&new_seq.to_le_bytes());
            }
        }
        let payload_len = (out.len() - start - RECORD_HEADER_LEN as usize) as u32;
        let crc = crc32fast::hash(&out[start + 8..]);
        out[start..start + 4].copy_from_slice(&payload_len.to_le_bytes());
        out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    }

    pub fn encoded_len(&self) -> u64 {
        RECORD_HEADER_LEN
            + match self {
                Record::Push { body, .. } => PUSH_FIXED_LEN + body.len() as u64,
                Record::Delete { .. } => 24,
                Record::Deliver { .. } => 28,
                Record::Requeue { .. } => 32,
                Record::Purge { .. } => 24,
                Record::Move { .. } => 48,
            }
    }
}

/// Why decoding stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeStop {
    /// Clean end of data.
    End,
    /// The bytes end inside a record: a write was cut short.
    Torn,
    /// The record's checksum does not match its bytes.
    BadChecksum,
    /// The framing or the payload cannot be a valid record.
    Malformed(&'static str),
}

/// A push record whose body stays in the bytes it was decoded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRef<'a> {
    pub queue: QueueId,
    pub seq: u64,
    pub timestamp_ms: u64,
    pub visible_at_ms: u64,
    pub attempts: u32,
    pub content_type: ContentType,
    pub body: &'a [u8],
}

/// A decoded record that borrows a push's body instead of copying it:
/// recovery only needs to know where a body is, not to hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordRef<'a> {
    Push(PushRef<'a>),
    Other(Record),
}

impl RecordRef<'_> {
    pub fn to_owned_record(&self) -> Record {
        match self {
            RecordRef::Push(push) => Record::Push {
                queue: push.queue,
                seq: push.seq,
                timestamp_ms: push.timestamp_ms,
                visible_at_ms: push.visible_at_ms,
                attempts: push.attempts,
                content_type: push.content_type,
                body: push.body.to_vec(),
            },
            RecordRef::Other(record) => record.clone(),
        }
    }
}

/// Decodes the record at the start of `bytes`; returns it and its length.
pub fn decode(bytes: &[u8]) -> Result<(Record, usize), DecodeStop> {
    let (record, len) = decode_ref(bytes)?;
    let owned = match record {
        RecordRef::Other(record) => record,
        push => push.to_owned_record(),
    };
    Ok((owned, len))
}

/// [`decode`] without copying a push's body.
pub fn decode_ref(bytes: &[u8]) -> Result<(RecordRef<'_>, usize), DecodeStop> {
    if bytes.is_empty() {
        return Err(DecodeStop::End);
    }
    if bytes.len() < RECORD_HEADER_LEN as usize {
        return Err(DecodeStop::Torn);
    }
    let payload_len = u32::from_le_bytes(array(&bytes[0..4]));
    if payload_len > MAX_PAYLOAD_LEN {
        return Err(DecodeStop::Malformed("record length out of range"));
    }
    let total = RECORD_HEADER_LEN as usize + payload_len as usize;
    if bytes.len() < total {
        return Err(DecodeStop::Torn);
    }
    let crc = u32::from_le_bytes(array(&bytes[4..8]));
    if crc32fast::hash(&bytes[8..total]) != crc {
        return Err(DecodeStop::BadChecksum);
    }
    let kind = bytes[8];
    let payload = &bytes[9..total];
    let record = decode_payload(kind, payload)?;
    Ok((record, total))
}

fn decode_payload(kind: u8, payload: &[u8]) -> Result<RecordRef<'_>, DecodeStop> {
    let mut reader = Reader { bytes: payload };
    let record = match kind {
        KIND_PUSH => {
            let queue = reader.queue()?;
            let seq = reader.u64()?;
            let timestamp_ms = reader.u64()?;
            let visible_at_ms = reader.u64()?;
            let attempts = reader.u32()?;
            let content_type = ContentType::from_byte(reader.u8()?).ok_or(DecodeStop::Malformed("content type"))?;
            let body_len = reader.u32()? as usize;
            let body = reader.take(body_len)?;
            RecordRef::Push(PushRef { queue, seq, timestamp_ms, visible_at_ms, attempts, content_type, body })
        }
        _ => RecordRef::Other(decode_other(kind, &mut reader)?),
    };
    if !reader.bytes.is_empty() {
        return Err(DecodeStop::Malformed("trailing bytes in record"));
    }
    Ok(record)
}

/// Every kind but push: fixed-size payloads without a body.
fn decode_other(kind: u8, reader: &mut Reader<'_>) -> Result<Record, DecodeStop> {
    let record = match kind {
        KIND_DELETE => Record::Delete { queue: reader.queue()?, seq: reader.u64()? },
        KIND_DELIVER => Record::Deliver { queue: reader.queue()?, seq: reader.u64()?, attempts: reader.u32()? },
        KIND_REQUEUE => Record::Requeue { queue: reader.queue()?, seq: reader.u64()?, visible_at_ms: reader.u64()? },
        KIND_PURGE => Record::Purge { queue: reader.queue()?, before_seq: reader.u64()? },
        KIND_MOVE => Record::Move {
            queue: reader.queue()?,
            seq: reader.u64()?,
            to_queue: reader.queue()?,
            new_seq: reader.u64()?,
        },
        _ => return Err(DecodeStop::Malformed("unknown record kind")),
    };
    Ok(record)
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeStop> {
        if self.bytes.len() < len {
            return Err(DecodeStop::Malformed("payload shorter than its fields"));
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeStop> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, DecodeStop> {
        Ok(u32::from_le_bytes(array(self.take(4)?)))
    }
    fn u64(&mut self) -> Result<u64, DecodeStop> {
        Ok(u64::from_le_bytes(array(self.take(8)?)))
    }
    fn queue(&mut self) -> Result<QueueId, DecodeStop> {
        Ok(QueueId::from_bytes(array(self.take(16)?)))
    }
}

/// Copies a slice of known length into an array; callers check lengths first.
fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[..N]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Record> {
        let queue = QueueId(42);
        vec![
            Record::Push {
                queue,
                seq: 7,
                timestamp_ms: 1,
                visible_at_ms: 2,
                attempts: 3,
                content_type: ContentType::Json,
                body: b"{\"a\":1}".to_vec(),
            },
            Record::Delete { queue, seq: 7 },
            Record::Deliver { queue, seq: 7, attempts: 4 },
            Record::Requeue { queue, seq: 7, visible_at_ms: 99 },
            Record::Purge { queue, before_seq: 8 },
            Record::Move { queue, seq: 7, to_queue: QueueId(43), new_seq: 9 },
        ]
    }

    #[test]
    fn every_kind_round_trips_and_knows_its_length() {
        for record in samples() {
            let mut bytes = Vec::new();
            record.encode_into(&mut bytes);
            assert_eq!(bytes.len() as u64, record.encoded_len());
            assert_eq!(decode(&bytes), Ok((record.clone(), bytes.len())));
            let (borrowed, len) = decode_ref(&bytes).expect("decodes borrowed");
            assert_eq!((borrowed.to_owned_record(), len), (record, bytes.len()));
        }
    }

    #[test]
    fn a_borrowed_push_body_points_into_the_decoded_bytes() {
        let mut bytes = Vec::new();
        samples()[0].encode_into(&mut bytes);
        let Ok((RecordRef::Push(push), _)) = decode_ref(&bytes) else { panic!("a push") };
        assert_eq!(push.body, b"{\"a\":1}");
        let body_offset = (RECORD_HEADER_LEN + PUSH_FIXED_LEN) as usize;
        assert!(std::ptr::eq(push.body.as_ptr(), bytes[body_offset..].as_ptr()), "no copy");
    }

    #[test]
    fn a_cut_record_is_torn_and_a_flipped_byte_is_caught() {
        let mut bytes = Vec::new();
        samples()[0].encode_into(&mut bytes);
        for cut in 1..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), Err(DecodeStop::Torn), "cut at {cut}");
        }
        for position in 4..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[position] ^= 0x40;
            assert!(decode(&damaged).is_err(), "flip at {position}");
        }
    }

    #[test]
    fn segment_header_round_trips_and_rejects_strangers() {
        let header = segment_header(12);
        assert_eq!(parse_segment_header(&header), Ok(12));
        assert_eq!(parse_segment_header(&header[..5]), Err(HeaderProblem::TooShort));
        let mut wrong = header.clone();
        wrong[0] = b'X';
        assert_eq!(parse_segment_header(&wrong), Err(HeaderProblem::BadMagic));
        let mut future = header;
        future[8] = 9;
        assert_eq!(parse_segment_header(&future), Err(HeaderProblem::UnsupportedVersion(9)));
    }
}
