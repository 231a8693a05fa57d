//! SPDX 2.3 JSON: the SBOM as a document that DESCRIBES the image (or directory),
//! which CONTAINS each package.

use std::io::{self, Write};

use serde_json::{json, Value};

use super::DocumentInfo;
use crate::model::{Report, ScanTarget};
use crate::purl::purl;

/// SPDXIDs allow letters, digits, `.` and `-` only.
fn spdx_id(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Declared licenses as an SPDX expression: an expression of SPDX license-list ids
/// (checked with the `spdx` crate) is passed on; free text from a package database
/// becomes a `LicenseRef-N` whose text goes in `hasExtractedLicensingInfos`, since an
/// expression with an unknown id makes the whole document invalid.
fn license(licenses: &[String], extracted: &mut Vec<String>) -> String {
    if licenses.is_empty() {
        return "NOASSERTION".into();
    }
    let parts: Vec<String> = licenses
        .iter()
        .map(|l| {
            if spdx::Expression::parse(l).is_ok() {
                if licenses.len() > 1 && l.contains(' ') {
                    format!("({l})")
                } else {
                    l.clone()
                }
            } else {
                let n = match extracted.iter().position(|e| e == l) {
                    Some(n) => n,
                    None => {
                        extracted.push(l.clone());
                        extracted.len() - 1
                    }
                };
                format!("LicenseRef-{}", n + 1)
            }
        })
        .collect();
    parts.join(" AND ")
}

/// The report as an SPDX 2.3 document.
pub fn to_value(report: &Report, info: &DocumentInfo) -> Value {
    let (root_name, root_version) = match &report.target {
        ScanTarget::Image { name, digest } => (name.clone(), Some(digest.clone())),
        ScanTarget::Directory { path } => (path.display().to_string(), None),
    };
    let mut root = json!({
        "name": root_name,
        "SPDXID": "SPDXRef-Root",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": if root_version.is_some() { "CONTAINER" } else { "SOURCE" },
    });
    if let Some(v) = &root_version {
        root["versionInfo"] = json!(v);
    }
    let mut packages = vec![root];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": "SPDXRef-Root",
    })];
    let mut extracted = Vec::new();
    for (i, p) in report.packages.iter().enumerate() {
        let id = format!("SPDXRef-Package-{}-{}", i + 1, spdx_id(&p.name));
        let mut pkg = json!({
            "name": p.name,
            "SPDXID": id,
            "versionInfo": p.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": license(&p.licenses, &mut extracted),
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": "LIBRARY",
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl(p, report.os.as_ref()),
            }],
        });
        let mut comment = format!("found in {}", p.path.display());
        if let Some(l) = &p.layer {
            comment.push_str(&format!(" (layer {l})"));
        }
        pkg["comment"] = json!(comment);
        if let Some(s) = &p.source_name {
            let v = p.source_version.as_deref().unwrap_or(&p.version);
            pkg["sourceInfo"] = json!(format!("built from source package {s} {v}"));
        }
        packages.push(pkg);
        relationships.push(json!({
            "spdxElementId": "SPDXRef-Root",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    }
    let extracted: Vec<Value> = extracted
        .iter()
        .enumerate()
        .map(|(n, text)| {
            json!({
                "licenseId": format!("LicenseRef-{}", n + 1),
                "name": text,
                "extractedText": text,
            })
        })
        .collect();
    let mut doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": root_name,
        "documentNamespace": format!("https://hoist.dev/spdx/{}-{}", spdx_id(&root_name), info.id),
        "creationInfo": {
            "created": info.timestamp(),
            "creators": [format!("Tool: hoist-{}", info.tool_version)],
        },
        "packages": packages,
        "relationships": relationships,
    });
    if !extracted.is_empty() {
        doc["hasExtractedLicensingInfos"] = json!(extracted);
    }
    doc
}

/// Writes the SPDX document.
pub fn write(report: &Report, info: &DocumentInfo, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_value(report, info))?;
    writeln!(out)
}
