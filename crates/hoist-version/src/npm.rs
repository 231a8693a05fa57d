//! npm version ranges (node-semver's range grammar) over [`semver`] versions.
//!
//! A range is a `||`-separated list of comparator sets; a version satisfies the
//! range when it satisfies every comparator of at least one set. Sets are
//! written with primitives (`<1.2.3`, `>=1.2`, `=1.2.3`), X-ranges (`1.x`,
//! `1.2.*`, `*`, `` (empty)), partial versions (`1.2` means `1.2.x`), tilde
//! ranges (`~1.2.3`, `~>1.2`), caret ranges (`^0.2.3`) and hyphen ranges
//! (`1.2 - 2.3.4`). They desugar exactly as node-semver desugars them: `^1.2.3`
//! is `>=1.2.3 <2.0.0-0`, `>1.2` is `>=1.3.0`, `<=1.2` is `<1.3.0-0`, ...
//!
//! Prerelease inclusion follows node-semver without `includePrerelease`: a
//! version with a prerelease tag satisfies a set only if some comparator of
//! that set names a prerelease of the same `MAJOR.MINOR.PATCH`, so `^1.2.3`
//! does not match `1.3.0-beta` but `>=1.3.0-alpha` does.
//!
//! Loose mode (`1.2.3beta`, leading zeros) is not supported: those ranges are
//! errors, as in node-semver's default strict mode.
//!
//! [`semver`]: crate::semver

use std::cmp::Ordering;

use crate::semver::{check_identifiers, parse_number, Version};
use crate::{Scheme, VersionError};

/// A comparison operator of one comparator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `=` (or no operator)
    Eq,
}

/// One desugared comparator, such as `>=1.2.3` or `<2.0.0-0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Comparator<'a> {
    /// The operator.
    pub op: Op,
    /// The version compared against.
    pub version: Version<'a>,
}

impl Comparator<'_> {
    /// Whether `v` satisfies this comparator by precedence alone (no
    /// prerelease rule).
    pub fn matches(&self, v: &Version<'_>) -> bool {
        let o = v.cmp(&self.version);
        match self.op {
            Op::Lt => o == Ordering::Less,
            Op::Le => o != Ordering::Greater,
            Op::Gt => o == Ordering::Greater,
            Op::Ge => o != Ordering::Less,
            Op::Eq => o == Ordering::Equal,
        }
    }
}

/// A parsed npm range: alternatives of comparator sets. An empty set matches
/// every release (`*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range<'a> {
    /// The `||` alternatives, each a conjunction of comparators.
    pub sets: Vec<Vec<Comparator<'a>>>,
}

