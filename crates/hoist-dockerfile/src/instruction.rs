//! The typed instruction model: [`Instruction`] values built from the syntax
//! tree of [`crate::parser`], and [`Dockerfile`], the file split into global
//! `ARG`s and build [`Stage`]s.
//!
//! # Design
//!
//! Each [`parser::Node`] becomes one [`Instruction`] variant holding a struct with
//! the instruction's meaning (`RUN --mount` options, `COPY --from`, healthcheck
//! durations, ...) and its [`Location`] (line range and logical source line).
//! Checks follow BuildKit's `frontend/dockerfile/instructions` package, with its
//! error messages, plus a column, the offending line and, where it helps, what
//! would have been accepted and a "did you mean" hint.
//!
//! Words are kept **unexpanded**: `$VAR` in a `COPY` source or a `WORKDIR` is
//! expanded by the builder with the stage environment at build time, through
//! [`crate::expand::Lexer`]. Values that must be understood now (flag syntax,
//! healthcheck durations, mount options without variables) are parsed now; a
//! `--mount` whose option values need expansion is checked for known keys and
//! kept as [`RunMount::spec`], to be finished by [`RunMount::resolve`].
//!
//! [`Dockerfile::from_ast`] runs every instruction through the typed pass and
//! reports every bad instruction, not only the first.
//!
//! # What it does not do
//!
//! - No expansion of words, no file system access, no image resolution.
//! - No lint rules (casing, deprecated forms) beyond a duplicate stage name
//!   warning.
//! - Differences from BuildKit: unknown flags are refused on every instruction
//!   (BuildKit ignores flags on `ARG` and `STOPSIGNAL`); `RUN` without a command is
//!   refused here rather than failing at run time; `ONBUILD` triggers are checked
//!   when the parent image is built, not only when a child uses it; `RUN --device`
//!   (CDI devices) is not supported; `EXPOSE` accepts `port`, `start-end` and an
//!   optional `/tcp`, `/udp` or `/sctp` only.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use crate::expand::{ExpandError, Lexer, VarLookup};
use crate::parser::{
    self, heredoc_marker, Ast, Directives, Heredoc, Node, ParseError, ParseErrors, Position,
    Warning,
};

/// Every instruction keyword, upper case, for messages and suggestions.
const INSTRUCTIONS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Where an instruction comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// First line (1-based).
    pub start_line: usize,
    /// Last line, continuation and heredoc lines included.
    pub end_line: usize,
    /// The logical source line (continuations joined), for progress output.
    pub original: String,
}

impl Location {
    fn of(node: &Node) -> Self {
        Location {
            start_line: node.start_line,
            end_line: node.end_line,
            original: node.original.clone(),
        }
    }
}

/// A command in shell form (run through the stage's `SHELL`) or exec form (a
/// JSON array, run directly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// `RUN echo hi`: the text as written, unexpanded.
    Shell(String),
    /// `RUN ["echo", "hi"]`: the decoded strings.
    Exec(Vec<String>),
}

impl CommandLine {
    fn from_node(node: &Node) -> Self {
        if node.json {
            CommandLine::Exec(node.args.clone())
        } else {
            CommandLine::Shell(node.args.join(" "))
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            CommandLine::Shell(s) => s.is_empty(),
            CommandLine::Exec(v) => v.is_empty(),
        }
    }
}

/// `FROM [--platform=...] base [AS name]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromInstruction {
    /// The base image or stage name, unexpanded (may use global `ARG`s).
    pub base: String,
    /// The stage name, lower-cased.
    pub name: Option<String>,
    /// `--platform`, unexpanded.
    pub platform: Option<String>,
    /// Source location.
    pub location: Location,
}

/// How a `RUN` reaches the network (`--network`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    /// The builder's default network.
    Default,
    /// No network at all.
    None,
    /// The host's network namespace (needs an entitlement).
    Host,
}

/// `RUN --security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityMode {
    /// The default confinement.
    Sandbox,
    /// Privileged (needs an entitlement).
    Insecure,
}

/// `--mount=type=...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    /// A directory from the build context or another stage (default).
    Bind,
    /// A persistent cache directory.
    Cache,
    /// A temporary in-memory file system.
    Tmpfs,
    /// A build secret as a file (or environment variable).
    Secret,
    /// An SSH agent socket.
    Ssh,
}

impl MountType {
    /// The name used in Dockerfiles.
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

impl fmt::Display for MountType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How concurrent builds share a cache mount (`sharing=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// Concurrent writers share the directory (default).
    Shared,
    /// Each concurrent writer gets its own copy.
    Private,
    /// Writers wait for each other.
    Locked,
}

/// One fully understood `RUN --mount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `type=` (bind when absent).
    pub kind: MountType,
    /// `from=`: a stage name or index, or an image.
    pub from: Option<String>,
    /// `source=`/`src=`.
    pub source: Option<String>,
    /// `target=`/`dst=`/`destination=`.
    pub target: Option<String>,
    /// Read-only: `ro`/`readonly`/`rw`/`readwrite`, else read-write for cache and
    /// tmpfs and read-only for the others.
    pub readonly: bool,
    /// `size=` in bytes (tmpfs only).
    pub size: Option<u64>,
    /// `id=` (cache id, secret id or SSH id).
    pub id: Option<String>,
    /// `sharing=` (cache only).
    pub sharing: Option<Sharing>,
    /// `required` (secret and ssh only).
    pub required: bool,
    /// `env=`: expose a secret as this environment variable.
    pub env: Option<String>,
    /// `mode=` in octal (secret, ssh and cache only).
    pub mode: Option<u32>,
    /// `uid=` (secret, ssh and cache only).
    pub uid: Option<u32>,
    /// `gid=` (secret, ssh and cache only).
    pub gid: Option<u32>,
}

/// Why a `--mount` value is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MountError {
    /// What is wrong.
    pub message: String,
    /// What would have been accepted.
    pub expected: Option<String>,
}

impl MountError {
    fn new(message: impl Into<String>) -> Self {
        MountError {
            message: message.into(),
            expected: None,
        }
    }

    fn expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }
}

impl From<ExpandError> for MountError {
    fn from(e: ExpandError) -> Self {
        MountError::new(e.to_string())
    }
}

/// A `RUN --mount` flag: its text and, when it needs no variable expansion,
/// its meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMount {
    /// The flag value as written (`type=cache,target=/root/.cache`).
    pub spec: String,
    /// The parsed mount; `None` when an option value needs expansion with the
    /// build environment first (see [`RunMount::resolve`]).
    pub mount: Option<Mount>,
}

impl RunMount {
    /// The mount with every option value expanded in `env` (BuildKit expands each
    /// value separately, after splitting the options).
    pub fn resolve(&self, lexer: &Lexer, env: &dyn VarLookup) -> Result<Mount, MountError> {
        if let Some(m) = &self.mount {
            return Ok(m.clone());
        }
        let mut expand = |v: &str| -> Result<Option<String>, MountError> {
            Ok(Some(lexer.process_word(v, env)?))
        };
        parse_mount(&self.spec, &mut expand)?.ok_or_else(|| MountError::new("mount not resolved"))
    }
}

impl Mount {
    /// Parses a `--mount` value taking option values literally.
    pub fn parse(spec: &str) -> Result<Mount, MountError> {
        let mut literal =
            |v: &str| -> Result<Option<String>, MountError> { Ok(Some(v.to_string())) };
        parse_mount(spec, &mut literal)?.ok_or_else(|| MountError::new("mount not resolved"))
    }
}

/// `RUN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInstruction {
    /// The command (for `RUN <<EOF` the shell form text `<<EOF`).
    pub command: CommandLine,
    /// Heredocs: scripts fed to the command, as in a shell.
    pub heredocs: Vec<Heredoc>,
    /// `--mount` flags, in order.
    pub mounts: Vec<RunMount>,
    /// `--network`.
    pub network: Option<NetworkMode>,
    /// `--security`.
    pub security: Option<SecurityMode>,
    /// Source location.
    pub location: Location,
}

/// A file inlined with a heredoc as a `COPY`/`ADD` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineFile {
    /// The heredoc name, used as the file name.
    pub name: String,
    /// The content, with leading tabs already stripped for `<<-`.
    pub content: String,
    /// Whether variables in the content are expanded (unquoted delimiter).
    pub expand: bool,
}

