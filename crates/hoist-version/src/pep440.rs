//! Python package versions (PEP 440), ordered as `packaging.version` orders
//! them.
//!
//! `[N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`, with PEP 440's
//! normalisation applied while parsing rather than by rewriting the string:
//! case is ignored; `-`, `_` and `.` separators before and inside the pre,
//! post and dev parts are optional and interchangeable; `alpha`, `beta`, `c`,
//! `pre` and `preview` spell `a`, `b` and `rc`; `rev` and `r` spell `post`;
//! `1.0-1` is an implicit post-release; a missing pre/post/dev number is 0; a
//! leading `v` and surrounding (Unicode) whitespace are ignored. Release segments
//! compare with trailing zeros trimmed (`1.0 == 1.0.0`).
//!
//! The sort key is packaging's: epoch, release, then pre-release (a version
//! with only a dev part sorts before every pre-release of its release, one
//! without a pre-release after them), post-release (none first), dev-release
//! (none last), and local version (none first; segments compare numerically
//! when both are numbers, a number beats a string, strings compare
//! case-insensitively).

use std::cmp::Ordering;

use crate::digits::{cmp_digits, digit_run, is_zero, strip_zeros};
use crate::{Scheme, VersionError};

/// The kind of a pre-release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PreKind {
    /// `a`, `alpha`
    Alpha,
    /// `b`, `beta`
    Beta,
    /// `rc`, `c`, `pre`, `preview`
    Rc,
}

/// A parsed PEP 440 version. Numbers are kept as digit strings borrowed from
/// the input (compared without overflow); the release keeps its `.`
/// separators and the local part its original separators.
#[derive(Debug, Clone, Copy)]
pub struct Version<'a> {
    /// The epoch digits (empty when absent).
    pub epoch: &'a str,
    /// The release segments as written, `.`-separated digits.
    pub release: &'a str,
    /// The pre-release kind and number digits.
    pub pre: Option<(PreKind, &'a str)>,
    /// The post-release number digits.
    pub post: Option<&'a str>,
    /// The dev-release number digits.
    pub dev: Option<&'a str>,
    /// The local version after `+`, segments separated by `.`, `-` or `_`.
    pub local: Option<&'a str>,
}

/// A byte cursor over the version being parsed.
struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a [u8] {
        &self.s.as_bytes()[self.i..]
    }

    fn peek(&self) -> Option<u8> {
        self.rest().first().copied()
    }

    /// Consumes a run of digits, returning it (possibly empty).
    fn digits(&mut self) -> &'a str {
        let n = digit_run(self.rest());
        let d = &self.s[self.i..self.i + n];
        self.i += n;
        d
    }

    /// Consumes the first word of `words` that the input starts with
    /// (case-insensitively), returning its index.
    fn word(&mut self, words: &[&str]) -> Option<usize> {
        let rest = self.rest();
        for (k, w) in words.iter().enumerate() {
            if rest.len() >= w.len() && rest[..w.len()].eq_ignore_ascii_case(w.as_bytes()) {
                self.i += w.len();
                return Some(k);
            }
        }
        None
    }

    fn is_sep(c: Option<u8>) -> bool {
        matches!(c, Some(b'-' | b'_' | b'.'))
    }

    /// `[-_.]?WORD` where WORD is one of `words`: consumed only as a whole.
    fn sep_word(&mut self, words: &[&str]) -> Option<usize> {
        let start = self.i;
        if Self::is_sep(self.peek()) {
            self.i += 1;
        }
        match self.word(words) {
            Some(k) => Some(k),
            None => {
                self.i = start;
                None
            }
        }
    }

    /// `[-_.]?[0-9]*`: the number after a pre/post/dev word, empty when
    /// absent (meaning 0). A separator is consumed even without a number
    /// after it, as the PEP 440 regex does (`1.0a.` is `1.0a0`); every later
    /// part has its own optional separator, so this never loses a match.
    fn sep_number(&mut self) -> &'a str {
        if Self::is_sep(self.peek()) {
            self.i += 1;
        }
        self.digits()
    }
}

