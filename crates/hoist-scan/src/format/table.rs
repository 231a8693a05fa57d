//! The default, human format: one table per kind of finding, grouped by file,
//! most severe first, colored on a terminal.

use std::io::{self, Write};

use crate::gate::Verdict;
use crate::model::{Report, Severity};

/// The severity's name, colored for a terminal when `color`.
pub fn paint(s: Severity, color: bool) -> String {
    if !color {
        return s.as_str().to_owned();
    }
    let code = match s {
        Severity::Critical => "1;31",
        Severity::High => "31",
        Severity::Medium => "33",
        Severity::Low => "34",
        Severity::Unknown => "2",
    };
    format!("\x1b[{code}m{}\x1b[0m", s.as_str())
}

/// Left-aligned columns, widths from the content (severity cells are padded on
/// their plain text so color codes do not skew them). Each cell is
/// `(plain, shown)`: the text, and the same with color codes.
pub fn table(
    out: &mut dyn Write,
    header: &[&str],
    rows: &[Vec<(String, String)>],
) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, (plain, _)) in row.iter().enumerate() {
            widths[i] = widths[i].max(plain.chars().count().min(60));
        }
    }
    let line = |out: &mut dyn Write, cells: Vec<(String, String)>| -> io::Result<()> {
        let mut first = true;
        for (i, (plain, shown)) in cells.into_iter().enumerate() {
            if !first {
                write!(out, "  ")?;
            }
            first = false;
            let pad = widths[i].saturating_sub(plain.chars().count());
            write!(out, "{shown}{}", " ".repeat(pad))?;
        }
        writeln!(out)
    };
    line(
        out,
        header
            .iter()
            .map(|h| (h.to_string(), h.to_string()))
            .collect(),
    )?;
    line(
        out,
        widths
            .iter()
            .map(|w| ("-".repeat(*w), "-".repeat(*w)))
            .collect(),
    )?;
    for row in rows {
        line(out, row.clone())?;
    }
    Ok(())
}

fn cell(s: impl Into<String>) -> (String, String) {
    let s = s.into();
    (s.clone(), s)
}

fn sev(s: Severity, color: bool) -> (String, String) {
    (s.as_str().to_owned(), paint(s, color))
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Writes the report as tables, then the gate's summary line.
pub fn write(
    report: &Report,
    verdict: &Verdict,
    color: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    let os = report
        .os
        .as_ref()
        .map(|o| format!(" ({} {})", o.id, o.version_id.as_deref().unwrap_or("")))
        .unwrap_or_default();
    writeln!(
        out,
        "{}{os}: {} packages, {} vulnerabilities, {} secrets, {} misconfigurations",
        report.target.name(),
        report.packages.len(),
        report.vulnerabilities.len(),
        report.secrets.len(),
        report.misconfigurations.len()
    )?;
    for w in &report.warnings {
        writeln!(out, "warning: {w}")?;
    }
    if !report.vulnerabilities.is_empty() {
        writeln!(out, "\nVulnerabilities")?;
        let rows: Vec<_> = report
            .vulnerabilities
            .iter()
            .map(|v| {
                vec![
                    cell(&v.package),
                    cell(&v.id),
                    sev(v.severity, color),
                    cell(&v.installed),
                    cell(v.fixed.clone().unwrap_or_default()),
                    cell(truncate(&v.title, 60)),
                    cell(v.path.display().to_string()),
                ]
            })
            .collect();
        table(
            out,
            &[
                "PACKAGE",
                "VULNERABILITY",
                "SEVERITY",
                "INSTALLED",
                "FIXED",
                "TITLE",
                "FILE",
            ],
            &rows,
        )?;
    }
    if !report.secrets.is_empty() {
        writeln!(out, "\nSecrets")?;
        let rows: Vec<_> = report
            .secrets
            .iter()
            .map(|s| {
                vec![
                    cell(format!("{}:{}", s.path.display(), s.line)),
                    cell(&s.rule_id),
                    sev(s.severity, color),
                    cell(truncate(&s.redacted, 60)),
                    cell(s.layer.as_deref().map(short_layer).unwrap_or_default()),
                ]
            })
            .collect();
        table(out, &["FILE", "RULE", "SEVERITY", "MATCH", "LAYER"], &rows)?;
    }
    if !report.misconfigurations.is_empty() {
        writeln!(out, "\nMisconfigurations")?;
        let rows: Vec<_> = report
            .misconfigurations
            .iter()
            .map(|m| {
                vec![
                    cell(if m.line == 0 {
                        m.path.display().to_string()
                    } else {
                        format!("{}:{}", m.path.display(), m.line)
                    }),
                    cell(&m.rule_id),
                    sev(m.severity, color),
                    cell(truncate(&m.message, 70)),
                ]
            })
            .collect();
        table(out, &["FILE", "RULE", "SEVERITY", "MESSAGE"], &rows)?;
    }
    if !report.ignored.is_empty() {
        writeln!(
            out,
            "\n{} findings ignored by the ignore file",
            report.ignored.len()
        )?;
    }
    write_summary(verdict, out)
}

/// The gate's summary: the total per severity and, with a threshold, whether the
/// gate passed (the last lines of [`write`]).
pub fn write_summary(verdict: &Verdict, out: &mut dyn Write) -> io::Result<()> {
    let counts: Vec<String> = Severity::ALL
        .iter()
        .map(|s| {
            format!(
                "{}: {}",
                s.as_str(),
                verdict.counts.get(s).copied().unwrap_or(0)
            )
        })
        .collect();
    let total: usize = verdict.counts.values().sum();
    writeln!(out, "\nTotal: {total} ({})", counts.join(", "))?;
    if let Some(t) = verdict.fail_on {
        if verdict.failed() {
            writeln!(
                out,
                "gate: FAILED ({} findings at {} or above)",
                verdict.failing,
                t.as_str()
            )?;
        } else {
            writeln!(out, "gate: passed (nothing at {} or above)", t.as_str())?;
        }
    }
    Ok(())
}

fn short_layer(diff_id: &str) -> String {
    let hex = diff_id.split_once(':').map_or(diff_id, |(_, h)| h);
    hex.chars().take(12).collect()
}
