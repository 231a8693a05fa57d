//! Directory -> layer -> apply gives back the same tree, in every compression.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;

use hoist_layer::{apply_layer, compression, write_dir, ApplyOptions, Compression, WriteOptions};
use hoist_oci::Digest;

fn round_trip(c: Compression) {
    let src = tempfile::tempdir().unwrap();
    common::build_rich_tree(src.path());
    let before = common::snapshot(src.path());

    let mut blob = Vec::new();
    let opts = WriteOptions {
        compression: c,
        ..WriteOptions::default()
    };
    let info = write_dir(src.path(), &mut blob, &opts).unwrap();
    assert_eq!(
        info.digest,
        Digest::sha256_of(&blob),
        "digest is of the blob as written"
    );
    assert_eq!(info.size, blob.len() as u64);
    assert_eq!(info.media_type, hoist_oci::media_type::oci_layer(c));
    assert_eq!(
        compression::detect(&blob),
        c,
        "magic bytes match the compression"
    );

    let dst = tempfile::tempdir().unwrap();
    let report = apply_layer(&blob[..], dst.path(), &ApplyOptions::default()).unwrap();
    assert_eq!(report.compression, c);
    assert_eq!(
        report.diff_id, info.diff_id,
        "applier and writer agree on the diff_id"
    );
    assert_eq!(report.uncompressed_size, info.uncompressed_size);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);

    let after = common::snapshot(dst.path());
    common::assert_same_tree(&before, &after);
}

#[test]
fn plain_round_trip_preserves_everything() {
    round_trip(Compression::None);
}

#[test]
fn gzip_round_trip_preserves_everything() {
    round_trip(Compression::Gzip);
}

#[test]
fn zstd_round_trip_preserves_everything() {
    round_trip(Compression::Zstd);
}

#[test]
fn round_trip_details_are_really_there() {
    // Guards against a snapshot helper that would compare nothing.
    let src = tempfile::tempdir().unwrap();
    common::build_rich_tree(src.path());
    let mut blob = Vec::new();
    write_dir(src.path(), &mut blob, &WriteOptions::default()).unwrap();
    let dst = tempfile::tempdir().unwrap();
    apply_layer(&blob[..], dst.path(), &ApplyOptions::default()).unwrap();
    let d = dst.path();

    let su = fs::metadata(d.join("bin/su")).unwrap();
    assert_eq!(su.mode() & 0o7777, 0o4755);
    assert_eq!(fs::metadata(d.join("tmp")).unwrap().mode() & 0o7777, 0o1777);
    let notes = fs::metadata(d.join("home/user/notes")).unwrap();
    assert_eq!((notes.uid(), notes.gid()), (1000, 1001));
    let big = fs::metadata(d.join("home/big-ids")).unwrap();
    assert_eq!((big.uid(), big.gid()), (3_000_000, 4_000_000));
    assert_eq!(
        fs::read_link(d.join("bin/sh")).unwrap().to_str(),
        Some("/bin/busybox")
    );
    let a = fs::metadata(d.join("usr/lib/libc.so")).unwrap();
    let b = fs::metadata(d.join("usr/lib/libc.so.6")).unwrap();
    let c = fs::metadata(d.join("etc/zz-hardlink")).unwrap();
    assert_eq!(a.ino(), b.ino());
    assert_eq!(a.ino(), c.ino());
    assert_eq!(a.nlink(), 3);
    assert_eq!(
        common::user_xattrs(&d.join("etc/passwd")),
        vec![(b"user.test".to_vec(), b"hello".to_vec())]
    );
    assert_eq!(common::user_xattrs(&d.join("etc")).len(), 2);
    let long = d.join("long").join("n".repeat(200));
    assert_eq!(fs::read(long).unwrap(), b"long name");
    use std::os::unix::fs::FileTypeExt;
    assert!(fs::symlink_metadata(d.join("run/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    let null = fs::symlink_metadata(d.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    // Directory mtimes survive children being written into them.
    let src_etc = fs::metadata(src.path().join("etc")).unwrap().mtime();
    assert_eq!(fs::metadata(d.join("etc")).unwrap().mtime(), src_etc);
}

#[test]
fn apply_without_ownership_keeps_the_caller_as_owner() {
    let src = tempfile::tempdir().unwrap();
    common::write(&src.path().join("f"), b"x", 0o644);
    common::lchown(&src.path().join("f"), 1234, 1234);
    let mut blob = Vec::new();
    write_dir(src.path(), &mut blob, &WriteOptions::default()).unwrap();
    let dst = tempfile::tempdir().unwrap();
    let opts = ApplyOptions {
        same_owner: false,
        ..ApplyOptions::default()
    };
    apply_layer(&blob[..], dst.path(), &opts).unwrap();
    let md = fs::metadata(dst.path().join("f")).unwrap();
    assert_eq!(md.uid(), rustix::process::geteuid().as_raw());
}

#[test]
fn magic_bytes_decide_not_the_caller() {
    // The same tar, three encodings: each is detected and yields the same diff_id.
    let src = tempfile::tempdir().unwrap();
    common::write(&src.path().join("a/b"), b"bytes", 0o644);
    let mut ids = Vec::new();
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let mut blob = Vec::new();
        let info = write_dir(
            src.path(),
            &mut blob,
            &WriteOptions {
                compression: c,
                ..WriteOptions::default()
            },
        )
        .unwrap();
        let mut reader = hoist_layer::LayerReader::new(&blob[..]).unwrap();
        assert_eq!(reader.compression(), c);
        let paths: Vec<_> = reader
            .entries()
            .unwrap()
            .map(|e| e.unwrap().info().path.clone())
            .collect();
        assert_eq!(paths, vec![std::path::PathBuf::from("a"), "a/b".into()]);
        let (diff_id, _) = reader.finish().unwrap();
        assert_eq!(diff_id, info.diff_id);
        ids.push(info.diff_id);
    }
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "diff_id is of the tar, not the blob"
    );
}

#[test]
fn garbage_and_truncated_streams_are_clean_errors() {
    let dst = tempfile::tempdir().unwrap();
    let opts = ApplyOptions::default();
    // Not a tar at all.
    assert!(apply_layer(
        &b"definitely not a tar archive, not even close........"[..],
        dst.path(),
        &opts
    )
    .is_err());
    // gzip magic followed by junk.
    assert!(apply_layer(&[0x1f, 0x8b, 8, 0, 1, 2, 3, 4][..], dst.path(), &opts).is_err());
    // zstd magic followed by junk.
    assert!(apply_layer(&[0x28, 0xb5, 0x2f, 0xfd, 9, 9, 9][..], dst.path(), &opts).is_err());
    // A tar cut inside a file's data.
    let mut t = common::RawTar::new();
    t.file("big", &[1u8; 4096]);
    let full = t.finish();
    let err = apply_layer(&full[..1024], dst.path(), &opts).unwrap_err();
    assert!(err.to_string().contains("big"), "{err}");
    // Empty input is an empty layer.
    let r = apply_layer(&b""[..], dst.path(), &opts).unwrap();
    assert!(r.applied.is_empty());
}
