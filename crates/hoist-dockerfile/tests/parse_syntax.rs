//! The syntax layer beyond BuildKit's conformance files: heredocs, directives,
//! continuations, flag positions, error messages and hostile input.

use hoist_dockerfile::parser::{self, heredoc_marker, Heredoc, Node, ParseError};

fn parse(src: &str) -> parser::Ast {
    match parser::parse(src) {
        Ok(ast) => ast,
        Err(e) => panic!("parse failed:\n{e}"),
    }
}

fn err(src: &str) -> Vec<ParseError> {
    match parser::parse(src) {
        Ok(ast) => panic!("expected an error, got:\n{}", ast.dump()),
        Err(e) => e.errors,
    }
}

fn node(src: &str, i: usize) -> Node {
    parse(src).nodes.into_iter().nth(i).expect("node")
}

fn doc(name: &str, content: &str, expand: bool, chomp: bool, fd: u32) -> Heredoc {
    Heredoc {
        name: name.into(),
        fd,
        expand,
        chomp,
        content: content.into(),
    }
}

// ---------------------------------------------------------------- heredocs

#[test]
fn heredoc_variants_like_buildkit() {
    let src = "FROM alpine:3.6

ENV NAME=me

RUN ls

USER <<INVALID
INVALID

RUN <<EMPTY
EMPTY

RUN 3<<EMPTY2
EMPTY2

RUN \"<<NOHEREDOC\"

RUN <<INDENT
\tfoo
\tbar
INDENT

RUN <<-UNINDENT
\tbaz
\tquux
UNINDENT

RUN <<-UNINDENT2
\tbaz
\tquux
\tUNINDENT2

RUN <<-'NOEXPAND'
\tdon't expand $NAME
NOEXPAND

RUN <<COMMENT
# internal comment
echo hello world # trailing comment
COMMENT

RUN --mount=type=cache,target=/foo <<MOUNT
echo hello
MOUNT

COPY <<FILE1 <<FILE2 /dest
content 1
FILE1
content 2
FILE2

COPY <<X <<Y /dest
Y
X
X
Y

RUN <<COMPLEX python3
print('hello world')
COMPLEX

RUN <<eo'f'
echo foo
eof

RUN <<eo\\'f
echo foo
eo'f

RUN <<'e'o\\'f
echo foo
eo'f

RUN <<'one two'
echo bar
one two

RUN <<$EOF
$EOF

RUN <<  EOF  > foo
EOF
";
    let ast = parse(src);
    let docs: Vec<Vec<Heredoc>> = ast.nodes.iter().map(|n| n.heredocs.clone()).collect();
    let expected: Vec<Vec<Heredoc>> = vec![
        vec![],                                  // FROM
        vec![],                                  // ENV
        vec![],                                  // RUN ls
        vec![],                                  // USER <<INVALID
        vec![],                                  // INVALID (unknown instruction)
        vec![doc("EMPTY", "", true, false, 0)],  // RUN <<EMPTY
        vec![doc("EMPTY2", "", true, false, 3)], // RUN 3<<EMPTY2
        vec![],                                  // RUN "<<NOHEREDOC"
        vec![doc("INDENT", "\tfoo\n\tbar\n", true, false, 0)],
        vec![doc("UNINDENT", "\tbaz\n\tquux\n", true, true, 0)],
        vec![doc("UNINDENT2", "\tbaz\n\tquux\n", true, true, 0)],
        vec![doc("NOEXPAND", "\tdon't expand $NAME\n", false, true, 0)],
        vec![doc(
            "COMMENT",
            "# internal comment\necho hello world # trailing comment\n",
            true,
            false,
            0,
        )],
        vec![doc("MOUNT", "echo hello\n", true, false, 0)],
        vec![
            doc("FILE1", "content 1\n", true, false, 0),
            doc("FILE2", "content 2\n", true, false, 0),
        ],
        vec![
            doc("X", "Y\n", true, false, 0),
            doc("Y", "X\n", true, false, 0),
        ],
        vec![doc("COMPLEX", "print('hello world')\n", true, false, 0)],
        vec![doc("eof", "echo foo\n", false, false, 0)],
        vec![doc("eo'f", "echo foo\n", true, false, 0)],
        vec![doc("eo'f", "echo foo\n", false, false, 0)],
        vec![doc("one two", "echo bar\n", false, false, 0)],
        vec![doc("$EOF", "", true, false, 0)],
        vec![doc("EOF", "", true, false, 0)],
    ];
    assert_eq!(docs.len(), expected.len(), "{}", ast.dump());
    for (i, (got, want)) in docs.iter().zip(&expected).enumerate() {
        assert_eq!(got, want, "instruction {i}: {}", ast.nodes[i].original);
    }
    // Heredoc lines count toward the instruction's range.
    let unindent2 = &ast.nodes[10];
    assert_eq!(
        (unindent2.start_line, unindent2.end_line),
        (28, 31),
        "{unindent2:?}"
    );
    assert_eq!(ast.nodes[10].heredocs[0].chomped_content(), "baz\nquux\n");
}

