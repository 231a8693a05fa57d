//! npm packages: `package-lock.json` (lockfile versions 1 to 3), `yarn.lock`
//! (classic v1 and berry), and installed `node_modules/**/package.json`.
//!
//! Workspace members, links and packages that come from git, a path or a tarball
//! URL (no registry version) are skipped; npm aliases (`npm:real@1.2.3`) are
//! reported under the real package's name.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::python::json_error;
use super::{dedupe, fail, package, text, LangError};
use crate::package::{Package, PackageKind};

/// Parse any of the npm files, chosen by file name.
pub fn parse(path: &Path, data: &[u8]) -> Result<Vec<Package>, LangError> {
    match path.file_name().and_then(|n| n.to_str()) {
        Some("yarn.lock") => parse_yarn_lock(path, data),
        Some("package.json") => parse_package_json(path, data),
        _ => parse_package_lock(path, data),
    }
}

/// A registry version: `1.2.3`, or the version of an alias `npm:real@1.2.3`
/// (returned with the real name). `None` for git, file, link and URL versions.
fn registry_version(version: &str) -> Option<(Option<&str>, &str)> {
    if let Some(alias) = version.strip_prefix("npm:") {
        let at = alias.rfind('@').filter(|&i| i > 0)?;
        let (name, version) = (alias.get(..at)?, alias.get(at + 1..)?);
        return (!version.is_empty() && !version.contains(':')).then_some((Some(name), version));
    }
    (!version.is_empty() && !version.contains([':', '/', '#'])).then_some((None, version))
}

#[derive(Deserialize)]
struct PackageLock {
    #[serde(default)]
    packages: Option<BTreeMap<String, LockPackage>>,
    #[serde(default)]
    dependencies: Option<BTreeMap<String, LockDependency>>,
}

#[derive(Deserialize)]
struct LockPackage {
    name: Option<String>,
    version: Option<String>,
    #[serde(default)]
    link: bool,
    license: Option<Value>,
}

#[derive(Deserialize)]
struct LockDependency {
    version: Option<String>,
    #[serde(default)]
    dependencies: BTreeMap<String, LockDependency>,
}

/// `package-lock.json` (or `npm-shrinkwrap.json` content): the `packages` map of
/// lockfile v2/v3 (keys `node_modules/a/node_modules/b`; the root `""` entry,
/// workspace members outside `node_modules` and `link` entries skipped), else the
/// nested `dependencies` tree of v1.
pub fn parse_package_lock(path: &Path, data: &[u8]) -> Result<Vec<Package>, LangError> {
    let lock: PackageLock = serde_json::from_slice(data).map_err(|e| json_error(path, &e))?;
    let mut out = Vec::new();
    if let Some(packages) = lock.packages {
        for (key, entry) in packages {
            if entry.link {
                continue;
            }
            let Some(at) = key.rfind("node_modules/") else {
                continue; // the root "" or a workspace member
            };
            let Some(version) = entry.version.as_deref() else {
                continue;
            };
            let Some((alias_of, version)) = registry_version(version) else {
                continue;
            };
            let key_name = key.get(at + "node_modules/".len()..).unwrap_or("");
            let name = alias_of.or(entry.name.as_deref()).unwrap_or(key_name);
            if name.is_empty() {
                continue;
            }
            let licenses = entry.license.as_ref().map(licenses_of).unwrap_or_default();
            out.push(package(PackageKind::Npm, name, version, licenses, path));
        }
    } else if let Some(deps) = lock.dependencies {
        let mut stack: Vec<(String, LockDependency)> = deps.into_iter().collect();
        while let Some((name, dep)) = stack.pop() {
            if let Some((alias_of, version)) = dep.version.as_deref().and_then(registry_version) {
                let name = alias_of.unwrap_or(&name);
                if !name.is_empty() {
                    out.push(package(PackageKind::Npm, name, version, Vec::new(), path));
                }
            }
            stack.extend(dep.dependencies);
        }
        out.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    }
    Ok(dedupe(out))
}

/// Licenses from a `license` value: `"MIT"`, `{"type": "MIT"}`, or a list of those.
fn licenses_of(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) if !s.is_empty() => vec![s.clone()],
        Value::Object(o) => o
            .get("type")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(|s| vec![s.to_string()])
            .unwrap_or_default(),
        Value::Array(a) => a.iter().flat_map(licenses_of).collect(),
        _ => Vec::new(),
    }
}

