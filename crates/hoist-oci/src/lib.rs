//! The OCI image model and hoist's local image store.
//!
//! Everything else in hoist speaks in these types: a build produces an image in the
//! [`store::Store`], the scanner reads it from there, the registry serves the same
//! blobs, and a deployment names an image by its manifest [`Digest`].
//!
//! - [`digest`]: [`Digest`] is valid once constructed (sha256, or sha512 on input);
//!   [`Digester`], [`DigestWriter`] and [`DigestReader`] hash while bytes stream.
//! - [`manifest`], [`config`], [`media_type`]: the image-spec 1.1 documents, with
//!   Docker v2 schema 2 manifests and manifest lists accepted on input. They are plain
//!   serde types with sorted maps, so what hoist writes is byte-for-byte reproducible;
//!   what hoist reads is stored as the bytes it came as and never re-serialized.
//! - [`blob::BlobStore`]: content-addressed files, written by temp file, verify,
//!   fsync, rename. A blob path never holds anything but its digest's bytes.
//! - [`store::Store`]: which manifests are images and what they are called, with
//!   names parsed by [`reference::Reference`] under Docker's rules; garbage
//!   collection that cannot race writers.
//! - [`transfer`]: OCI image layout directories and `docker save` tarballs, in and out.
//!
//! What this crate does not do: no network I/O (registry clients and servers build on
//! it), no Dockerfile knowledge, and no reading or writing of layer *contents*
//! (`hoist-layer` does that; here layers are opaque blobs with a media type).

pub mod blob;
pub mod config;
pub mod digest;
pub mod manifest;
pub mod media_type;
pub mod reference;
pub mod store;
pub mod transfer;

pub use blob::{write_atomic, BlobError, BlobStore, BlobWriter, PartialBlob};
pub use config::ImageConfig;
pub use digest::{Algorithm, Digest, DigestError, DigestReader, DigestWriter, Digester};
pub use manifest::{Descriptor, ImageIndex, ImageManifest, Manifest, ManifestError, Platform};
pub use reference::{Reference, ReferenceError};
pub use store::{ImageRecord, Store, StoreError};

/// A byte count in decimal units, one decimal (`1.5 MB`), as sizes are shown.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod size_tests {
    #[test]
    fn byte_counts_read_in_decimal_units() {
        assert_eq!(super::human_bytes(999), "999 B");
        assert_eq!(super::human_bytes(1_500), "1.5 kB");
        assert_eq!(super::human_bytes(2_345_678), "2.3 MB");
        assert_eq!(super::human_bytes(7_000_000_000_000_000), "7000.0 TB");
    }
}
