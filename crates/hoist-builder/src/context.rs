//! The build context: a directory on the host, seen through its `.dockerignore`.
//!
//! BuildKit sends the client's context directory to the builder with the
//! `.dockerignore` patterns applied, so an ignored file simply does not exist for
//! `COPY`: a directory that is ignored but holds re-included (`!pattern`) files is
//! sent with only those files. [`BuildContext`] does not copy anything; it keeps
//! the directory as a [`PlainDir`] [`Tree`](hoist_snapshot::Tree) plus the parsed
//! ignore file, and the copy code asks [`BuildContext::is_ignored`] per path.
//!
//! The ignore file is the Dockerfile-specific one (`<Dockerfile name>.dockerignore`
//! next to the Dockerfile, as BuildKit's `dockerui` looks it up) if it exists, else
//! `<context>/.dockerignore`. Ownership of context files is not kept (BuildKit's
//! client resets it to 0:0 when it sends the context); that is done when copying.

use std::io;
use std::path::{Path, PathBuf};

use hoist_dockerfile::ignore::DockerIgnore;
use hoist_snapshot::PlainDir;

use crate::copy::CopyError;

/// A build context directory and its `.dockerignore`.
pub struct BuildContext {
    root: PathBuf,
    tree: PlainDir,
    ignore: Option<DockerIgnore>,
    ignore_file: Option<PathBuf>,
}

impl std::fmt::Debug for BuildContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildContext")
            .field("root", &self.root)
            .field("ignore_file", &self.ignore_file)
            .finish_non_exhaustive()
    }
}

impl BuildContext {
    /// Opens the context directory `root` for the Dockerfile at `dockerfile`.
    ///
    /// The ignore file is `<dockerfile file name>.dockerignore` beside the
    /// Dockerfile if present, else `<root>/.dockerignore`; neither is fine.
    pub fn open(root: &Path, dockerfile: &Path) -> Result<BuildContext, CopyError> {
        let meta = std::fs::metadata(root).map_err(|source| CopyError::Context {
            path: root.to_owned(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(CopyError::Context {
                path: root.to_owned(),
                source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
            });
        }
        let mut candidates = Vec::new();
        if let Some(name) = dockerfile.file_name() {
            let mut specific = name.to_owned();
            specific.push(".dockerignore");
            candidates.push(dockerfile.with_file_name(specific));
        }
        candidates.push(root.join(".dockerignore"));
        let mut ignore = None;
        let mut ignore_file = None;
        for path in candidates {
            match std::fs::read(&path) {
                Ok(bytes) => {
                    let text = String::from_utf8_lossy(&bytes);
                    let parsed =
                        DockerIgnore::parse(&text).map_err(|source| CopyError::IgnoreFile {
                            path: path.clone(),
                            source,
                        })?;
                    ignore = Some(parsed);
                    ignore_file = Some(path);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(CopyError::Context { path, source }),
            }
        }
        Ok(BuildContext {
            root: root.to_owned(),
            tree: PlainDir::new(root.to_owned()),
            ignore,
            ignore_file,
        })
    }

    /// The context directory on the host.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The ignore file in use, if any.
    pub fn ignore_file(&self) -> Option<&Path> {
        self.ignore_file.as_deref()
    }

    /// Whether the context-relative path `rel` is excluded by `.dockerignore`
    /// (the last matching pattern for it or a parent decides; `!` re-includes).
    pub fn is_ignored(&self, rel: &Path) -> bool {
        match &self.ignore {
            Some(ig) => ig.is_excluded(&rel.to_string_lossy()),
            None => false,
        }
    }

    /// The context directory as a [`Tree`](hoist_snapshot::Tree) (unfiltered:
    /// callers apply [`BuildContext::is_ignored`]).
    pub fn tree(&self) -> &PlainDir {
        &self.tree
    }

    /// The parsed ignore file.
    pub(crate) fn ignore(&self) -> Option<&DockerIgnore> {
        self.ignore.as_ref()
    }
}
