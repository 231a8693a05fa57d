//! The Dockerfile syntax parser: text in, a flat list of [`Node`]s out, one per
//! instruction, each with its line range and source positions.
//!
//! # Design
//!
//! The parser follows BuildKit's `frontend/dockerfile/parser` package rule for
//! rule, so that [`Ast::dump`] reproduces BuildKit's conformance output byte for
//! byte:
//!
//! - **Physical lines** are split at `\n`; trailing `\r`/`\n` are dropped, a UTF-8
//!   byte order mark on the first line is ignored.
//! - **Parser directives** (`# syntax=`, `# escape=`, `# check=`, names
//!   case-insensitive) are recognised only in the leading run of comment lines;
//!   the first blank line, instruction, or comment that is not a known directive
//!   ends that run. A repeated directive or an escape other than `\` or `` ` `` is
//!   an error.
//! - **Logical lines**: a line ending in the escape character (optionally followed
//!   by blanks, and not itself escaped) continues on the next one. Comment lines
//!   and blank lines inside a continuation are skipped (the latter with a
//!   [`Warning`]), a continuation at end of file simply ends the instruction.
//! - **Splitting**: the keyword is the first blank-separated word; `--name=value`
//!   flags are taken off the front of the rest (quotes and escapes processed, a
//!   lone `--` ends them); the arguments are then parsed per instruction: JSON
//!   (exec) form when the text is a valid JSON array of strings, shell form when it
//!   is not JSON at all (BuildKit's `jeztah-invalid-json-*` rules), and an error
//!   when it is a JSON array holding something other than strings. `ENV`/`LABEL`
//!   produce `key value separator` triples, `ARG` quote-aware words, `ONBUILD` a
//!   nested child node and `HEALTHCHECK` its type plus a child node for the
//!   command.
//! - **Heredocs** (`<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'`, `3<<EOF`, several per
//!   line) are recognised on `RUN`, `COPY` and `ADD` (also under `ONBUILD`) in shell
//!   form, with BuildKit's word lexer rules; their bodies are read from the lines
//!   that follow the instruction.
//!
//! Every [`Node`] records its start and end line, the position of its keyword,
//! of each flag and of its arguments, so later passes (see
//! [`crate::instruction`]) can point at the exact column of a problem.
//!
//! Errors are collected rather than returned at the first one: a bad instruction
//! is reported and parsing resumes with the next logical line, so a file with
//! three problems reports three [`ParseError`]s.
//!
//! # What it does not do
//!
//! - No variable expansion and no quote removal in arguments: words are kept as
//!   written (see [`crate::expand`] for that, applied at build time).
//! - No knowledge of what instructions mean: unknown keywords produce a node with
//!   no arguments, and flag names are not checked here; [`crate::instruction`]
//!   rejects both.
//! - No I/O and no line-length limit (BuildKit refuses lines over 64 KiB; this
//!   parser is linear in the input and accepts them).
//! - No panics on any input; nesting (`ONBUILD ONBUILD ...`, JSON depth) is bounded.
//! - Go quirks not reproduced: BuildKit scans flags and the `HEALTHCHECK` type byte
//!   by byte, which garbles non-ASCII flag values; this parser works on
//!   characters. Go's `strconv.Quote` notion of "printable" used by
//!   [`Node::dump`] is approximated (unassigned code points count as printable).

use std::borrow::Cow;
use std::fmt;

/// The default escape character, `\`.
pub const DEFAULT_ESCAPE: char = '\\';

/// How deeply `ONBUILD` may nest inside itself in the syntax tree (the typed
/// layer refuses any `ONBUILD ONBUILD`; this only bounds hostile input).
const MAX_SUBCOMMAND_DEPTH: usize = 8;

/// Go's `encoding/json` refuses documents nested deeper than this.
const MAX_JSON_DEPTH: usize = 10_000;

/// Keywords BuildKit's parser knows; others parse as a node without arguments.
const KNOWN_KEYWORDS: &[&str] = &[
    "add",
    "arg",
    "cmd",
    "copy",
    "entrypoint",
    "env",
    "expose",
    "from",
    "healthcheck",
    "label",
    "maintainer",
    "onbuild",
    "run",
    "shell",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

/// A place in the source: 1-based line and 1-based column counted in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, in characters (not bytes).
    pub column: usize,
}

/// One `--name[=value]` flag as written before an instruction's arguments, with
/// quotes and escapes already processed (like BuildKit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// The flag text, starting with `--` (for example `--from=build`).
    pub text: String,
    /// Where the flag starts in the source.
    pub pos: Position,
}

impl Flag {
    /// The flag name without the leading `--` and without the value.
    pub fn name(&self) -> &str {
        let body = self.text.strip_prefix("--").unwrap_or(&self.text);
        body.split_once('=').map_or(body, |(name, _)| name)
    }

    /// The value after `=`, or `None` when the flag has no `=`.
    pub fn value(&self) -> Option<&str> {
        self.text.split_once('=').map(|(_, v)| v)
    }
}

/// A here-document attached to a `RUN`, `COPY` or `ADD` instruction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Heredoc {
    /// The delimiter word with quotes removed (`EOF` for `<<"EOF"`); also the file
    /// name for `COPY <<EOF`.
    pub name: String,
    /// The file descriptor before `<<` (`3<<EOF`), 0 when absent.
    pub fd: u32,
    /// False when any part of the delimiter was quoted: the body is then used
    /// literally, without variable expansion.
    pub expand: bool,
    /// True for `<<-`: leading tabs are stripped from body lines
    /// ([`Heredoc::chomped_content`]).
    pub chomp: bool,
    /// The body exactly as written, line endings included, without the
    /// terminator line and without tab stripping.
    pub content: String,
}

impl Heredoc {
    /// The body as the instruction uses it: with leading tabs removed from every
    /// line when [`Heredoc::chomp`] is set, as written otherwise.
    pub fn chomped_content(&self) -> Cow<'_, str> {
        if !self.chomp {
            return Cow::Borrowed(&self.content);
        }
        let mut out = String::with_capacity(self.content.len());
        for line in self.content.split_inclusive('\n') {
            out.push_str(line.trim_start_matches('\t'));
        }
        Cow::Owned(out)
    }
}

/// Recognises one heredoc marker word such as `<<EOF`, `<<-'EOF'` or `3<<EOF`
/// (BuildKit's `MustParseHeredoc`): `Some` with an empty body when `word` is a
/// marker, `None` otherwise (including malformed markers like `<<'EOF`).
pub fn heredoc_marker(word: &str) -> Option<Heredoc> {
    parse_heredoc_word(word).ok().flatten()
}

/// One parser directive found at the top of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The value, trimmed (for example `docker/dockerfile:1`).
    pub value: String,
    /// The line it was found on.
    pub line: usize,
}

