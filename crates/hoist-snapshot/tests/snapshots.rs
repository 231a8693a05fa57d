//! `Snapshots`: layers unpacked in overlay form, checked against a real overlay
//! mount of them; diff_id checks; concurrent unpacks; adopt; scratch; prune.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use common::{assert_same, host_tree, view_tree, Mount};
use hoist_layer::{apply_layer, write_changes, write_dir, Change, WriteOptions};
use hoist_oci::{Descriptor, Digest, ImageConfig, ImageManifest, Store};
use hoist_snapshot::{MergedView, SnapshotError, Snapshots};

struct Image {
    store: Store,
    manifest: ImageManifest,
    config: ImageConfig,
    blobs: Vec<Vec<u8>>,
}

/// A two-layer image: a base tree, then a layer deleting a file and a directory,
/// making a directory opaque, and adding files.
fn two_layer_image(home: &Path, tmp: &Path) -> Image {
    let l1 = tmp.join("l1-src");
    common::write(
        &l1.join("etc/passwd"),
        b"root:x:0:0::/root:/bin/sh\n",
        0o644,
    );
    common::write(&l1.join("gone.txt"), b"gone", 0o644);
    common::write(&l1.join("d/x"), b"x", 0o644);
    common::write(&l1.join("d/sub/y"), b"y", 0o644);
    common::write(&l1.join("opq/old"), b"old", 0o644);
    common::write(&l1.join("opq/sub/old2"), b"old", 0o644);
    common::write(&l1.join("dir/a"), b"a", 0o644);
    common::symlink("/etc/passwd", &l1.join("pw"));
    common::fix_mtimes(&l1, 1_500_000_000);
    let mut b1 = Vec::new();
    let i1 = write_dir(&l1, &mut b1, &WriteOptions::default()).unwrap();

    let l2 = tmp.join("l2-src");
    common::write(&l2.join("opq/new"), b"new", 0o644);
    common::write(&l2.join("dir/c"), b"c", 0o600);
    common::fix_mtimes(&l2, 1_600_000_000);
    let changes = vec![
        Change::Deleted("gone.txt".into()),
        Change::Deleted("d".into()),
        Change::OpaqueDir("opq".into()),
        Change::Added("opq/new".into()),
        Change::Added("dir".into()),
        Change::Added("dir/c".into()),
    ];
    let mut b2 = Vec::new();
    let i2 = write_changes(&l2, &changes, &mut b2, &WriteOptions::default()).unwrap();

    let store = Store::open(home).unwrap();
    let mut layers = Vec::new();
    for (blob, info) in [(&b1, &i1), (&b2, &i2)] {
        let (digest, size) = store.blobs().put(blob).unwrap();
        layers.push(Descriptor::new(info.media_type, digest, size));
    }
    let mut config = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        ..Default::default()
    };
    config.rootfs.diff_ids = vec![i1.diff_id, i2.diff_id];
    let config_bytes = serde_json_bytes(&config);
    let (cd, cs) = store.blobs().put(&config_bytes).unwrap();
    let manifest = ImageManifest::new(
        Descriptor::new(hoist_oci::media_type::OCI_CONFIG, cd, cs),
        layers,
    );
    Image {
        store,
        manifest,
        config,
        blobs: vec![b1, b2],
    }
}

fn serde_json_bytes(config: &ImageConfig) -> Vec<u8> {
    hoist_oci::manifest::to_canonical_json(config)
}

