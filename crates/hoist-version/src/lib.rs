//! Version comparison per package ecosystem, for matching packages against
//! vulnerability ranges.
//!
//! It owns one job: decide how two version strings of one ecosystem order (dpkg,
//! apk, rpm, PEP 440, SemVer 2 with npm ranges, Go, Maven, RubyGems), each scheme
//! in a module of its own with its own tests. It must not know about advisories,
//! packages or images: callers pass version strings and get an ordering.
