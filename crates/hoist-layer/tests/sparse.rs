//! A GNU sparse entry claims a size unbounded by the bytes in the stream; applying it
//! would write that many zeros. It is refused, and nothing is written.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::process::Command;

use hoist_layer::{apply_layer, ApplyError, ApplyOptions, ReadError};

#[test]
fn gnu_sparse_entries_are_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    // 64 MiB of hole and a few bytes of data: a tar of a few KiB.
    let big = fs::File::create(src.join("big")).unwrap();
    big.set_len(64 << 20).unwrap();
    drop(big);
    fs::write(src.join("small"), b"ok").unwrap();
    let tar = dir.path().join("sparse.tar");
    let out = Command::new("tar")
        .args(["--sparse", "--format=gnu", "-C"])
        .arg(&src)
        .args(["-cf"])
        .arg(&tar)
        .args(["big", "small"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        fs::metadata(&tar).unwrap().len() < 64 << 10,
        "tar did not make a sparse entry"
    );
    let target = dir.path().join("target");
    fs::create_dir(&target).unwrap();
    let err = apply_layer(
        fs::File::open(&tar).unwrap(),
        &target,
        &ApplyOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, ApplyError::Read(ReadError::Unsupported { ref path, .. }) if path == "big"),
        "{err:?}"
    );
    assert!(err.to_string().contains("sparse"), "{err}");
    assert!(!target.join("big").exists());
}