fn tmp_entries(snaps: &Snapshots) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(snaps.root().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn opaque(p: &Path) -> Option<Vec<u8>> {
    let mut buf = [0u8; 16];
    rustix::fs::lgetxattr(p, "trusted.overlay.opaque", &mut buf[..])
        .ok()
        .map(|n| buf[..n].to_vec())
}

#[test]
fn layer_dirs_are_overlay_lowerdirs() {
    assert!(common::is_root(), "this test mounts overlayfs: run as root");
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let img = two_layer_image(&home, tmp.path());
    let snaps = Snapshots::open(&home.join("snapshots")).unwrap();

    let lowers = snaps
        .image_lowers(&img.store, &img.manifest, &img.config)
        .unwrap();
    assert_eq!(lowers.len(), 2);
    let (top, base) = (&lowers[0], &lowers[1]);
    assert_eq!(Some(top.clone()), snaps.get(&img.config.rootfs.diff_ids[1]));
    assert_eq!(
        Some(base.clone()),
        snaps.get(&img.config.rootfs.diff_ids[0])
    );

    // Whiteouts in overlay form in the top layer.
    for wh in ["gone.txt", "d"] {
        let md = fs::symlink_metadata(top.join(wh)).unwrap();
        assert!(md.file_type().is_char_device() && md.rdev() == 0, "{wh}");
    }
    assert_eq!(opaque(&top.join("opq")).as_deref(), Some(&b"y"[..]));
    assert_eq!(opaque(&top.join("dir")), None);
    assert!(!top.join(".wh.gone.txt").exists());
    assert!(!top.join("opq/.wh..wh..opq").exists());
    // The base layer is untouched by the top one.
    assert_eq!(fs::read(base.join("gone.txt")).unwrap(), b"gone");

    // A real overlay mount of the two lowerdirs shows what MergedView says.
    let merged = tmp.path().join("merged");
    fs::create_dir(&merged).unwrap();
    let mounted = {
        let _m = Mount::overlay(&[top, base], None, &merged);
        host_tree(&merged)
    };
    let view = MergedView::new(lowers.clone());
    assert_same("MergedView vs overlay mount", &view_tree(&view), &mounted);
    assert!(!mounted.contains_key("gone.txt") && !mounted.contains_key("d"));
    assert!(mounted.contains_key("opq/new") && !mounted.contains_key("opq/old"));
    assert_eq!(mounted["dir/a"].content, b"a");

    // And both equal the layers flattened the OCI way.
    let flat = tmp.path().join("flat");
    fs::create_dir(&flat).unwrap();
    for blob in &img.blobs {
        apply_layer(&blob[..], &flat, &hoist_layer::ApplyOptions::default()).unwrap();
    }
    assert_same(
        "flattened layers vs overlay mount",
        &host_tree(&flat),
        &mounted,
    );

    // Second use: same paths, nothing unpacked, nothing left in tmp.
    let again = snaps
        .image_lowers(&img.store, &img.manifest, &img.config)
        .unwrap();
    assert_eq!(again, lowers);
    assert!(tmp_entries(&snaps).is_empty(), "{:?}", tmp_entries(&snaps));
}

#[test]
fn wrong_diff_id_is_refused_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let img = two_layer_image(&home, tmp.path());
    let snaps = Snapshots::open(&home.join("snapshots")).unwrap();
    let wrong = Digest::sha256_of(b"not this layer");
    let err = snaps
        .layer_dir(img.store.blobs(), &img.manifest.layers[0], &wrong)
        .unwrap_err();
    match err {
        SnapshotError::DiffIdMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, wrong);
            assert_eq!(actual, img.config.rootfs.diff_ids[0]);
        }
        other => panic!("unexpected error {other}"),
    }
    assert_eq!(snaps.get(&wrong), None);
    assert!(tmp_entries(&snaps).is_empty());

    // Manifest and config disagreeing on the layer count.
    let mut config = img.config.clone();
    config.rootfs.diff_ids.pop();
    let err = snaps
        .image_lowers(&img.store, &img.manifest, &config)
        .unwrap_err();
    assert!(matches!(
        err,
        SnapshotError::LayerCount {
            layers: 2,
            diff_ids: 1
        }
    ));
}

#[test]
fn concurrent_layer_dir_agrees_and_leaves_one_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let img = two_layer_image(&home, tmp.path());
    let snaps = Snapshots::open(&home.join("snapshots")).unwrap();
    let layer = &img.manifest.layers[0];
    let diff_id = &img.config.rootfs.diff_ids[0];
    let barrier = std::sync::Barrier::new(4);
    let paths: Vec<PathBuf> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    // Each thread opens its own handle, as separate processes would.
                    let mine = Snapshots::open(snaps.root()).unwrap();
                    barrier.wait();
                    mine.layer_dir(img.store.blobs(), layer, diff_id).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(paths.iter().all(|p| p == &paths[0]), "{paths:?}");
    assert_eq!(fs::read(paths[0].join("gone.txt")).unwrap(), b"gone");
    assert!(tmp_entries(&snaps).is_empty(), "{:?}", tmp_entries(&snaps));
    let mut names: Vec<_> = fs::read_dir(paths[0].parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from(diff_id.hex())],
        "one snapshot directory"
    );
}