const PRE_WORDS: [&str; 8] = ["alpha", "a", "beta", "b", "preview", "pre", "c", "rc"];
const PRE_KINDS: [PreKind; 8] = [
    PreKind::Alpha,
    PreKind::Alpha,
    PreKind::Beta,
    PreKind::Beta,
    PreKind::Rc,
    PreKind::Rc,
    PreKind::Rc,
    PreKind::Rc,
];

impl<'a> Version<'a> {
    /// Parses and normalises `s` per PEP 440.
    pub fn parse(s: &'a str) -> Result<Version<'a>, VersionError> {
        let err = |reason| VersionError::new(Scheme::Pep440, s, reason);
        let t = s.trim();
        let t = t.strip_prefix(['v', 'V']).unwrap_or(t);
        let mut c = Cursor { s: t, i: 0 };
        // Epoch and release.
        let first = c.digits();
        if first.is_empty() {
            return Err(err("a version starts with a number"));
        }
        let mut epoch = "";
        let mut rel_start = 0;
        if c.peek() == Some(b'!') {
            epoch = first;
            c.i += 1;
            rel_start = c.i;
            if c.digits().is_empty() {
                return Err(err("a release number must follow the epoch"));
            }
        }
        while c.peek() == Some(b'.') && c.rest().get(1).is_some_and(u8::is_ascii_digit) {
            c.i += 1;
            c.digits();
        }
        let release = &t[rel_start..c.i];
        // Pre-release.
        let pre = c
            .sep_word(&PRE_WORDS)
            .map(|k| (PRE_KINDS[k], c.sep_number()));
        // Post-release: `-N` or `[-_.]?(post|rev|r)[-_.]?N?`.
        let post = if c.peek() == Some(b'-') && c.rest().get(1).is_some_and(u8::is_ascii_digit) {
            c.i += 1;
            Some(c.digits())
        } else {
            c.sep_word(&["post", "rev", "r"]).map(|_| c.sep_number())
        };
        let dev = c.sep_word(&["dev"]).map(|_| c.sep_number());
        let local = if c.peek() == Some(b'+') {
            c.i += 1;
            let l = &t[c.i..];
            let ok = !l.is_empty()
                && l.split(['.', '-', '_'])
                    .all(|seg| !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_alphanumeric()));
            if !ok {
                return Err(err(
                    "a local version is alphanumeric segments separated by `.`, `-` or `_`",
                ));
            }
            c.i = t.len();
            Some(l)
        } else {
            None
        };
        if c.i != t.len() {
            return Err(err("unexpected text after the version"));
        }
        Ok(Version {
            epoch,
            release,
            pre,
            post,
            dev,
            local,
        })
    }

    /// The release segments as digit strings.
    fn release_segments(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.release.split('.').map(str::as_bytes)
    }
}

/// Compares releases with trailing zeros ignored.
fn cmp_release(a: &Version<'_>, b: &Version<'_>) -> Ordering {
    let mut ai = a.release_segments();
    let mut bi = b.release_segments();
    loop {
        match (ai.next(), bi.next()) {
            (None, None) => return Ordering::Equal,
            (Some(x), None) => {
                return if is_zero(x) && ai.all(is_zero) {
                    Ordering::Equal
                } else {
                    Ordering::Greater
                }
            }
            (None, Some(y)) => {
                return if is_zero(y) && bi.all(is_zero) {
                    Ordering::Equal
                } else {
                    Ordering::Less
                }
            }
            (Some(x), Some(y)) => match cmp_digits(x, y) {
                Ordering::Equal => {}
                o => return o,
            },
        }
    }
}

