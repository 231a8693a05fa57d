//! `hoist lint`: every problem reported with file:line:column, misconfiguration
//! findings with file:line and rule ID, exit codes that gate CI.
#![allow(clippy::unwrap_used)]

mod util;

use std::fs;

use util::Env;

#[test]
fn reports_every_error_with_its_location() {
    let env = Env::new();
    let file = env.path("Dockerfile");
    fs::write(
        &file,
        "FROM busybox AS base\nRUN --bogus=1 echo hi\nCOPY --chmod=999z a b\nEXPOSE 80/tcp\nHEALTHCHECK --interval=abc CMD true\n",
    )
    .unwrap();
    let err = env.fails(&["lint", file.to_str().unwrap()]);
    let path = file.display().to_string();
    assert!(err.contains(&format!("{path}:2:")), "{err}");
    assert!(err.contains(&format!("{path}:5:")), "{err}");
    assert!(
        err.contains("RUN --bogus=1 echo hi"),
        "the offending line is quoted: {err}"
    );
    assert!(err.contains('^'), "a caret points at the column: {err}");
}

#[test]
fn a_valid_dockerfile_passes_and_json_lists_warnings() {
    let env = Env::new();
    let file = env.path("Dockerfile");
    fs::write(
        &file,
        "# syntax=docker/dockerfile:1\nARG BASE=busybox:1.36\nFROM $BASE AS build\nRUN <<EOF\necho hi > /x\nEOF\nFROM scratch\nCOPY --from=build /x /x\nUSER 65534\nHEALTHCHECK NONE\nCMD [\"/x\"]\n",
    )
    .unwrap();
    let out = env.ok(&["lint", file.to_str().unwrap()]);
    assert!(out.contains("ok"), "{out}");
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["--json", "lint", file.to_str().unwrap()])).unwrap();
    assert_eq!(json["errors"].as_array().unwrap().len(), 0);
    assert_eq!(json["findings"].as_array().unwrap().len(), 0);
}

#[test]
fn a_missing_file_names_the_path() {
    let env = Env::new();
    let err = env.fails(&["lint", "/nonexistent/Dockerfile"]);
    assert!(err.contains("/nonexistent/Dockerfile"), "{err}");
}

/// A project tree with one problem of each kind, plus files the walk must skip.
fn project(env: &Env) -> std::path::PathBuf {
    let root = env.path("project");
    fs::create_dir_all(root.join("infra")).unwrap();
    fs::create_dir_all(root.join("deploy")).unwrap();
    fs::create_dir_all(root.join(".terraform/modules/vpc")).unwrap();
    fs::write(
        root.join("Dockerfile"),
        "FROM debian:12.5\nRUN useradd -u 10001 app\nHEALTHCHECK NONE\nUSER root\nCMD [\"/app\"]\n",
    )
    .unwrap();
    fs::write(
        root.join("infra/main.tf"),
        "resource \"aws_security_group\" \"ssh\" {\n  ingress {\n    from_port   = 22\n    to_port     = 22\n    protocol    = \"tcp\"\n    cidr_blocks = [\"0.0.0.0/0\"]\n  }\n}\n",
    )
    .unwrap();
    fs::write(
        root.join("deploy/task.json"),
        "{\n  \"family\": \"api\",\n  \"containerDefinitions\": [\n    {\n      \"name\": \"api\",\n      \"user\": \"10001\",\n      \"readonlyRootFilesystem\": true,\n      \"privileged\": true\n    }\n  ]\n}\n",
    )
    .unwrap();
    // Not task definitions, or not ours to check: skipped.
    fs::write(
        root.join("package.json"),
        "{\"name\": \"web\", \"version\": \"1.0.0\"}\n",
    )
    .unwrap();
    fs::write(root.join("deploy/broken.json"), "{ not json").unwrap();
    fs::write(root.join("README.md"), "USER root\n").unwrap();
    fs::write(
        root.join(".terraform/modules/vpc/main.tf"),
        "resource \"aws_ecr_repository\" \"x\" {}\n",
    )
    .unwrap();
    root
}

#[test]
fn a_directory_is_walked_and_each_finding_names_file_line_and_rule() {
    let env = Env::new();
    let root = project(&env);
    let out = env
        .hoist()
        .args(["lint", root.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "findings fail by default");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let r = root.display();
    assert!(
        stdout.contains(&format!("{r}/Dockerfile:4: high HL-DF-001 ")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{r}/infra/main.tf:6: critical HL-TF-007 ")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{r}/deploy/task.json:8: high HL-ECS-001 ")),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().filter(|l| l.contains(" HL-")).count(),
        3,
        "{stdout}"
    );
    for skipped in ["package.json", "broken.json", "README.md", ".terraform"] {
        assert!(
            !stdout.contains(skipped) && !stderr.contains(skipped),
            "{skipped}: {stdout}{stderr}"
        );
    }
    assert!(
        stderr.contains(
            "3 finding(s) (1 critical, 2 high, 0 medium, 0 low), 0 suppressed, in 3 file(s)"
        ),
        "{stderr}"
    );
}