/// One `COPY`/`ADD` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A path, pattern or (ADD) URL, unexpanded.
    Path(String),
    /// Inline content from a heredoc.
    Inline(InlineFile),
}

/// `COPY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyInstruction {
    /// Sources in order.
    pub sources: Vec<Source>,
    /// The destination, unexpanded.
    pub dest: String,
    /// `--from`: stage name, stage index or image.
    pub from: Option<String>,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--exclude` patterns.
    pub excludes: Vec<String>,
    /// `--parents`.
    pub parents: bool,
    /// Source location.
    pub location: Location,
}

/// `ADD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddInstruction {
    /// Sources in order (paths, URLs, Git URLs, heredocs).
    pub sources: Vec<Source>,
    /// The destination, unexpanded.
    pub dest: String,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--exclude` patterns.
    pub excludes: Vec<String>,
    /// `--checksum` (digest of a URL source, or commit of a Git source).
    pub checksum: Option<String>,
    /// `--keep-git-dir`, when given.
    pub keep_git_dir: Option<bool>,
    /// `--unpack`, when given.
    pub unpack: Option<bool>,
    /// Source location.
    pub location: Location,
}

/// One `ARG name[=default]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDef {
    /// The name.
    pub name: String,
    /// The default, unexpanded (quotes kept).
    pub default: Option<String>,
}

/// `ARG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgInstruction {
    /// The declared arguments, in order.
    pub args: Vec<ArgDef>,
    /// Source location.
    pub location: Location,
}

/// A `key=value` pair of `ENV` or `LABEL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key, unexpanded.
    pub key: String,
    /// The value, unexpanded (quotes kept).
    pub value: String,
    /// True for the legacy `ENV key value` form (no `=`).
    pub legacy: bool,
}

/// `ENV`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvInstruction {
    /// The variables, in order.
    pub vars: Vec<KeyValue>,
    /// Source location.
    pub location: Location,
}

/// `LABEL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelInstruction {
    /// The labels, in order.
    pub labels: Vec<KeyValue>,
    /// Source location.
    pub location: Location,
}

/// The protocol of an exposed port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// TCP (default).
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

/// A port or port range with its protocol (`8080`, `53/udp`, `8000-8010/tcp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExposedPort {
    /// First port.
    pub start: u16,
    /// Last port (equal to `start` for a single port).
    pub end: u16,
    /// Protocol.
    pub protocol: Protocol,
}

impl ExposedPort {
    /// Parses `port[-end][/proto]` (an expanded `EXPOSE` word).
    pub fn parse(s: &str) -> Result<ExposedPort, String> {
        let (ports, proto) = s.split_once('/').unwrap_or((s, "tcp"));
        let protocol = match proto.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "sctp" => Protocol::Sctp,
            _ => return Err(format!("invalid protocol {proto:?} in port {s:?}")),
        };
        let port = |p: &str| -> Result<u16, String> {
            p.parse::<u16>()
                .map_err(|_| format!("invalid port {p:?} in {s:?}"))
        };
        let (start, end) = match ports.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => {
                let p = port(ports)?;
                (p, p)
            }
        };
        if end < start {
            return Err(format!("invalid port range {ports:?}: end before start"));
        }
        Ok(ExposedPort {
            start,
            end,
            protocol,
        })
    }
}

/// `EXPOSE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExposeInstruction {
    /// The words as written (checked with [`ExposedPort::parse`] when they use no
    /// variable).
    pub ports: Vec<String>,
    /// Source location.
    pub location: Location,
}

/// `USER`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInstruction {
    /// `user[:group]`, unexpanded.
    pub user: String,
    /// Source location.
    pub location: Location,
}

/// `WORKDIR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkdirInstruction {
    /// The path, unexpanded.
    pub path: String,
    /// Source location.
    pub location: Location,
}

/// `VOLUME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInstruction {
    /// The paths, unexpanded.
    pub paths: Vec<String>,
    /// Source location.
    pub location: Location,
}

/// `CMD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdInstruction {
    /// The command (`Exec(vec![])` for `CMD []`).
    pub command: CommandLine,
    /// Source location.
    pub location: Location,
}

/// `ENTRYPOINT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntrypointInstruction {
    /// The command (`Exec(vec![])` for `ENTRYPOINT []`, which clears it).
    pub command: CommandLine,
    /// Source location.
    pub location: Location,
}

/// `SHELL` (JSON form only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellInstruction {
    /// The shell and its arguments.
    pub shell: Vec<String>,
    /// Source location.
    pub location: Location,
}

/// `STOPSIGNAL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopSignalInstruction {
    /// The signal, unexpanded (`SIGTERM`, `9`, `$SIG`).
    pub signal: String,
    /// Source location.
    pub location: Location,
}

/// The checking part of `HEALTHCHECK CMD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCmd {
    /// The probe (`CMD-SHELL` semantics for the shell form).
    pub test: CommandLine,
    /// `--interval` (`None` when absent or zero: inherit).
    pub interval: Option<Duration>,
    /// `--timeout`.
    pub timeout: Option<Duration>,
    /// `--start-period`.
    pub start_period: Option<Duration>,
    /// `--start-interval`.
    pub start_interval: Option<Duration>,
    /// `--retries` (`None` when absent or zero: inherit).
    pub retries: Option<u32>,
}

/// What a `HEALTHCHECK` sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any inherited check.
    None,
    /// `HEALTHCHECK [flags] CMD ...`.
    Cmd(HealthCmd),
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthcheckInstruction {
    /// The check.
    pub check: Healthcheck,
    /// Source location.
    pub location: Location,
}

/// `ONBUILD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnbuildInstruction {
    /// The trigger, parsed.
    pub trigger: Box<Instruction>,
    /// The trigger text stored in the image config (heredoc bodies appended, as
    /// BuildKit does), re-parsed when a child image builds from this one.
    pub expression: String,
    /// Source location.
    pub location: Location,
}

/// `MAINTAINER` (deprecated; a `LABEL maintainer=...` is preferred).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintainerInstruction {
    /// The text.
    pub name: String,
    /// Source location.
    pub location: Location,
}

/// One typed Dockerfile instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// `FROM`.
    From(FromInstruction),
    /// `RUN`.
    Run(RunInstruction),
    /// `COPY`.
    Copy(CopyInstruction),
    /// `ADD`.
    Add(AddInstruction),
    /// `ARG`.
    Arg(ArgInstruction),
    /// `ENV`.
    Env(EnvInstruction),
    /// `LABEL`.
    Label(LabelInstruction),
    /// `EXPOSE`.
    Expose(ExposeInstruction),
    /// `USER`.
    User(UserInstruction),
    /// `WORKDIR`.
    Workdir(WorkdirInstruction),
    /// `VOLUME`.
    Volume(VolumeInstruction),
    /// `CMD`.
    Cmd(CmdInstruction),
    /// `ENTRYPOINT`.
    Entrypoint(EntrypointInstruction),
    /// `SHELL`.
    Shell(ShellInstruction),
    /// `STOPSIGNAL`.
    StopSignal(StopSignalInstruction),
    /// `HEALTHCHECK`.
    Healthcheck(HealthcheckInstruction),
    /// `ONBUILD`.
    Onbuild(OnbuildInstruction),
    /// `MAINTAINER`.
    Maintainer(MaintainerInstruction),
}

