//! Maven artifacts in Java archives (`.jar`, `.war`, `.ear`).
//!
//! Each `META-INF/maven/<group>/<artifact>/pom.properties` in an archive is one
//! artifact, named `group:artifact` (a shaded jar has one per bundled library). An
//! archive without any falls back to its `META-INF/MANIFEST.MF`: the artifact from
//! `Implementation-Title` (or `Bundle-Name`, `Specification-Title`), the version from
//! `Implementation-Version` (or `Bundle-Version`, `Specification-Version`), the group
//! from `Implementation-Vendor-Id`, or from `Bundle-SymbolicName` when that ends in
//! `.<artifact>`; without a group the name is the artifact alone.
//!
//! Archives nested in an archive (Spring Boot's `BOOT-INF/lib/*.jar`, a war's
//! `WEB-INF/lib/*.jar`, an ear's modules) are read too, up to [`MAX_DEPTH`] levels;
//! their packages' path is the outer path joined with the entry's name
//! (`app.jar/BOOT-INF/lib/x.jar`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use super::{dedupe, fail, package, LangError};
use crate::package::{Package, PackageKind};

/// How deep archives nested in archives are opened (the outer one is level 1).
pub const MAX_DEPTH: usize = 3;
/// The largest nested archive read into memory (one at a time).
const MAX_NESTED: u64 = 256 << 20;
/// The most bytes of nested archives inflated for one outer archive, against zip
/// bombs.
const NESTED_BUDGET: u64 = 1 << 30;
/// The largest `pom.properties` or manifest read.
const MAX_SMALL: u64 = 1 << 20;

/// Parse a Java archive and the archives nested in it.
pub fn parse(path: &Path, data: &[u8]) -> Result<Vec<Package>, LangError> {
    let mut out = Vec::new();
    let mut budget = NESTED_BUDGET;
    archive(path, data, 1, &mut budget, &mut out)?;
    Ok(dedupe(out))
}

fn is_archive_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".jar") || lower.ends_with(".war") || lower.ends_with(".ear")
}

/// Read at most `max` bytes of an entry; `None` if it is larger or unreadable.
fn read_entry(entry: &mut impl Read, max: u64) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    entry.take(max + 1).read_to_end(&mut buf).ok()?;
    (buf.len() as u64 <= max).then_some(buf)
}

fn archive(
    path: &Path,
    data: &[u8],
    depth: usize,
    budget: &mut u64,
    out: &mut Vec<Package>,
) -> Result<(), LangError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(data))
        .map_err(|e| fail(path, None, format!("not a zip archive: {e}")))?;
    let mut poms = Vec::new();
    let mut manifest = None;
    let mut nested = Vec::new();
    for i in 0..zip.len() {
        // A damaged entry is skipped: the rest of the archive still says something.
        let Ok(mut entry) = zip.by_index(i) else {
            continue;
        };
        if !entry.is_file() {
            continue;
        }
        let name = match String::from_utf8_lossy(entry.name_raw()) {
            Cow::Borrowed(s) => s.to_string(),
            Cow::Owned(s) => s,
        };
        if name.starts_with("META-INF/maven/") && name.ends_with("/pom.properties") {
            if let Some(b) = read_entry(&mut entry, MAX_SMALL) {
                poms.push(b);
            }
        } else if name.eq_ignore_ascii_case("META-INF/MANIFEST.MF") {
            manifest = read_entry(&mut entry, MAX_SMALL);
        } else if depth < MAX_DEPTH && is_archive_name(&name) {
            nested.push((i, name));
        }
    }
    let before = out.len();
    for pom in &poms {
        if let Some((name, version)) = pom_properties(&String::from_utf8_lossy(pom)) {
            out.push(package(PackageKind::Maven, name, version, Vec::new(), path));
        }
    }
    if out.len() == before {
        if let Some(m) = manifest {
            if let Some((name, version)) = from_manifest(&String::from_utf8_lossy(&m)) {
                out.push(package(PackageKind::Maven, name, version, Vec::new(), path));
            }
        }
    }
    for (i, name) in nested {
        let Ok(mut entry) = zip.by_index(i) else {
            continue;
        };
        let Some(bytes) = read_entry(&mut entry, MAX_NESTED.min(*budget)) else {
            continue;
        };
        drop(entry);
        *budget = budget.saturating_sub(bytes.len() as u64);
        let inner: PathBuf = path.join(name.trim_start_matches('/'));
        // A damaged nested archive does not spoil the outer one.
        let _ = archive(&inner, &bytes, depth + 1, budget, out);
    }
    Ok(())
}

