//! `hoist lint`: parse a Dockerfile and report every problem with `file:line:column`.

use anyhow::{bail, Context, Result};
use hoist_dockerfile::instruction::Dockerfile;
use serde_json::json;

use crate::cli::LintArgs;
use crate::settings::Settings;

/// Run `hoist lint`: exit 0 when the Dockerfile is valid (warnings allowed), 1 when
/// it has errors, each printed with its location, the line and a caret.
pub fn run(settings: &Settings, args: LintArgs) -> Result<()> {
    let display = args.file.display().to_string();
    let bytes = std::fs::read(&args.file).with_context(|| format!("{display}: cannot read"))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..offset]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        anyhow::anyhow!("{display}:{line}: the file is not valid UTF-8")
    })?;
    let (errors, warnings) = match Dockerfile::parse(&text) {
        Ok(df) => (Vec::new(), df.warnings),
        Err(e) => (e.with_file(&display).errors, Vec::new()),
    };
    if settings.json {
        let errors: Vec<_> = errors
            .iter()
            .map(|e| {
                json!({"file": display, "line": e.line, "column": e.column, "message": e.message,
                       "expected": e.expected, "source": e.source_line})
            })
            .collect();
        let warnings: Vec<_> = warnings
            .iter()
            .map(|w| json!({"file": display, "line": w.line, "message": w.message}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"errors": errors, "warnings": warnings}))?
        );
    } else {
        for w in &warnings {
            eprintln!("warning: {display}:{}: {}", w.line, w.message);
        }
        for e in &errors {
            eprintln!("error: {e}\n");
        }
    }
    if !errors.is_empty() {
        bail!("{display}: {} error(s)", errors.len());
    }
    if !settings.json {
        println!("{display}: ok");
    }
    Ok(())
}