/// The parser directives of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Directives {
    /// `# syntax=` (the frontend image; hoist records it but always uses its own
    /// parser).
    pub syntax: Option<Directive>,
    /// `# escape=` (`\` or `` ` ``).
    pub escape: Option<Directive>,
    /// `# check=` (lint configuration, kept verbatim).
    pub check: Option<Directive>,
}

/// Something legal but suspicious, reported alongside a successful parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The line the warning is about.
    pub line: usize,
    /// What is wrong, in BuildKit's words where it has some.
    pub message: String,
}

/// One instruction of the syntax tree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    /// The keyword in lower case (`run`, `copy`, ...); unknown keywords are kept.
    pub keyword: String,
    /// The keyword as written (`Run`, `RUN`, ...).
    pub keyword_as_written: String,
    /// The logical line after joining continuations (comments and continuation
    /// characters removed, no heredoc bodies), trimmed of surrounding blanks.
    pub original: String,
    /// Flags taken off the front of the arguments.
    pub flags: Vec<Flag>,
    /// The arguments, unexpanded. JSON form: the decoded strings. Shell form for
    /// `RUN`/`CMD`/`ENTRYPOINT`/`SHELL`/`MAINTAINER`/`USER`/`WORKDIR`/`STOPSIGNAL`:
    /// one string. `ADD`/`COPY`/`VOLUME`/`FROM`/`EXPOSE`: blank-separated words.
    /// `ARG`: quote-aware words. `ENV`/`LABEL`: `key, value, separator` triples
    /// (separator `"="` or `""` for the legacy `ENV key value` form).
    /// `HEALTHCHECK`: the type (`CMD`, `NONE`, ...) then the command.
    /// `ONBUILD`: empty (see [`Node::next`]).
    pub args: Vec<String>,
    /// True when the arguments were written in JSON (exec) form.
    pub json: bool,
    /// Heredocs, in the order their markers appear.
    pub heredocs: Vec<Heredoc>,
    /// First line of the instruction (1-based).
    pub start_line: usize,
    /// Last line of the instruction, continuation and heredoc lines included.
    pub end_line: usize,
    /// Where the keyword starts.
    pub keyword_pos: Position,
    /// Where the arguments (after the flags) start; just after the keyword when
    /// there are none.
    pub args_pos: Position,
    /// The nested instruction: the trigger of `ONBUILD`, or the `CMD ...` (or
    /// `NONE`) part of `HEALTHCHECK`, parsed as a node of its own.
    pub next: Option<Box<Node>>,
    /// The comment lines directly above the instruction (text after `#`).
    pub comments: Vec<String>,
}

impl Node {
    /// The node as a BuildKit conformance S-expression body, without the outer
    /// parentheses: `run ["--network=none"] "echo hi"`.
    pub fn dump(&self) -> String {
        let mut out = self.keyword.clone();
        if !self.flags.is_empty() {
            out.push_str(" [");
            for (i, flag) in self.flags.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(&go_quote(&flag.text));
            }
            out.push(']');
        }
        if self.keyword == "onbuild" {
            if let Some(child) = &self.next {
                out.push_str(" (");
                out.push_str(&child.dump());
                out.push(')');
            }
        } else if !KNOWN_KEYWORDS.contains(&self.keyword.as_str()) {
            // BuildKit's parser gives unknown instructions one empty argument.
            out.push_str(" \"\"");
        } else {
            for arg in &self.args {
                out.push(' ');
                out.push_str(&go_quote(arg));
            }
        }
        out.trim().to_string()
    }
}

/// A parsed Dockerfile: directives, the escape character in force and the
/// instructions in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ast {
    /// Parser directives found at the top.
    pub directives: Directives,
    /// The escape character (`\` unless `# escape=` says otherwise).
    pub escape: char,
    /// The instructions.
    pub nodes: Vec<Node>,
    /// Non-fatal findings (empty continuation lines).
    pub warnings: Vec<Warning>,
    /// The source text (byte order mark removed), for quoting lines in errors.
    pub source: String,
}

impl Ast {
    /// The text of physical line `line` (1-based) without its line ending.
    pub fn line_text(&self, line: usize) -> Option<&str> {
        self.source
            .split_inclusive('\n')
            .nth(line.checked_sub(1)?)
            .map(trim_newline)
    }

    /// BuildKit's conformance dump: one `(keyword ...)` line per instruction,
    /// without a trailing newline.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push('(');
            out.push_str(&node.dump());
            out.push(')');
        }
        out
    }
}

/// One problem in a Dockerfile, with the place to fix it.
///
/// Display: `[FILE:]LINE:COL: message (expected ...)`, then the offending line
/// and a caret under the column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// The file name, when the caller supplied one ([`ParseError::with_file`]).
    pub file: Option<String>,
    /// 1-based line of the problem (0 for an empty file).
    pub line: usize,
    /// 1-based character column (0 when no column applies).
    pub column: usize,
    /// Last line of the instruction concerned (equal to `line` when it is one line).
    pub end_line: usize,
    /// The text of the offending physical line, without its line ending.
    pub source_line: String,
    /// What is wrong.
    pub message: String,
    /// What would have been accepted, when that can be said.
    pub expected: Option<String>,
}

impl ParseError {
    /// Prefixes the location with a file name: `Dockerfile:3:7: ...`.
    pub fn with_file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }

    /// The location part of the message: `[FILE:]LINE:COL`.
    pub fn location(&self) -> String {
        match &self.file {
            Some(file) => format!("{file}:{}:{}", self.line, self.column),
            None => format!("{}:{}", self.line, self.column),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location(), self.message)?;
        if let Some(expected) = &self.expected {
            write!(f, " (expected {expected})")?;
        }
        if !self.source_line.is_empty() || self.column > 0 {
            write!(f, "\n{}", self.source_line)?;
            if self.column > 0 {
                let mut caret = String::from("\n");
                for ch in self.source_line.chars().take(self.column - 1) {
                    caret.push(if ch == '\t' { '\t' } else { ' ' });
                }
                caret.push('^');
                f.write_str(&caret)?;
            }
        }
        Ok(())
    }
}

/// Every problem found in a Dockerfile (at least one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseErrors {
    /// The problems, in source order.
    pub errors: Vec<ParseError>,
}

impl ParseErrors {
    /// Prefixes every location with a file name.
    pub fn with_file(self, file: &str) -> Self {
        ParseErrors {
            errors: self.errors.into_iter().map(|e| e.with_file(file)).collect(),
        }
    }

    /// The first problem.
    pub fn first(&self) -> Option<&ParseError> {
        self.errors.first()
    }
}

impl fmt::Display for ParseErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl From<ParseError> for ParseErrors {
    fn from(e: ParseError) -> Self {
        ParseErrors { errors: vec![e] }
    }
}

