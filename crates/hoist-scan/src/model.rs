//! The scan report: what was scanned and everything found in it.

use std::fmt;
use std::path::PathBuf;

use hoist_inventory::{OsRelease, Package, PackageKind};
use serde::{Deserialize, Serialize};

/// One severity scale for every kind of finding. `Unknown` (an advisory that gives
/// no score) sorts below `Low`: `--fail-on low` does not fail on it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// No severity known.
    #[default]
    Unknown,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// All severities, most severe first.
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Unknown,
    ];

    /// Upper-case name, as Trivy prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "UNKNOWN",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }

    /// Parses `critical`, `HIGH`, `moderate` (GitHub's word for medium)...
    pub fn parse(s: &str) -> Option<Severity> {
        match s.to_ascii_lowercase().as_str() {
            "critical" => Some(Severity::Critical),
            "high" => Some(Severity::High),
            "medium" | "moderate" => Some(Severity::Medium),
            "low" => Some(Severity::Low),
            "unknown" | "none" => Some(Severity::Unknown),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<hoist_secretscan::Severity> for Severity {
    fn from(s: hoist_secretscan::Severity) -> Self {
        match s {
            hoist_secretscan::Severity::Low => Severity::Low,
            hoist_secretscan::Severity::Medium => Severity::Medium,
            hoist_secretscan::Severity::High => Severity::High,
            hoist_secretscan::Severity::Critical => Severity::Critical,
        }
    }
}

impl From<hoist_vulndb::Severity> for Severity {
    fn from(s: hoist_vulndb::Severity) -> Self {
        match s {
            hoist_vulndb::Severity::Unknown | hoist_vulndb::Severity::None => Severity::Unknown,
            hoist_vulndb::Severity::Low => Severity::Low,
            hoist_vulndb::Severity::Medium => Severity::Medium,
            hoist_vulndb::Severity::High => Severity::High,
            hoist_vulndb::Severity::Critical => Severity::Critical,
        }
    }
}

impl From<hoist_lint::Severity> for Severity {
    fn from(s: hoist_lint::Severity) -> Self {
        match s {
            hoist_lint::Severity::Low => Severity::Low,
            hoist_lint::Severity::Medium => Severity::Medium,
            hoist_lint::Severity::High => Severity::High,
            hoist_lint::Severity::Critical => Severity::Critical,
        }
    }
}

/// What was scanned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ScanTarget {
    /// An image: the name it was asked by and its manifest digest.
    Image {
        /// As given (`app:v1`, a digest...).
        name: String,
        /// Manifest digest.
        digest: String,
    },
    /// A directory on disk.
    Directory {
        /// The path as given.
        path: PathBuf,
    },
}

impl ScanTarget {
    /// A short name: the image name or the directory path.
    pub fn name(&self) -> String {
        match self {
            ScanTarget::Image { name, .. } => name.clone(),
            ScanTarget::Directory { path } => path.display().to_string(),
        }
    }
}

/// A package affected by an advisory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Vulnerability {
    /// Advisory id (`CVE-2024-1234`, `GHSA-...`, `DSA-...`).
    pub id: String,
    /// Other ids of the same advisory.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Kind of the affected package.
    pub kind: PackageKind,
    /// The affected package's name (for OS packages, the binary package).
    pub package: String,
    /// The installed version.
    pub installed: String,
    /// A version that fixes it, if the advisory gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed: Option<String>,
    /// Severity.
    pub severity: Severity,
    /// CVSS base score, when one was scored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    /// The advisory's summary.
    pub title: String,
    /// The file the package was found in.
    pub path: PathBuf,
    /// The layer that brought it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
}

/// A secret found in a file (redacted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Secret {
    /// Rule id.
    pub rule_id: String,
    /// Kind of secret.
    pub category: String,
    /// What the rule finds.
    pub title: String,
    /// Severity.
    pub severity: Severity,
    /// File.
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// The line with the secret masked.
    pub redacted: String,
    /// The layer that holds the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
}

impl Secret {
    /// From a scanner finding and the layer its file came from.
    pub fn from_finding(f: hoist_secretscan::Finding, layer: Option<String>) -> Secret {
        Secret {
            rule_id: f.rule_id,
            category: f.category,
            title: f.title,
            severity: f.severity.into(),
            path: PathBuf::from(f.path),
            line: f.line,
            redacted: f.redacted,
            layer,
        }
    }
}

/// A misconfiguration found by a lint rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Misconfig {
    /// Rule id.
    pub rule_id: String,
    /// Severity.
    pub severity: Severity,
    /// The rule's title.
    pub title: String,
    /// What was found, specifically.
    pub message: String,
    /// How to fix it.
    pub fix: String,
    /// File ([`crate::scan::IMAGE_CONFIG_PATH`] for an image config).
    pub path: PathBuf,
    /// 1-based line (0 for an image config).
    pub line: usize,
}

/// A finding the ignore file suppressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ignored {
    /// The finding's id (advisory or rule).
    pub id: String,
    /// The package or file it was about.
    pub subject: String,
    /// The ignore file's reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Everything one scan found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// What was scanned.
    pub target: ScanTarget,
    /// The distribution, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<OsRelease>,
    /// Every package found.
    pub packages: Vec<Package>,
    /// Vulnerable packages, most severe first.
    pub vulnerabilities: Vec<Vulnerability>,
    /// Secrets, most severe first.
    pub secrets: Vec<Secret>,
    /// Misconfigurations, most severe first.
    pub misconfigurations: Vec<Misconfig>,
    /// Findings the ignore file suppressed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<Ignored>,
    /// Things the reader should know (an old database, an expired ignore entry, a
    /// layer that could not be read).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Report {
    /// An empty report for `target`.
    pub fn new(target: ScanTarget) -> Report {
        Report {
            target,
            os: None,
            packages: Vec::new(),
            vulnerabilities: Vec::new(),
            secrets: Vec::new(),
            misconfigurations: Vec::new(),
            ignored: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Sorts findings most severe first, then by id/package/file for a stable order.
    pub fn sort(&mut self) {
        self.vulnerabilities.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.package.cmp(&b.package))
                .then_with(|| a.id.cmp(&b.id))
                .then_with(|| a.path.cmp(&b.path))
        });
        self.secrets.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.path.cmp(&b.path))
                .then_with(|| a.line.cmp(&b.line))
        });
        self.misconfigurations.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.path.cmp(&b.path))
                .then_with(|| a.line.cmp(&b.line))
        });
    }
}
