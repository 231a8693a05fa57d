//! hoist's embedded OCI registry: an OCI distribution-spec v1.1 server over a
//! content-addressed blob store, with per-repository tags and manifests.
//!
//! It must not pull from or push to other registries (hoist-registry-client does) and
//! knows nothing of builds or deployments.