/// Parses Dockerfile text into its syntax tree.
///
/// Fails with every problem found when an instruction cannot be parsed, a
/// directive is invalid, a heredoc is not terminated, or the file holds no
/// instruction at all.
pub fn parse(src: &str) -> Result<Ast, ParseErrors> {
    let (ast, errors) = parse_recovering(src);
    if errors.is_empty() {
        Ok(ast)
    } else {
        Err(ParseErrors { errors })
    }
}

/// Parses as much as possible: the tree of every instruction that parsed, plus
/// every problem found (empty when the file is fine). Instructions with errors
/// are left out of the tree.
pub fn parse_recovering(src: &str) -> (Ast, Vec<ParseError>) {
    Parser::new(src).run()
}

// ---------------------------------------------------------------------------
// The line machinery.

/// Go's `unicode.IsSpace`, which equals Rust's `char::is_whitespace`.
fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// BuildKit's `reWhitespace`: `[\t\v\f\r ]`.
fn is_re_ws(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Go regexp's `\s`: `[\t\n\f\r ]`.
fn is_re_s(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' ')
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(s: &str) -> bool {
    s.trim_start_matches(is_space).starts_with('#')
}

/// Removes a line-continuation escape at the end of `line`: returns the text to
/// keep and whether the logical line ends here.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    if let Some(before) = t.strip_suffix(escape) {
        if before.is_empty() || !before.ends_with(escape) {
            return (before, false);
        }
    }
    (line, true)
}

/// A piece of a logical line copied from one physical line.
#[derive(Debug, Clone, Copy)]
struct Segment {
    /// Byte offset in the logical line where the piece starts.
    offset: usize,
    /// Physical line number.
    line: usize,
    /// 0-based character column in the physical line where the piece starts.
    column: usize,
}

/// A logical line: physical lines joined after continuation handling, with the
/// map back to physical positions.
#[derive(Debug, Default)]
struct Logical {
    text: String,
    segments: Vec<Segment>,
    /// Last lookup `(segment, byte offset, characters from segment start)`, so
    /// increasing lookups (flags left to right) cost linear time overall.
    cursor: std::cell::Cell<(usize, usize, usize)>,
}

impl Logical {
    fn push(&mut self, piece: &str, line: usize, column: usize) {
        self.segments.push(Segment {
            offset: self.text.len(),
            line,
            column,
        });
        self.text.push_str(piece);
    }

    fn position(&self, offset: usize) -> Position {
        let idx = self
            .segments
            .partition_point(|s| s.offset <= offset)
            .saturating_sub(1);
        let Some(seg) = self.segments.get(idx) else {
            return Position { line: 0, column: 0 };
        };
        let (c_idx, c_off, c_chars) = self.cursor.get();
        let (from, base) = if c_idx == idx && c_off <= offset {
            (c_off, c_chars)
        } else {
            (seg.offset, 0)
        };
        let chars = base + self.text.get(from..offset).map_or(0, |s| s.chars().count());
        self.cursor.set((idx, offset, chars));
        Position {
            line: seg.line,
            column: seg.column + chars + 1,
        }
    }
}

/// A problem inside one logical line, located by byte offset.
#[derive(Debug)]
struct LineError {
    offset: usize,
    message: String,
    expected: Option<String>,
}

impl LineError {
    fn new(offset: usize, message: impl Into<String>) -> Self {
        LineError {
            offset,
            message: message.into(),
            expected: None,
        }
    }

    fn expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }
}

