//! Replays every input under `tests/fuzz-regressions/` through what the
//! `record_decode` fuzz target checks, so that a crash found by fuzzing
//! (`scripts/fuzz.sh`) stays fixed under a plain `cargo test`: decoding
//! never panics, whatever it accepts encodes back to the same bytes, and the
//! same holds when the input is framed as a record with a valid checksum.

use std::path::Path;

use wharf_engine::record::{decode, parse_segment_header};

/// Decodes records back to back; every accepted one must round-trip.
/// Returns how many were accepted.
fn decode_all(mut rest: &[u8], name: &str) -> usize {
    let mut accepted = 0;
    while let Ok((record, len)) = decode(rest) {
        let mut encoded = Vec::new();
        record.encode_into(&mut encoded);
        assert_eq!(encoded.as_slice(), &rest[..len], "{name}: decode then encode must round-trip");
        rest = &rest[len..];
        accepted += 1;
    }
    accepted
}

/// The input's first byte as the record kind and the rest as its payload,
/// with correct length and checksum, so the payload decoder sees it.
fn framed(data: &[u8]) -> Option<Vec<u8>> {
    let (kind, payload) = data.split_first()?;
    let mut crc_input = vec![*kind];
    crc_input.extend_from_slice(payload);
    let mut out = Vec::with_capacity(payload.len() + 9);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&crc_input).to_le_bytes());
    out.extend_from_slice(&crc_input);
    Some(out)
}

fn replay(dir: &Path) -> usize {
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display())) {
        let path = entry.expect("entry").path();
        let name = path.display().to_string();
        let data = std::fs::read(&path).expect("regression input");
        let _ = parse_segment_header(&data);
        decode_all(&data, &name);
        if let Some(framed) = framed(&data) {
            decode_all(&framed, &name);
        }
        files += 1;
    }
    files
}

#[test]
fn every_fuzz_regression_input_decodes_without_panicking() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    assert!(replay(&dir) >= 10, "the regression inputs are missing");
}

#[test]
fn the_fuzz_seed_corpus_decodes_and_round_trips() {
    // The committed seeds are valid records: all of them must be accepted,
    // or the seeds no longer lead the fuzzer into the payload decoder.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/record_decode");
    for name in ["push", "delete", "deliver", "requeue", "purge", "move"] {
        let data = std::fs::read(dir.join(name)).expect("seed");
        assert_eq!(decode_all(&data, name), 1, "seed {name} is one valid record");
    }
    let segment = std::fs::read(dir.join("header-and-records")).expect("seed");
    assert!(parse_segment_header(&segment).is_ok());
    assert_eq!(decode_all(&segment[20..], "header-and-records"), 4);
    assert!(replay(&dir) >= 8);
}