#[test]
fn heredocs_ignored_in_json_form_and_other_instructions() {
    let ast = parse("FROM a\nRUN [\"<<EOF\"]\nRUN [\"<<'EOF'\"]\nUSER <<EOF\n");
    assert!(ast.nodes.iter().all(|n| n.heredocs.is_empty()));
    assert_eq!(ast.nodes.len(), 4);
}

#[test]
fn heredoc_under_onbuild_and_escape_directive() {
    let ast = parse("FROM a\nONBUILD RUN <<EOF\necho hi\nEOF\n");
    let n = &ast.nodes[1];
    assert_eq!(n.heredocs, vec![doc("EOF", "echo hi\n", true, false, 0)]);
    assert_eq!(
        n.next.as_ref().map(|c| c.heredocs.clone()),
        Some(n.heredocs.clone())
    );
    assert_eq!((n.start_line, n.end_line), (2, 4));

    // BuildKit always lexes the marker with `\`, even under `# escape=``.
    let ast = parse("# escape=`\nFROM a\nRUN <<EOF\nx\nEOF\n");
    assert_eq!(ast.nodes[1].heredocs.len(), 1);
}

#[test]
fn unterminated_heredoc_points_at_the_marker() {
    let errors = err("FROM a\nRUN cat <<EOF\nline\n");
    assert_eq!(errors.len(), 1);
    let e = &errors[0];
    assert_eq!((e.line, e.column), (2, 9));
    assert_eq!(e.message, "unterminated heredoc");
    assert_eq!(
        e.to_string(),
        "2:9: unterminated heredoc (expected a line holding only \"EOF\")\nRUN cat <<EOF\n        ^"
    );
}

#[test]
fn heredoc_marker_helper() {
    for ok in [
        "<<EOF",
        "<<'EOF'",
        "<<\"EOF\"",
        "<<-EOF",
        "<<-'EOF'",
        "<<-\"EOF\"",
        "<<EO\"F\"",
        "<< EOF",
        "<<- EOF",
    ] {
        assert_eq!(
            heredoc_marker(ok).map(|h| h.name),
            Some("EOF".into()),
            "{ok}"
        );
    }
    for not in [
        "", "EOF", "<<", "<<-", "<EOF", "<<<EOF", "<<EOF sh", "<<'EOF", "<<EOF'",
    ] {
        assert_eq!(heredoc_marker(not), None, "{not}");
    }
    assert_eq!(
        heredoc_marker("<< -EOF").map(|h| h.name),
        Some("-EOF".into())
    );
    assert_eq!(heredoc_marker("12<<X").map(|h| h.fd), Some(12));
}

// ---------------------------------------------------------------- directives

