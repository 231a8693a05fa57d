//! The registry client: pushes images from hoist's store to any OCI registry and
//! pulls them back, with the Docker token flow and Docker's credential sources.
//!
//! It must not serve anything (hoist-registry does) and writes to the local store
//! only through hoist-oci's atomic blob and image APIs.
