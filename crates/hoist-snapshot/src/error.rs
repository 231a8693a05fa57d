//! The one error type of this crate. Every variant names the path, layer or digest
//! that was wrong.

use std::io;
use std::path::PathBuf;

use hoist_oci::{BlobError, Digest};

/// What went wrong with a snapshot, a diff or a merged view.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// A file system operation failed.
    #[error("{path}: {op}: {source}")]
    Io {
        /// The path operated on.
        path: PathBuf,
        /// The operation (`create directory`, `rename`, `read directory`...).
        op: &'static str,
        /// The cause.
        source: io::Error,
    },
    /// A layer blob could not be opened from the blob store.
    #[error("layer {digest}: {source}")]
    Blob {
        /// The layer blob.
        digest: Digest,
        /// The cause.
        source: BlobError,
    },
    /// Unpacking a layer failed.
    #[error("unpacking layer {digest} into {path}: {source}")]
    Apply {
        /// The layer blob.
        digest: Digest,
        /// The temp directory it was unpacked into.
        path: PathBuf,
        /// The cause.
        source: Box<hoist_layer::ApplyError>,
    },
    /// A layer whose uncompressed content does not hash to the diff_id the image
    /// config gives it.
    #[error(
        "layer {digest}: uncompressed content is {actual}, but the image config says {expected}"
    )]
    DiffIdMismatch {
        /// The layer blob.
        digest: Digest,
        /// The diff_id from the config.
        expected: Digest,
        /// What the content hashes to.
        actual: Digest,
    },
    /// A manifest and config that disagree on the number of layers.
    #[error("image manifest lists {layers} layers but its config lists {diff_ids} diff_ids")]
    LayerCount {
        /// Layers in the manifest.
        layers: usize,
        /// diff_ids in the config.
        diff_ids: usize,
    },
    /// An overlay upper directory this crate cannot turn into a layer (metacopy or
    /// redirect_dir were on when it was written).
    #[error("{path}: {reason}")]
    Unsupported {
        /// The object in the upper directory.
        path: PathBuf,
        /// What is not supported.
        reason: String,
    },
}

pub(crate) fn io_err(
    path: impl Into<PathBuf>,
    op: &'static str,
) -> impl FnOnce(io::Error) -> SnapshotError {
    let path = path.into();
    move |source| SnapshotError::Io { path, op, source }
}
