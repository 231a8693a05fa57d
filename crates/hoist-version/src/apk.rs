//! Alpine package versions, ordered as apk-tools orders them.
//!
//! `digit{.digit}...{letter}{_suffix{number}}...{~hash}{-rN}`: the first number,
//! then `.`-separated numbers, at most one lowercase letter, any number of
//! suffixes (`_alpha`, `_beta`, `_pre`, `_rc` order before the release they
//! qualify; `_cvs`, `_svn`, `_git`, `_hg`, `_p` after it), each optionally
//! numbered, an optional `~` and lowercase hex commit hash, and an optional
//! `-rN` package revision.
//!
//! Comparison walks both versions token by token (apk-tools' `version.c`):
//! tokens of the same kind compare by value (numbers numerically, except that
//! two `.`-numbers of which either has a leading zero compare as byte
//! strings, as Gentoo does: `1.01 < 1.1`, `8.2.0 < 8.2.001`); at the first token
//! kind that differs, a pre-release suffix makes its version the lesser, and
//! otherwise the version whose next token is "earlier" in the grammar (a
//! further number before a letter before a suffix before a revision before
//! the end) is the greater.

use std::cmp::Ordering;

use crate::digits::{cmp_digits, digit_run};
use crate::{Scheme, VersionError};

/// Token kinds in grammar order; the order matters for the final tie-break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    InitialDigit,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    CommitHash,
    RevisionNo,
    End,
    Invalid,
}

/// Suffix values: below `NONE` are pre-releases.
const SUFFIXES: [(&str, u8); 9] = [
    ("alpha", 0),
    ("beta", 1),
    ("pre", 2),
    ("rc", 3),
    ("cvs", 5),
    ("svn", 6),
    ("git", 7),
    ("hg", 8),
    ("p", 9),
];
const SUFFIX_NONE: u8 = 4;

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    suffix: u8,
    value: &'a [u8],
}

struct Tokens<'a> {
    rest: &'a [u8],
    tok: Token<'a>,
}

