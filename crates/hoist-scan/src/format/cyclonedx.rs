//! CycloneDX 1.5 JSON: the SBOM, and the vulnerabilities when a scan found any.

use std::collections::HashSet;
use std::io::{self, Write};

use hoist_inventory::PackageKind;
use serde_json::{json, Value};

use super::DocumentInfo;
use crate::model::{Report, ScanTarget, Severity};
use crate::purl::purl;

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::High => "high",
        Severity::Medium => "medium",
        Severity::Low => "low",
        Severity::Unknown => "unknown",
    }
}

/// The report as a CycloneDX 1.5 document.
pub fn to_value(report: &Report, info: &DocumentInfo) -> Value {
    let root = match &report.target {
        ScanTarget::Image { name, digest } => json!({
            "bom-ref": digest,
            "type": "container",
            "name": name,
            "version": digest,
        }),
        ScanTarget::Directory { path } => json!({
            "bom-ref": "root",
            "type": "application",
            "name": path.display().to_string(),
        }),
    };
    let mut components = Vec::new();
    let mut refs = HashSet::new();
    let mut package_refs = Vec::new();
    if let Some(os) = &report.os {
        let mut c = json!({"bom-ref": "os", "type": "operating-system", "name": os.id});
        if let Some(v) = &os.version_id {
            c["version"] = json!(v);
        }
        components.push(c);
    }
    for p in &report.packages {
        let purl = purl(p, report.os.as_ref());
        // Two copies of one package in different files get distinct refs.
        let mut bom_ref = purl.clone();
        let mut n = 1;
        while !refs.insert(bom_ref.clone()) {
            n += 1;
            bom_ref = format!("{purl}#{n}");
        }
        package_refs.push(bom_ref.clone());
        let (group, name) = match (p.kind, p.name.split_once(':')) {
            (PackageKind::Maven, Some((g, a))) => (Some(g), a),
            _ => (None, p.name.as_str()),
        };
        let mut c = json!({
            "bom-ref": bom_ref,
            "type": "library",
            "name": name,
            "version": p.version,
            "purl": purl,
        });
        if let Some(g) = group {
            c["group"] = json!(g);
        }
        if !p.licenses.is_empty() {
            c["licenses"] = p
                .licenses
                .iter()
                .map(|l| json!({"license": {"name": l}}))
                .collect();
        }
        let mut props = vec![
            json!({"name": "hoist:package:type", "value": format!("{:?}", p.kind).to_lowercase()}),
            json!({"name": "hoist:file", "value": p.path.to_string_lossy()}),
        ];
        if let Some(l) = &p.layer {
            props.push(json!({"name": "hoist:layer", "value": l}));
        }
        if let Some(s) = &p.source_name {
            props.push(json!({"name": "hoist:source:name", "value": s}));
        }
        if let Some(s) = &p.source_version {
            props.push(json!({"name": "hoist:source:version", "value": s}));
        }
        c["properties"] = json!(props);
        components.push(c);
    }
    let root_ref = root["bom-ref"].clone();
    let mut doc = json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.5.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": format!("urn:uuid:{}", info.id),
        "version": 1,
        "metadata": {
            "timestamp": info.timestamp(),
            "tools": {"components": [{"type": "application", "name": "hoist", "version": info.tool_version}]},
            "component": root,
        },
        "components": components,
        "dependencies": [{"ref": root_ref, "dependsOn": package_refs}],
    });
    if !report.vulnerabilities.is_empty() {
        let vulns: Vec<Value> = report
            .vulnerabilities
            .iter()
            .map(|v| {
                let affected = report
                    .packages
                    .iter()
                    .position(|p| {
                        p.name == v.package && p.version == v.installed && p.path == v.path
                    })
                    .and_then(|i| package_refs.get(i).cloned());
                let mut rating = json!({"severity": severity(v.severity)});
                if let Some(s) = v.score {
                    rating["score"] = json!(s);
                }
                let mut out = json!({
                    "id": v.id,
                    "ratings": [rating],
                    "description": v.title,
                    "affects": affected.map(|r| vec![json!({"ref": r})]).unwrap_or_default(),
                });
                if let Some(f) = &v.fixed {
                    out["recommendation"] = json!(format!("Upgrade {} to {f}", v.package));
                }
                out
            })
            .collect();
        doc["vulnerabilities"] = json!(vulns);
    }
    doc
}

/// Writes the CycloneDX document.
pub fn write(report: &Report, info: &DocumentInfo, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_value(report, info))?;
    writeln!(out)
}