struct Parser<'a> {
    src: &'a str,
    lines: Vec<&'a str>,
    escape: char,
    directives: Directives,
    directives_done: bool,
    errors: Vec<ParseError>,
    warnings: Vec<Warning>,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        let src = src.strip_prefix('\u{feff}').unwrap_or(src);
        Parser {
            src,
            lines: src.split_inclusive('\n').collect(),
            escape: DEFAULT_ESCAPE,
            directives: Directives::default(),
            directives_done: false,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn line_text(&self, line: usize) -> String {
        line.checked_sub(1)
            .and_then(|i| self.lines.get(i))
            .map_or_else(String::new, |l| trim_newline(l).to_string())
    }

    fn error_at(
        &mut self,
        pos: Position,
        end_line: usize,
        message: String,
        expected: Option<String>,
    ) {
        let source_line = self.line_text(pos.line);
        self.errors.push(ParseError {
            file: None,
            line: pos.line,
            column: pos.column,
            end_line: end_line.max(pos.line),
            source_line,
            message,
            expected,
        });
    }

    /// BuildKit's `DirectiveParser.ParseLine`: `Ok(true)` when `token` (a line
    /// with leading blanks removed) is a parser directive.
    fn directive(&mut self, token: &str, line: usize) -> Result<bool, String> {
        if self.directives_done {
            return Ok(false);
        }
        let Some(rest) = token.strip_prefix('#') else {
            self.directives_done = true;
            return Ok(false);
        };
        let Some((name, value)) = match_directive(rest.trim_start_matches(is_space)) else {
            self.directives_done = true;
            return Ok(false);
        };
        let key = name.to_ascii_lowercase();
        let slot = match key.as_str() {
            "syntax" => &mut self.directives.syntax,
            "escape" => &mut self.directives.escape,
            "check" => &mut self.directives.check,
            _ => {
                self.directives_done = true;
                return Ok(false);
            }
        };
        if slot.is_some() {
            return Err(format!("only one {key} parser directive can be used"));
        }
        *slot = Some(Directive {
            value: value.to_string(),
            line,
        });
        if key == "escape" {
            match value {
                "\\" => self.escape = '\\',
                "`" => self.escape = '`',
                _ => {
                    return Err(format!(
                        "invalid escape token '{value}' does not match ` or \\"
                    ))
                }
            }
        }
        Ok(true)
    }

    fn run(mut self) -> (Ast, Vec<ParseError>) {
        let mut nodes = Vec::new();
        let mut comments: Vec<String> = Vec::new();
        let mut i = 0;
        while i < self.lines.len() {
            let raw = self.lines.get(i).copied().unwrap_or_default();
            let line_no = i + 1;
            i += 1;
            let no_nl = trim_newline(raw);
            let token = no_nl.trim_start_matches(is_space);
            let lead = no_nl.len() - token.len();
            let lead_chars = no_nl.get(..lead).map_or(0, |s| s.chars().count());
            let comment_line = token.starts_with('#');
            if comment_line {
                let text = token.get(1..).unwrap_or_default().trim();
                if text.is_empty() {
                    comments.clear();
                } else {
                    comments.push(text.to_string());
                }
            }
            match self.directive(token, line_no) {
                Ok(true) => {
                    comments.pop();
                }
                Ok(false) => {}
                Err(message) => {
                    let pos = Position {
                        line: line_no,
                        column: lead_chars + 1,
                    };
                    self.error_at(pos, line_no, message, None);
                }
            }
            let token = if comment_line { "" } else { token };
            let start_line = line_no;
            let (piece, mut end) = trim_continuation(token, self.escape);
            if end && piece.is_empty() {
                continue;
            }
            let mut logical = Logical::default();
            logical.push(piece, start_line, lead_chars);
            let mut empty_continuation = false;
            while !end && i < self.lines.len() {
                let raw = self.lines.get(i).copied().unwrap_or_default();
                i += 1;
                if is_comment(raw) {
                    continue;
                }
                let t = trim_newline(raw);
                if t.trim_start_matches(is_space).is_empty() {
                    empty_continuation = true;
                    continue;
                }
                let (piece, e) = trim_continuation(t, self.escape);
                end = e;
                logical.push(piece, i, 0);
            }
            if empty_continuation {
                self.warnings.push(Warning {
                    line: i,
                    message: format!("Empty continuation line found in: {}", logical.text),
                });
            }

            let mut node = match node_from_line(&logical, 0, logical.text.len(), self.escape, 0) {
                Ok(node) => node,
                Err(e) => {
                    let pos = logical.position(e.offset);
                    self.error_at(pos, i, e.message, e.expected);
                    comments.clear();
                    continue;
                }
            };

            if can_contain_heredoc(&node) && logical.text.contains("<<") {
                match heredocs_from_line(&logical.text) {
                    Err(e) => {
                        let pos = logical.position(e.offset);
                        self.error_at(pos, i, e.message, e.expected);
                    }
                    Ok(docs) => {
                        for (mut doc, offset) in docs {
                            let mut terminated = false;
                            let mut content = String::new();
                            while let Some(raw) = self.lines.get(i).copied() {
                                i += 1;
                                let mut candidate = trim_newline(raw);
                                if doc.chomp {
                                    candidate = candidate.trim_start_matches('\t');
                                }
                                if candidate == doc.name {
                                    terminated = true;
                                    break;
                                }
                                content.push_str(raw);
                            }
                            if !terminated {
                                let pos = logical.position(offset);
                                self.error_at(
                                    pos,
                                    i,
                                    "unterminated heredoc".to_string(),
                                    Some(format!("a line holding only {:?}", doc.name)),
                                );
                            }
                            doc.content = content;
                            node.heredocs.push(doc);
                        }
                        if node.keyword == "onbuild" {
                            if let Some(child) = node.next.as_deref_mut() {
                                child.heredocs = node.heredocs.clone();
                            }
                        }
                    }
                }
            }

            set_lines(&mut node, start_line, i);
            node.comments = std::mem::take(&mut comments);
            nodes.push(node);
        }

        if nodes.is_empty() && self.errors.is_empty() {
            let line = self.lines.len();
            self.error_at(
                Position { line, column: 0 },
                line,
                "file with no instructions".to_string(),
                Some("at least one instruction such as FROM".to_string()),
            );
        }
        self.errors.sort_by_key(|e| (e.line, e.column));
        let ast = Ast {
            directives: self.directives,
            escape: self.escape,
            nodes,
            warnings: self.warnings,
            source: self.src.to_string(),
        };
        (ast, self.errors)
    }
}

fn set_lines(node: &mut Node, start: usize, end: usize) {
    node.start_line = start;
    node.end_line = end;
    let mut next = node.next.as_deref_mut();
    while let Some(child) = next {
        child.start_line = start;
        child.end_line = end;
        next = child.next.as_deref_mut();
    }
}

/// `^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` on the text after `#`.
fn match_directive(s: &str) -> Option<(&str, &str)> {
    let mut chars = s.char_indices();
    let (_, first) = chars.next()?;
    if !first.is_ascii_alphabetic() {
        return None;
    }
    let name_end = s
        .char_indices()
        .find(|(_, c)| !c.is_ascii_alphanumeric())
        .map_or(s.len(), |(i, _)| i);
    let name = s.get(..name_end)?;
    let after = s.get(name_end..)?.trim_start_matches(is_re_s);
    let tail = after.strip_prefix('=')?;
    if tail.is_empty() {
        return None;
    }
    let value = tail.trim_matches(is_re_s);
    if value.is_empty() {
        // Only blanks after `=`: the lazy `.+?` still takes the last one.
        let last = tail.char_indices().last().map_or(0, |(i, _)| i);
        return Some((name, tail.get(last..)?));
    }
    Some((name, value))
}

fn can_contain_heredoc(node: &Node) -> bool {
    let node = if node.keyword == "onbuild" {
        match node.next.as_deref() {
            Some(child) => child,
            None => return false,
        }
    } else {
        node
    };
    matches!(node.keyword.as_str(), "run" | "copy" | "add") && !node.json
}

/// Byte offset of `inner` inside `outer` (`inner` must be a subslice).
fn offset_in(outer: &str, inner: &str) -> usize {
    (inner.as_ptr() as usize).saturating_sub(outer.as_ptr() as usize)
}

