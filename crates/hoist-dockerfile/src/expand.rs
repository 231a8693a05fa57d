//! Shell-word expansion for Dockerfile instruction arguments, with BuildKit's
//! semantics (`frontend/dockerfile/shell/lex.go`).
//!
//! # Design
//!
//! [`Lexer`] is a hand-written, single-pass scanner over the characters of one
//! word. It mirrors the structure of BuildKit's lexer so that the observable
//! behaviour matches it case for case:
//!
//! - `'...'` is literal; `"..."` expands `$` and lets the escape character
//!   escape `"`, `$` and itself (any other escape is kept as-is);
//! - outside quotes the escape character (`\` or `` ` ``) makes the next
//!   character literal, and a trailing escape is dropped;
//! - `$NAME`, `${NAME}`, positional (`$1`, `$001`) and special (`$@ $* $# $? $- $$ $! $0`)
//!   parameters, which are simply looked up (a Dockerfile never sets them);
//!   `$` followed by anything else is kept literally;
//! - `${V:-w} ${V-w} ${V:+w} ${V+w} ${V:?msg} ${V?msg}` with nested expansion in
//!   `w`; `${V#p} ${V##p} ${V%p} ${V%%p}` and `${V/p/r} ${V//p/r}` where `p` is a
//!   BuildKit shell pattern: `*`, `?` and `\` escaping `*`, `?`, `\`, `}` and
//!   `/` (no bracket expressions, like BuildKit). As in Go's `regexp`, `*` and
//!   `?` do not match a newline, and `${V//p/r}` expands `$0`/`${0}` in `r` to
//!   the matched text (Go's `ReplaceAllString` template), `$$` to `$` and other
//!   `$name` references to nothing;
//! - `<<` plus following blanks is kept as one unit (heredoc markers), as
//!   BuildKit does when splitting words.
//!
//! Patterns are matched by a small NFA simulation (linear in pattern length
//! times value length), never by backtracking, so hostile input cannot blow up.
//!
//! Errors ([`ExpandError`]) carry the word, the character offset of the
//! construct at fault and an [`ExpandErrorKind`].
//!
//! # What it does not do
//!
//! - No command substitution, arithmetic, `${#V}` (length), `${V:=w}` or
//!   `${V:offset}`: BuildKit rejects these and so does this lexer.
//! - Unicode letter/digit classification for variable names uses Rust's
//!   `char::is_alphabetic`/`is_numeric` as an approximation of Go's
//!   `unicode.IsLetter`/`IsDigit` outside ASCII (they differ for combining marks,
//!   letter numbers and non-decimal digits such as `²`).
//! - BuildKit's word splitter shares one buffer between nested `${...}`
//!   expansions, so `ProcessWords("a${X:-b}")` loses the `a`; this lexer keeps
//!   it (each nesting level has its own buffer).
//! - No Windows-specific behaviour (case-insensitive names).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::hash::BuildHasher;

/// Where the lexer finds variable values.
///
/// `None` means unset; `Some("")` means set to the empty string (the two differ
/// for `${V-x}` versus `${V:-x}`).
pub trait VarLookup {
    /// Returns the value of `name`, or `None` when it is unset.
    fn lookup(&self, name: &str) -> Option<&str>;
}

impl<S: BuildHasher> VarLookup for HashMap<String, String, S> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl VarLookup for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// A list of `(name, value)` pairs; the last entry for a name wins, like a
/// Dockerfile's successive `ENV`/`ARG` instructions.
impl VarLookup for [(String, String)] {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Same as the slice implementation: the last entry for a name wins.
impl VarLookup for Vec<(String, String)> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.as_slice().lookup(name)
    }
}

impl<T: VarLookup + ?Sized> VarLookup for &T {
    fn lookup(&self, name: &str) -> Option<&str> {
        (**self).lookup(name)
    }
}

