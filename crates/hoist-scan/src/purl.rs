//! Package URLs (purl, github.com/package-url/purl-spec) for SBOMs and SARIF.
//!
//! Hand-written: the rules are a page long (type, namespace, name, version,
//! qualifiers; percent-encoding of everything but `A-Za-z0-9.-_~`), and the purl
//! crates on crates.io either do not know every type hoist reports or pull in a
//! URL parser to build a string.

use hoist_inventory::{OsRelease, Package, PackageKind};

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn path(segments: &str) -> String {
    segments
        .split('/')
        .filter(|s| !s.is_empty())
        .map(encode)
        .collect::<Vec<_>>()
        .join("/")
}

/// The purl of `package`, found in a tree whose distribution is `os`.
pub fn purl(package: &Package, os: Option<&OsRelease>) -> String {
    let distro = os.map(|o| match &o.version_id {
        Some(v) => format!("{}-{v}", o.id),
        None => o.id.clone(),
    });
    let os_ns = |default: &str| os.map_or(default.to_owned(), |o| o.id.clone());
    let mut qualifiers = Vec::new();
    let (kind, namespace, name, version) = match package.kind {
        PackageKind::Deb => (
            "deb",
            Some(os_ns("debian")),
            package.name.clone(),
            package.version.clone(),
        ),
        PackageKind::Apk => (
            "apk",
            Some(os_ns("alpine")),
            package.name.clone(),
            package.version.clone(),
        ),
        PackageKind::Rpm => {
            let (epoch, rest) = match package.version.split_once(':') {
                Some((e, r)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
                    (Some(e), r)
                }
                _ => (None, package.version.as_str()),
            };
            if let Some(e) = epoch {
                qualifiers.push(("epoch", e.to_owned()));
            }
            (
                "rpm",
                Some(os_ns("redhat")),
                package.name.clone(),
                rest.to_owned(),
            )
        }
        PackageKind::Python => (
            "pypi",
            None,
            // PEP 503 normalisation, as the purl spec asks for pypi.
            hoist_vulndb::ecosystem::normalize_name("PyPI", &package.name),
            package.version.clone(),
        ),
        PackageKind::Npm => match package
            .name
            .strip_prefix('@')
            .and_then(|n| n.split_once('/'))
        {
            Some((scope, name)) => (
                "npm",
                Some(format!("@{scope}")),
                name.to_owned(),
                package.version.clone(),
            ),
            None => ("npm", None, package.name.clone(), package.version.clone()),
        },
        PackageKind::Cargo => ("cargo", None, package.name.clone(), package.version.clone()),
        PackageKind::Go => match package.name.rsplit_once('/') {
            Some((ns, name)) => (
                "golang",
                Some(ns.to_owned()),
                name.to_owned(),
                package.version.clone(),
            ),
            None => (
                "golang",
                None,
                package.name.clone(),
                package.version.clone(),
            ),
        },
        PackageKind::Maven => match package.name.split_once(':') {
            Some((group, artifact)) => (
                "maven",
                Some(group.to_owned()),
                artifact.to_owned(),
                package.version.clone(),
            ),
            None => ("maven", None, package.name.clone(), package.version.clone()),
        },
        PackageKind::Gem => ("gem", None, package.name.clone(), package.version.clone()),
    };
    if matches!(
        package.kind,
        PackageKind::Deb | PackageKind::Apk | PackageKind::Rpm
    ) {
        if let Some(d) = distro {
            qualifiers.push(("distro", d));
        }
    }
    let mut out = format!("pkg:{kind}/");
    if let Some(ns) = namespace {
        out.push_str(&path(&ns));
        out.push('/');
    }
    out.push_str(&encode(&name));
    if !version.is_empty() {
        out.push('@');
        out.push_str(&encode(&version));
    }
    qualifiers.sort();
    for (i, (k, v)) in qualifiers.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        out.push_str(&encode(v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(kind: PackageKind, name: &str, version: &str) -> Package {
        Package {
            kind,
            name: name.into(),
            version: version.into(),
            source_name: None,
            source_version: None,
            licenses: vec![],
            path: "x".into(),
            layer: None,
        }
    }

    #[test]
    fn each_type_as_the_spec_writes_it() {
        let debian = OsRelease {
            id: "debian".into(),
            version_id: Some("12".into()),
            codename: None,
            pretty_name: None,
        };
        let cases = [
            (
                pkg(PackageKind::Deb, "libc6", "2.36-9+deb12u4"),
                Some(&debian),
                "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?distro=debian-12",
            ),
            (
                pkg(PackageKind::Deb, "perl", "1:5.36.0-7"),
                Some(&debian),
                "pkg:deb/debian/perl@1%3A5.36.0-7?distro=debian-12",
            ),
            (
                pkg(PackageKind::Rpm, "curl", "1:7.61.1-22.el8"),
                None,
                "pkg:rpm/redhat/curl@7.61.1-22.el8?epoch=1",
            ),
            (
                pkg(PackageKind::Python, "Django_REST.framework", "3.14.0"),
                None,
                "pkg:pypi/django-rest-framework@3.14.0",
            ),
            (
                pkg(PackageKind::Npm, "@angular/core", "17.0.1"),
                None,
                "pkg:npm/%40angular/core@17.0.1",
            ),
            (
                pkg(PackageKind::Npm, "lodash", "4.17.21"),
                None,
                "pkg:npm/lodash@4.17.21",
            ),
            (
                pkg(PackageKind::Cargo, "rand", "0.8.5"),
                None,
                "pkg:cargo/rand@0.8.5",
            ),
            (
                pkg(PackageKind::Go, "github.com/gorilla/mux", "v1.8.0"),
                None,
                "pkg:golang/github.com/gorilla/mux@v1.8.0",
            ),
            (
                pkg(
                    PackageKind::Maven,
                    "org.apache.logging.log4j:log4j-core",
                    "2.14.1",
                ),
                None,
                "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
            ),
            (
                pkg(PackageKind::Gem, "rails", "7.1.2"),
                None,
                "pkg:gem/rails@7.1.2",
            ),
        ];
        for (p, os, want) in cases {
            assert_eq!(purl(&p, os), want);
        }
    }
}