/// An installed package's `package.json` (inside `node_modules`): `name` and
/// `version`, licenses from `license` or the old `licenses` list. A manifest
/// without both a name and a version (some packages ship partial ones) gives no
/// package.
pub fn parse_package_json(path: &Path, data: &[u8]) -> Result<Vec<Package>, LangError> {
    let value: Value = serde_json::from_slice(data).map_err(|e| json_error(path, &e))?;
    let Value::Object(o) = value else {
        return Err(fail(path, None, "package.json is not a JSON object"));
    };
    let name = o.get("name").and_then(Value::as_str).unwrap_or("");
    let version = o.get("version").and_then(Value::as_str).unwrap_or("");
    if name.is_empty() || version.is_empty() {
        return Ok(Vec::new());
    }
    let mut licenses = o.get("license").map(licenses_of).unwrap_or_default();
    if licenses.is_empty() {
        licenses = o.get("licenses").map(licenses_of).unwrap_or_default();
    }
    Ok(vec![package(
        PackageKind::Npm,
        name,
        version,
        licenses,
        path,
    )])
}

/// The package name of a yarn entry spec: `lodash@^4`, `@babel/core@^7`,
/// `"@babel/core@npm:^7"`, an alias `foo@npm:bar@^1` (gives `bar`). `None` for
/// workspace, link, portal, file and patch entries.
fn yarn_spec_name(spec: &str) -> Option<&str> {
    let spec = spec.trim().trim_matches('"');
    let at = spec.get(1..)?.find('@')? + 1;
    let (name, range) = (spec.get(..at)?, spec.get(at + 1..)?);
    for protocol in ["workspace:", "link:", "portal:", "file:", "patch:", "exec:"] {
        if range.starts_with(protocol) {
            return None;
        }
    }
    if let Some(alias) = range.strip_prefix("npm:") {
        // `npm:^1.0` (berry) or `npm:real@^1` (an alias).
        if let Some(real_at) = alias.get(1..).and_then(|r| r.find('@')).map(|i| i + 1) {
            return alias.get(..real_at).filter(|n| !n.is_empty());
        }
    }
    (!name.is_empty()).then_some(name)
}

