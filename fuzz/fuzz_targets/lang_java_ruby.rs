//! Java archives (`.jar`, read as zip, with nested jars, `pom.properties` and
//! `MANIFEST.MF`) and Ruby (`*.gemspec`, `Gemfile.lock`) (the first input byte picks
//! the format). Checks in `lang_check.rs`.
#![no_main]

#[path = "lang_check.rs"]
mod lang_check;

use libfuzzer_sys::fuzz_target;

const PATHS: &[&str] = &[
    "app/lib/app.jar",
    "usr/lib/ruby/gems/3.1.0/specifications/rack-3.0.8.gemspec",
    "app/Gemfile.lock",
];

fuzz_target!(|data: &[u8]| lang_check::drive(PATHS, data));