#[test]
fn directives_are_recognised_case_insensitively_at_the_top() {
    let ast =
        parse("# SYNTAX = docker/dockerfile:1.7\n#Escape=`\n# check=skip=all\nFROM a`\n  b\n");
    assert_eq!(ast.escape, '`');
    let d = &ast.directives;
    assert_eq!(
        d.syntax.as_ref().map(|d| (d.value.as_str(), d.line)),
        Some(("docker/dockerfile:1.7", 1))
    );
    assert_eq!(d.escape.as_ref().map(|d| d.value.as_str()), Some("`"));
    assert_eq!(d.check.as_ref().map(|d| d.value.as_str()), Some("skip=all"));
    assert_eq!(ast.dump(), "(from \"a\" \"b\")");
    // Directives are not comments of the first instruction.
    assert!(ast.nodes[0].comments.is_empty());
}

#[test]
fn directives_stop_at_blank_lines_comments_and_instructions() {
    for src in [
        "\n# escape=`\nFROM a\\\nb\n",
        "# hello\n# escape=`\nFROM a\\\nb\n",
        "# unknown=1\n# escape=`\nFROM a\\\nb\n",
        "FROM a\\\nb\n# escape=`\n",
    ] {
        let ast = parse(src);
        assert_eq!(ast.escape, '\\', "{src:?}");
        assert!(ast.directives.escape.is_none(), "{src:?}");
        assert!(
            ast.dump().starts_with("(from \"ab\")"),
            "{src:?}: {}",
            ast.dump()
        );
    }
}

#[test]
fn directive_errors() {
    let e = err("# escape=x\nFROM a\n");
    assert_eq!((e[0].line, e[0].column), (1, 1));
    assert_eq!(
        e[0].message,
        "invalid escape token 'x' does not match ` or \\"
    );
    let e = err("# syntax=a\n# syntax=b\nFROM a\n");
    assert_eq!(e[0].line, 2);
    assert_eq!(e[0].message, "only one syntax parser directive can be used");
    let e = err("#escape=\\\n# ESCAPE=`\nFROM a\n");
    assert_eq!(e[0].message, "only one escape parser directive can be used");
}

#[test]
fn byte_order_mark_is_ignored() {
    let ast = parse("\u{feff}# escape=`\nFROM a\n");
    assert_eq!(ast.escape, '`');
}

// ---------------------------------------------------------------- continuations

#[test]
fn continuations_comments_and_empty_lines() {
    let ast =
        parse("FROM a\nRUN echo a \\\n# comment\n\n   \n  b \\\n  # indented comment\nc\nRUN x \\");
    assert_eq!(
        ast.dump(),
        "(from \"a\")\n(run \"echo a   b c\")\n(run \"x\")"
    );
    assert_eq!((ast.nodes[1].start_line, ast.nodes[1].end_line), (2, 8));
    assert_eq!((ast.nodes[2].start_line, ast.nodes[2].end_line), (9, 9));
    assert_eq!(ast.warnings.len(), 1);
    assert!(ast.warnings[0]
        .message
        .starts_with("Empty continuation line found in: RUN echo a"));
}

#[test]
fn escaped_escape_does_not_continue_and_crlf_is_accepted() {
    let ast = parse("FROM a\r\nENV A=b\\\\\r\nENV C=d \\\r\n  e=f\r\n");
    assert_eq!(
        ast.dump(),
        "(from \"a\")\n(env \"A\" \"b\\\\\\\\\" \"=\")\n(env \"C\" \"d\" \"=\" \"e\" \"f\" \"=\")"
    );
}

#[test]
fn comments_before_an_instruction_are_kept() {
    let ast = parse("# base image\n# pinned\nFROM a\n#\n# reset\nRUN x\n");
    assert_eq!(ast.nodes[0].comments, vec!["base image", "pinned"]);
    assert_eq!(ast.nodes[1].comments, vec!["reset"]);
}

// ---------------------------------------------------------------- forms and positions