/// Why an expansion failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExpandErrorKind {
    /// A `'` without its closing quote.
    UnterminatedSingleQuote,
    /// A `"` without its closing quote.
    UnterminatedDoubleQuote,
    /// A `${` without its closing `}`.
    MissingCloseBrace,
    /// A `${V/pattern` without the `/` that ends the pattern.
    MissingSlash,
    /// `${}`, `${:...}`, `${{...}` and the like.
    BadSubstitution,
    /// An operator BuildKit does not support, such as `${V:=x}` or `${V:#x}`.
    UnsupportedModifier(String),
    /// `${V?msg}` or `${V:?msg}` with `V` unset.
    Unset {
        /// The variable name.
        name: String,
        /// The message from the word, or BuildKit's default text.
        message: String,
    },
    /// `${V:?msg}` with `V` set to the empty string.
    Empty {
        /// The variable name.
        name: String,
        /// The message from the word, or BuildKit's default text.
        message: String,
    },
    /// A `#`, `%` or `/` pattern with a bad escape (only `\*`, `\?`, `\\`,
    /// `\}` and `\/` are allowed).
    InvalidPattern {
        /// The pattern after expansion.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for ExpandErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnterminatedSingleQuote => {
                f.write_str("unexpected end of statement while looking for matching single-quote")
            }
            Self::UnterminatedDoubleQuote => {
                f.write_str("unexpected end of statement while looking for matching double-quote")
            }
            Self::MissingCloseBrace => f.write_str("syntax error: missing '}'"),
            Self::MissingSlash => f.write_str("syntax error: missing '/' in ${}"),
            Self::BadSubstitution => f.write_str("syntax error: bad substitution"),
            Self::UnsupportedModifier(m) => write!(f, "unsupported modifier ({m}) in substitution"),
            Self::Unset { name, message } | Self::Empty { name, message } => {
                write!(f, "{name}: {message}")
            }
            Self::InvalidPattern { pattern, reason } => {
                write!(f, "invalid pattern ({pattern}) in substitution: {reason}")
            }
        }
    }
}

/// A word that could not be expanded: what went wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {word:?}: {kind} (at character {offset})")]
pub struct ExpandError {
    word: String,
    offset: usize,
    kind: ExpandErrorKind,
}

impl ExpandError {
    /// The word as given to the lexer.
    pub fn word(&self) -> &str {
        &self.word
    }

    /// Zero-based character (not byte) offset in the word of the construct at
    /// fault: the opening quote, the `$` of a `${...}`, or the unsupported
    /// modifier character.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// What went wrong.
    pub fn kind(&self) -> &ExpandErrorKind {
        &self.kind
    }
}

/// The shell-word lexer: expands variables and removes quotes the way BuildKit
/// does for Dockerfile instruction arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    escape: char,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer::new('\\')
    }
}

impl Lexer {
    /// A lexer whose escape character is `escape` (`\` by default, `` ` `` after
    /// an `# escape=`` ` `` directive).
    pub fn new(escape: char) -> Lexer {
        Lexer { escape }
    }

    /// The escape character.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// Expands one word without splitting it (values of `ENV`, `ARG`, `LABEL`,
    /// `WORKDIR`, ...).
    pub fn process_word(&self, word: &str, env: &dyn VarLookup) -> Result<String, ExpandError> {
        Ok(self.run(word, env, false)?.0)
    }

    /// Expands `word` and splits the result on unquoted whitespace; whitespace
    /// produced by an unquoted expansion splits too, quoted text never does.
    pub fn process_words(
        &self,
        word: &str,
        env: &dyn VarLookup,
    ) -> Result<Vec<String>, ExpandError> {
        Ok(self.run(word, env, true)?.1)
    }

    /// Like [`Lexer::process_word`], and also returns every variable name the
    /// expansion looked up, whether set or not (for build cache keys and
    /// "unused ARG" checks).
    pub fn process_word_tracked(
        &self,
        word: &str,
        env: &dyn VarLookup,
    ) -> Result<(String, BTreeSet<String>), ExpandError> {
        let (result, _, used) = self.run(word, env, false)?;
        Ok((result, used))
    }

