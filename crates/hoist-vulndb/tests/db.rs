//! Import and matching against advisories written on the model of real ones
//! (tests/fixtures/osv).

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};

use hoist_vulndb::{Db, DbError, Severity};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/osv")
}

fn imported() -> (tempfile::TempDir, Db) {
    let home = tempfile::tempdir().unwrap();
    let mut db = Db::open(&home.path().join("vulndb")).unwrap();
    let report = db.import_dir(&fixtures()).unwrap();
    assert_eq!(report.advisories, 6);
    assert_eq!(report.withdrawn, 1);
    (home, db)
}

fn ids(db: &Db, eco: &str, name: &str, version: &str) -> Vec<String> {
    db.matches(eco, name, version)
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect()
}

#[test]
fn debian_fixed_version_with_tilde() {
    let (_home, db) = imported();
    let m = db
        .matches("Debian:12", "openssl", "3.0.11-1~deb12u1")
        .unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].id, "DSA-5532-1");
    assert_eq!(m[0].aliases, ["CVE-2023-5363"]);
    assert_eq!(m[0].fixed.as_deref(), Some("3.0.11-1~deb12u2"));
    assert_eq!(m[0].score, Some(7.5));
    assert_eq!(m[0].severity, Severity::High);
    // The fixed version, and 3.0.11-1 (which sorts after ~deb12u2), are clear.
    assert!(ids(&db, "Debian:12", "openssl", "3.0.11-1~deb12u2").is_empty());
    assert!(ids(&db, "Debian:12", "openssl", "3.0.11-1").is_empty());
    assert_eq!(ids(&db, "Debian:12", "openssl", "3.0.9-1"), ["DSA-5532-1"]);
    // Another release is another package set.
    assert!(ids(&db, "Debian:11", "openssl", "1.1.1n-0+deb11u4").is_empty());
}

#[test]
fn pypi_two_ranges_last_affected_and_pep503_names() {
    let (_home, db) = imported();
    let m = db.matches("PyPI", "aiohttp", "3.8.4").unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].fixed.as_deref(), Some("3.8.5"));
    assert_eq!(m[0].severity, Severity::High);
    assert!(ids(&db, "PyPI", "aiohttp", "3.8.5").is_empty());
    assert!(ids(&db, "PyPI", "aiohttp", "3.9.0").is_empty());
    // Second range: introduced 4.0.0a0, last_affected 4.0.0a1 (inclusive), no fix.
    let m = db.matches("PyPI", "AioHTTP", "4.0.0a1").unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].fixed, None);
    assert!(ids(&db, "PyPI", "aiohttp", "4.0.0").is_empty());
    // PEP 503: runs of -_. are one -, case-insensitive.
    assert_eq!(
        ids(&db, "PyPI", "zope-interface.extras", "1.1"),
        ["GHSA-jfmj-5v4g-7637"]
    );
    assert!(ids(&db, "PyPI", "zope-interface-extras", "1.2").is_empty());
}

#[test]
fn crates_io_semver_range() {
    let (_home, db) = imported();
    let m = db.matches("crates.io", "openssl", "0.10.54").unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].id, "RUSTSEC-2023-0044");
    assert_eq!(m[0].fixed.as_deref(), Some("0.10.55"));
    assert_eq!(m[0].severity, Severity::Unknown);
    assert!(ids(&db, "crates.io", "openssl", "0.10.55").is_empty());
    assert!(ids(&db, "crates.io", "openssl", "0.9.24").is_empty());
    // Same name, other ecosystem: nothing.
    assert!(ids(&db, "npm", "openssl", "0.10.54").is_empty());
}

#[test]
fn npm_prefers_cvss_v4_and_lists_versions() {
    let (_home, db) = imported();
    let m = db.matches("npm", "braces", "3.0.2").unwrap();
    // The withdrawn advisory for braces matches nothing.
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].id, "GHSA-952p-6rrq-rcjv");
    assert_eq!(m[0].score, Some(8.7));
    assert_eq!(m[0].severity, Severity::High);
    assert_eq!(m[0].fixed.as_deref(), Some("3.0.3"));
    assert!(ids(&db, "npm", "braces", "3.0.3").is_empty());
    // Explicit versions list.
    assert_eq!(
        ids(&db, "npm", "braces-legacy", "2.3.2"),
        ["GHSA-952p-6rrq-rcjv"]
    );
    assert!(ids(&db, "npm", "braces-legacy", "2.3.3").is_empty());
}

