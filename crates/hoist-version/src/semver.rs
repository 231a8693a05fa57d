//! Semantic Versioning 2.0.0 precedence (npm, crates.io, NuGet, Hex, Pub).
//!
//! `MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`: the three numbers compare
//! numerically; a version with a prerelease orders before the same version
//! without one; prerelease identifiers compare left to right, numeric ones
//! numerically and before alphanumeric ones, which compare in ASCII order, and
//! a shorter list that is a prefix of a longer one orders first. Build metadata
//! is ignored.
//!
//! Beyond the grammar this tolerates what registries and advisories write in
//! front of a version: surrounding whitespace and a leading `v` or `=` (as
//! node-semver does), and the bare `0` that OSV ranges use for "introduced
//! from the beginning", read as `0.0.0`. Numeric parts with leading zeros
//! are errors, as the specification requires.

use std::cmp::Ordering;

use crate::digits::cmp_digits;
use crate::{Scheme, VersionError};

/// A parsed SemVer version, borrowing its prerelease and build from the input.
#[derive(Debug, Clone, Copy)]
pub struct Version<'a> {
    /// The major number.
    pub major: u64,
    /// The minor number.
    pub minor: u64,
    /// The patch number.
    pub patch: u64,
    /// The prerelease identifiers, dot-separated, without the `-` (empty when none).
    pub pre: &'a str,
    /// The build metadata without the `+` (empty when none); ignored by ordering.
    pub build: &'a str,
}

impl<'a> Version<'a> {
    /// A release version without prerelease or build.
    pub const fn new(major: u64, minor: u64, patch: u64) -> Version<'static> {
        Version {
            major,
            minor,
            patch,
            pre: "",
            build: "",
        }
    }

    /// Parses `s`, tolerating surrounding whitespace, a leading `v` or `=`,
    /// and OSV's bare `0`.
    pub fn parse(s: &'a str) -> Result<Version<'a>, VersionError> {
        let v = strip_prefix(s);
        if v == "0" {
            // OSV's "introduced: 0" sentinel: before every version.
            return Ok(Version::new(0, 0, 0));
        }
        let err = |reason| VersionError::new(Scheme::Semver, s, reason);
        let (rest, build) = match v.split_once('+') {
            Some((r, b)) => {
                check_identifiers(b, false).map_err(err)?;
                (r, b)
            }
            None => (v, ""),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((c, p)) => {
                check_identifiers(p, true).map_err(err)?;
                (c, p)
            }
            None => (rest, ""),
        };
        let mut parts = core.split('.');
        let mut num = || -> Result<u64, VersionError> {
            let p = parts
                .next()
                .ok_or_else(|| err("expected MAJOR.MINOR.PATCH"))?;
            parse_number(p).map_err(err)
        };
        let (major, minor, patch) = (num()?, num()?, num()?);
        if parts.next().is_some() {
            return Err(err("more than three numbers before the prerelease"));
        }
        Ok(Version {
            major,
            minor,
            patch,
            pre,
            build,
        })
    }

    /// Whether this is a prerelease (`1.0.0-rc.1`).
    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }

    /// The major, minor and patch numbers.
    pub fn triple(&self) -> (u64, u64, u64) {
        (self.major, self.minor, self.patch)
    }
}

/// Removes surrounding whitespace and a leading `=` and/or `v` (each possibly
/// followed by whitespace), as node-semver does.
pub(crate) fn strip_prefix(s: &str) -> &str {
    let mut s = s.trim();
    if let Some(r) = s.strip_prefix('=') {
        s = r.trim_start();
    }
    if let Some(r) = s.strip_prefix(['v', 'V']) {
        s = r.trim_start();
    }
    s
}

/// Parses one numeric version part: digits, no leading zero, fits in u64.
pub(crate) fn parse_number(p: &str) -> Result<u64, &'static str> {
    if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
        return Err("version numbers must be decimal digits");
    }
    if p.len() > 1 && p.starts_with('0') {
        return Err("version numbers must not have leading zeros");
    }
    p.parse().map_err(|_| "version number is too big")
}

/// Checks dot-separated identifiers: non-empty, `[0-9A-Za-z-]`, and (for
/// prereleases) numeric ones without leading zeros.
pub(crate) fn check_identifiers(s: &str, pre: bool) -> Result<(), &'static str> {
    for id in s.split('.') {
        if id.is_empty() {
            return Err("empty prerelease or build identifier");
        }
        if !id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
            return Err("identifiers may contain only [0-9A-Za-z-]");
        }
        if pre && id.len() > 1 && id.starts_with('0') && id.bytes().all(|c| c.is_ascii_digit()) {
            return Err("numeric prerelease identifiers must not have leading zeros");
        }
    }
    Ok(())
}

