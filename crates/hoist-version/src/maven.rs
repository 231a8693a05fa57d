//! Maven artifact versions, ordered as Maven's `ComparableVersion` orders them
//! (the "version order specification" of the POM reference, as Maven 4 and
//! the latest 3.9 implement it).
//!
//! A version is split, case-insensitively, into items at `.` and `-` and at
//! transitions between digits and letters. Numbers compare numerically and
//! are newer than anything else; a `-` (or a letter after digits) opens a
//! nested list, so `1-1 < 1.1`; trailing zero-like items are trimmed (`1.0 ==
//! 1 == 1-0`, `1-ga == 1`). Qualifiers order `alpha` (`a` before a digit) <
//! `beta` (`b`) < `milestone` (`m`) < `rc` = `cr` < `snapshot` < `` = `ga` =
//! `final` = `release` < `sp` < unknown qualifiers (lexically). A qualifier
//! directly followed by a number, with or without a `-` (`alpha1`,
//! `alpha-1`, `RC2`), is one combined item ordered by qualifier, then number.
//!
//! Every string is a Maven version; only empty strings and strings over
//! Maven's 256-character limit are errors. Unlike the other schemes this
//! one allocates a small item tree per parse.

use std::cmp::Ordering;

use crate::digits::{cmp_digits, is_zero, strip_zeros};
use crate::{Scheme, VersionError};

/// Maven's own bound on the length of a version string.
const MAX_VERSION_LENGTH: usize = 256;

/// One item of a parsed version.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// A number, digits without leading zeros (empty = 0).
    Num(String),
    /// A qualifier, lower-cased, shorthands and aliases resolved.
    Str(String),
    /// A qualifier directly followed by a number (`alpha1`, `rc-2`).
    Comb(String, String),
    /// A nested list (after `-`, or a qualifier after digits).
    List(Vec<Item>),
}

const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];
const RELEASE_INDEX: usize = 5;

/// The ordering key of a qualifier: its rank among the known ones, unknown
/// ones after them in lexical order.
fn qualifier_key(q: &str) -> (usize, &str) {
    if matches!(q, "ga" | "final" | "release") {
        return (RELEASE_INDEX, "");
    }
    match QUALIFIERS.iter().position(|k| *k == q) {
        Some(i) => (i, ""),
        None => (QUALIFIERS.len(), q),
    }
}

fn string_item(value: &str, followed_by_digit: bool) -> String {
    let value = match (followed_by_digit, value) {
        (true, "a") => "alpha",
        (true, "b") => "beta",
        (true, "m") => "milestone",
        (_, "cr") => "rc",
        (_, v) => v,
    };
    value.to_owned()
}

fn cmp_str_null(s: &str) -> Ordering {
    qualifier_key(s).cmp(&qualifier_key(""))
}

fn num_null(d: &str) -> Ordering {
    if is_zero(d.as_bytes()) {
        Ordering::Equal
    } else {
        Ordering::Greater
    }
}

impl Item {
    fn is_null(&self) -> bool {
        match self {
            Item::Num(d) => is_zero(d.as_bytes()),
            Item::Str(s) => s.is_empty(),
            Item::Comb(..) => false,
            Item::List(l) => l.is_empty(),
        }
    }

    /// Comparison against "nothing" (the other version has ended).
    fn cmp_null(&self) -> Ordering {
        match self {
            Item::Num(d) => num_null(d),
            Item::Str(s) => cmp_str_null(s),
            Item::Comb(s, d) => cmp_str_null(s).then_with(|| num_null(d)),
            Item::List(l) => l
                .iter()
                .map(Item::cmp_null)
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal),
        }
    }

    fn cmp(&self, other: &Item) -> Ordering {
        use Item::*;
        use Ordering::*;
        match (self, other) {
            (Num(a), Num(b)) => cmp_digits(a.as_bytes(), b.as_bytes()),
            (Num(_), _) => Greater,
            (_, Num(_)) => Less,
            (Str(a), Str(b)) => qualifier_key(a).cmp(&qualifier_key(b)),
            (Str(a), Comb(bs, bd)) => match qualifier_key(a).cmp(&qualifier_key(bs)) {
                Equal if cmp_str_null(a) == Equal => num_null(bd).reverse(),
                Equal => Less,
                o => o,
            },
            (Comb(..), Str(_)) => other.cmp(self).reverse(),
            (Comb(a, ad), Comb(b, bd)) => qualifier_key(a)
                .cmp(&qualifier_key(b))
                .then_with(|| cmp_digits(ad.as_bytes(), bd.as_bytes())),
            (List(l), Str(_) | Comb(..)) => {
                let mut r = match l.first() {
                    None => other.cmp_null().reverse(),
                    Some(first) => first.cmp(other),
                };
                for it in l.iter().skip(1) {
                    if r != Equal {
                        break;
                    }
                    r = it.cmp_null();
                }
                r
            }
            (Str(_) | Comb(..), List(_)) => other.cmp(self).reverse(),
            (List(a), List(b)) => cmp_lists(a, b),
        }
    }
}

