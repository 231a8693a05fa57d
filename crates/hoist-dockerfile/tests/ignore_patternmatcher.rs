//! `.dockerignore` / `COPY --exclude` matching: moby's `patternmatcher` test
//! tables restated as (pattern, path, expected) facts, plus exceptions, `**`,
//! directory exclusion and the `.dockerignore` reader rules.

use hoist_dockerfile::ignore::{DockerIgnore, IgnoreErrorKind, Matcher};

fn matcher(patterns: &[&str]) -> Matcher {
    let owned: Vec<String> = patterns.iter().map(|s| s.to_string()).collect();
    Matcher::new(&owned).unwrap_or_else(|e| panic!("{patterns:?}: {e}"))
}

/// Single-pattern facts from moby's `TestMatches`.
const MATCHES: &[(&str, &str, bool)] = &[
    ("**", "file", true),
    ("**", "file/", true),
    ("**/", "file", true),
    ("**/", "file/", true),
    ("**", "/", true),
    ("**/", "/", true),
    ("**", "dir/file", true),
    ("**/", "dir/file", true),
    ("**", "dir/file/", true),
    ("**/", "dir/file/", true),
    ("**/**", "dir/file", true),
    ("**/**", "dir/file/", true),
    ("dir/**", "dir/file", true),
    ("dir/**", "dir/file/", true),
    ("dir/**", "dir/dir2/file", true),
    ("dir/**", "dir/dir2/file/", true),
    ("**/dir", "dir", true),
    ("**/dir", "dir/file", true),
    ("**/dir2/*", "dir/dir2/file", true),
    ("**/dir2/*", "dir/dir2/file/", true),
    ("**/dir2/**", "dir/dir2/dir3/file", true),
    ("**/dir2/**", "dir/dir2/dir3/file/", true),
    ("**file", "file", true),
    ("**file", "dir/file", true),
    ("**/file", "dir/file", true),
    ("**file", "dir/dir/file", true),
    ("**/file", "dir/dir/file", true),
    ("**/file*", "dir/dir/file", true),
    ("**/file*", "dir/dir/file.txt", true),
    ("**/file*txt", "dir/dir/file.txt", true),
    ("**/file*.txt", "dir/dir/file.txt", true),
    ("**/file*.txt*", "dir/dir/file.txt", true),
    ("**/**/*.txt", "dir/dir/file.txt", true),
    ("**/**/*.txt2", "dir/dir/file.txt", false),
    ("**/*.txt", "file.txt", true),
    ("**/**/*.txt", "file.txt", true),
    ("a**/*.txt", "a/file.txt", true),
    ("a**/*.txt", "a/dir/file.txt", true),
    ("a**/*.txt", "a/dir/dir/file.txt", true),
    ("a/*.txt", "a/dir/file.txt", false),
    ("a/*.txt", "a/file.txt", true),
    ("a/*.txt**", "a/file.txt", true),
    ("a[b-d]e", "ae", false),
    ("a[b-d]e", "ace", true),
    ("a[b-d]e", "aae", false),
    ("a[^b-d]e", "aze", true),
    (".*", ".foo", true),
    (".*", "foo", false),
    ("abc.def", "abcdef", false),
    ("abc.def", "abc.def", true),
    ("abc.def", "abcZdef", false),
    ("abc?def", "abcZdef", true),
    ("abc?def", "abcdef", false),
    ("a\\\\", "a\\", true),
    ("**/foo/bar", "foo/bar", true),
    ("**/foo/bar", "dir/foo/bar", true),
    ("**/foo/bar", "dir/dir2/foo/bar", true),
    ("abc/**", "abc", false),
    ("abc/**", "abc/def", true),
    ("abc/**", "abc/def/ghi", true),
    ("**/.foo", ".foo", true),
    ("**/.foo", "bar.foo", false),
    ("a(b)c/def", "a(b)c/def", true),
    ("a(b)c/def", "a(b)c/xyz", false),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
    (
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        true,
    ),
    (
        "dist/*.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        true,
    ),
    ("a\\*b", "a*b", true),
];

