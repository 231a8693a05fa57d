//! Errors of reading, applying and writing layers. Each names the entry (as the tar
//! spelled it, or as the change list named it) and what was wrong with it.

use std::io;
use std::path::PathBuf;

/// A layer stream or one of its entries could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The stream is not a valid (possibly compressed) tar, or reading it failed.
    #[error("reading layer stream: {0}")]
    Stream(#[source] io::Error),
    /// An entry whose path or link target this crate refuses (`..`, NUL bytes,
    /// an empty whiteout name).
    #[error("layer entry {path:?}: unsafe path: {reason}")]
    UnsafePath {
        /// The entry path as written in the tar.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// An entry of a kind layers must not carry. GNU sparse entries are refused:
    /// their declared size is unbounded by the bytes in the stream, so a tiny layer
    /// could fill the disk (Docker's and containerd's writers never produce them).
    #[error("layer entry {path:?}: {reason}")]
    Unsupported {
        /// The entry path as written in the tar.
        path: String,
        /// What is not supported.
        reason: String,
    },
    /// An entry with an impossible header field (uid beyond 32 bits, bad PAX
    /// number, unreadable device numbers).
    #[error("layer entry {path:?}: invalid header: {reason}")]
    InvalidHeader {
        /// The entry path as written in the tar.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// Applying a layer onto a directory failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The target directory could not be opened.
    #[error("cannot open target directory {path}: {source}")]
    Target {
        /// The target directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The stream or an entry header could not be read or was refused.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A hardlink whose target does not exist inside the root, is a directory or is
    /// otherwise unusable.
    #[error("layer entry {path:?}: hardlink target {target:?}: {reason}")]
    LinkTarget {
        /// The entry path as written in the tar.
        path: String,
        /// The link target as written in the tar.
        target: String,
        /// What is wrong.
        reason: String,
    },
    /// A parent of the entry exists but is not a directory (for example a regular
    /// file, or a symlink to a missing place).
    #[error("layer entry {path:?}: parent {parent:?} is not a directory")]
    ParentNotDir {
        /// The entry path.
        path: String,
        /// The offending parent.
        parent: String,
    },
    /// A file system operation on the entry failed.
    #[error("layer entry {path:?}: {op}: {source}")]
    Fs {
        /// The entry path.
        path: String,
        /// The operation (`create file`, `chown`, `setxattr user.foo`...).
        op: String,
        /// The cause.
        source: io::Error,
    },
}

/// Writing a layer failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The source root could not be opened.
    #[error("cannot open layer source directory {path}: {source}")]
    Root {
        /// The root directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A change-list path that cannot name something inside the root.
    #[error("change {path:?}: {reason}")]
    InvalidChange {
        /// The path as given.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Reading a source file or its metadata failed.
    #[error("layer source {path:?}: {op}: {source}")]
    Source {
        /// Path relative to the root.
        path: PathBuf,
        /// The operation.
        op: &'static str,
        /// The cause.
        source: io::Error,
    },
    /// A file shrank while it was being archived.
    #[error("layer source {path:?}: file changed while being archived ({expected} bytes expected, {actual} read)")]
    Changed {
        /// Path relative to the root.
        path: PathBuf,
        /// Size from `stat`.
        expected: u64,
        /// Bytes actually read.
        actual: u64,
    },
    /// Writing or compressing the output failed.
    #[error("writing layer output: {0}")]
    Output(#[source] io::Error),
}
