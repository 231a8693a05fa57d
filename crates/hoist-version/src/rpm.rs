//! RPM package versions: `[epoch:]version[-release]` compared as rpm does.
//!
//! Each of epoch, version and release is compared with `rpmvercmp`: the
//! strings are split into maximal runs of ASCII digits and of ASCII letters,
//! everything else separating them (so `2.0 == 2_0`); digit runs compare
//! numerically and are newer than letter runs, letter runs compare bytewise;
//! `~` sorts before everything, even the end of the string (`1.0~rc1 < 1.0`),
//! and `^` sorts after the end but before anything else (`1.0 < 1.0^git1 <
//! 1.0.1`); when all runs are equal, the string with something left is newer.
//!
//! EVR parsing is rpm's `parseEVR`: a leading run of digits followed by `:`
//! is the epoch (absent = 0), the release is what follows the last `-`. As in
//! rpm's `rpmverCmp`, a missing release orders before any release.
//! Empty versions or releases and whitespace are errors.

use std::cmp::Ordering;

use crate::digits::cmp_digits;
use crate::{Scheme, VersionError};

/// A parsed RPM EVR, borrowing from its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evr<'a> {
    /// The epoch digits (empty when absent, meaning 0).
    pub epoch: &'a str,
    /// The version.
    pub version: &'a str,
    /// The release, when given.
    pub release: Option<&'a str>,
}

impl<'a> Evr<'a> {
    /// Parses `[epoch:]version[-release]`.
    pub fn parse(s: &'a str) -> Result<Evr<'a>, VersionError> {
        let err = |reason| VersionError::new(Scheme::Rpm, s, reason);
        if s.bytes()
            .any(|c| c.is_ascii_whitespace() || c.is_ascii_control())
        {
            return Err(err("whitespace or control character in version"));
        }
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let (epoch, rest) = match s.as_bytes().get(digits) {
            Some(b':') => (&s[..digits], &s[digits + 1..]),
            _ => ("", s),
        };
        let (version, release) = match rest.rsplit_once('-') {
            Some((v, r)) => (v, Some(r)),
            None => (rest, None),
        };
        if version.is_empty() {
            return Err(err("version is empty"));
        }
        if release == Some("") {
            return Err(err("release is empty"));
        }
        Ok(Evr {
            epoch,
            version,
            release,
        })
    }
}

impl Ord for Evr<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_digits(self.epoch.as_bytes(), other.epoch.as_bytes())
            .then_with(|| rpmvercmp(self.version, other.version))
            .then_with(|| match (self.release, other.release) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(a), Some(b)) => rpmvercmp(a, b),
            })
    }
}

impl PartialOrd for Evr<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Orders two RPM EVR strings (`1:2.3-4.el9`, `2.3`, ...).
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(Evr::parse(a)?.cmp(&Evr::parse(b)?))
}

/// Whether `v` is a valid RPM EVR.
pub fn parse_check(v: &str) -> Result<(), VersionError> {
    Evr::parse(v).map(|_| ())
}

