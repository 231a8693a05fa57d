//! The ignore file, `.hoistignore`: findings a team has accepted, until a date.
//!
//! One entry per line, as in `.trivyignore` with two more fields:
//!
//! ```text
//! # comments and blank lines are skipped
//! CVE-2024-1234
//! CVE-2023-5678  openssl  2026-12-31  # no fix in bookworm yet
//! generic-secret-assignment  app/test.env  # a fixture, not a real key
//! ```
//!
//! Fields: the id (an advisory id or alias, or a secret or lint rule id); an
//! optional subject (a package name for vulnerabilities, a file path for secrets
//! and misconfigurations); an optional expiry date `YYYY-MM-DD` (the entry applies
//! up to and including that day); after `#`, the reason. An expired entry stops
//! ignoring and the scan warns about it.

use std::path::Path;

use time::Date;

use crate::model::{Ignored, Report};

/// One entry of the ignore file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The id it ignores.
    pub id: String,
    /// The package or file it is limited to, if any.
    pub subject: Option<String>,
    /// The last day it applies.
    pub expires: Option<Date>,
    /// Why.
    pub reason: Option<String>,
    /// 1-based line in the file.
    pub line: usize,
}

/// A parsed ignore file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreFile {
    /// Where it was read from (for messages).
    pub path: String,
    /// Its entries.
    pub entries: Vec<Entry>,
}

/// A line of the ignore file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}: {message}")]
pub struct IgnoreError {
    /// The file.
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

const DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

fn looks_like_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10 && b[4] == b'-' && b[7] == b'-'
}

