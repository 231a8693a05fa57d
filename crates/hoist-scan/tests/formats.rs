//! Report formats checked by their reference validators: CycloneDX 1.5 by
//! cyclonedx-python-lib's strict JSON-schema validator, SPDX 2.3 by spdx-tools
//! (`pyspdxtools`), both from PyPI (installed by `.ci/run`). SARIF is checked for
//! the fields GitHub code scanning reads.

use std::path::Path;
use std::process::Command;

use hoist_inventory::{OsRelease, Package, PackageKind};
use hoist_scan::format::{cyclonedx, sarif, spdx, table, DocumentInfo};
use hoist_scan::{gate, Misconfig, Report, ScanTarget, Secret, Severity, Vulnerability};

fn package(kind: PackageKind, name: &str, version: &str, path: &str) -> Package {
    Package {
        kind,
        name: name.into(),
        version: version.into(),
        source_name: None,
        source_version: None,
        licenses: vec![],
        path: path.into(),
        layer: Some(format!("sha256:{}", "ab".repeat(32))),
    }
}

fn sample() -> Report {
    let mut report = Report::new(ScanTarget::Image {
        name: "app:v1".into(),
        digest: format!("sha256:{}", "cd".repeat(32)),
    });
    report.os = Some(OsRelease {
        id: "debian".into(),
        version_id: Some("12".into()),
        codename: Some("bookworm".into()),
        pretty_name: None,
    });
    let mut openssl = package(
        PackageKind::Deb,
        "libssl3",
        "3.0.11-1~deb12u1",
        "var/lib/dpkg/status",
    );
    openssl.source_name = Some("openssl".into());
    openssl.licenses = vec!["Apache-2.0".into()];
    let mut perl = package(
        PackageKind::Deb,
        "perl-base",
        "1:5.36.0-7+deb12u1",
        "var/lib/dpkg/status",
    );
    perl.licenses = vec!["GPL-1+ or Artistic".into()];
    report.packages = vec![
        openssl,
        perl,
        package(
            PackageKind::Python,
            "Django",
            "4.2.1",
            "usr/lib/python3/dist-packages/Django-4.2.1.dist-info/METADATA",
        ),
        package(
            PackageKind::Npm,
            "@babel/core",
            "7.22.0",
            "app/package-lock.json",
        ),
        package(
            PackageKind::Npm,
            "@babel/core",
            "7.22.0",
            "app/other/package-lock.json",
        ),
        package(
            PackageKind::Maven,
            "org.apache.logging.log4j:log4j-core",
            "2.14.1",
            "app/lib.jar",
        ),
        package(
            PackageKind::Go,
            "github.com/gorilla/mux",
            "v1.8.0",
            "usr/local/bin/server",
        ),
    ];
    report.vulnerabilities = vec![Vulnerability {
        id: "DSA-5532-1".into(),
        aliases: vec!["CVE-2023-5363".into()],
        kind: PackageKind::Deb,
        package: "libssl3".into(),
        installed: "3.0.11-1~deb12u1".into(),
        fixed: Some("3.0.11-1~deb12u2".into()),
        severity: Severity::High,
        score: Some(7.5),
        title: "openssl: incorrect cipher key and IV length processing".into(),
        path: "var/lib/dpkg/status".into(),
        layer: None,
    }];
    report.secrets = vec![Secret {
        rule_id: "aws-access-key-id".into(),
        category: "AWS".into(),
        title: "AWS access key ID".into(),
        severity: Severity::Critical,
        path: "app/.env".into(),
        line: 3,
        redacted: "AWS_ACCESS_KEY_ID=********************".into(),
        layer: None,
    }];
    report.misconfigurations = vec![Misconfig {
        rule_id: "DF001".into(),
        severity: Severity::Medium,
        title: "Runs as root".into(),
        message: "the image has no USER".into(),
        fix: "add USER".into(),
        path: "Dockerfile".into(),
        line: 1,
    }];
    report
}

fn info() -> DocumentInfo {
    DocumentInfo::now("0.0.0-test")
}

