//! The OCI image model and hoist's local image store.
//!
//! (Crate essay written below as modules land.)

pub mod digest;
pub mod reference;

pub use digest::{Algorithm, Digest, DigestError, DigestReader, DigestWriter, Digester};
