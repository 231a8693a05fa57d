//! Snapshots: image layers unpacked once into overlayfs-ready directories, merged
//! read-only views over them, and the diff of an overlay upper directory (or of a
//! walked tree where overlayfs is missing) back into an OCI change list.
//!
//! It must not run processes or mount anything: the runtime mounts, the builder decides.