impl Instruction {
    /// The keyword, upper case (`RUN`).
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::From(_) => "FROM",
            Instruction::Run(_) => "RUN",
            Instruction::Copy(_) => "COPY",
            Instruction::Add(_) => "ADD",
            Instruction::Arg(_) => "ARG",
            Instruction::Env(_) => "ENV",
            Instruction::Label(_) => "LABEL",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::User(_) => "USER",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::Volume(_) => "VOLUME",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Shell(_) => "SHELL",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Onbuild(_) => "ONBUILD",
            Instruction::Maintainer(_) => "MAINTAINER",
        }
    }

    /// Where the instruction is in the source.
    pub fn location(&self) -> &Location {
        match self {
            Instruction::From(i) => &i.location,
            Instruction::Run(i) => &i.location,
            Instruction::Copy(i) => &i.location,
            Instruction::Add(i) => &i.location,
            Instruction::Arg(i) => &i.location,
            Instruction::Env(i) => &i.location,
            Instruction::Label(i) => &i.location,
            Instruction::Expose(i) => &i.location,
            Instruction::User(i) => &i.location,
            Instruction::Workdir(i) => &i.location,
            Instruction::Volume(i) => &i.location,
            Instruction::Cmd(i) => &i.location,
            Instruction::Entrypoint(i) => &i.location,
            Instruction::Shell(i) => &i.location,
            Instruction::StopSignal(i) => &i.location,
            Instruction::Healthcheck(i) => &i.location,
            Instruction::Onbuild(i) => &i.location,
            Instruction::Maintainer(i) => &i.location,
        }
    }

    /// Builds the typed instruction for one syntax node. `escape` is the file's
    /// escape character ([`Ast::escape`]).
    ///
    /// The error's `source_line` is the node's logical line; [`Dockerfile::from_ast`]
    /// replaces it with the exact physical line.
    pub fn from_node(node: &Node, escape: char) -> Result<Instruction, ParseError> {
        let cx = Cx { node, escape };
        cx.instruction()
    }
}

// ---------------------------------------------------------------------------
// Flags.

#[derive(Clone, Copy, PartialEq)]
enum FlagKind {
    Bool,
    Str,
    Strs,
}

#[derive(Default)]
struct FlagValues {
    values: Vec<(&'static str, Vec<String>, usize)>,
}

impl FlagValues {
    fn entry(&self, name: &str) -> Option<&(&'static str, Vec<String>, usize)> {
        self.values.iter().find(|(n, _, _)| *n == name)
    }

    fn string(&self, name: &str) -> Option<String> {
        self.entry(name).and_then(|(_, v, _)| v.last().cloned())
    }

    fn strings(&self, name: &str) -> Vec<String> {
        self.entry(name)
            .map(|(_, v, _)| v.clone())
            .unwrap_or_default()
    }

    fn bool(&self, name: &str) -> Option<bool> {
        self.string(name).map(|v| v == "true")
    }