impl<'a> Range<'a> {
    /// Parses a node-semver range (strict mode).
    pub fn parse(range: &'a str) -> Result<Range<'a>, VersionError> {
        let err = |reason| VersionError::range(Scheme::Semver, range, reason);
        let mut sets = Vec::new();
        for alt in range.split("||") {
            let mut set = Vec::new();
            parse_set(alt, &mut set).map_err(err)?;
            sets.push(set);
        }
        Ok(Range { sets })
    }

    /// Whether `v` satisfies the range (see the module documentation for the
    /// prerelease rule).
    pub fn matches(&self, v: &Version<'_>) -> bool {
        self.sets.iter().any(|set| set_matches(set, v))
    }
}

/// Whether `version` satisfies the npm `range` (`^1.2.3`, `>=1.0.0 <1.4.2 ||
/// 2.x`, `1.2 - 1.4`, ...). Errors name the version or range that does not
/// parse.
pub fn satisfies(version: &str, range: &str) -> Result<bool, VersionError> {
    let v = Version::parse(version)?;
    Ok(Range::parse(range)?.matches(&v))
}

fn set_matches(set: &[Comparator<'_>], v: &Version<'_>) -> bool {
    if !set.iter().all(|c| c.matches(v)) {
        return false;
    }
    if !v.is_prerelease() {
        return true;
    }
    set.iter()
        .any(|c| c.version.is_prerelease() && c.version.triple() == v.triple())
}

/// A partial version as ranges write it: `1`, `1.2`, `1.x`, `1.2.3-beta+b`.
/// `None` numbers are wildcards (`x`, `X`, `*` or absent).
#[derive(Debug, Clone, Copy)]
struct Partial<'a> {
    major: Option<u64>,
    minor: Option<u64>,
    patch: Option<u64>,
    pre: &'a str,
}

fn parse_partial(s: &str) -> Result<Partial<'_>, &'static str> {
    let s = s.trim_start_matches(|c: char| c == 'v' || c == '=' || c.is_whitespace());
    if s.is_empty() {
        return Err("expected a version after the operator");
    }
    let (rest, build) = match s.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (s, None),
    };
    if let Some(b) = build {
        check_identifiers(b, false)?;
    }
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => {
            check_identifiers(p, true)?;
            (c, p)
        }
        None => (rest, ""),
    };
    let mut parts = [None; 3];
    let mut it = core.split('.');
    for slot in parts.iter_mut() {
        *slot = match it.next() {
            None | Some("x" | "X" | "*") => None,
            Some(tok) => Some(parse_number(tok)?),
        };
    }
    if it.next().is_some() {
        return Err("more than three numbers in a version");
    }
    let [major, minor, patch] = parts;
    // Once a part is a wildcard, every later part must be too.
    if (major.is_none() && (minor.is_some() || patch.is_some()))
        || (minor.is_none() && patch.is_some())
    {
        return Err("a number cannot follow a wildcard");
    }
    if patch.is_none() && !pre.is_empty() {
        return Err("a prerelease needs MAJOR.MINOR.PATCH");
    }
    Ok(Partial {
        major,
        minor,
        patch,
        pre,
    })
}

const ZERO_PRE: &str = "0";

fn v(major: u64, minor: u64, patch: u64, pre: &str) -> Version<'_> {
    Version {
        major,
        minor,
        patch,
        pre,
        build: "",
    }
}

fn inc(n: u64) -> Result<u64, &'static str> {
    n.checked_add(1).ok_or("version number is too big")
}

fn cmp(op: Op, version: Version<'_>) -> Comparator<'_> {
    Comparator { op, version }
}

/// The comparator that nothing satisfies.
fn nothing() -> Comparator<'static> {
    cmp(Op::Lt, v(0, 0, 0, ZERO_PRE))
}

fn parse_set<'a>(alt: &'a str, out: &mut Vec<Comparator<'a>>) -> Result<(), &'static str> {
    // Tokens, with a lone operator joined to the version after it.
    let mut tokens: Vec<&'a str> = alt.split_whitespace().collect();
    if tokens.len() == 3 && tokens[1] == "-" {
        return hyphen(tokens[0], tokens[2], out);
    }
    if tokens.contains(&"-") {
        return Err("a hyphen range is `A - B` alone in its set");
    }
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i];
        if matches!(
            t,
            "<" | ">" | "<=" | ">=" | "=" | "~" | "~>" | "^" | "v" | "=v"
        ) {
            let next = tokens
                .get(i + 1)
                .ok_or("an operator needs a version after it")?;
            // Find both pieces in `alt` to join them into one borrowed token.
            let start = t.as_ptr() as usize - alt.as_ptr() as usize;
            let end = next.as_ptr() as usize - alt.as_ptr() as usize + next.len();
            tokens[i] = &alt[start..end];
            tokens.remove(i + 1);
            continue;
        }
        i += 1;
    }
    for t in tokens {
        comparator(t, out)?;
    }
    Ok(())
}

fn comparator<'a>(t: &'a str, out: &mut Vec<Comparator<'a>>) -> Result<(), &'static str> {
    if let Some(rest) = t.strip_prefix("~>").or_else(|| t.strip_prefix('~')) {
        return tilde(parse_partial(rest)?, out);
    }
    if let Some(rest) = t.strip_prefix('^') {
        return caret(parse_partial(rest)?, out);
    }
    let (op, rest) = if let Some(r) = t.strip_prefix("<=") {
        (Some(Op::Le), r)
    } else if let Some(r) = t.strip_prefix(">=") {
        (Some(Op::Ge), r)
    } else if let Some(r) = t.strip_prefix('<') {
        (Some(Op::Lt), r)
    } else if let Some(r) = t.strip_prefix('>') {
        (Some(Op::Gt), r)
    } else if let Some(r) = t.strip_prefix('=') {
        (Some(Op::Eq), r)
    } else {
        (None, t)
    };
    xrange(op, parse_partial(rest)?, out)
}

