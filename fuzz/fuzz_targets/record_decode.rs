//! Log record decoding faces whatever a damaged disk holds: it must never
//! panic, and whatever it accepts must encode back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf_engine::record::{decode, parse_segment_header};

fn check_all(mut rest: &[u8]) {
    while let Ok((record, len)) = decode(rest) {
        let mut encoded = Vec::new();
        record.encode_into(&mut encoded);
        assert_eq!(encoded.as_slice(), &rest[..len], "decode then encode must round-trip");
        rest = &rest[len..];
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = parse_segment_header(data);
    check_all(data);
    // Random bytes rarely pass the checksum; frame them correctly as well so
    // the payload decoder sees them (first byte: the record kind).
    if let Some((kind, payload)) = data.split_first() {
        let mut framed = Vec::with_capacity(payload.len() + 9);
        framed.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        let mut crc_input = vec![*kind];
        crc_input.extend_from_slice(payload);
        framed.extend_from_slice(&crc32(&crc_input).to_le_bytes());
        framed.extend_from_slice(&crc_input);
        check_all(&framed);
    }
});

/// CRC-32 (IEEE), bitwise: the fuzz target stays free of extra dependencies.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in bytes {
        crc ^= *byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