    /// Index in `node.flags` of the (last) use of `name`, for error positions.
    fn index(&self, name: &str) -> Option<usize> {
        self.entry(name).map(|(_, _, i)| *i)
    }
}

/// Levenshtein distance, for "did you mean" hints.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

fn suggest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    if word.chars().count() > 64 {
        return None;
    }
    let lower = word.to_lowercase();
    let limit = if lower.chars().count() < 3 { 1 } else { 2 };
    candidates
        .into_iter()
        .map(|c| (distance(&lower, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

struct Cx<'n> {
    node: &'n Node,
    escape: char,
}

impl Cx<'_> {
    fn err_at(&self, pos: Position, message: impl Into<String>) -> ParseError {
        ParseError {
            file: None,
            line: pos.line,
            column: pos.column,
            end_line: self.node.end_line.max(pos.line),
            source_line: self.node.original.clone(),
            message: message.into(),
            expected: None,
        }
    }

    fn err_args(&self, message: impl Into<String>) -> ParseError {
        self.err_at(self.node.args_pos, message)
    }

    fn err_flag(&self, index: Option<usize>, message: impl Into<String>) -> ParseError {
        let pos = index
            .and_then(|i| self.node.flags.get(i))
            .map_or(self.node.args_pos, |f| f.pos);
        self.err_at(pos, message)
    }

    fn location(&self) -> Location {
        Location::of(self.node)
    }

    fn keyword_upper(&self) -> String {
        self.node.keyword.to_uppercase()
    }

    /// BuildKit's `BFlags.Parse` against the flags an instruction accepts.
    fn flags(&self, specs: &[(&'static str, FlagKind)]) -> Result<FlagValues, ParseError> {
        let mut out = FlagValues::default();
        let names = || specs.iter().map(|(n, _)| *n);
        let expected = || {
            if specs.is_empty() {
                format!("no flags on {}", self.keyword_upper())
            } else {
                let list: Vec<String> = names().map(|n| format!("--{n}")).collect();
                format!("one of {}", list.join(", "))
            }
        };
        for (i, flag) in self.node.flags.iter().enumerate() {
            let text = flag.text.as_str();
            let (flag_name, value) = match text.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (text, None),
            };
            let name = flag_name.strip_prefix("--").unwrap_or(flag_name);
            let Some(&(spec_name, kind)) = specs.iter().find(|(n, _)| *n == name) else {
                let mut message = format!("unknown flag: {flag_name}");
                if let Some(s) = suggest(name, names()) {
                    message.push_str(&format!(" (did you mean --{s}?)"));
                }
                let mut e = self.err_at(flag.pos, message);
                e.expected = Some(expected());
                return Err(e);
            };
            let existing = out.values.iter().position(|(n, _, _)| *n == spec_name);
            if existing.is_some() && kind != FlagKind::Strs {
                return Err(self.err_at(flag.pos, format!("duplicate flag specified: {flag_name}")));
            }
            let v = match kind {
                FlagKind::Bool => {
                    if value == Some("") {
                        return Err(
                            self.err_at(flag.pos, format!("missing a value on flag: {flag_name}"))
                        );
                    }
                    match value.map(str::to_lowercase).as_deref() {
                        None | Some("true") => "true".to_string(),
                        Some("false") => "false".to_string(),
                        Some(_) => {
                            let mut e = self.err_at(
                                flag.pos,
                                format!(
                                    "expecting boolean value for flag {flag_name}, not: {}",
                                    value.unwrap_or_default()
                                ),
                            );
                            e.expected = Some("true or false".to_string());
                            return Err(e);
                        }
                    }
                }
                FlagKind::Str | FlagKind::Strs => match value {
                    Some(v) => v.to_string(),
                    None => {
                        let mut e =
                            self.err_at(flag.pos, format!("missing a value on flag: {flag_name}"));
                        e.expected = Some(format!("{flag_name}=<value>"));
                        return Err(e);
                    }
                },
            };
            match existing.and_then(|p| out.values.get_mut(p)) {
                Some(entry) => {
                    entry.1.push(v);
                    entry.2 = i;
                }
                None => out.values.push((spec_name, vec![v], i)),
            }
        }
        Ok(out)
    }

    fn no_flags(&self) -> Result<(), ParseError> {
        self.flags(&[]).map(|_| ())
    }

    fn at_least_one(&self) -> Result<(), ParseError> {
        if self.node.args.is_empty() {
            return Err(self.err_args(format!(
                "{} requires at least one argument",
                self.keyword_upper()
            )));
        }
        Ok(())
    }

    fn exactly_one(&self) -> Result<String, ParseError> {
        match self.node.args.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(self.err_args(format!(
                "{} requires exactly one argument",
                self.keyword_upper()
            ))),
        }
    }

    fn instruction(&self) -> Result<Instruction, ParseError> {
        let node = self.node;
        let location = self.location();
        Ok(match node.keyword.as_str() {
            "from" => Instruction::From(self.from()?),
            "run" => Instruction::Run(self.run()?),
            "copy" => Instruction::Copy(self.copy()?),
            "add" => Instruction::Add(self.add()?),
            "arg" => Instruction::Arg(self.arg()?),
            "env" => {
                self.no_flags()?;
                Instruction::Env(EnvInstruction {
                    vars: self.kvps()?,
                    location,
                })
            }
            "label" => {
                self.no_flags()?;
                Instruction::Label(LabelInstruction {
                    labels: self.kvps()?,
                    location,
                })
            }
            "expose" => Instruction::Expose(self.expose()?),
            "user" => {
                let user = self.exactly_one()?;
                self.no_flags()?;
                Instruction::User(UserInstruction { user, location })
            }
            "workdir" => {
                let path = self.exactly_one()?;
                self.no_flags()?;
                Instruction::Workdir(WorkdirInstruction { path, location })
            }
            "stopsignal" => {
                let signal = self.exactly_one()?;
                self.no_flags()?;
                Instruction::StopSignal(StopSignalInstruction { signal, location })
            }
            "maintainer" => {
                let name = self.exactly_one()?;
                self.no_flags()?;
                Instruction::Maintainer(MaintainerInstruction { name, location })
            }
            "volume" => {
                self.at_least_one()?;
                self.no_flags()?;
                let mut paths = Vec::new();
                for v in &node.args {
                    let v = v.trim();
                    if v.is_empty() {
                        return Err(self.err_args("VOLUME specified can not be an empty string"));
                    }
                    paths.push(v.to_string());
                }
                Instruction::Volume(VolumeInstruction { paths, location })
            }
            "cmd" => {
                self.no_flags()?;
                Instruction::Cmd(CmdInstruction {
                    command: CommandLine::from_node(node),
                    location,
                })
            }
            "entrypoint" => {
                self.no_flags()?;
                Instruction::Entrypoint(EntrypointInstruction {
                    command: CommandLine::from_node(node),
                    location,
                })
            }
            "shell" => {
                self.no_flags()?;
                if node.args.is_empty() {
                    return Err(self.err_args("SHELL requires at least one argument"));
                }
                if !node.json {
                    let mut e = self.err_args("SHELL requires the arguments to be in JSON form");
                    e.expected = Some(r#"a JSON array such as ["/bin/bash", "-c"]"#.to_string());
                    return Err(e);
                }
                Instruction::Shell(ShellInstruction {
                    shell: node.args.clone(),
                    location,
                })
            }
            "healthcheck" => Instruction::Healthcheck(self.healthcheck()?),
            "onbuild" => Instruction::Onbuild(self.onbuild()?),
            _ => {
                let mut message = format!("unknown instruction: {}", node.keyword_as_written);
                if let Some(s) = suggest(&node.keyword, INSTRUCTIONS.iter().copied()) {
                    message.push_str(&format!(" (did you mean {s}?)"));
                }
                let mut e = self.err_at(node.keyword_pos, message);
                e.expected = Some("a Dockerfile instruction such as FROM, RUN or COPY".to_string());
                return Err(e);
            }
        })
    }

    fn from(&self) -> Result<FromInstruction, ParseError> {
        let args = &self.node.args;
        let name = match args.as_slice() {
            [_] => None,
            [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
                let lower = name.to_lowercase();
                if !valid_stage_name(&lower) {
                    let mut e = self.err_args(format!(
                        "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
                    ));
                    e.expected = Some("a name matching [a-z][a-z0-9-_.]*".to_string());
                    return Err(e);
                }
                Some(lower)
            }
            _ => {
                let mut e = self.err_args("FROM requires either one or three arguments");
                e.expected = Some("FROM image [AS name]".to_string());
                return Err(e);
            }
        };
        let flags = self.flags(&[("platform", FlagKind::Str)])?;
        Ok(FromInstruction {
            base: args.first().cloned().unwrap_or_default(),
            name,
            platform: flags.string("platform"),
            location: self.location(),
        })
    }

    fn run(&self) -> Result<RunInstruction, ParseError> {
        let flags = self.flags(&[
            ("mount", FlagKind::Strs),
            ("network", FlagKind::Str),
            ("security", FlagKind::Str),
        ])?;
        let network = match flags.string("network").as_deref() {
            None => None,
            Some("default") => Some(NetworkMode::Default),
            Some("none") => Some(NetworkMode::None),
            Some("host") => Some(NetworkMode::Host),
            Some(other) => {
                let mut e = self.err_flag(
                    flags.index("network"),
                    format!("invalid network mode {other:?}"),
                );
                e.expected = Some("one of default, none, host".to_string());
                return Err(e);
            }
        };
        let security = match flags.string("security").as_deref() {
            None => None,
            Some("sandbox") => Some(SecurityMode::Sandbox),
            Some("insecure") => Some(SecurityMode::Insecure),
            Some(other) => {
                let mut e = self.err_flag(
                    flags.index("security"),
                    format!("security {other:?} is not valid"),
                );
                e.expected = Some("one of sandbox, insecure".to_string());
                return Err(e);
            }
        };
        let mut mounts = Vec::new();
        let mount_flags = self
            .node
            .flags
            .iter()
            .enumerate()
            .filter(|(_, f)| f.name() == "mount");
        for ((i, _), spec) in mount_flags.zip(flags.strings("mount")) {
            let escape = self.escape;
            let mut deferred = |v: &str| -> Result<Option<String>, MountError> {
                if needs_expansion(v, escape) {
                    Ok(None)
                } else {
                    Ok(Some(v.to_string()))
                }
            };
            let mount = parse_mount(&spec, &mut deferred).map_err(|m| {
                let mut e = self.err_flag(Some(i), format!("invalid --mount: {}", m.message));
                e.expected = m.expected;
                e
            })?;
            mounts.push(RunMount { spec, mount });
        }
        let command = CommandLine::from_node(self.node);
        if command.is_empty() {
            let mut e = self.err_args("RUN requires a command to run");
            e.expected = Some("RUN <command> or RUN [\"executable\", \"arg\"]".to_string());
            return Err(e);
        }
        Ok(RunInstruction {
            command,
            heredocs: self.node.heredocs.clone(),
            mounts,
            network,
            security,
            location: self.location(),
        })
    }

    fn sources_and_dest(&self) -> Result<(Vec<Source>, String), ParseError> {
        let kw = self.keyword_upper();
        let args = &self.node.args;
        let Some((dest, srcs)) = args.split_last().filter(|(_, s)| !s.is_empty()) else {
            let mut e = self.err_args(format!(
                "{kw} requires at least two arguments, but only one was provided. Destination could not be determined"
            ));
            e.expected = Some(format!("{kw} <source>... <destination>"));
            return Err(e);
        };
        if !self.node.json && heredoc_marker(dest).is_some() {
            return Err(self.err_args(format!("{kw} cannot accept a heredoc as a destination")));
        }
        let mut sources = Vec::new();
        for src in srcs {
            match heredoc_marker(src).filter(|_| !self.node.json) {
                Some(marker) => {
                    let content = self
                        .node
                        .heredocs
                        .iter()
                        .find(|h| h.name == marker.name)
                        .map(|h| {
                            let h = Heredoc {
                                chomp: marker.chomp,
                                ..h.clone()
                            };
                            h.chomped_content().into_owned()
                        })
                        .unwrap_or_default();
                    sources.push(Source::Inline(InlineFile {
                        name: marker.name,
                        content,
                        expand: marker.expand,
                    }));
                }
                None => sources.push(Source::Path(src.clone())),
            }
        }
        Ok((sources, dest.clone()))
    }

    fn copy(&self) -> Result<CopyInstruction, ParseError> {
        let flags = self.flags(&[
            ("chown", FlagKind::Str),
            ("from", FlagKind::Str),
            ("chmod", FlagKind::Str),
            ("link", FlagKind::Bool),
            ("exclude", FlagKind::Strs),
            ("parents", FlagKind::Bool),
        ])?;
        let (sources, dest) = self.sources_and_dest()?;
        let from = flags.string("from");
        if let Some(f) = &from {
            let lexer = Lexer::new(self.escape);
            let empty: Vec<(String, String)> = Vec::new();
            if lexer.process_word(f, &empty).ok().as_deref() != Some(f.as_str()) {
                let mut e = self.err_flag(
                    flags.index("from"),
                    "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround",
                );
                e.expected = Some("a stage name, stage index or image reference".to_string());
                return Err(e);
            }
        }
        Ok(CopyInstruction {
            sources,
            dest,
            from,
            chown: flags.string("chown"),
            chmod: flags.string("chmod"),
            link: flags.bool("link").unwrap_or(false),
            excludes: flags.strings("exclude"),
            parents: flags.bool("parents").unwrap_or(false),
            location: self.location(),
        })
    }

    fn add(&self) -> Result<AddInstruction, ParseError> {
        let flags = self.flags(&[
            ("chown", FlagKind::Str),
            ("chmod", FlagKind::Str),
            ("link", FlagKind::Bool),
            ("keep-git-dir", FlagKind::Bool),
            ("checksum", FlagKind::Str),
            ("unpack", FlagKind::Bool),
            ("exclude", FlagKind::Strs),
        ])?;
        let (sources, dest) = self.sources_and_dest()?;
        Ok(AddInstruction {
            sources,
            dest,
            chown: flags.string("chown"),
            chmod: flags.string("chmod"),
            link: flags.bool("link").unwrap_or(false),
            excludes: flags.strings("exclude"),
            checksum: flags.string("checksum"),
            keep_git_dir: flags.bool("keep-git-dir"),
            unpack: flags.bool("unpack"),
            location: self.location(),
        })
    }

    fn arg(&self) -> Result<ArgInstruction, ParseError> {
        self.at_least_one()?;
        self.no_flags()?;
        let mut args = Vec::new();
        for word in &self.node.args {
            let def = match word.split_once('=') {
                Some(("", _)) => return Err(self.err_args("ARG names can not be blank")),
                Some((k, v)) => ArgDef {
                    name: k.to_string(),
                    default: Some(v.to_string()),
                },
                None => ArgDef {
                    name: word.clone(),
                    default: None,
                },
            };
            args.push(def);
        }
        Ok(ArgInstruction {
            args,
            location: self.location(),
        })
    }

    fn kvps(&self) -> Result<Vec<KeyValue>, ParseError> {
        let kw = self.keyword_upper();
        let args = &self.node.args;
        if args.is_empty() {
            return Err(self.err_args(format!("{kw} requires at least one argument")));
        }
        if !args.chunks_exact(3).remainder().is_empty() {
            return Err(self.err_args(format!("Bad input to {kw}, too many arguments")));
        }
        let mut out = Vec::new();
        for t in args.chunks_exact(3) {
            let [key, value, sep] = t else { continue };
            if key.is_empty() {
                return Err(self.err_args(format!("{kw} names can not be blank")));
            }
            out.push(KeyValue {
                key: key.clone(),
                value: value.clone(),
                legacy: sep.is_empty(),
            });
        }
        Ok(out)
    }

    fn expose(&self) -> Result<ExposeInstruction, ParseError> {
        self.at_least_one()?;
        self.no_flags()?;
        for p in &self.node.args {
            if !needs_expansion(p, self.escape) {
                if let Err(m) = ExposedPort::parse(p) {
                    let mut e = self.err_args(m);
                    e.expected = Some("port[-end][/tcp|/udp|/sctp]".to_string());
                    return Err(e);
                }
            }
        }
        Ok(ExposeInstruction {
            ports: self.node.args.clone(),
            location: self.location(),
        })
    }

    fn healthcheck(&self) -> Result<HealthcheckInstruction, ParseError> {
        self.at_least_one()?;
        let flags = self.flags(&[
            ("interval", FlagKind::Str),
            ("timeout", FlagKind::Str),
            ("start-period", FlagKind::Str),
            ("start-interval", FlagKind::Str),
            ("retries", FlagKind::Str),
        ])?;
        let args = &self.node.args;
        let typ = args.first().map(|t| t.to_uppercase()).unwrap_or_default();
        let rest = args.get(1..).unwrap_or_default();
        let check = match typ.as_str() {
            "NONE" => {
                if !rest.is_empty() {
                    return Err(self.err_args("HEALTHCHECK NONE takes no arguments"));
                }
                Healthcheck::None
            }
            "CMD" => {
                if rest.is_empty() {
                    return Err(self.err_args("Missing command after HEALTHCHECK CMD"));
                }
                let test = if self.node.json {
                    CommandLine::Exec(rest.to_vec())
                } else {
                    CommandLine::Shell(rest.join(" "))
                };
                let interval = |name: &str| -> Result<Option<Duration>, ParseError> {
                    let Some(v) = flags.string(name) else {
                        return Ok(None);
                    };
                    parse_interval(name, &v).map_err(|m| {
                        let mut e = self.err_flag(flags.index(name), m);
                        e.expected = Some("a duration such as 30s, 1m30s or 1h".to_string());
                        e
                    })
                };
                let retries = match flags.string("retries") {
                    None => None,
                    Some(v) => match v.parse::<i32>() {
                        Ok(n) if n < 0 => {
                            return Err(self.err_flag(
                                flags.index("retries"),
                                format!("--retries cannot be negative ({n})"),
                            ))
                        }
                        Ok(0) => None,
                        Ok(n) => u32::try_from(n).ok(),
                        Err(_) => {
                            let mut e = self.err_flag(
                                flags.index("retries"),
                                format!("invalid value for --retries: {v:?}"),
                            );
                            e.expected = Some("a whole number".to_string());
                            return Err(e);
                        }
                    },
                };
                Healthcheck::Cmd(HealthCmd {
                    test,
                    interval: interval("interval")?,
                    timeout: interval("timeout")?,
                    start_period: interval("start-period")?,
                    start_interval: interval("start-interval")?,
                    retries,
                })
            }
            _ => {
                let mut e = self.err_args(format!(
                    "Unknown type {:?} in HEALTHCHECK (try CMD)",
                    args.first().cloned().unwrap_or_default()
                ));
                e.expected = Some("CMD or NONE".to_string());
                return Err(e);
            }
        };
        Ok(HealthcheckInstruction {
            check,
            location: self.location(),
        })
    }

    fn onbuild(&self) -> Result<OnbuildInstruction, ParseError> {
        let Some(child) = self.node.next.as_deref() else {
            return Err(self.err_args("ONBUILD requires at least one argument"));
        };
        self.no_flags()?;
        let trigger = child.keyword.to_uppercase();
        match trigger.as_str() {
            "ONBUILD" => {
                return Err(self.err_at(
                    child.keyword_pos,
                    "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
                ))
            }
            "MAINTAINER" | "FROM" => {
                return Err(self.err_at(
                    child.keyword_pos,
                    format!("{trigger} isn't allowed as an ONBUILD trigger"),
                ))
            }
            _ => {}
        }
        let inner = Cx {
            node: child,
            escape: self.escape,
        }
        .instruction()
        .map_err(|mut e| {
            e.source_line = self.node.original.clone();
            e
        })?;
        let mut expression = child.original.clone();
        for h in &self.node.heredocs {
            expression.push('\n');
            expression.push_str(&h.content);
            expression.push_str(&h.name);
        }
        Ok(OnbuildInstruction {
            trigger: Box::new(inner),
            expression,
            location: self.location(),
        })
    }
}

fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// Whether a word would change under expansion (variables, quotes, escapes).
fn needs_expansion(v: &str, escape: char) -> bool {
    v.contains(['$', '\'', '"']) || v.contains(escape)
}

// ---------------------------------------------------------------------------
// Values: durations, sizes, booleans, CSV.

/// Go's `time.ParseDuration`, in nanoseconds (may be negative).
fn parse_go_duration(s: &str) -> Result<i128, String> {
    let bad = || format!("time: invalid duration {s:?}");
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, s.get(1..).unwrap_or_default()),
        Some(b'+') => (false, s.get(1..).unwrap_or_default()),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let int_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let int_part = rest.get(..int_end).unwrap_or_default();
        rest = rest.get(int_end..).unwrap_or_default();
        let mut frac_part = "";
        if let Some(r) = rest.strip_prefix('.') {
            let frac_end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            frac_part = r.get(..frac_end).unwrap_or_default();
            rest = r.get(frac_end..).unwrap_or_default();
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad());
        }
        let unit_end = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = rest.get(..unit_end).unwrap_or_default();
        rest = rest.get(unit_end..).unwrap_or_default();
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("time: missing unit in duration {s:?}")),
            _ => return Err(format!("time: unknown unit {unit:?} in duration {s:?}")),
        };
        let int: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse::<i128>().map_err(|_| bad())?
        };
        let mut v = int.checked_mul(scale).ok_or_else(bad)?;
        let mut frac_scale = scale;
        for d in frac_part.chars().take(30) {
            frac_scale /= 10;
            if frac_scale == 0 {
                break;
            }
            v += i128::from(d.to_digit(10).unwrap_or(0) as u8) * frac_scale;
        }
        total = total.checked_add(v).ok_or_else(bad)?;
        if total > i128::from(i64::MAX) {
            return Err(bad());
        }
    }
    Ok(if neg { -total } else { total })
}