#[test]
fn json_and_shell_forms() {
    let n = node("CMD [\"a\", \"b c\"]", 0);
    assert!(n.json);
    assert_eq!(n.args, vec!["a", "b c"]);
    let n = node("CMD ['a']", 0);
    assert!(!n.json);
    assert_eq!(n.args, vec!["['a']"]);
    let n = node("VOLUME /a /b", 0);
    assert_eq!(
        (n.json, n.args.clone()),
        (false, vec!["/a".into(), "/b".into()])
    );
    let e = err("FROM a\nRUN [\"a\", 1]\n");
    assert_eq!((e[0].line, e[0].column), (2, 5));
}

#[test]
fn flags_are_split_off_with_positions() {
    let n = node(
        "FROM a\nCOPY --from=build   --chown=\"a b\" -- --not-a-flag /dst\n",
        1,
    );
    let flags: Vec<(&str, usize, usize)> = n
        .flags
        .iter()
        .map(|f| (f.text.as_str(), f.pos.line, f.pos.column))
        .collect();
    assert_eq!(flags, vec![("--from=build", 2, 6), ("--chown=a b", 2, 21)]);
    assert_eq!(n.flags[1].name(), "chown");
    assert_eq!(n.flags[1].value(), Some("a b"));
    assert_eq!(n.args, vec!["--not-a-flag", "/dst"]);
    assert_eq!((n.args_pos.line, n.args_pos.column), (2, 38));
    assert_eq!((n.keyword_pos.line, n.keyword_pos.column), (2, 1));
}

#[test]
fn flag_positions_follow_continuation_lines() {
    let n = node(
        "FROM a\n  RUN \\\n\t--network=none \\\n    --mount=type=cache,target=/c echo\n",
        1,
    );
    let pos: Vec<(usize, usize)> = n.flags.iter().map(|f| (f.pos.line, f.pos.column)).collect();
    assert_eq!(pos, vec![(3, 2), (4, 5)]);
    assert_eq!((n.keyword_pos.line, n.keyword_pos.column), (2, 3));
    assert_eq!((n.args_pos.line, n.args_pos.column), (4, 34));
}

#[test]
fn env_label_arg_forms() {
    let ast = parse("FROM a\nENV A b c\nENV A=1 B=\"2 3\"\nLABEL x=\"y\"\nARG a b=c \"d e\"=f\n");
    assert_eq!(
        ast.dump(),
        "(from \"a\")\n(env \"A\" \"b c\" \"\")\n(env \"A\" \"1\" \"=\" \"B\" \"\\\"2 3\\\"\" \"=\")\n(label \"x\" \"\\\"y\\\"\" \"=\")\n(arg \"a\" \"b=c\" \"\\\"d e\\\"=f\")"
    );
    let e = err("FROM a\nENV A=1 B\n");
    assert_eq!((e[0].line, e[0].column), (2, 9));
    assert_eq!(
        e[0].message,
        "Syntax error - can't find = in \"B\". Must be of the form: name=value"
    );
}

#[test]
fn onbuild_and_healthcheck_nesting() {
    let n = node("ONBUILD RUN --network=none echo hi", 0);
    let child = n.next.as_deref().expect("child");
    assert_eq!(child.keyword, "run");
    assert_eq!(child.flags[0].text, "--network=none");
    assert_eq!(child.flags[0].pos.column, 13);
    assert_eq!(child.args, vec!["echo hi"]);
    assert_eq!(n.dump(), "onbuild (run [\"--network=none\"] \"echo hi\")");

    let n = node("HEALTHCHECK --retries=3 CMD [\"curl\", \"-f\"]", 0);
    assert_eq!(n.args, vec!["CMD", "curl", "-f"]);
    let child = n.next.as_deref().expect("child");
    assert_eq!((child.keyword.as_str(), child.json), ("cmd", true));
    assert_eq!(child.args, vec!["curl", "-f"]);

    assert_eq!(node("ONBUILD", 0).dump(), "onbuild");
    assert_eq!(node("FOO bar", 0).dump(), "foo \"\"");
}

#[test]
fn errors_are_collected_across_instructions() {
    let e = err("FROM a\nENV X\nRUN ok\nCMD [1]\nLABEL\n");
    let lines: Vec<usize> = e.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![2, 4]);
    let (ast, errors) = parser::parse_recovering("FROM a\nENV X\nRUN ok\n");
    assert_eq!(errors.len(), 1);
    assert_eq!(ast.dump(), "(from \"a\")\n(run \"ok\")");
}