/// packaging's pre-release key: -inf for dev-only versions, +inf for no
/// pre-release, else (kind, number).
fn pre_key<'a>(v: &Version<'a>) -> (i8, Option<(PreKind, &'a [u8])>) {
    match v.pre {
        None if v.post.is_none() && v.dev.is_some() => (-1, None),
        None => (1, None),
        Some((k, n)) => (0, Some((k, n.as_bytes()))),
    }
}

fn cmp_opt_num(a: Option<&str>, b: Option<&str>, none_first: bool) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => {
            if none_first {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (Some(_), None) => {
            if none_first {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (Some(x), Some(y)) => cmp_digits(x.as_bytes(), y.as_bytes()),
    }
}

fn cmp_local(a: Option<&str>, b: Option<&str>) -> Ordering {
    let (a, b) = match (a, b) {
        (None, None) => return Ordering::Equal,
        (None, Some(_)) => return Ordering::Less,
        (Some(_), None) => return Ordering::Greater,
        (Some(a), Some(b)) => (a, b),
    };
    let mut ai = a.split(['.', '-', '_']);
    let mut bi = b.split(['.', '-', '_']);
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
                    (true, false) => Ordering::Greater,
                    (false, true) => Ordering::Less,
                    (false, false) => x
                        .bytes()
                        .map(|c| c.to_ascii_lowercase())
                        .cmp(y.bytes().map(|c| c.to_ascii_lowercase())),
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
        cmp_digits(self.epoch.as_bytes(), other.epoch.as_bytes())
            .then_with(|| cmp_release(self, other))
            .then_with(|| {
                let (a, b) = (pre_key(self), pre_key(other));
                a.0.cmp(&b.0).then_with(|| match (a.1, b.1) {
                    (Some((ka, na)), Some((kb, nb))) => {
                        ka.cmp(&kb).then_with(|| cmp_digits(na, nb))
                    }
                    _ => Ordering::Equal,
                })
            })
            .then_with(|| cmp_opt_num(self.post, other.post, true))
            .then_with(|| cmp_opt_num(self.dev, other.dev, false))
            .then_with(|| cmp_local(self.local, other.local))
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

impl std::fmt::Display for Version<'_> {
    /// The normalised form (`1!2.0rc1.post0.dev3+ubuntu.1`), numbers without
    /// leading zeros, the release as written.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let num = |d: &str| {
            let s = strip_zeros(d.as_bytes());
            if s.is_empty() {
                "0".to_owned()
            } else {
                String::from_utf8_lossy(s).into_owned()
            }
        };
        if !is_zero(self.epoch.as_bytes()) {
            write!(f, "{}!", num(self.epoch))?;
        }
        let rel: Vec<String> = self.release.split('.').map(num).collect();
        f.write_str(&rel.join("."))?;
        if let Some((k, n)) = self.pre {
            let k = match k {
                PreKind::Alpha => "a",
                PreKind::Beta => "b",
                PreKind::Rc => "rc",
            };
            write!(f, "{k}{}", num(n))?;
        }
        if let Some(n) = self.post {
            write!(f, ".post{}", num(n))?;
        }
        if let Some(n) = self.dev {
            write!(f, ".dev{}", num(n))?;
        }
        if let Some(l) = self.local {
            f.write_str("+")?;
            for (i, seg) in l.split(['.', '-', '_']).enumerate() {
                if i > 0 {
                    f.write_str(".")?;
                }
                if seg.bytes().all(|c| c.is_ascii_digit()) {
                    f.write_str(&num(seg))?;
                } else {
                    f.write_str(&seg.to_ascii_lowercase())?;
                }
            }
        }
        Ok(())
    }
}

/// Orders two PEP 440 versions.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(Version::parse(a)?.cmp(&Version::parse(b)?))
}

/// Whether `v` is a valid PEP 440 version.
pub fn parse_check(v: &str) -> Result<(), VersionError> {
    Version::parse(v).map(|_| ())
}