/// `yarn.lock`, classic (v1: `version "1.2.3"`) or berry (v2+: YAML with
/// `version: 1.2.3` and `resolution: "name@npm:1.2.3"`). Each top-level entry
/// (`"a@^1", "a@^1.2":`) gives one package; `__metadata` and workspace, link and
/// patch entries are skipped.
pub fn parse_yarn_lock(path: &Path, data: &[u8]) -> Result<Vec<Package>, LangError> {
    let s = text(path, data)?;
    let mut out = Vec::new();
    // The entry being read: its line, its name, and what was found in it.
    struct Entry<'a> {
        line: usize,
        name: Option<&'a str>,
        version: Option<&'a str>,
        resolution: Option<&'a str>,
    }
    let mut entry: Option<Entry> = None;
    let finish = |e: Entry, out: &mut Vec<Package>| -> Result<(), LangError> {
        let Some(name) = e.name else {
            return Ok(());
        };
        // Berry's resolution names the package and version exactly.
        if let Some(res) = e.resolution {
            if let Some(at) = res.get(1..).and_then(|r| r.find('@')).map(|i| i + 1) {
                if let (Some(n), Some(v)) = (res.get(..at), res.get(at + 1..)) {
                    if let Some(v) = v.strip_prefix("npm:").filter(|v| !v.is_empty()) {
                        out.push(package(PackageKind::Npm, n, v, Vec::new(), path));
                        return Ok(());
                    }
                }
            }
        }
        let Some(version) = e.version else {
            return Err(fail(
                path,
                Some(e.line),
                format!("entry for {name} has no version"),
            ));
        };
        if version.is_empty() || version.starts_with("0.0.0-use.local") {
            return Ok(());
        }
        out.push(package(PackageKind::Npm, name, version, Vec::new(), path));
        Ok(())
    };
    for (i, line) in s.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if !line.starts_with([' ', '\t']) {
            if let Some(e) = entry.take() {
                finish(e, &mut out)?;
            }
            let Some(header) = line.trim_end().strip_suffix(':') else {
                return Err(fail(
                    path,
                    Some(line_no),
                    "expected an entry header ending in ':'",
                ));
            };
            if header == "__metadata" {
                entry = Some(Entry {
                    line: line_no,
                    name: None,
                    version: None,
                    resolution: None,
                });
                continue;
            }
            let first = header.split(',').next().unwrap_or("");
            let name = yarn_spec_name(first);
            entry = Some(Entry {
                line: line_no,
                name,
                version: None,
                resolution: None,
            });
            continue;
        }
        let Some(e) = entry.as_mut() else {
            return Err(fail(path, Some(line_no), "indented line before any entry"));
        };
        // Only the entry's own fields (two-space indent), not nested maps.
        let indent = line.len() - line.trim_start().len();
        if indent != 2 {
            continue;
        }
        let field = line.trim();
        let (key, value) = match field.split_once(':') {
            Some((k, v)) if !k.contains(' ') => (k, v),
            _ => match field.split_once(' ') {
                Some((k, v)) => (k, v),
                None => continue,
            },
        };
        let value = value.trim().trim_matches('"');
        match key.trim_matches('"') {
            "version" => e.version = Some(value),
            "resolution" => e.resolution = Some(value),
            _ => {}
        }
    }
    if let Some(e) = entry.take() {
        finish(e, &mut out)?;
    }
    Ok(dedupe(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::test_support::nv;

    #[test]
    fn package_lock_v1_nested_tree() {
        let data = br#"{
  "name": "app", "version": "1.0.0", "lockfileVersion": 1, "requires": true,
  "dependencies": {
    "accepts": {"version": "1.3.8", "resolved": "https://registry.npmjs.org/accepts/-/accepts-1.3.8.tgz",
      "requires": {"mime-types": "~2.1.34"},
      "dependencies": {"mime-types": {"version": "2.1.34"}}},
    "mime-types": {"version": "2.1.35", "dev": true},
    "my-alias": {"version": "npm:lodash@4.17.21"},
    "local": {"version": "file:../local"},
    "gitdep": {"version": "git+https://example.org/x.git#abcdef"}
  }
}"#;
        let p = parse_package_lock(Path::new("package-lock.json"), data).unwrap();
        assert_eq!(
            nv(&p),
            [
                ("accepts", "1.3.8"),
                ("lodash", "4.17.21"),
                ("mime-types", "2.1.34"),
                ("mime-types", "2.1.35")
            ]
        );
    }

    #[test]
    fn package_lock_v3_packages_map() {
        let data = br#"{
  "name": "app", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
  "packages": {
    "": {"name": "app", "version": "1.0.0", "workspaces": ["packages/*"]},
    "node_modules/express": {"version": "4.18.2", "license": "MIT"},
    "node_modules/express/node_modules/debug": {"version": "2.6.9", "license": "MIT"},
    "node_modules/@babel/core": {"version": "7.22.5", "dev": true},
    "node_modules/my-lodash": {"name": "lodash", "version": "4.17.21"},
    "node_modules/workspace-a": {"resolved": "packages/a", "link": true},
    "packages/a": {"name": "workspace-a", "version": "0.1.0"},
    "node_modules/debug": {"version": "4.3.4"}
  },
  "dependencies": {"ignored": {"version": "9.9.9"}}
}"#;
        let p = parse_package_lock(Path::new("app/package-lock.json"), data).unwrap();
        assert_eq!(
            nv(&p),
            [
                ("@babel/core", "7.22.5"),
                ("debug", "4.3.4"),
                ("express", "4.18.2"),
                ("debug", "2.6.9"),
                ("lodash", "4.17.21"),
            ]
        );
        assert_eq!(p[2].licenses, ["MIT"]);
    }

    #[test]
    fn yarn_lock_classic() {
        let data = br#"# THIS IS AN AUTOGENERATED FILE. DO NOT EDIT THIS FILE DIRECTLY.
# yarn lockfile v1


"@babel/code-frame@^7.0.0", "@babel/code-frame@^7.10.4":
  version "7.12.13"
  resolved "https://registry.yarnpkg.com/@babel/code-frame/-/code-frame-7.12.13.tgz#dcfc826beef65e75c50e21d3837d7d95798dd658"
  integrity sha512-HV1Cm0Q3ZrpCR93tkWOYiuYIgLxZXZFVG2VgK+MBWjUqZTundupbfx2aXarXuw5Ko5aMcjtJgbSs4vUGBS5v6g==
  dependencies:
    "@babel/highlight" "^7.12.13"
    version "9.9.9"

lodash@^4.17.21, lodash@^4.17.4:
  version "4.17.21"

my-lodash@npm:lodash@^3:
  version "3.10.1"

local@file:../local:
  version "1.0.0"
"#;
        let p = parse_yarn_lock(Path::new("yarn.lock"), data).unwrap();
        assert_eq!(
            nv(&p),
            [
                ("@babel/code-frame", "7.12.13"),
                ("lodash", "4.17.21"),
                ("lodash", "3.10.1")
            ]
        );
    }

    #[test]
    fn package_lock_v1_entry_without_a_name_is_skipped() {
        // Found by the lang_npm fuzzer.
        let data = br#"{"lockfileVersion": 1, "dependencies": {"": {"version": "4.18.2", "dependencies": {"debug": {"version": "2.6.9"}}}}}"#;
        let ps = parse_package_lock(Path::new("package-lock.json"), data).unwrap();
        assert_eq!(nv(&ps), [("debug", "2.6.9")]);
    }

    #[test]
    fn yarn_lock_berry_resolution_without_a_version_falls_back_to_version() {
        // Found by the lang_npm fuzzer: `npm:` with nothing after it gave a package
        // with an empty version.
        let data = b"__metadata:\n  version: 6\n\n\"lodash@npm:^4.17.21\":\n  version: 4.17.21\n  resolution: \"lodash@npm:\"\n";
        let ps = parse_yarn_lock(Path::new("yarn.lock"), data).unwrap();
        assert_eq!(nv(&ps), [("lodash", "4.17.21")]);
    }

    #[test]
    fn yarn_lock_berry() {
        let data = br#"# This file is generated by running "yarn install" inside your project.
# Manual changes might be lost - proceed with caution!

__metadata:
  version: 6
  cacheKey: 8

"@babel/code-frame@npm:^7.0.0, @babel/code-frame@npm:^7.10.4":
  version: 7.12.13
  resolution: "@babel/code-frame@npm:7.12.13"
  dependencies:
    "@babel/highlight": ^7.12.13
  checksum: 471532bb7c
  languageName: node
  linkType: hard

"my-app@workspace:.":
  version: 0.0.0-use.local
  resolution: "my-app@workspace:."
  languageName: unknown
  linkType: soft

"resolve@patch:resolve@^1.1.7#~builtin<compat/resolve>":
  version: 1.22.1
  resolution: "resolve@patch:resolve@npm%3A1.22.1#~builtin<compat/resolve>::version=1.22.1&hash=07638b"

"resolve@npm:^1.1.7":
  version: 1.22.1
  resolution: "resolve@npm:1.22.1"
"#;
        let p = parse_yarn_lock(Path::new("yarn.lock"), data).unwrap();
        assert_eq!(
            nv(&p),
            [("@babel/code-frame", "7.12.13"), ("resolve", "1.22.1")]
        );
        let err =
            parse_yarn_lock(Path::new("yarn.lock"), b"a@^1:\n  resolved \"x\"\n").unwrap_err();
        assert!(
            matches!(err, LangError::Parse { line: Some(1), .. }),
            "{err}"
        );
        let err = parse_yarn_lock(
            Path::new("yarn.lock"),
            b"a@^1:\n  version \"1\"\nnot a header\n",
        )
        .unwrap_err();
        assert!(
            matches!(err, LangError::Parse { line: Some(3), .. }),
            "{err}"
        );
    }

    #[test]
    fn installed_package_json() {
        let p = parse_package_json(
            Path::new("node_modules/express/package.json"),
            br#"{"name": "express", "version": "4.18.2", "license": "MIT", "dependencies": {}}"#,
        )
        .unwrap();
        assert_eq!(nv(&p), [("express", "4.18.2")]);
        assert_eq!(p[0].licenses, ["MIT"]);
        let p = parse_package_json(
            Path::new("node_modules/old/package.json"),
            br#"{"name": "old", "version": "0.1.0", "licenses": [{"type": "MIT"}, {"type": "Apache-2.0"}]}"#,
        )
        .unwrap();
        assert_eq!(p[0].licenses, ["MIT", "Apache-2.0"]);
        // A partial manifest is no package; a broken one is an error.
        assert!(parse_package_json(Path::new("p"), br#"{"type": "module"}"#)
            .unwrap()
            .is_empty());
        assert!(parse_package_json(Path::new("p"), b"[1]").is_err());
    }
}