/// node-semver's `replaceXRange`, plus plain primitives.
fn xrange<'a>(
    op: Option<Op>,
    p: Partial<'a>,
    out: &mut Vec<Comparator<'a>>,
) -> Result<(), &'static str> {
    let op = if op == Some(Op::Eq) { None } else { op };
    let Some(major) = p.major else {
        if matches!(op, Some(Op::Lt) | Some(Op::Gt)) {
            out.push(nothing());
        }
        return Ok(());
    };
    let Some(patch) = p.patch else {
        let minor_x = p.minor.is_none();
        let minor = p.minor.unwrap_or(0);
        match op {
            Some(Op::Gt) => {
                let lower = if minor_x {
                    v(inc(major)?, 0, 0, "")
                } else {
                    v(major, inc(minor)?, 0, "")
                };
                out.push(cmp(Op::Ge, lower));
            }
            Some(Op::Le) => {
                let upper = if minor_x {
                    v(inc(major)?, 0, 0, ZERO_PRE)
                } else {
                    v(major, inc(minor)?, 0, ZERO_PRE)
                };
                out.push(cmp(Op::Lt, upper));
            }
            Some(Op::Lt) => out.push(cmp(Op::Lt, v(major, minor, 0, ZERO_PRE))),
            Some(o) => out.push(cmp(o, v(major, minor, 0, ""))),
            None if minor_x => {
                out.push(cmp(Op::Ge, v(major, 0, 0, "")));
                out.push(cmp(Op::Lt, v(inc(major)?, 0, 0, ZERO_PRE)));
            }
            None => {
                out.push(cmp(Op::Ge, v(major, minor, 0, "")));
                out.push(cmp(Op::Lt, v(major, inc(minor)?, 0, ZERO_PRE)));
            }
        }
        return Ok(());
    };
    let minor = p.minor.unwrap_or(0);
    out.push(cmp(op.unwrap_or(Op::Eq), v(major, minor, patch, p.pre)));
    Ok(())
}

/// node-semver's `replaceTilde`: patch-level changes if a minor is given,
/// minor-level changes if not.
fn tilde<'a>(p: Partial<'a>, out: &mut Vec<Comparator<'a>>) -> Result<(), &'static str> {
    let Some(major) = p.major else { return Ok(()) };
    let Some(minor) = p.minor else {
        out.push(cmp(Op::Ge, v(major, 0, 0, "")));
        out.push(cmp(Op::Lt, v(inc(major)?, 0, 0, ZERO_PRE)));
        return Ok(());
    };
    let patch = p.patch.unwrap_or(0);
    out.push(cmp(Op::Ge, v(major, minor, patch, p.pre)));
    out.push(cmp(Op::Lt, v(major, inc(minor)?, 0, ZERO_PRE)));
    Ok(())
}

/// node-semver's `replaceCaret`: changes that do not modify the left-most
/// non-zero part.
fn caret<'a>(p: Partial<'a>, out: &mut Vec<Comparator<'a>>) -> Result<(), &'static str> {
    let Some(major) = p.major else { return Ok(()) };
    let Some(minor) = p.minor else {
        out.push(cmp(Op::Ge, v(major, 0, 0, "")));
        out.push(cmp(Op::Lt, v(inc(major)?, 0, 0, ZERO_PRE)));
        return Ok(());
    };
    let Some(patch) = p.patch else {
        out.push(cmp(Op::Ge, v(major, minor, 0, "")));
        let upper = if major == 0 {
            v(0, inc(minor)?, 0, ZERO_PRE)
        } else {
            v(inc(major)?, 0, 0, ZERO_PRE)
        };
        out.push(cmp(Op::Lt, upper));
        return Ok(());
    };
    out.push(cmp(Op::Ge, v(major, minor, patch, p.pre)));
    let upper = if major != 0 {
        v(inc(major)?, 0, 0, ZERO_PRE)
    } else if minor != 0 {
        v(0, inc(minor)?, 0, ZERO_PRE)
    } else {
        v(0, 0, inc(patch)?, ZERO_PRE)
    };
    out.push(cmp(Op::Lt, upper));
    Ok(())
}

