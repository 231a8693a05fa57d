//! `hoist_inventory::os::apk::parse` (`lib/apk/db/installed`) on arbitrary bytes:
//! never panics; every package has a name and a version; a line-numbered error
//! points inside the input.
#![no_main]

use hoist_inventory::os::apk;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let lines = data.split(|&b| b == b'\n').count();
    match apk::parse(data) {
        Ok(packages) => {
            for p in &packages {
                assert!(!p.name.is_empty(), "package without a name: {p:?}");
                assert!(!p.version.is_empty(), "package without a version: {p:?}");
            }
        }
        Err(e) => {
            if let Some(line) = e.line {
                assert!(line >= 1 && line <= lines, "line {line} of {lines}");
            }
            assert!(!e.to_string().is_empty());
        }
    }
});
