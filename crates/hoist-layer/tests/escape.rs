//! Hostile layers: nothing may be written, linked or deleted outside the target.
//!
//! Each test applies into `sentinel/root`; afterwards `sentinel` must hold only
//! `root`, and the host paths the archive aimed at must be unchanged or absent.
//! The outcome is either a clean error or the entry landing inside the root.
//!
//! The host paths aimed at are files these tests own (under `/tmp/<unique tag>` or
//! beside the root) or are only ever linked to, never written: a regression must
//! fail a test, not damage the machine running it.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use hoist_layer::{apply_layer, ApplyError, ApplyOptions, ReadError};

struct Arena {
    sentinel: tempfile::TempDir,
    /// A unique name for host paths the archive aims at.
    tag: String,
}

static N: AtomicU32 = AtomicU32::new(0);

impl Arena {
    fn new() -> Arena {
        let sentinel = tempfile::tempdir().unwrap();
        fs::create_dir(sentinel.path().join("root")).unwrap();
        let tag = format!(
            "hoist-escape-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        Arena { sentinel, tag }
    }
    fn root(&self) -> PathBuf {
        self.sentinel.path().join("root")
    }
    fn apply(&self, tar: &[u8]) -> Result<hoist_layer::ApplyReport, ApplyError> {
        apply_layer(tar, &self.root(), &ApplyOptions::default())
    }
    /// The invariant every test ends with.
    fn assert_contained(&self) {
        assert_eq!(
            common::names(self.sentinel.path()),
            vec!["root"],
            "wrote beside the root"
        );
        for host in [Path::new("/tmp"), Path::new("/")] {
            assert!(
                !host.join(&self.tag).exists(),
                "wrote {}",
                host.join(&self.tag).display()
            );
        }
    }
}

fn is_unsafe_path(r: &Result<hoist_layer::ApplyReport, ApplyError>) -> bool {
    matches!(r, Err(ApplyError::Read(ReadError::UnsafePath { .. })))
}

#[test]
fn dotdot_entry_is_refused() {
    let a = Arena::new();
    for name in ["../evil", "a/../../evil", "./../evil", "/../evil"] {
        let mut t = common::RawTar::new();
        t.file(name, b"evil");
        let r = a.apply(&t.finish());
        assert!(is_unsafe_path(&r), "{name}: {r:?}");
        let msg = r.unwrap_err().to_string();
        assert!(
            msg.contains("evil") && msg.contains(".."),
            "error names the entry: {msg}"
        );
    }
    assert!(!a.sentinel.path().join("evil").exists());
    a.assert_contained();
}

#[test]
fn absolute_entry_is_stripped_into_root() {
    let a = Arena::new();
    let mut t = common::RawTar::new();
    t.file(&format!("/tmp/{}", a.tag), b"abs");
    a.apply(&t.finish()).unwrap();
    assert_eq!(fs::read(a.root().join("tmp").join(&a.tag)).unwrap(), b"abs");
    a.assert_contained();
}

#[test]
fn symlink_to_root_then_write_through_it_stays_inside() {
    let a = Arena::new();
    let mut t = common::RawTar::new();
    t.symlink("link", "/")
        .file(&format!("link/tmp/{}", a.tag), b"through link");
    a.apply(&t.finish()).unwrap();
    assert_eq!(
        fs::read(a.root().join("tmp").join(&a.tag)).unwrap(),
        b"through link",
        "landed at ROOT/tmp"
    );
    assert_eq!(
        fs::read_link(a.root().join("link")).unwrap(),
        Path::new("/"),
        "symlink kept as-is"
    );
    a.assert_contained();
}

#[test]
fn relative_symlink_pointing_out_stays_inside() {
    let a = Arena::new();
    let mut t = common::RawTar::new();
    t.symlink("up", "../../..")
        .file(&format!("up/{}", a.tag), b"up")
        .dir("tmp/")
        .symlink("d/deeper", "../../../../../tmp")
        .file(&format!("d/deeper/{}", a.tag), b"deeper");
    a.apply(&t.finish()).unwrap();
    // Without ROOT/tmp the same link dangles inside the root: a clean error, and
    // no fallback to the host's /tmp.
    let b = Arena::new();
    let mut t = common::RawTar::new();
    t.symlink("d/deeper", "../../../../../tmp")
        .file(&format!("d/deeper/{}", b.tag), b"deeper");
    let r = b.apply(&t.finish());
    assert!(matches!(r, Err(ApplyError::ParentNotDir { .. })), "{r:?}");
    b.assert_contained();
    assert_eq!(fs::read(a.root().join(&a.tag)).unwrap(), b"up");
    assert_eq!(
        fs::read(a.root().join("tmp").join(&a.tag)).unwrap(),
        b"deeper"
    );
    a.assert_contained();
}

#[test]
fn chained_and_magic_symlinks_stay_inside() {
    let a = Arena::new();
    let mut t = common::RawTar::new();
    t.symlink("one", "two")
        .symlink("two", "/three/..//../")
        .file(&format!("one/{}", a.tag), b"chain")
        .symlink("p", "/proc/self/root")
        .file(&format!("p/tmp/{}", a.tag), b"magic");
    let r = a.apply(&t.finish());
    // Either contained or refused; the host must not see it.
    if r.is_ok() {
        assert_eq!(fs::read(a.root().join(&a.tag)).unwrap(), b"chain");
    }
    a.assert_contained();
    assert!(!Path::new("/proc/self/root/tmp").join(&a.tag).exists());
}

#[test]
fn hardlink_to_host_path_is_refused_or_resolved_in_root() {
    let host = Path::new("/etc/hostname");
    let host_before = fs::metadata(host).ok().map(|m| (m.ino(), m.nlink()));

    // Absolute target: resolved in root, where it does not exist.
    let a = Arena::new();
    let mut t = common::RawTar::new();
    t.hardlink("hl", "/etc/hostname");
    let r = a.apply(&t.finish());
    assert!(matches!(r, Err(ApplyError::LinkTarget { .. })), "{r:?}");
    assert!(!a.root().join("hl").exists());
    a.assert_contained();

    // `..` target: refused before touching anything.
    let mut t = common::RawTar::new();
    t.hardlink("hl2", "../../etc/hostname");
    assert!(is_unsafe_path(&a.apply(&t.finish())));

    // Through a symlink to `/`: still resolved in root.
    let mut t = common::RawTar::new();
    t.symlink("rootlink", "/")
        .hardlink("hl3", "rootlink/etc/hostname");
    let r = a.apply(&t.finish());
    assert!(matches!(r, Err(ApplyError::LinkTarget { .. })), "{r:?}");

    // With ROOT/etc/hostname present, the link goes to that file, not the host's.
    let mut t = common::RawTar::new();
    t.file("etc/hostname", b"container")
        .hardlink("hl4", "/etc/hostname")
        .hardlink("hl5", "rootlink/etc/hostname");
    a.apply(&t.finish()).unwrap();
    let inner = fs::metadata(a.root().join("etc/hostname")).unwrap().ino();
    assert_eq!(fs::metadata(a.root().join("hl4")).unwrap().ino(), inner);
    assert_eq!(fs::metadata(a.root().join("hl5")).unwrap().ino(), inner);
    a.assert_contained();

    let host_after = fs::metadata(host).ok().map(|m| (m.ino(), m.nlink()));
    assert_eq!(host_before, host_after, "host file gained no links");
}

#[test]
fn hardlink_to_a_symlink_links_the_symlink_not_its_target() {
    let a = Arena::new();
    let mut t = common::RawTar::new();
    t.symlink("s", "/etc/passwd").hardlink("hl", "s");
    a.apply(&t.finish()).unwrap();
    let md = fs::symlink_metadata(a.root().join("hl")).unwrap();
    assert!(md.file_type().is_symlink());
    a.assert_contained();
}

#[test]
fn file_over_an_existing_symlink_replaces_the_symlink() {
    let a = Arena::new();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    fs::write(&victim, b"host content").unwrap();
    let victim_dir = outside.path().join("victim-dir");
    fs::create_dir(&victim_dir).unwrap();
    common::chmod(&victim_dir, 0o755);
    let mut t = common::RawTar::new();
    t.symlink("f", victim.to_str().unwrap())
        .file("f", b"overwritten?")
        .symlink("d", victim_dir.to_str().unwrap())
        .entry("d/", b'5', "", b"", 0o700);
    a.apply(&t.finish()).unwrap();
    assert_eq!(
        fs::read(&victim).unwrap(),
        b"host content",
        "host file untouched"
    );
    assert!(fs::symlink_metadata(a.root().join("f")).unwrap().is_file());
    assert!(fs::symlink_metadata(a.root().join("d")).unwrap().is_dir());
    assert_eq!(
        fs::metadata(&victim_dir).unwrap().mode() & 0o7777,
        0o755,
        "host dir mode untouched"
    );
    a.assert_contained();
}

#[test]
fn whiteout_through_a_symlink_deletes_inside_only() {
    let a = Arena::new();
    // Host files the archive tries to delete: one beside the root, one in /tmp.
    let victim = a.sentinel.path().join("victim");
    fs::write(&victim, b"v").unwrap();
    let tmp_victim = Path::new("/tmp").join(format!("{}-victim", a.tag));
    fs::write(&tmp_victim, b"v").unwrap();
    let mut t = common::RawTar::new();
    t.symlink("link", "/")
        .symlink("up", "..")
        .file(&format!("tmp/{}-victim", a.tag), b"inner");
    a.apply(&t.finish()).unwrap();
    let mut t = common::RawTar::new();
    t.file(&format!("link/tmp/.wh.{}-victim", a.tag), b"")
        .file("up/.wh.victim", b"");
    a.apply(&t.finish()).unwrap();
    let inner_gone = !a
        .root()
        .join("tmp")
        .join(format!("{}-victim", a.tag))
        .exists();
    let host_kept = tmp_victim.exists() && victim.exists();
    fs::remove_file(&tmp_victim).ok();
    assert!(
        host_kept,
        "host files survive whiteouts aimed through symlinks"
    );
    assert!(inner_gone, "whiteout applied inside the root");
    // An opaque marker below a symlink is refused, and nothing is pruned anywhere.
    let mut t = common::RawTar::new();
    t.file("link/.wh..wh..opq", b"");
    let r = a.apply(&t.finish());
    assert!(matches!(r, Err(ApplyError::ParentNotDir { .. })), "{r:?}");
    assert!(a.root().join("tmp").is_dir() && a.root().join("up").exists());
    assert!(victim.exists());
    fs::remove_file(&victim).unwrap();
    a.assert_contained();
}

#[test]
fn symlink_swapped_in_for_a_parent_is_followed_inside_only() {
    // Directory `d` is replaced by a symlink to `/` halfway, then written through.
    let a = Arena::new();
    let mut t = common::RawTar::new();
    t.dir("d/")
        .file("d/x", b"1")
        .symlink("d", "/")
        .file(&format!("d/tmp/{}", a.tag), b"2")
        .hardlink(&format!("d/{}", a.tag), &format!("d/tmp/{}", a.tag));
    a.apply(&t.finish()).unwrap();
    assert_eq!(fs::read(a.root().join("tmp").join(&a.tag)).unwrap(), b"2");
    assert!(a.root().join(&a.tag).exists());
    a.assert_contained();
}

#[test]
fn parent_that_is_a_file_or_dangling_link_is_a_clean_error() {
    let a = Arena::new();
    let mut t = common::RawTar::new();
    t.file("f", b"").file("f/child", b"");
    let r = a.apply(&t.finish());
    assert!(matches!(r, Err(ApplyError::ParentNotDir { .. })), "{r:?}");
    let mut t = common::RawTar::new();
    t.symlink("dangle", &format!("/nonexistent-{}", a.tag))
        .file("dangle/child", b"");
    let r = a.apply(&t.finish());
    assert!(matches!(r, Err(ApplyError::ParentNotDir { .. })), "{r:?}");
    assert!(!Path::new("/")
        .join(format!("nonexistent-{}", a.tag))
        .exists());
    a.assert_contained();
}

#[test]
fn nul_and_empty_link_targets_are_refused() {
    let a = Arena::new();
    let mut t = common::RawTar::new();
    t.symlink("s", "");
    assert!(is_unsafe_path(&a.apply(&t.finish())));
    let mut t = common::RawTar::new();
    t.hardlink("h", "/");
    assert!(is_unsafe_path(&a.apply(&t.finish())));
    a.assert_contained();
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A small deterministic fuzz: mutate a valid layer and apply each variant.
    let a = Arena::new();
    let mut t = common::RawTar::new();
    t.dir("a/")
        .file("a/f", b"hello")
        .symlink("a/s", "/")
        .hardlink("a/h", "a/f")
        .file("a/.wh.x", b"")
        .file(&format!("a/s/tmp/{}", a.tag), b"y");
    let base = t.finish();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..300 {
        let mut bytes = base.clone();
        for _ in 0..4 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let i = (seed as usize) % bytes.len();
            bytes[i] = (seed >> 32) as u8;
        }
        let _ = a.apply(&bytes);
    }
    a.assert_contained();
}