impl IgnoreFile {
    /// Parses ignore-file text; `path` names it in errors.
    pub fn parse(path: &str, text: &str) -> Result<IgnoreFile, IgnoreError> {
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |message: String| IgnoreError {
                path: path.to_owned(),
                line,
                message,
            };
            let (body, reason) = match raw.split_once('#') {
                Some((b, r)) => (b, Some(r.trim().to_owned()).filter(|r| !r.is_empty())),
                None => (raw, None),
            };
            let fields: Vec<&str> = body.split_whitespace().collect();
            let Some((&id, rest)) = fields.split_first() else {
                continue;
            };
            let mut subject = None;
            let mut expires = None;
            for &field in rest {
                if looks_like_date(field) {
                    if expires.is_some() {
                        return Err(err(format!("{field:?}: a second expiry date")));
                    }
                    let date = Date::parse(field, DATE).map_err(|e| {
                        err(format!("{field:?} is not a valid date (YYYY-MM-DD): {e}"))
                    })?;
                    expires = Some(date);
                } else if subject.is_none() && expires.is_none() {
                    subject = Some(field.to_owned());
                } else {
                    return Err(err(format!(
                        "unexpected field {field:?}: an entry is `ID [PACKAGE|FILE] [YYYY-MM-DD] [# reason]`"
                    )));
                }
            }
            entries.push(Entry {
                id: id.to_owned(),
                subject,
                expires,
                reason,
                line,
            });
        }
        Ok(IgnoreFile {
            path: path.to_owned(),
            entries,
        })
    }

    /// Reads and parses a file.
    pub fn read(path: &Path) -> Result<IgnoreFile, IgnoreError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| IgnoreError {
            path: name.clone(),
            line: 0,
            message: format!("cannot read: {e}"),
        })?;
        IgnoreFile::parse(&name, &text)
    }

    /// Removes the findings the live entries cover from `report` (recording them in
    /// `report.ignored`) and warns in `report.warnings` about expired entries.
    /// `today` is the current date (a parameter, so this stays pure).
    pub fn apply(&self, report: &mut Report, today: Date) {
        let mut live = Vec::new();
        for e in &self.entries {
            match e.expires {
                Some(day) if day < today => report.warnings.push(format!(
                    "{}:{}: the ignore entry for {} expired on {day}; it no longer applies",
                    self.path, e.line, e.id
                )),
                _ => live.push(e),
            }
        }
        let find = |ids: &[&str], subject: &str| {
            live.iter().copied().find(|e| {
                ids.contains(&e.id.as_str()) && e.subject.as_deref().is_none_or(|s| s == subject)
            })
        };
        // Keeps what no live entry covers; records the rest in `ignored`.
        let mut ignored = Vec::new();
        let mut keep = |ids: &[&str], id: &str, subject: &str| match find(ids, subject) {
            Some(e) => {
                ignored.push(Ignored {
                    id: id.to_owned(),
                    subject: subject.to_owned(),
                    reason: e.reason.clone(),
                });
                false
            }
            None => true,
        };
        report.vulnerabilities.retain(|v| {
            let mut ids = vec![v.id.as_str()];
            ids.extend(v.aliases.iter().map(String::as_str));
            keep(&ids, &v.id, &v.package)
        });
        report
            .secrets
            .retain(|s| keep(&[s.rule_id.as_str()], &s.rule_id, &s.path.to_string_lossy()));
        report
            .misconfigurations
            .retain(|m| keep(&[m.rule_id.as_str()], &m.rule_id, &m.path.to_string_lossy()));
        report.ignored.extend(ignored);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ScanTarget, Secret, Severity, Vulnerability};
    use hoist_inventory::PackageKind;
    use time::macros::date;

    fn vuln(id: &str, alias: &str, package: &str) -> Vulnerability {
        Vulnerability {
            id: id.into(),
            aliases: vec![alias.into()],
            kind: PackageKind::Deb,
            package: package.into(),
            installed: "1.0".into(),
            fixed: None,
            severity: Severity::High,
            score: None,
            title: String::new(),
            path: "var/lib/dpkg/status".into(),
            layer: None,
        }
    }

    #[test]
    fn parses_every_field_and_reports_bad_lines() {
        let text = "# accepted risks\n\nCVE-2024-1\nCVE-2024-2 openssl 2026-12-31 # backport pending\nrule-x app/a.env #fixture\n";
        let f = IgnoreFile::parse(".hoistignore", text).unwrap();
        assert_eq!(f.entries.len(), 3);
        assert_eq!(f.entries[0].id, "CVE-2024-1");
        assert_eq!(f.entries[0].line, 3);
        assert_eq!(f.entries[1].subject.as_deref(), Some("openssl"));
        assert_eq!(f.entries[1].expires, Some(date!(2026 - 12 - 31)));
        assert_eq!(f.entries[1].reason.as_deref(), Some("backport pending"));
        assert_eq!(f.entries[2].reason.as_deref(), Some("fixture"));

        let e = IgnoreFile::parse(".hoistignore", "A\nB pkg 2026-13-01\n").unwrap_err();
        assert_eq!((e.line, e.path.as_str()), (2, ".hoistignore"));
        assert!(e.to_string().contains("not a valid date"), "{e}");
        let e = IgnoreFile::parse("x", "A pkg extra\n").unwrap_err();
        assert!(
            e.to_string().starts_with("x:1: unexpected field \"extra\""),
            "{e}"
        );
        let e = IgnoreFile::parse("x", "A 2026-01-01 2026-02-01\n").unwrap_err();
        assert!(e.to_string().contains("second expiry"), "{e}");
    }

    #[test]
    fn live_entries_ignore_by_id_alias_and_subject_and_expired_ones_warn() {
        let mut report = Report::new(ScanTarget::Directory { path: ".".into() });
        report.vulnerabilities = vec![
            vuln("DSA-1", "CVE-2024-1", "openssl"),
            vuln("DSA-2", "CVE-2024-2", "openssl"),
            vuln("DSA-2", "CVE-2024-2", "libssl3"),
            vuln("GHSA-3", "CVE-2024-3", "django"),
        ];
        report.secrets = vec![Secret {
            rule_id: "generic-secret-assignment".into(),
            category: "Generic".into(),
            title: String::new(),
            severity: Severity::Medium,
            path: "app/test.env".into(),
            line: 3,
            redacted: "x=*****".into(),
            layer: None,
        }];
        let text = "CVE-2024-1\nCVE-2024-2 openssl 2026-11-23 # until today\nGHSA-3 django 2026-11-22 # expired\ngeneric-secret-assignment app/test.env\n";
        let f = IgnoreFile::parse(".hoistignore", text).unwrap();
        f.apply(&mut report, date!(2026 - 11 - 23));
        let left: Vec<_> = report
            .vulnerabilities
            .iter()
            .map(|v| (v.id.as_str(), v.package.as_str()))
            .collect();
        assert_eq!(left, vec![("DSA-2", "libssl3"), ("GHSA-3", "django")]);
        assert!(report.secrets.is_empty());
        assert_eq!(report.ignored.len(), 3);
        assert_eq!(report.ignored[1].reason.as_deref(), Some("until today"));
        assert_eq!(report.warnings.len(), 1);
        assert!(
            report.warnings[0].contains(".hoistignore:3") && report.warnings[0].contains("expired"),
            "{:?}",
            report.warnings
        );
    }
}