impl<'a> Tokens<'a> {
    fn new(s: &'a str) -> Tokens<'a> {
        let mut t = Tokens {
            rest: s.as_bytes(),
            tok: Token {
                kind: Kind::InitialDigit,
                suffix: 0,
                value: b"",
            },
        };
        t.digits();
        t
    }

    fn digits(&mut self) {
        let n = digit_run(self.rest);
        self.tok.value = &self.rest[..n];
        self.rest = &self.rest[n..];
        if n == 0 {
            self.tok.kind = Kind::Invalid;
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let n = self.rest.iter().take_while(|&&c| f(c)).count();
        let (v, r) = self.rest.split_at(n);
        self.rest = r;
        v
    }

    fn next(&mut self) {
        let kind = self.tok.kind;
        let Some(&c) = self.rest.first() else {
            self.tok.kind = Kind::End;
            return;
        };
        let invalid = Token {
            kind: Kind::Invalid,
            suffix: 0,
            value: b"",
        };
        match c {
            b'a'..=b'z' => {
                if kind > Kind::Digit {
                    self.tok = invalid;
                    return;
                }
                self.tok = Token {
                    kind: Kind::Letter,
                    suffix: 0,
                    value: &self.rest[..1],
                };
                self.rest = &self.rest[1..];
            }
            b'.' | b'0'..=b'9' => {
                if c == b'.' {
                    if kind > Kind::Digit {
                        self.tok = invalid;
                        return;
                    }
                    self.rest = &self.rest[1..];
                }
                self.tok.kind = match kind {
                    Kind::InitialDigit | Kind::Digit => Kind::Digit,
                    Kind::Suffix => Kind::SuffixNo,
                    _ => {
                        self.tok = invalid;
                        return;
                    }
                };
                self.digits();
            }
            b'_' => {
                if kind > Kind::SuffixNo {
                    self.tok = invalid;
                    return;
                }
                self.rest = &self.rest[1..];
                let word = self.take_while(|c| c.is_ascii_lowercase());
                match SUFFIXES.iter().find(|(w, _)| w.as_bytes() == word) {
                    Some(&(_, v)) => {
                        self.tok = Token {
                            kind: Kind::Suffix,
                            suffix: v,
                            value: word,
                        }
                    }
                    None => self.tok = invalid,
                }
            }
            b'~' => {
                if kind >= Kind::CommitHash {
                    self.tok = invalid;
                    return;
                }
                self.rest = &self.rest[1..];
                let hash = self.take_while(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
                self.tok = if hash.is_empty() {
                    invalid
                } else {
                    Token {
                        kind: Kind::CommitHash,
                        suffix: 0,
                        value: hash,
                    }
                };
            }
            b'-' => {
                if kind >= Kind::RevisionNo || !self.rest.starts_with(b"-r") {
                    self.tok = invalid;
                    return;
                }
                self.rest = &self.rest[2..];
                self.tok.kind = Kind::RevisionNo;
                self.digits();
            }
            _ => self.tok = invalid,
        }
    }
}

fn token_cmp(a: &Token<'_>, b: &Token<'_>) -> Ordering {
    match a.kind {
        Kind::Digit if a.value[0] == b'0' || b.value[0] == b'0' => a.value.cmp(b.value),
        Kind::Digit | Kind::InitialDigit | Kind::SuffixNo | Kind::RevisionNo => {
            cmp_digits(a.value, b.value)
        }
        Kind::Letter => a.value.cmp(b.value),
        Kind::Suffix => a.suffix.cmp(&b.suffix),
        _ => a.value.cmp(b.value),
    }
}

/// Whether `v` is a valid apk version (apk-tools' `apk_version_validate`).
pub fn parse_check(v: &str) -> Result<(), VersionError> {
    let mut t = Tokens::new(v);
    while t.tok.kind < Kind::End {
        t.next();
    }
    if t.tok.kind == Kind::End {
        Ok(())
    } else {
        Err(VersionError::new(
            Scheme::Apk,
            v,
            "not of the form digit{.digit}...{letter}{_suffix{#}}...{~hash}{-r#}",
        ))
    }
}

/// Orders two apk versions (`1.2.3_rc1-r0` and the like).
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    parse_check(a)?;
    parse_check(b)?;
    let (mut ta, mut tb) = (Tokens::new(a), Tokens::new(b));
    while ta.tok.kind == tb.tok.kind && ta.tok.kind < Kind::End {
        let r = token_cmp(&ta.tok, &tb.tok);
        if r != Ordering::Equal {
            return Ok(r);
        }
        ta.next();
        tb.next();
    }
    let (ka, kb) = (ta.tok.kind, tb.tok.kind);
    if ka == kb {
        return Ok(Ordering::Equal);
    }
    if ka == Kind::Suffix && ta.tok.suffix < SUFFIX_NONE {
        return Ok(Ordering::Less);
    }
    if kb == Kind::Suffix && tb.tok.suffix < SUFFIX_NONE {
        return Ok(Ordering::Greater);
    }
    Ok(kb.cmp(&ka))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal as E, Greater as G, Less as L};

    /// A selection of the comparisons in apk-tools' test/unit/version.data.
    #[test]
    fn apk_reference_orderings() {
        let cases: &[(&str, &str, Ordering)] = &[
            ("0.0.31", "0.0.50", L),
            ("0.1", "0.71-r1", L),
            ("0.1.0_alpha", "0.1.3_alpha", L),
            ("0.1.0_alpha", "2.2.39-r1", L),
            ("0.1.0_alpha", "0.1.0_alpha", E),
            ("0.1.0_alpha2", "0.1.0_alpha", G),
            ("0.1.1", "1.2.1", L),
            ("0.1.3_alpha", "0.1.0_alpha", G),
            ("0.10.0-r1", "0.10.0", G),
            ("0.13", "0.90.1-r1", L),
            ("0.13_beta2", "0.13_beta3", L),
            ("0.15.1b-r2", "0.15.1b", G),
            ("0.17", "5.1.1-r1", L),
            ("0.17-r2", "1.05-r4", L),
            ("0.20070207_rc1", "1.0", L),
            ("0.26.1-r1", "5.2.1.2-r1", L),
            ("0.3", "20020207-r2", L),
            ("0.4", "1.0.0", L),
            ("0.47-r1", "0.49", L),
            ("0.6.0", "0.6.1", L),
            ("0.7-r1", "1.0.0", L),
            ("0.78-r3", "0.3.2", G),
            ("0.8", "1.1.1-r4", L),
            ("0.8.1", "1.2.1-r1", L),
            ("0.9.11", "0.9.12", L),
            ("0.9.12", "0.9.13", L),
            ("0.9.28-r2", "0.9.28.1", L),
            ("013", "014-r1", L),
            ("1.0.0", "1.0.1", L),
            ("1.0.0", "10-r1", L),
            ("1.0.1", "1.1", L),
            ("1.0.1", "2.3.2-r1", L),
            ("1.0.1", "7.0-r2", L),
            ("1.0.2", "0.7-r1", G),
            ("1.0.4-r3", "1.0.4-r4", L),
            ("1.0.4-r4", "1.6", L),
            ("1.0.5", "3.6.19-r1", L),
            ("1.05-r18", "1.05-r19", L),
            ("1.1.0", "1.1.2", L),
            ("1.1.0", "1.4.2", L),
            ("1.1.1", "0.6.0", G),
            ("1.1.1-r3", "0.3.4_pre20061029", G),
            ("1.1.3", "3.0.22-r3", L),
            ("1.1.35-r1", "1.1.35-r2", L),
            ("1.10-r5", "1.10-r9", L),
            ("1.2.10", "20040923-r2", L),
            ("1.2.10-r5", "4.1.4-r3", L),
            ("1.2.2-r1", "1.0-r1", G),
            ("1.2.2.1", "1.4.1-r1", L),
            ("1.2.9.1", "2.31-r1", L),
            ("1.23-r1", "1.23", G),
            ("1.3.0-r1", "3.11", L),
            ("1.3.4-r3", "2.2", L),
            ("1.3.5-r1", "1.3.5-r4", L),
            ("1.3.5-r8", "1.3.5-r9", L),
            ("1.39", "0.9", G),
            ("1.3_alpha8", "0.6.0", G),
            ("1.3_pre1-r1", "1.3.2", L),
            ("1.4_p12-r2", "1.4_p12-r5", L),
            ("1.5.13-r1", "1.3.12-r1", G),
            ("2.0.2", "0.99.163", G),
            ("2.0.6", "2.0.6", E),
            ("2.1.10", "1.0.1", G),
            ("2.1.10-r2", "0.7.18-r2", G),
            ("2.1.15-r2", "2.1.15-r3", L),
            ("2.2", "1.0.4", G),
            ("2.2", "1.2.6", G),
            ("2.3", "2.17-r3", L),
            ("2.3.0b-r1", "2.3.0b-r2", L),
            ("2.4.3-r1", "2.4.3-r4", L),
            ("2.4.3-r16", "2.4.4-r4", L),
            ("2.4.32", "2.8-r4", L),
            ("2.5.1-r8", "2.5.1a-r1", L),
            ("2.5.14", "2.6.6-r1", L),
            ("2.6.9-r1", "1.7", G),
            ("2.8.0.6-r1", "0.5.2.7", G),
            ("2.8.6-r2", "2.02-r1", G),
            ("2.86-r6", "1.15.1-r1", G),
            ("2.9.11_pre20051101-r2", "2.9.11_pre20051101-r3", L),
            ("2.9.3-r1", "0.9-r1", G),
            ("20030215", "3.80-r4", G),
            ("20030719", "4.01", G),
            ("20050718-r1", "20050718-r2", L),
            ("20061003", "0.1_pre20060810", G),
            ("22.2", "22.3", L),
            ("22.7", "2.1_pre20", G),
            ("3.0.20060720", "20060720", L),
            ("3.0.3-r9", "2.0.5-r1", G),
            ("3.1_p17", "1.06-r6", G),
            ("3.2.3", "3.2.4", L),
            ("3.3.17", "0.59s-r11", G),
            ("3.4.6-r2", "3.4.6-r2", E),
            ("3.7_p1", "1.3", G),
            ("3.9.5-r2", "1.1.9", G),
            ("3.96.1", "3.97", L),
            ("3.9_pre20060124", "0.01", G),
            ("4.5.14", "4.09-r1", G),
            ("4.5_p1", "4.5_p1-r1", L),
            ("5.1", "2.02.06", G),
            ("5.2.1-r3", "0.11.3", G),
            ("6.0_p1", "6.0", G),
            ("6.3.3", "4.17-r1", G),
            ("6.4", "2.6-r5", G),
            ("6.6", "6.3", G),
            ("7.0.174", "7.0.17", G),
            ("8.0.9", "1.2.3-r1", G),
            ("9.3.2", "9.3.4", L),
            ("9.3.2-r4", "9.3.4-r2", L),
        ];
        assert!(cases.len() > 100);
        for &(a, b, want) in cases {
            assert_eq!(compare(a, b).unwrap(), want, "{a} vs {b}");
            assert_eq!(compare(b, a).unwrap(), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn apk_suffix_order_and_revision() {
        let ordered = [
            "1.0_alpha",
            "1.0_alpha1",
            "1.0_alpha2",
            "1.0_beta",
            "1.0_beta1",
            "1.0_pre1",
            "1.0_rc1",
            "1.0_rc2",
            "1.0",
            "1.0-r1",
            "1.0-r10",
            "1.0_cvs",
            "1.0_svn",
            "1.0_git20240101",
            "1.0_hg1",
            "1.0_p1",
            "1.0_p1-r1",
            "1.0_p2",
            "1.0a",
            "1.0b",
            "1.0.1",
            "1.1",
        ];
        for w in ordered.windows(2) {
            assert_eq!(compare(w[0], w[1]).unwrap(), L, "{} < {}", w[0], w[1]);
        }
        assert_eq!(compare("1.0_rc1~deadbeef", "1.0_rc1").unwrap(), G);
        assert_eq!(compare("1.0~abc-r1", "1.0~abd-r0").unwrap(), L);
        assert_eq!(compare("3.12.0-r0", "3.12.0-r0").unwrap(), E);
        assert_eq!(
            compare(
                "1.2.99999999999999999999999",
                "1.2.100000000000000000000000"
            )
            .unwrap(),
            L
        );
    }

    /// The validity lines of apk-tools' test/unit/version.data.
    #[test]
    fn apk_validity() {
        for good in [
            "1.2",
            "0.1_pre2",
            "0.1_pre2~1234abcd",
            "0.1_p1_pre2",
            "0.1_alpha1_pre2",
            "0.1_git20240101_pre1",
        ] {
            parse_check(good).unwrap();
        }
        for bad in [
            "",
            "0.1bc",
            "0.1bc1",
            "0.1a1",
            "0.1a.1",
            "0.1_pre2~",
            "0.1_pre2~1234xbcd",
            "0.1_pre2~1234abcd_pre1",
            "0.1_pre2-r1~1234xbcd",
            "0.1_foobar",
            "0.1_foobar1",
            "0.1-pre1.1",
            "0.1-r",
            "0.1-r2_pre1",
            "0.1-r2_p3_pre1",
            "0.1-r2-r3",
            "0.1-r2.1",
            ".1",
            "a",
            "_pre1",
            "-r1",
            "0.1_",
            "0.1_-r0",
            "0.1__alpha",
            "0.1_1_alpha",
        ] {
            let e = parse_check(bad).unwrap_err();
            assert_eq!((e.scheme, e.input.as_str()), (Scheme::Apk, bad));
            assert!(compare(bad, "1.0").is_err(), "{bad:?}");
        }
    }
}
