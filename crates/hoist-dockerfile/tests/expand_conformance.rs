//! BuildKit's own word-expansion cases (`envVarTest`, `wordsTest`), read from
//! the shared conformance data and run against [`hoist_dockerfile::expand`].

use hoist_dockerfile::expand::Lexer;
use std::path::PathBuf;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/buildkit-dockerfile/expand/")
}

fn read(name: &str) -> String {
    let path = data_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn env_var_test() {
    let text = read("envVarTest");
    let env = pairs(&[
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]);
    let lexer = Lexer::new('\\');
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut failures = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        let lineno = idx + 1;
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.trim().split('|').collect();
        assert_eq!(fields.len(), 3, "line {lineno}: malformed case {line:?}");
        let (platform, input, expected) = (fields[0].trim(), fields[1].trim(), fields[2].trim());
        match platform {
            "A" | "U" => {}
            "W" => {
                skipped += 1;
                continue;
            }
            other => panic!("line {lineno}: unknown platform {other:?}"),
        }
        let got = lexer.process_word(input, &env);
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(v), e) => e != "error" && v == e,
            (Err(_), _) => false,
        };
        if ok {
            passed += 1;
        } else {
            failed += 1;
            failures.push(format!(
                "envVarTest:{lineno}: input {input:?}: expected {expected:?}, got {got:?}"
            ));
        }
    }
    for f in &failures {
        eprintln!("{f}");
    }
    eprintln!("envVarTest: {passed} passed, {failed} failed, {skipped} skipped (Windows-only)");
    assert!(passed > 0, "no cases found");
    assert_eq!(failed, 0, "{}", failures.join("\n"));
}

#[test]
fn words_test() {
    let text = read("wordsTest");
    let lexer = Lexer::new('\\');
    let mut env: Vec<(String, String)> = Vec::new();
    let (mut passed, mut failed) = (0, 0);
    let mut failures = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        let lineno = idx + 1;
        if line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("ENV ") {
            let rest = rest.trim_start_matches(' ');
            let (k, v) = rest.split_once('=').unwrap_or((rest, ""));
            env.push((k.to_string(), v.to_string()));
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(fields.len(), 2, "line {lineno}: malformed case {line:?}");
        let input = fields[0].trim();
        let expected: Vec<&str> = fields[1].trim_start_matches(' ').split(',').collect();
        let got = match lexer.process_words(input, &env) {
            Ok(words) => words,
            Err(_) => vec!["error".to_string()],
        };
        if got == expected {
            passed += 1;
        } else {
            failed += 1;
            failures.push(format!(
                "wordsTest:{lineno}: input {input:?}: expected {expected:?}, got {got:?}"
            ));
        }
    }
    for f in &failures {
        eprintln!("{f}");
    }
    eprintln!("wordsTest: {passed} passed, {failed} failed");
    assert!(passed > 0, "no cases found");
    assert_eq!(failed, 0, "{}", failures.join("\n"));
}
