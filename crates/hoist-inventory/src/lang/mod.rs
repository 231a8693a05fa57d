//! Language packages: pure parsers of package databases, lockfiles and binaries.
//!
//! The walk of an image or a directory asks [`wants`] of every file it meets (path
//! relative to the root, size, mode) and hands the content of a wanted file to
//! [`parse`], which picks the parser by the file's name (or, for executables, by
//! the binary format) and returns the packages found, with [`Package::path`] set to
//! the given path and [`Package::layer`] left `None` for the caller to fill.
//!
//! | ecosystem | files |
//! | --- | --- |
//! | Python ([`python`]) | `*.dist-info/METADATA`, `*.egg-info/PKG-INFO`, `*.egg-info` files, `requirements.txt`, `poetry.lock`, `Pipfile.lock` |
//! | npm ([`npm`]) | `package-lock.json` (v1-v3), `yarn.lock` (classic and berry), `node_modules/**/package.json` |
//! | Rust ([`cargo`]) | `Cargo.lock`, cargo-auditable data (`.dep-v0`) in ELF executables |
//! | Go ([`golang`]) | build info (`.go.buildinfo`) in ELF executables, `go.mod`, `go.sum` |
//! | Java ([`java`]) | `.jar`, `.war`, `.ear` (and jars nested in them) |
//! | Ruby ([`ruby`]) | `specifications/*.gemspec`, `Gemfile.lock` |
//!
//! Every parser takes bytes and returns data: no file system, no network, and no
//! panic on any input (they are fuzzed). A file that cannot be read as what its
//! name says gives a [`LangError`] naming the path and, where it applies, the line.
//! An executable that is not an ELF file, or an ELF file with neither Go build info
//! nor cargo-auditable data, is no error: it simply has no language packages.
//!
//! Lockfiles and manifests are found anywhere except inside `node_modules` (a
//! published npm package's own lockfile says nothing about what is installed).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::package::{Package, PackageKind};

pub mod binary;
pub mod cargo;
pub mod golang;
pub mod java;
pub mod npm;
pub mod python;
pub mod ruby;

/// Executables larger than this are not read for build information.
pub const MAX_BINARY_SIZE: u64 = 512 << 20;
/// Archives (`.jar`, `.war`, `.ear`) larger than this are not read.
pub const MAX_ARCHIVE_SIZE: u64 = 512 << 20;
/// Text files (lockfiles, metadata, manifests) larger than this are not read.
pub const MAX_TEXT_SIZE: u64 = 64 << 20;

/// Why a language file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LangError {
    /// No parser reads a file at this path.
    #[error("{}: not a file the language parsers read", path.display())]
    Unknown {
        /// The file.
        path: PathBuf,
    },
    /// The file is not what its name says, or is malformed.
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The 1-based line, for line-oriented formats, when the fault is on one line.
        line: Option<usize>,
        /// What was wrong.
        message: String,
    },
}

impl LangError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            LangError::Unknown { path } | LangError::Parse { path, .. } => path,
        }
    }
}

/// A parse error at `path` (and `line`, if given).
pub(crate) fn fail(path: &Path, line: Option<usize>, message: impl Into<String>) -> LangError {
    LangError::Parse {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

/// The data as UTF-8 text (a leading byte-order mark dropped), or an error naming the path.
pub(crate) fn text<'a>(path: &Path, data: &'a [u8]) -> Result<&'a str, LangError> {
    let s = std::str::from_utf8(data).map_err(|e| {
        let line = data
            .get(..e.valid_up_to())
            .map(|b| b.iter().filter(|&&c| c == b'\n').count() + 1);
        fail(path, line, "not UTF-8 text")
    })?;
    Ok(s.strip_prefix('\u{feff}').unwrap_or(s))
}

/// A package of `kind` found at `path`, with no source package and no layer.
pub(crate) fn package(
    kind: PackageKind,
    name: impl Into<String>,
    version: impl Into<String>,
    licenses: Vec<String>,
    path: &Path,
) -> Package {
    Package {
        kind,
        name: name.into(),
        version: version.into(),
        source_name: None,
        source_version: None,
        licenses,
        path: path.to_path_buf(),
        layer: None,
    }
}

