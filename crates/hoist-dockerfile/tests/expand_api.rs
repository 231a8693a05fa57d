//! Behaviour of the expansion API beyond BuildKit's file-driven cases:
//! tracked variables, errors and offsets, `#`/`%`/`/` operators, escapes.

use hoist_dockerfile::expand::{ExpandErrorKind, Lexer, VarLookup};
use std::collections::{BTreeMap, BTreeSet, HashMap};

fn vars(list: &[(&str, &str)]) -> HashMap<String, String> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// (input, env, expected result or None for an error, names looked up)
type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    Option<&'static str>,
    &'static [&'static str],
);

const FB: &[(&str, &str)] = &[("FOO", "xxx"), ("BAR", "")];

#[test]
fn tracked_variables_and_results() {
    let cases: &[Case] = &[
        ("x", &[("DUMMY", "d")], Some("x"), &[]),
        ("x ${UNUSED}", &[("DUMMY", "d")], Some("x "), &["UNUSED"]),
        ("x ${FOO}", &[("FOO", "y")], Some("x y"), &["FOO"]),
        (
            "${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}",
            FB,
            Some("xxx  ccc"),
            &["FOO", "BAR", "BAZ"],
        ),
        (
            "${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}",
            FB,
            Some("xxx bbb ccc"),
            &["FOO", "BAR", "BAZ"],
        ),
        (
            "${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}",
            FB,
            Some("aaa bbb "),
            &["FOO", "BAR", "BAZ"],
        ),
        (
            "${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}",
            FB,
            Some("aaa  "),
            &["FOO", "BAR", "BAZ"],
        ),
        ("${FOO?aaa}", FB, Some("xxx"), &["FOO"]),
        ("${BAR?bbb}", FB, Some(""), &["BAR"]),
        ("${BAZ?ccc}", FB, None, &[]),
        ("${BAR:?bbb}", FB, None, &[]),
        ("${FOO=aaa}", FB, None, &[]),
        ("${FOO=:aaa}", FB, None, &[]),
        (
            "${FOO#()[]{\\}^$.\\*\\?|\\\\}",
            &[("FOO", "()[]{}^$.*?|\\x")],
            Some("x"),
            &["FOO"],
        ),
        ("${FOO%%\\**}", &[("FOO", "xx**")], Some("xx"), &["FOO"]),
        (
            "${FOO#$BAR}",
            &[("FOO", "xxyy"), ("BAR", "x")],
            Some("xyy"),
            &["FOO", "BAR"],
        ),
        ("${FOO##}", &[("FOO", "xxyy")], Some("xxyy"), &["FOO"]),
        (
            "${ABC:-.}${FOO%x}${ABC:-.}",
            &[("FOO", "xxyy")],
            Some(".xxyy."),
            &["ABC", "FOO"],
        ),
        (
            "${FOO%%\\**\\*}",
            &[("FOO", "a***yy*")],
            Some("a"),
            &["FOO"],
        ),
        ("${FOO:#}", &[], None, &[]),
        ("${FOO:%%}", &[], None, &[]),
        (
            "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
            &[("FOO", "/foo*/*/*.txt"), ("NEEDLE", "\\*/")],
            Some("/foo.*/*.txt - /foo..*.txt"),
            &["FOO", "NEEDLE"],
        ),
        (
            "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
            &[("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")],
            Some("/tmp/bar.txt - /bar.txt"),
            &["FOO", "NEEDLE"],
        ),
        (
            "${FOO/$N/$R} - ${FOO//$N/$R}",
            &[("FOO", "/a/foo/b/c.txt"), ("N", "/?/"), ("R", "/")],
            Some("/foo/b/c.txt - /foo/c.txt"),
            &["FOO", "N", "R"],
        ),
        (
            "${FOO//\\//\\/}",
            &[("FOO", "/tmp/foo.txt")],
            Some("\\/tmp\\/foo.txt"),
            &["FOO"],
        ),
        (
            "${FOO/$BAR/ww}",
            &[("FOO", "xxyy"), ("BAR", "")],
            Some("wwxxyy"),
            &["FOO", "BAR"],
        ),
        ("${FOO//ww}", &[("FOO", "xxyy")], None, &[]),
        ("${FOO//}", &[("FOO", "xxyy")], None, &[]),
        ("${FOO///}", &[("FOO", "xxyy")], Some("xxyy"), &["FOO"]),
        ("${FOO///}", &[], Some(""), &["FOO"]),
        (
            "a-${T:+-${V}}${U:+x${W}}",
            &[("T", "1"), ("V", "v7")],
            Some("a--v7"),
            // Like BuildKit, the word of `${U:+...}` is expanded (and `W` looked
            // up) even though `U` is unset.
            &["T", "U", "V", "W"],
        ),
        ("$1 ${@:-d}", &[], Some(" d"), &["1", "@"]),
    ];
    let lexer = Lexer::new('\\');
    for (input, env, expected, used) in cases {
        let env = vars(env);
        match (lexer.process_word_tracked(input, &env), expected) {
            (Ok((got, names)), Some(want)) => {
                assert_eq!(&got, want, "input {input:?}");
                assert_eq!(names, set(used), "names for {input:?}");
            }
            (Err(_), None) => {}
            (got, want) => panic!("input {input:?}: expected {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn required_variable_messages() {
    let lexer = Lexer::new('\\');
    let set_env = vars(&[("VAR", "plain"), ("ARG", "x")]);
    let empty_env = vars(&[("VAR", ""), ("ARG", "x")]);
    let unset_env = vars(&[("ARG", "x")]);
    let no_empty = "${VAR:?message here$ARG}";
    let no_unset = "${VAR?message here$ARG}";

    assert_eq!(lexer.process_word(no_empty, &set_env).unwrap(), "plain");
    let e = lexer.process_word(no_empty, &empty_env).unwrap_err();
    assert!(e.to_string().contains("message herex"), "{e}");
    assert!(matches!(e.kind(), ExpandErrorKind::Empty { name, .. } if name == "VAR"));
    let e = lexer.process_word(no_empty, &unset_env).unwrap_err();
    assert!(e.to_string().contains("message herex"), "{e}");
    assert!(matches!(e.kind(), ExpandErrorKind::Unset { .. }));

    assert_eq!(lexer.process_word(no_unset, &set_env).unwrap(), "plain");
    assert_eq!(lexer.process_word(no_unset, &empty_env).unwrap(), "");
    let e = lexer.process_word(no_unset, &unset_env).unwrap_err();
    assert!(e.to_string().contains("VAR: message herex"), "{e}");

    let e = lexer.process_word("${VAR:?}", &unset_env).unwrap_err();
    assert!(e.to_string().contains("is not allowed to be unset"), "{e}");
    let e = lexer.process_word("${VAR:?}", &empty_env).unwrap_err();
    assert!(e.to_string().contains("is not allowed to be empty"), "{e}");
}

#[test]
fn error_kinds_and_offsets() {
    let lexer = Lexer::new('\\');
    let env = vars(&[("A", "1")]);
    let check = |word: &str, offset: usize, kind: ExpandErrorKind| {
        let e = lexer.process_word(word, &env).unwrap_err();
        assert_eq!(e.kind(), &kind, "{word:?}: {e}");
        assert_eq!(e.offset(), offset, "{word:?}: {e}");
        assert_eq!(e.word(), word);
        assert!(e.to_string().contains(&format!("{word:?}")), "{e}");
    };
    check("ab'cd", 2, ExpandErrorKind::UnterminatedSingleQuote);
    check("안녕\"cd", 2, ExpandErrorKind::UnterminatedDoubleQuote);
    check("x${A", 1, ExpandErrorKind::MissingCloseBrace);
    check("x${A:-y", 1, ExpandErrorKind::MissingCloseBrace);
    check("x${A:-${B:?no}", 1, ExpandErrorKind::MissingCloseBrace);
    check("x${", 1, ExpandErrorKind::MissingCloseBrace);
    check("x${}", 1, ExpandErrorKind::BadSubstitution);
    check("${:-a}", 0, ExpandErrorKind::BadSubstitution);
    check("${A/x", 0, ExpandErrorKind::MissingSlash);
    check("${A/x/y", 0, ExpandErrorKind::MissingCloseBrace);
    check(
        "é${A:=x}",
        4,
        ExpandErrorKind::UnsupportedModifier(":=".into()),
    );
    check(
        "${A:#x}",
        3,
        ExpandErrorKind::UnsupportedModifier(":#".into()),
    );
    check(
        "${A.x}",
        3,
        ExpandErrorKind::UnsupportedModifier(".".into()),
    );
    check("${#A}", 3, ExpandErrorKind::UnsupportedModifier("A".into()));
    let e = lexer.process_word("--${A#\\a}", &env).unwrap_err();
    assert_eq!(e.offset(), 2);
    assert!(
        matches!(e.kind(), ExpandErrorKind::InvalidPattern { .. }),
        "{e}"
    );
    let e = lexer.process_word("${B?must set B}", &env).unwrap_err();
    assert!(e.to_string().contains("B: must set B"), "{e}");
}

#[test]
fn escapes_and_quotes() {
    let env = vars(&[("V", "a b"), ("E", "")]);
    let bs = Lexer::new('\\');
    let bt = Lexer::new('`');
    assert_eq!(bs.process_word(r#"a\ b"#, &env).unwrap(), "a b");
    assert_eq!(
        bs.process_word(r#""\q\$V\"\\""#, &env).unwrap(),
        r#"\q$V"\"#
    );
    assert_eq!(
        bt.process_word(r#"C:\path\$V"#, &env).unwrap(),
        r#"C:\path\a b"#
    );
    assert_eq!(bt.process_word("a`$V`", &env).unwrap(), "a$V");
    assert_eq!(bt.process_word(r#""`"`$""#, &env).unwrap(), r#""$"#);
    assert_eq!(
        bs.process_word("$ $. $-x ${V}", &env).unwrap(),
        "$ $. x a b"
    );
    assert_eq!(bs.process_word("\u{feff}$V", &env).unwrap(), "a b");
}

#[test]
fn word_splitting() {
    let env = vars(&[("V", "a b"), ("E", ""), ("X", "  x  ")]);
    let lexer = Lexer::new('\\');
    let words = |s: &str| lexer.process_words(s, &env).unwrap();
    assert_eq!(words("$V c"), ["a", "b", "c"]);
    assert_eq!(words("\"$V\" c"), ["a b", "c"]);
    assert_eq!(words("p${V}q"), ["pa", "bq"]);
    assert_eq!(words("p${E:-1 2}q"), ["p1", "2q"]);
    assert_eq!(words("'' $E \"\" z"), ["z"]);
    assert_eq!(words("${X}"), ["x"]);
    assert_eq!(words("cat <<  EOF"), ["cat", "<<  EOF"]);
    assert_eq!(words("a\\ b\tc\nd"), ["a b", "c", "d"]);
    assert!(lexer.process_words("a \"b", &env).is_err());
}

#[test]
fn trims_and_replacements() {
    let env = vars(&[
        ("P", "/usr/lib/x86_64/libc.so.6"),
        ("N", "line1\nline2"),
        ("K", "안녕하세요"),
    ]);
    let lexer = Lexer::new('\\');
    let w = |s: &str| lexer.process_word(s, &env).unwrap();
    assert_eq!(w("${P#*/}"), "usr/lib/x86_64/libc.so.6");
    assert_eq!(w("${P##*/}"), "libc.so.6");
    assert_eq!(w("${P%/*}"), "/usr/lib/x86_64");
    assert_eq!(w("${P%%/*}"), "");
    assert_eq!(w("${P%.?}"), "/usr/lib/x86_64/libc.so");
    assert_eq!(w("${P/lib/LIB}"), "/usr/LIB/x86_64/libc.so.6");
    assert_eq!(w("${P//lib/LIB}"), "/usr/LIB/x86_64/LIBc.so.6");
    assert_eq!(w("${P//l*b/L}"), "/usr/Lc.so.6");
    assert_eq!(w("${P//[a-z]/x}"), "/usr/lib/x86_64/libc.so.6");
    // Like Go's regexp, `*` and `?` stop at a newline.
    assert_eq!(w("${N##*}"), "\nline2");
    assert_eq!(w("${N%%*}"), "line1\n");
    assert_eq!(w("${N//?/.}"), ".....\n.....");
    assert_eq!(w("${K#안?}"), "하세요");
    assert_eq!(w("${K%?요}"), "안녕하");
    assert_eq!(w("${K//하/-}"), "안녕-세요");
    // Replace-all expands Go template references in the replacement (`$$`
    // is the shell's special parameter, unset, before that).
    assert_eq!(w("${P//lib/<$$\\$0>}"), "/usr/<\\lib>/x86_64/<\\lib>c.so.6");
    assert_eq!(w("${P/lib/\\$0}"), "/usr/\\$0/x86_64/libc.so.6");
}

#[test]
fn lookup_implementations() {
    let list = vec![
        ("A".to_string(), "1".to_string()),
        ("A".to_string(), "2".to_string()),
    ];
    assert_eq!(list.lookup("A"), Some("2"));
    assert_eq!(list.as_slice().lookup("B"), None);
    let tree: BTreeMap<String, String> = [("A".to_string(), String::new())].into();
    assert_eq!(tree.lookup("A"), Some(""));
    let lexer = Lexer::new('\\');
    assert_eq!(lexer.process_word("${A:-x}${A-y}", &tree).unwrap(), "x");
    assert_eq!(lexer.process_word("$A", &list).unwrap(), "2");
}

#[test]
fn never_panics_on_odd_input() {
    let env = vars(&[("A", "a\u{301}b\n"), ("B", "")]);
    let lexer = Lexer::new('\\');
    let pieces = [
        "$", "{", "}", ":", "-", "+", "?", "#", "%", "/", "\\", "'", "\"", "A", "B", "é", "*", "<",
        " ", "\u{feff}", "\n", "`",
    ];
    // Every string of up to three pieces, and a few longer ones, must give a
    // result or an error without panicking.
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
    for s in &inputs {
        for prefix in ["${A", "${A#", "${A%%", "${A//", "${A/", "\"${A:-"] {
            let word = format!("{prefix}{s}}}{s}");
            let _ = lexer.process_word(&word, &env);
            let _ = lexer.process_words(&word, &env);
            let _ = Lexer::new('`').process_word(&word, &env);
        }
    }
}
