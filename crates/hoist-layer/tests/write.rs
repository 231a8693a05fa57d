//! The writer's output format: determinism, ordering, headers, whiteout entries.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;

use hoist_layer::{write_changes, write_dir, Change, Compression, WriteOptions};

fn opts(c: Compression, epoch: Option<i64>) -> WriteOptions {
    WriteOptions {
        compression: c,
        level: None,
        source_date_epoch: epoch,
        threads: None,
    }
}

/// Re-stamp every file with a fresh mtime, as a rebuild would.
fn touch_all(root: &std::path::Path, secs: i64) {
    for rel in [
        "etc/passwd",
        "bin/su",
        "usr/lib/libc.so",
        "etc",
        "home/user/notes",
    ] {
        common::set_mtime(&root.join(rel), secs);
    }
}

#[test]
fn clamped_layers_are_byte_identical_after_touch() {
    let src = tempfile::tempdir().unwrap();
    common::build_rich_tree(src.path());
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let epoch = Some(1_500_000_000);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let ia = write_dir(src.path(), &mut a, &opts(c, epoch)).unwrap();
        touch_all(src.path(), 1_900_000_000);
        let ib = write_dir(src.path(), &mut b, &opts(c, epoch)).unwrap();
        assert_eq!(ia.digest, ib.digest, "{c:?}");
        assert_eq!(ia.diff_id, ib.diff_id, "{c:?}");
        assert_eq!(a, b, "{c:?}");
        touch_all(src.path(), 1_950_000_000);
    }
}

#[test]
fn without_clamping_a_touch_changes_the_digest() {
    let src = tempfile::tempdir().unwrap();
    common::build_rich_tree(src.path());
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let ia = write_dir(src.path(), &mut a, &opts(Compression::Gzip, None)).unwrap();
    touch_all(src.path(), 1_900_000_000);
    let ib = write_dir(src.path(), &mut b, &opts(Compression::Gzip, None)).unwrap();
    assert_ne!(ia.digest, ib.digest);
    assert_ne!(ia.diff_id, ib.diff_id);
    // An epoch later than every mtime changes nothing either.
    let mut c = Vec::new();
    let ic = write_dir(
        src.path(),
        &mut c,
        &opts(Compression::Gzip, Some(2_000_000_000)),
    )
    .unwrap();
    assert_eq!(ic.diff_id, ib.diff_id);
}

#[test]
fn gzip_header_has_no_mtime_or_name() {
    let src = tempfile::tempdir().unwrap();
    common::write(&src.path().join("f"), b"x", 0o644);
    let mut blob = Vec::new();
    write_dir(src.path(), &mut blob, &opts(Compression::Gzip, None)).unwrap();
    assert_eq!(&blob[..3], &[0x1f, 0x8b, 8]);
    assert_eq!(blob[3] & 0x08, 0, "FNAME flag must be clear");
    assert_eq!(&blob[4..8], &[0, 0, 0, 0], "MTIME must be zero");
}

/// One entry as the tar crate reads it back.
struct Row {
    path: String,
    ty: u8,
    link: String,
    size: u64,
    mode: u32,
    mtime: u64,
    uname: Vec<u8>,
    gname: Vec<u8>,
}

/// The entries, and the raw typeflags including extension headers.
struct Listed {
    entries: Vec<Row>,
    raw_types: Vec<u8>,
}

fn list(tar_bytes: &[u8]) -> Listed {
    let mut ar = tar::Archive::new(tar_bytes);
    let mut entries = Vec::new();
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        entries.push(Row {
            path: String::from_utf8(e.path_bytes().into_owned()).unwrap(),
            ty: h.entry_type().as_byte(),
            link: e
                .link_name_bytes()
                .map(|l| String::from_utf8(l.into_owned()).unwrap())
                .unwrap_or_default(),
            size: e.size(),
            mode: h.mode().unwrap(),
            mtime: h.mtime().unwrap(),
            uname: h.username_bytes().unwrap_or_default().to_vec(),
            gname: h.groupname_bytes().unwrap_or_default().to_vec(),
        });
    }
    let mut raw = tar::Archive::new(tar_bytes);
    let raw_types = raw
        .entries()
        .unwrap()
        .raw(true)
        .map(|e| e.unwrap().header().entry_type().as_byte())
        .collect();
    Listed { entries, raw_types }
}

