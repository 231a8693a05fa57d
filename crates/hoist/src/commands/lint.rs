//! `hoist lint`: syntax errors and misconfiguration findings for Dockerfiles,
//! Terraform and ECS task definitions, each with `file:line`.

use std::io::{self, Write};

use anyhow::{bail, Result};
use hoist_lint::{FileReport, Finding, LintError, Severity, RULES};
use serde_json::{json, Value};

use crate::cli::LintArgs;
use crate::settings::Settings;

/// Run `hoist lint`: print findings (stdout) and syntax errors and warnings
/// (stderr). Exit 1 when a file could not be read or parsed, or when a finding is
/// at or above `--fail-on` (default: any finding); 0 otherwise.
pub fn run(settings: &Settings, args: LintArgs) -> Result<()> {
    if args.rules {
        return quiet_broken_pipe(print_rules(settings, &mut io::stdout().lock()));
    }
    let outcome = hoist_lint::lint_paths(&args.paths);
    if settings.json {
        let json = json!({
            "files": outcome.reports.iter().map(|r| json!({
                "file": r.path.display().to_string(), "kind": r.kind.as_str(),
            })).collect::<Vec<_>>(),
            "findings": outcome.findings().map(finding_json).collect::<Vec<_>>(),
            "suppressed": outcome.reports.iter().flat_map(|r| &r.suppressed)
                .map(finding_json).collect::<Vec<_>>(),
            "errors": outcome.errors.iter().flat_map(error_json).collect::<Vec<_>>(),
            "warnings": outcome.reports.iter().flat_map(|r| r.warnings.iter().map(move |w| {
                json!({"file": r.path.display().to_string(), "line": w.line, "message": w.message})
            })).collect::<Vec<_>>(),
        });
        quiet_broken_pipe(writeln!(
            io::stdout().lock(),
            "{}",
            serde_json::to_string_pretty(&json)?
        ))?;
    } else {
        quiet_broken_pipe(print_table(
            &outcome.reports,
            &outcome.errors,
            &mut io::stdout().lock(),
        ))?;
    }

    if !outcome.errors.is_empty() {
        let n: usize = outcome.errors.iter().map(error_count).sum();
        match outcome.errors.as_slice() {
            [one] => bail!("{}: {n} error(s)", one.path().display()),
            many => bail!("{n} error(s) in {} file(s)", many.len()),
        }
    }
    if let Some(threshold) = args.fail_on.threshold() {
        let failing = outcome
            .findings()
            .filter(|f| f.rule.severity >= threshold)
            .count();
        if failing > 0 {
            bail!("{failing} finding(s) at or above {threshold} severity");
        }
    }
    Ok(())
}

/// A reader that went away (`hoist lint | head`) is not an error.
fn quiet_broken_pipe(r: io::Result<()>) -> Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn print_table(
    reports: &[FileReport],
    errors: &[LintError],
    out: &mut impl Write,
) -> io::Result<()> {
    let mut counts = [0usize; 4];
    let mut suppressed = 0;
    for r in reports {
        for w in &r.warnings {
            eprintln!("warning: {}:{}: {}", r.path.display(), w.line, w.message);
        }
        for f in &r.findings {
            writeln!(out, "{f}")?;
            counts[f.rule.severity as usize] += 1;
        }
        suppressed += r.suppressed.len();
        if r.findings.is_empty() {
            writeln!(out, "{}: ok", r.path.display())?;
        }
    }
    for e in errors {
        match e {
            // One block per syntax error: location, message, the line and a caret.
            LintError::Dockerfile { errors, .. } => {
                for e in &errors.errors {
                    eprintln!("error: {e}\n");
                }
            }
            other => eprintln!("error: {other}"),
        }
    }
    let total: usize = counts.iter().sum();
    if total > 0 || suppressed > 0 {
        let by: Vec<String> = Severity::ALL
            .iter()
            .rev()
            .map(|s| format!("{} {s}", counts[*s as usize]))
            .collect();
        eprintln!(
            "{total} finding(s) ({}), {suppressed} suppressed, in {} file(s)",
            by.join(", "),
            reports.len()
        );
    }
    Ok(())
}

fn finding_json(f: &Finding) -> Value {
    json!({
        "file": f.file.display().to_string(),
        "line": f.line,
        "column": f.column,
        "rule": f.rule.id,
        "severity": f.rule.severity.as_str(),
        "title": f.rule.title,
        "message": f.message,
        "fix": f.rule.fix,
    })
}

fn error_count(e: &LintError) -> usize {
    match e {
        LintError::Dockerfile { errors, .. } => errors.errors.len(),
        _ => 1,
    }
}

fn error_json(e: &LintError) -> Vec<Value> {
    let file = e.path().display().to_string();
    match e {
        LintError::Dockerfile { errors, .. } => errors
            .errors
            .iter()
            .map(|e| {
                json!({"file": file, "line": e.line, "column": e.column, "message": e.message,
                       "expected": e.expected, "source": e.source_line})
            })
            .collect(),
        LintError::Syntax {
            line,
            column,
            message,
            ..
        } => vec![json!({"file": file, "line": line, "column": column, "message": message})],
        LintError::Utf8 { line, .. } => {
            vec![json!({"file": file, "line": line, "message": e.to_string()})]
        }
        other => vec![json!({"file": file, "message": other.to_string()})],
    }
}

fn print_rules(settings: &Settings, out: &mut impl Write) -> io::Result<()> {
    if settings.json {
        let rules: Vec<_> = RULES
            .iter()
            .map(|r| {
                json!({"id": r.id, "severity": r.severity.as_str(), "title": r.title,
                       "why": r.why, "fix": r.fix})
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&rules)?)?;
    } else {
        for r in RULES {
            writeln!(out, "{:<11} {:<8} {}", r.id, r.severity.as_str(), r.title)?;
            writeln!(out, "            why: {}", r.why)?;
            writeln!(out, "            fix: {}", r.fix)?;
        }
    }
    Ok(())
}