/// `ListItem.normalize`: drops null items that end the list or precede a
/// qualifier, and unwraps a list left with a single nested list.
fn normalize(list: &mut Vec<Item>) {
    let mut i = list.len();
    while i > 0 {
        i -= 1;
        if !list[i].is_null() {
            continue;
        }
        let remove = match list.get(i + 1) {
            None | Some(Item::Str(_)) => true,
            Some(Item::List(next)) => matches!(next.first(), Some(Item::Comb(..) | Item::Str(_))),
            Some(_) => false,
        };
        if remove {
            list.remove(i);
        }
    }
    if list.len() == 1 && matches!(list[0], Item::List(_)) {
        if let Some(Item::List(inner)) = list.pop() {
            *list = inner;
        }
    }
}

fn parse_item(is_combination: bool, is_digit: bool, buf: &str) -> Item {
    if is_combination {
        let buf: String = buf.chars().filter(|&c| c != '-').collect();
        let index = buf.find(|c: char| c.is_ascii_digit()).unwrap_or(0);
        let (s, d) = buf.split_at(index);
        Item::Comb(string_item(s, true), digits(d))
    } else if is_digit {
        Item::Num(digits(buf))
    } else {
        Item::Str(string_item(buf, false))
    }
}

fn digits(d: &str) -> String {
    String::from_utf8_lossy(strip_zeros(d.as_bytes())).into_owned()
}

/// A parsed Maven version: the item tree `ComparableVersion` builds.
/// Equality is ordering equality (`1-ga == 1`).
#[derive(Debug, Clone)]
pub struct Version {
    items: Vec<Item>,
}

impl Version {
    /// Parses `s` as `ComparableVersion` does.
    pub fn parse(s: &str) -> Result<Version, VersionError> {
        if s.is_empty() {
            return Err(VersionError::new(Scheme::Maven, s, "version is empty"));
        }
        if s.chars().count() > MAX_VERSION_LENGTH {
            return Err(VersionError::new(
                Scheme::Maven,
                s,
                "version is longer than 256 characters",
            ));
        }
        let version = s.to_lowercase();
        // The chain of nested lists; each new one is the last item of the one before.
        let mut levels: Vec<Vec<Item>> = vec![Vec::new()];
        let mut is_digit = false;
        let mut is_combination = false;
        let mut start = 0; // byte index into `version`
        let bytes: Vec<(usize, char)> = version.char_indices().collect();
        let mut k = 0;
        while k < bytes.len() {
            let (i, c) = bytes[k];
            k += 1;
            let cur = levels.len() - 1;
            if c == '.' {
                let item = if i == start {
                    Item::Num(String::new())
                } else {
                    parse_item(is_combination, is_digit, &version[start..i])
                };
                levels[cur].push(item);
                is_combination = false;
                start = i + 1;
            } else if c == '-' {
                if i == start {
                    levels[cur].push(Item::Num(String::new()));
                } else {
                    if !is_digit && k < bytes.len() && bytes[k].1.is_ascii_digit() {
                        // X-1 is treated as X1.
                        is_combination = true;
                        continue;
                    }
                    levels[cur].push(parse_item(is_combination, is_digit, &version[start..i]));
                }
                start = i + 1;
                if !levels[cur].is_empty() {
                    levels.push(Vec::new());
                }
                is_combination = false;
            } else if c.is_ascii_digit() {
                if !is_digit && i > start {
                    is_combination = true;
                    if !levels[cur].is_empty() {
                        levels.push(Vec::new());
                    }
                }
                is_digit = true;
            } else {
                if is_digit && i > start {
                    levels[cur].push(parse_item(is_combination, true, &version[start..i]));
                    start = i;
                    levels.push(Vec::new());
                    is_combination = false;
                }
                is_digit = false;
            }
        }
        if version.len() > start {
            // 1.0.0.X1 < 1.0.0-X2: a trailing .X is treated as -X.
            if !is_digit && !levels[levels.len() - 1].is_empty() {
                levels.push(Vec::new());
            }
            let cur = levels.len() - 1;
            levels[cur].push(parse_item(is_combination, is_digit, &version[start..]));
        }
        let mut list = levels.pop().unwrap_or_default();
        normalize(&mut list);
        while let Some(mut parent) = levels.pop() {
            parent.push(Item::List(list));
            normalize(&mut parent);
            list = parent;
        }
        Ok(Version { items: list })
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_lists(&self.items, &other.items)
    }
}