    fn run(
        &self,
        word: &str,
        env: &dyn VarLookup,
        split: bool,
    ) -> Result<(String, Vec<String>, BTreeSet<String>), ExpandError> {
        let chars: Vec<char> = word.chars().collect();
        // Go's text/scanner skips a byte order mark at the very start.
        let pos = usize::from(chars.first() == Some(&'\u{feff}'));
        let mut sh = Shell {
            chars,
            pos,
            escape: self.escape,
            env,
            raw_escapes: false,
            used: BTreeSet::new(),
        };
        match sh.process_stop_on(None, false, split) {
            Ok((result, words)) => Ok((result, words, sh.used)),
            Err(Fail { offset, kind }) => Err(ExpandError {
                word: word.to_string(),
                offset,
                kind,
            }),
        }
    }
}

/// An error before the word is attached.
struct Fail {
    offset: usize,
    kind: ExpandErrorKind,
}

fn fail<T>(offset: usize, kind: ExpandErrorKind) -> Result<T, Fail> {
    Err(Fail { offset, kind })
}

/// Word-splitting accumulator (BuildKit's `wordsStruct`).
#[derive(Default)]
struct Words {
    words: Vec<String>,
    buf: String,
}

impl Words {
    fn add_char(&mut self, c: char) {
        if c.is_whitespace() {
            self.flush();
        } else {
            self.buf.push(c);
        }
    }

    fn add_raw_char(&mut self, c: char) {
        self.buf.push(c);
    }

    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw_string(&mut self, s: &str) {
        self.buf.push_str(s);
    }

    fn flush(&mut self) {
        if !self.buf.is_empty() {
            self.words.push(std::mem::take(&mut self.buf));
        }
    }

    fn finish(mut self) -> Vec<String> {
        self.flush();
        self.words
    }
}

struct Shell<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    env: &'a dyn VarLookup,
    /// Keep escape characters in the output (inside `#`, `%` and `/` patterns).
    raw_escapes: bool,
    used: BTreeSet<String>,
}

