//! Request bodies and paths come from anyone who can reach the port: parsing
//! them must never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wharf_http::fuzzing::parse_every_body(data);
    // The first line, when there is one, doubles as "METHOD /path".
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some((method, path)) = text.lines().next().and_then(|line| line.split_once(' ')) {
            wharf_http::fuzzing::route(method.as_bytes(), path);
        }
    }
});