/// BuildKit's `newNodeFromLine` on `lg.text[start..end]`.
fn node_from_line(
    lg: &Logical,
    start: usize,
    end: usize,
    escape: char,
    depth: usize,
) -> Result<Node, LineError> {
    let full = lg.text.as_str();
    let line = full.get(start..end).unwrap_or_default();
    let trimmed = line.trim_matches(is_space);
    let t_off = offset_in(full, trimmed);
    let (keyword_raw, rest) = match trimmed.find(is_re_ws) {
        Some(p) => {
            let after = trimmed.get(p..).unwrap_or_default();
            (
                trimmed.get(..p).unwrap_or_default(),
                after.trim_start_matches(is_re_ws),
            )
        }
        None => (trimmed, trimmed.get(trimmed.len()..).unwrap_or_default()),
    };
    let rest_off = offset_in(full, rest);
    let (raw_flags, args_rel) = extract_flags(rest, escape);
    let flags = raw_flags
        .into_iter()
        .map(|(text, off)| Flag {
            text,
            pos: lg.position(rest_off + off),
        })
        .collect();
    let args_raw = rest.get(args_rel..).unwrap_or_default();
    let args = args_raw.trim_matches(is_space);
    let args_off = offset_in(full, args);
    let keyword = keyword_raw.to_lowercase();

    let mut node = Node {
        keyword: keyword.clone(),
        keyword_as_written: keyword_raw.to_string(),
        original: trimmed.to_string(),
        flags,
        keyword_pos: lg.position(t_off),
        args_pos: lg.position(if args.is_empty() {
            t_off + keyword_raw.len()
        } else {
            args_off
        }),
        ..Node::default()
    };

    match keyword.as_str() {
        "add" | "copy" | "volume" => {
            let (a, json) =
                parse_maybe_json_to_list(args).map_err(|m| LineError::new(args_off, m))?;
            node.args = a;
            node.json = json;
        }
        "cmd" | "entrypoint" | "run" | "shell" => {
            let (a, json) = parse_maybe_json(args).map_err(|m| LineError::new(args_off, m))?;
            node.args = a;
            node.json = json;
        }
        "arg" => {
            node.args = parse_words(args, escape)
                .into_iter()
                .map(|(w, _)| w)
                .collect();
        }
        "env" | "label" => {
            node.args = parse_name_val(args, &keyword.to_uppercase(), escape)
                .map_err(|(off, m)| LineError::new(args_off + off, m))?;
        }
        "expose" | "from" => node.args = split_whitespace_delimited(args),
        "maintainer" | "stopsignal" | "user" | "workdir" if !args.is_empty() => {
            node.args = vec![args.to_string()];
        }
        "healthcheck" => {
            let sep = args.find(is_space).unwrap_or(args.len());
            if sep > 0 {
                let typ = args.get(..sep).unwrap_or_default();
                let cmd = args
                    .get(sep..)
                    .unwrap_or_default()
                    .trim_start_matches(is_space);
                let cmd_off = offset_in(full, cmd);
                let (cmd_args, json) =
                    parse_maybe_json(cmd).map_err(|m| LineError::new(cmd_off, m))?;
                node.args = std::iter::once(typ.to_string())
                    .chain(cmd_args.iter().cloned())
                    .collect();
                node.json = json;
                node.next = Some(Box::new(Node {
                    keyword: typ.to_lowercase(),
                    keyword_as_written: typ.to_string(),
                    original: args.to_string(),
                    args: cmd_args,
                    json,
                    keyword_pos: lg.position(args_off),
                    args_pos: lg.position(if cmd.is_empty() {
                        args_off + typ.len()
                    } else {
                        cmd_off
                    }),
                    ..Node::default()
                }));
            }
        }
        "onbuild" if !args.is_empty() => {
            if depth >= MAX_SUBCOMMAND_DEPTH {
                return Err(LineError::new(args_off, "ONBUILD nested too deeply")
                    .expected("a single ONBUILD followed by an instruction"));
            }
            let child = node_from_line(lg, args_off, args_off + args.len(), escape, depth + 1)?;
            node.next = Some(Box::new(child));
        }
        _ => {}
    }
    Ok(node)
}

/// BuildKit's `extractBuilderFlags`: the flags at the front of `line` with their
/// byte offsets, and the offset where the arguments start.
fn extract_flags(line: &str, escape: char) -> (Vec<(String, usize)>, usize) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let n = chars.len();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut word_start = 0;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut i = 0;
    while i <= n {
        let at_end = i == n;
        let (off, mut ch) = chars.get(i).copied().unwrap_or((line.len(), '\0'));
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if is_space(ch) {
                i += 1;
                continue;
            }
            let next_dash = chars.get(i + 1).is_some_and(|&(_, c)| c == '-');
            if ch != '-' || !next_dash {
                return (words, off);
            }
            phase = Phase::Word;
            word_start = off;
        }
        if at_end {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push((word, word_start));
            }
            return (words, line.len());
        }
        if phase == Phase::Word {
            if is_space(ch) {
                phase = Phase::Spaces;
                if word == "--" {
                    return (words, off);
                }
                if blank_ok || !word.is_empty() {
                    words.push((std::mem::take(&mut word), word_start));
                }
                word.clear();
                blank_ok = false;
                i += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                i += 1;
                continue;
            }
            if ch == escape {
                if i + 1 == n {
                    i += 1;
                    continue;
                }
                i += 1;
                ch = chars.get(i).map_or(ch, |&(_, c)| c);
            }
            word.push(ch);
            i += 1;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
            i += 1;
            continue;
        }
        if ch == escape {
            if i + 1 == n {
                phase = Phase::Word;
                i += 1;
                continue;
            }
            i += 1;
            ch = chars.get(i).map_or(ch, |&(_, c)| c);
        }
        word.push(ch);
        i += 1;
    }
    (words, line.len())
}

/// BuildKit's `parseWords`: splits on blanks, keeping quotes and escapes in the
/// words; returns each word with its byte offset.
fn parse_words(rest: &str, escape: char) -> Vec<(String, usize)> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<(usize, char)> = rest.char_indices().collect();
    let n = chars.len();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut word = String::new();
    let mut start = 0;
    let mut i = 0;
    while i <= n {
        let at_end = i == n;
        let (off, mut ch) = chars.get(i).copied().unwrap_or((rest.len(), '\0'));
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if is_space(ch) {
                i += 1;
                continue;
            }
            phase = Phase::Word;
            start = off;
        }
        if at_end {
            if blank_ok || !word.is_empty() {
                words.push((std::mem::take(&mut word), start));
            }
            break;
        }
        if phase == Phase::Word {
            if is_space(ch) {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push((std::mem::take(&mut word), start));
                }
                word.clear();
                blank_ok = false;
                i += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if i + 1 == n {
                    i += 1;
                    continue;
                }
                word.push(ch);
                i += 1;
                ch = chars.get(i).map_or(ch, |&(_, c)| c);
            }
            word.push(ch);
            i += 1;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
        }
        if ch == escape && quote != '\'' {
            if i + 1 == n {
                phase = Phase::Word;
                i += 1;
                continue;
            }
            word.push(ch);
            i += 1;
            ch = chars.get(i).map_or(ch, |&(_, c)| c);
        }
        word.push(ch);
        i += 1;
    }
    words
}

/// BuildKit's `parseNameVal` for ENV and LABEL: `key value sep` triples.
/// Errors carry the byte offset in `rest`.
fn parse_name_val(rest: &str, key: &str, escape: char) -> Result<Vec<String>, (usize, String)> {
    let words = parse_words(rest, escape);
    let Some((first, _)) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        let Some(p) = rest.find(is_re_ws) else {
            return Err((0, format!("{key} must have two arguments")));
        };
        let name = rest.get(..p).unwrap_or_default();
        let value = rest
            .get(p..)
            .unwrap_or_default()
            .trim_start_matches(is_re_ws);
        return Ok(vec![name.to_string(), value.to_string(), String::new()]);
    }
    let mut out = Vec::with_capacity(words.len() * 3);
    for (word, off) in words {
        let Some((k, v)) = word.split_once('=') else {
            return Err((
                off,
                format!("Syntax error - can't find = in {word:?}. Must be of the form: name=value"),
            ));
        };
        out.push(k.to_string());
        out.push(v.to_string());
        out.push("=".to_string());
    }
    Ok(out)
}

