//! Misconfiguration rules for Dockerfiles, Terraform (HCL) and ECS task
//! definitions: `hoist lint`.
//!
//! The main entry is [`lint_paths`]: it takes files and directories, finds what it
//! can check ([`discover`]: `Dockerfile`, `*.Dockerfile`, `Dockerfile.*`,
//! `Containerfile`, `*.tf`, and `*.json` files shaped like an ECS task
//! definition), and returns one [`FileReport`] per file with its [`Finding`]s, plus
//! the files it could not read or parse. One bad file never hides the others.
//! [`lint_text`] is the pure core: text in, findings out.
//!
//! Every check is a [`Rule`] in the static table [`RULES`] (ID `HL-<area>-<nnn>`,
//! a [`Severity`], a title, one line of why and one of how to fix), so
//! `hoist lint --rules` and the docs list exactly what is checked. A finding names
//! its rule, file and 1-based line:
//!
//! - Dockerfiles are parsed by `hoist-dockerfile`, whose instructions keep their
//!   line ranges; a RUN finding points at the physical line of the offending
//!   command inside a multi-line RUN.
//! - Terraform is parsed with `hcl-rs`'s `hcl::edit` parser, which keeps byte
//!   spans for blocks, attributes and every expression, so a finding points at
//!   the attribute (or object key in `jsonencode({...})`) it is about. JSON inside
//!   a heredoc or string is parsed with `jsonc-parser` (strict JSON options),
//!   which also keeps spans; heredoc offsets map back to file lines exactly,
//!   `${...}` interpolations outside JSON strings are blanked to `null` first.
//!   Only literals are evaluated: `var.x`, locals and references to other
//!   resources are unknown and never flagged, except that a policy given as
//!   `data.aws_iam_policy_document.x.json` is checked where that data source is.
//! - ECS task definition JSON (the `register-task-definition` input, or
//!   `describe-task-definition` output with `taskDefinition`) is parsed with
//!   `jsonc-parser` for the same reason: serde_json keeps no positions.
//!
//! Inline suppression: `# hoist:ignore=ID[,ID...]` (Terraform also `//`) on the
//! flagged line or in the comment lines right above it silences those rules on
//! that line. In Terraform the marker may also sit above the `resource`/`data`
//! block header, silencing the rule for the whole block, which is the only way to
//! silence a finding inside heredoc JSON. JSON files have no comments, so no
//! suppression there. Suppressed findings are counted, not dropped silently.
//!
//! The crate reads the files it is given and nothing else: it never runs
//! anything, resolves no Terraform modules or variables, and does no network I/O.

mod dockerfile;
mod ecs;
pub mod image;
mod located;
mod names;
pub mod rules;
mod shell;
mod suppress;
mod terraform;

use std::fmt;
use std::path::{Path, PathBuf};

pub use hoist_dockerfile::parser::{ParseErrors, Warning};
pub use image::{lint_image, ImageFinding, ImageSettings};
pub use names::is_secret_name;
pub use rules::{rule, Rule, Severity, RULES};

/// One problem found: which rule, where, and what exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule broken.
    pub rule: &'static Rule,
    /// The file, as given or found by the walk.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// What is wrong here, naming the offending value.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {} {} {}",
            self.file.display(),
            self.line,
            self.rule.severity,
            self.rule.id,
            self.message
        )
    }
}

/// What a file is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// A Dockerfile (or Containerfile).
    Dockerfile,
    /// A Terraform `.tf` file.
    Terraform,
    /// An ECS task definition in JSON.
    EcsTaskDefinition,
}

impl FileKind {
    /// The kind a file name says, if any (case-insensitive): `Dockerfile`,
    /// `Containerfile`, `*.Dockerfile`, `*.Containerfile`, `Dockerfile.*` and
    /// `Containerfile.*` are Dockerfiles, `*.tf`
    /// Terraform, `*.json` a candidate task definition (checked by content).
    pub fn from_name(path: &Path) -> Option<FileKind> {
        let name = path.file_name()?.to_str()?;
        let lower = name.to_ascii_lowercase();
        if lower == "dockerfile"
            || lower == "containerfile"
            || lower.ends_with(".dockerfile")
            || lower.ends_with(".containerfile")
            || lower.starts_with("dockerfile.")
            || lower.starts_with("containerfile.")
        {
            // `Dockerfile.dockerignore`-style companions are not Dockerfiles.
            if lower.ends_with(".dockerignore") || lower.ends_with(".containerignore") {
                return None;
            }
            Some(FileKind::Dockerfile)
        } else if lower.ends_with(".tf") {
            Some(FileKind::Terraform)
        } else if lower.ends_with(".json") {
            Some(FileKind::EcsTaskDefinition)
        } else {
            None
        }
    }

