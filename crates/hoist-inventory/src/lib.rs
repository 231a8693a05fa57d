//! Package inventory (the SBOM's contents) of an image or a directory.
//!
//! It owns finding what is installed: OS packages (dpkg, apk, rpm) with the
//! distribution from os-release, and language packages (Python, npm, Cargo, Go,
//! Java, RubyGems) from package databases, lockfiles and binaries. For an image it
//! is layer-aware: what a later layer deletes is not reported, and each package
//! says which layer brought it. It must not match vulnerabilities or write
//! reports: it returns [`Package`]s.

pub mod lang;
pub mod package;

pub use package::{Inventory, OsRelease, Package, PackageKind};
