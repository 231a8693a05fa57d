//! Ruby gem versions, ordered as `Gem::Version#<=>` orders them (current
//! RubyGems, including its SemVer-style hyphen handling).
//!
//! A version is digits and ASCII letters separated by dots, optionally
//! followed by `-` parts (`[0-9]+(\.[0-9a-zA-Z]+)*(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?`,
//! surrounding whitespace allowed, empty meaning `0`). A hyphen before a part
//! that starts with letters becomes a dot (`1.0.0-beta.1` is `1.0.0.beta.1`);
//! one before a numeric part becomes `.pre.` (`1.0.0-1` is `1.0.0.pre.1`).
//! Any letter makes a version a prerelease, ordered before the release.
//!
//! Comparison uses the canonical segments: the version is scanned into runs
//! of digits (numbers) and of letters (strings, case-sensitive); trailing
//! zeros are dropped, as are zeros right before the first letter of a
//! prerelease (`1.0.a == 1.a`), and a `pre` followed by a string (left over
//! from older hyphen handling). Segments compare pairwise: numbers
//! numerically, strings bytewise, a string before any number; when one side
//! runs out, the other is greater if its next segment is a non-zero number,
//! less if it is a string.

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::digits::{cmp_digits, is_zero, strip_zeros};
use crate::{Scheme, VersionError};

/// One canonical segment.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    /// Digits without leading zeros.
    Num(Vec<u8>),
    /// Letters, case preserved.
    Str(String),
}

/// A parsed gem version: its canonical segments.
#[derive(Debug, Clone)]
pub struct Version {
    version: String,
    segments: Vec<Seg>,
}

fn is_ruby_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// `Gem::Version.correct?` on an already trimmed string.
fn correct(v: &str) -> bool {
    let (main, rest) = match v.split_once('-') {
        Some((m, r)) => (m, Some(r)),
        None => (v, None),
    };
    let mut parts = main.split('.');
    let first = parts.next().unwrap_or("");
    if first.is_empty() || !first.bytes().all(|c| c.is_ascii_digit()) {
        return false;
    }
    if !parts.all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_alphanumeric())) {
        return false;
    }
    match rest {
        None => true,
        Some(r) => r
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')),
    }
}

/// `Gem::Version.normalize_hyphens`.
fn normalize_hyphens(v: &str) -> Cow<'_, str> {
    if !v.contains('-') {
        return Cow::Borrowed(v);
    }
    let mut parts: Vec<&str> = v.split('-').collect();
    while parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    let mut out = String::with_capacity(v.len() + 8);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push('.');
            let first = part.split('.').next().unwrap_or("");
            if first.is_empty() || !first.bytes().any(|c| c.is_ascii_alphabetic()) {
                out.push_str("pre.");
            }
        }
        out.push_str(part);
    }
    Cow::Owned(out)
}

/// The canonical version string: trailing zero segments removed, and (for
/// prereleases) the zero segments right before the first letter.
fn canonical_string(v: &str) -> String {
    let b = v.as_bytes();
    let zero_or_dot = |c: u8| c == b'0' || c == b'.';
    // sub(/(?<=[a-zA-Z.])[.0]+\z/, "")
    let q = b.len() - b.iter().rev().take_while(|&&c| zero_or_dot(c)).count();
    let mut end = b.len();
    for p in q.max(1)..b.len() {
        if b[p - 1] == b'.' || b[p - 1].is_ascii_alphabetic() {
            end = p;
            break;
        }
    }
    let mut s = v[..end].to_owned();
    // sub!(/(?<=\.|\A)[0.]+(?=[a-zA-Z])/, "") for prereleases
    if v.bytes().any(|c| c.is_ascii_alphabetic()) {
        let b = s.as_bytes();
        for p in 0..b.len() {
            if (p == 0 || b[p - 1] == b'.') && zero_or_dot(b[p]) {
                let run = b[p..].iter().take_while(|&&c| zero_or_dot(c)).count();
                if b.get(p + run).is_some_and(u8::is_ascii_alphabetic) {
                    s.replace_range(p..p + run, "");
                    break;
                }
            }
        }
    }
    s
}

