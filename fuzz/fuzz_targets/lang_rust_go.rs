//! Rust and Go: `Cargo.lock`, `go.mod`, `go.sum`, executables (ELF with Go build
//! info or cargo-auditable `.dep-v0` data), and the cargo-auditable payload itself
//! (zlib-compressed JSON) through `cargo::parse_audit_data` (the first input byte
//! picks the format). Checks in `lang_check.rs`.
#![no_main]

#[path = "lang_check.rs"]
mod lang_check;

use std::path::Path;

use hoist_inventory::lang::cargo;
use libfuzzer_sys::fuzz_target;

const PATHS: &[&str] = &[
    "app/Cargo.lock",
    "app/go.mod",
    "app/go.sum",
    "usr/local/bin/server",
];

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((&selector, body)) if usize::from(selector) % (PATHS.len() + 1) == PATHS.len() => {
            let path = Path::new("usr/local/bin/server");
            lang_check::check(path, body, cargo::parse_audit_data(path, body));
        }
        _ => lang_check::drive(PATHS, data),
    }
});
