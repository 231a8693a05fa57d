//! The fixtures under tests/fixtures: each `bad*` file yields exactly the planted
//! (rule, line) pairs, each `clean*` file yields nothing, and every rule is planted
//! somewhere.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use hoist_lint::{lint_file, lint_paths, FileKind, RULES};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn found(rel: &str) -> Vec<(&'static str, usize)> {
    let report = lint_file(&fixture(rel), None).unwrap();
    report
        .findings
        .iter()
        .map(|f| (f.rule.id, f.line))
        .collect()
}

fn suppressed(rel: &str) -> Vec<(&'static str, usize)> {
    let report = lint_file(&fixture(rel), None).unwrap();
    report
        .suppressed
        .iter()
        .map(|f| (f.rule.id, f.line))
        .collect()
}

fn sorted(mut v: Vec<(&'static str, usize)>) -> Vec<(&'static str, usize)> {
    v.sort_by_key(|(id, line)| (*line, *id));
    v
}

#[test]
fn dockerfile_bad_finds_each_planted_problem() {
    assert_eq!(
        found("dockerfile/bad.Dockerfile"),
        sorted(vec![
            ("HL-DF-002", 2),
            ("HL-DF-020", 3),
            ("HL-DF-007", 4),
            ("HL-DF-006", 5),
            ("HL-DF-010", 7),
            ("HL-DF-008", 8),
            ("HL-DF-009", 8),
            ("HL-DF-012", 9),
            ("HL-DF-013", 10),
            ("HL-DF-018", 11),
            ("HL-DF-019", 12),
            ("HL-DF-003", 13),
            ("HL-DF-004", 14),
            ("HL-DF-011", 15),
            ("HL-DF-021", 15),
            ("HL-DF-001", 17),
            ("HL-DF-002", 17),
            ("HL-DF-005", 17),
            ("HL-DF-017", 18),
            ("HL-DF-014", 20),
            ("HL-DF-015", 21),
            ("HL-DF-016", 23),
        ])
    );
}

#[test]
fn dockerfile_bad_root_and_suppression() {
    assert_eq!(
        found("dockerfile/bad-root.Dockerfile"),
        vec![("HL-DF-021", 3), ("HL-DF-019", 10), ("HL-DF-001", 11)]
    );
    // The marker above the RUN silences HL-DF-009 for the install on that line.
    assert_eq!(
        suppressed("dockerfile/bad-root.Dockerfile"),
        vec![("HL-DF-009", 6)]
    );
}

#[test]
fn terraform_bad_finds_each_planted_problem() {
    assert_eq!(
        found("terraform/bad.tf"),
        sorted(vec![
            ("HL-TF-003", 2),
            ("HL-TF-001", 4),
            ("HL-TF-002", 7),
            ("HL-TF-001", 11),
            ("HL-TF-002", 11),
            ("HL-TF-003", 14),
            ("HL-TF-004", 25),
            ("HL-TF-004", 39),
            ("HL-TF-005", 54),
            ("HL-TF-006", 55),
            ("HL-TF-005", 68),
            ("HL-TF-006", 69),
            ("HL-ECS-001", 88),
            ("HL-ECS-002", 89),
            ("HL-ECS-004", 92),
            ("HL-ECS-003", 94),
            ("HL-ECS-002", 96),
            ("HL-ECS-003", 96),
            ("HL-ECS-002", 110),
            ("HL-ECS-004", 114),
            ("HL-TF-007", 128),
            ("HL-TF-007", 144),
            ("HL-TF-007", 149),
            ("HL-TF-004", 174),
        ])
    );
}

#[test]
fn terraform_suppression_by_block_header_and_trailing_comment() {
    assert_eq!(
        suppressed("terraform/bad.tf"),
        vec![("HL-TF-001", 156), ("HL-TF-006", 183)]
    );
}

#[test]
fn ecs_register_input_shape() {
    assert_eq!(
        found("ecs/bad-taskdef.json"),
        vec![
            ("HL-ECS-001", 13),
            ("HL-ECS-002", 14),
            ("HL-ECS-003", 15),
            ("HL-ECS-004", 20),
            ("HL-ECS-002", 25),
            ("HL-ECS-003", 25),
        ]
    );
}

#[test]
fn ecs_describe_output_shape() {
    assert_eq!(
        found("ecs/bad-describe.json"),
        vec![("HL-ECS-002", 9), ("HL-ECS-004", 13)]
    );
}

#[test]
fn every_clean_fixture_is_clean() {
    let mut checked = 0;
    for area in ["dockerfile", "terraform", "ecs"] {
        for entry in std::fs::read_dir(fixture(area)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            if !name.starts_with("clean") {
                continue;
            }
            assert!(FileKind::from_name(&path).is_some(), "{name}: kind unknown");
            let report = lint_file(&path, None).unwrap();
            let found: Vec<_> = report.findings.iter().map(|f| f.to_string()).collect();
            assert!(found.is_empty(), "{name}:\n{}", found.join("\n"));
            assert!(report.suppressed.is_empty(), "{name}");
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} clean fixtures");
}

#[test]
fn every_rule_is_planted_in_a_bad_fixture() {
    let outcome = lint_paths(&[fixture("")]);
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    let seen: BTreeSet<_> = outcome
        .reports
        .iter()
        .flat_map(|r| r.findings.iter().chain(&r.suppressed))
        .map(|f| f.rule.id)
        .collect();
    let all: BTreeSet<_> = RULES.iter().map(|r| r.id).collect();
    assert_eq!(seen, all);
    // The walk found every fixture: 3 bad + 3 clean Dockerfiles, 2 .tf, 3 JSON.
    assert_eq!(
        outcome.reports.len(),
        10,
        "{:?}",
        outcome.reports.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
}