/// BuildKit's `parseStringsWhitespaceDelimited`.
fn split_whitespace_delimited(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        return Vec::new();
    }
    rest.split(is_re_ws)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

const NOT_STRING_ARRAY: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

/// BuildKit's `parseMaybeJSON`: JSON form, or the whole text as one argument.
fn parse_maybe_json(rest: &str) -> Result<(Vec<String>, bool), String> {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    match parse_json_array(rest) {
        Json::Strings(v) => Ok((v, true)),
        Json::NotStringArray => Err(NOT_STRING_ARRAY.to_string()),
        Json::Invalid => Ok((vec![rest.to_string()], false)),
    }
}

/// BuildKit's `parseMaybeJSONToList`: JSON form, or blank-separated words.
fn parse_maybe_json_to_list(rest: &str) -> Result<(Vec<String>, bool), String> {
    match parse_json_array(rest) {
        Json::Strings(v) => Ok((v, true)),
        Json::NotStringArray => Err(NOT_STRING_ARRAY.to_string()),
        Json::Invalid => Ok((split_whitespace_delimited(rest), false)),
    }
}

// ---------------------------------------------------------------------------
// JSON arrays of strings, with Go's `encoding/json` acceptance rules.

enum Json {
    Strings(Vec<String>),
    NotStringArray,
    Invalid,
}

fn skip_json_ws(b: &[u8], mut p: usize) -> usize {
    while matches!(b.get(p), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        p += 1;
    }
    p
}

fn hex4(b: &[u8], p: usize) -> Option<u32> {
    let digits = b.get(p..p + 4)?;
    let mut v = 0u32;
    for &d in digits {
        v = v * 16 + char::from(d).to_digit(16)?;
    }
    Some(v)
}

/// Scans the JSON string starting at the `"` at `p`; returns the decoded value
/// and the position after the closing quote.
fn json_string(s: &str, p: usize) -> Option<(String, usize)> {
    let b = s.as_bytes();
    let mut out = String::new();
    let mut i = p + 1;
    loop {
        let c = *b.get(i)?;
        match c {
            b'"' => return Some((out, i + 1)),
            0..=0x1f => return None,
            b'\\' => {
                let e = *b.get(i + 1)?;
                i += 2;
                match e {
                    b'"' => out.push('"'),
                    b'\\' => out.push('\\'),
                    b'/' => out.push('/'),
                    b'b' => out.push('\u{8}'),
                    b'f' => out.push('\u{c}'),
                    b'n' => out.push('\n'),
                    b'r' => out.push('\r'),
                    b't' => out.push('\t'),
                    b'u' => {
                        let u = hex4(b, i)?;
                        i += 4;
                        if (0xD800..0xDC00).contains(&u) {
                            if b.get(i) == Some(&b'\\') && b.get(i + 1) == Some(&b'u') {
                                if let Some(lo) = hex4(b, i + 2) {
                                    if (0xDC00..0xE000).contains(&lo) {
                                        let c = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                                        out.push(char::from_u32(c).unwrap_or('\u{fffd}'));
                                        i += 6;
                                        continue;
                                    }
                                }
                            }
                            out.push('\u{fffd}');
                        } else {
                            out.push(char::from_u32(u).unwrap_or('\u{fffd}'));
                        }
                    }
                    _ => return None,
                }
            }
            _ => {
                // Copy one UTF-8 character.
                let ch = s.get(i..)?.chars().next()?;
                out.push(ch);
                i += ch.len_utf8();
            }
        }
    }
}

fn json_number(b: &[u8], mut p: usize) -> Option<usize> {
    if b.get(p) == Some(&b'-') {
        p += 1;
    }
    match b.get(p) {
        Some(b'0') => p += 1,
        Some(b'1'..=b'9') => {
            while b.get(p).is_some_and(u8::is_ascii_digit) {
                p += 1;
            }
        }
        _ => return None,
    }
    if b.get(p) == Some(&b'.') {
        p += 1;
        if !b.get(p).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        while b.get(p).is_some_and(u8::is_ascii_digit) {
            p += 1;
        }
    }
    if matches!(b.get(p), Some(b'e' | b'E')) {
        p += 1;
        if matches!(b.get(p), Some(b'+' | b'-')) {
            p += 1;
        }
        if !b.get(p).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        while b.get(p).is_some_and(u8::is_ascii_digit) {
            p += 1;
        }
    }
    Some(p)
}

