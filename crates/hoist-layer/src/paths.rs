//! Tar path normalisation and ordering.
//!
//! Inside this crate a path is a `Vec<u8>` of `/`-separated components with no empty,
//! `.` or `..` component and no NUL byte: the form both the writer emits and the
//! applier resolves. The empty path is the layer root.

use std::cmp::Ordering;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Why a path from a tar header or a change list cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathProblem {
    /// A `..` component.
    DotDot,
    /// A NUL byte.
    Nul,
}

impl PathProblem {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PathProblem::DotDot => "path has a `..` component",
            PathProblem::Nul => "path contains a NUL byte",
        }
    }
}

/// Normalise a raw path: drop leading `/`, empty and `.` components; refuse `..`
/// and NUL bytes.
pub(crate) fn normalize(raw: &[u8]) -> Result<Vec<u8>, PathProblem> {
    if raw.contains(&0) {
        return Err(PathProblem::Nul);
    }
    let mut out = Vec::with_capacity(raw.len());
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err(PathProblem::DotDot),
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Ok(out)
}

/// Split a normalised, non-empty path into (parent, final component).
pub(crate) fn split_parent(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

/// Join a normalised parent with one component.
pub(crate) fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parent.len() + name.len() + 1);
    out.extend_from_slice(parent);
    if !parent.is_empty() {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

/// Layer order: component by component, bytewise, so parents precede children and
/// `a/b` precedes `a-b` (a plain byte sort would not).
pub(crate) fn cmp_components(a: &[u8], b: &[u8]) -> Ordering {
    a.split(|&c| c == b'/').cmp(b.split(|&c| c == b'/'))
}

/// A byte path as a `PathBuf` (lossless on Unix).
pub(crate) fn to_path_buf(bytes: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(bytes))
}

/// A `Path` as bytes.
pub(crate) fn path_bytes(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

/// Lossy text of raw bytes, for error messages.
pub(crate) fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_cleans_and_refuses() {
        assert_eq!(normalize(b"/a//./b/").unwrap(), b"a/b");
        assert_eq!(normalize(b"./").unwrap(), b"");
        assert_eq!(normalize(b"../x"), Err(PathProblem::DotDot));
        assert_eq!(normalize(b"a/../x"), Err(PathProblem::DotDot));
        assert_eq!(normalize(b"a\0b"), Err(PathProblem::Nul));
        assert_eq!(normalize(b"..a/b..").unwrap(), b"..a/b..");
    }

    #[test]
    fn split_join_ancestors() {
        assert_eq!(split_parent(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split_parent(b"c"), (&b""[..], &b"c"[..]));
        assert_eq!(join(b"", b"x"), b"x");
        assert_eq!(join(b"a", b"x"), b"a/x");
    }

    #[test]
    fn component_order_puts_parents_first() {
        let mut v: Vec<&[u8]> = vec![b"a-b", b"a/b", b"a", b"a/b/c", b"B", b".wh.x"];
        v.sort_by(|x, y| cmp_components(x, y));
        assert_eq!(v, vec![&b".wh.x"[..], b"B", b"a", b"a/b", b"a/b/c", b"a-b"]);
    }
}