#[test]
fn entries_are_sorted_relative_and_well_formed() {
    let src = tempfile::tempdir().unwrap();
    common::build_rich_tree(src.path());
    // A name that sorts differently bytewise and by component: `a-b` vs `a/b`.
    common::write(&src.path().join("a/b"), b"1", 0o644);
    common::write(&src.path().join("a-b"), b"2", 0o644);
    let epoch = 1_600_000_500;
    let mut blob = Vec::new();
    write_dir(src.path(), &mut blob, &opts(Compression::None, Some(epoch))).unwrap();
    let l = list(&blob);

    let paths: Vec<&str> = l.entries.iter().map(|e| e.path.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort_by(|a, b| {
        a.trim_end_matches('/')
            .split('/')
            .cmp(b.trim_end_matches('/').split('/'))
    });
    assert_eq!(paths, sorted, "component order");
    let pos = |p: &str| paths.iter().position(|x| *x == p).unwrap();
    assert!(pos("a/") < pos("a/b") && pos("a/b") < pos("a-b"));

    for Row {
        path,
        ty,
        link,
        size,
        mode,
        mtime,
        uname,
        gname,
    } in &l.entries
    {
        assert!(!path.starts_with('/') && !path.starts_with("./"), "{path}");
        assert_eq!(
            *ty == b'5',
            path.ends_with('/'),
            "{path}: dirs and only dirs end with /"
        );
        assert!(*mtime <= epoch as u64, "{path}: mtime {mtime} not clamped");
        assert!(
            uname.is_empty() && gname.is_empty(),
            "{path}: uname/gname must be empty"
        );
        if *ty == b'1' {
            assert_eq!(*size, 0);
            assert_eq!(
                link, "etc/zz-hardlink",
                "hardlinks point at the first path in order"
            );
        }
        if path == "bin/su" {
            assert_eq!(*mode, 0o4755);
        }
    }
    let hardlinks: Vec<_> = l
        .entries
        .iter()
        .filter(|e| e.ty == b'1')
        .map(|e| e.path.as_str())
        .collect();
    assert_eq!(hardlinks, vec!["usr/lib/libc.so", "usr/lib/libc.so.6"]);
    assert!(!paths.iter().any(|p| p.contains("PaxHeaders")));
    // Long names went through PAX, never GNU longname/longlink.
    assert!(l.raw_types.contains(&b'x'));
    assert!(!l.raw_types.contains(&b'L') && !l.raw_types.contains(&b'K'));
    assert!(paths.contains(&format!("long/{}", "n".repeat(200)).as_str()));
    assert!(!l.raw_types.contains(&b's'), "no sockets");
}

#[test]
fn sockets_are_skipped() {
    let src = tempfile::tempdir().unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(src.path().join("sock")).unwrap();
    common::write(&src.path().join("file"), b"x", 0o644);
    let mut blob = Vec::new();
    let info = write_dir(src.path(), &mut blob, &opts(Compression::None, None)).unwrap();
    let l = list(&blob);
    let paths: Vec<&str> = l.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, vec!["file"]);
    assert_eq!(info.entries, 1);
}