/// SemVer prerelease precedence of two dot-separated identifier lists, both
/// non-empty.
pub(crate) fn cmp_pre(a: &str, b: &str) -> Ordering {
    let mut ai = a.split('.');
    let mut bi = b.split('.');
    loop {
        match (ai.next(), bi.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let xn = x.bytes().all(|c| c.is_ascii_digit());
                let yn = y.bytes().all(|c| c.is_ascii_digit());
                let o = match (xn, yn) {
                    (true, true) => cmp_digits(x.as_bytes(), y.as_bytes()),
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (false, false) => x.cmp(y),
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

impl Ord for Version<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.triple().cmp(&other.triple()).then_with(|| {
            match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => cmp_pre(self.pre, other.pre),
            }
        })
    }
}

impl PartialEq for Version<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version<'_> {}

impl PartialOrd for Version<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Orders two SemVer versions by precedence (build metadata ignored, so
/// `1.0.0+a` and `1.0.0+b` are `Equal`).
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(Version::parse(a)?.cmp(&Version::parse(b)?))
}

/// Whether `v` is a valid SemVer version (after the tolerated prefixes).
pub fn parse_check(v: &str) -> Result<(), VersionError> {
    Version::parse(v).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal as E, Greater as G, Less as L};

    /// node-semver's test/fixtures/comparisons.js: the first is greater.
    #[test]
    fn semver_node_comparisons() {
        let greater_first = [
            ("0.0.0", "0.0.0-foo"),
            ("0.0.1", "0.0.0"),
            ("1.0.0", "0.9.9"),
            ("0.10.0", "0.9.0"),
            ("0.99.0", "0.10.0"),
            ("2.0.0", "1.2.3"),
            ("v0.0.0", "0.0.0-foo"),
            ("v0.0.1", "0.0.0"),
            ("v1.0.0", "0.9.9"),
            ("v0.10.0", "0.9.0"),
            ("v0.99.0", "0.10.0"),
            ("v2.0.0", "1.2.3"),
            ("0.0.0", "v0.0.0-foo"),
            ("1.0.0", "v0.9.9"),
            ("1.2.3", "1.2.3-asdf"),
            ("1.2.3", "1.2.3-4"),
            ("1.2.3", "1.2.3-4-foo"),
            ("1.2.3-5-foo", "1.2.3-5"),
            ("1.2.3-5", "1.2.3-4"),
            ("1.2.3-5-foo", "1.2.3-5-Foo"),
            ("3.0.0", "2.7.2+asdf"),
            ("1.2.3-a.10", "1.2.3-a.5"),
            ("1.2.3-a.b", "1.2.3-a.5"),
            ("1.2.3-a.b", "1.2.3-a"),
            ("1.2.3-a.b.c.10.d.5", "1.2.3-a.b.c.5.d.100"),
            ("1.2.3-r2", "1.2.3-r100"),
            ("1.2.3-r100", "1.2.3-R2"),
        ];
        for (a, b) in greater_first {
            assert_eq!(compare(a, b).unwrap(), G, "{a} > {b}");
            assert_eq!(compare(b, a).unwrap(), L, "{b} < {a}");
        }
    }

    /// node-semver's test/fixtures/equality.js (the strict-mode ones plus the
    /// `v`/`=` prefixes this scheme tolerates).
    #[test]
    fn semver_node_equality() {
        let equal = [
            ("1.2.3", "v1.2.3"),
            ("1.2.3", "=1.2.3"),
            ("1.2.3", "v 1.2.3"),
            ("1.2.3", "= 1.2.3"),
            ("1.2.3", " v1.2.3"),
            ("1.2.3", " =1.2.3"),
            ("1.2.3", " v 1.2.3"),
            ("1.2.3", " = 1.2.3"),
            ("1.2.3-0", "v1.2.3-0"),
            ("1.2.3-0", "= 1.2.3-0"),
            ("1.2.3-1", " v 1.2.3-1"),
            ("1.2.3-beta", "=1.2.3-beta"),
            ("1.2.3-beta+build", " = 1.2.3-beta+otherbuild"),
            ("1.2.3+build", " = 1.2.3+otherbuild"),
            ("1.2.3-beta+build", "1.2.3-beta+otherbuild"),
            ("1.2.3+build", "1.2.3+otherbuild"),
            ("  v1.2.3+build", "1.2.3+otherbuild"),
        ];
        for (a, b) in equal {
            assert_eq!(compare(a, b).unwrap(), E, "{a} == {b}");
        }
    }

    /// The precedence example of SemVer 2.0.0 section 11.
    #[test]
    fn semver_spec_precedence_chain() {
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "2.0.0",
            "2.1.0",
            "2.1.1",
        ];
        for (i, a) in chain.iter().enumerate() {
            for (j, b) in chain.iter().enumerate() {
                assert_eq!(compare(a, b).unwrap(), i.cmp(&j), "{a} vs {b}");
            }
        }
        // Numbers beyond u64 in prerelease identifiers still compare numerically.
        assert_eq!(
            compare(
                "1.0.0-99999999999999999999999",
                "1.0.0-100000000000000000000000"
            )
            .unwrap(),
            L
        );
    }

    /// node-semver's test/fixtures/invalid-versions.js and the strict cases of
    /// valid-versions.js.
    #[test]
    fn semver_validity() {
        for bad in [
            "1.2.3.4",
            "NOT VALID",
            "1.2",
            "1",
            "",
            "00",
            "01.2.3",
            "1.02.3",
            "1.2.03",
            "1.2.3-01",
            "1.2.3-beta..1",
            "1.2.3+",
            "1.2.3-",
            "1.2.3beta",
            "99999999999999999999.0.0",
            "1.2.3-b@d",
            "x.y.z",
        ] {
            let e = parse_check(bad).unwrap_err();
            assert_eq!((e.scheme, e.input.as_str()), (Scheme::Semver, bad));
        }
        for good in [
            "1.0.0",
            "v1.2.3",
            "=1.2.3",
            "1.2.3-0",
            "1.2.3-alpha.0.x",
            "1.2.3+build.01",
            "1.2.3-a-b--c",
        ] {
            parse_check(good).unwrap();
        }
        assert_eq!(compare("0", "0.0.0-alpha").unwrap(), Ordering::Greater);
        assert_eq!(compare("0", "0.0.0").unwrap(), E);
        let v = Version::parse("v1.2.3-pre.4+b.5").unwrap();
        assert_eq!((v.triple(), v.pre, v.build), ((1, 2, 3), "pre.4", "b.5"));
    }
}
