//! The container runtime: runs one process in a container made from a root file
//! system, with Docker-like isolation, through youki's `libcontainer` inside a
//! re-executed single-threaded helper process (or an OCI runtime binary).
//!
//! It must not know about images, layers, registries or builds: callers hand it a
//! prepared rootfs (a directory or overlay lower/upper/work dirs).
