//! Ecosystem families and package-name normalisation: the database key of a
//! package, computed the same way for advisories at import and for queries.

/// Ecosystems whose releases are separate package sets: the key keeps the
/// release (`Debian:12`, `Alpine:v3.19`, `Ubuntu:22.04`).
const RELEASED: &[&str] = &[
    "AlmaLinux",
    "Alpaquita",
    "Alpine",
    "Debian",
    "Mageia",
    "openEuler",
    "openSUSE",
    "Photon OS",
    "Red Hat",
    "Rocky Linux",
    "SUSE",
    "Ubuntu",
];

/// Language ecosystems, matched case-insensitively; any `:<suffix>` (Maven's
/// repository URL, for instance) is dropped from the key.
const LANGUAGE: &[&str] = &[
    "crates.io",
    "Go",
    "Hex",
    "Maven",
    "npm",
    "NuGet",
    "Packagist",
    "Pub",
    "PyPI",
    "RubyGems",
    "SwiftURL",
    "Hackage",
    "CRAN",
    "Bioconductor",
    "GitHub Actions",
];

/// The family key of an ecosystem string: the canonical spelling of its base,
/// plus the release for OS distributions. Ubuntu's `:LTS` marker is dropped so
/// that `Ubuntu:22.04:LTS` advisories match an `Ubuntu:22.04` query.
pub fn family(ecosystem: &str) -> String {
    let ecosystem = ecosystem.trim();
    let (base, rest) = match ecosystem.split_once(':') {
        Some((b, r)) => (b, Some(r)),
        None => (ecosystem, None),
    };
    if let Some(lang) = LANGUAGE.iter().find(|l| l.eq_ignore_ascii_case(base)) {
        return (*lang).to_string();
    }
    let Some(os) = RELEASED.iter().find(|l| l.eq_ignore_ascii_case(base)) else {
        return ecosystem.to_string();
    };
    match rest {
        None => (*os).to_string(),
        Some(rest) if *os == "Ubuntu" => {
            let release: Vec<&str> = rest.split(':').filter(|p| *p != "LTS").collect();
            format!("Ubuntu:{}", release.join(":"))
        }
        Some(rest) => format!("{os}:{rest}"),
    }
}

/// The normalised package name within an ecosystem family: PEP 503 for PyPI
/// (lower case, runs of `-_.` become `-`), lower case for crates.io (crate
/// names are unique case-insensitively) and NuGet; others as given (Maven
/// `group:artifact` and Go module paths are case-sensitive).
pub fn normalize_name(family: &str, name: &str) -> String {
    let name = name.trim();
    match family {
        "PyPI" => {
            let mut out = String::with_capacity(name.len());
            let mut in_sep = false;
            for c in name.chars() {
                if matches!(c, '-' | '_' | '.') {
                    if !in_sep {
                        out.push('-');
                    }
                    in_sep = true;
                } else {
                    out.push(c.to_ascii_lowercase());
                    in_sep = false;
                }
            }
            out
        }
        "crates.io" | "NuGet" => name.to_ascii_lowercase(),
        _ => name.to_string(),
    }
}

/// The database key of a package: (family, normalised name).
pub fn key(ecosystem: &str, name: &str) -> (String, String) {
    let fam = family(ecosystem);
    let name = normalize_name(&fam, name);
    (fam, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families() {
        assert_eq!(family("Debian:12"), "Debian:12");
        assert_eq!(family("Alpine:v3.19"), "Alpine:v3.19");
        assert_eq!(family("Ubuntu:22.04:LTS"), "Ubuntu:22.04");
        assert_eq!(family("Ubuntu:Pro:18.04:LTS"), "Ubuntu:Pro:18.04");
        assert_eq!(family("pypi"), "PyPI");
        assert_eq!(family("Maven:https://maven.google.com"), "Maven");
        assert_ne!(family("Debian:12"), family("Debian:11"));
    }

    #[test]
    fn names() {
        assert_eq!(
            normalize_name("PyPI", "Foo.Bar__baz-_qux"),
            "foo-bar-baz-qux"
        );
        assert_eq!(normalize_name("crates.io", "Serde_JSON"), "serde_json");
        assert_eq!(normalize_name("Maven", "org.Apache:Foo"), "org.Apache:Foo");
        assert_eq!(
            normalize_name("Go", "github.com/Foo/bar"),
            "github.com/Foo/bar"
        );
    }
}