#[test]
fn fail_on_sets_the_severity_that_fails() {
    let env = Env::new();
    let file = env.path("app.Dockerfile");
    // Only low findings: MAINTAINER, and no HEALTHCHECK.
    fs::write(
        &file,
        "FROM alpine:3.20\nMAINTAINER ops@example.com\nUSER 10001\nCMD [\"/app\"]\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let err = env.fails(&["lint", f]);
    assert!(
        err.contains("2 finding(s) at or above low severity"),
        "{err}"
    );
    let out = env.ok(&["lint", "--fail-on", "medium", f]);
    assert!(out.contains(&format!("{f}:2: low HL-DF-020 ")), "{out}");
    assert!(out.contains(&format!("{f}:1: low HL-DF-005 ")), "{out}");
    env.ok(&["lint", "--fail-on", "never", f]);
    let usage = env
        .hoist()
        .args(["lint", "--fail-on", "urgent", f])
        .output()
        .unwrap();
    assert_eq!(
        usage.status.code(),
        Some(2),
        "a bad flag value is a usage error"
    );
}

#[test]
fn json_lists_findings_and_suppressed_ones() {
    let env = Env::new();
    let file = env.path("Dockerfile");
    fs::write(
        &file,
        "FROM debian:12.5\n# hoist:ignore=HL-DF-001 the init system drops privileges itself\nUSER root\nENV GITHUB_TOKEN=ghp_abc\nHEALTHCHECK NONE\n",
    )
    .unwrap();
    let out = env
        .hoist()
        .args(["--json", "lint", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = json["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{json:#}");
    assert_eq!(findings[0]["rule"], "HL-DF-006");
    assert_eq!(findings[0]["severity"], "critical");
    assert_eq!(findings[0]["line"], 4);
    assert_eq!(findings[0]["file"], file.display().to_string());
    assert!(findings[0]["message"]
        .as_str()
        .unwrap()
        .contains("GITHUB_TOKEN"));
    let suppressed = json["suppressed"].as_array().unwrap();
    assert_eq!(suppressed.len(), 1);
    assert_eq!(suppressed[0]["rule"], "HL-DF-001");
    assert_eq!(suppressed[0]["line"], 3);
    assert_eq!(json["files"][0]["kind"], "dockerfile");
}

#[test]
fn rules_lists_every_rule() {
    let env = Env::new();
    let out = env.ok(&["lint", "--rules"]);
    for r in hoist_lint::RULES {
        assert!(out.contains(r.id) && out.contains(r.fix), "{}: {out}", r.id);
    }
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["--json", "lint", "--rules"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), hoist_lint::RULES.len());
    assert_eq!(json[0]["id"], "HL-DF-001");
    assert_eq!(json[0]["severity"], "high");
}

#[test]
fn terraform_and_json_syntax_errors_name_file_and_line() {
    let env = Env::new();
    let tf = env.path("main.tf");
    fs::write(
        &tf,
        "resource \"aws_ecr_repository\" \"r\" {\n  name = \n}\n",
    )
    .unwrap();
    let err = env.fails(&["lint", tf.to_str().unwrap()]);
    assert!(
        err.contains(&format!("{}:3:", tf.display()))
            || err.contains(&format!("{}:2:", tf.display())),
        "{err}"
    );
    let json = env.path("task.json");
    fs::write(
        &json,
        "{\n  \"containerDefinitions\": [\n    {\"name\": \"x\",}\n  ]\n}\n",
    )
    .unwrap();
    let err = env.fails(&["lint", json.to_str().unwrap()]);
    assert!(err.contains(&format!("{}:3:", json.display())), "{err}");
    // A JSON file named explicitly must be a task definition.
    let other = env.path("package.json");
    fs::write(&other, "{\"name\": \"web\"}").unwrap();
    let err = env.fails(&["lint", other.to_str().unwrap()]);
    assert!(err.contains("not an ECS task definition"), "{err}");
    // Other files still get checked and reported.
    let df = env.path("Dockerfile");
    fs::write(
        &df,
        "FROM alpine:3.20\nUSER 1\nHEALTHCHECK NONE\nEXPOSE 22\n",
    )
    .unwrap();
    let out = env
        .hoist()
        .args(["lint", tf.to_str().unwrap(), df.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{}:4: medium HL-DF-014 ", df.display())),
        "{stdout}"
    );
}

#[test]
fn the_terraform_modules_have_no_finding_above_low() {
    let env = Env::new();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/terraform");
    let json: serde_json::Value = serde_json::from_str(&env.ok(&[
        "--json",
        "lint",
        "--fail-on",
        "medium",
        dir.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(json["errors"].as_array().unwrap().len(), 0, "{json:#}");
    // Every module's and the example's files were read as Terraform.
    let files: Vec<&str> = json["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "terraform")
        .map(|f| f["file"].as_str().unwrap())
        .collect();
    assert!(files.len() >= 20, "{files:?}");
    for part in [
        "modules/ecr/main.tf",
        "modules/network/main.tf",
        "modules/alb/main.tf",
        "modules/ecs-cluster/main.tf",
        "modules/ecs-service/main.tf",
        "examples/hello/main.tf",
    ] {
        assert!(files.iter().any(|f| f.ends_with(part)), "{part}: {files:?}");
    }
    let above_low: Vec<_> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] != "low")
        .collect();
    assert!(above_low.is_empty(), "{above_low:#?}");
    // The suppressions are the two Resource "*" that IAM cannot narrow.
    let suppressed: Vec<&str> = json["suppressed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(suppressed, ["HL-TF-006", "HL-TF-006"], "{json:#}");
}
