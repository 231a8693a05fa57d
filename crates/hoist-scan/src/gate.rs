//! The policy gate: does a report pass `--fail-on LEVEL`?

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{Report, Severity};

/// Counts by severity and whether the gate failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The threshold, if one was set.
    pub fail_on: Option<Severity>,
    /// Findings (vulnerabilities, secrets, misconfigurations) per severity.
    pub counts: BTreeMap<Severity, usize>,
    /// Findings at or above the threshold.
    pub failing: usize,
}

impl Verdict {
    /// Whether the gate failed (exit code 1).
    pub fn failed(&self) -> bool {
        self.failing > 0
    }
}

/// Counts `report`'s findings and compares them with `fail_on`. `Unknown` is below
/// every threshold; without a threshold nothing fails.
pub fn evaluate(report: &Report, fail_on: Option<Severity>) -> Verdict {
    let severities = report
        .vulnerabilities
        .iter()
        .map(|v| v.severity)
        .chain(report.secrets.iter().map(|s| s.severity))
        .chain(report.misconfigurations.iter().map(|m| m.severity));
    evaluate_severities(severities, fail_on)
}

/// The same gate over findings from another source (one severity per finding), such
/// as a registry's own scan.
pub fn evaluate_severities(
    severities: impl IntoIterator<Item = Severity>,
    fail_on: Option<Severity>,
) -> Verdict {
    let mut counts = BTreeMap::new();
    let mut failing = 0;
    for s in severities {
        *counts.entry(s).or_insert(0) += 1;
        if fail_on.is_some_and(|t| s != Severity::Unknown && s >= t) {
            failing += 1;
        }
    }
    Verdict {
        fail_on,
        counts,
        failing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Misconfig, ScanTarget};

    fn report(severities: &[Severity]) -> Report {
        let mut r = Report::new(ScanTarget::Directory { path: ".".into() });
        r.misconfigurations = severities
            .iter()
            .map(|&severity| Misconfig {
                rule_id: "R".into(),
                severity,
                title: String::new(),
                message: String::new(),
                fix: String::new(),
                path: "Dockerfile".into(),
                line: 1,
            })
            .collect();
        r
    }

    #[test]
    fn thresholds() {
        let r = report(&[Severity::Unknown, Severity::Low, Severity::High]);
        assert!(!evaluate(&r, None).failed());
        assert!(!evaluate(&r, Some(Severity::Critical)).failed());
        assert_eq!(evaluate(&r, Some(Severity::High)).failing, 1);
        assert_eq!(evaluate(&r, Some(Severity::Medium)).failing, 1);
        assert_eq!(evaluate(&r, Some(Severity::Low)).failing, 2);
        assert_eq!(
            evaluate(&r, Some(Severity::Low)).counts[&Severity::Unknown],
            1
        );
        assert!(!evaluate(&report(&[]), Some(Severity::Low)).failed());
        // Severities from elsewhere meet the same gate.
        assert_eq!(
            evaluate_severities(
                [Severity::Unknown, Severity::Low, Severity::High],
                Some(Severity::Medium)
            ),
            evaluate(&r, Some(Severity::Medium))
        );
    }
}
