//! `WalkSnapshot`, the fallback without overlayfs: record, change, diff; and the
//! diff written as a layer turns the old tree into the new one.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::io::{Seek, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::{assert_same, host_tree};
use hoist_layer::{apply_layer, write_changes, Change, WriteOptions};
use hoist_snapshot::{overlay_supported, WalkSnapshot};

fn tree(r: &Path) {
    common::write(&r.join("a.txt"), b"aaaa", 0o644);
    common::write(&r.join("b.txt"), b"untouched", 0o644);
    common::write(&r.join("c.txt"), b"delete me", 0o644);
    common::write(&r.join("d/x"), b"x", 0o644);
    common::write(&r.join("d/y/z"), b"z", 0o644);
    common::write(&r.join("e.txt"), b"xattr", 0o644);
    common::write(&r.join("same.txt"), b"1234", 0o644);
    common::write(&r.join("renamed-over.txt"), b"5678", 0o644);
    common::write(&r.join("mode.txt"), b"mode", 0o644);
    common::write(&r.join("keepdir/old"), b"old", 0o644);
    common::symlink("a.txt", &r.join("link"));
    common::fix_mtimes(r, 1_500_000_000);
}

#[test]
fn walk_diff_finds_every_kind_of_change() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path().join("root");
    tree(&r);
    let before = tmp.path().join("before");
    fs::create_dir(&before).unwrap();
    common::copy_tree(&r, &before);

    let snap = WalkSnapshot::capture(&r).unwrap();
    assert_eq!(snap.len(), 14);
    // The coarse kernel clock could give the rewrite below the ctime the capture
    // saw; a little distance makes the ctime check meaningful on any kernel.
    std::thread::sleep(std::time::Duration::from_millis(20));

    common::write(&r.join("new.txt"), b"new", 0o644);
    fs::write(r.join("a.txt"), b"longer content").unwrap();
    fs::remove_file(r.join("c.txt")).unwrap();
    fs::remove_dir_all(r.join("d")).unwrap();
    fs::set_permissions(r.join("mode.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    rustix::fs::lsetxattr(
        r.join("e.txt"),
        "user.k",
        b"v",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    common::write(&r.join("keepdir/new"), b"n", 0o644);
    fs::remove_file(r.join("link")).unwrap();
    common::symlink("b.txt", &r.join("link"));

    // Same size, rewritten in place, mtime put back: only the ctime tells.
    let md = fs::metadata(r.join("same.txt")).unwrap();
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(r.join("same.txt"))
        .unwrap();
    f.seek(std::io::SeekFrom::Start(0)).unwrap();
    f.write_all(b"abcd").unwrap();
    drop(f);
    common::set_mtime(&r.join("same.txt"), md.mtime());
    let after = fs::metadata(r.join("same.txt")).unwrap();
    assert_eq!((after.size(), after.mtime()), (md.size(), md.mtime()));
    // Same size and mtime, replaced by rename: the inode tells.
    common::write(&r.join("tmp-new"), b"8765", 0o644);
    common::set_mtime(&r.join("tmp-new"), 1_500_000_000);
    fs::rename(r.join("tmp-new"), r.join("renamed-over.txt")).unwrap();
    common::set_mtime(&r, 1_500_000_000);

    let changes = snap.diff(&r).unwrap();
    assert_eq!(
        changes,
        vec![
            Change::Modified("a.txt".into()),
            Change::Deleted("c.txt".into()),
            Change::Deleted("d".into()),
            Change::Modified("e.txt".into()),
            Change::Modified("keepdir".into()),
            Change::Added("keepdir/new".into()),
            Change::Modified("link".into()),
            Change::Modified("mode.txt".into()),
            Change::Added("new.txt".into()),
            Change::Modified("renamed-over.txt".into()),
            Change::Modified("same.txt".into()),
        ]
    );

    // The change list as a layer turns the old tree into the new one.
    let mut blob = Vec::new();
    write_changes(&r, &changes, &mut blob, &WriteOptions::default()).unwrap();
    apply_layer(&blob[..], &before, &hoist_layer::ApplyOptions::default()).unwrap();
    assert_same(
        "old tree + walk layer vs new tree",
        &host_tree(&before),
        &host_tree(&r),
    );

    // Nothing changed since: an empty diff.
    let again = WalkSnapshot::capture(&r).unwrap();
    assert_eq!(again.diff(&r).unwrap(), vec![]);
}

#[test]
fn kind_changes_replace_without_listing_old_children() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    common::write(&r.join("f2d"), b"file", 0o644);
    common::write(&r.join("d2f/child"), b"c", 0o644);
    let snap = WalkSnapshot::capture(r).unwrap();
    fs::remove_file(r.join("f2d")).unwrap();
    common::write(&r.join("f2d/inner"), b"i", 0o644);
    fs::remove_dir_all(r.join("d2f")).unwrap();
    common::write(&r.join("d2f"), b"now a file", 0o644);
    assert_eq!(
        snap.diff(r).unwrap(),
        vec![
            Change::Modified("d2f".into()),
            Change::Modified("f2d".into()),
            Change::Added("f2d/inner".into()),
        ]
    );
}

#[test]
fn overlay_probe_agrees_with_the_machine() {
    let listed = fs::read_to_string("/proc/filesystems")
        .unwrap()
        .lines()
        .any(|l| l.ends_with("\toverlay"));
    assert_eq!(overlay_supported(), listed && common::is_root());
}
