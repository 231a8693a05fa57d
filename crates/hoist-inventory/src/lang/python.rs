//! Python distributions: installed metadata (`METADATA`, `PKG-INFO`), and the
//! lockfiles `requirements.txt`, `poetry.lock` and `Pipfile.lock`.
//!
//! Names are kept as written (not PEP 503-normalised); the matcher normalises.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::{dedupe, fail, package, text, LangError};
use crate::package::{Package, PackageKind};

/// Parse any of the Python files, chosen by file name.
pub fn parse(path: &Path, data: &[u8]) -> Result<Vec<Package>, LangError> {
    match path.file_name().and_then(|n| n.to_str()) {
        Some("requirements.txt") => parse_requirements(path, data),
        Some("poetry.lock") => parse_poetry_lock(path, data),
        Some("Pipfile.lock") => parse_pipfile_lock(path, data),
        _ => parse_metadata(path, data),
    }
}

/// An installed distribution's core metadata (`*.dist-info/METADATA`,
/// `*.egg-info/PKG-INFO`, or an `*.egg-info` file): RFC 822 headers `Name`,
/// `Version`, and the license from `License-Expression`, else a one-line `License`,
/// else the `License ::` classifiers.
pub fn parse_metadata(path: &Path, data: &[u8]) -> Result<Vec<Package>, LangError> {
    // Metadata is meant to be UTF-8, but old PKG-INFO files may be Latin-1: the
    // fields we read are ASCII, so read lossily.
    let s = String::from_utf8_lossy(data);
    let mut name = None;
    let mut version = None;
    let mut expression = None;
    let mut license: Option<String> = None;
    let mut license_lines = 0;
    let mut classifiers = Vec::new();
    let mut current: Option<&str> = None;
    for line in s.lines() {
        if line.trim().is_empty() {
            break; // the body (description) follows the blank line
        }
        if line.starts_with([' ', '\t']) {
            if current == Some("License") {
                license_lines += 1;
            }
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            current = None;
            continue;
        };
        let value = value.trim();
        current = Some(match key {
            "Name" => {
                name.get_or_insert_with(|| value.to_string());
                "Name"
            }
            "Version" => {
                version.get_or_insert_with(|| value.to_string());
                "Version"
            }
            "License-Expression" => {
                expression.get_or_insert_with(|| value.to_string());
                "License-Expression"
            }
            "License" => {
                license.get_or_insert_with(|| value.to_string());
                "License"
            }
            "Classifier" => {
                if let Some(rest) = value.strip_prefix("License ::") {
                    if let Some(last) = rest.rsplit("::").next() {
                        classifiers.push(last.trim().to_string());
                    }
                }
                "Classifier"
            }
            _ => "",
        });
    }
    let (Some(name), Some(version)) = (name, version) else {
        return Err(fail(
            path,
            None,
            "metadata has no Name or no Version header",
        ));
    };
    if name.is_empty() || version.is_empty() {
        return Err(fail(path, None, "metadata has an empty Name or Version"));
    }
    let licenses = if let Some(e) = expression.filter(|e| !e.is_empty()) {
        vec![e]
    } else if let Some(l) = license.filter(|l| {
        // A whole license text pasted into the field says nothing short.
        license_lines == 0 && !l.is_empty() && !l.eq_ignore_ascii_case("UNKNOWN") && l.len() <= 100
    }) {
        vec![l]
    } else {
        classifiers.retain(|c| !c.is_empty());
        classifiers
    };
    Ok(vec![package(
        PackageKind::Python,
        name,
        version,
        licenses,
        path,
    )])
}

/// Whether `name` is a distribution name (PEP 508: letters, digits, `.`, `_`, `-`).
fn is_dist_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// `requirements.txt`: only pinned `name==version` (or `===`) requirements become
/// packages. Comments, options (`-r`, `-e`, `--index-url`...), `--hash` options,
/// extras (`name[extra]`), environment markers (`; python_version < "3.8"`) and
/// backslash continuations are understood; unpinned, ranged, wildcard and URL
/// requirements are skipped.
pub fn parse_requirements(path: &Path, data: &[u8]) -> Result<Vec<Package>, LangError> {
    let s = text(path, data)?;
    let mut out = Vec::new();
    let mut logical = String::new();
    let lines: Vec<&str> = s.lines().collect();
    for (i, raw) in lines.iter().enumerate() {
        // A comment starts at `#` at the beginning or after whitespace.
        let mut line = *raw;
        if let Some(pos) = comment_start(line) {
            line = line.get(..pos).unwrap_or("");
        }
        if let Some(cont) = line.strip_suffix('\\') {
            logical.push_str(cont);
            logical.push(' ');
            if i + 1 < lines.len() {
                continue;
            }
        } else {
            logical.push_str(line);
        }
        if let Some(p) = requirement(&logical, path) {
            out.push(p);
        }
        logical.clear();
    }
    Ok(dedupe(out))
}

