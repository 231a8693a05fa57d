//! hoist's embedded OCI registry: an OCI distribution-spec v1.1 server over a
//! content-addressed blob store, with per-repository tags and manifests.
//!
//! It must not pull from or push to other registries (hoist-registry-client does) and
//! knows nothing of builds or deployments.
//!
//! # Shape
//!
//! [`Registry`] is the state on disk (module `storage`): one content-addressed
//! [`hoist_oci::BlobStore`] shared by every repository, and per repository a directory
//! of *links* saying which blobs and manifests the repository holds, its tags, its
//! referrers, plus upload sessions. A blob is visible in a repository only through its
//! link, so `HEAD /v2/a/blobs/<d>` is 404 when only `b` pushed it (cross-repository
//! mounts add the link without copying). The layout is documented in `storage`.
//!
//! [`router`] builds the axum application for the distribution API (module `http`),
//! and [`serve`] runs it on a listener ([`serve_tls`] over HTTPS, module `tls`).
//! Routing is by hand from the right end of the path because names have any number of
//! components (`team/app/busybox`).
//!
//! [`Auth`] (module `auth`) decides who may do what before a request reaches its
//! handler: anonymous callers, registry tokens ([`auth::TokenStore`], stored hashed
//! under `<root>/auth/`) and htpasswd users, with Docker's token flow served at
//! `/token` and short-lived HMAC-signed bearer tokens. With no tokens, no users and
//! anonymous pull on (the default), the registry is open to everyone.
//!
//! # Invariants
//!
//! - Every metadata write is atomic (`hoist_oci::write_atomic`); blobs are verified
//!   against their digest before being renamed into the store, so a crash leaves
//!   either nothing or a whole, correct file.
//! - Blob bodies are streamed: uploads are appended chunk by chunk to the session's
//!   file, then hashed and copied into the store by streaming it at `PUT` time; `GET`
//!   streams from the file (with `Range`). Only manifests (≤ 4 MiB) are read whole.
//! - A manifest is accepted only when everything it references (config and layers, or
//!   an index's child manifests) is already in the repository.
//! - Every request is authorized before its handler runs; a bearer token is checked
//!   on each request against its signature, expiry, access claim and a principal that
//!   still exists (revoking a registry token takes effect at once).
//!
//! # Not here (yet)
//!
//! Policies (immutable tags, quotas), garbage collection of unreferenced blobs and of
//! abandoned upload sessions. Deleting a blob or manifest removes the repository's link
//! only; the content stays in the store. Authentication has no refresh tokens, no
//! OAuth2 `POST /token`, no password hash but bcrypt and no rate limit on guesses; TLS
//! has no client certificates and no reloading of a renewed certificate.

pub mod auth;
pub mod config;
pub mod gc;
mod http;
pub mod policy;
mod storage;
pub mod tls;

pub use auth::{Auth, AuthConfig, AuthError};
pub use config::{Config, ConfigError, TlsConfig};
pub use http::{router, serve};
pub use storage::{valid_name, valid_tag, Registry, RegistryError};
pub use tls::{serve_tls, Tls, TlsError};