/// `scan(/\d+|[a-z]+/i)`.
fn partition(v: &str) -> Vec<Seg> {
    let b = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let class = |x: u8| {
            if c.is_ascii_digit() {
                x.is_ascii_digit()
            } else {
                x.is_ascii_alphabetic()
            }
        };
        if !c.is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let n = b[i..].iter().take_while(|&&x| class(x)).count();
        let run = &v[i..i + n];
        out.push(if c.is_ascii_digit() {
            Seg::Num(strip_zeros(run.as_bytes()).to_vec())
        } else {
            Seg::Str(run.to_owned())
        });
        i += n;
    }
    out
}

impl Version {
    /// Parses `s` as `Gem::Version.new` does.
    pub fn parse(s: &str) -> Result<Version, VersionError> {
        let t = s.trim_matches(is_ruby_space);
        if t.is_empty() {
            return Ok(Version {
                version: "0".to_owned(),
                segments: vec![Seg::Num(Vec::new())],
            });
        }
        if !correct(t) {
            return Err(VersionError::new(
                Scheme::RubyGems,
                s,
                "malformed version number string",
            ));
        }
        let version = normalize_hyphens(t).into_owned();
        let canonical = canonical_string(&version);
        let mut segments = partition(&canonical);
        // skip_redundant_pre_segments
        let mut i = 0;
        while i < segments.len() {
            if segments[i] == Seg::Str("pre".to_owned())
                && matches!(segments.get(i + 1), Some(Seg::Str(_)))
            {
                segments.remove(i);
            } else {
                i += 1;
            }
        }
        Ok(Version { version, segments })
    }

    /// Whether the version contains a letter.
    pub fn is_prerelease(&self) -> bool {
        self.version.bytes().any(|c| c.is_ascii_alphabetic())
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        if self.version == other.version || self.segments == other.segments {
            return Ordering::Equal;
        }
        let (l, r) = (&self.segments, &other.segments);
        for (a, b) in l.iter().zip(r.iter()) {
            let o = match (a, b) {
                (Seg::Str(_), Seg::Num(_)) => Ordering::Less,
                (Seg::Num(_), Seg::Str(_)) => Ordering::Greater,
                (Seg::Num(x), Seg::Num(y)) => cmp_digits(x, y),
                (Seg::Str(x), Seg::Str(y)) => x.cmp(y),
            };
            if o != Ordering::Equal {
                return o;
            }
        }
        let n = l.len().min(r.len());
        // The longer side decides by its first string or non-zero number.
        let tail = |segs: &[Seg]| -> Ordering {
            for s in segs {
                match s {
                    Seg::Str(_) => return Ordering::Less,
                    Seg::Num(d) if !is_zero(d) => return Ordering::Greater,
                    Seg::Num(_) => {}
                }
            }
            Ordering::Equal
        };
        if l.len() > n {
            tail(&l[n..])
        } else {
            tail(&r[n..]).reverse()
        }
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

/// Orders two gem versions.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(Version::parse(a)?.cmp(&Version::parse(b)?))
}

/// Whether `v` is a valid gem version (`Gem::Version.correct?`).
pub fn parse_check(v: &str) -> Result<(), VersionError> {
    Version::parse(v).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal as E, Greater as G, Less as L};