fn comment_start(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    bytes
        .iter()
        .enumerate()
        .find(|&(i, &b)| {
            b == b'#' && (i == 0 || bytes.get(i - 1).is_some_and(|p| p.is_ascii_whitespace()))
        })
        .map(|(i, _)| i)
}

fn requirement(line: &str, path: &Path) -> Option<Package> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('-') {
        return None;
    }
    // Options after the requirement (`--hash=...`) and environment markers.
    let line = line.split(" -").next().unwrap_or(line);
    let line = line.split(';').next().unwrap_or(line).trim();
    let (name_part, version) = if let Some((n, v)) = line.split_once("===") {
        (n, v)
    } else {
        line.split_once("==")?
    };
    let version = version.trim();
    if version.is_empty() || version.contains([',', '*', ' ', '<', '>', '!', '=', '~', '@']) {
        return None;
    }
    let name = name_part.trim();
    let name = match name.split_once('[') {
        Some((n, extras)) if extras.trim_end().ends_with(']') => n.trim(),
        Some(_) => return None,
        None => name,
    };
    if !is_dist_name(name) {
        return None;
    }
    Some(package(
        PackageKind::Python,
        name,
        version,
        Vec::new(),
        path,
    ))
}

#[derive(Deserialize)]
struct PoetryLock {
    #[serde(default)]
    package: Vec<PoetryPackage>,
}

#[derive(Deserialize)]
struct PoetryPackage {
    name: String,
    version: String,
}

/// `poetry.lock`: each `[[package]]` table's `name` and `version`.
pub fn parse_poetry_lock(path: &Path, data: &[u8]) -> Result<Vec<Package>, LangError> {
    let s = text(path, data)?;
    let lock: PoetryLock = toml::from_str(s).map_err(|e| toml_error(path, s, &e))?;
    Ok(dedupe(
        lock.package
            .into_iter()
            .map(|p| package(PackageKind::Python, p.name, p.version, Vec::new(), path))
            .collect(),
    ))
}

/// A TOML error with the line it points at.
pub(crate) fn toml_error(path: &Path, s: &str, e: &toml::de::Error) -> LangError {
    let line = e
        .span()
        .and_then(|span| s.get(..span.start))
        .map(|before| before.matches('\n').count() + 1);
    fail(path, line, e.message().to_string())
}

/// A JSON error with the line it points at.
pub(crate) fn json_error(path: &Path, e: &serde_json::Error) -> LangError {
    let line = (e.line() > 0).then_some(e.line());
    fail(path, line, e.to_string())
}

#[derive(Deserialize)]
struct PipfileLock {
    #[serde(default)]
    default: BTreeMap<String, PipfileEntry>,
    #[serde(default)]
    develop: BTreeMap<String, PipfileEntry>,
}

#[derive(Deserialize)]
struct PipfileEntry {
    version: Option<String>,
}

