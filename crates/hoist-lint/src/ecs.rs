//! ECS container rules (`HL-ECS-*`), for task definition JSON files and for the
//! `container_definitions` of Terraform's `aws_ecs_task_definition`.
//!
//! A JSON file is a task definition when its top-level object has
//! `containerDefinitions`, or has `taskDefinition.containerDefinitions` (the
//! `describe-task-definition` output). Lines come from `jsonc-parser`'s ranges;
//! JSON has no comments, so findings in JSON files cannot be suppressed inline.

use std::path::Path;

use crate::located::{parse_json, Kind, Val};
use crate::rules::*;
use crate::{LintError, Raw};

/// Whether `text` is JSON shaped like a task definition.
pub(crate) fn looks_like_task_definition(text: &str) -> bool {
    parse_json(text, 1).is_ok_and(|v| containers_of(&v).is_some())
}

/// The container definitions array of a task definition document.
fn containers_of(doc: &Val) -> Option<&Val> {
    doc.get("containerDefinitions").or_else(|| {
        doc.get("taskDefinition")
            .and_then(|t| t.get("containerDefinitions"))
    })
}

/// Checks a task definition JSON file.
pub(crate) fn check_file(path: &Path, text: &str) -> Result<Vec<Raw>, LintError> {
    let doc = parse_json(text, 1).map_err(|e| LintError::Syntax {
        path: path.to_path_buf(),
        line: e.line,
        column: e.column,
        message: e.message,
    })?;
    let containers = containers_of(&doc).ok_or_else(|| LintError::NotTaskDefinition {
        path: path.to_path_buf(),
    })?;
    let mut out = Vec::new();
    check_containers(containers, &mut out);
    Ok(out)
}

/// Checks an array of container definitions (anything else is ignored).
pub(crate) fn check_containers(containers: &Val, out: &mut Vec<Raw>) {
    let Some(list) = containers.as_array() else {
        return;
    };
    for c in list {
        if !matches!(c.kind, Kind::Obj(_)) {
            continue;
        }
        let name = c.get("name").and_then(Val::as_str).unwrap_or("?");
        let who = format!("container {name:?}");

        if let Some((line, v)) = c.entry("privileged") {
            if v.as_bool() == Some(true) {
                out.push(Raw::new(
                    &ECS_PRIVILEGED,
                    line,
                    format!("{who} is privileged"),
                ));
            }
        }

        match c.entry("user") {
            None => out.push(Raw::new(
                &ECS_ROOT_USER,
                c.line,
                format!("{who} sets no user: it runs as the image's user, root unless the image says otherwise"),
            )),
            Some((line, v)) => {
                if let Some(u) = v.as_str() {
                    let name = u.split(':').next().unwrap_or("").trim();
                    if name == "root" || name == "0" {
                        out.push(Raw::new(
                            &ECS_ROOT_USER,
                            line,
                            format!("{who} runs as user {u:?}"),
                        ));
                    }
                }
            }
        }

        match c.entry("readonlyRootFilesystem") {
            None => out.push(Raw::new(
                &ECS_WRITABLE_ROOT,
                c.line,
                format!("{who} does not set readonlyRootFilesystem"),
            )),
            Some((line, v)) if v.as_bool() == Some(false) => out.push(Raw::new(
                &ECS_WRITABLE_ROOT,
                line,
                format!("{who} has readonlyRootFilesystem false"),
            )),
            Some(_) => {}
        }

        if let Some(env) = c.get("environment").and_then(Val::as_array) {
            for e in env {
                let Some((line, n)) = e.entry("name") else {
                    continue;
                };
                let Some(var) = n.as_str() else { continue };
                if !crate::is_secret_name(var) {
                    continue;
                }
                // An empty value holds nothing; an unknown one (a Terraform
                // variable) still puts the secret in clear, so it counts.
                let empty = e
                    .get("value")
                    .is_some_and(|v| v.as_str().is_some_and(str::is_empty));
                if !empty {
                    out.push(Raw::new(
                        &ECS_ENV_SECRET,
                        line,
                        format!("{who} passes {var} in environment"),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_output_shape_is_recognised() {
        assert!(looks_like_task_definition(
            r#"{"taskDefinition": {"containerDefinitions": []}}"#
        ));
        assert!(looks_like_task_definition(
            r#"{"containerDefinitions": []}"#
        ));
        assert!(!looks_like_task_definition(r#"{"name": "pkg"}"#));
        assert!(!looks_like_task_definition("not json"));
    }

    #[test]
    fn not_a_task_definition_is_an_error() {
        let e = check_file(Path::new("x.json"), "[]").unwrap_err();
        assert!(matches!(e, LintError::NotTaskDefinition { .. }), "{e}");
        let e = check_file(Path::new("x.json"), "{\n\"a\": }").unwrap_err();
        assert!(matches!(e, LintError::Syntax { line: 2, .. }), "{e}");
    }
}
