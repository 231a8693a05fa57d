//! rpm header blobs (`hoist_inventory::os::rpm::parse_header`) on arbitrary bytes,
//! and on headers re-encoded from what was parsed: never panics, never reads out of
//! bounds; a header encoded from parsed values parses back to the same values.
//! Inputs that start with SQLite's magic also go through `rpm::parse` (the whole
//! `rpmdb.sqlite`, opened in memory).
#![no_main]

use hoist_inventory::os::rpm::{self, HeaderValue};
use libfuzzer_sys::fuzz_target;

const NAME: i32 = 1000;
const VERSION: i32 = 1001;
const RELEASE: i32 = 1002;
const EPOCH: i32 = 1003;
const LICENSE: i32 = 1014;
const SOURCERPM: i32 = 1044;

/// A parsed string that can be encoded again (no NUL inside).
fn clean(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.contains('\0'))
}

fuzz_target!(|data: &[u8]| {
    if data.starts_with(b"SQLite format 3\0") {
        if let Ok(packages) = rpm::parse(data) {
            for p in &packages {
                assert!(!p.name.is_empty(), "package without a name: {p:?}");
            }
        }
        return;
    }
    let Ok(header) = rpm::parse_header(data) else {
        return;
    };
    // Round trip: encode what was read (strings without NULs) and read it again.
    let mut entries = Vec::new();
    for (tag, value) in [
        (NAME, clean(&header.name)),
        (VERSION, clean(&header.version)),
        (RELEASE, clean(&header.release)),
        (LICENSE, clean(&header.license)),
        (SOURCERPM, clean(&header.source_rpm)),
    ] {
        if let Some(v) = value {
            entries.push((tag, HeaderValue::Str(v)));
        }
    }
    if let Some(epoch) = header.epoch {
        entries.push((EPOCH, HeaderValue::Int(epoch)));
    }
    if entries.is_empty() {
        return;
    }
    let blob = rpm::encode_header(&entries);
    let again = rpm::parse_header(&blob).expect("re-encoded header parses");
    assert_eq!(again.name.as_deref(), clean(&header.name));
    assert_eq!(again.version.as_deref(), clean(&header.version));
    assert_eq!(again.release.as_deref(), clean(&header.release));
    assert_eq!(again.epoch, header.epoch);
});