impl Shell<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn get_env(&mut self, name: &str) -> Option<String> {
        if !name.is_empty() {
            self.used.insert(name.to_string());
        }
        self.env.lookup(name).map(str::to_string)
    }

    /// Processes characters until `stop` (consumed) or the end of the word.
    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
        split: bool,
    ) -> Result<(String, Vec<String>), Fail> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let r = self.process_stop_on_inner(stop, split);
        self.raw_escapes = saved;
        r
    }

    fn process_stop_on_inner(
        &mut self,
        stop: Option<char>,
        split: bool,
    ) -> Result<(String, Vec<String>), Fail> {
        let start = self.pos;
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.pos += 1;
                return Ok((result, if split { words.finish() } else { Vec::new() }));
            }
            match ch {
                '$' => {
                    let v = self.process_dollar()?;
                    result.push_str(&v);
                    if split {
                        words.add_string(&v);
                    }
                }
                '<' => {
                    let v = self.process_possible_heredoc();
                    result.push_str(&v);
                    words.add_raw_string(&v);
                }
                '\'' => {
                    let v = self.process_single_quote()?;
                    result.push_str(&v);
                    words.add_raw_string(&v);
                }
                '"' => {
                    let v = self.process_double_quote()?;
                    result.push_str(&v);
                    words.add_raw_string(&v);
                }
                _ => {
                    self.pos += 1;
                    if ch == self.escape {
                        if self.raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        let Some(c) = self.next() else { break };
                        words.add_raw_char(c);
                        result.push(c);
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
        }
        match stop {
            None => Ok((result, if split { words.finish() } else { Vec::new() })),
            Some('/') => fail(start, ExpandErrorKind::MissingSlash),
            Some(_) => fail(start, ExpandErrorKind::MissingCloseBrace),
        }
    }

    fn process_single_quote(&mut self) -> Result<String, Fail> {
        let open = self.pos;
        self.pos += 1;
        let mut result = String::new();
        loop {
            match self.next() {
                None => return fail(open, ExpandErrorKind::UnterminatedSingleQuote),
                Some('\'') => return Ok(result),
                Some(c) => result.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> Result<String, Fail> {
        let open = self.pos;
        self.pos += 1;
        let mut result = String::new();
        loop {
            match self.peek() {
                None => return fail(open, ExpandErrorKind::UnterminatedDoubleQuote),
                Some('"') => {
                    self.pos += 1;
                    return Ok(result);
                }
                Some('$') => {
                    let v = self.process_dollar()?;
                    result.push_str(&v);
                }
                Some(mut ch) => {
                    self.pos += 1;
                    if ch == self.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            // A trailing escape is ignored; the missing quote
                            // is reported on the next turn.
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.escape => {
                                self.pos += 1;
                                ch = c;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn process_possible_heredoc(&mut self) -> String {
        self.pos += 1;
        if self.peek() != Some('<') {
            return "<".to_string();
        }
        self.pos += 1;
        let mut out = String::from("<<");
        while let Some(c @ (' ' | '\t' | '\r')) = self.peek() {
            out.push(c);
            self.pos += 1;
        }
        out
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && is_go_digit(ch) {
                while let Some(c) = self.peek().filter(|c| is_go_digit(*c)) {
                    name.push(c);
                    self.pos += 1;
                }
                return name;
            }
            if name.is_empty() && is_special_param(ch) {
                self.pos += 1;
                return ch.to_string();
            }
            if !is_go_letter(ch) && !is_go_digit(ch) && ch != '_' {
                break;
            }
            self.pos += 1;
            name.push(ch);
        }
        name
    }

    fn process_dollar(&mut self) -> Result<String, Fail> {
        let dollar = self.pos;
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(self.get_env(&name).unwrap_or_default());
        }
        self.pos += 1;
        match self.peek() {
            None => return fail(dollar, ExpandErrorKind::MissingCloseBrace),
            Some('{' | '}' | ':') => return fail(dollar, ExpandErrorKind::BadSubstitution),
            Some(_) => {}
        }
        let name = self.process_name();
        let modifier_at = self.pos;
        let Some(ch) = self.next() else {
            return fail(dollar, ExpandErrorKind::MissingCloseBrace);
        };
        match ch {
            '}' => Ok(self.get_env(&name).unwrap_or_default()),
            ':' | '+' | '-' | '?' | '#' | '%' => {
                let null_is_unset = ch == ':';
                let mut op = ch;
                let mut chs = ch.to_string();
                if null_is_unset {
                    // Like Go, an end of input here reads as U+FFFD.
                    op = self.next().unwrap_or('\u{fffd}');
                    chs.push(op);
                }
                let raw = op == '#' || op == '%';
                if null_is_unset && raw {
                    return fail(modifier_at, ExpandErrorKind::UnsupportedModifier(chs));
                }
                let word = match self.process_stop_on(Some('}'), raw, false) {
                    Ok((w, _)) => w,
                    Err(_) if self.peek().is_none() => {
                        return fail(dollar, ExpandErrorKind::MissingCloseBrace);
                    }
                    Err(e) => return Err(e),
                };
                let value = self.get_env(&name);
                let empty_or_unset = match &value {
                    None => true,
                    Some(v) => null_is_unset && v.is_empty(),
                };
                match op {
                    '-' => Ok(if empty_or_unset {
                        word
                    } else {
                        value.unwrap_or_default()
                    }),
                    '+' => Ok(if empty_or_unset { String::new() } else { word }),
                    '?' => match value {
                        None => {
                            let message = if word.is_empty() {
                                "is not allowed to be unset".to_string()
                            } else {
                                word
                            };
                            fail(dollar, ExpandErrorKind::Unset { name, message })
                        }
                        Some(v) if null_is_unset && v.is_empty() => {
                            let message = if word.is_empty() {
                                "is not allowed to be empty".to_string()
                            } else {
                                word
                            };
                            fail(dollar, ExpandErrorKind::Empty { name, message })
                        }
                        Some(v) => Ok(v),
                    },
                    '#' | '%' => {
                        let value = value.unwrap_or_default();
                        let (greedy, pattern) = match word.strip_prefix(op) {
                            Some(rest) => (true, rest),
                            None => (false, word.as_str()),
                        };
                        let result = if op == '%' {
                            trim_suffix(pattern, &value, greedy)
                        } else {
                            trim_prefix(pattern, &value, greedy)
                        };
                        result.or_else(|reason| {
                            fail(
                                dollar,
                                ExpandErrorKind::InvalidPattern {
                                    pattern: pattern.to_string(),
                                    reason,
                                },
                            )
                        })
                    }
                    _ => fail(modifier_at, ExpandErrorKind::UnsupportedModifier(chs)),
                }
            }
            '/' => {
                let replace_all = self.peek() == Some('/');
                if replace_all {
                    self.pos += 1;
                }
                let pattern = match self.process_stop_on(Some('/'), true, false) {
                    Ok((p, _)) => p,
                    Err(_) if self.peek().is_none() => {
                        return fail(dollar, ExpandErrorKind::MissingSlash)
                    }
                    Err(e) => return Err(e),
                };
                let replacement = match self.process_stop_on(Some('}'), true, false) {
                    Ok((r, _)) => r,
                    Err(_) if self.peek().is_none() => {
                        return fail(dollar, ExpandErrorKind::MissingCloseBrace)
                    }
                    Err(e) => return Err(e),
                };
                let value = self.get_env(&name).unwrap_or_default();
                let pchars: Vec<char> = pattern.chars().collect();
                let toks = match parse_pattern(&pchars) {
                    Ok(t) => t,
                    Err(reason) => {
                        return fail(dollar, ExpandErrorKind::InvalidPattern { pattern, reason })
                    }
                };
                Ok(replace(&toks, &value, &replacement, replace_all))
            }
            _ => fail(
                modifier_at,
                ExpandErrorKind::UnsupportedModifier(ch.to_string()),
            ),
        }
    }
}

/// Go's `unicode.IsDigit`, exact for ASCII and Latin-1.
fn is_go_digit(c: char) -> bool {
    if (c as u32) < 0x100 {
        c.is_ascii_digit()
    } else {
        c.is_numeric() && !c.is_alphabetic()
    }
}

/// Go's `unicode.IsLetter`, exact for ASCII and Latin-1.
fn is_go_letter(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphabetic()
    } else {
        c.is_alphabetic() && !c.is_numeric()
    }
}

fn is_special_param(c: char) -> bool {
    matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

/// One element of a BuildKit shell pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `?`: any character but a newline.
    Any,
    /// `*`: any run of characters without a newline.
    Star,
}

/// BuildKit's `convertShellPatternToRegex`, producing tokens instead of a
/// regular expression.
fn parse_pattern(p: &[char]) -> Result<Vec<Tok>, String> {
    let mut out = Vec::with_capacity(p.len());
    // Go's text/scanner skips a leading byte order mark.
    let mut i = usize::from(p.first() == Some(&'\u{feff}'));
    while i < p.len() {
        let c = p[i];
        i += 1;
        match c {
            '*' => out.push(Tok::Star),
            '?' => out.push(Tok::Any),
            '\\' => match p.get(i) {
                // `}` and `/` must be escaped inside `${}`; the escape is not
                // part of the pattern.
                Some('}' | '/') => {}
                Some(&e @ ('*' | '?' | '\\')) => {
                    i += 1;
                    out.push(Tok::Lit(e));
                }
                Some(&e) => return Err(format!("invalid escape '\\{e}'")),
                None => return Err("invalid escape at end of pattern".to_string()),
            },
            _ => out.push(Tok::Lit(c)),
        }
    }
    Ok(out)
}

/// BuildKit's `reversePattern`: reverses a pattern, keeping `\x` pairs in order.
fn reverse_pattern(p: &[char]) -> Vec<char> {
    let n = p.len();
    let mut out = vec!['\0'; n];
    let mut i = 0;
    while i < n {
        let out_idx = n - 1 - i;
        if p[i] == '\\' && i + 1 < n {
            out[out_idx - 1] = '\\';
            out[out_idx] = p[i + 1];
            i += 2;
        } else {
            out[out_idx] = p[i];
            i += 1;
        }
    }
    out
}

fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let pchars: Vec<char> = pattern.chars().collect();
    let toks = parse_pattern(&pchars)?;
    let text: Vec<char> = value.chars().collect();
    Ok(match find(&toks, &text, 0, true, greedy) {
        Some((_, end)) => text[end..].iter().collect(),
        None => value.to_string(),
    })
}

fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    // Like BuildKit: reverse both and trim a prefix.
    let pchars: Vec<char> = pattern.chars().collect();
    let toks = parse_pattern(&reverse_pattern(&pchars))?;
    let mut text: Vec<char> = value.chars().collect();
    text.reverse();
    Ok(match find(&toks, &text, 0, true, greedy) {
        Some((_, end)) => text[end..].iter().rev().collect(),
        None => value.to_string(),
    })
}

fn tok_accepts(t: Tok, c: char) -> bool {
    match t {
        Tok::Lit(l) => l == c,
        Tok::Any | Tok::Star => c != '\n',
    }
}

/// Finds the match Go's `regexp` would report for the pattern compiled by
/// BuildKit: the leftmost start at or after `from` (only `from` when
/// `anchored`), and for that start the longest end (`greedy`) or the shortest.
///
/// A Thompson-style simulation that keeps, per pattern position, the smallest
/// start reaching it: O(text × pattern).
fn find(
    toks: &[Tok],
    text: &[char],
    from: usize,
    anchored: bool,
    greedy: bool,
) -> Option<(usize, usize)> {
    let m = toks.len();
    let mut cur: Vec<Option<usize>> = vec![None; m + 1];
    let mut next: Vec<Option<usize>> = vec![None; m + 1];
    let mut best: Option<(usize, usize)> = None;
    let mut i = from;
    loop {
        if best.is_none() && (!anchored || i == from) && cur[0].is_none() {
            cur[0] = Some(i);
        }
        // Epsilon closure: a star may match nothing.
        for j in 0..m {
            if let (Some(s), Tok::Star) = (cur[j], toks[j]) {
                cur[j + 1] = Some(cur[j + 1].map_or(s, |t| t.min(s)));
            }
        }
        if let Some(s) = cur[m] {
            best = match best {
                None => Some((s, i)),
                Some((bs, _)) if s < bs => Some((s, i)),
                Some((bs, be)) if s == bs && greedy && i > be => Some((s, i)),
                b => b,
            };
        }
        if let Some((bs, _)) = best {
            // Only threads that could still improve the answer survive.
            for slot in cur.iter_mut() {
                if slot.is_some_and(|s| s > bs || (s == bs && !greedy)) {
                    *slot = None;
                }
            }
        }
        let alive = cur.iter().any(Option::is_some);
        if i >= text.len() || (!alive && (best.is_some() || anchored)) {
            break;
        }
        let c = text[i];
        next.iter_mut().for_each(|s| *s = None);
        for j in 0..m {
            let Some(s) = cur[j] else { continue };
            if tok_accepts(toks[j], c) {
                let target = if toks[j] == Tok::Star { j } else { j + 1 };
                next[target] = Some(next[target].map_or(s, |t| t.min(s)));
            }
        }
        std::mem::swap(&mut cur, &mut next);
        i += 1;
    }
    best
}

/// `${V/p/r}` (first match, replacement taken literally) and `${V//p/r}`
/// (Go's `ReplaceAllString`, replacement expanded as a template).
fn replace(toks: &[Tok], value: &str, replacement: &str, all: bool) -> String {
    let text: Vec<char> = value.chars().collect();
    if !all {
        return match find(toks, &text, 0, false, true) {
            Some((s, e)) => {
                let mut out: String = text[..s].iter().collect();
                out.push_str(replacement);
                out.extend(&text[e..]);
                out
            }
            None => value.to_string(),
        };
    }
    let mut out = String::new();
    let mut last_end = 0;
    let mut search = 0;
    while search <= text.len() {
        let Some((s, e)) = find(toks, &text, search, false, true) else {
            break;
        };
        out.extend(&text[last_end..s]);
        // No replacement for an empty match right after the previous match.
        if e > last_end || s == 0 {
            expand_template(&mut out, replacement, &text[s..e]);
        }
        last_end = e;
        search = if search + 1 > e { search + 1 } else { e };
    }
    out.extend(&text[last_end.min(text.len())..]);
    out
}

/// Go's `regexp.Expand` for a regexp with no capture groups: `$0`/`${0}` is
/// the match, `$$` is `$`, other references are empty, malformed ones literal.
fn expand_template(out: &mut String, template: &str, matched: &[char]) {
    let mut rest = template;
    while let Some(idx) = rest.find('$') {
        out.push_str(&rest[..idx]);
        rest = &rest[idx + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
            continue;
        }
        let (brace, body) = match rest.strip_prefix('{') {
            Some(b) => (true, b),
            None => (false, rest),
        };
        let name_len: usize = body
            .chars()
            .take_while(|c| is_go_letter(*c) || is_go_digit(*c) || *c == '_')
            .map(char::len_utf8)
            .sum();
        if name_len == 0 || (brace && !body[name_len..].starts_with('}')) {
            out.push('$');
            continue;
        }
        let name = &body[..name_len];
        rest = &body[name_len + usize::from(brace)..];
        if name == "0" {
            out.extend(matched);
        }
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(String, String)> {
        [("FOO", "xxyy"), ("E", ""), ("P", "/a/b/c.tar.gz")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn w(s: &str) -> Result<String, ExpandError> {
        Lexer::new('\\').process_word(s, &env())
    }

    #[test]
    fn trims() {
        assert_eq!(w("${FOO#*x*y}").unwrap(), "y");
        assert_eq!(w("${FOO#*}").unwrap(), "xxyy");
        assert_eq!(w("${FOO##*x}").unwrap(), "yy");
        assert_eq!(w("${FOO%y*}").unwrap(), "xxy");
        assert_eq!(w("${FOO%%y*}").unwrap(), "xx");
        assert_eq!(w("${P##*/}").unwrap(), "c.tar.gz");
        assert_eq!(w("${P%.*}").unwrap(), "/a/b/c.tar");
        assert_eq!(w("${P%%.*}").unwrap(), "/a/b/c");
        assert_eq!(w("${FOO#?\\?}").unwrap(), "xxyy");
    }

    #[test]
    fn replacements() {
        assert_eq!(w("${P/\\//_}").unwrap(), "_a/b/c.tar.gz");
        assert_eq!(w("${P//\\//_}").unwrap(), "_a_b_c.tar.gz");
        assert_eq!(w("${FOO///-}").unwrap(), "-x-x-y-y-");
        assert_eq!(w("${FOO//x*/<\\$0>}").unwrap(), "<\\xxyy>");
        assert_eq!(w("${FOO/y/$}").unwrap(), "xx$y");
    }

    #[test]
    fn reverse_pattern_keeps_escapes() {
        let r = |s: &str| {
            reverse_pattern(&s.chars().collect::<Vec<_>>())
                .into_iter()
                .collect::<String>()
        };
        assert_eq!(r("a\\*c"), "c\\*a");
        assert_eq!(r("\\\\\\ab"), "b\\a\\\\");
        assert_eq!(r("ab\\"), "\\ba");
    }

    #[test]
    fn pathological_patterns_are_fast() {
        let value = "a".repeat(3000);
        let mut vars = env();
        vars.push(("V".into(), value.clone()));
        let pat = format!("${{V##{}b}}", "*a".repeat(200));
        assert_eq!(Lexer::new('\\').process_word(&pat, &vars).unwrap(), value);
    }
}
