//! The inventory model: what was found, where, and in which layer.

use std::path::PathBuf;

use serde::Serialize;

/// Where a package comes from: its package manager or language ecosystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageKind {
    /// A Debian/Ubuntu package (dpkg status database).
    Deb,
    /// An Alpine package (apk installed database).
    Apk,
    /// An RPM package (rpmdb).
    Rpm,
    /// A Python distribution (PyPI).
    Python,
    /// An npm package.
    Npm,
    /// A Rust crate (crates.io).
    Cargo,
    /// A Go module.
    Go,
    /// A Maven artifact (group:artifact).
    Maven,
    /// A Ruby gem.
    Gem,
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Package {
    /// Package manager or ecosystem.
    pub kind: PackageKind,
    /// Name as the ecosystem spells it (Maven: `group:artifact`; Go: module path).
    pub name: String,
    /// Version as the ecosystem spells it (dpkg: with epoch and revision).
    pub version: String,
    /// OS packages: the source package's name, when it differs or is recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    /// OS packages: the source package's version, when recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// Licenses as declared, if any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<String>,
    /// The file the package was found in (relative to the image or directory root).
    pub path: PathBuf,
    /// The layer that brought the file: its diff_id (`sha256:...`); `None` for a
    /// directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
}

/// The distribution, from `etc/os-release` (or `usr/lib/os-release`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OsRelease {
    /// `ID`, e.g. `debian`, `alpine`, `ubuntu`.
    pub id: String,
    /// `VERSION_ID`, e.g. `12`, `3.19.1`, `22.04`.
    pub version_id: Option<String>,
    /// `VERSION_CODENAME`, e.g. `bookworm`.
    pub codename: Option<String>,
    /// `PRETTY_NAME`.
    pub pretty_name: Option<String>,
}

/// Everything found in one image or directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Inventory {
    /// The distribution, when the tree has an os-release file.
    pub os: Option<OsRelease>,
    /// Packages, sorted by kind, name, version and path.
    pub packages: Vec<Package>,
    /// What could not be read (a layer, a malformed or unsupported database); the
    /// rest is still reported.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<crate::error::Problem>,
}