/// Facts from moby's `TestMatch` (Go's `filepath.Match` table).
const FILEPATH_MATCH: &[(&str, &str, bool)] = &[
    ("abc", "abc", true),
    ("*", "abc", true),
    ("*c", "abc", true),
    ("a*", "a", true),
    ("a*", "abc", true),
    ("a*", "ab/c", true),
    ("a*/b", "abc/b", true),
    ("a*/b", "a/c/b", false),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
    ("a*b?c*x", "abxbbxdbxebxczzx", true),
    ("a*b?c*x", "abxbbxdbxebxczzy", false),
    ("ab[c]", "abc", true),
    ("ab[b-d]", "abc", true),
    ("ab[e-g]", "abc", false),
    ("ab[^c]", "abc", false),
    ("ab[^b-d]", "abc", false),
    ("ab[^e-g]", "abc", true),
    ("a\\*b", "a*b", true),
    ("a\\*b", "ab", false),
    ("a?b", "a☺b", true),
    ("a[^a]b", "a☺b", true),
    ("a???b", "a☺b", false),
    ("a[^a][^a][^a]b", "a☺b", false),
    ("[a-ζ]*", "α", true),
    ("*[a-ζ]", "A", false),
    ("a?b", "a/b", false),
    ("a*b", "a/b", false),
    ("[\\]a]", "]", true),
    ("[\\-]", "-", true),
    ("[x\\-]", "x", true),
    ("[x\\-]", "-", true),
    ("[x\\-]", "z", false),
    ("[\\-x]", "x", true),
    ("[\\-x]", "-", true),
    ("[\\-x]", "a", false),
    ("*x", "xxx", true),
];

/// Patterns Go's `filepath.Match` rejects (`ErrBadPattern`).
const BAD_PATTERNS: &[&str] = &[
    "[]a]",
    "[-]",
    "[x-]",
    "[-x]",
    "\\",
    "[a-b-c]",
    "[",
    "[^",
    "[^bc",
    "a[",
    "!",
    // Accepted by filepath.Match but rejected by Go's regexp when moby compiles it.
    "[Local-Only]/",
];

