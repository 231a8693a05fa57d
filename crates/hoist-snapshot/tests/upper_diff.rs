//! The key round trip: changes made on a real overlay mount, read back from its
//! upper directory by `diff_upper`, written as a layer and applied onto a copy of
//! the lower tree, give exactly the tree the mount showed. The same upper
//! directory, adopted or unpacked from that layer as a snapshot, merges (through
//! `MergedView`) into the same tree too.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{assert_same, host_tree, view_tree, Mount};
use hoist_layer::{apply_layer, write_changes, Change, WriteOptions};
use hoist_oci::{Descriptor, Store};
use hoist_snapshot::{diff_upper, MergedView, Snapshots};

fn lower(root: &Path) {
    common::write(&root.join("keep.txt"), b"keep", 0o644);
    common::write(&root.join("mod.txt"), b"old content", 0o644);
    common::write(&root.join("del.txt"), b"delete me", 0o644);
    common::write(&root.join("deldir/a"), b"a", 0o644);
    common::write(&root.join("deldir/sub/b"), b"b", 0o644);
    common::write(&root.join("redo/old1"), b"old", 0o644);
    common::write(&root.join("redo/sub/old2"), b"old", 0o644);
    common::write(&root.join("chmod.txt"), b"mode", 0o644);
    common::write(&root.join("own.txt"), b"owner", 0o644);
    common::write(&root.join("xattr.txt"), b"x", 0o644);
    common::write(&root.join("hl_src.txt"), b"linked", 0o644);
    common::write(&root.join("dir/inner.txt"), b"inner", 0o644);
    common::write(&root.join("f2d"), b"file becomes dir", 0o644);
    common::write(&root.join("d2f/child"), b"dir becomes file", 0o644);
    common::symlink("keep.txt", &root.join("oldlink"));
    common::fix_mtimes(root, 1_600_000_000);
}