/// BuildKit's `parseOptInterval`: zero means unset; below 1ms is refused.
fn parse_interval(flag: &str, v: &str) -> Result<Option<Duration>, String> {
    if v.is_empty() {
        return Ok(None);
    }
    let ns = parse_go_duration(v)?;
    if ns == 0 {
        return Ok(None);
    }
    if ns < 1_000_000 {
        return Err(format!("Interval {flag:?} cannot be less than 1ms"));
    }
    let ns = u64::try_from(ns).map_err(|_| format!("time: invalid duration {v:?}"))?;
    Ok(Some(Duration::from_nanos(ns)))
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// docker/go-units `RAMInBytes`: `64m`, `1.5GiB`, `512` (binary multiples).
fn ram_in_bytes(v: &str) -> Option<u64> {
    let num_end = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let num = v.get(..num_end)?;
    if !num.starts_with(|c: char| c.is_ascii_digit()) || num.ends_with('.') {
        return None;
    }
    let mut unit = v.get(num_end..)?;
    unit = unit.strip_prefix(' ').unwrap_or(unit);
    let mut chars = unit.chars();
    let mult: f64 = match chars.next() {
        None => 1.0,
        Some(c) => {
            let m = match c.to_ascii_lowercase() {
                'k' => 1024f64,
                'm' => 1024f64.powi(2),
                'g' => 1024f64.powi(3),
                't' => 1024f64.powi(4),
                'p' => 1024f64.powi(5),
                'b' => {
                    return (chars.next().is_none())
                        .then(|| num.parse::<f64>().ok())
                        .flatten()
                        .map(|n| n as u64)
                }
                _ => return None,
            };
            let tail: String = chars.collect::<String>().to_ascii_lowercase();
            if !matches!(tail.as_str(), "" | "b" | "i" | "ib") {
                return None;
            }
            m
        }
    };
    let n: f64 = num.parse().ok()?;
    let bytes = n * mult;
    (bytes.is_finite() && bytes < 9.2e18).then_some(bytes as u64)
}

/// One CSV record (Go `encoding/csv` rules: `"` quotes a whole field, `""` is a
/// quote inside it).
fn csv_fields(s: &str) -> Result<Vec<String>, MountError> {
    let mut fields = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => {
                        return Err(MountError::new(
                            "failed to parse csv mounts: extraneous or missing \" in quoted-field",
                        ))
                    }
                    Some('"') => match chars.peek() {
                        Some('"') => {
                            chars.next();
                            field.push('"');
                        }
                        Some(',') | None => break,
                        Some(_) => return Err(MountError::new(
                            "failed to parse csv mounts: extraneous or missing \" in quoted-field",
                        )),
                    },
                    Some(c) => field.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                if c == '"' {
                    return Err(MountError::new(
                        "failed to parse csv mounts: bare \" in non-quoted-field",
                    ));
                }
                field.push(c);
                chars.next();
            }
        }
        fields.push(field);
        match chars.next() {
            Some(',') => continue,
            _ => break,
        }
    }
    Ok(fields)
}

