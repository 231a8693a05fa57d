//! Debian package versions (`deb-version(7)`): `[epoch:]upstream[-revision]`.
//!
//! The epoch is a decimal number (absent = 0); the revision is whatever follows
//! the last `-` (absent = empty, which orders like `0`); upstream and revision
//! are compared with dpkg's `verrevcmp`: alternating runs of non-digits and
//! digits, where in the non-digit runs `~` sorts before everything, even the
//! end of the string, then letters, then other characters; digit runs compare
//! numerically.
//!
//! Parsing follows dpkg's `parseversion`: surrounding whitespace is ignored,
//! and an empty version, an empty or non-numeric epoch, an empty upstream or
//! revision, embedded whitespace, an upstream not starting with a digit and
//! characters outside `[A-Za-z0-9.+~:-]` (upstream) / `[A-Za-z0-9.+~]`
//! (revision) are errors.

use std::cmp::Ordering;

use crate::{Scheme, VersionError};

/// A parsed Debian version, borrowing from its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version<'a> {
    /// The epoch (0 when absent).
    pub epoch: u32,
    /// The upstream version.
    pub upstream: &'a str,
    /// The Debian revision (empty when absent).
    pub revision: &'a str,
}

impl<'a> Version<'a> {
    /// Parses `s` as dpkg's `parseversion` does.
    pub fn parse(s: &'a str) -> Result<Version<'a>, VersionError> {
        let err = |reason| VersionError::new(Scheme::Dpkg, s, reason);
        let v = s.trim_matches(|c: char| c.is_ascii_whitespace());
        if v.is_empty() {
            return Err(err("version string is empty"));
        }
        if v.bytes().any(|c| c.is_ascii_whitespace()) {
            return Err(err("version string has embedded spaces"));
        }
        let (epoch, rest) = match v.split_once(':') {
            Some((e, rest)) => {
                if e.is_empty() {
                    return Err(err("epoch in version is empty"));
                }
                if !e.bytes().all(|c| c.is_ascii_digit()) {
                    return Err(err("epoch in version is not number"));
                }
                let epoch: u32 = match e.parse() {
                    Ok(n) if n <= i32::MAX as u32 => n,
                    _ => return Err(err("epoch in version is too big")),
                };
                if rest.is_empty() {
                    return Err(err("nothing after colon in version number"));
                }
                (epoch, rest)
            }
            None => (0, v),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((u, r)) => {
                if r.is_empty() {
                    return Err(err("revision number is empty"));
                }
                (u, r)
            }
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err(err("version number is empty"));
        }
        if !upstream.as_bytes()[0].is_ascii_digit() {
            return Err(err("version number does not start with digit"));
        }
        if !upstream
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b".-+~:".contains(&c))
        {
            return Err(err("invalid character in version number"));
        }
        if !revision
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b".+~".contains(&c))
        {
            return Err(err("invalid character in revision number"));
        }
        Ok(Version {
            epoch,
            upstream,
            revision,
        })
    }
}

impl Ord for Version<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(self.upstream.as_bytes(), other.upstream.as_bytes()))
            .then_with(|| verrevcmp(self.revision.as_bytes(), other.revision.as_bytes()))
    }
}

impl PartialOrd for Version<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Orders two Debian versions (`1:2.30-1ubuntu1` and the like).
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(Version::parse(a)?.cmp(&Version::parse(b)?))
}

/// Whether `v` is a valid Debian version.
pub fn parse_check(v: &str) -> Result<(), VersionError> {
    Version::parse(v).map(|_| ())
}

