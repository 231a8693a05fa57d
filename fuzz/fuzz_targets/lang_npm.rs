//! npm lockfiles and manifests: `package-lock.json` (v1–v3), `yarn.lock` (classic
//! and berry), `node_modules/**/package.json` (the first input byte picks the
//! format). Checks in `lang_check.rs`.
#![no_main]

#[path = "lang_check.rs"]
mod lang_check;

use libfuzzer_sys::fuzz_target;

const PATHS: &[&str] = &[
    "app/package-lock.json",
    "app/yarn.lock",
    "app/node_modules/left-pad/package.json",
];

fuzz_target!(|data: &[u8]| lang_check::drive(PATHS, data));