const MOUNT_KEYS: &[&str] = &[
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "env",
];

/// BuildKit's `parseMount`. `expand` maps each option value to its final text,
/// or to `None` when it cannot be known yet; the result is then `Ok(None)` after
/// checking everything that can be checked.
fn parse_mount(
    spec: &str,
    expand: &mut dyn FnMut(&str) -> Result<Option<String>, MountError>,
) -> Result<Option<Mount>, MountError> {
    let fields = csv_fields(spec)?;
    let mut m = Mount {
        kind: MountType::Bind,
        from: None,
        source: None,
        target: None,
        readonly: false,
        size: None,
        id: None,
        sharing: None,
        required: false,
        env: None,
        mode: None,
        uid: None,
        gid: None,
    };
    let mut ro_auto = true;
    let mut complete = true;
    let mut kind_known = true;
    for field in &fields {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), Some(v)),
            None => (field.to_lowercase(), None),
        };
        let Some(value) = value else {
            match key.as_str() {
                "readonly" | "ro" => {
                    m.readonly = true;
                    ro_auto = false;
                }
                "readwrite" | "rw" => {
                    m.readonly = false;
                    ro_auto = false;
                }
                "required" => {
                    if kind_known && !matches!(m.kind, MountType::Secret | MountType::Ssh) {
                        return Err(MountError::new(format!(
                            "unexpected key '{key}' for mount type '{}'",
                            m.kind
                        ))
                        .expected("required only on secret and ssh mounts"));
                    }
                    m.required = true;
                }
                _ => {
                    return Err(MountError::new(format!(
                        "invalid field '{field}' must be a key=value pair"
                    )))
                }
            }
            continue;
        };
        if key == "from" {
            if let Some(idx) = value.find('$') {
                if idx + 1 != value.len() {
                    return Err(MountError::new(
                        "'from' doesn't support variable expansion, define alias stage instead",
                    )
                    .expected("a stage name, stage index or image reference"));
                }
            }
        }
        if !MOUNT_KEYS.contains(&key.as_str()) {
            let mut e = MountError::new(format!("unexpected key '{key}' in '{field}'"));
            if let Some(s) = suggest(&key, MOUNT_KEYS.iter().copied()) {
                e.message.push_str(&format!(" (did you mean {s}?)"));
            }
            return Err(e.expected(format!("one of {}", MOUNT_KEYS.join(", "))));
        }
        let Some(value) = expand(value)? else {
            complete = false;
            if key == "type" {
                kind_known = false;
            }
            if matches!(key.as_str(), "readonly" | "ro" | "readwrite" | "rw") {
                ro_auto = false;
            }
            continue;
        };
        let invalid = |k: &str| MountError::new(format!("invalid value for {k}: {value}"));
        let only_for = |k: &str, kind: MountType, what: &str| {
            MountError::new(format!("unexpected key '{k}' for mount type '{kind}'"))
                .expected(format!("{k} only on {what} mounts"))
        };
        match key.as_str() {
            "type" => {
                m.kind = match value.to_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => {
                        let mut e = MountError::new(format!("unsupported mount type {value:?}"));
                        if let Some(s) =
                            suggest(&value, ["bind", "cache", "tmpfs", "secret", "ssh"])
                        {
                            e.message.push_str(&format!(" (did you mean {s}?)"));
                        }
                        return Err(e.expected("one of bind, cache, tmpfs, secret, ssh"));
                    }
                }
            }
            "from" => m.from = Some(value),
            "source" | "src" => m.source = Some(value),
            "target" | "dst" | "destination" => m.target = Some(value),
            "readonly" | "ro" => {
                m.readonly =
                    parse_go_bool(&value).ok_or_else(|| invalid(&key).expected("true or false"))?;
                ro_auto = false;
            }
            "readwrite" | "rw" => {
                m.readonly = !parse_go_bool(&value)
                    .ok_or_else(|| invalid(&key).expected("true or false"))?;
                ro_auto = false;
            }
            "required" => {
                if kind_known && !matches!(m.kind, MountType::Secret | MountType::Ssh) {
                    return Err(only_for(&key, m.kind, "secret and ssh"));
                }
                m.required =
                    parse_go_bool(&value).ok_or_else(|| invalid(&key).expected("true or false"))?;
            }
            "size" => {
                if kind_known && m.kind != MountType::Tmpfs {
                    return Err(only_for(&key, m.kind, "tmpfs"));
                }
                m.size = Some(
                    ram_in_bytes(&value)
                        .ok_or_else(|| invalid(&key).expected("a size such as 64m or 1g"))?,
                );
            }
            "id" => m.id = Some(value),
            "sharing" => {
                m.sharing = Some(match value.to_lowercase().as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    _ => {
                        return Err(
                            MountError::new(format!("unsupported sharing value {value:?}"))
                                .expected("one of shared, private, locked"),
                        )
                    }
                })
            }
            "mode" => {
                m.mode = Some(u32::from_str_radix(&value, 8).map_err(|_| {
                    MountError::new(format!("invalid value {value} for mode"))
                        .expected("an octal mode such as 0600")
                })?)
            }
            "uid" | "gid" => {
                let n = value.parse::<u32>().map_err(|_| {
                    MountError::new(format!("invalid value {value} for {key}"))
                        .expected("a numeric id")
                })?;
                if key == "uid" {
                    m.uid = Some(n);
                } else {
                    m.gid = Some(n);
                }
            }
            "env" => m.env = Some(value),
            _ => {}
        }
    }
    if !complete {
        return Ok(None);
    }
    let file_info_allowed = matches!(
        m.kind,
        MountType::Secret | MountType::Ssh | MountType::Cache
    );
    if !file_info_allowed {
        for (set, what) in [
            (m.mode.is_some(), "mode"),
            (m.uid.is_some(), "uid"),
            (m.gid.is_some(), "gid"),
        ] {
            if set {
                return Err(MountError::new(format!(
                    "{what} not allowed for {:?} type mounts",
                    m.kind.as_str()
                ))
                .expected("mode, uid and gid only on secret, ssh and cache mounts"));
            }
        }
    }
    if ro_auto {
        m.readonly = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
    }
    if m.kind == MountType::Secret {
        if m.from.is_some() {
            return Err(MountError::new("secret mount should not have a from"));
        }
        if m.sharing.is_some() {
            return Err(MountError::new("secret mount should not define sharing"));
        }
        if m.source.is_none() && m.target.is_none() && m.id.is_none() {
            return Err(
                MountError::new("invalid secret mount. one of source, target required")
                    .expected("id=, source= or target="),
            );
        }
        if m.source.is_some() && m.id.is_some() {
            return Err(MountError::new("both source and id can't be set"));
        }
    }
    if m.sharing.is_some() && m.kind != MountType::Cache {
        return Err(MountError::new(format!(
            "invalid cache sharing set for {} mount",
            m.kind
        )));
    }
    Ok(Some(m))
}

