//! SARIF 2.1.0, the format GitHub code scanning uploads.
//!
//! One run, tool `hoist`, one rule per advisory or rule id, one result per
//! finding. Levels: CRITICAL and HIGH are `error`, MEDIUM `warning`, the rest
//! `note`; `properties.security-severity` (what GitHub sorts by) is the CVSS score
//! when there is one, else a score inside the severity's CVSS band.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde_json::{json, Value};

use crate::model::{Report, Severity};

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Unknown => "note",
    }
}

fn band_score(s: Severity) -> f32 {
    match s {
        Severity::Critical => 9.5,
        Severity::High => 8.0,
        Severity::Medium => 5.5,
        Severity::Low => 2.0,
        Severity::Unknown => 0.0,
    }
}

struct RuleInfo {
    short: String,
    full: String,
    help: String,
    severity: Severity,
    score: f32,
    tags: Vec<&'static str>,
}

/// The report as a SARIF 2.1.0 log.
pub fn to_value(report: &Report, tool_version: &str) -> Value {
    let mut rules: BTreeMap<String, RuleInfo> = BTreeMap::new();
    let mut results = Vec::new();
    let target = report.target.name();
    let location = |uri: String, line: usize| {
        json!([{
            "physicalLocation": {
                "artifactLocation": {"uri": uri},
                "region": {"startLine": line.max(1)}
            },
            "message": {"text": target}
        }])
    };
    for v in &report.vulnerabilities {
        let score = v.score.unwrap_or_else(|| band_score(v.severity));
        rules.entry(v.id.clone()).or_insert_with(|| RuleInfo {
            short: if v.title.is_empty() {
                v.id.clone()
            } else {
                v.title.clone()
            },
            full: v.title.clone(),
            help: format!(
                "Vulnerability {}\nSeverity: {}\nFixed version: {}",
                v.id,
                v.severity,
                v.fixed.as_deref().unwrap_or("none")
            ),
            severity: v.severity,
            score,
            tags: vec!["vulnerability", "security"],
        });
        let fixed = v
            .fixed
            .as_deref()
            .map(|f| format!(", fixed in {f}"))
            .unwrap_or_default();
        results.push(json!({
            "ruleId": v.id,
            "level": level(v.severity),
            "message": {"text": format!("Package: {}\nInstalled version: {}{fixed}\nSeverity: {}\n{}", v.package, v.installed, v.severity, v.title)},
            "locations": location(v.path.to_string_lossy().into_owned(), 1),
        }));
    }
    for s in &report.secrets {
        rules.entry(s.rule_id.clone()).or_insert_with(|| RuleInfo {
            short: s.title.clone(),
            full: format!("{} ({})", s.title, s.category),
            help: "Remove the secret from the image or repository and revoke it.".into(),
            severity: s.severity,
            score: band_score(s.severity),
            tags: vec!["secret", "security"],
        });
        results.push(json!({
            "ruleId": s.rule_id,
            "level": level(s.severity),
            "message": {"text": format!("{}: {}", s.title, s.redacted)},
            "locations": location(s.path.to_string_lossy().into_owned(), s.line),
        }));
    }
    for m in &report.misconfigurations {
        rules.entry(m.rule_id.clone()).or_insert_with(|| RuleInfo {
            short: m.title.clone(),
            full: m.title.clone(),
            help: m.fix.clone(),
            severity: m.severity,
            score: band_score(m.severity),
            tags: vec!["misconfiguration", "security"],
        });
        results.push(json!({
            "ruleId": m.rule_id,
            "level": level(m.severity),
            "message": {"text": m.message},
            "locations": location(m.path.to_string_lossy().into_owned(), m.line),
        }));
    }
    let index: BTreeMap<&str, usize> = rules
        .keys()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    for r in &mut results {
        let id = r["ruleId"].as_str().unwrap_or_default().to_owned();
        if let Some(i) = index.get(id.as_str()) {
            r["ruleIndex"] = json!(i);
        }
    }
    let rules: Vec<Value> = rules
        .into_iter()
        .map(|(id, r)| {
            json!({
                "id": id,
                "name": id,
                "shortDescription": {"text": r.short},
                "fullDescription": {"text": r.full},
                "help": {"text": r.help},
                "defaultConfiguration": {"level": level(r.severity)},
                "properties": {
                    "security-severity": format!("{:.1}", r.score),
                    "precision": "very-high",
                    "tags": r.tags,
                }
            })
        })
        .collect();
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "hoist",
                "informationUri": "https://github.com/hoist-dev/hoist",
                "version": tool_version,
                "rules": rules,
            }},
            "results": results,
        }]
    })
}

/// Writes the SARIF log.
pub fn write(report: &Report, tool_version: &str, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_value(report, tool_version))?;
    writeln!(out)
}
