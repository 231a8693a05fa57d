//! BuildKit's parser conformance data (`/work/shared/conformance/buildkit-dockerfile`,
//! read in place, never copied): every `parse/<case>` must dump byte-identically,
//! every `parse-negative/<case>` must be rejected, and `line-numbers` must report
//! BuildKit's line ranges.

use std::fs;
use std::path::{Path, PathBuf};

use hoist_dockerfile::parser;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/buildkit-dockerfile")
}

fn cases(sub: &str) -> Vec<PathBuf> {
    let dir = data_dir().join(sub);
    let mut out: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

fn diff(expected: &str, actual: &str) -> String {
    let mut out = String::new();
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    for i in 0..e.len().max(a.len()) {
        let (x, y) = (e.get(i), a.get(i));
        if x != y {
            out.push_str(&format!(
                "  line {}:\n    - {}\n    + {}\n",
                i + 1,
                x.unwrap_or(&"<none>"),
                y.unwrap_or(&"<none>")
            ));
        }
    }
    if out.is_empty() && expected != actual {
        out.push_str("  (differs only in trailing newline)\n");
    }
    out
}

#[test]
fn parse_cases_dump_like_buildkit() {
    let all = cases("parse");
    assert!(!all.is_empty(), "no conformance cases found");
    let mut failures = Vec::new();
    for case in &all {
        let name = case.file_name().unwrap_or_default().to_string_lossy();
        let src = fs::read(case.join("Dockerfile")).expect("read Dockerfile");
        let src = String::from_utf8(src).expect("utf-8");
        let expected = fs::read_to_string(case.join("result")).expect("read result");
        match parser::parse(&src) {
            Ok(ast) => {
                let actual = format!("{}\n", ast.dump());
                if actual != expected {
                    failures.push(format!("{name}:\n{}", diff(&expected, &actual)));
                }
            }
            Err(e) => failures.push(format!("{name}: unexpected error: {e}")),
        }
    }
    let passed = all.len() - failures.len();
    println!("parse conformance: {passed}/{} passed", all.len());
    for f in &failures {
        println!("{f}");
    }
    assert!(failures.is_empty(), "{} parse cases failed", failures.len());
}

#[test]
fn parse_negative_cases_are_rejected() {
    let all = cases("parse-negative");
    assert!(!all.is_empty(), "no negative cases found");
    let mut failures = Vec::new();
    for case in &all {
        let name = case
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let src = fs::read_to_string(case.join("Dockerfile")).expect("read Dockerfile");
        match parser::parse(&src) {
            Ok(ast) => failures.push(format!("{name}: accepted: {}", ast.dump())),
            Err(e) => println!("{name}: rejected as expected: {e}"),
        }
    }
    println!(
        "negative conformance: {}/{} rejected",
        all.len() - failures.len(),
        all.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn line_numbers_match_buildkit() {
    let src = fs::read_to_string(data_dir().join("line-numbers/Dockerfile")).expect("read");
    let ast = parser::parse(&src).expect("parses");
    let ranges: Vec<(usize, usize)> = ast
        .nodes
        .iter()
        .map(|n| (n.start_line, n.end_line))
        .collect();
    assert_eq!(ranges, vec![(5, 5), (11, 12), (17, 31)]);
    let first = ast.nodes.first().map_or(0, |n| n.start_line);
    let last = ast.nodes.last().map_or(0, |n| n.end_line);
    assert_eq!((first, last), (5, 31));
}