fn cmp_lists(a: &[Item], b: &[Item]) -> Ordering {
    let n = a.len().max(b.len());
    for i in 0..n {
        let r = match (a.get(i), b.get(i)) {
            (Some(x), Some(y)) => x.cmp(y),
            (Some(x), None) => x.cmp_null(),
            (None, Some(y)) => y.cmp_null().reverse(),
            (None, None) => Ordering::Equal,
        };
        if r != Ordering::Equal {
            return r;
        }
    }
    Ordering::Equal
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Orders two Maven versions.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(Version::parse(a)?.cmp(&Version::parse(b)?))
}

/// Whether `v` is a usable Maven version (non-empty, at most 256 characters).
pub fn parse_check(v: &str) -> Result<(), VersionError> {
    Version::parse(v).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal as E, Less as L};

    fn assert_ascending(versions: &[&str]) {
        for (i, a) in versions.iter().enumerate() {
            for (j, b) in versions.iter().enumerate() {
                assert_eq!(compare(a, b).unwrap(), i.cmp(&j), "{a} vs {b}");
            }
        }
    }

    /// ComparableVersionTest's VERSIONS_QUALIFIER.
    #[test]
    fn maven_qualifier_order() {
        assert_ascending(&[
            "1-alpha2snapshot",
            "1-alpha2",
            "1-alpha-123",
            "1-beta-2",
            "1-beta123",
            "1-m2",
            "1-m11",
            "1-rc",
            "1-cr2",
            "1-rc123",
            "1-SNAPSHOT",
            "1",
            "1-sp",
            "1-sp2",
            "1-sp123",
            "1-abc",
            "1-def",
            "1-pom-1",
            "1-1-snapshot",
            "1-1",
            "1-2",
            "1-123",
        ]);
    }

    /// ComparableVersionTest's VERSIONS_NUMBER.
    #[test]
    fn maven_number_order() {
        assert_ascending(&[
            "2.0", "2.0.a", "2-1", "2.0.2", "2.0.123", "2.1.0", "2.1-a", "2.1b", "2.1-c", "2.1-1",
            "2.1.0.1", "2.2", "2.123", "11.a2", "11.a11", "11.b2", "11.b11", "11.m2", "11.m11",
            "11", "11.a", "11b", "11c", "11m",
        ]);
    }

    /// ComparableVersionTest's testVersionsEqual and
    /// testVersionsHaveSameOrderButAreNotEqual.
    #[test]
    fn maven_equal_versions() {
        let pairs = [
            ("1", "1.0"),
            ("1", "1.0.0"),
            ("1.0", "1.0.0"),
            ("1", "1-0"),
            ("1", "1.0-0"),
            ("1.0", "1.0-0"),
            ("1a", "1-a"),
            ("1a", "1.0-a"),
            ("1a", "1.0.0-a"),
            ("1.0a", "1-a"),
            ("1.0.0a", "1-a"),
            ("1x", "1-x"),
            ("1x", "1.0-x"),
            ("1x", "1.0.0-x"),
            ("1.0x", "1-x"),
            ("1.0.0x", "1-x"),
            ("1cr", "1rc"),
            ("1a1", "1-alpha-1"),
            ("1b2", "1-beta-2"),
            ("1m3", "1-milestone-3"),
            ("1X", "1x"),
            ("1A", "1a"),
            ("1B", "1b"),
            ("1M", "1m"),
            ("1Cr", "1Rc"),
            ("1cR", "1rC"),
            ("1m3", "1Milestone3"),
            ("1m3", "1MILESTONE3"),
            ("1ga", "1"),
            ("1release", "1"),
            ("1final", "1"),
            ("1GA", "1"),
            ("1RELeaSE", "1"),
            ("1FINAL", "1"),
            ("1.0.0-alpha1", "1.0.0-ALPHA1"),
            ("1.a", "1.A"),
            ("1.é", "1.É"),
        ];
        for (a, b) in pairs {
            assert_eq!(compare(a, b).unwrap(), E, "{a} == {b}");
            assert_eq!(compare(b, a).unwrap(), E, "{b} == {a}");
        }
        let ones: Vec<String> = (0..19).map(|n| format!("{}1", "0".repeat(n))).collect();
        let zeros: Vec<String> = (0..19).map(|n| "0".repeat(n + 1)).collect();
        for set in [ones, zeros] {
            for a in &set {
                for b in &set {
                    assert_eq!(compare(a, b).unwrap(), E, "{a} == {b}");
                }
            }
        }
    }

    /// ComparableVersionTest's testVersionComparing and the MNG regression
    /// cases (5568, 6572, 6964).
    #[test]
    fn maven_pairwise_order() {
        let less = [
            ("1", "2"),
            ("1.5", "2"),
            ("1", "2.5"),
            ("1.0", "1.1"),
            ("1.1", "1.2"),
            ("1.0.0", "1.1"),
            ("1.0.1", "1.1"),
            ("1.1", "1.2.0"),
            ("1.0-alpha-1", "1.0"),
            ("1.0-alpha-1", "1.0-alpha-2"),
            ("1.0-alpha-1", "1.0-beta-1"),
            ("1.0-beta-1", "1.0-SNAPSHOT"),
            ("1.0-SNAPSHOT", "1.0"),
            ("1.0-alpha-1-SNAPSHOT", "1.0-alpha-1"),
            ("1.0", "1.0-1"),
            ("1.0-1", "1.0-2"),
            ("1.0.0", "1.0-1"),
            ("2.0-1", "2.0.1"),
            ("2.0.1-klm", "2.0.1-lmn"),
            ("2.0.1", "2.0.1-xyz"),
            ("2.0.1", "2.0.1-123"),
            ("2.0.1-xyz", "2.0.1-123"),
            ("0.7", "2"),
            ("0.2", "1.0.7"),
            ("J", "7"),
            ("c", "7"),
            ("aardvark", "zebra"),
            ("6.1.0rc3", "6.1.0"),
            ("6.1.0rc3", "6.1H.5-beta"),
            ("6.1.0", "6.1H.5-beta"),
            ("20190126.230843", "1234567890.12345"),
            ("1234567890.12345", "123456789012345.1H.5-beta"),
            (
                "123456789012345.1H.5-beta",
                "12345678901234567890.1H.5-beta",
            ),
            ("1-0.alpha", "1"),
            ("1-0.beta", "1"),
            ("2.17.0", "2.17.1"),
            ("2.14.1", "2.15.0-rc1"),
            ("2.15.0-rc1", "2.15.0"),
            ("5.3.17", "5.3.18"),
            ("9.4.43.v20210629", "9.4.44.v20210927"),
            ("1.2.3.RELEASE", "1.2.4.RELEASE"),
        ];
        for (a, b) in less {
            assert_eq!(compare(a, b).unwrap(), L, "{a} < {b}");
            assert_eq!(compare(b, a).unwrap(), L.reverse(), "{b} > {a}");
        }
    }

    #[test]
    fn maven_limits() {
        assert_eq!(parse_check("").unwrap_err().scheme, Scheme::Maven);
        assert!(parse_check(&"1".repeat(257)).is_err());
        parse_check(&"1.".repeat(128)).unwrap();
    }
}
