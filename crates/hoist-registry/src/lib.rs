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
//! and [`serve`] runs it on a listener. Routing is by hand from the right end of the
//! path because names have any number of components (`team/app/busybox`).
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
//!
//! # Policies and garbage collection
//!
//! [`Registry::with_policies`] gives the registry ECR-like per-repository policies
//! (module `policy`, the `[[repository]]` entries of the config file): the first
//! entry whose globset pattern matches a repository applies. Tag mutability
//! (`MUTABLE`, `IMMUTABLE`, and both `*_WITH_EXCLUSION` with wildcard filters) is
//! enforced on manifest `PUT` with ECR's `TAG_INVALID` answer; `scan_on_push` calls
//! the hooks installed with [`Registry::on_push`] without delaying the response; a
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
//! storage classes. Nothing scans images yet: the scanner will plug into
//! [`Registry::on_push`]. Deleting a blob or manifest through the API removes the
//! repository's link only; the content stays in the store until the next GC.

pub mod auth;
pub mod config;
pub mod gc;
mod http;
pub mod lifecycle;
pub mod policy;
mod storage;

pub use config::{Config, ConfigError, TlsConfig};
pub use gc::{GcConfig, GcReport};
pub use http::{router, serve};
pub use lifecycle::LifecyclePolicy;
pub use policy::{PushHook, PushedManifest, RepositoryPolicy, TagMutability};
pub use storage::{valid_name, valid_tag, Registry, RegistryError};