/// node-semver's `hyphenReplace`: `A - B` is `>=A <=B`, with partial ends
/// widened (`1.2 - 2.3` is `>=1.2.0 <2.4.0-0`).
fn hyphen<'a>(
    from: &'a str,
    to: &'a str,
    out: &mut Vec<Comparator<'a>>,
) -> Result<(), &'static str> {
    let f = parse_partial(from)?;
    let t = parse_partial(to)?;
    if let Some(major) = f.major {
        let minor = f.minor.unwrap_or(0);
        let patch = f.patch.unwrap_or(0);
        out.push(cmp(Op::Ge, v(major, minor, patch, f.pre)));
    }
    if let Some(major) = t.major {
        match (t.minor, t.patch) {
            (None, _) => out.push(cmp(Op::Lt, v(inc(major)?, 0, 0, ZERO_PRE))),
            (Some(minor), None) => out.push(cmp(Op::Lt, v(major, inc(minor)?, 0, ZERO_PRE))),
            (Some(minor), Some(patch)) => out.push(cmp(Op::Le, v(major, minor, patch, t.pre))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// node-semver's test/fixtures/range-include.js (strict mode, no
    /// includePrerelease).
    #[test]
    fn npm_range_include() {
        let cases = [
            ("1.0.0 - 2.0.0", "1.2.3"),
            ("^1.2.3+build", "1.2.3"),
            ("^1.2.3+build", "1.3.0"),
            ("1.2.3-pre+asdf - 2.4.3-pre+asdf", "1.2.3"),
            ("1.2.3-pre+asdf - 2.4.3-pre+asdf", "1.2.3-pre.2"),
            ("1.2.3-pre+asdf - 2.4.3-pre+asdf", "2.4.3-alpha"),
            ("1.2.3+asdf - 2.4.3+asdf", "1.2.3"),
            ("1.0.0", "1.0.0"),
            (">=*", "0.2.4"),
            ("", "1.0.0"),
            ("*", "1.2.3"),
            (">=1.0.0", "1.0.0"),
            (">=1.0.0", "1.0.1"),
            (">=1.0.0", "1.1.0"),
            (">1.0.0", "1.0.1"),
            (">1.0.0", "1.1.0"),
            ("<=2.0.0", "2.0.0"),
            ("<=2.0.0", "1.9999.9999"),
            ("<=2.0.0", "0.2.9"),
            ("<2.0.0", "1.9999.9999"),
            ("<2.0.0", "0.2.9"),
            (">= 1.0.0", "1.0.0"),
            (">=  1.0.0", "1.0.1"),
            ("> 1.0.0", "1.0.1"),
            ("<=   2.0.0", "2.0.0"),
            ("<    2.0.0", "1.9999.9999"),
            ("<\t2.0.0", "0.2.9"),
            (">=0.1.97", "v0.1.97"),
            (">=0.1.97", "0.1.97"),
            ("0.1.20 || 1.2.4", "1.2.4"),
            (">=0.2.3 || <0.0.1", "0.0.0"),
            (">=0.2.3 || <0.0.1", "0.2.3"),
            (">=0.2.3 || <0.0.1", "0.2.4"),
            ("||", "1.3.4"),
            ("2.x.x", "2.1.3"),
            ("1.2.x", "1.2.3"),
            ("1.2.x || 2.x", "2.1.3"),
            ("1.2.x || 2.x", "1.2.3"),
            ("x", "1.2.3"),
            ("2.*.*", "2.1.3"),
            ("1.2.*", "1.2.3"),
            ("1.2.* || 2.*", "2.1.3"),
            ("2", "2.1.2"),
            ("2.3", "2.3.1"),
            ("~0.0.1", "0.0.1"),
            ("~0.0.1", "0.0.2"),
            ("~x", "0.0.9"),
            ("~2", "2.0.9"),
            ("~2.4", "2.4.0"),
            ("~2.4", "2.4.5"),
            ("~>3.2.1", "3.2.2"),
            ("~1", "1.2.3"),
            ("~>1", "1.2.3"),
            ("~> 1", "1.2.3"),
            ("~1.0", "1.0.2"),
            ("~ 1.0", "1.0.2"),
            ("~ 1.0.3", "1.0.12"),
            (">=1", "1.0.0"),
            (">= 1", "1.0.0"),
            ("<1.2", "1.1.1"),
            ("< 1.2", "1.1.1"),
            ("~v0.5.4-pre", "0.5.5"),
            ("~v0.5.4-pre", "0.5.4"),
            ("=0.7.x", "0.7.2"),
            ("<=0.7.x", "0.7.2"),
            (">=0.7.x", "0.7.2"),
            ("<=0.7.x", "0.6.2"),
            ("~1.2.1 >=1.2.3", "1.2.3"),
            ("~1.2.1 =1.2.3", "1.2.3"),
            ("~1.2.1 1.2.3", "1.2.3"),
            ("~1.2.1 >=1.2.3 1.2.3", "1.2.3"),
            (">=1.2.1 1.2.3", "1.2.3"),
            (">=1.2.3 >=1.2.1", "1.2.3"),
            (">=1.2", "1.2.8"),
            ("^1.2.3", "1.8.1"),
            ("^0.1.2", "0.1.2"),
            ("^0.1", "0.1.2"),
            ("^0.0.1", "0.0.1"),
            ("^1.2", "1.4.2"),
            ("^1.2 ^1", "1.4.2"),
            ("^1.2.3-alpha", "1.2.3-pre"),
            ("^1.2.0-alpha", "1.2.0-pre"),
            ("^0.0.1-alpha", "0.0.1-beta"),
            ("^0.0.1-alpha", "0.0.1"),
            ("^0.1.1-alpha", "0.1.1-beta"),
            ("^x", "1.2.3"),
            ("x - 1.0.0", "0.9.7"),
            ("x - 1.x", "0.9.7"),
            ("1.0.0 - x", "1.9.7"),
            ("1.x - x", "1.9.7"),
            ("<=7.x", "7.9.9"),
            ("1.x.x+build || 2.x.x+build", "2.5.0"),
            ("^1.x+build", "1.9.0"),
        ];
        for (range, version) in cases {
            assert_eq!(
                satisfies(version, range),
                Ok(true),
                "{version} in {range:?}"
            );
        }
    }

    /// node-semver's test/fixtures/range-exclude.js (strict mode, no
    /// includePrerelease).
    #[test]
    fn npm_range_exclude() {
        let cases = [
            ("1.0.0 - 2.0.0", "2.2.3"),
            ("1.2.3+asdf - 2.4.3+asdf", "1.2.3-pre.2"),
            ("1.2.3+asdf - 2.4.3+asdf", "2.4.3-alpha"),
            ("^1.2.3+build", "2.0.0"),
            ("^1.2.3+build", "1.2.0"),
            ("^1.2.3", "1.2.3-pre"),
            ("^1.2", "1.2.0-pre"),
            (">1.2", "1.3.0-beta"),
            ("<=1.2.3", "1.2.3-beta"),
            ("^1.2.3", "1.2.3-beta"),
            ("=0.7.x", "0.7.0-asdf"),
            (">=0.7.x", "0.7.0-asdf"),
            ("<=0.7.x", "0.7.0-asdf"),
            ("1.0.0", "1.0.1"),
            (">=1.0.0", "0.0.0"),
            (">=1.0.0", "0.0.1"),
            (">=1.0.0", "0.1.0"),
            (">1.0.0", "0.0.1"),
            (">1.0.0", "0.1.0"),
            ("<=2.0.0", "3.0.0"),
            ("<=2.0.0", "2.9999.9999"),
            ("<=2.0.0", "2.2.9"),
            ("<2.0.0", "2.9999.9999"),
            ("<2.0.0", "2.2.9"),
            (">=0.1.97", "v0.1.93"),
            (">=0.1.97", "0.1.93"),
            ("0.1.20 || 1.2.4", "1.2.3"),
            (">=0.2.3 || <0.0.1", "0.0.3"),
            (">=0.2.3 || <0.0.1", "0.2.2"),
            ("2.x.x", "1.1.3"),
            ("2.x.x", "3.1.3"),
            ("1.2.x", "1.3.3"),
            ("1.2.x || 2.x", "3.1.3"),
            ("1.2.x || 2.x", "1.1.3"),
            ("2.*.*", "1.1.3"),
            ("2.*.*", "3.1.3"),
            ("1.2.*", "1.3.3"),
            ("1.2.* || 2.*", "3.1.3"),
            ("1.2.* || 2.*", "1.1.3"),
            ("2", "1.1.2"),
            ("2.3", "2.4.1"),
            ("~0.0.1", "0.1.0-alpha"),
            ("~0.0.1", "0.1.0"),
            ("~2.4", "2.5.0"),
            ("~2.4", "2.3.9"),
            ("~>3.2.1", "3.3.2"),
            ("~>3.2.1", "3.2.0"),
            ("~1", "0.2.3"),
            ("~>1", "2.2.3"),
            ("~1.0", "1.1.0"),
            ("<1", "1.0.0"),
            (">=1.2", "1.1.1"),
            ("~v0.5.4-beta", "0.5.4-alpha"),
            ("=0.7.x", "0.8.2"),
            (">=0.7.x", "0.6.2"),
            ("<0.7.x", "0.7.2"),
            ("<1.2.3", "1.2.3-beta"),
            ("=1.2.3", "1.2.3-beta"),
            (">1.2", "1.2.8"),
            ("^0.0.1", "0.0.2-alpha"),
            ("^0.0.1", "0.0.2"),
            ("^1.2.3", "2.0.0-alpha"),
            ("^1.2.3", "1.2.2"),
            ("^1.2", "1.1.9"),
            ("*", "v1.2.3-foo"),
            ("^1.0.0", "2.0.0-rc1"),
            ("1 - 2", "2.0.0-pre"),
            ("1 - 2", "1.0.0-pre"),
            ("1.0 - 2", "1.0.0-pre"),
            ("1.1.x", "1.0.0-a"),
            ("1.1.x", "1.1.0-a"),
            ("1.1.x", "1.2.0-a"),
            ("1.x", "1.0.0-a"),
            ("1.x", "1.1.0-a"),
            ("1.x", "1.2.0-a"),
            (">=1.0.0 <1.1.0", "1.1.0"),
            (">=1.0.0 <1.1.0", "1.1.0-pre"),
            (">=1.0.0 <1.1.0-pre", "1.1.0-pre"),
            (">X", "1.0.0"),
            ("<X", "0.0.0"),
            ("<x <* || >* 2.x", "2.0.0"),
        ];
        for (range, version) in cases {
            assert_eq!(
                satisfies(version, range),
                Ok(false),
                "{version} not in {range:?}"
            );
        }
    }

    /// Desugaring as node-semver's test/fixtures/range-parse.js states it.
    #[test]
    fn npm_range_desugaring() {
        let show = |r: &str| -> String {
            let range = Range::parse(r).unwrap();
            let sets: Vec<String> = range
                .sets
                .iter()
                .map(|set| {
                    if set.is_empty() {
                        return "*".to_owned();
                    }
                    let cs: Vec<String> = set
                        .iter()
                        .map(|c| {
                            let op = match c.op {
                                Op::Lt => "<",
                                Op::Le => "<=",
                                Op::Gt => ">",
                                Op::Ge => ">=",
                                Op::Eq => "",
                            };
                            let v = c.version;
                            let pre = if v.pre.is_empty() {
                                String::new()
                            } else {
                                format!("-{}", v.pre)
                            };
                            format!("{op}{}.{}.{}{pre}", v.major, v.minor, v.patch)
                        })
                        .collect();
                    cs.join(" ")
                })
                .collect();
            sets.join("||")
        };
        let cases = [
            ("1.0.0 - 2.0.0", ">=1.0.0 <=2.0.0"),
            ("1 - 2", ">=1.0.0 <3.0.0-0"),
            ("1.0 - 2.0", ">=1.0.0 <2.1.0-0"),
            ("1.0.0", "1.0.0"),
            (">=*", "*"),
            ("", "*"),
            ("*", "*"),
            (">=1.0.0", ">=1.0.0"),
            (">1.0.0", ">1.0.0"),
            ("<=2.0.0", "<=2.0.0"),
            ("1", ">=1.0.0 <2.0.0-0"),
            (">= 1.0.0", ">=1.0.0"),
            ("<\t2.0.0", "<2.0.0"),
            ("0.1.20 || 1.2.4", "0.1.20||1.2.4"),
            ("||", "*||*"),
            ("2.x.x", ">=2.0.0 <3.0.0-0"),
            ("1.2.x || 2.x", ">=1.2.0 <1.3.0-0||>=2.0.0 <3.0.0-0"),
            ("x", "*"),
            ("2.3", ">=2.3.0 <2.4.0-0"),
            ("~2.4", ">=2.4.0 <2.5.0-0"),
            ("~>3.2.1", ">=3.2.1 <3.3.0-0"),
            ("~> 1", ">=1.0.0 <2.0.0-0"),
            ("~ 1.0", ">=1.0.0 <1.1.0-0"),
            ("^0", ">=0.0.0 <1.0.0-0"),
            ("^ 1", ">=1.0.0 <2.0.0-0"),
            ("^0.1", ">=0.1.0 <0.2.0-0"),
            ("^1.2", ">=1.2.0 <2.0.0-0"),
            ("^0.0.1", ">=0.0.1 <0.0.2-0"),
            ("^0.0.1-beta", ">=0.0.1-beta <0.0.2-0"),
            ("^0.1.2", ">=0.1.2 <0.2.0-0"),
            ("^1.2.3-beta.4", ">=1.2.3-beta.4 <2.0.0-0"),
            ("<1", "<1.0.0-0"),
            ("< 1.2", "<1.2.0-0"),
            (">=1", ">=1.0.0"),
            ("^ 1.2 ^ 1", ">=1.2.0 <2.0.0-0 >=1.0.0 <2.0.0-0"),
            ("1.2 - 3.4.5", ">=1.2.0 <=3.4.5"),
            ("1.2.3 - 3.4", ">=1.2.3 <3.5.0-0"),
            (">1", ">=2.0.0"),
            (">1.2", ">=1.3.0"),
            (">X", "<0.0.0-0"),
            ("<X", "<0.0.0-0"),
            ("<=0.7.x", "<0.8.0-0"),
            ("1.x.x+build >2.x+build", ">=1.0.0 <2.0.0-0 >=3.0.0"),
            (">1.x+build <=2.x.x+meta", ">=2.0.0 <3.0.0-0"),
        ];
        for (range, want) in cases {
            assert_eq!(show(range), want, "{range:?}");
        }
    }

    #[test]
    fn npm_invalid_ranges_and_versions_are_errors() {
        for bad in [
            "1.x.5",
            "1.*.5",
            "1.x.5 || 2.x",
            "x.1",
            "x.1.2",
            "x.x.1",
            ">01.02.03",
            "~1.2.3beta",
            ">=09090",
            "1.2 -",
            "1 - 2 - 3",
            ">=",
            "1.2-beta",
            "^18446744073709551615.0.0",
        ] {
            let e = satisfies("1.0.0", bad).unwrap_err();
            assert_eq!((e.what, e.input.as_str()), ("range", bad));
        }
        let e = satisfies("not a version", "*").unwrap_err();
        assert_eq!((e.what, e.scheme), ("version", Scheme::Semver));
        assert!(satisfies("1.0.0beta", "1").is_err());
    }

    #[test]
    fn npm_parsed_range_is_reusable() {
        let r = Range::parse(">=4.17.0 <4.17.21 || 3.x").unwrap();
        let hits: Vec<&str> = ["3.10.1", "4.16.9", "4.17.0", "4.17.20", "4.17.21", "5.0.0"]
            .into_iter()
            .filter(|v| r.matches(&Version::parse(v).unwrap()))
            .collect();
        assert_eq!(hits, ["3.10.1", "4.17.0", "4.17.20"]);
    }
}