/// rpm's `rpmvercmp` on one version or release string.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let skip = |s: &[u8], mut k: usize| {
        while k < s.len() && !s[k].is_ascii_alphanumeric() && s[k] != b'~' && s[k] != b'^' {
            k += 1;
        }
        k
    };
    while i < a.len() || j < b.len() {
        i = skip(a, i);
        j = skip(b, j);
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if ca == Some(b'^') || cb == Some(b'^') {
            if ca.is_none() {
                return Ordering::Less;
            }
            if cb.is_none() {
                return Ordering::Greater;
            }
            if ca != Some(b'^') {
                return Ordering::Greater;
            }
            if cb != Some(b'^') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        let (Some(ca), Some(_)) = (ca, cb) else { break };
        let isnum = ca.is_ascii_digit();
        let class = |c: &u8| {
            if isnum {
                c.is_ascii_digit()
            } else {
                c.is_ascii_alphabetic()
            }
        };
        let ea = i + a[i..].iter().take_while(|c| class(c)).count();
        let eb = j + b[j..].iter().take_while(|c| class(c)).count();
        let (sa, sb) = (&a[i..ea], &b[j..eb]);
        if sb.is_empty() {
            return if isnum {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let o = if isnum {
            cmp_digits(sa, sb)
        } else {
            sa.cmp(sb)
        };
        if o != Ordering::Equal {
            return o;
        }
        i = ea;
        j = eb;
    }
    let (ea, eb) = (i >= a.len(), j >= b.len());
    match (ea, eb) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal as E, Greater as G, Less as L};

    /// Restates rpm's tests/rpmvercmp.at.
    #[test]
    fn rpm_rpmvercmp_reference() {
        let cases: &[(&str, &str, Ordering)] = &[
            ("1.0", "1.0", E),
            ("1.0", "2.0", L),
            ("2.0.1", "2.0.1", E),
            ("2.0", "2.0.1", L),
            ("2.0.1a", "2.0.1a", E),
            ("2.0.1a", "2.0.1", G),
            ("5.5p1", "5.5p1", E),
            ("5.5p1", "5.5p2", L),
            ("5.5p10", "5.5p10", E),
            ("5.5p1", "5.5p10", L),
            ("10xyz", "10.1xyz", L),
            ("xyz10", "xyz10", E),
            ("xyz10", "xyz10.1", L),
            ("xyz.4", "xyz.4", E),
            ("xyz.4", "8", L),
            ("xyz.4", "2", L),
            ("5.5p2", "5.6p1", L),
            ("5.6p1", "6.5p1", L),
            ("6.0.rc1", "6.0", G),
            ("10b2", "10a1", G),
            ("10a2", "10b2", L),
            ("1.0aa", "1.0aa", E),
            ("1.0a", "1.0aa", L),
            ("10.0001", "10.0001", E),
            ("10.0001", "10.1", E),
            ("10.0001", "10.0039", L),
            ("4.999.9", "5.0", L),
            ("20101121", "20101121", E),
            ("20101121", "20101122", L),
            ("2_0", "2_0", E),
            ("2.0", "2_0", E),
            ("a", "a", E),
            ("a+", "a+", E),
            ("a+", "a_", E),
            ("+a", "+a", E),
            ("+a", "_a", E),
            ("+_", "+_", E),
            ("_+", "+_", E),
            ("+", "_", E),
            ("1.0~rc1", "1.0~rc1", E),
            ("1.0~rc1", "1.0", L),
            ("1.0~rc1", "1.0~rc2", L),
            ("1.0~rc1~git123", "1.0~rc1~git123", E),
            ("1.0~rc1~git123", "1.0~rc1", L),
            ("1.0^", "1.0^", E),
            ("1.0^", "1.0", G),
            ("1.0^git1", "1.0^git1", E),
            ("1.0^git1", "1.0", G),
            ("1.0^git1", "1.0^git2", L),
            ("1.0^git1", "1.01", L),
            ("1.0^20160101", "1.0^20160101", E),
            ("1.0^20160101", "1.0.1", L),
            ("1.0^20160101^git1", "1.0^20160101^git1", E),
            ("1.0^20160102", "1.0^20160101^git1", G),
            ("1.0~rc1^git1", "1.0~rc1^git1", E),
            ("1.0~rc1^git1", "1.0~rc1", G),
            ("1.0^git1~pre", "1.0^git1~pre", E),
            ("1.0^git1", "1.0^git1~pre", G),
        ];
        for &(a, b, want) in cases {
            assert_eq!(rpmvercmp(a, b), want, "{a} vs {b}");
            assert_eq!(rpmvercmp(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn rpm_evr_ordering() {
        let cases: &[(&str, &str, Ordering)] = &[
            ("1:1.0-1", "2.0-1", G),
            ("0:1.0-1", "1.0-1", E),
            ("1.0-1", "1.0-2", L),
            ("1.0-1.el9", "1.0-1.el9_2", L),
            ("3.0.7-16.el9_2", "3.0.7-24.el9", L),
            ("1:3.0.7-24.el9", "3.0.7-25.el9", G),
            ("1.0", "1.0-1", L),
            ("2.4.57-5.el9", "2.4.57-5.el9_1.1", L),
            ("0:4.16.1.3-22.el9", "4.16.1.3-22.el9", E),
            ("1.2.3-4.fc39", "1.2.3~rc1-1.fc39", G),
        ];
        for &(a, b, want) in cases {
            assert_eq!(compare(a, b).unwrap(), want, "{a} vs {b}");
            assert_eq!(compare(b, a).unwrap(), want.reverse(), "{b} vs {a}");
        }
        let e = Evr::parse("12:3.4-5.6-7").unwrap();
        assert_eq!(
            (e.epoch, e.version, e.release),
            ("12", "3.4-5.6", Some("7"))
        );
        for bad in ["", "1:", "-1", "1.0-", "1.0 -1", "1:-2"] {
            let e = parse_check(bad).unwrap_err();
            assert_eq!((e.scheme, e.input.as_str()), (Scheme::Rpm, bad));
        }
    }
}
