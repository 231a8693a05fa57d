//! Go module versions, ordered as `golang.org/x/mod/semver` orders them.
//!
//! `vMAJOR[.MINOR[.PATCH[-PRERELEASE][+BUILD]]]`: SemVer 2.0.0 with a `v`
//! prefix and the shorthands `v1` = `v1.0.0` and `v1.2` = `v1.2.0` (which
//! take no prerelease or build). Build metadata, including the
//! `+incompatible` that marks a v2+ module without a `go.mod`, is ignored for
//! ordering. Pseudo-versions (`v0.0.0-20191109021931-daa7c04131f5`,
//! `v1.2.4-0.20191109021931-daa7c04131f5`, `v1.2.3-pre.0.2019...`) are
//! ordinary prereleases and order correctly by SemVer rules: after the tag
//! they were derived from, before the next release.
//!
//! OSV writes Go versions without the `v` (`1.20.5`), so the prefix is
//! optional here. Numbers may be arbitrarily long (compared as digit strings)
//! but must not have leading zeros.

use std::cmp::Ordering;

use crate::digits::cmp_digits;
use crate::semver::{check_identifiers, cmp_pre};
use crate::{Scheme, VersionError};

/// A parsed Go module version, borrowing from its input.
#[derive(Debug, Clone, Copy)]
pub struct Version<'a> {
    /// The major number's digits.
    pub major: &'a str,
    /// The minor number's digits (`"0"` when shorthand).
    pub minor: &'a str,
    /// The patch number's digits (`"0"` when shorthand).
    pub patch: &'a str,
    /// The prerelease (pseudo-version data included), empty when none.
    pub pre: &'a str,
    /// The build metadata (`incompatible`, ...), empty when none.
    pub build: &'a str,
}

impl<'a> Version<'a> {
    /// Parses a Go module version, with or without its `v`.
    pub fn parse(s: &'a str) -> Result<Version<'a>, VersionError> {
        let err = |reason| VersionError::new(Scheme::Go, s, reason);
        let v = s.strip_prefix('v').unwrap_or(s);
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
        let mut nums = ["0"; 3];
        let mut n = 0;
        for part in core.split('.') {
            if n == 3 {
                return Err(err("more than three numbers"));
            }
            if part.is_empty() || !part.bytes().all(|c| c.is_ascii_digit()) {
                return Err(err("version numbers must be decimal digits"));
            }
            if part.len() > 1 && part.starts_with('0') {
                return Err(err("version numbers must not have leading zeros"));
            }
            nums[n] = part;
            n += 1;
        }
        if n < 3 && (!pre.is_empty() || !build.is_empty()) {
            return Err(err("a prerelease or build needs vMAJOR.MINOR.PATCH"));
        }
        let [major, minor, patch] = nums;
        Ok(Version {
            major,
            minor,
            patch,
            pre,
            build,
        })
    }

    /// Whether this is a pseudo-version (`vX.Y.Z-[pre.]0.yyyymmddhhmmss-hash`
    /// or `vX.0.0-yyyymmddhhmmss-hash`).
    pub fn is_pseudo(&self) -> bool {
        let Some((head, hash)) = self.pre.rsplit_once('-') else {
            return false;
        };
        if hash.len() < 12 || !hash.bytes().all(|c| c.is_ascii_hexdigit()) {
            return false;
        }
        let stamp = head.rsplit('.').next().unwrap_or("");
        stamp.len() == 14 && stamp.bytes().all(|c| c.is_ascii_digit())
    }
}

impl Ord for Version<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_digits(self.major.as_bytes(), other.major.as_bytes())
            .then_with(|| cmp_digits(self.minor.as_bytes(), other.minor.as_bytes()))
            .then_with(|| cmp_digits(self.patch.as_bytes(), other.patch.as_bytes()))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => cmp_pre(self.pre, other.pre),
            })
    }
}

impl PartialOrd for Version<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version<'_> {}

/// Orders two Go module versions (`v1.2.3`, `v0.0.0-20191109021931-daa7c04131f5`,
/// `v2.0.0+incompatible`, `1.20.5`).
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(Version::parse(a)?.cmp(&Version::parse(b)?))
}