/// The normalised form of `v` (`1.0-1` -> `1.0.post1`, `1.0.0A-1` -> `1.0.0a1`).
pub fn normalize(v: &str) -> Result<String, VersionError> {
    Ok(Version::parse(v)?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ascending, restating the VERSIONS list of pypa/packaging's
    /// tests/test_version.py (without and with an epoch).
    const ORDERED: &[&str] = &[
        "1.0.dev0",
        "1.0.dev456",
        "1.0.dev456+local",
        "1.0a0",
        "1.0a0.post0.dev0",
        "1.0a0.post0",
        "1.0a1.dev1",
        "1.0a1.dev1+local",
        "1.0a1",
        "1.0a1+local",
        "1.0b0",
        "1.0b1.dev456",
        "1.0b2",
        "1.0b2.post345.dev456",
        "1.0b2.post345",
        "1.0b2-346",
        "1.0rc0",
        "1.0rc1.dev1",
        "1.0c1",
        "1.0rc2",
        "1.0",
        "1.0.post0.dev0",
        "1.0.post0",
        "1.0.post456.dev34",
        "1.0.post456",
        "1.0.post456+local",
        "1.0.1.dev1",
        "1.0.1a1",
        "1.0.1",
        "1.0.1+local",
        "1.0.1.post1",
        "1.1.dev1",
        "1.2+a",
        "1.2+abc",
        "1.2+abcdef",
        "1.2+def",
        "1.2+0",
        "1.2+1",
        "1.2+1.abc",
        "1.2+1.1",
        "1.2+1.1.0",
        "1.2+2",
        "1.2+123",
        "1.2+123456",
        "1.2.r32+123456",
        "1.2.rev33+123456",
        "1!1.0.dev0",
        "1!1.0a0.post0.dev0",
        "1!1.0a1+local",
        "1!1.0b2-346",
        "1!1.0c1",
        "1!1.0",
        "1!1.0.post456+local",
        "1!1.0.1.post1",
        "1!1.2+1.1.0",
        "1!1.2.rev33+123456",
    ];

    #[test]
    fn pep440_packaging_total_order() {
        for (i, a) in ORDERED.iter().enumerate() {
            for (j, b) in ORDERED.iter().enumerate() {
                // "1.0rc1" and "1.0c1" are absent, so every pair is distinct.
                assert_eq!(compare(a, b).unwrap(), i.cmp(&j), "{a} vs {b}");
            }
        }
    }

    /// pypa/packaging's test_normalized_versions and test_version_str_repr.
    #[test]
    fn pep440_normalisation() {
        let cases = [
            ("1.0dev", "1.0.dev0"),
            ("1.0.dev", "1.0.dev0"),
            ("1.0dev1", "1.0.dev1"),
            ("1.0-dev", "1.0.dev0"),
            ("1.0-dev1", "1.0.dev1"),
            ("1.0DEV", "1.0.dev0"),
            ("1.0.DEV1", "1.0.dev1"),
            ("1.0-DEV", "1.0.dev0"),
            ("1.0a", "1.0a0"),
            ("1.0.a", "1.0a0"),
            ("1.0.a1", "1.0a1"),
            ("1.0-a", "1.0a0"),
            ("1.0-a1", "1.0a1"),
            ("1.0alpha", "1.0a0"),
            ("1.0.alpha1", "1.0a1"),
            ("1.0-ALPHA1", "1.0a1"),
            ("1.0A", "1.0a0"),
            ("1.0b", "1.0b0"),
            ("1.0.b1", "1.0b1"),
            ("1.0-beta", "1.0b0"),
            ("1.0.BETA1", "1.0b1"),
            ("1.0c", "1.0rc0"),
            ("1.0.c1", "1.0rc1"),
            ("1.0-C1", "1.0rc1"),
            ("1.0rc", "1.0rc0"),
            ("1.0.RC", "1.0rc0"),
            ("1.0-rc1", "1.0rc1"),
            ("1.0pre1", "1.0rc1"),
            ("1.0preview2", "1.0rc2"),
            ("1.0post", "1.0.post0"),
            ("1.0.post", "1.0.post0"),
            ("1.0post1", "1.0.post1"),
            ("1.0-post1", "1.0.post1"),
            ("1.0POST", "1.0.post0"),
            ("1.0r", "1.0.post0"),
            ("1.0rev", "1.0.post0"),
            ("1.0.r1", "1.0.post1"),
            ("1.0.rev1", "1.0.post1"),
            ("1.0-5", "1.0.post5"),
            ("1.0-r5", "1.0.post5"),
            ("1.0-rev5", "1.0.post5"),
            ("1.0+AbC", "1.0+abc"),
            ("1.01", "1.1"),
            ("1.0a05", "1.0a5"),
            ("1.0b07", "1.0b7"),
            ("1.0c056", "1.0rc56"),
            ("1.0rc09", "1.0rc9"),
            ("1.0.post000", "1.0.post0"),
            ("1.1.dev09000", "1.1.dev9000"),
            ("00!1.2", "1.2"),
            ("0100!0.0", "100!0.0"),
            ("v1.0", "1.0"),
            ("   v1.0\t\n", "1.0"),
            ("\u{202F}1.0\t\u{2029}\n ", "1.0"),
            ("1.0b2.post345.dev456", "1.0b2.post345.dev456"),
            ("0!1.0.2", "1.0.2"),
            ("0!1.0.4+8.0", "1.0.4+8.0"),
            ("1.2+123abc456", "1.2+123abc456"),
            ("7!1.0.post456.dev34", "7!1.0.post456.dev34"),
            ("1.0a_1-post_2-dev_3+x-Y_z", "1.0a1.post2.dev3+x.y.z"),
            ("1.0a.", "1.0a0"),
        ];
        for (v, want) in cases {
            assert_eq!(normalize(v).unwrap(), want, "{v:?}");
            assert_eq!(
                compare(v, want).unwrap(),
                Ordering::Equal,
                "{v:?} == {want}"
            );
        }
    }

    #[test]
    fn pep440_trailing_zeros_and_big_numbers() {
        assert_eq!(compare("1.0", "1.0.0").unwrap(), Ordering::Equal);
        assert_eq!(compare("1", "1.0.0.0").unwrap(), Ordering::Equal);
        assert_eq!(compare("1.0.0.1", "1").unwrap(), Ordering::Greater);
        assert_eq!(
            compare("1.0+local", "1.0.0+local").unwrap(),
            Ordering::Equal
        );
        assert_eq!(compare("2024.10", "2024.9.30").unwrap(), Ordering::Greater);
        assert_eq!(
            compare("1.99999999999999999999999", "1.100000000000000000000000").unwrap(),
            Ordering::Less
        );
        assert_eq!(compare("1.0.dev1", "1.0a1").unwrap(), Ordering::Less);
        assert_eq!(compare("1.0.post1.dev1", "1.0").unwrap(), Ordering::Greater);
    }

    /// pypa/packaging's invalid versions (test_invalid_versions).
    #[test]
    fn pep440_invalid() {
        for bad in [
            "french toast",
            "1.0+a+",
            "1.0++",
            "1.0+_foobar",
            "1.0+foo&asd",
            "1.0+1+1",
            "1. 0",
            "1 .0",
            "1. 0a1",
            "1 .0a1",
            "1.0 a1",
            "1.0a 1",
            "٠١٢.٣٤٥.٦٧٨٩",
            ".",
            "..",
            "1..0",
            "1.0.",
            ".1.0",
            "1..2.3",
            "1.0+\u{130}",
            "",
            "1.0-",
            "1!",
            "1.0a1b1",
            "1.0.post1.post2",
        ] {
            let e = parse_check(bad).unwrap_err();
            assert_eq!((e.scheme, e.input.as_str()), (Scheme::Pep440, bad));
        }
    }
}
