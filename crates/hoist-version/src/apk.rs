//! Apk versions (work in progress: every comparison is an error until the
//! module lands).

use std::cmp::Ordering;

use crate::{Scheme, VersionError};

/// Orders two Apk versions.
pub fn compare(a: &str, _b: &str) -> Result<Ordering, VersionError> {
    Err(VersionError::new(
        Scheme::Apk,
        a,
        "comparison not implemented yet",
    ))
}

/// Whether `v` is a valid Apk version.
pub fn parse_check(v: &str) -> Result<(), VersionError> {
    Err(VersionError::new(
        Scheme::Apk,
        v,
        "validation not implemented yet",
    ))
}
