//! Errors: [`InventoryError`] when there is nothing to inventory (no such image, an
//! unreadable manifest or directory), [`ParseError`] for a malformed package
//! database, and [`Problem`], what an [`crate::Inventory`] records about the parts
//! it could not read while still reporting the rest.

use std::io;
use std::path::PathBuf;

use hoist_oci::transfer::TransferError;
use hoist_oci::{Digest, StoreError};
use serde::Serialize;

/// Nothing could be inventoried.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InventoryError {
    /// The image store failed (manifest or config missing or unreadable).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Picking the platform manifest or importing an archive failed.
    #[error(transparent)]
    Transfer(#[from] TransferError),
    /// An image whose manifest and config disagree.
    #[error("image {image}: {reason}")]
    Image {
        /// The manifest digest.
        image: Digest,
        /// What is wrong.
        reason: String,
    },
    /// An archive or layout that does not hold exactly one image.
    #[error("{path}: {reason}")]
    Archive {
        /// The archive or layout.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A directory (or the temporary store) that cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// A malformed package database or os-release file. The parsers are pure
/// (`fn parse(&[u8]) -> Result<_, ParseError>`); the caller adds the path, and the
/// whole reads `var/lib/dpkg/status:123: entry without Package`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{reason}", line.map(|l| format!("{l}: ")).unwrap_or_default())]
pub struct ParseError {
    /// 1-based line where the problem is (text formats only).
    pub line: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

impl ParseError {
    /// A problem at `line` (1-based).
    pub fn at(line: usize, reason: impl Into<String>) -> ParseError {
        ParseError {
            line: Some(line),
            reason: reason.into(),
        }
    }

    /// A problem without a line (binary formats).
    pub fn new(reason: impl Into<String>) -> ParseError {
        ParseError {
            line: None,
            reason: reason.into(),
        }
    }
}

/// Something the inventory could not read; the rest is still reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file concerned, relative to the root, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// The layer concerned (diff_id), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    /// What went wrong, naming the file and line when there is one
    /// (`var/lib/dpkg/status:12: entry without Package`).
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(layer) = &self.layer {
            write!(f, "layer {layer}: ")?;
        }
        f.write_str(&self.message)
    }
}