#[test]
fn xattrs_are_sorted_schily_records() {
    let src = tempfile::tempdir().unwrap();
    let f = src.path().join("f");
    common::write(&f, b"x", 0o644);
    for (k, v) in [("user.zz", "3"), ("user.aa", "1"), ("user.mm", "2")] {
        rustix::fs::lsetxattr(
            f.as_path(),
            k,
            v.as_bytes(),
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
    }
    let mut blob = Vec::new();
    write_dir(src.path(), &mut blob, &opts(Compression::None, None)).unwrap();
    let mut ar = tar::Archive::new(&blob[..]);
    let mut e = ar.entries().unwrap().next().unwrap().unwrap();
    let keys: Vec<String> = e
        .pax_extensions()
        .unwrap()
        .unwrap()
        .map(|x| x.unwrap().key().unwrap().to_owned())
        .collect();
    assert_eq!(
        keys,
        vec![
            "SCHILY.xattr.user.aa",
            "SCHILY.xattr.user.mm",
            "SCHILY.xattr.user.zz"
        ]
    );
}

#[test]
fn change_list_becomes_entries_and_whiteouts() {
    let src = tempfile::tempdir().unwrap();
    let r = src.path();
    common::write(&r.join("etc/new.conf"), b"new", 0o644);
    common::write(&r.join("var/cache/fresh"), b"f", 0o644);
    std::fs::create_dir_all(r.join("opq/inner")).unwrap();
    let changes = vec![
        Change::Modified("etc".into()),
        Change::Added("/etc/new.conf".into()),
        Change::Deleted("etc/old.conf".into()),
        Change::Deleted("gone-dir".into()),
        Change::OpaqueDir("var/cache".into()),
        Change::Added("var/cache/fresh".into()),
        Change::OpaqueDir("opq".into()),
        Change::Added("opq/inner".into()),
    ];
    let mut blob = Vec::new();
    let info = write_changes(r, &changes, &mut blob, &opts(Compression::None, Some(0))).unwrap();
    let l = list(&blob);
    let got: Vec<(&str, u8, u64, u32)> = l
        .entries
        .iter()
        .map(|e| (e.path.as_str(), e.ty, e.size, e.mode))
        .collect();
    assert_eq!(
        got,
        vec![
            (".wh.gone-dir", b'0', 0, 0),
            ("etc/", b'5', 0, 0o755),
            ("etc/.wh.old.conf", b'0', 0, 0),
            ("etc/new.conf", b'0', 3, 0o644),
            ("opq/", b'5', 0, 0o755),
            ("opq/.wh..wh..opq", b'0', 0, 0),
            ("opq/inner/", b'5', 0, 0o755),
            ("var/cache/", b'5', 0, 0o755),
            ("var/cache/.wh..wh..opq", b'0', 0, 0),
            ("var/cache/fresh", b'0', 1, 0o644),
        ]
    );
    assert_eq!(info.entries, 10);
    assert_eq!(info.media_type, "application/vnd.oci.image.layer.v1.tar");
}

#[test]
fn change_list_refuses_dotdot_and_missing_paths() {
    let src = tempfile::tempdir().unwrap();
    let bad = [Change::Added("../etc/passwd".into())];
    let err = write_changes(src.path(), &bad, Vec::new(), &WriteOptions::default()).unwrap_err();
    assert!(
        matches!(err, hoist_layer::WriteError::InvalidChange { .. }),
        "{err}"
    );
    let missing = [Change::Modified("nope".into())];
    let err =
        write_changes(src.path(), &missing, Vec::new(), &WriteOptions::default()).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn change_list_never_reads_through_planted_symlinks() {
    // A build step planted `escape -> /etc`; the builder lists `escape/hostname`.
    let src = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/etc", src.path().join("escape")).unwrap();
    std::fs::create_dir(src.path().join("etc")).unwrap();
    common::write(&src.path().join("etc/hostname"), b"inside-root", 0o644);
    let changes = [Change::Added("escape/hostname".into())];
    let mut blob = Vec::new();
    write_changes(
        src.path(),
        &changes,
        &mut blob,
        &opts(Compression::None, None),
    )
    .unwrap();
    let mut ar = tar::Archive::new(&blob[..]);
    let mut e = ar.entries().unwrap().next().unwrap().unwrap();
    let mut content = Vec::new();
    e.read_to_end(&mut content).unwrap();
    assert_eq!(
        content, b"inside-root",
        "resolved inside the root, not the host /etc"
    );
}

#[test]
fn writes_to_any_writer_and_reports_sizes() {
    let src = tempfile::tempdir().unwrap();
    common::write(&src.path().join("f"), &vec![0u8; 1 << 20], 0o644);
    let out = tempfile::NamedTempFile::new().unwrap();
    let info = write_dir(src.path(), out.as_file(), &opts(Compression::Zstd, None)).unwrap();
    let bytes = std::fs::read(out.path()).unwrap();
    assert_eq!(info.size, bytes.len() as u64);
    assert!(info.size < info.uncompressed_size / 10, "zeros compress");
    assert_eq!(
        info.media_type,
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
}
