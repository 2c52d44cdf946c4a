//! Replays every input under `tests/fuzz-regressions/` and the committed
//! seeds in `fuzz/seeds/request_body/` through what the `request_body` fuzz
//! target runs, so that a crash found by fuzzing (`scripts/fuzz.sh`) stays
//! fixed under a plain `cargo test`: parsing a body as every request type,
//! and routing the first line as "METHOD /path", never panics.

use std::path::{Path, PathBuf};

use axum::http::Method;
use wharf_http::endpoint;
use wharf_http::fuzzing::{parse_every_body, route};

/// What the fuzz target does with one input.
fn run_like_the_fuzz_target(data: &[u8]) {
    parse_every_body(data);
    if let Some((method, path)) = first_line_as_request_line(data) {
        route(method.as_bytes(), path);
    }
}

/// The first line split at its first space, when the input is UTF-8.
fn first_line_as_request_line(data: &[u8]) -> Option<(&str, &str)> {
    let text = std::str::from_utf8(data).ok()?;
    text.lines().next()?.split_once(' ')
}

/// Replays every file of `dir`; returns how many there were.
fn replay(dir: &Path) -> usize {
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display())) {
        let path = entry.expect("entry").path();
        let data = std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        run_like_the_fuzz_target(&data);
        files += 1;
    }
    files
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_fuzz_regression_input_parses_and_routes_without_panicking() {
    let dir = manifest_dir().join("tests/fuzz-regressions");
    assert!(replay(&dir) >= 10, "the regression inputs are missing");
}

#[test]
fn the_fuzz_seed_corpus_parses_and_routes_without_panicking() {
    let dir = manifest_dir().join("../../fuzz/seeds/request_body");
    assert!(replay(&dir) >= 6, "the request_body seeds are missing");
    // The push seed's first line must still be a real route, or the seeds no
    // longer lead the fuzzer past the router's first refusal.
    let push = std::fs::read(dir.join("push")).expect("push seed");
    let (method, path) = first_line_as_request_line(&push).expect("push seed starts with a request line");
    let method = Method::from_bytes(method.as_bytes()).expect("push seed method");
    assert!(endpoint::parse(&method, path).is_ok(), "push seed routes: {method} {path}");
}