    /// Lower-case name for output (`dockerfile`, `terraform`, `ecs`).
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Dockerfile => "dockerfile",
            FileKind::Terraform => "terraform",
            FileKind::EcsTaskDefinition => "ecs",
        }
    }
}

/// The result of linting one file.
#[derive(Debug, Clone)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// How it was read.
    pub kind: FileKind,
    /// Findings, by line then rule ID.
    pub findings: Vec<Finding>,
    /// Findings silenced by `hoist:ignore` markers.
    pub suppressed: Vec<Finding>,
    /// Non-fatal parser warnings (Dockerfiles only).
    pub warnings: Vec<Warning>,
}

/// Why a file could not be linted.
#[derive(Debug, thiserror::Error)]
pub enum LintError {
    /// The file or directory could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not UTF-8.
    #[error("{}:{line}: the file is not valid UTF-8", path.display())]
    Utf8 {
        /// The file.
        path: PathBuf,
        /// The line with the first bad byte.
        line: usize,
    },
    /// Dockerfile syntax errors, each with its line, column and source line.
    #[error("{errors}")]
    Dockerfile {
        /// The file.
        path: PathBuf,
        /// Every error, with the file name set.
        errors: ParseErrors,
    },
    /// HCL or JSON syntax error.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// A JSON file given explicitly that is not a task definition.
    #[error("{}: not an ECS task definition (no containerDefinitions at the top level or under taskDefinition)", path.display())]
    NotTaskDefinition {
        /// The file.
        path: PathBuf,
    },
    /// A directory entry could not be listed.
    #[error("{}: cannot walk: {message}", path.display())]
    Walk {
        /// Where the walk failed.
        path: PathBuf,
        /// The cause.
        message: String,
    },
}

impl LintError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            LintError::Read { path, .. }
            | LintError::Utf8 { path, .. }
            | LintError::Dockerfile { path, .. }
            | LintError::Syntax { path, .. }
            | LintError::NotTaskDefinition { path }
            | LintError::Walk { path, .. } => path,
        }
    }
}

/// A finding before suppression, as the per-format checkers produce it.
#[derive(Debug)]
pub(crate) struct Raw {
    pub rule: &'static Rule,
    pub line: usize,
    pub message: String,
    /// The first line of the enclosing Terraform block, whose header may carry a
    /// block-wide `hoist:ignore`.
    pub block_line: Option<usize>,
}

impl Raw {
    pub(crate) fn new(rule: &'static Rule, line: usize, message: impl Into<String>) -> Raw {
        Raw {
            rule,
            line,
            message: message.into(),
            block_line: None,
        }
    }
}

/// Lints `text` read from `path` as `kind`: the pure core of [`lint_file`].
pub fn lint_text(kind: FileKind, path: &Path, text: &str) -> Result<FileReport, LintError> {
    let (raw, warnings, style) = match kind {
        FileKind::Dockerfile => {
            let (raw, warnings) = dockerfile::check(path, text)?;
            (raw, warnings, Some(suppress::CommentStyle::Hash))
        }
        FileKind::Terraform => (
            terraform::check(path, text)?,
            Vec::new(),
            Some(suppress::CommentStyle::Hcl),
        ),
        FileKind::EcsTaskDefinition => (ecs::check_file(path, text)?, Vec::new(), None),
    };
    let sup = style.map(|s| suppress::Suppressions::new(text, s));
    let mut findings = Vec::new();
    let mut suppressed = Vec::new();
    for r in raw {
        let ignored = sup.as_ref().is_some_and(|s| {
            s.ignored(r.rule.id, r.line) || r.block_line.is_some_and(|b| s.ignored(r.rule.id, b))
        });
        let f = Finding {
            rule: r.rule,
            file: path.to_path_buf(),
            line: r.line,
            column: None,
            message: r.message,
        };
        if ignored {
            suppressed.push(f);
        } else {
            findings.push(f);
        }
    }
    let order = |a: &Finding, b: &Finding| (a.line, a.rule.id).cmp(&(b.line, b.rule.id));
    findings.sort_by(order);
    suppressed.sort_by(order);
    Ok(FileReport {
        path: path.to_path_buf(),
        kind,
        findings,
        suppressed,
        warnings,
    })
}

