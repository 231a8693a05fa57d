//! Finding secrets (private keys, cloud and forge tokens, high-entropy
//! assignments) in file contents.
//!
//! It owns the rules and the matching: given a path and its bytes,
//! [`Scanner::scan`] reports each secret with its rule, line and a redacted copy of
//! that line, honouring allow rules. It must not walk images or directories itself
//! (callers feed it files, so one pass over an image serves the inventory and the
//! secret scan) and must never return or log a secret's full value: a [`Finding`]
//! holds only the redacted line. Not to be confused with `hoist-secrets`, the sealed
//! store of deployment secrets.
//!
//! Design, as in Trivy and gitleaks: each [`Rule`] is a regex with a capture group
//! for the secret itself and a few lowercase keywords; a rule's regex only runs on a
//! file that contains one of its keywords (a cheap substring test that rules most
//! files out). Files that look binary (a NUL byte in the first 8 KiB) or that are
//! larger than [`Scanner::max_file_size`] are skipped. The generic rule also wants a
//! value whose Shannon entropy is high enough, so `password = "changeme"` passes and
//! placeholders (`${VAR}`, `<token>`, `xxxx`, `EXAMPLE`) never match.

mod entropy;
mod rules;

use regex::Regex;
use serde::{Deserialize, Serialize};

pub use rules::builtin_rules;

/// How bad a leaked secret is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// Unlikely to grant anything on its own.
    Low,
    /// Grants limited access.
    Medium,
    /// Grants access to an account or service.
    High,
    /// Grants broad access (cloud credentials, private keys).
    Critical,
}

/// One secret rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Stable identifier, e.g. `aws-access-key-id`.
    pub id: String,
    /// What kind of secret, e.g. `AWS`.
    pub category: String,
    /// One-line description.
    pub title: String,
    /// Severity of a finding.
    pub severity: Severity,
    /// The pattern. Capture group `secret` (or else group 1, or else the whole
    /// match) is the secret value that gets redacted.
    pub regex: Regex,
    /// Lowercase substrings one of which a file must contain for the regex to run;
    /// empty means always run.
    pub keywords: Vec<String>,
    /// Minimum Shannon entropy (bits per character) of the secret value, if any.
    pub min_entropy: Option<f64>,
}

/// A reason not to report a match: a path pattern, a value pattern, or both.
#[derive(Debug, Clone)]
pub struct AllowRule {
    /// Identifier shown when explaining why something was allowed.
    pub id: String,
    /// Files whose path (relative, no leading `/`) matches are not scanned.
    pub path: Option<Regex>,
    /// Matches whose secret value matches are not reported.
    pub value: Option<Regex>,
}

/// A secret found in a file. Never holds the secret's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule that matched.
    pub rule_id: String,
    /// Kind of secret.
    pub category: String,
    /// The rule's description.
    pub title: String,
    /// Severity.
    pub severity: Severity,
    /// The file (as given to [`Scanner::scan`]).
    pub path: String,
    /// 1-based line of the start of the secret.
    pub line: usize,
    /// The line with the secret replaced by `*` (at most 200 characters around it).
    pub redacted: String,
}

/// Invalid scanner configuration (a rule or allow pattern that is not a regex).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A pattern failed to compile.
    #[error("{what} {id:?}: invalid regex: {source}")]
    Regex {
        /// `rule` or `allow rule`.
        what: &'static str,
        /// The rule's id.
        id: String,
        /// Why.
        source: regex::Error,
    },
    /// A configured rule id does not exist.
    #[error("unknown secret rule {0:?} (see `hoist scan --list-secret-rules`)")]
    UnknownRule(String),
}

/// User configuration, as read from a file (`[[allow]]` entries, disabled rules).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Rule ids to turn off.
    #[serde(default)]
    pub disable: Vec<String>,
    /// Extra allow rules.
    #[serde(default)]
    pub allow: Vec<AllowConfig>,
}

/// An allow rule as configured: regex strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowConfig {
    /// Identifier.
    pub id: String,
    /// Path regex.
    #[serde(default)]
    pub path: Option<String>,
    /// Value regex.
    #[serde(default)]
    pub value: Option<String>,
}

/// Rules plus allow rules, ready to scan files.
#[derive(Debug, Clone)]
pub struct Scanner {
    rules: Vec<Rule>,
    allow: Vec<AllowRule>,
    /// Files larger than this are skipped (default 10 MiB).
    pub max_file_size: u64,
}

const BINARY_SNIFF: usize = 8192;
const MAX_EXCERPT: usize = 200;

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            rules: builtin_rules(),
            allow: rules::builtin_allow(),
            max_file_size: 10 << 20,
        }
    }
}