// ---------------------------------------------------------------------------
// The file: global ARGs and stages.

/// One build stage: a `FROM` and the instructions up to the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// 0-based position among the stages (usable as `COPY --from=<index>`).
    pub index: usize,
    /// The `FROM` line (base, `AS` name lower-cased, platform).
    pub from: FromInstruction,
    /// The instructions after `FROM`.
    pub instructions: Vec<Instruction>,
}

impl Stage {
    /// The stage name (lower case), if it has one.
    pub fn name(&self) -> Option<&str> {
        self.from.name.as_deref()
    }

    /// The base reference as written (unexpanded).
    pub fn base(&self) -> &str {
        &self.from.base
    }

    /// `--platform` as written.
    pub fn platform(&self) -> Option<&str> {
        self.from.platform.as_deref()
    }
}

/// What a stage needs before it can run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum DependencyTarget {
    /// An earlier stage, by index.
    Stage(usize),
    /// An image (or a named context) that is not a stage of this file.
    Image(String),
}

/// How a dependency arises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DependencyKind {
    /// `FROM <stage>`.
    From,
    /// `COPY --from=<stage>`.
    CopyFrom,
    /// `RUN --mount=from=<stage>`.
    MountFrom,
}

/// One dependency of a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// What is needed.
    pub target: DependencyTarget,
    /// Through which instruction.
    pub kind: DependencyKind,
    /// The line of that instruction.
    pub line: usize,
}

/// A Dockerfile as the builder uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// Parser directives.
    pub directives: Directives,
    /// The escape character (build a [`Lexer`] with it).
    pub escape: char,
    /// `ARG`s before the first `FROM` (global scope, usable in `FROM` lines).
    pub meta_args: Vec<ArgInstruction>,
    /// The stages in order.
    pub stages: Vec<Stage>,
    /// Non-fatal findings.
    pub warnings: Vec<Warning>,
}

/// The physical lines of a tree's source, for quoting them in errors.
struct SourceLines<'a>(Vec<&'a str>);

impl<'a> SourceLines<'a> {
    fn new(ast: &'a Ast) -> Self {
        SourceLines(ast.source.split_inclusive('\n').collect())
    }

    fn fix(&self, mut e: ParseError) -> ParseError {
        if let Some(text) = e.line.checked_sub(1).and_then(|i| self.0.get(i)) {
            e.source_line = text.trim_end_matches(['\r', '\n']).to_string();
        }
        e
    }
}

impl Dockerfile {
    /// Parses text and builds the typed model, reporting every problem of both
    /// passes.
    pub fn parse(src: &str) -> Result<Dockerfile, ParseErrors> {
        let (ast, mut errors) = parser::parse_recovering(src);
        match Dockerfile::from_ast(&ast) {
            Ok(df) if errors.is_empty() => Ok(df),
            Ok(_) => Err(ParseErrors { errors }),
            Err(more) => {
                // An empty tree because every instruction failed says nothing new.
                let only_empty = ast.nodes.is_empty() && !errors.is_empty();
                if !only_empty {
                    errors.extend(more.errors);
                }
                errors.sort_by_key(|e| (e.line, e.column));
                Err(ParseErrors { errors })
            }
        }
    }

    /// Builds the typed model from a syntax tree, reporting every bad instruction.
    pub fn from_ast(ast: &Ast) -> Result<Dockerfile, ParseErrors> {
        let lines = SourceLines::new(ast);
        let mut errors = Vec::new();
        let mut warnings = ast.warnings.clone();
        let mut meta_args = Vec::new();
        let mut stages: Vec<Stage> = Vec::new();
        for node in &ast.nodes {
            let ins = match Instruction::from_node(node, ast.escape) {
                Ok(i) => i,
                Err(e) => {
                    errors.push(lines.fix(e));
                    continue;
                }
            };
            match ins {
                Instruction::Arg(a) if stages.is_empty() => meta_args.push(a),
                Instruction::From(from) => {
                    if let Some(name) = &from.name {
                        if stages.iter().any(|s| s.name() == Some(name)) {
                            warnings.push(Warning {
                                line: from.location.start_line,
                                message: format!(
                                    "duplicate stage name {name:?}: stage names should be unique"
                                ),
                            });
                        }
                    }
                    stages.push(Stage {
                        index: stages.len(),
                        from,
                        instructions: Vec::new(),
                    });
                }
                other => match stages.last_mut() {
                    Some(stage) => stage.instructions.push(other),
                    None => {
                        let e = ParseError {
                            file: None,
                            line: node.start_line,
                            column: node.keyword_pos.column,
                            end_line: node.end_line,
                            source_line: String::new(),
                            message: format!(
                                "no build stage in current context: {} before the first FROM",
                                other.keyword()
                            ),
                            expected: Some(
                                "FROM (only ARG may come before the first FROM)".to_string(),
                            ),
                        };
                        errors.push(lines.fix(e));
                    }
                },
            }
        }
        if stages.is_empty() && errors.is_empty() {
            let line = ast.nodes.last().map_or(0, |n| n.end_line);
            errors.push(lines.fix(ParseError {
                file: None,
                line,
                column: 0,
                end_line: line,
                source_line: String::new(),
                message: "no FROM instruction: the Dockerfile defines no build stage".to_string(),
                expected: Some("FROM image [AS name]".to_string()),
            }));
        }
        if !errors.is_empty() {
            return Err(ParseErrors { errors });
        }
        Ok(Dockerfile {
            directives: ast.directives.clone(),
            escape: ast.escape,
            meta_args,
            stages,
            warnings,
        })
    }

    /// A lexer with this file's escape character.
    pub fn lexer(&self) -> Lexer {
        Lexer::new(self.escape)
    }