/// A Java properties file's `key=value` / `key: value` pairs (comments and blank
/// lines skipped; continuation lines and escapes are not needed for these keys).
fn properties(s: &str) -> BTreeMap<&str, &str> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(['#', '!']))
        .filter_map(|l| {
            let i = l.find(['=', ':'])?;
            Some((l.get(..i)?.trim(), l.get(i + 1..)?.trim()))
        })
        .collect()
}

fn pom_properties(s: &str) -> Option<(String, String)> {
    let p = properties(s);
    let group = p.get("groupId").filter(|v| !v.is_empty())?;
    let artifact = p.get("artifactId").filter(|v| !v.is_empty())?;
    let version = p.get("version").filter(|v| !v.is_empty())?;
    Some((format!("{group}:{artifact}"), version.to_string()))
}

/// The main section of a manifest, with continuation lines (a leading space) joined.
fn manifest_main(s: &str) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in s.lines() {
        if line.is_empty() {
            break;
        }
        if let Some(more) = line.strip_prefix(' ') {
            if let Some(v) = last.as_ref().and_then(|k| out.get_mut(k)) {
                v.push_str(more);
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            out.insert(k.trim().to_string(), v.trim().to_string());
            last = Some(k.trim().to_string());
        }
    }
    out
}

fn from_manifest(s: &str) -> Option<(String, String)> {
    let m = manifest_main(s);
    let first = |keys: &[&str]| -> Option<String> {
        keys.iter()
            .filter_map(|k| m.get(*k))
            .map(|v| v.trim())
            .find(|v| !v.is_empty())
            .map(str::to_string)
    };
    let artifact = first(&["Implementation-Title", "Bundle-Name", "Specification-Title"])?;
    let version = first(&[
        "Implementation-Version",
        "Bundle-Version",
        "Specification-Version",
    ])?;
    // `Bundle-SymbolicName: org.foo.bar;singleton:=true`
    let symbolic = first(&["Bundle-SymbolicName"])
        .map(|s| s.split(';').next().unwrap_or("").trim().to_string());
    let group = first(&["Implementation-Vendor-Id"]).or_else(|| {
        symbolic
            .as_deref()?
            .strip_suffix(artifact.as_str())?
            .strip_suffix('.')
            .filter(|g| !g.is_empty())
            .map(str::to_string)
    });
    let name = match group {
        Some(g) => format!("{g}:{artifact}"),
        None => artifact,
    };
    Some((name, version))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use zip::write::SimpleFileOptions;

    use super::*;

    fn nv(ps: &[Package]) -> Vec<(&str, &str, &Path)> {
        ps.iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.path.as_path()))
            .collect()
    }

    fn zip_of(entries: &[(&str, &[u8])], method: zip::CompressionMethod) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = SimpleFileOptions::default().compression_method(method);
        for (name, data) in entries {
            if name.ends_with('/') {
                w.add_directory(*name, opts).unwrap();
            } else {
                w.start_file(*name, opts).unwrap();
                w.write_all(data).unwrap();
            }
        }
        w.finish().unwrap().into_inner()
    }

    const POM: &[u8] = b"#Generated by Maven\n#Tue Jun 20 10:00:00 UTC 2023\nversion=2.15.2\ngroupId=com.fasterxml.jackson.core\nartifactId=jackson-databind\n";

    #[test]
    fn pom_properties_in_a_jar() {
        let jar = zip_of(
            &[
                ("META-INF/", b""),
                ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\nImplementation-Title: ignored\nImplementation-Version: 9\n"),
                ("META-INF/maven/com.fasterxml.jackson.core/jackson-databind/pom.properties", POM),
                ("META-INF/maven/com.fasterxml.jackson.core/jackson-databind/pom.xml", b"<project/>"),
                ("META-INF/maven/org.shaded/lib/pom.properties", b"groupId=org.shaded\nartifactId=lib\nversion=1.0\n"),
                ("com/fasterxml/jackson/databind/ObjectMapper.class", b"\xca\xfe\xba\xbe"),
            ],
            zip::CompressionMethod::Deflated,
        );
        let p = parse(Path::new("opt/lib/jackson-databind-2.15.2.jar"), &jar).unwrap();
        let path = Path::new("opt/lib/jackson-databind-2.15.2.jar");
        assert_eq!(
            nv(&p),
            [
                (
                    "com.fasterxml.jackson.core:jackson-databind",
                    "2.15.2",
                    path
                ),
                ("org.shaded:lib", "1.0", path)
            ]
        );
    }

    #[test]
    fn manifest_fallback() {
        let mf = b"Manifest-Version: 1.0\r\nBundle-SymbolicName: org.apache.commons.commons-lang\r\n 3;singleton:=true\r\nImplementation-Title: commons-lang3\r\nImplementation-Version: 3.12.0\r\n\r\nName: org/x/\r\nImplementation-Version: 0\r\n";
        let jar = zip_of(
            &[("META-INF/MANIFEST.MF", mf)],
            zip::CompressionMethod::Stored,
        );
        let p = parse(Path::new("a.jar"), &jar).unwrap();
        assert_eq!(
            nv(&p),
            [(
                "org.apache.commons:commons-lang3",
                "3.12.0",
                Path::new("a.jar")
            )]
        );
        let mf = b"Manifest-Version: 1.0\nImplementation-Title: tool\nImplementation-Version: 1.1\nImplementation-Vendor-Id: com.example\n";
        let jar = zip_of(
            &[("META-INF/MANIFEST.MF", mf)],
            zip::CompressionMethod::Deflated,
        );
        assert_eq!(
            parse(Path::new("a.jar"), &jar).unwrap()[0].name,
            "com.example:tool"
        );
        // No version: nothing.
        let jar = zip_of(
            &[(
                "META-INF/MANIFEST.MF",
                b"Manifest-Version: 1.0\nImplementation-Title: x\n",
            )],
            zip::CompressionMethod::Stored,
        );
        assert!(parse(Path::new("a.jar"), &jar).unwrap().is_empty());
    }

    #[test]
    fn nested_jars_spring_boot_layout() {
        let inner = zip_of(
            &[(
                "META-INF/maven/org.yaml/snakeyaml/pom.properties",
                b"groupId=org.yaml\nartifactId=snakeyaml\nversion=1.33\n",
            )],
            zip::CompressionMethod::Deflated,
        );
        let inner_war_lib = zip_of(
            &[("WEB-INF/lib/snakeyaml-1.33.jar", &inner)],
            zip::CompressionMethod::Stored,
        );
        let outer = zip_of(
            &[
                (
                    "META-INF/maven/com.example/app/pom.properties",
                    b"groupId=com.example\nartifactId=app\nversion=0.0.1-SNAPSHOT\n",
                ),
                ("BOOT-INF/lib/snakeyaml-1.33.jar", &inner),
                ("BOOT-INF/lib/broken.jar", b"not a zip"),
                ("/abs/evil.jar", &inner),
                ("BOOT-INF/lib/deeper.war", &inner_war_lib),
            ],
            zip::CompressionMethod::Stored,
        );
        let p = parse(Path::new("app/app.jar"), &outer).unwrap();
        assert_eq!(
            nv(&p),
            [
                (
                    "com.example:app",
                    "0.0.1-SNAPSHOT",
                    Path::new("app/app.jar")
                ),
                (
                    "org.yaml:snakeyaml",
                    "1.33",
                    Path::new("app/app.jar/BOOT-INF/lib/snakeyaml-1.33.jar")
                ),
                (
                    "org.yaml:snakeyaml",
                    "1.33",
                    Path::new("app/app.jar/abs/evil.jar")
                ),
                (
                    "org.yaml:snakeyaml",
                    "1.33",
                    Path::new("app/app.jar/BOOT-INF/lib/deeper.war/WEB-INF/lib/snakeyaml-1.33.jar")
                ),
            ]
        );
    }

    #[test]
    fn not_a_zip_is_an_error_naming_the_path() {
        let err = parse(Path::new("x/a.jar"), b"PK\x03\x04garbage").unwrap_err();
        assert!(
            err.to_string().starts_with("x/a.jar: not a zip archive"),
            "{err}"
        );
        let jar = zip_of(
            &[("META-INF/maven/g/a/pom.properties", POM)],
            zip::CompressionMethod::Deflated,
        );
        for cut in 0..jar.len() {
            let _ = parse(Path::new("a.jar"), &jar[..cut]);
        }
        for i in 0..jar.len() {
            let mut j = jar.clone();
            j[i] ^= 0x55;
            let _ = parse(Path::new("a.jar"), &j);
        }
    }
}