impl Scanner {
    /// The built-in rules and allow rules with `config` applied.
    pub fn with_config(config: &Config) -> Result<Scanner, ConfigError> {
        let mut scanner = Scanner::default();
        for id in &config.disable {
            if !scanner.rules.iter().any(|r| &r.id == id) {
                return Err(ConfigError::UnknownRule(id.clone()));
            }
            scanner.rules.retain(|r| &r.id != id);
        }
        for a in &config.allow {
            let compile = |p: &Option<String>| {
                p.as_deref()
                    .map(Regex::new)
                    .transpose()
                    .map_err(|source| ConfigError::Regex {
                        what: "allow rule",
                        id: a.id.clone(),
                        source,
                    })
            };
            scanner.allow.push(AllowRule {
                id: a.id.clone(),
                path: compile(&a.path)?,
                value: compile(&a.value)?,
            });
        }
        Ok(scanner)
    }

    /// The active rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether a file of this path and size is worth reading at all.
    pub fn wants(&self, path: &str, size: u64) -> bool {
        size > 0 && size <= self.max_file_size && !self.path_allowed(path)
    }

    fn path_allowed(&self, path: &str) -> bool {
        self.allow
            .iter()
            .any(|a| a.value.is_none() && a.path.as_ref().is_some_and(|p| p.is_match(path)))
    }

    fn value_allowed(&self, path: &str, value: &str) -> bool {
        self.allow.iter().any(|a| {
            a.value.as_ref().is_some_and(|v| v.is_match(value))
                && a.path.as_ref().is_none_or(|p| p.is_match(path))
        })
    }

    /// Scan one file's contents. `path` is how the finding names the file.
    pub fn scan(&self, path: &str, data: &[u8]) -> Vec<Finding> {
        if data.len() as u64 > self.max_file_size
            || data[..data.len().min(BINARY_SNIFF)].contains(&0)
            || self.path_allowed(path)
        {
            return Vec::new();
        }
        let text = String::from_utf8_lossy(data);
        let lower = text.to_ascii_lowercase();
        let mut findings = Vec::new();
        let mut seen = Vec::new();
        for rule in &self.rules {
            if !rule.keywords.is_empty() && !rule.keywords.iter().any(|k| lower.contains(k)) {
                continue;
            }
            for caps in rule.regex.captures_iter(&text) {
                let Some(secret) = caps
                    .name("secret")
                    .or_else(|| caps.get(1))
                    .or_else(|| caps.get(0))
                else {
                    continue;
                };
                let value = secret.as_str();
                if rule
                    .min_entropy
                    .is_some_and(|min| entropy::shannon(value) < min)
                    || rules::is_placeholder(value)
                    || self.value_allowed(path, value)
                {
                    continue;
                }
                // One finding per secret: a more specific rule listed earlier wins
                // over the generic one for the same bytes.
                let span = (secret.start(), secret.end());
                if seen
                    .iter()
                    .any(|&(s, e): &(usize, usize)| s < span.1 && span.0 < e)
                {
                    continue;
                }
                seen.push(span);
                let (line, redacted) = redact(&text, span);
                findings.push(Finding {
                    rule_id: rule.id.clone(),
                    category: rule.category.clone(),
                    title: rule.title.clone(),
                    severity: rule.severity,
                    path: path.to_owned(),
                    line,
                    redacted,
                });
            }
        }
        findings.sort_by(|a, b| a.line.cmp(&b.line).then(a.rule_id.cmp(&b.rule_id)));
        findings
    }
}

/// The 1-based line of `span` and that line with the secret masked, cut to at
/// most [`MAX_EXCERPT`] characters around the secret.
fn redact(text: &str, (start, end): (usize, usize)) -> (usize, String) {
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line = text[..start].matches('\n').count() + 1;
    // A multi-line secret (a key block) is masked to the end of its first line.
    let end = end.min(line_end);
    let masked = "*".repeat(text[start..end].chars().count().max(5));
    let before = &text[line_start..start];
    let after = &text[end..line_end];
    let budget = MAX_EXCERPT.saturating_sub(masked.len()) / 2;
    let before = tail_chars(before, budget);
    let after: String = after.chars().take(budget).collect();
    (
        line,
        format!("{before}{masked}{after}").trim_end().to_owned(),
    )
}

fn tail_chars(s: &str, n: usize) -> &str {
    let count = s.chars().count();
    if count <= n {
        return s;
    }
    let skip = s.char_indices().nth(count - n).map_or(0, |(i, _)| i);
    &s[skip..]
}