/// Drop entries without a name or a version (a malformed entry names nothing to
/// match) and repeated (kind, name, version, path) entries, keeping the first of each.
pub(crate) fn dedupe(packages: Vec<Package>) -> Vec<Package> {
    let mut seen = BTreeSet::new();
    packages
        .into_iter()
        .filter(|p| !p.name.is_empty() && !p.version.is_empty())
        .filter(|p| seen.insert((p.kind, p.name.clone(), p.version.clone(), p.path.clone())))
        .collect()
}

/// Which parser reads a file, from its path alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    PythonMetadata,
    Requirements,
    PoetryLock,
    PipfileLock,
    PackageLock,
    YarnLock,
    PackageJson,
    CargoLock,
    GoMod,
    GoSum,
    Archive,
    Gemspec,
    GemfileLock,
}

fn file_name(path: &Path) -> Option<&str> {
    path.file_name().and_then(|n| n.to_str())
}

fn parent_name(path: &Path) -> Option<&str> {
    path.parent().and_then(file_name)
}

fn in_node_modules(path: &Path) -> bool {
    path.components().any(|c| c.as_os_str() == "node_modules")
}

/// Whether `path` is a package's own `package.json` in `node_modules`:
/// `.../node_modules/<name>/package.json` or `.../node_modules/@scope/<name>/package.json`.
fn is_installed_package_json(path: &Path) -> bool {
    let parts: Vec<&str> = path.iter().filter_map(|c| c.to_str()).collect();
    match parts.as_slice() {
        [.., nm, name, "package.json"] if *nm == "node_modules" => {
            !name.starts_with('@') && !name.starts_with('.')
        }
        [.., nm, scope, name, "package.json"] if *nm == "node_modules" => {
            scope.starts_with('@') && !name.starts_with('.')
        }
        _ => false,
    }
}

fn format_of(path: &Path) -> Option<Format> {
    let name = file_name(path)?;
    let parent = parent_name(path).unwrap_or("");
    let lower = name.to_ascii_lowercase();
    let format = match name {
        "METADATA" if parent.ends_with(".dist-info") => Format::PythonMetadata,
        "PKG-INFO" if parent.ends_with(".egg-info") => Format::PythonMetadata,
        _ if name.ends_with(".egg-info") => Format::PythonMetadata,
        "requirements.txt" => Format::Requirements,
        "poetry.lock" => Format::PoetryLock,
        "Pipfile.lock" => Format::PipfileLock,
        "package-lock.json" => Format::PackageLock,
        "yarn.lock" => Format::YarnLock,
        "package.json" if is_installed_package_json(path) => Format::PackageJson,
        "Cargo.lock" => Format::CargoLock,
        "go.mod" => Format::GoMod,
        "go.sum" => Format::GoSum,
        "Gemfile.lock" => Format::GemfileLock,
        _ if name.ends_with(".gemspec") && parent == "specifications" => Format::Gemspec,
        _ if lower.ends_with(".jar") || lower.ends_with(".war") || lower.ends_with(".ear") => {
            Format::Archive
        }
        _ => return None,
    };
    let lockfile = matches!(
        format,
        Format::Requirements
            | Format::PoetryLock
            | Format::PipfileLock
            | Format::PackageLock
            | Format::YarnLock
            | Format::CargoLock
            | Format::GoMod
            | Format::GoSum
            | Format::GemfileLock
    );
    if lockfile && in_node_modules(path) {
        return None;
    }
    Some(format)
}

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;

/// Whether a file at this path (relative to the root, no leading slash), of this
/// size and mode, is one the language parsers read.
///
/// `mode` is `st_mode` (with or without the file-type bits, as a tar header gives
/// it): only regular files are wanted. Known names (see the [module docs](self)) are
/// wanted up to [`MAX_TEXT_SIZE`] (archives up to [`MAX_ARCHIVE_SIZE`]); any other
/// file with an execute bit is wanted, as a possible Go or Rust binary, up to
/// [`MAX_BINARY_SIZE`].
pub fn wants(path: &Path, size: u64, mode: u32) -> bool {
    let kind = mode & S_IFMT;
    if kind != 0 && kind != S_IFREG {
        return false;
    }
    if size == 0 {
        return false;
    }
    match format_of(path) {
        Some(Format::Archive) => size <= MAX_ARCHIVE_SIZE,
        Some(_) => size <= MAX_TEXT_SIZE,
        None => mode & 0o111 != 0 && size <= MAX_BINARY_SIZE,
    }
}

