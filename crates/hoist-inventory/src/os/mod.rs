//! OS package databases and the distribution: which files they are in and pure
//! parsers for each (`fn parse(&[u8]) -> Result<_, ParseError>`, never panicking on
//! malformed input). The parsers leave [`crate::Package::path`] empty and
//! [`crate::Package::layer`] `None`; the collector fills both.

pub mod apk;
pub mod dpkg;
pub mod os_release;
pub mod rpm;

use std::path::Path;

/// `etc/os-release`, preferred to [`OS_RELEASE_FALLBACK`].
pub const OS_RELEASE: &str = "etc/os-release";
/// `usr/lib/os-release`.
pub const OS_RELEASE_FALLBACK: &str = "usr/lib/os-release";
/// dpkg's status database.
pub const DPKG_STATUS: &str = "var/lib/dpkg/status";
/// Distroless' one-file-per-package dpkg status directory.
pub const DPKG_STATUS_D: &str = "var/lib/dpkg/status.d";
/// dpkg's per-package file lists (`<name>[:<arch>].list`), used for layer attribution.
pub const DPKG_INFO: &str = "var/lib/dpkg/info";
/// apk's installed database.
pub const APK_INSTALLED: &str = "lib/apk/db/installed";
/// rpm's SQLite database (Fedora 33+, RHEL 9+, recent SUSE).
pub const RPM_SQLITE: &str = "var/lib/rpm/rpmdb.sqlite";
/// rpm's Berkeley DB database (RHEL 8 and older): not read.
pub const RPM_BDB: &str = "var/lib/rpm/Packages";
/// rpm's NDB database (SUSE before 2023): not read.
pub const RPM_NDB: &str = "var/lib/rpm/Packages.db";

/// What an OS file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OsFile {
    /// An os-release file; `true` for `etc/os-release`.
    OsRelease(bool),
    /// dpkg's status file.
    DpkgStatus,
    /// One distroless `status.d` file.
    DpkgStatusD,
    /// `var/lib/dpkg/info/<package>.list`: the package name (without `:arch`).
    DpkgList(String),
    /// apk's installed database.
    Apk,
    /// rpm's SQLite database.
    RpmSqlite,
    /// An rpm database in a format this crate does not read.
    RpmUnsupported(&'static str),
}

/// Classify a path (relative to the root) as one of the OS files, if it is one.
pub fn classify(path: &Path) -> Option<OsFile> {
    let s = path.to_str()?;
    Some(match s {
        OS_RELEASE => OsFile::OsRelease(true),
        OS_RELEASE_FALLBACK => OsFile::OsRelease(false),
        DPKG_STATUS => OsFile::DpkgStatus,
        APK_INSTALLED => OsFile::Apk,
        RPM_SQLITE => OsFile::RpmSqlite,
        RPM_BDB => OsFile::RpmUnsupported("Berkeley DB"),
        RPM_NDB => OsFile::RpmUnsupported("NDB"),
        _ => {
            let (dir, name) = s.rsplit_once('/')?;
            if dir == DPKG_STATUS_D && !name.ends_with(".md5sums") && !name.starts_with('.') {
                OsFile::DpkgStatusD
            } else if dir == DPKG_INFO {
                let pkg = name.strip_suffix(".list")?;
                let pkg = pkg.split_once(':').map_or(pkg, |(n, _)| n);
                OsFile::DpkgList(pkg.to_owned())
            } else {
                return None;
            }
        }
    })
}

/// Split text into lines, numbered from 1, without their `\n` (and `\r`).
pub(crate) fn lines(data: &[u8]) -> impl Iterator<Item = (usize, String)> + '_ {
    data.split(|&b| b == b'\n').enumerate().map(|(i, l)| {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        (i + 1, String::from_utf8_lossy(l).into_owned())
    })
}
