//! Which OSV ecosystem, package name and version a found package is matched as.

use hoist_inventory::{OsRelease, Package, PackageKind};

/// The OSV query for a package: `(ecosystem, name, version)`. OS packages are
/// matched by their source package, as distributions publish advisories per source
/// package, and against the release's own ecosystem (`Debian:12`,
/// `Alpine:v3.19`, `Ubuntu:22.04`; the database drops Ubuntu's `:LTS`). `None` when there is no
/// advisory ecosystem for it (an rpm distribution OSV does not cover, a package
/// without a distribution).
pub fn query(package: &Package, os: Option<&OsRelease>) -> Option<(String, String, String)> {
    let source = || {
        (
            package
                .source_name
                .clone()
                .unwrap_or_else(|| package.name.clone()),
            package
                .source_version
                .clone()
                .unwrap_or_else(|| package.version.clone()),
        )
    };
    let version_id = || os.and_then(|o| o.version_id.clone());
    let major = |v: &str| v.split('.').next().unwrap_or(v).to_owned();
    match package.kind {
        PackageKind::Deb => {
            let os = os?;
            let v = version_id()?;
            let ecosystem = match os.id.as_str() {
                "debian" => format!("Debian:{}", major(&v)),
                "ubuntu" => format!("Ubuntu:{v}"),
                _ => return None,
            };
            let (name, version) = source();
            Some((ecosystem, name, version))
        }
        PackageKind::Apk => {
            let v = version_id()?;
            let mut parts = v.split('.');
            let minor = format!("{}.{}", parts.next()?, parts.next()?);
            let (name, version) = source();
            Some((format!("Alpine:v{minor}"), name, version))
        }
        PackageKind::Rpm => {
            let os = os?;
            let v = major(&version_id()?);
            let eco = match os.id.as_str() {
                "rocky" => format!("Rocky Linux:{v}"),
                "almalinux" => format!("AlmaLinux:{v}"),
                "mageia" => format!("Mageia:{v}"),
                "opensuse-leap" => format!("openSUSE:Leap {}", version_id()?),
                _ => return None,
            };
            // rpm advisories name binary packages and write [epoch:]version-release.
            Some((eco, package.name.clone(), package.version.clone()))
        }
        PackageKind::Python => Some(("PyPI".into(), package.name.clone(), package.version.clone())),
        PackageKind::Npm => Some(("npm".into(), package.name.clone(), package.version.clone())),
        PackageKind::Cargo => Some((
            "crates.io".into(),
            package.name.clone(),
            package.version.clone(),
        )),
        PackageKind::Go => Some(("Go".into(), package.name.clone(), package.version.clone())),
        PackageKind::Maven => Some((
            "Maven".into(),
            package.name.clone(),
            package.version.clone(),
        )),
        PackageKind::Gem => Some((
            "RubyGems".into(),
            package.name.clone(),
            package.version.clone(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(id: &str, v: &str) -> OsRelease {
        OsRelease {
            id: id.into(),
            version_id: Some(v.into()),
            codename: None,
            pretty_name: None,
        }
    }

    fn pkg(kind: PackageKind, name: &str, version: &str, source: Option<(&str, &str)>) -> Package {
        Package {
            kind,
            name: name.into(),
            version: version.into(),
            source_name: source.map(|s| s.0.into()),
            source_version: source.map(|s| s.1.into()),
            licenses: vec![],
            path: "x".into(),
            layer: None,
        }
    }

    #[test]
    fn os_packages_by_source_and_release() {
        let libssl = pkg(
            PackageKind::Deb,
            "libssl3",
            "3.0.11-1~deb12u1",
            Some(("openssl", "3.0.11-1~deb12u1")),
        );
        assert_eq!(
            query(&libssl, Some(&os("debian", "12"))),
            Some((
                "Debian:12".into(),
                "openssl".into(),
                "3.0.11-1~deb12u1".into()
            ))
        );
        assert_eq!(
            query(&libssl, Some(&os("ubuntu", "22.04"))).map(|q| q.0),
            Some("Ubuntu:22.04".into())
        );
        assert_eq!(query(&libssl, None), None);
        let musl = pkg(
            PackageKind::Apk,
            "musl-utils",
            "1.2.4-r2",
            Some(("musl", "1.2.4-r2")),
        );
        assert_eq!(
            query(&musl, Some(&os("alpine", "3.19.1"))),
            Some(("Alpine:v3.19".into(), "musl".into(), "1.2.4-r2".into()))
        );
        let curl = pkg(PackageKind::Rpm, "curl", "7.61.1-22.el8", None);
        assert_eq!(
            query(&curl, Some(&os("rocky", "8.9"))).map(|q| q.0),
            Some("Rocky Linux:8".into())
        );
        assert_eq!(query(&curl, Some(&os("rhel", "8.9"))), None);
    }

    #[test]
    fn language_packages_by_ecosystem() {
        let django = pkg(PackageKind::Python, "Django", "4.2.1", None);
        assert_eq!(query(&django, None).map(|q| q.0), Some("PyPI".into()));
        let go = pkg(PackageKind::Go, "stdlib", "v1.21.0", None);
        assert_eq!(query(&go, None).map(|q| q.0), Some("Go".into()));
    }
}
