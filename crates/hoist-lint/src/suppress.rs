//! Inline suppression: `# hoist:ignore=ID[,ID2...]` (Terraform also `//`) on the
//! flagged line or in the comment lines directly above it silences those rules
//! for that line only. Anything after the ID list (`# hoist:ignore=HL-DF-001 builder
//! stage`) is a free-form reason.

/// The comment markers that start a comment line.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CommentStyle {
    /// `#` only (Dockerfile).
    Hash,
    /// `#`, `//` and `/*` (Terraform).
    Hcl,
}

const MARKER: &str = "hoist:ignore=";

/// The IDs named by the marker on `line`, if it has one.
fn ids_on(line: &str) -> Vec<String> {
    let Some(at) = line.find(MARKER) else {
        return Vec::new();
    };
    let rest = &line[at + MARKER.len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == ',' || c == '_'))
        .unwrap_or(rest.len());
    rest[..end]
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_uppercase)
        .collect()
}

fn is_comment(line: &str, style: CommentStyle) -> bool {
    let t = line.trim_start();
    match style {
        CommentStyle::Hash => t.starts_with('#'),
        CommentStyle::Hcl => t.starts_with('#') || t.starts_with("//") || t.starts_with("/*"),
    }
}

/// The physical lines of a file, for suppression checks.
pub(crate) struct Suppressions<'a> {
    lines: Vec<&'a str>,
    style: CommentStyle,
}

impl<'a> Suppressions<'a> {
    pub(crate) fn new(text: &'a str, style: CommentStyle) -> Self {
        Suppressions {
            lines: text.lines().collect(),
            style,
        }
    }

    /// Whether rule `id` is silenced at 1-based `line`: a marker on the line
    /// itself, or in the block of comment lines right above it.
    pub(crate) fn ignored(&self, id: &str, line: usize) -> bool {
        let Some(idx) = line.checked_sub(1) else {
            return false;
        };
        let names = |l: &str| ids_on(l).iter().any(|i| i == id);
        if self.lines.get(idx).is_some_and(|l| names(l)) {
            return true;
        }
        self.lines[..idx.min(self.lines.len())]
            .iter()
            .rev()
            .take_while(|l| is_comment(l, self.style))
            .any(|l| names(l))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_line_and_comment_block_above() {
        let text = "# hoist:ignore=HL-DF-001,HL-DF-005 reason\n# other\nUSER root\nUSER root # hoist:ignore=hl-df-002\n\nX\n";
        let s = Suppressions::new(text, CommentStyle::Hash);
        assert!(s.ignored("HL-DF-001", 3));
        assert!(s.ignored("HL-DF-005", 3));
        assert!(!s.ignored("HL-DF-002", 3));
        assert!(s.ignored("HL-DF-002", 4));
        // A non-comment line breaks the block.
        assert!(!s.ignored("HL-DF-001", 4));
        assert!(!s.ignored("HL-DF-001", 6));
    }

    #[test]
    fn hcl_slash_comments() {
        let text = "// hoist:ignore=HL-TF-001\nresource \"a\" \"b\" {}\n";
        let s = Suppressions::new(text, CommentStyle::Hcl);
        assert!(s.ignored("HL-TF-001", 2));
        let h = Suppressions::new(text, CommentStyle::Hash);
        assert!(!h.ignored("HL-TF-001", 2));
    }
}