/// Parses `s` as a JSON document that must be an array; reports its string
/// elements, or whether it is valid JSON with a non-string element, or invalid.
/// Iterative: nesting depth costs no stack.
fn parse_json_array(s: &str) -> Json {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Value,
        ValueOrEnd,
        Key,
        KeyOrEnd,
        After,
    }
    let b = s.as_bytes();
    let start = skip_json_ws(b, 0);
    if b.get(start) != Some(&b'[') {
        return Json::Invalid;
    }
    let mut stack: Vec<u8> = Vec::new();
    let mut strings = Vec::new();
    let mut non_string = false;
    let mut state = State::Value;
    let mut p = start;
    loop {
        p = skip_json_ws(b, p);
        match state {
            State::ValueOrEnd | State::KeyOrEnd => {
                let close = if state == State::ValueOrEnd {
                    b']'
                } else {
                    b'}'
                };
                if b.get(p) == Some(&close) {
                    stack.pop();
                    p += 1;
                    state = State::After;
                } else {
                    state = if state == State::ValueOrEnd {
                        State::Value
                    } else {
                        State::Key
                    };
                }
            }
            State::Key => {
                if b.get(p) != Some(&b'"') {
                    return Json::Invalid;
                }
                let Some((_, np)) = json_string(s, p) else {
                    return Json::Invalid;
                };
                p = skip_json_ws(b, np);
                if b.get(p) != Some(&b':') {
                    return Json::Invalid;
                }
                p += 1;
                state = State::Value;
            }
            State::Value => {
                let top_level_element = stack.len() == 1;
                let Some(&c) = b.get(p) else {
                    return Json::Invalid;
                };
                if top_level_element && c != b'"' {
                    non_string = true;
                }
                match c {
                    b'[' | b'{' => {
                        if stack.len() >= MAX_JSON_DEPTH {
                            return Json::Invalid;
                        }
                        stack.push(c);
                        p += 1;
                        state = if c == b'[' {
                            State::ValueOrEnd
                        } else {
                            State::KeyOrEnd
                        };
                    }
                    b'"' => {
                        let Some((v, np)) = json_string(s, p) else {
                            return Json::Invalid;
                        };
                        if top_level_element {
                            strings.push(v);
                        }
                        p = np;
                        state = State::After;
                    }
                    b't' | b'f' | b'n' => {
                        let word: &[u8] = match c {
                            b't' => b"true",
                            b'f' => b"false",
                            _ => b"null",
                        };
                        if b.get(p..p + word.len()) != Some(word) {
                            return Json::Invalid;
                        }
                        p += word.len();
                        state = State::After;
                    }
                    b'-' | b'0'..=b'9' => {
                        let Some(np) = json_number(b, p) else {
                            return Json::Invalid;
                        };
                        p = np;
                        state = State::After;
                    }
                    _ => return Json::Invalid,
                }
            }
            State::After => {
                let Some(&top) = stack.last() else {
                    return if p == b.len() {
                        if non_string {
                            Json::NotStringArray
                        } else {
                            Json::Strings(strings)
                        }
                    } else {
                        Json::Invalid
                    };
                };
                match b.get(p) {
                    Some(b',') => {
                        p += 1;
                        state = if top == b'[' {
                            State::Value
                        } else {
                            State::Key
                        };
                    }
                    Some(b']') if top == b'[' => {
                        stack.pop();
                        p += 1;
                    }
                    Some(b'}') if top == b'{' => {
                        stack.pop();
                        p += 1;
                    }
                    _ => return Json::Invalid,
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Heredoc detection: BuildKit runs its shell lexer over the line with an empty
// environment, keeping unset variables, quotes and escapes as written, and
// looks for words shaped like `[n]<<[-]WORD`.

struct HeredocLexer {
    chars: Vec<(usize, char)>,
    pos: usize,
    raw_quotes: bool,
    raw_escapes: bool,
    depth: usize,
}

/// Bound on `${a:-${b:-...}}` nesting while looking for heredoc markers; deeper
/// input is treated like a lexing error (no heredocs), never a stack overflow.
const MAX_LEX_DEPTH: usize = 64;

/// BuildKit always lexes heredoc markers with `\`, whatever `# escape=` says.
const HEREDOC_ESCAPE: char = '\\';

#[derive(Default)]
struct Words {
    buf: String,
    start: usize,
    words: Vec<(String, usize)>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char, off: usize) {
        if is_space(ch) {
            if self.in_word && !self.buf.is_empty() {
                self.words.push((std::mem::take(&mut self.buf), self.start));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch, off);
        }
    }

    fn add_raw_char(&mut self, ch: char, off: usize) {
        if self.buf.is_empty() {
            self.start = off;
        }
        self.buf.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str, off: usize) {
        for ch in s.chars() {
            self.add_char(ch, off);
        }
    }

    fn add_raw_string(&mut self, s: &str, off: usize) {
        if self.buf.is_empty() {
            self.start = off;
        }
        self.buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<(String, usize)> {
        if !self.buf.is_empty() {
            self.words.push((std::mem::take(&mut self.buf), self.start));
        }
        self.words
    }
}

impl HeredocLexer {
    fn new(s: &str, raw_quotes: bool, raw_escapes: bool) -> Self {
        HeredocLexer {
            chars: s.char_indices().collect(),
            pos: 0,
            raw_quotes,
            raw_escapes,
            depth: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).map(|&(_, c)| c)
    }

    fn offset(&self) -> usize {
        self.chars.get(self.pos).map_or(usize::MAX, |&(o, _)| o)
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn words(mut self) -> Result<Vec<(String, usize)>, String> {
        let raw = self.raw_escapes;
        self.stop_on(None, raw).map(|(_, w)| w)
    }

    fn stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<(String, usize)>), String> {
        if self.depth >= MAX_LEX_DEPTH {
            return Err("substitution nested too deeply".to_string());
        }
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        self.depth += 1;
        let r = self.stop_on_inner(stop);
        self.depth -= 1;
        self.raw_escapes = saved;
        r
    }

    fn stop_on_inner(
        &mut self,
        stop: Option<char>,
    ) -> Result<(String, Vec<(String, usize)>), String> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            let off = self.offset();
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let tmp = self.dollar()?;
                    result.push_str(&tmp);
                    words.add_string(&tmp, off);
                }
                '<' => {
                    self.next();
                    let mut tmp = String::from("<");
                    if self.peek() == Some('<') {
                        self.next();
                        tmp.push('<');
                        while let Some(c @ ('\t' | '\r' | ' ')) = self.peek() {
                            tmp.push(c);
                            self.next();
                        }
                    }
                    result.push_str(&tmp);
                    words.add_raw_string(&tmp, off);
                }
                '\'' => {
                    let tmp = self.single_quote()?;
                    result.push_str(&tmp);
                    words.add_raw_string(&tmp, off);
                }
                '"' => {
                    let tmp = self.double_quote()?;
                    result.push_str(&tmp);
                    words.add_raw_string(&tmp, off);
                }
                _ => {
                    self.next();
                    if ch == HEREDOC_ESCAPE {
                        if self.raw_escapes {
                            words.add_raw_char(ch, off);
                            result.push(ch);
                        }
                        let Some(c) = self.next() else { break };
                        words.add_raw_char(c, off);
                        result.push(c);
                    } else {
                        words.add_char(ch, off);
                        result.push(ch);
                    }
                }
            }
        }
        if let Some(stop) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        Ok((result, words.finish()))
    }

    fn single_quote(&mut self) -> Result<String, String> {
        let mut out = String::new();
        let open = self.next().unwrap_or('\'');
        if self.raw_quotes {
            out.push(open);
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .to_string(),
                    )
                }
                Some('\'') => {
                    if self.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, String> {
        let mut out = String::new();
        let open = self.next().unwrap_or('"');
        if self.raw_quotes {
            out.push(open);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .to_string(),
                    )
                }
                Some('"') => {
                    self.next();
                    if self.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    out.push_str(&v);
                }
                Some(_) => {
                    let Some(mut ch) = self.next() else { continue };
                    if ch == HEREDOC_ESCAPE {
                        if self.raw_escapes {
                            out.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some('"' | '$' | HEREDOC_ESCAPE) => {
                                ch = self.next().unwrap_or(ch);
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_numeric() {
                while let Some(d) = self.peek().filter(|c| c.is_numeric()) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphabetic() && !ch.is_numeric() && ch != '_' {
                break;
            }
            name.push(ch);
            self.next();
        }
        name
    }

    /// `$...` with every variable unset and kept as written.
    fn dollar(&mut self) -> Result<String, String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            return Ok(format!("${name}"));
        }
        self.next();
        match self.peek() {
            None => return Err("syntax error: missing '}'".to_string()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".to_string()),
            Some(_) => {}
        }
        let name = self.name();
        let ch = self.next();
        match ch {
            Some('}') => Ok(format!("${{{name}}}")),
            Some(':' | '+' | '-' | '?' | '#' | '%') => {
                let mut chs = String::new();
                let mut modifier = ch;
                if ch == Some(':') {
                    chs.push(':');
                    modifier = self.next();
                    chs.push(modifier.unwrap_or('\u{fffd}'));
                    if matches!(modifier, Some('#' | '%')) {
                        return Err(format!("unsupported modifier ({chs}) in substitution"));
                    }
                } else if let Some(c) = ch {
                    chs.push(c);
                }
                let raw = matches!(modifier, Some('#' | '%'));
                let (word, _) = self.stop_on(Some('}'), raw).map_err(|e| {
                    if self.peek().is_none() {
                        "syntax error: missing '}'".to_string()
                    } else {
                        e
                    }
                })?;
                Ok(format!("${{{name}{chs}{word}}}"))
            }
            Some('/') => {
                if self.peek() == Some('/') {
                    self.next();
                }
                let (pattern, _) = self.stop_on(Some('/'), true).map_err(|e| {
                    if self.peek().is_none() {
                        "syntax error: missing '/' in ${}".to_string()
                    } else {
                        e
                    }
                })?;
                let (replacement, _) = self.stop_on(Some('}'), true).map_err(|e| {
                    if self.peek().is_none() {
                        "syntax error: missing '}'".to_string()
                    } else {
                        e
                    }
                })?;
                Ok(format!("${{{name}/{pattern}/{replacement}}}"))
            }
            other => Err(format!(
                "unsupported modifier ({}) in substitution",
                other.map(String::from).unwrap_or_default()
            )),
        }
    }
}

/// BuildKit's `ParseHeredoc`: `Ok(None)` when `src` is not a heredoc marker.
fn parse_heredoc_word(src: &str) -> Result<Option<Heredoc>, String> {
    let digits_end = src
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit())
        .map_or(src.len(), |(i, _)| i);
    let digits = src.get(..digits_end).unwrap_or_default();
    let Some(after) = src.get(digits_end..).and_then(|s| s.strip_prefix("<<")) else {
        return Ok(None);
    };
    let (chomp, after) = match after.strip_prefix('-') {
        Some(a) => (true, a),
        None => (false, after),
    };
    let rest = after.trim_start_matches(is_re_s);
    if rest.contains('<') || rest.is_empty() {
        return Ok(None);
    }
    let fd = digits.parse::<u32>().unwrap_or(0);
    let words = HeredocLexer::new(rest, false, false).words()?;
    let [(name, _)] = words.as_slice() else {
        return Ok(None);
    };
    let raw = HeredocLexer::new(rest, true, false).words()?;
    let [(raw_name, _)] = raw.as_slice() else {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
    };
    let quotes = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    Ok(Some(Heredoc {
        name: name.clone(),
        fd,
        expand: quotes(name) == quotes(raw_name),
        chomp,
        content: String::new(),
    }))
}

/// BuildKit's `heredocsFromLine`: the heredoc markers of a logical line, each
/// with the byte offset of its word.
fn heredocs_from_line(line: &str) -> Result<Vec<(Heredoc, usize)>, LineError> {
    let Ok(words) = HeredocLexer::new(line, true, true).words() else {
        return Ok(Vec::new());
    };
    let mut docs = Vec::new();
    for (word, off) in words {
        match parse_heredoc_word(&word) {
            Ok(Some(doc)) => docs.push((doc, off)),
            Ok(None) => {}
            Err(message) => {
                return Err(LineError::new(off, message).expected("a heredoc marker like <<EOF"))
            }
        }
    }
    Ok(docs)
}

// ---------------------------------------------------------------------------
// Go's strconv.Quote, for the conformance dump.

/// Approximates Go's `unicode.IsPrint`: graphic characters and the ASCII space.
fn go_is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    let format_or_private = matches!(
        u,
        0xAD | 0x600..=0x605
            | 0x61C
            | 0x6DD
            | 0x70F
            | 0x890..=0x891
            | 0x8E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
            | 0xE000..=0xF8FF
            | 0xF0000..=0x10FFFF
            | 0xFDD0..=0xFDEF
    );
    !format_or_private && (u & 0xFFFE) != 0xFFFE
}

/// Go's `strconv.Quote`.
pub(crate) fn go_quote(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if go_is_print(c) => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_go() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("\u{0}\u{7f}"), r#""\x00\x7f""#);
        assert_eq!(go_quote("♥ \u{a0}"), "\"♥ \\u00a0\"");
        assert_eq!(go_quote("\u{e0001}"), "\"\\U000e0001\"");
    }

    #[test]
    fn json_arrays() {
        assert!(matches!(parse_json_array("[]"), Json::Strings(v) if v.is_empty()));
        assert!(
            matches!(parse_json_array(r#"["a", "\u00e9\ud83d\ude00"]"#), Json::Strings(v) if v == ["a", "é😀"])
        );
        assert!(matches!(
            parse_json_array(r#"["a", 1]"#),
            Json::NotStringArray
        ));
        assert!(matches!(
            parse_json_array(r#"["a", {"k": [1, {"z": null}]}]"#),
            Json::NotStringArray
        ));
        assert!(matches!(parse_json_array(r#"["a", ]"#), Json::Invalid));
        assert!(matches!(parse_json_array(r#"["a"] x"#), Json::Invalid));
        assert!(matches!(parse_json_array("[\"a\tb\"]"), Json::Invalid));
        assert!(
            matches!(parse_json_array(r#"["\ud800x"]"#), Json::Strings(v) if v == ["\u{fffd}x"])
        );
        let deep = "[".repeat(20_000);
        assert!(matches!(parse_json_array(&deep), Json::Invalid));
        let ok_deep = format!("[{}{}]", "[".repeat(100), "]".repeat(100));
        assert!(matches!(parse_json_array(&ok_deep), Json::NotStringArray));
    }

    #[test]
    fn directive_regex() {
        assert_eq!(match_directive("escape=`"), Some(("escape", "`")));
        assert_eq!(match_directive("escape = ` "), Some(("escape", "`")));
        assert_eq!(match_directive("syntax=a b  "), Some(("syntax", "a b")));
        assert_eq!(match_directive("escape=  "), Some(("escape", " ")));
        assert_eq!(match_directive("escape="), None);
        assert_eq!(match_directive("1x=y"), None);
        assert_eq!(match_directive("a-b=c"), None);
    }

    #[test]
    fn continuation() {
        assert_eq!(trim_continuation("a \\", '\\'), ("a ", false));
        assert_eq!(trim_continuation("a\\ \t", '\\'), ("a", false));
        assert_eq!(trim_continuation("\\", '\\'), ("", false));
        assert_eq!(trim_continuation("a\\\\", '\\'), ("a\\\\", true));
        assert_eq!(trim_continuation("a`", '`'), ("a", false));
        assert_eq!(trim_continuation("a\\", '`'), ("a\\", true));
    }
}