/// Whether `v` is a valid Go module version (the `v` optional).
pub fn parse_check(v: &str) -> Result<(), VersionError> {
    Version::parse(v).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Restates the ascending `tests` table of golang.org/x/mod/semver's
    /// semver_test.go; versions in one inner slice are equal.
    #[test]
    fn go_xmod_semver_order() {
        let groups: &[&[&str]] = &[
            &["v1.0.0-alpha"],
            &["v1.0.0-alpha.1"],
            &["v1.0.0-alpha.beta"],
            &["v1.0.0-beta"],
            &["v1.0.0-beta.2"],
            &["v1.0.0-beta.11"],
            &["v1.0.0-rc.1"],
            &["v1", "v1.0", "v1.0.0"],
            &["v1.2", "v1.2.0"],
            &["v1.2.3-456"],
            &["v1.2.3-456.789"],
            &["v1.2.3-456-789"],
            &["v1.2.3-456a"],
            &["v1.2.3-pre", "v1.2.3-pre+meta"],
            &["v1.2.3-pre.1"],
            &["v1.2.3-zzz"],
            &[
                "v1.2.3",
                "v1.2.3+meta",
                "v1.2.3+meta-pre",
                "v1.2.3+meta-pre.sha.256a",
                "1.2.3",
            ],
        ];
        for (i, gi) in groups.iter().enumerate() {
            for (j, gj) in groups.iter().enumerate() {
                for a in gi.iter() {
                    for b in gj.iter() {
                        assert_eq!(compare(a, b).unwrap(), i.cmp(&j), "{a} vs {b}");
                    }
                }
            }
        }
    }

    #[test]
    fn go_invalid() {
        for bad in [
            "bad",
            "v1-alpha.beta.gamma",
            "v1-pre",
            "v1+meta",
            "v1-pre+meta",
            "v1.2-pre",
            "v1.2+meta",
            "v1.2-pre+meta",
            "v01.2.3",
            "v1.2.3.4",
            "",
            "v",
        ] {
            let e = parse_check(bad).unwrap_err();
            assert_eq!((e.scheme, e.input.as_str()), (Scheme::Go, bad));
        }
    }

    /// Pseudo-versions from golang.org/x/mod/module's pseudo_test.go, placed
    /// between the tags around them.
    #[test]
    fn go_pseudo_versions_order_as_prereleases() {
        let ordered = [
            "v0.0.0-20060102150405-abcdefabcdef",
            "v0.0.0-20191109021931-daa7c04131f5",
            "v0.0.0",
            "v0.0.1-0.20060102150405-abcdefabcdef",
            "v0.0.1",
            "v1.2.3",
            "v1.2.4-0.20060102150405-abcdefabcdef",
            "v1.2.4-0.20200101000000-abcdefabcdef",
            "v1.2.4",
            "v1.3.0-pre",
            "v1.3.0-pre.0.20060102150405-abcdefabcdef",
            "v1.3.0-pre.1",
            "v1.3.0",
            "v2.0.0+incompatible",
            "v2.0.1-0.20060102150405-abcdefabcdef+incompatible",
            "v2.0.1",
        ];
        for w in ordered.windows(2) {
            assert_eq!(
                compare(w[0], w[1]).unwrap(),
                Ordering::Less,
                "{} < {}",
                w[0],
                w[1]
            );
        }
        assert_eq!(
            compare("v1.2.99999999999999999", "v1.2.100000000000000000").unwrap(),
            Ordering::Less
        );
        assert_eq!(
            compare("v2.0.0+incompatible", "v2.0.0").unwrap(),
            Ordering::Equal
        );
        assert!(Version::parse("v0.0.0-20191109021931-daa7c04131f5")
            .unwrap()
            .is_pseudo());
        assert!(Version::parse("v1.2.4-0.20191109021931-daa7c04131f5")
            .unwrap()
            .is_pseudo());
        assert!(!Version::parse("v1.2.4-rc.1").unwrap().is_pseudo());
    }
}