fn python(dir: &Path, script: &str) -> (bool, String) {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("python3 runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

const CDX_CHECK: &str = "
import sys
from cyclonedx.validation.json import JsonStrictValidator
from cyclonedx.schema import SchemaVersion
err = JsonStrictValidator(SchemaVersion.V1_5).validate_str(open('bom.json').read())
if err:
    print(err); sys.exit(1)
";

#[test]
fn cyclonedx_passes_the_reference_schema_validator() {
    let dir = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    cyclonedx::write(&sample(), &info(), &mut out).unwrap();
    std::fs::write(dir.path().join("bom.json"), &out).unwrap();
    let (ok, text) = python(dir.path(), CDX_CHECK);
    assert!(ok, "cyclonedx validator: {text}");

    let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let comps = doc["components"].as_array().unwrap();
    assert_eq!(comps.len(), 8, "os + 7 packages");
    assert_eq!(
        comps[1]["purl"],
        "pkg:deb/debian/libssl3@3.0.11-1~deb12u1?distro=debian-12"
    );
    assert_eq!(comps[4]["bom-ref"], "pkg:npm/%40babel/core@7.22.0");
    assert_eq!(comps[5]["bom-ref"], "pkg:npm/%40babel/core@7.22.0#2");
    assert_eq!(comps[6]["group"], "org.apache.logging.log4j");
    assert_eq!(
        doc["vulnerabilities"][0]["affects"][0]["ref"],
        comps[1]["bom-ref"]
    );

    // The validator does fail: a document missing a required field is rejected.
    let mut broken = doc.clone();
    broken.as_object_mut().unwrap().remove("bomFormat");
    std::fs::write(dir.path().join("bom.json"), broken.to_string()).unwrap();
    let (ok, _) = python(dir.path(), CDX_CHECK);
    assert!(!ok, "the validator accepted a BOM without bomFormat");
}

#[test]
fn spdx_passes_the_reference_validator() {
    let dir = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    spdx::write(&sample(), &info(), &mut out).unwrap();
    let file = dir.path().join("sbom.spdx.json");
    std::fs::write(&file, &out).unwrap();
    let run = |f: &Path| {
        let o = Command::new("pyspdxtools")
            .arg("-i")
            .arg(f)
            .output()
            .expect("pyspdxtools runs (pip install spdx-tools)");
        (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    };
    let (ok, text) = run(&file);
    assert!(ok && !text.contains("invalid"), "pyspdxtools: {text}");
    let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let pkgs = doc["packages"].as_array().unwrap();
    assert_eq!(pkgs.len(), 8, "root + 7 packages");
    assert_eq!(pkgs[1]["licenseDeclared"], "Apache-2.0");
    assert_eq!(pkgs[2]["licenseDeclared"], "LicenseRef-1", "free text");
    assert_eq!(
        doc["hasExtractedLicensingInfos"][0]["extractedText"],
        "GPL-1+ or Artistic"
    );
    assert_eq!(pkgs[3]["licenseDeclared"], "NOASSERTION");
    assert_eq!(
        pkgs[1]["sourceInfo"],
        "built from source package openssl 3.0.11-1~deb12u1"
    );

    let mut broken = doc.clone();
    broken["packages"][1]["SPDXID"] = serde_json::json!("not an spdx id");
    std::fs::write(&file, broken.to_string()).unwrap();
    let (ok, text) = run(&file);
    assert!(
        !ok || text.contains("invalid"),
        "pyspdxtools accepted a bad SPDXID: {text}"
    );
}

#[test]
fn sarif_has_what_github_code_scanning_reads() {
    let v = sarif::to_value(&sample(), "0.0.0-test");
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "hoist");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let results = run["results"].as_array().unwrap();
    assert_eq!((rules.len(), results.len()), (3, 3));
    for r in results {
        let rule = &rules[r["ruleIndex"].as_u64().unwrap() as usize];
        assert_eq!(rule["id"], r["ruleId"]);
        let loc = &r["locations"][0]["physicalLocation"];
        assert!(loc["artifactLocation"]["uri"].is_string());
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
    }
    let dsa = rules.iter().find(|r| r["id"] == "DSA-5532-1").unwrap();
    assert_eq!(dsa["properties"]["security-severity"], "7.5");
    assert_eq!(dsa["defaultConfiguration"]["level"], "error");
    let secret = results
        .iter()
        .find(|r| r["ruleId"] == "aws-access-key-id")
        .unwrap();
    assert_eq!(
        secret["locations"][0]["physicalLocation"]["region"]["startLine"],
        3
    );
}

#[test]
fn table_groups_findings_and_states_the_gate() {
    let report = sample();
    let verdict = gate::evaluate(&report, Some(Severity::High));
    let mut out = Vec::new();
    table::write(&report, &verdict, false, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    for want in [
        "app:v1 (debian 12): 7 packages, 1 vulnerabilities, 1 secrets, 1 misconfigurations",
        "Vulnerabilities",
        "DSA-5532-1",
        "3.0.11-1~deb12u2",
        "app/.env:3",
        "Dockerfile:1",
        "Total: 3 (CRITICAL: 1, HIGH: 1, MEDIUM: 1, LOW: 0, UNKNOWN: 0)",
        "gate: FAILED (2 findings at HIGH or above)",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(!text.contains('\x1b'), "no color when not asked");
    let mut colored = Vec::new();
    table::write(&report, &verdict, true, &mut colored).unwrap();
    assert!(String::from_utf8(colored)
        .unwrap()
        .contains("\x1b[1;31mCRITICAL"));
}
