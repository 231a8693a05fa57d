//! Listing a layer's entries without applying it (the scanner's view).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::path::PathBuf;

use hoist_layer::{
    write_changes, Change, Compression, EntryKind, LayerReader, ReadError, Whiteout, WriteOptions,
};

#[test]
fn entries_carry_kind_size_mode_and_whiteout_meaning() {
    let src = tempfile::tempdir().unwrap();
    let r = src.path();
    common::write(&r.join("bin/tool"), b"#!/bin/sh\n", 0o4755);
    std::os::unix::fs::symlink("tool", r.join("bin/alias")).unwrap();
    std::fs::hard_link(r.join("bin/tool"), r.join("bin/tool2")).unwrap();
    let changes = vec![
        Change::Added("bin".into()),
        Change::Added("bin/tool".into()),
        Change::Added("bin/alias".into()),
        Change::Added("bin/tool2".into()),
        Change::Deleted("bin/old".into()),
        Change::OpaqueDir("bin".into()),
    ];
    let mut blob = Vec::new();
    let info = write_changes(
        r,
        &changes,
        &mut blob,
        &WriteOptions {
            compression: Compression::Gzip,
            ..WriteOptions::default()
        },
    )
    .unwrap();

    let mut layer = LayerReader::new(&blob[..]).unwrap();
    assert_eq!(layer.compression(), Compression::Gzip);
    let mut seen = Vec::new();
    for e in layer.entries().unwrap() {
        let mut e = e.unwrap();
        let i = e.info().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        assert_eq!(data.len() as u64, i.size);
        seen.push((i.path, i.kind, i.size, i.mode, i.link_target, i.whiteout));
    }
    let p = PathBuf::from;
    assert_eq!(
        seen,
        vec![
            (p("bin"), EntryKind::Dir, 0, 0o755, None, None),
            (
                p("bin/.wh..wh..opq"),
                EntryKind::File,
                0,
                0,
                None,
                Some(Whiteout::Opaque(p("bin")))
            ),
            (
                p("bin/.wh.old"),
                EntryKind::File,
                0,
                0,
                None,
                Some(Whiteout::Remove(p("bin/old")))
            ),
            (
                p("bin/alias"),
                EntryKind::Symlink,
                0,
                0o777,
                Some(p("tool")),
                None
            ),
            (p("bin/tool"), EntryKind::File, 10, 0o4755, None, None),
            (
                p("bin/tool2"),
                EntryKind::Hardlink,
                0,
                0o4755,
                Some(p("bin/tool")),
                None
            ),
        ]
    );
    let (diff_id, size) = layer.finish().unwrap();
    assert_eq!(diff_id, info.diff_id);
    assert_eq!(size, info.uncompressed_size);
}

#[test]
fn a_refused_entry_does_not_stop_the_listing() {
    let mut t = common::RawTar::new();
    t.file("ok1", b"1").file("../bad", b"2").file("ok2", b"3");
    let bytes = t.finish();
    let mut layer = LayerReader::new(&bytes[..]).unwrap();
    let results: Vec<_> = layer.entries().unwrap().collect();
    assert_eq!(results.len(), 3);
    assert_eq!(
        results[0].as_ref().unwrap().info().path,
        PathBuf::from("ok1")
    );
    assert!(matches!(results[1], Err(ReadError::UnsafePath { .. })));
    assert_eq!(
        results[2].as_ref().unwrap().info().path,
        PathBuf::from("ok2")
    );
}