/// Parse a wanted file; an unknown or unparsable file gives an error naming the
/// path (and line where it applies).
///
/// The parser is chosen by the path as in [`wants`]; a path with no known name is
/// read as an executable (ELF with Go build info or cargo-auditable data), and
/// gives no packages if it is not one.
pub fn parse(path: &Path, data: &[u8]) -> Result<Vec<Package>, LangError> {
    let packages = match format_of(path) {
        Some(Format::PythonMetadata) => python::parse_metadata(path, data)?,
        Some(Format::Requirements) => python::parse_requirements(path, data)?,
        Some(Format::PoetryLock) => python::parse_poetry_lock(path, data)?,
        Some(Format::PipfileLock) => python::parse_pipfile_lock(path, data)?,
        Some(Format::PackageLock) => npm::parse_package_lock(path, data)?,
        Some(Format::YarnLock) => npm::parse_yarn_lock(path, data)?,
        Some(Format::PackageJson) => npm::parse_package_json(path, data)?,
        Some(Format::CargoLock) => cargo::parse_cargo_lock(path, data)?,
        Some(Format::GoMod) => golang::parse_go_mod(path, data)?,
        Some(Format::GoSum) => golang::parse_go_sum(path, data)?,
        Some(Format::Archive) => java::parse(path, data)?,
        Some(Format::Gemspec) => ruby::parse_gemspec(path, data)?,
        Some(Format::GemfileLock) => ruby::parse_gemfile_lock(path, data)?,
        None if path.as_os_str().is_empty() => {
            return Err(LangError::Unknown {
                path: path.to_path_buf(),
            });
        }
        None => binary::parse(path, data)?,
    };
    Ok(dedupe(packages))
}