#[test]
fn scratch_adopt_and_prune() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let img = two_layer_image(&home, tmp.path());
    let snaps = Snapshots::open(&home.join("snapshots")).unwrap();
    let [d1, d2] = [
        &img.config.rootfs.diff_ids[0],
        &img.config.rootfs.diff_ids[1],
    ];
    let base = snaps
        .layer_dir(img.store.blobs(), &img.manifest.layers[0], d1)
        .unwrap();
    let top = snaps
        .layer_dir(img.store.blobs(), &img.manifest.layers[1], d2)
        .unwrap();

    // Scratch: upper and work inside path, removed on drop.
    let s = snaps.scratch().unwrap();
    assert!(s.upper().is_dir() && s.work().is_dir());
    assert!(s.upper().starts_with(s.path()) && s.work().starts_with(s.path()));
    assert!(s.path().starts_with(snaps.root()));
    let kept_path = s.path().to_owned();
    drop(s);
    assert!(!kept_path.exists(), "scratch removed on drop");

    // Adopt: a staging directory becomes a snapshot by rename.
    let s = snaps.scratch().unwrap();
    common::write(&s.upper().join("hello"), b"hi", 0o644);
    let d3 = Digest::sha256_of(b"a layer computed elsewhere");
    let adopted = snaps.adopt(s.upper(), &d3).unwrap();
    assert_eq!(snaps.get(&d3), Some(adopted.clone()));
    assert_eq!(fs::read(adopted.join("hello")).unwrap(), b"hi");
    assert!(!s.upper().exists(), "moved, not copied");
    // Adopting the same diff_id again discards the new directory.
    let s2 = snaps.scratch().unwrap();
    common::write(&s2.upper().join("other"), b"x", 0o644);
    assert_eq!(snaps.adopt(s2.upper(), &d3).unwrap(), adopted);
    assert!(!s2.upper().exists());
    assert!(!adopted.join("other").exists());
    drop(s2);

    // A killed writer's temp directory, and a live scratch that must survive.
    let dead = snaps.root().join("tmp").join("99999-dead-0");
    common::write(&dead.join("rootfs/half-unpacked"), b"...", 0o644);
    let live = snaps.scratch().unwrap();
    common::write(&live.upper().join("in-progress"), b"...", 0o644);

    let keep: BTreeSet<Digest> = [d1.clone()].into();
    let report = snaps.prune(&keep).unwrap();
    assert_eq!(report.removed, 2, "{report:?}");
    assert_eq!(report.kept, 1, "{report:?}");
    assert_eq!(report.temp_removed, 1, "only the dead dir: {report:?}");
    assert_eq!(snaps.get(d1), Some(base.clone()));
    assert_eq!(snaps.get(d2), None);
    assert_eq!(snaps.get(&d3), None);
    assert!(!top.exists() && !adopted.exists());
    assert!(!dead.exists(), "killed writer's temp dir removed");
    assert!(
        live.upper().join("in-progress").exists(),
        "live scratch kept"
    );
    assert!(
        s.work().exists(),
        "live scratch kept (after its upper was adopted)"
    );
    assert_eq!(fs::read(base.join("gone.txt")).unwrap(), b"gone");
    drop(s);
    drop(live);
    assert!(tmp_entries(&snaps).is_empty(), "{:?}", tmp_entries(&snaps));

    // Unpacking again after a prune works.
    let top2 = snaps
        .layer_dir(img.store.blobs(), &img.manifest.layers[1], d2)
        .unwrap();
    assert_eq!(top2, top);
    assert!(top2.join("opq/new").exists());
}

#[test]
fn adopt_refuses_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let snaps = Snapshots::open(&tmp.path().join("snapshots")).unwrap();
    let f = tmp.path().join("file");
    fs::write(&f, b"x").unwrap();
    let d = Digest::sha256_of(b"x");
    let err = snaps.adopt(&f, &d).unwrap_err();
    assert!(err.to_string().contains("file"), "{err}");
    assert_eq!(snaps.get(&d), None);
}