    /// rubygems' test/rubygems/test_gem_version.rb: test_spaceship,
    /// test_semver, test_equals2, test_initialize, the hyphen cases and the
    /// sort-key cases.
    #[test]
    fn rubygems_reference_comparisons() {
        let cases: &[(&str, &str, Ordering)] = &[
            ("1.0", "1.0.0", E),
            ("1.0", "1.0.a", G),
            ("1.8.2", "0.0.0", G),
            ("1.8.2", "1.8.2.a", G),
            ("1.8.2.b", "1.8.2.a", G),
            ("1.8.2.a", "1.8.2", L),
            ("1.8.2.a10", "1.8.2.a9", G),
            ("", "0", E),
            ("0.beta.1", "0.0.beta.1", E),
            ("0.0.beta", "0.0.beta.1", L),
            ("0.0.beta", "0.beta.1", L),
            ("5.a", "5.0.0.rc2", L),
            ("5.x", "5.0.0.rc2", G),
            ("1.9.3", "1.9.3", E),
            ("1.9.3", "1.9.2.99", G),
            ("1.9.3", "1.9.3.1", L),
            ("1.0.0-alpha", "1.0.0-alpha.1", L),
            ("1.0.0-alpha.1", "1.0.0-beta.2", L),
            ("1.0.0-beta.2", "1.0.0-beta.11", L),
            ("1.0.0-beta.11", "1.0.0-rc.1", L),
            ("1.0.0-rc1", "1.0.0", L),
            ("1.0.0-1", "1", L),
            ("1.2", "1.2", E),
            ("1.2", "1.3", L),
            ("1.2.b1", "1.2.b.1", E),
            ("1.0.0.beta.1", "1.0.0-beta.1", E),
            ("1.0.0.rc.1", "1.0.0-rc.1", E),
            ("1.2.3.beta", "1.2.3-beta", E),
            ("1.0.0.1", "1.0.0-1", G),
            ("1.0.0.beta.1", "1.0.0.pre.beta.1", E),
            ("1.0.0", "0.0.1.20220404083012", G),
            ("0.7.0", "0.6.63000", G),
            ("18.0.1", "18.0.2", L),
            ("1.freeze.test", "1", L),
            ("1.2.pre.1", "1.2.0.pre.1.0", E),
            ("1.A", "1.a", L),
            ("3.2.22.5", "3.2.22", G),
            ("7.0.8.1", "7.0.8", G),
            ("2.7.4", "2.7.10", L),
        ];
        for &(a, b, want) in cases {
            assert_eq!(compare(a, b).unwrap(), want, "{a:?} vs {b:?}");
            assert_eq!(compare(b, a).unwrap(), want.reverse(), "{b:?} vs {a:?}");
        }
        for good in ["1.0", "1.0 ", " 1.0 ", "1.0\n", "\n1.0\n", "   "] {
            let want = if good.trim().is_empty() { "0" } else { "1.0" };
            assert_eq!(compare(want, good).unwrap(), E, "{good:?}");
        }
    }

    #[test]
    fn rubygems_canonical_segments_and_prerelease() {
        let segs = |v: &str| Version::parse(v).unwrap().segments;
        let n = |d: &str| Seg::Num(d.as_bytes().to_vec());
        let s = |x: &str| Seg::Str(x.to_owned());
        assert_eq!(segs("1.0.0"), [n("1")]);
        assert_eq!(segs("1.0.0.a.1.0"), [n("1"), s("a"), n("1")]);
        assert_eq!(segs("1.2.3-1"), [n("1"), n("2"), n("3"), s("pre"), n("1")]);
        for pre in [
            "1.2.0.a",
            "2.9.b",
            "22.1.50.0.d",
            "1.2.d.42",
            "1.A",
            "1-1",
            "1-a",
        ] {
            assert!(Version::parse(pre).unwrap().is_prerelease(), "{pre}");
        }
        for rel in ["1.2.0", "2.9", "22.1.50.0"] {
            assert!(!Version::parse(rel).unwrap().is_prerelease(), "{rel}");
        }
    }

    /// test_initialize_invalid, including the CVE-2013-4287 string.
    #[test]
    fn rubygems_invalid() {
        for bad in [
            "junk",
            "1.0\n2.0",
            "1..2",
            "1.2 3.4",
            "2.3422222.222.222222222.22222.ads0as.dasd0.ddd2222.2.qd3e.",
            "v1.0",
            "1.0+build",
        ] {
            let e = parse_check(bad).unwrap_err();
            assert_eq!((e.scheme, e.input.as_str()), (Scheme::RubyGems, bad));
        }
    }
}
