//! `hoist lint`: every problem reported with file:line:column, exit codes that gate CI.
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
        "# syntax=docker/dockerfile:1\nARG BASE=busybox\nFROM $BASE AS build\nRUN <<EOF\necho hi > /x\nEOF\nFROM scratch\nCOPY --from=build /x /x\nCMD [\"/x\"]\n",
    )
    .unwrap();
    let out = env.ok(&["lint", file.to_str().unwrap()]);
    assert!(out.contains("ok"), "{out}");
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["--json", "lint", file.to_str().unwrap()])).unwrap();
    assert_eq!(json["errors"].as_array().unwrap().len(), 0);
}

#[test]
fn a_missing_file_names_the_path() {
    let env = Env::new();
    let err = env.fails(&["lint", "/nonexistent/Dockerfile"]);
    assert!(err.contains("/nonexistent/Dockerfile"), "{err}");
}