    /// The stage called `name` (case-insensitive) or with that decimal index.
    pub fn stage(&self, name_or_index: &str) -> Option<&Stage> {
        let lower = name_or_index.to_lowercase();
        self.stages
            .iter()
            .find(|s| s.name() == Some(lower.as_str()))
            .or_else(|| {
                name_or_index
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| self.stages.get(i))
            })
    }

    /// The global `ARG` scope used to expand `FROM` lines: `predefined` first
    /// (automatic platform args such as `TARGETPLATFORM`), then each meta `ARG`
    /// in order, taking the build argument when `build_args` has one, else its
    /// default expanded with the scope so far. Declared args without a value stay
    /// unset. The last entry for a name wins.
    pub fn global_args(
        &self,
        build_args: &dyn VarLookup,
        predefined: &[(String, String)],
    ) -> Result<Vec<(String, String)>, ParseError> {
        let lexer = self.lexer();
        let mut scope: Vec<(String, String)> = predefined.to_vec();
        for arg in &self.meta_args {
            for def in &arg.args {
                if let Some(v) = build_args.lookup(&def.name) {
                    scope.push((def.name.clone(), v.to_string()));
                } else if let Some(d) = &def.default {
                    let v = lexer
                        .process_word(d, &scope)
                        .map_err(|e| located(&arg.location, e.to_string()))?;
                    scope.push((def.name.clone(), v));
                }
            }
        }
        Ok(scope)
    }

    /// The base of stage `index` with global args expanded (`scope` from
    /// [`Dockerfile::global_args`]).
    pub fn resolve_base(&self, index: usize, scope: &dyn VarLookup) -> Result<String, ParseError> {
        let stage = self.stages.get(index).ok_or_else(|| ParseError {
            file: None,
            line: 0,
            column: 0,
            end_line: 0,
            source_line: String::new(),
            message: format!("no stage with index {index}"),
            expected: Some(format!("an index below {}", self.stages.len())),
        })?;
        let loc = &stage.from.location;
        let base = self
            .lexer()
            .process_word(&stage.from.base, scope)
            .map_err(|e| located(loc, e.to_string()))?;
        if base.is_empty() {
            return Err(located(
                loc,
                format!("base name ({}) should not be blank", stage.from.base),
            ));
        }
        Ok(base)
    }

    /// The `--platform` of stage `index` with global args expanded, if any.
    pub fn resolve_platform(
        &self,
        index: usize,
        scope: &dyn VarLookup,
    ) -> Result<Option<String>, ParseError> {
        let Some(stage) = self.stages.get(index) else {
            return Ok(None);
        };
        let Some(p) = &stage.from.platform else {
            return Ok(None);
        };
        let loc = &stage.from.location;
        let v = self
            .lexer()
            .process_word(p, scope)
            .map_err(|e| located(loc, e.to_string()))?;
        if v.is_empty() {
            return Err(located(
                loc,
                format!("empty platform value from expression {p}"),
            ));
        }
        Ok(Some(v))
    }

    /// What stage `index` depends on: its base when it names an earlier stage
    /// (after expanding global args from `scope`), `COPY --from` and
    /// `RUN --mount=from=` references. Names that are not stages are images. A
    /// reference to the stage itself or a later one is an error, as in BuildKit.
    pub fn dependencies(
        &self,
        index: usize,
        scope: &dyn VarLookup,
    ) -> Result<Vec<Dependency>, ParseError> {
        let Some(stage) = self.stages.get(index) else {
            return Ok(Vec::new());
        };
        let mut deps = Vec::new();
        let base = self.resolve_base(index, scope)?;
        let lower = base.to_lowercase();
        let base_target = match self
            .stages
            .get(..index)
            .and_then(|earlier| earlier.iter().find(|s| s.name() == Some(lower.as_str())))
        {
            Some(s) => DependencyTarget::Stage(s.index),
            None => DependencyTarget::Image(base),
        };
        deps.push(Dependency {
            target: base_target,
            kind: DependencyKind::From,
            line: stage.from.location.start_line,
        });
        let stage_label = stage
            .name()
            .map_or_else(|| format!("stage-{index}"), str::to_string);
        let mut refer = |reference: &str,
                         kind: DependencyKind,
                         loc: &Location|
         -> Result<(), ParseError> {
            let target = match reference.parse::<usize>() {
                Ok(i) => {
                    if i >= index {
                        return Err(located(
                            loc,
                            format!("cannot copy from stage {reference:?}, it needs to be defined before current stage {stage_label:?}"),
                        ));
                    }
                    DependencyTarget::Stage(i)
                }
                Err(_) => {
                    let lower = reference.to_lowercase();
                    match self.stages.iter().find(|s| s.name() == Some(lower.as_str())) {
                        Some(s) if s.index >= index => {
                            return Err(located(
                                loc,
                                format!("cannot copy from stage {reference:?}, it needs to be defined before current stage {stage_label:?}"),
                            ))
                        }
                        Some(s) => DependencyTarget::Stage(s.index),
                        None => DependencyTarget::Image(reference.to_string()),
                    }
                }
            };
            deps.push(Dependency {
                target,
                kind,
                line: loc.start_line,
            });
            Ok(())
        };
        for ins in &stage.instructions {
            match ins {
                Instruction::Copy(c) => {
                    if let Some(from) = &c.from {
                        refer(from, DependencyKind::CopyFrom, &c.location)?;
                    }
                }
                Instruction::Run(r) => {
                    for m in &r.mounts {
                        let from = match &m.mount {
                            Some(mount) => mount.from.clone(),
                            None => mount_from_literal(&m.spec),
                        };
                        if let Some(from) = from {
                            refer(&from, DependencyKind::MountFrom, &r.location)?;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(deps)
    }

    /// The indexes of the earlier stages stage `index` needs (see
    /// [`Dockerfile::dependencies`]).
    pub fn stage_dependencies(
        &self,
        index: usize,
        scope: &dyn VarLookup,
    ) -> Result<BTreeSet<usize>, ParseError> {
        Ok(self
            .dependencies(index, scope)?
            .into_iter()
            .filter_map(|d| match d.target {
                DependencyTarget::Stage(i) => Some(i),
                DependencyTarget::Image(_) => None,
            })
            .collect())
    }
}

/// The literal `from=` of a mount spec whose other values need expansion.
fn mount_from_literal(spec: &str) -> Option<String> {
    csv_fields(spec).ok()?.into_iter().find_map(|f| {
        let (k, v) = f.split_once('=')?;
        k.eq_ignore_ascii_case("from").then(|| v.to_string())
    })
}

fn located(loc: &Location, message: String) -> ParseError {
    ParseError {
        file: None,
        line: loc.start_line,
        column: 1,
        end_line: loc.end_line,
        source_line: loc.original.clone(),
        message,
        expected: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let s = |v: &str| parse_go_duration(v);
        assert_eq!(s("30s"), Ok(30_000_000_000));
        assert_eq!(s("1m30s"), Ok(90_000_000_000));
        assert_eq!(s("1h"), Ok(3_600_000_000_000));
        assert_eq!(s("1.5s"), Ok(1_500_000_000));
        assert_eq!(s(".5ms"), Ok(500_000));
        assert_eq!(s("0"), Ok(0));
        assert_eq!(s("-2s"), Ok(-2_000_000_000));
        assert_eq!(s("300µs"), Ok(300_000));
        assert!(s("").is_err());
        assert!(s("5").is_err());
        assert!(s("5x").is_err());
        assert!(s("s").is_err());
        assert!(s("99999999999999999999h").is_err());
        assert_eq!(parse_interval("interval", "50ns").map_err(|_| ()), Err(()));
        assert_eq!(parse_interval("interval", "0ms"), Ok(None));
        assert_eq!(
            parse_interval("interval", "1ms"),
            Ok(Some(Duration::from_millis(1)))
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(ram_in_bytes("512"), Some(512));
        assert_eq!(ram_in_bytes("64m"), Some(64 << 20));
        assert_eq!(ram_in_bytes("1g"), Some(1 << 30));
        assert_eq!(ram_in_bytes("1GiB"), Some(1 << 30));
        assert_eq!(ram_in_bytes("1.5k"), Some(1536));
        assert_eq!(ram_in_bytes("10b"), Some(10));
        assert_eq!(ram_in_bytes("1 kb"), Some(1024));
        assert_eq!(ram_in_bytes("x"), None);
        assert_eq!(ram_in_bytes("1q"), None);
        assert_eq!(ram_in_bytes(""), None);
    }

    #[test]
    fn csv() {
        assert_eq!(csv_fields("a,b").ok(), Some(vec!["a".into(), "b".into()]));
        assert_eq!(
            csv_fields(r#""target=/a,b",ro"#).ok(),
            Some(vec!["target=/a,b".into(), "ro".into()])
        );
        assert_eq!(csv_fields(r#""a""b""#).ok(), Some(vec![r#"a"b"#.into()]));
        assert!(csv_fields(r#"a"b"#).is_err());
        assert!(csv_fields(r#""ab"#).is_err());
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("form", ["from", "chown"]), Some("from"));
        assert_eq!(suggest("RUM", INSTRUCTIONS.iter().copied()), Some("RUN"));
        assert_eq!(suggest("zzzzzz", ["from"]), None);
    }
}
