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
//! - Blob bodies are streamed and written once: a request's body goes from the
//!   connection through a small queue to a blocking thread that appends it to the
//!   session's file *and* hashes it, keeping the running sha256 in memory per session
//!   ([`UploadWriter`]). At `PUT` a matching digest means the file is fsynced and
//!   renamed into the store (same file system: no copy, no second read), then the
//!   directory is fsynced; only when the running hash is gone (the server restarted
//!   mid-session, a request failed half-way, a sha512 digest) is the file hashed again.
//!   `GET` streams from the blob file in 256 KiB reads on one blocking thread (with
//!   `Range`). Only manifests (≤ 4 MiB) are read whole.
//! - Durability: a `201` for a blob means its bytes, its store entry and its link are
//!   on disk (fsync file, rename, fsync directory). Upload sessions are not fsynced; a
//!   session lost in a crash is restarted by the client, and a partial session is
//!   never visible as a blob. Sessions are flushed to disk every 64 MiB as they grow,
//!   so the fsync before the `201` has little left to write.
//! - A manifest is accepted only when everything it references (config and layers, or
//!   an index's child manifests) is already in the repository.
//! - Every request is authorized before its handler runs; a bearer token is checked
//!   on each request against its signature, expiry, access claim and a principal that
//!   still exists (revoking a registry token takes effect at once).
//!
//! # Policies and garbage collection
//!
//! [`Registry::with_policies`] gives the registry ECR-like per-repository policies
//! (module `policy`, the `[[repository]]` entries of the config file): the first
//! entry whose globset pattern matches a repository applies. Tag mutability
//! (`MUTABLE`, `IMMUTABLE`, and both `*_WITH_EXCLUSION` with wildcard filters) is
//! enforced on manifest `PUT` with ECR's `TAG_INVALID` answer; `scan_on_push` calls
//! the hooks installed with [`Registry::on_push`] without delaying the response (the
//! `hoist` binary installs the scanner there), and the hooks store what they find
//! with [`Registry::attach`] (module `attach`): an artifact manifest whose `subject`
//! is the image, listed by the referrers API; a
//! lifecycle policy in ECR's JSON (module `lifecycle`, a pure evaluator) says which
//! images expire. [`Registry::gc`] (module `gc`) applies lifecycle policies, drops
//! repository links no manifest uses, deletes store blobs no repository links and
//! removes abandoned upload sessions; it takes the exclusive `flock` on
//! `<root>/gc.lock` that every link-creating push step takes shared, so it is safe
//! against pushes in flight in this or another process, and a grace period protects
//! blobs uploaded but not yet referenced. Each manifest revision's first push time
//! is recorded for `sinceImagePushed` and `imageCountMoreThan`.
//!
//! # Not here (yet)
//!
//! Quotas, replication, pull-time tracking (ECR's `sinceImagePulled`) and archival
//! storage classes. The registry never scans by itself: it only calls the hooks
//! (this crate must not depend on the scanners). Deleting a blob or manifest through the API removes the
//! repository's link only; the content stays in the store until the next GC.
//! Authentication has no refresh tokens, no OAuth2 `POST /token`, no password
//! hash but bcrypt and no rate limit on guesses; TLS has no client certificates
//! and no reloading of a renewed certificate.

pub mod announce;
pub mod attach;
pub mod auth;
pub mod config;
pub mod gc;
mod http;
pub mod lifecycle;
pub mod policy;
mod storage;
pub mod tls;

pub use attach::{AttachError, Attachment};
pub use auth::{Auth, AuthConfig, AuthError};
pub use config::{Config, ConfigError, TlsConfig};
pub use gc::{GcConfig, GcReport};
pub use http::{router, serve};
pub use lifecycle::LifecyclePolicy;
pub use policy::{PushHook, PushedManifest, RepositoryPolicy, TagMutability};
pub use storage::{valid_name, valid_tag, Registry, RegistryError, UploadWriter};
pub use tls::{serve_tls, Tls, TlsError};
