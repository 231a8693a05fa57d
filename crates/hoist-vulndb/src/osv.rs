//! The OSV schema (<https://ossf.github.io/osv-schema/>) as serde types.
//!
//! Only the fields hoist reads are typed; unknown fields are ignored, and the
//! free-form `ecosystem_specific`/`database_specific` objects are kept as JSON
//! values. Every field but `id` is optional so that records from any database
//! (and any schema version) load.

use serde::{Deserialize, Serialize};

/// One OSV advisory record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Advisory {
    /// The advisory id, e.g. `GHSA-xxxx-xxxx-xxxx`, `DSA-5532-1`, `RUSTSEC-2023-0001`.
    pub id: String,
    /// RFC 3339 time of the last change.
    #[serde(default)]
    pub modified: Option<String>,
    /// RFC 3339 time of publication.
    #[serde(default)]
    pub published: Option<String>,
    /// RFC 3339 time of withdrawal; a withdrawn advisory matches nothing.
    #[serde(default)]
    pub withdrawn: Option<String>,
    /// Other ids of the same vulnerability (CVE, GHSA...).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// One-line summary.
    #[serde(default)]
    pub summary: Option<String>,
    /// Markdown details.
    #[serde(default)]
    pub details: Option<String>,
    /// Quantitative severities (CVSS vectors).
    #[serde(default)]
    pub severity: Vec<SeverityScore>,
    /// Affected packages and their versions.
    #[serde(default)]
    pub affected: Vec<Affected>,
    /// Database-specific data; GHSA puts a qualitative `severity` here.
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
    /// Links to more information.
    #[serde(default)]
    pub references: Vec<Reference>,
}

/// A `severity[]` item: a scoring method and its vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeverityScore {
    /// `CVSS_V2`, `CVSS_V3`, `CVSS_V4`, `Ubuntu`...
    #[serde(rename = "type")]
    pub kind: String,
    /// The vector (or for `Ubuntu` the priority word).
    pub score: String,
}

/// An `affected[]` item: one package and its affected versions.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Affected {
    /// The package; OSV requires it but some records omit it (GIT-only records).
    #[serde(default)]
    pub package: Option<Package>,
    /// Package-level severities (used instead of the top-level ones when present).
    #[serde(default)]
    pub severity: Vec<SeverityScore>,
    /// Version ranges.
    #[serde(default)]
    pub ranges: Vec<Range>,
    /// Explicitly listed affected versions.
    #[serde(default)]
    pub versions: Vec<String>,
    /// Ecosystem-specific data (opaque).
    #[serde(default)]
    pub ecosystem_specific: Option<serde_json::Value>,
    /// Database-specific data; may carry a qualitative `severity`.
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
}

/// `affected[].package`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// The ecosystem string, e.g. `PyPI`, `Debian:12`, `Alpine:v3.19`.
    #[serde(default)]
    pub ecosystem: String,
    /// The package name within the ecosystem.
    #[serde(default)]
    pub name: String,
    /// Package URL without version.
    #[serde(default)]
    pub purl: Option<String>,
}

/// `affected[].ranges[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// `SEMVER`, `ECOSYSTEM` or `GIT`.
    #[serde(rename = "type")]
    pub kind: RangeKind,
    /// Repository URL (GIT ranges).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// The timeline of events.
    #[serde(default)]
    pub events: Vec<Event>,
}

/// The type of a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RangeKind {
    /// SemVer 2.0 precedence.
    #[serde(rename = "SEMVER")]
    Semver,
    /// The ecosystem's own ordering.
    #[serde(rename = "ECOSYSTEM")]
    Ecosystem,
    /// Git commits (not evaluated by hoist).
    #[serde(rename = "GIT")]
    Git,
    /// A type this version of hoist does not know (ignored).
    #[serde(other)]
    Other,
}

/// One event of a range. OSV allows exactly one key per event object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RawEvent", into = "RawEvent")]
pub enum Event {
    /// The vulnerability starts at this version (`"0"`: before every version).
    Introduced(String),
    /// This version fixes it.
    Fixed(String),
    /// The last version known affected.
    LastAffected(String),
    /// An upper limit on the range (`"*"`: infinity).
    Limit(String),
    /// An event object with none of the four known keys (ignored).
    Unknown,
}

/// The wire shape of an event: tolerant of extra keys.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct RawEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    introduced: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fixed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_affected: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    limit: Option<String>,
}

impl From<RawEvent> for Event {
    fn from(r: RawEvent) -> Event {
        if let Some(v) = r.introduced {
            Event::Introduced(v)
        } else if let Some(v) = r.fixed {
            Event::Fixed(v)
        } else if let Some(v) = r.last_affected {
            Event::LastAffected(v)
        } else if let Some(v) = r.limit {
            Event::Limit(v)
        } else {
            Event::Unknown
        }
    }
}

impl From<Event> for RawEvent {
    fn from(e: Event) -> RawEvent {
        let mut r = RawEvent::default();
        match e {
            Event::Introduced(v) => r.introduced = Some(v),
            Event::Fixed(v) => r.fixed = Some(v),
            Event::LastAffected(v) => r.last_affected = Some(v),
            Event::Limit(v) => r.limit = Some(v),
            Event::Unknown => {}
        }
        r
    }
}

/// A `references[]` item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// `ADVISORY`, `WEB`, `FIX`...
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The URL.
    #[serde(default)]
    pub url: String,
}

/// The `severity` string of a `database_specific` object, if it has one.
pub(crate) fn database_severity(v: Option<&serde_json::Value>) -> Option<&str> {
    v?.get("severity")?.as_str()
}
