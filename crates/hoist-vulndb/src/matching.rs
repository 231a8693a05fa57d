//! OSV range evaluation over the compact per-package entries the database
//! stores. Pure: data in, data out.

use std::cmp::Ordering;

use hoist_version::Scheme;
use serde::{Deserialize, Serialize};

use crate::cvss::{self, Severity};
use crate::osv::{self, Advisory, Event, Range, RangeKind, SeverityScore};

/// What the database keeps for one `affected[]` item of one advisory: enough to
/// decide a match and to report it, nothing else (no details or references).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    /// The advisory's ecosystem string, as written.
    pub ecosystem: String,
    /// The advisory's package name, as written.
    pub name: String,
    /// SEMVER and ECOSYSTEM ranges only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<Range>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
}

/// The severity and score of an advisory (or of one affected package when it
/// has its own): the first CVSS v4 vector that scores, else the first v3 one,
/// else a qualitative word (Ubuntu priority, `database_specific.severity` of
/// the package, then of the advisory; GHSA's `MODERATE` is MEDIUM), else UNKNOWN.
pub fn assess(
    scores: &[SeverityScore],
    package_db: Option<&serde_json::Value>,
    advisory_db: Option<&serde_json::Value>,
) -> (Severity, Option<f32>) {
    for kind in ["CVSS_V4", "CVSS_V3"] {
        for s in scores.iter().filter(|s| s.kind == kind) {
            if let Ok(score) = cvss::score(&s.score) {
                return (Severity::from_score(score), Some(score as f32));
            }
        }
    }
    let words = scores
        .iter()
        .filter(|s| s.kind == "Ubuntu")
        .map(|s| s.score.as_str())
        .chain(osv::database_severity(package_db))
        .chain(osv::database_severity(advisory_db));
    for w in words {
        if let Some(sev) = Severity::from_word(w) {
            return (sev, None);
        }
    }
    (Severity::Unknown, None)
}

/// The entries of an advisory, one per `affected[]` item with a package;
/// none for a withdrawn advisory.
pub(crate) fn entries(adv: &Advisory) -> Vec<Entry> {
    if adv.withdrawn.is_some() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for aff in &adv.affected {
        let Some(pkg) = &aff.package else { continue };
        if pkg.name.is_empty() || pkg.ecosystem.is_empty() {
            continue;
        }
        let scores = if aff.severity.is_empty() {
            &adv.severity
        } else {
            &aff.severity
        };
        let (severity, score) = assess(
            scores,
            aff.database_specific.as_ref(),
            adv.database_specific.as_ref(),
        );
        let ranges: Vec<Range> = aff
            .ranges
            .iter()
            .filter(|r| matches!(r.kind, RangeKind::Semver | RangeKind::Ecosystem))
            .map(|r| Range {
                kind: r.kind,
                repo: None,
                events: r.events.clone(),
            })
            .collect();
        if ranges.is_empty() && aff.versions.is_empty() {
            continue;
        }
        out.push(Entry {
            id: adv.id.clone(),
            aliases: adv.aliases.clone(),
            summary: adv.summary.clone(),
            modified: adv.modified.clone(),
            severity,
            score,
            ecosystem: pkg.ecosystem.clone(),
            name: pkg.name.clone(),
            ranges,
            versions: aff.versions.clone(),
        });
    }
    out
}

/// The outcome of evaluating one entry against a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Not affected.
    Clear,
    /// Affected; the fixed version of the range that matched, if it has one.
    Affected { fixed: Option<String> },
}

/// Evaluates an entry per the OSV schema's `IsVulnerable`: listed in
/// `versions`, or inside any SEMVER/ECOSYSTEM range. `ecosystem_scheme` orders
/// ECOSYSTEM ranges (None: those ranges cannot be evaluated and are skipped, as
/// are ranges whose versions the scheme cannot parse).
pub(crate) fn evaluate(entry: &Entry, ecosystem_scheme: Option<Scheme>, version: &str) -> Verdict {
    for range in &entry.ranges {
        let (scheme, v) = match range.kind {
            // SemVer 2.0 has no `v` prefix; Go queries carry one.
            RangeKind::Semver => (Scheme::Semver, version.strip_prefix('v').unwrap_or(version)),
            RangeKind::Ecosystem => match ecosystem_scheme {
                Some(s) => (s, version),
                None => continue,
            },
            _ => continue,
        };
        if let Some(fixed) = in_range(scheme, &range.events, v) {
            return Verdict::Affected { fixed };
        }
    }
    if entry.versions.iter().any(|v| v == version) {
        Verdict::Affected { fixed: None }
    } else {
        Verdict::Clear
    }
}

/// `Some(fixed)` when `v` is inside the range (with the fixed version closing
/// the interval it is in, if any); `None` when outside or not evaluable.
fn in_range(scheme: Scheme, events: &[Event], v: &str) -> Option<Option<String>> {
    let cmp = |a: &str, b: &str| scheme.compare(a, b).ok();
    // BeforeLimits: no limit means an implicit "*".
    let limits: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Limit(l) => Some(l.as_str()),
            _ => None,
        })
        .collect();
    if !limits.is_empty() {
        let mut before = false;
        for l in limits {
            if l == "*" {
                before = true;
            } else {
                before |= cmp(v, l)? == Ordering::Less;
            }
        }
        if !before {
            return None;
        }
    }
    // Sort the events by version, `introduced: "0"` first.
    let mut sorted: Vec<&Event> = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Introduced(_) | Event::Fixed(_) | Event::LastAffected(_)
            )
        })
        .collect();
    let key = |e: &Event| -> Option<String> {
        match e {
            Event::Introduced(x) if x == "0" => None,
            Event::Introduced(x) | Event::Fixed(x) | Event::LastAffected(x) => Some(x.clone()),
            _ => None,
        }
    };
    let mut failed = false;
    sorted.sort_by(|a, b| match (key(a), key(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => cmp(&x, &y).unwrap_or_else(|| {
            failed = true;
            Ordering::Equal
        }),
    });
    if failed {
        return None;
    }
    let mut vulnerable = false;
    let mut fixed_after: Option<String> = None;
    for e in sorted {
        match e {
            Event::Introduced(x) => {
                vulnerable |= x == "0" || cmp(v, x)? != Ordering::Less;
            }
            Event::Fixed(x) => {
                if cmp(v, x)? != Ordering::Less {
                    vulnerable = false;
                } else if vulnerable && fixed_after.is_none() {
                    fixed_after = Some(x.clone());
                }
            }
            Event::LastAffected(x) => {
                vulnerable &= cmp(v, x)? != Ordering::Greater;
            }
            _ => {}
        }
    }
    vulnerable.then_some(fixed_after)
}