/// The step, done on the merged mount.
fn mutate(m: &Path) {
    // Added and modified files.
    common::write(&m.join("added.txt"), b"new file", 0o640);
    fs::write(m.join("mod.txt"), b"new content, longer").unwrap();
    // Deleted file and directory.
    fs::remove_file(m.join("del.txt")).unwrap();
    fs::remove_dir_all(m.join("deldir")).unwrap();
    // Directory removed and made again: opaque.
    fs::remove_dir_all(m.join("redo")).unwrap();
    fs::create_dir(m.join("redo")).unwrap();
    common::write(&m.join("redo/new"), b"fresh", 0o600);
    // Symlinks: a new one, and one retargeted.
    std::os::unix::fs::symlink("/keep.txt", m.join("newlink")).unwrap();
    fs::remove_file(m.join("oldlink")).unwrap();
    std::os::unix::fs::symlink("mod.txt", m.join("oldlink")).unwrap();
    // Hardlinks: to a lower file (copied up), and a new pair.
    fs::hard_link(m.join("hl_src.txt"), m.join("hl_dst.txt")).unwrap();
    common::write(&m.join("pair1"), b"pair", 0o644);
    fs::hard_link(m.join("pair1"), m.join("pair2")).unwrap();
    // Metadata-only changes: mode, owner, a user xattr.
    fs::set_permissions(m.join("chmod.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::lchown(m.join("own.txt"), Some(1234), Some(4321)).unwrap();
    rustix::fs::lsetxattr(
        m.join("xattr.txt"),
        "user.test",
        b"value",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    // A file added into an existing lower directory (parent copied up).
    common::write(&m.join("dir/added.txt"), b"in dir", 0o644);
    // Kind changes.
    fs::remove_file(m.join("f2d")).unwrap();
    common::write(&m.join("f2d/x"), b"x", 0o644);
    fs::remove_dir_all(m.join("d2f")).unwrap();
    common::write(&m.join("d2f"), b"now a file", 0o644);
    // A new directory tree.
    common::write(&m.join("newdir/sub/f"), b"deep", 0o644);
}

#[test]
fn upper_diff_round_trips_through_a_layer() {
    assert!(common::is_root(), "this test mounts overlayfs: run as root");
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let snaps = Snapshots::open(&home.join("snapshots")).unwrap();
    let base = tmp.path().join("lower");
    fs::create_dir(&base).unwrap();
    lower(&base);

    let scratch = snaps.scratch().unwrap();
    let merged = tmp.path().join("merged");
    fs::create_dir(&merged).unwrap();
    let expected = {
        let _m = Mount::overlay(&[&base], Some((scratch.upper(), scratch.work())), &merged);
        mutate(&merged);
        host_tree(&merged)
    };
    // Sanity: the mount showed the changes.
    assert!(!expected.contains_key("del.txt") && !expected.contains_key("deldir"));
    assert_eq!(expected["redo/new"].content, b"fresh");
    assert!(!expected.contains_key("redo/old1"));
    assert_eq!(
        expected["hl_src.txt"].same_inode_as.as_deref(),
        Some("hl_dst.txt"),
        "the mount shows the new hardlink"
    );
    assert_eq!(expected["pair2"].same_inode_as.as_deref(), Some("pair1"));

    let changes = diff_upper(scratch.upper()).unwrap();
    for c in [
        Change::Deleted("del.txt".into()),
        Change::Deleted("deldir".into()),
        Change::OpaqueDir("redo".into()),
        Change::Added("redo/new".into()),
        Change::Added("chmod.txt".into()),
        Change::Added("own.txt".into()),
        Change::Added("xattr.txt".into()),
        Change::Added("hl_dst.txt".into()),
        Change::Added("hl_src.txt".into()),
        Change::Added("dir".into()),
        Change::Added("dir/added.txt".into()),
        Change::Added("d2f".into()),
    ] {
        assert!(changes.contains(&c), "{c:?} missing from {changes:#?}");
    }
    // `f2d` replaced a lower file: a directory made over a whiteout is opaque
    // (harmless: nothing lower is below it).
    assert!(
        changes.contains(&Change::OpaqueDir("f2d".into()))
            || changes.contains(&Change::Added("f2d".into()))
    );
    assert!(
        !changes
            .iter()
            .any(|c| matches!(c, Change::Added(p) | Change::Deleted(p) if p.starts_with("deldir") && p.as_os_str() != "deldir")),
        "nothing below a deleted directory: {changes:#?}"
    );
    assert!(
        !changes.contains(&Change::Added("keep.txt".into())),
        "untouched files are not in the upper dir"
    );
    let paths: Vec<&PathBuf> = changes
        .iter()
        .map(|c| match c {
            Change::Added(p) | Change::Modified(p) | Change::Deleted(p) | Change::OpaqueDir(p) => p,
        })
        .collect();
    let mut sorted = paths.clone();
    sorted.sort_by(|a, b| a.components().cmp(b.components()));
    assert_eq!(paths, sorted, "parents before children, sorted");

    let mut blob = Vec::new();
    let info = write_changes(
        scratch.upper(),
        &changes,
        &mut blob,
        &WriteOptions::default(),
    )
    .unwrap();

    // Re-apply onto a copy of the lower tree: the flattened result is the mount.
    let copy = tmp.path().join("copy");
    fs::create_dir(&copy).unwrap();
    common::copy_tree(&base, &copy);
    apply_layer(&blob[..], &copy, &hoist_layer::ApplyOptions::default()).unwrap();
    assert_same(
        "re-applied layer vs merged mount",
        &host_tree(&copy),
        &expected,
    );

    // The layer in overlay form, unpacked as a snapshot, merges into the same tree.
    let store = Store::open(&home).unwrap();
    let (digest, size) = store.blobs().put(&blob).unwrap();
    let desc = Descriptor::new(info.media_type, digest, size);
    let unpacked = snaps
        .layer_dir(store.blobs(), &desc, &info.diff_id)
        .unwrap();
    let view = MergedView::new(vec![unpacked.clone(), base.clone()]);
    assert_same(
        "unpacked layer + lower vs merged mount",
        &view_tree(&view),
        &expected,
    );

    // And the upper directory adopted directly does too (the diff_id is already
    // present, so adopt discards it and returns the unpacked one; adopt it under
    // a second root to check the upper itself).
    let snaps2 = Snapshots::open(&tmp.path().join("snapshots2")).unwrap();
    let scratch2 = snaps2.scratch().unwrap();
    fs::remove_dir(scratch2.upper()).unwrap();
    // Same file system: move the upper across.
    fs::rename(scratch.upper(), scratch2.upper()).unwrap();
    let adopted = snaps2.adopt(scratch2.upper(), &info.diff_id).unwrap();
    assert!(!scratch2.upper().exists());
    let view = MergedView::new(vec![adopted, base.clone()]);
    assert_same(
        "adopted upper + lower vs merged mount",
        &view_tree(&view),
        &expected,
    );
}
