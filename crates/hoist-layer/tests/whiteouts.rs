//! OCI whiteouts and opaque directories across stacked layers.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::PathBuf;

use hoist_layer::{
    apply_layer, write_changes, write_dir, ApplyOptions, Change, Compression, WriteOptions,
};

fn lower_layer() -> Vec<u8> {
    let src = tempfile::tempdir().unwrap();
    let r = src.path();
    common::write(&r.join("a/file"), b"lower", 0o644);
    common::write(&r.join("a/keep"), b"keep", 0o644);
    common::write(&r.join("opq/old1"), b"old", 0o644);
    common::write(&r.join("opq/sub/old2"), b"old", 0o644);
    common::write(&r.join("opq/shared/lower-only"), b"old", 0o644);
    common::write(&r.join("x"), b"x", 0o644);
    common::write(&r.join("tree/deep/er/file"), b"t", 0o644);
    let mut blob = Vec::new();
    write_dir(r, &mut blob, &WriteOptions::default()).unwrap();
    blob
}

#[test]
fn whiteout_and_opaque_from_change_list() {
    let upper_src = tempfile::tempdir().unwrap();
    let u = upper_src.path();
    common::write(&u.join("opq/new1"), b"new", 0o644);
    common::write(&u.join("opq/shared/upper-only"), b"new", 0o644);
    common::write(&u.join("a/added"), b"added", 0o644);
    common::set_mtime(&u.join("opq"), 1_000_000_000);
    let changes = vec![
        Change::Deleted("a/file".into()),
        Change::Added("a/added".into()),
        Change::OpaqueDir("opq".into()),
        Change::Added("opq/new1".into()),
        Change::Added("opq/shared".into()),
        Change::Added("opq/shared/upper-only".into()),
        Change::Deleted("x".into()),
        Change::Deleted("tree".into()),
    ];
    let mut upper = Vec::new();
    write_changes(
        u,
        &changes,
        &mut upper,
        &WriteOptions {
            compression: Compression::Zstd,
            ..WriteOptions::default()
        },
    )
    .unwrap();

    let dst = tempfile::tempdir().unwrap();
    let d = dst.path();
    apply_layer(&lower_layer()[..], d, &ApplyOptions::default()).unwrap();
    assert!(d.join("opq/sub/old2").exists(), "lower applied");
    let report = apply_layer(&upper[..], d, &ApplyOptions::default()).unwrap();

    assert!(!d.join("a/file").exists(), "whited-out file is gone");
    assert_eq!(fs::read(d.join("a/keep")).unwrap(), b"keep");
    assert_eq!(fs::read(d.join("a/added")).unwrap(), b"added");
    assert!(!d.join("x").exists());
    assert!(
        !d.join("tree").exists(),
        "whiteout of a directory removes it recursively"
    );
    assert_eq!(common::names(&d.join("opq")), vec!["new1", "shared"]);
    assert_eq!(common::names(&d.join("opq/shared")), vec!["upper-only"]);
    assert!(
        !d.join(".wh.x").exists() && !d.join("opq/.wh..wh..opq").exists(),
        "markers are not files"
    );
    assert_eq!(report.opaque_dirs, vec![PathBuf::from("opq")]);
    // Pruning happened before directory metadata: opq has the upper's mtime.
    let mut layer = hoist_layer::LayerReader::new(&upper[..]).unwrap();
    let opq_mtime = layer
        .entries()
        .unwrap()
        .map(|e| e.unwrap().info().clone())
        .find(|i| i.path.as_os_str() == "opq")
        .unwrap()
        .mtime;
    use std::os::unix::fs::MetadataExt;
    assert_eq!(opq_mtime, 1_000_000_000);
    assert_eq!(fs::metadata(d.join("opq")).unwrap().mtime(), opq_mtime);
    let mut wh = report.whiteouts.clone();
    wh.sort();
    assert_eq!(wh, vec![PathBuf::from("a/file"), "tree".into(), "x".into()]);
}