/// `Pipfile.lock`: the `default` and `develop` sections; entries without a pinned
/// `==` version (VCS or path requirements) are skipped.
pub fn parse_pipfile_lock(path: &Path, data: &[u8]) -> Result<Vec<Package>, LangError> {
    let lock: PipfileLock = serde_json::from_slice(data).map_err(|e| json_error(path, &e))?;
    let out = lock
        .default
        .into_iter()
        .chain(lock.develop)
        .filter_map(|(name, entry)| {
            let version = entry.version?;
            let version = version.strip_prefix("==")?.trim();
            (!version.is_empty())
                .then(|| package(PackageKind::Python, name, version, Vec::new(), path))
        })
        .collect();
    Ok(dedupe(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::test_support::nv;

    #[test]
    fn dist_info_metadata() {
        let data = b"Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nSummary: Python HTTP for Humans.\nLicense: Apache 2.0\nClassifier: License :: OSI Approved :: Apache Software License\nRequires-Dist: idna (<4,>=2.5)\n\nName: not-this\n";
        let p = parse(Path::new("x/requests-2.31.0.dist-info/METADATA"), data).unwrap();
        assert_eq!(nv(&p), [("requests", "2.31.0")]);
        assert_eq!(p[0].licenses, ["Apache 2.0"]);
        assert_eq!(p[0].path, Path::new("x/requests-2.31.0.dist-info/METADATA"));
        assert_eq!(p[0].layer, None);
    }

    #[test]
    fn metadata_license_expression_and_classifier_fallback() {
        let data = b"Metadata-Version: 2.4\nName: attrs\nVersion: 24.1.0\nLicense-Expression: MIT\nLicense: something else\n";
        assert_eq!(
            parse_metadata(Path::new("m"), data).unwrap()[0].licenses,
            ["MIT"]
        );
        // A license text spread over continuation lines is not a license name.
        let data = b"Metadata-Version: 1.1\nName: six\nVersion: 1.16.0\nLicense: Copyright (c) 2010\n        Permission is hereby granted\nClassifier: License :: OSI Approved :: MIT License\n";
        assert_eq!(
            parse_metadata(Path::new("m"), data).unwrap()[0].licenses,
            ["MIT License"]
        );
        let data = b"Name: x\nVersion: 1\nLicense: UNKNOWN\n";
        assert!(parse_metadata(Path::new("m"), data).unwrap()[0]
            .licenses
            .is_empty());
        let err = parse_metadata(Path::new("a/METADATA"), b"Name: x\n").unwrap_err();
        assert!(err.to_string().contains("a/METADATA"), "{err}");
    }

    #[test]
    fn requirements_pinned_only() {
        let data = b"# top comment\n-r base.txt\n--index-url https://example.org/simple\nrequests==2.31.0  # pinned\nflask>=2.0\nDjango[argon2,bcrypt]==4.2.1 ; python_version >= \"3.8\"\nurllib3 == 1.26.18 \\\n    --hash=sha256:aaaa \\\n    --hash=sha256:bbbb\nnumpy==1.*\n-e git+https://example.org/x.git#egg=x\npkg @ https://example.org/pkg.whl\nsix===1.16.0\nidna==3.4,!=3.3\nrequests==2.31.0\n";
        let p = parse_requirements(Path::new("requirements.txt"), data).unwrap();
        assert_eq!(
            nv(&p),
            [
                ("requests", "2.31.0"),
                ("Django", "4.2.1"),
                ("urllib3", "1.26.18"),
                ("six", "1.16.0")
            ]
        );
    }

    #[test]
    fn poetry_lock_packages() {
        let data = br#"# This file is automatically @generated by Poetry
[[package]]
name = "certifi"
version = "2023.7.22"
description = "Python package for providing Mozilla's CA Bundle."
optional = false
python-versions = ">=3.6"
files = [
    {file = "certifi-2023.7.22-py3-none-any.whl", hash = "sha256:92d6"},
]

[[package]]
name = "charset-normalizer"
version = "3.2.0"

[package.dependencies]
x = "*"

[metadata]
lock-version = "2.0"
python-versions = "^3.11"
content-hash = "abc"
"#;
        let p = parse_poetry_lock(Path::new("poetry.lock"), data).unwrap();
        assert_eq!(
            nv(&p),
            [("certifi", "2023.7.22"), ("charset-normalizer", "3.2.0")]
        );
        let err =
            parse_poetry_lock(Path::new("poetry.lock"), b"[[package]]\nname = 1\n").unwrap_err();
        assert!(
            matches!(err, LangError::Parse { line: Some(2), .. }),
            "{err}"
        );
    }

    #[test]
    fn pipfile_lock_default_and_develop() {
        let data = br#"{
    "_meta": {"hash": {"sha256": "x"}, "pipfile-spec": 6},
    "default": {
        "requests": {"hashes": ["sha256:1"], "index": "pypi", "version": "==2.31.0"},
        "mylib": {"git": "https://example.org/mylib.git", "ref": "abc"}
    },
    "develop": {
        "pytest": {"version": "==7.4.0", "markers": "python_version >= '3.7'"}
    }
}"#;
        let p = parse_pipfile_lock(Path::new("Pipfile.lock"), data).unwrap();
        assert_eq!(nv(&p), [("requests", "2.31.0"), ("pytest", "7.4.0")]);
        let err = parse_pipfile_lock(Path::new("Pipfile.lock"), b"{\n\"default\": [}").unwrap_err();
        assert!(
            matches!(err, LangError::Parse { line: Some(2), .. }),
            "{err}"
        );
    }
}