#[test]
fn go_limit_event_bounds_the_range_and_git_ranges_are_ignored() {
    let (_home, db) = imported();
    let m = db.matches("Go", "golang.org/x/net", "v0.16.0").unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].severity, Severity::Low);
    assert_eq!(m[0].fixed, None);
    assert!(ids(&db, "Go", "golang.org/x/net", "v0.17.0").is_empty());
}

#[test]
fn matches_many_aligns_with_queries() {
    let (_home, db) = imported();
    let out = db
        .matches_many(&[
            ("npm", "braces", "1.0.0"),
            ("npm", "left-pad", "1.0.0"),
            ("Debian:12", "openssl", "3.0.9-1"),
        ])
        .unwrap();
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].len(), 1);
    assert!(out[1].is_empty());
    assert_eq!(out[2][0].id, "DSA-5532-1");
}

#[test]
fn status_and_age_after_import() {
    let home = tempfile::tempdir().unwrap();
    let mut db = Db::open(home.path()).unwrap();
    assert!(db.status().unwrap().is_empty());
    assert_eq!(db.age().unwrap(), None);
    db.import_dir(&fixtures()).unwrap();
    // Re-importing a source replaces it rather than adding to it.
    db.import_dir(&fixtures()).unwrap();
    let status = db.status().unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].count, 6);
    assert!(db.age().unwrap().unwrap().as_secs() < 3600);
    assert_eq!(ids(&db, "npm", "braces", "1.0.0").len(), 1);
    // Reopening sees the same data.
    drop(db);
    let db = Db::open(home.path()).unwrap();
    assert_eq!(db.status().unwrap().len(), 1);
}

fn zip_fixtures(to: &Path) {
    let file = std::fs::File::create(to).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for e in walkdir::WalkDir::new(fixtures()) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            // osv.dev's all.zip is flat: <ID>.json.
            zip.start_file(e.file_name().to_string_lossy(), opts)
                .unwrap();
            zip.write_all(&std::fs::read(e.path()).unwrap()).unwrap();
        }
    }
    zip.finish().unwrap();
}

#[test]
fn zip_import_matches_like_dir_import() {
    let home = tempfile::tempdir().unwrap();
    let archive = home.path().join("all.zip");
    zip_fixtures(&archive);
    let mut db = Db::open(&home.path().join("vulndb")).unwrap();
    let report = db.import_zip(&archive).unwrap();
    assert_eq!(report.advisories, 6);
    assert_eq!(ids(&db, "Debian:12", "openssl", "3.0.9-1"), ["DSA-5532-1"]);
    assert_eq!(
        ids(&db, "PyPI", "aiohttp", "3.8.4"),
        ["GHSA-jfmj-5v4g-7637"]
    );
    let status = db.status().unwrap();
    assert!(status[0].source.ends_with("all.zip"), "{status:?}");
}

#[test]
fn bad_json_fails_the_import_naming_file_and_line() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("advisories");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::copy(fixtures().join("DSA-5532-1.json"), dir.join("a-good.json")).unwrap();
    std::fs::write(
        dir.join("sub/z-bad.json"),
        "{\n  \"id\": \"X-1\",\n  \"affected\": [,]\n}\n",
    )
    .unwrap();
    let mut db = Db::open(&home.path().join("vulndb")).unwrap();
    let err = db.import_dir(&dir).unwrap_err();
    match &err {
        DbError::Json { file, line, .. } => {
            assert!(file.ends_with("sub/z-bad.json"), "{file}");
            assert_eq!(*line, 3);
        }
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("z-bad.json") && msg.contains("line 3"),
        "{msg}"
    );
    // Nothing half-written: the good file's advisory is not there either.
    assert!(ids(&db, "Debian:12", "openssl", "3.0.9-1").is_empty());
    assert!(db.status().unwrap().is_empty());
}

#[test]
fn bad_json_in_zip_names_the_entry() {
    let home = tempfile::tempdir().unwrap();
    let archive = home.path().join("all.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&archive).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    zip.start_file("GHSA-bad.json", opts).unwrap();
    zip.write_all(b"{\"id\": 5}").unwrap();
    zip.finish().unwrap();
    let mut db = Db::open(&home.path().join("vulndb")).unwrap();
    let msg = db.import_zip(&archive).unwrap_err().to_string();
    assert!(
        msg.contains("all.zip!/GHSA-bad.json") && msg.contains("line 1"),
        "{msg}"
    );
}