fn read_text(path: &Path) -> Result<String, LintError> {
    let bytes = std::fs::read(path).map_err(|source| LintError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..offset]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        LintError::Utf8 {
            path: path.to_path_buf(),
            line,
        }
    })
}

/// Reads and lints one file. `kind` overrides the name-based guess; a file whose
/// name says nothing is read as a Dockerfile (`hoist lint build/app.docker`).
pub fn lint_file(path: &Path, kind: Option<FileKind>) -> Result<FileReport, LintError> {
    let kind = kind
        .or_else(|| FileKind::from_name(path))
        .unwrap_or(FileKind::Dockerfile);
    let text = read_text(path)?;
    lint_text(kind, path, &text)
}

/// Directory names never descended into: VCS metadata, Terraform's module and
/// provider cache, package manager trees.
const SKIP_DIRS: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    ".terraform",
    "node_modules",
    "target",
];

/// The files under `root` that [`lint_paths`] checks, sorted, with their kind
/// from the name (JSON files are candidates, checked by content later), and the
/// entries that could not be listed (the walk goes on past them).
pub fn discover(root: &Path) -> (Vec<(PathBuf, FileKind)>, Vec<LintError>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let walk = walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0
                || !(e.file_type().is_dir()
                    && e.file_name()
                        .to_str()
                        .is_some_and(|n| SKIP_DIRS.contains(&n)))
        });
    for entry in walk {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                errors.push(LintError::Walk {
                    path: e.path().unwrap_or(root).to_path_buf(),
                    message: e.to_string(),
                });
                continue;
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        if let Some(kind) = FileKind::from_name(entry.path()) {
            out.push((entry.into_path(), kind));
        }
    }
    (out, errors)
}

/// What [`lint_paths`] found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// One report per file checked, in the order given (directories sorted).
    pub reports: Vec<FileReport>,
    /// Files that could not be read or parsed.
    pub errors: Vec<LintError>,
}

impl Outcome {
    /// Every unsuppressed finding.
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.reports.iter().flat_map(|r| r.findings.iter())
    }
}

/// Lints files and directories. A directory is walked ([`discover`]); there, JSON
/// files that are not task definitions (or not valid JSON) are skipped silently,
/// while a JSON file named explicitly must be one.
pub fn lint_paths(paths: &[PathBuf]) -> Outcome {
    let mut outcome = Outcome::default();
    for path in paths {
        if path.is_dir() {
            let (files, errors) = discover(path);
            outcome.errors.extend(errors);
            for (file, kind) in files {
                let result = if kind == FileKind::EcsTaskDefinition {
                    match read_text(&file) {
                        Ok(text) if ecs::looks_like_task_definition(&text) => {
                            lint_text(kind, &file, &text)
                        }
                        Ok(_) => continue,
                        Err(e) => Err(e),
                    }
                } else {
                    lint_file(&file, Some(kind))
                };
                match result {
                    Ok(r) => outcome.reports.push(r),
                    Err(e) => outcome.errors.push(e),
                }
            }
        } else {
            match lint_file(path, None) {
                Ok(r) => outcome.reports.push(r),
                Err(e) => outcome.errors.push(e),
            }
        }
    }
    outcome
}

/// 1-based line of byte `offset` in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_names() {
        let k = |n: &str| FileKind::from_name(Path::new(n));
        assert_eq!(k("a/Dockerfile"), Some(FileKind::Dockerfile));
        assert_eq!(k("api.Dockerfile"), Some(FileKind::Dockerfile));
        assert_eq!(k("Dockerfile.prod"), Some(FileKind::Dockerfile));
        assert_eq!(k("Containerfile"), Some(FileKind::Dockerfile));
        assert_eq!(k("Dockerfile.dockerignore"), None);
        assert_eq!(k("main.tf"), Some(FileKind::Terraform));
        assert_eq!(k("task.json"), Some(FileKind::EcsTaskDefinition));
        assert_eq!(k("README.md"), None);
    }

    #[test]
    fn line_of_offsets() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }
}
