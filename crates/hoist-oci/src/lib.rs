//! The OCI image model and hoist's local image store.
//!
//! (Crate essay written below as modules land.)

pub mod blob;
pub mod config;
pub mod digest;
pub mod manifest;
pub mod media_type;
pub mod reference;
pub mod store;
pub mod transfer;

pub use blob::{BlobError, BlobStore, BlobWriter};
pub use config::ImageConfig;
pub use digest::{Algorithm, Digest, DigestError, DigestReader, DigestWriter, Digester};
pub use manifest::{Descriptor, ImageIndex, ImageManifest, Manifest, ManifestError, Platform};
