//! Python metadata and lockfiles: `*.dist-info/METADATA`, `*.egg-info/PKG-INFO`,
//! `requirements.txt`, `poetry.lock`, `Pipfile.lock` (the first input byte picks the
//! format). Checks in `lang_check.rs`.
#![no_main]

#[path = "lang_check.rs"]
mod lang_check;

use libfuzzer_sys::fuzz_target;

const PATHS: &[&str] = &[
    "usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA",
    "usr/lib/python3/site-packages/six-1.16.0-py3.11.egg-info/PKG-INFO",
    "app/requirements.txt",
    "app/poetry.lock",
    "app/Pipfile.lock",
];

fuzz_target!(|data: &[u8]| lang_check::drive(PATHS, data));