#[test]
fn opaque_marker_after_entries_of_the_same_layer_keeps_them() {
    let dst = tempfile::tempdir().unwrap();
    let d = dst.path();
    apply_layer(&lower_layer()[..], d, &ApplyOptions::default()).unwrap();
    let mut t = common::RawTar::new();
    t.dir("opq/")
        .file("opq/before-marker", b"b")
        .file("opq/.wh..wh..opq", b"")
        .file("opq/after-marker", b"a");
    apply_layer(&t.finish()[..], d, &ApplyOptions::default()).unwrap();
    assert_eq!(
        common::names(&d.join("opq")),
        vec!["after-marker", "before-marker"]
    );
}

#[test]
fn whiteouts_only_hide_lower_layers() {
    let dst = tempfile::tempdir().unwrap();
    let d = dst.path();
    apply_layer(&lower_layer()[..], d, &ApplyOptions::default()).unwrap();
    // The layer writes `a/file` then (wrongly ordered) whites it out: the whiteout
    // concerns lower layers only, so this layer's file stays.
    let mut t = common::RawTar::new();
    t.file("a/file", b"upper")
        .file("a/.wh.file", b"")
        .file("a/.wh.keep", b"");
    apply_layer(&t.finish()[..], d, &ApplyOptions::default()).unwrap();
    assert_eq!(fs::read(d.join("a/file")).unwrap(), b"upper");
    assert!(!d.join("a/keep").exists());
}

#[test]
fn whiteout_of_missing_path_and_aufs_metadata_are_harmless() {
    let dst = tempfile::tempdir().unwrap();
    let d = dst.path();
    let mut t = common::RawTar::new();
    t.file("nothing/here/.wh.ghost", b"")
        .file(".wh..wh.plnk/123.456", b"aufs")
        .file(".wh..wh.aufs", b"")
        .file("real", b"r");
    let r = apply_layer(&t.finish()[..], d, &ApplyOptions::default()).unwrap();
    assert_eq!(common::names(d), vec!["real"]);
    assert_eq!(r.whiteouts, vec![PathBuf::from("nothing/here/ghost")]);
}

#[test]
fn bad_whiteout_names_are_refused() {
    let dst = tempfile::tempdir().unwrap();
    for name in ["a/.wh.", "a/.wh..", "a/.wh..."] {
        let mut t = common::RawTar::new();
        t.file(name, b"");
        let err = apply_layer(&t.finish()[..], dst.path(), &ApplyOptions::default()).unwrap_err();
        assert!(
            matches!(
                err,
                hoist_layer::ApplyError::Read(hoist_layer::ReadError::UnsafePath { .. })
            ),
            "{name}: {err}"
        );
    }
}

#[test]
fn replacing_kinds_file_dir_symlink() {
    let dst = tempfile::tempdir().unwrap();
    let d = dst.path();
    let mut lower = common::RawTar::new();
    lower
        .file("was-file", b"f")
        .dir("was-dir/")
        .file("was-dir/child", b"c")
        .symlink("was-link", "/etc")
        .dir("stays-dir/")
        .file("stays-dir/child", b"c");
    apply_layer(&lower.finish()[..], d, &ApplyOptions::default()).unwrap();
    let mut upper = common::RawTar::new();
    upper
        .dir("was-file/")
        .file("was-dir", b"now a file")
        .dir("was-link/")
        .entry("stays-dir/", b'5', "", b"", 0o700);
    apply_layer(&upper.finish()[..], d, &ApplyOptions::default()).unwrap();
    assert!(fs::symlink_metadata(d.join("was-file")).unwrap().is_dir());
    assert_eq!(fs::read(d.join("was-dir")).unwrap(), b"now a file");
    assert!(fs::symlink_metadata(d.join("was-link")).unwrap().is_dir());
    use std::os::unix::fs::MetadataExt;
    let md = fs::metadata(d.join("stays-dir")).unwrap();
    assert_eq!(
        md.mode() & 0o7777,
        0o700,
        "existing dir gets the new metadata"
    );
    assert!(
        d.join("stays-dir/child").exists(),
        "existing dir keeps its children"
    );
}
