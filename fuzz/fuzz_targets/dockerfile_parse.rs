//! `hoist_dockerfile::parser`: `parse` and `parse_recovering` on arbitrary UTF-8
//! (invalid UTF-8 is skipped), the conformance dump, error rendering, and the
//! positions the nodes record; then the typed model (`instruction::Instruction`
//! per node, `Dockerfile` stages, ARG scoping, stage dependencies). Must never
//! panic or hang.
#![no_main]

use hoist_dockerfile::instruction::{DependencyTarget, Dockerfile, Instruction};
use hoist_dockerfile::parser::{self, Node};
use libfuzzer_sys::fuzz_target;

/// `Ast::line_text` walks the source on each call: the checks index this instead,
/// so the harness stays linear and the fuzzer measures the parser.
fn check_node(lines: &[&str], node: &Node, depth: usize) {
    assert!(depth < 64, "node nesting too deep");
    assert!(node.start_line >= 1, "start_line 0: {node:?}");
    assert!(
        node.start_line <= node.end_line,
        "start_line > end_line: {node:?}"
    );
    assert!(
        node.start_line <= lines.len(),
        "start_line {} past the end of the source",
        node.start_line
    );
    for pos in [node.keyword_pos, node.args_pos] {
        if pos.line == 0 {
            continue;
        }
        let text = lines
            .get(pos.line - 1)
            .unwrap_or_else(|| panic!("position {pos:?} past the end of the source"));
        assert!(
            pos.column >= 1 && pos.column - 1 <= text.chars().count(),
            "position {pos:?} outside line {text:?}"
        );
    }
    let _ = node.dump();
    for h in &node.heredocs {
        let _ = h.chomped_content();
    }
    if let Some(next) = &node.next {
        check_node(lines, next, depth + 1);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let (ast, errors) = parser::parse_recovering(src);
    let strict = parser::parse(src);
    assert_eq!(
        strict.is_ok(),
        errors.is_empty(),
        "parse and parse_recovering disagree"
    );
    if let Ok(strict_ast) = &strict {
        assert_eq!(strict_ast, &ast, "parse and parse_recovering trees differ");
    }
    assert!(
        ast.escape == '\\' || ast.escape == '`',
        "escape {:?}",
        ast.escape
    );
    let source_lines: Vec<&str> = ast.source.split_inclusive('\n').collect();
    let lines = source_lines.len();
    if lines > 0 {
        assert_eq!(
            ast.line_text(1).map(str::len),
            Some(source_lines[0].trim_end_matches(['\r', '\n']).len())
        );
        assert!(ast.line_text(lines).is_some() && ast.line_text(lines + 1).is_none());
    }
    for e in &errors {
        assert!(
            e.line <= lines.max(1),
            "error line {} of {lines}: {e:?}",
            e.line
        );
        assert!(e.end_line >= e.line, "error end_line before line: {e:?}");
        let _ = e.to_string();
        let _ = e.clone().with_file("Dockerfile").to_string();
    }
    if let Err(e) = &strict {
        let _ = e.to_string();
    }
    let _ = ast.dump();
    for node in &ast.nodes {
        check_node(&source_lines, node, 0);
    }
    for w in &ast.warnings {
        assert!(
            w.line >= 1 && w.line <= lines,
            "warning {w:?} of {lines} lines"
        );
    }

    // The typed model.
    for node in &ast.nodes {
        if let Ok(ins) = Instruction::from_node(node, ast.escape) {
            let _ = (ins.keyword(), ins.location());
        }
    }
    let typed = Dockerfile::from_ast(&ast);
    let whole = Dockerfile::parse(src);
    if errors.is_empty() {
        assert_eq!(
            typed.as_ref().ok(),
            whole.as_ref().ok(),
            "Dockerfile::parse vs parse + from_ast"
        );
    } else {
        assert!(
            whole.is_err(),
            "Dockerfile::parse accepted a file parse rejected"
        );
    }
    if let Err(e) = &whole {
        assert!(!e.errors.is_empty(), "ParseErrors without errors");
        let _ = e.to_string();
    }
    let Ok(df) = typed else {
        return;
    };
    let build_args: Vec<(String, String)> = vec![("V".to_owned(), "1".to_owned())];
    let predefined = vec![("TARGETOS".to_owned(), "linux".to_owned())];
    let scope = df.global_args(&build_args, &predefined).unwrap_or_default();
    let _ = df.lexer();
    for stage in &df.stages {
        let i = stage.index;
        if let Some(name) = stage.name() {
            let found = df.stage(name).map(|s| s.index);
            assert!(found.is_some(), "stage {name:?} not found by name");
        }
        assert!(
            df.stage(&i.to_string()).is_some(),
            "stage {i} not found by index"
        );
        let _ = df.resolve_base(i, &scope);
        let _ = df.resolve_platform(i, &scope);
        if let Ok(deps) = df.dependencies(i, &scope) {
            for d in &deps {
                if let DependencyTarget::Stage(j) = d.target {
                    assert!(j < i, "stage {i} depends on later stage {j}");
                }
            }
        }
        let _ = df.stage_dependencies(i, &scope);
        for ins in &stage.instructions {
            let _ = (ins.keyword(), ins.location());
        }
    }
});
