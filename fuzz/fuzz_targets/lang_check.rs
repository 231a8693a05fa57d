//! What every language-parser target checks, whichever format it drives: the
//! parser picked by the path never panics; packages have a name and a version; an
//! error names the path and, when it gives a line, a line inside the input.

use std::path::Path;

use hoist_inventory::lang::{self, LangError};

/// Parse `data` as the file at `paths[data[0] % paths.len()]` (the rest of the input
/// is the file) through `hoist_inventory::lang::parse`, and check the outcome.
pub fn drive(paths: &[&str], data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let path = Path::new(paths[usize::from(selector) % paths.len()]);
    check(path, body, lang::parse(path, body));
}

/// Check one parser's result for `body` read as `path`.
pub fn check(path: &Path, body: &[u8], result: Result<Vec<hoist_inventory::Package>, LangError>) {
    match result {
        Ok(packages) => {
            for p in &packages {
                assert!(
                    !p.name.is_empty(),
                    "{}: package without a name: {p:?}",
                    path.display()
                );
                assert!(
                    !p.version.is_empty(),
                    "{}: package without a version: {p:?}",
                    path.display()
                );
            }
        }
        Err(e) => {
            let shown = e.to_string();
            assert!(
                shown.starts_with(&path.display().to_string()),
                "error does not name {}: {shown}",
                path.display()
            );
            if let LangError::Parse {
                line: Some(line), ..
            } = e
            {
                let lines = body.split(|&b| b == b'\n').count();
                assert!(
                    line >= 1 && line <= lines,
                    "line {line} of {lines}: {shown}"
                );
            }
        }
    }
}
