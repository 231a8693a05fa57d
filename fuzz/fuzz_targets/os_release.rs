//! `hoist_inventory::os::os_release::parse` on arbitrary bytes: never panics; a
//! parsed release has an ID; a line-numbered error points inside the input.
#![no_main]

use hoist_inventory::os::os_release;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let lines = data.split(|&b| b == b'\n').count();
    match os_release::parse(data) {
        Ok(release) => assert!(!release.id.is_empty(), "release without an ID: {release:?}"),
        Err(e) => {
            if let Some(line) = e.line {
                assert!(line >= 1 && line <= lines, "line {line} of {lines}");
            }
        }
    }
});