#[test]
fn error_display_with_file_name() {
    let e = err("FROM a\n\tENV   X\n").remove(0).with_file("Dockerfile");
    assert_eq!(
        e.to_string(),
        "Dockerfile:2:8: ENV must have two arguments\n\tENV   X\n\t      ^"
    );
    let all = parser::parse("")
        .expect_err("empty")
        .with_file("ci/Dockerfile");
    assert_eq!(
        all.to_string(),
        "ci/Dockerfile:0:0: file with no instructions (expected at least one instruction such as FROM)"
    );
}

// ---------------------------------------------------------------- hostile input

#[test]
fn hostile_inputs_do_not_panic() {
    let long = "a".repeat(200_000);
    let inputs: Vec<String> = vec![
        format!("RUN {long}"),
        format!("CMD {}", "[".repeat(50_000)),
        format!("CMD [\"a\", {}{}]", "[".repeat(20_000), "]".repeat(20_000)),
        format!("{}RUN x", "ONBUILD ".repeat(10_000)),
        "\\".repeat(10_000),
        "RUN \\\n".repeat(10_000),
        "RUN <<EOF <<EOF <<EOF\n".repeat(100),
        "RUN ${{{{{".to_string(),
        "RUN <<\"EOF\\\n".to_string(),
        "COPY --\"\n".to_string(),
        "COPY --a=\"unterminated".to_string(),
        "# escape=`\nRUN a``\n".to_string(),
        "RUN \u{0}\u{1}\u{85}\u{a0}é\u{2028}x".to_string(),
        "ENV \u{a0}".to_string(),
        "HEALTHCHECK \u{2003}CMD".to_string(),
        "RUN <<é\né\n".to_string(),
        "\r\r\r\n\r".to_string(),
        "FROM a AS".to_string(),
        "ONBUILD ONBUILD".to_string(),
        "RUN 99999999999999999999999<<EOF\nEOF\n".to_string(),
    ];
    for src in inputs {
        let r = parser::parse(&src);
        if let Ok(ast) = &r {
            let _ = ast.dump();
        }
        let _ = hoist_dockerfile::instruction::Dockerfile::parse(&src);
    }
    let e = err(&format!("{}RUN x", "ONBUILD ".repeat(100)));
    assert!(e[0].message.contains("nested too deeply"));
}

#[test]
fn large_inputs_stay_linear() {
    use std::time::Instant;
    let started = Instant::now();
    // Deep substitution nesting on a heredoc-capable line: no stack overflow.
    let deep = format!("FROM a\nRUN <<EOF {}\nEOF\n", "${a:-".repeat(200_000));
    let _ = parser::parse(&deep);
    // Many flags on one logical line spread over continuation lines.
    let flags = format!("FROM a\nCOPY {}a b\n", "--x=1 \\\n".repeat(50_000));
    let ast = parse(&flags);
    assert_eq!(ast.nodes[1].flags.len(), 50_000);
    assert_eq!(ast.nodes[1].flags[49_999].pos.line, 50_001);
    let one_line = format!("FROM a\nCOPY {}a b\n", "--x=1 ".repeat(100_000));
    assert_eq!(parse(&one_line).nodes[1].flags.len(), 100_000);
    // Many bad instructions: every one reported, quickly.
    let bad = format!("FROM a\n{}", "ENV X\n".repeat(50_000));
    assert_eq!(err(&bad).len(), 50_000);
    let bad_typed = format!("FROM a\n{}", "WORKDIR\n".repeat(50_000));
    let all = hoist_dockerfile::instruction::Dockerfile::parse(&bad_typed).expect_err("bad");
    assert_eq!(all.errors.len(), 50_000);
    assert!(
        started.elapsed().as_secs() < 20,
        "took {:?}",
        started.elapsed()
    );
}