/// The weight of one byte in a non-digit run (0 stands for the end and for
/// digits, which end the run).
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp` on one upstream version or revision.
pub fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    let at = |k: usize| a.get(k).copied();
    let bt = |k: usize| b.get(k).copied();
    let digit = |c: Option<u8>| c.is_some_and(|c| c.is_ascii_digit());
    while i < a.len() || j < b.len() {
        while (i < a.len() && !digit(at(i))) || (j < b.len() && !digit(bt(j))) {
            let (ac, bc) = (order(at(i)), order(bt(j)));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while at(i) == Some(b'0') {
            i += 1;
        }
        while bt(j) == Some(b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit(at(i)) && digit(bt(j)) {
            if first_diff == Ordering::Equal {
                first_diff = at(i).cmp(&bt(j));
            }
            i += 1;
            j += 1;
        }
        if digit(at(i)) {
            return Ordering::Greater;
        }
        if digit(bt(j)) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal as E, Greater as G, Less as L};

    /// Restates the comparison table of dpkg's scripts/t/Dpkg_Version.t.
    #[test]
    fn dpkg_reference_orderings() {
        let cases: &[(&str, &str, Ordering)] = &[
            ("1.0-1", "2.0-2", L),
            ("2.2~rc-4", "2.2-1", L),
            ("2.2-1", "2.2~rc-4", G),
            ("1.0000-1", "1.0-1", E),
            ("1", "0:1", E),
            ("0", "0:0-0", E),
            ("2:2.5", "1:7.5", G),
            ("1:0foo", "0foo", G),
            ("0:0foo", "0foo", E),
            ("0foo", "0foo", E),
            ("0foo-0", "0foo", E),
            ("0foo", "0foo-0", E),
            ("0foo", "0fo", G),
            ("0foo-0", "0foo+", L),
            ("0foo~1", "0foo", L),
            ("0foo~foo+Bar", "0foo~foo+bar", L),
            ("0foo~~", "0foo~", L),
            ("1~", "1", L),
            (
                "12345+that-really-is-some-ver-0",
                "12345+that-really-is-some-ver-10",
                L,
            ),
            ("0foo-0", "0foo-01", L),
            ("0foo.bar", "0foobar", G),
            ("0foo.bar", "0foo1bar", G),
            ("0foo.bar", "0foo0bar", G),
            ("0foo1bar-1", "0foobar-1", L),
            ("0foo2.0", "0foo2", G),
            ("0foo2.0.0", "0foo2.10.0", L),
            ("0foo2.0", "0foo2.0.0", L),
            ("0foo2.0", "0foo2.10", L),
            ("0foo2.1", "0foo2.10", L),
            ("1.09", "1.9", E),
            ("1.0.8+nmu1", "1.0.8", G),
            ("3.11", "3.10+nmu1", G),
            ("0.9j-20080306-4", "0.9i-20070324-2", G),
            ("1.2.0~b7-1", "1.2.0~b6-1", G),
            ("1.011-1", "1.06-2", G),
            ("0.0.9+dfsg1-1", "0.0.8+dfsg1-3", G),
            ("4.6.99+svn6582-1", "4.6.99+svn6496-1", G),
            ("53", "52", G),
            ("0.9.9~pre122-1", "0.9.9~pre111-1", G),
            ("2:2.3.2-2+lenny2", "2:2.3.2-2", G),
            ("1:3.8.1-1", "3.8.GA-1", G),
            ("1.0.1+gpl-1", "1.0.1-2", G),
            ("1a", "1000a", L),
        ];
        for &(a, b, want) in cases {
            assert_eq!(compare(a, b).unwrap(), want, "{a} vs {b}");
            assert_eq!(compare(b, a).unwrap(), want.reverse(), "{b} vs {a}");
        }
    }

    /// The object-level cases of dpkg's lib/dpkg/t/t-version.c
    /// (test_version_compare), written as version strings.
    #[test]
    fn dpkg_epoch_upstream_revision_parts() {
        assert_eq!(compare("1:0", "2:0").unwrap(), L);
        assert_eq!(compare("1-1", "2-1").unwrap(), L);
        assert_eq!(compare("1-1", "1-2").unwrap(), L);
        assert_eq!(compare("0-0", "0-0").unwrap(), E);
        assert_eq!(compare("0-00", "00-0").unwrap(), E);
        assert_eq!(compare("1:2-3", "1:2-3").unwrap(), E);
        assert_eq!(compare("0:0-0", "1:0-0").unwrap(), L);
        assert_eq!(
            compare("0:a-0", "0:b-0").unwrap_err().reason,
            "version number does not start with digit"
        );
        assert_eq!(verrevcmp(b"a", b"b"), L);
        assert_eq!(compare("0-a", "0-b").unwrap(), L);
        assert_eq!(compare("0-b", "0-a").unwrap(), G);
        // Ubuntu-style revisions and security updates.
        assert_eq!(compare("2.36-9+deb12u3", "2.36-9+deb12u4").unwrap(), L);
        assert_eq!(
            compare("1.1.1f-1ubuntu2.16", "1.1.1f-1ubuntu2.2").unwrap(),
            G
        );
        assert_eq!(compare("7.88.1-10+deb12u5", "7.88.1-10").unwrap(), G);
        assert_eq!(compare("1:1.2.13.dfsg-1", "1.2.13.dfsg-1").unwrap(), G);
    }

    /// The parsing cases of t-version.c's test_version_parse.
    #[test]
    fn dpkg_parse_splits_like_parseversion() {
        let p = |s| Version::parse(s).unwrap();
        assert_eq!(
            p("0"),
            Version {
                epoch: 0,
                upstream: "0",
                revision: ""
            }
        );
        assert_eq!(
            p("0:0-0"),
            Version {
                epoch: 0,
                upstream: "0",
                revision: "0"
            }
        );
        assert_eq!(
            p("5:1"),
            Version {
                epoch: 5,
                upstream: "1",
                revision: ""
            }
        );
        assert_eq!(
            p("0:0-0-0"),
            Version {
                epoch: 0,
                upstream: "0-0",
                revision: "0"
            }
        );
        assert_eq!(
            p("0:0-0-0-0"),
            Version {
                epoch: 0,
                upstream: "0-0-0",
                revision: "0"
            }
        );
        assert_eq!(
            p("0:0:0-0"),
            Version {
                epoch: 0,
                upstream: "0:0",
                revision: "0"
            }
        );
        assert_eq!(
            p("0:0:0:0-0"),
            Version {
                epoch: 0,
                upstream: "0:0:0",
                revision: "0"
            }
        );
        assert_eq!(
            p("0:0-0:0-0"),
            Version {
                epoch: 0,
                upstream: "0-0:0",
                revision: "0"
            }
        );
        assert_eq!(
            p("0:09azAZ.-+~:-0"),
            Version {
                epoch: 0,
                upstream: "09azAZ.-+~:",
                revision: "0"
            }
        );
        assert_eq!(
            p("0:0-azAZ09.+~"),
            Version {
                epoch: 0,
                upstream: "0",
                revision: "azAZ09.+~"
            }
        );
        for spaced in ["  \t0:0-1", "0:0-1\t  ", "\t  0:0-1  \t"] {
            assert_eq!(
                p(spaced),
                Version {
                    epoch: 0,
                    upstream: "0",
                    revision: "1"
                }
            );
        }
        assert_eq!(compare("0:0.0-0.0", "0.0-0.0").unwrap(), E);
    }

    #[test]
    fn dpkg_rejects_what_parseversion_rejects() {
        let bad = [
            ("", "version string is empty"),
            ("  ", "version string is empty"),
            ("0:", "nothing after colon in version number"),
            (":1.0", "epoch in version is empty"),
            ("1.0-", "revision number is empty"),
            ("0:0 0-1", "version string has embedded spaces"),
            ("-1:0-1", "epoch in version is not number"),
            (
                "999999999999999999999999:0-1",
                "epoch in version is too big",
            ),
            ("a:0-0", "epoch in version is not number"),
            ("A:0-0", "epoch in version is not number"),
            ("-0", "version number is empty"),
            ("0:-0", "version number is empty"),
            ("0:abc3-0", "version number does not start with digit"),
            ("0:0-0:0", "invalid character in revision number"),
        ];
        for (v, reason) in bad {
            let e = parse_check(v).unwrap_err();
            assert_eq!((e.scheme, e.reason), (Scheme::Dpkg, reason), "{v:?}");
            assert_eq!(e.input, v);
        }
        for c in "!#@$%&/|\\<>()[]{};,_=*^'".chars() {
            let v = format!("0:0{c}-0");
            assert_eq!(
                parse_check(&v).unwrap_err().reason,
                "invalid character in version number",
                "{v}"
            );
        }
        for c in "!#@$%&/|\\<>()[]{}:;,_=*^'".chars() {
            let v = format!("0:0-0{c}");
            assert_eq!(
                parse_check(&v).unwrap_err().reason,
                "invalid character in revision number",
                "{v}"
            );
        }
    }

    #[test]
    fn dpkg_tilde_sorts_before_everything() {
        let ordered = [
            "1.0~~", "1.0~~a", "1.0~", "1.0~a", "1.0", "1.0a", "1.0+", "1.0.1", "1.1~rc1", "1.1",
        ];
        for w in ordered.windows(2) {
            assert_eq!(compare(w[0], w[1]).unwrap(), L, "{} < {}", w[0], w[1]);
        }
    }
}