/// Helpers shared by the parsers' unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::Package;

    /// (name, version) pairs, for compact assertions.
    pub(crate) fn nv(ps: &[Package]) -> Vec<(&str, &str)> {
        ps.iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: u32 = 0o100644;
    const EXE: u32 = 0o100755;

    #[test]
    fn wants_known_names_and_executables() {
        for p in [
            "usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA",
            "usr/lib/python3/site-packages/six-1.16.0-py3.11.egg-info/PKG-INFO",
            "usr/lib/python3/dist-packages/chardet-3.0.4.egg-info",
            "app/requirements.txt",
            "app/poetry.lock",
            "app/Pipfile.lock",
            "app/package-lock.json",
            "app/yarn.lock",
            "app/node_modules/express/package.json",
            "app/node_modules/@babel/core/package.json",
            "app/node_modules/a/node_modules/b/package.json",
            "src/Cargo.lock",
            "src/go.mod",
            "src/go.sum",
            "opt/app.jar",
            "opt/app.WAR",
            "usr/lib/ruby/gems/3.1.0/specifications/rake-13.0.6.gemspec",
            "app/Gemfile.lock",
        ] {
            assert!(wants(Path::new(p), 100, FILE), "{p}");
        }
        assert!(wants(Path::new("usr/local/bin/tool"), 100, EXE));
        assert!(wants(Path::new("usr/local/bin/tool"), 100, 0o755));
    }

    #[test]
    fn does_not_want_other_files() {
        for p in [
            "usr/local/bin/tool",
            "app/package.json",
            "app/node_modules/express/lib/package.json",
            "app/node_modules/x/package-lock.json",
            "app/node_modules/x/yarn.lock",
            "app/node_modules/.package-lock.json",
            "METADATA",
            "gems/rake.gemspec",
            "etc/passwd",
        ] {
            assert!(!wants(Path::new(p), 100, FILE), "{p}");
        }
        // Not regular files, empty, or too large.
        assert!(!wants(Path::new("app/Cargo.lock"), 100, 0o040755));
        assert!(!wants(Path::new("app/Cargo.lock"), 100, 0o120777));
        assert!(!wants(Path::new("app/Cargo.lock"), 0, FILE));
        assert!(!wants(Path::new("app/Cargo.lock"), MAX_TEXT_SIZE + 1, FILE));
        assert!(!wants(Path::new("bin/x"), MAX_BINARY_SIZE + 1, EXE));
    }

    #[test]
    fn parse_dispatches_and_names_the_path_in_errors() {
        let err = parse(Path::new("app/Cargo.lock"), b"[[package]\n").unwrap_err();
        assert_eq!(err.path(), Path::new("app/Cargo.lock"));
        assert!(err.to_string().starts_with("app/Cargo.lock"), "{err}");
        let err = parse(Path::new("app/package-lock.json"), b"{").unwrap_err();
        assert!(
            err.to_string().starts_with("app/package-lock.json"),
            "{err}"
        );
        let err = parse(Path::new(""), b"x").unwrap_err();
        assert!(matches!(err, LangError::Unknown { .. }));
        // A shell script is an executable with no packages, not an error.
        assert!(parse(Path::new("bin/run.sh"), b"#!/bin/sh\necho hi\n")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn text_errors_name_the_line() {
        let err = text(Path::new("a"), b"ok\nok\n\xff").unwrap_err();
        assert!(
            matches!(err, LangError::Parse { line: Some(3), .. }),
            "{err}"
        );
    }

    /// Every parser, fed arbitrary prefixes and byte flips of its fixtures, returns
    /// (an error or packages) without panicking.
    #[test]
    fn parsers_do_not_panic_on_mangled_input() {
        let samples: &[(&str, &[u8])] = &[
            ("a/Cargo.lock", b"version = 4\n[[package]]\nname = \"x\"\nversion = \"1\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n"),
            ("a/package-lock.json", br#"{"lockfileVersion":3,"packages":{"":{},"node_modules/a":{"version":"1.0.0"},"node_modules/a/node_modules/@s/b":{"version":"2.0.0"}}}"#),
            ("a/yarn.lock", b"\"a@^1\", a@^1.2:\n  version \"1.2.3\"\n\n\"b@npm:^2\":\n  version: 2.0.0\n  resolution: \"b@npm:2.0.0\"\n"),
            ("a/requirements.txt", b"a[x]==1.0 ; python_version<'3.8' --hash=sha256:00\n-r other.txt\n# c\nb == 2 \\\n  --hash=sha256:11\n"),
            ("a/go.mod", b"module m\nrequire (\n\tgolang.org/x/text v0.3.7 // indirect\n)\nreplace golang.org/x/text => golang.org/x/text v0.3.8\n"),
            ("a/go.sum", b"golang.org/x/text v0.3.7 h1:abc=\ngolang.org/x/text v0.3.7/go.mod h1:def=\n"),
            ("x/specifications/rake-1.gemspec", b"Gem::Specification.new do |s|\n  s.name = \"rake\".freeze\n  s.version = \"13.0.6\"\nend\n"),
            ("a/Gemfile.lock", b"GEM\n  remote: https://rubygems.org/\n  specs:\n    rake (13.0.6)\n      x (>= 1)\n\nPLATFORMS\n  ruby\n"),
            ("a/poetry.lock", b"[[package]]\nname = \"x\"\nversion = \"1\"\n"),
            ("a/Pipfile.lock", br#"{"default":{"x":{"version":"==1"}},"develop":{}}"#),
            ("a/node_modules/x/package.json", br#"{"name":"x","version":"1.0.0","license":"MIT"}"#),
            ("a/x.dist-info/METADATA", b"Metadata-Version: 2.1\nName: x\nVersion: 1\nLicense: MIT\n\nbody"),
        ];
        for (path, data) in samples {
            let path = Path::new(path);
            assert!(!parse(path, data).unwrap().is_empty(), "{}", path.display());
            for cut in 0..data.len() {
                let _ = parse(path, &data[..cut]);
            }
            for i in 0..data.len() {
                for b in [0u8, b'"', b'\n', b'=', b'@', 0xff, b'[', b'{', b'-'] {
                    let mut d = data.to_vec();
                    d[i] = b;
                    let _ = parse(path, &d);
                }
            }
        }
    }
}
