//! `hoist_layer::apply_layer` on arbitrary bytes (plain, gzip or zstd tar).
//!
//! Each run applies into a fresh `target` directory that is the only entry of a
//! fresh sentinel directory. Afterwards the sentinel must still hold exactly
//! `target`, `target` must still be a real directory, and the host canary
//! (`/tmp/hoist-fuzz-canary`, which the structure-aware seeds link and write
//! through) must be untouched. Errors are fine; panics are not.
#![no_main]

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::OnceLock;

use hoist_layer::{apply_layer, ApplyOptions};
use libfuzzer_sys::fuzz_target;

/// Host paths outside every target that the seeds aim at.
const CANARY_DIR: &str = "/tmp/hoist-fuzz-canary";

#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    host: (u64, u32, u64, u32, u32, i64, i64, Vec<u8>),
    dir_entries: Vec<String>,
    hostdir_entries: Vec<String>,
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    v.sort();
    v
}

fn snapshot() -> Snapshot {
    let dir = Path::new(CANARY_DIR);
    let host = dir.join("host");
    let m = fs::symlink_metadata(&host).expect("canary host file");
    Snapshot {
        host: (
            m.ino(),
            m.mode(),
            m.nlink(),
            m.uid(),
            m.gid(),
            m.mtime(),
            m.ctime(),
            fs::read(&host).expect("read canary"),
        ),
        dir_entries: names(dir),
        hostdir_entries: names(&dir.join("hostdir")),
    }
}

fn canary() -> &'static Snapshot {
    static CANARY: OnceLock<Snapshot> = OnceLock::new();
    CANARY.get_or_init(|| {
        let dir = Path::new(CANARY_DIR);
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(dir.join("hostdir")).expect("create canary dir");
        fs::write(dir.join("host"), b"canary\n").expect("write canary");
        snapshot()
    })
}

fuzz_target!(|data: &[u8]| {
    let before = canary();
    let sentinel = tempfile::Builder::new()
        .prefix("hoist-fuzz-sentinel.")
        .tempdir()
        .expect("sentinel temp dir");
    let target = sentinel.path().join("target");
    fs::create_dir(&target).expect("target dir");

    let result = apply_layer(data, &target, &ApplyOptions::default());
    if let Ok(report) = &result {
        for p in report.applied.iter().chain(&report.whiteouts) {
            assert!(p.is_relative(), "absolute path in report: {p:?}");
        }
    }

    assert_eq!(
        names(sentinel.path()),
        vec!["target".to_owned()],
        "something was created next to the target; result {result:?}"
    );
    let meta = fs::symlink_metadata(&target).expect("target still exists");
    assert!(
        meta.file_type().is_dir(),
        "target was replaced by {:?}",
        meta.file_type()
    );
    assert_eq!(
        &snapshot(),
        before,
        "host canary changed; result {result:?}"
    );
    // Drop removes the tree; as root nothing in it can block that.
    sentinel.close().expect("remove sentinel");
});