#[test]
fn moby_single_pattern_table() {
    let mut failures = Vec::new();
    for &(pattern, path, want) in MATCHES.iter().chain(FILEPATH_MATCH) {
        let got = matcher(&[pattern]).matches(path);
        if got != want {
            failures.push(format!(
                "pattern {pattern:?} path {path:?}: want {want}, got {got}"
            ));
        }
    }
    eprintln!(
        "patternmatcher tables: {} passed, {} failed",
        MATCHES.len() + FILEPATH_MATCH.len() - failures.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn moby_multi_pattern_table() {
    let cases: &[(&[&str], &str, bool)] = &[
        (&["**", "!util/docker/web"], "util/docker/web/foo", false),
        (
            &["**", "!util/docker/web", "util/docker/web/foo"],
            "util/docker/web/foo",
            true,
        ),
        (
            &[
                "**",
                "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            ],
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            false,
        ),
        (
            &["**", "!dist/*.whl"],
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            false,
        ),
        (&["*"], "fileutils.go", true),
        (&["*.go"], "fileutils.go", true),
        (&["!fileutils.go", "*.go"], "fileutils.go", true),
        (&["docs", "!docs/README.md"], "docs/README.md", false),
        (&["docs/", "!docs/README.md"], "docs/README.md", false),
        (&["docs/*", "!docs/README.md"], "docs/README.md", false),
        (&["*.go", "!fileutils.go"], "fileutils.go", false),
        (&["*.go"], ".", false),
        (&[], "/any/path/there", false),
        (&["docs", "config", ""], "config/x", true),
    ];
    for &(patterns, path, want) in cases {
        assert_eq!(
            matcher(patterns).matches(path),
            want,
            "{patterns:?} {path:?}"
        );
    }
}

#[test]
fn bad_patterns_are_errors() {
    for &p in BAD_PATTERNS {
        let err = Matcher::new(&["ok".to_string(), p.to_string()]).unwrap_err();
        assert_eq!(err.line(), 2, "{p:?}");
        assert_eq!(err.pattern(), p);
        if p == "!" {
            assert_eq!(err.kind(), &IgnoreErrorKind::LoneExclamation);
        }
    }
}

#[test]
fn exceptions_and_double_star() {
    let m = matcher(&["**/*.log", "!important/**", "important/tmp"]);
    assert!(m.matches("a.log"));
    assert!(m.matches("x/y/a.log"));
    assert!(!m.matches("important/a.log"));
    assert!(m.matches("important/tmp/a.log"));
    assert!(m.matches("important/tmp"));
    assert!(!m.matches("src/main.rs"));
    assert!(m.has_exceptions());

    // Exceptions only re-include what an earlier pattern excluded.
    let m = matcher(&["!keep", "*"]);
    assert!(m.matches("keep"));
    // Last matching pattern wins.
    let m = matcher(&["*.md", "!README.md", "README.md"]);
    assert!(m.matches("README.md"));
    assert!(m.matches("CHANGELOG.md"));
}

#[test]
fn directory_exclusion_with_exception_below() {
    let ig = DockerIgnore::parse("node_modules\nvendor\n!vendor/keep/**\n").unwrap();
    assert!(ig.is_excluded("node_modules"));
    assert!(ig.is_excluded("node_modules/a/b.js"));
    assert!(!ig.may_include_under("node_modules"));
    assert!(!ig.may_include_under("node_modules/a"));
    assert!(ig.is_excluded("vendor/other/x.go"));
    assert!(!ig.is_excluded("vendor/keep/x.go"));
    assert!(ig.may_include_under("vendor"));
    assert!(ig.may_include_under("vendor/keep"));
    assert!(!ig.may_include_under("vendor/other"));
    assert!(ig.may_include_under("src"));
    assert!(ig.may_include_under("."));

    // Exceptions that may match below: regexp and suffix kinds.
    let ig = DockerIgnore::parse("build\n!build/*/out.txt\n").unwrap();
    assert!(ig.may_include_under("build"));
    assert!(ig.may_include_under("build/x"));
    assert!(!ig.is_excluded("build/x/out.txt"));
    assert!(ig.is_excluded("build/x/other.txt"));
    let ig = DockerIgnore::parse("build\n!**/keep.txt\n").unwrap();
    assert!(ig.may_include_under("build/deep"));
    assert!(!ig.is_excluded("build/deep/keep.txt"));
    let ig = DockerIgnore::parse("build\n!src/*.rs\n").unwrap();
    assert!(!ig.may_include_under("build"));
}

#[test]
fn may_include_under_agrees_with_is_excluded() {
    let files = [
        "a",
        "a/b",
        "a/b/c.txt",
        "a/b/d.log",
        "a/keep/x",
        "b/a/keep",
        "c.txt",
        "d/e/f/g",
    ];
    let sets: &[&str] = &[
        "a\n!a/keep",
        "a\n!a/b/*.txt",
        "**\n!**/keep",
        "a/**\n!a/b",
        "*\n!d/e",
        "a\nb\n!b/a/*",
        "d\n!d/e/[f-g]/g",
    ];
    for text in sets {
        let ig = DockerIgnore::parse(text).unwrap();
        for dir in ["a", "a/b", "a/keep", "b", "b/a", "d", "d/e", "d/e/f"] {
            if ig.may_include_under(dir) {
                continue;
            }
            for f in files.iter().filter(|f| f.starts_with(&format!("{dir}/"))) {
                assert!(
                    ig.is_excluded(f),
                    "{text:?}: {dir} skipped but {f} is included"
                );
            }
        }
    }
}

#[test]
fn dockerignore_reader_rules() {
    let text = "\u{feff}# comment\r\n  # not a comment\n\n  /abs/path/  \n! /neg/../x \r\n**/*.tmp\nfoo/./bar//\n";
    let ig = DockerIgnore::parse(text).unwrap();
    assert_eq!(
        ig.patterns(),
        ["# not a comment", "abs/path", "!x", "**/*.tmp", "foo/bar"]
    );
    assert!(ig.is_excluded("# not a comment"));
    assert!(ig.is_excluded("abs/path/file"));
    assert!(ig.is_excluded("/abs/path"));
    assert!(ig.is_excluded("./foo/bar/baz"));
    assert!(ig.is_excluded("a/b.tmp"));
    assert!(!ig.is_excluded("x"));
    assert!(!ig.is_excluded("abs"));

    let err = DockerIgnore::parse("ok\n# c\n\nsrc/[a-\n").unwrap_err();
    assert_eq!(err.line(), 4);
    assert_eq!(err.pattern(), "src/[a-");
    assert!(err.to_string().contains("line 4"), "{err}");
    let err = DockerIgnore::parse("a\n  !  \n").unwrap_err();
    assert_eq!(err.line(), 2);
    assert_eq!(err.kind(), &IgnoreErrorKind::LoneExclamation);
    assert!(DockerIgnore::parse("").unwrap().patterns().is_empty());
}

#[test]
fn regexp_semantics_of_moby_conversion() {
    // `[!a]` is not a negation in Go; `[^a]` is.
    assert!(matcher(&["x[!a]"]).matches("x!"));
    assert!(!matcher(&["x[!a]"]).matches("xb"));
    assert!(matcher(&["x[^a]"]).matches("xb"));
    // Classes and escapes are Go regexp syntax after moby's conversion.
    assert!(matcher(&["v[[:digit:]]*"]).matches("v1.2"));
    assert!(matcher(&["f\\d"]).matches("f7"));
    // A `^` outside a class is a start-of-text assertion in the regexp.
    assert!(matcher(&["^a*"]).matches("abc"));
    assert!(!matcher(&["b^a*"]).matches("b^abc"));
    // ... but stays literal in a pattern without wildcards (exact match).
    assert!(matcher(&["^a"]).matches("^a"));
    // `**x` with no other wildcard is a suffix test.
    assert!(matcher(&["**foo"]).matches("barfoo"));
    assert!(matcher(&["a**"]).matches("abc"));
    // `*` inside a class becomes part of moby's regexp, as in Docker.
    assert!(!matcher(&["[*]"]).matches("/x"));
    assert!(matcher(&["[*]"]).matches("^^]"));
}

#[test]
fn pathological_patterns_stay_fast() {
    let pattern = format!("{}b", "*a".repeat(100));
    let m = matcher(&[pattern.as_str(), "**/**/**/**/**/**/x"]);
    let path = "a".repeat(5000);
    assert!(!m.matches(&path));
    let deep = vec!["d"; 300].join("/");
    assert!(!m.matches(&deep));
    assert!(m.matches(&format!("{deep}/x")));
}

#[test]
fn never_panics() {
    let pieces = [
        "*", "?", "[", "]", "^", "!", "\\", "/", "-", "a", "é", ".", "(", ":", "\u{feff}", "{",
    ];
    let mut inputs = vec![String::new()];
    for _ in 0..3 {
        let mut next = Vec::new();
        for s in &inputs {
            for p in pieces {
                next.push(format!("{s}{p}"));
            }
        }
        inputs.extend(next);
        inputs.sort();
        inputs.dedup();
    }
    for p in &inputs {
        if let Ok(ig) = DockerIgnore::parse(p) {
            for path in ["a", "a/b", "é/x", "[", "", ".", "/"] {
                let _ = ig.is_excluded(path);
                let _ = ig.may_include_under(path);
            }
        }
    }
}
