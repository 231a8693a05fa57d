//! `MergedView` against a real overlay mount of the same lowerdirs: what exists,
//! what `read_dir` lists, and where symlinks resolve (absolute, relative, `..`
//! escaping the root, loops, through whiteouts). And `PlainDir` never looking
//! outside its root.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use common::{assert_same, host_tree, view_tree, Mount};
use hoist_snapshot::{MergedView, PlainDir, Tree};
use rustix::fs::{Mode, OFlags, ResolveFlags};

/// Two lowerdirs in overlay form, built by hand (top, base).
fn layers(tmp: &Path) -> (PathBuf, PathBuf) {
    let b = tmp.join("base");
    common::write(&b.join("etc/hosts"), b"127.0.0.1 localhost\n", 0o644);
    common::write(&b.join("etc/conf/a.conf"), b"a=1\n", 0o644);
    common::symlink("/etc", &b.join("abs"));
    common::symlink("etc/hosts", &b.join("rel"));
    common::symlink("../../../../etc", &b.join("up"));
    common::symlink("../../../etc/conf/a.conf", &b.join("a/b/c/deep"));
    common::symlink("loop2", &b.join("loop1"));
    common::symlink("loop1", &b.join("loop2"));
    common::symlink("/nope", &b.join("dangling"));
    common::symlink("abs", &b.join("chain"));
    common::symlink("a/b", &b.join("dirlink"));
    common::write(&b.join("hidden/x"), b"x", 0o644);
    common::write(&b.join("willbegone"), b"soon gone", 0o644);
    common::write(&b.join("opq/old"), b"old", 0o644);
    common::write(
        &b.join("fod/child"),
        b"under a dir that becomes a file",
        0o644,
    );
    common::write(&b.join("gonedir/inner"), b"i", 0o644);
    common::fix_mtimes(&b, 1_500_000_000);

    let t = tmp.join("top");
    fs::create_dir_all(&t).unwrap();
    mknod_whiteout(&t.join("willbegone"));
    mknod_whiteout(&t.join("gonedir"));
    common::write(&t.join("opq/new"), b"new", 0o644);
    rustix::fs::lsetxattr(
        t.join("opq"),
        "trusted.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    common::write(&t.join("hidden/y"), b"y", 0o600);
    common::symlink("/hidden/../etc/hosts", &t.join("abs2"));
    common::write(&t.join("etc/top.conf"), b"top\n", 0o644);
    common::symlink("/willbegone", &t.join("link_to_whiteout"));
    common::write(&t.join("fod"), b"a file over a lower dir", 0o644);
    // A whiteout for something no lower layer has: still invisible.
    mknod_whiteout(&t.join("never-existed"));
    common::fix_mtimes(&t, 1_600_000_000);
    (t, b)
}

fn mknod_whiteout(p: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        p,
        rustix::fs::FileType::CharacterDevice,
        Mode::empty(),
        rustix::fs::makedev(0, 0),
    )
    .unwrap();
}

/// Where the kernel resolves `path` inside the mount, with the mount as `/`.
fn kernel_resolve(mount: &Path, path: &str) -> io::Result<Option<PathBuf>> {
    let root = rustix::fs::open(mount, OFlags::PATH | OFlags::DIRECTORY, Mode::empty())?;
    let p = if path.is_empty() { "." } else { path };
    match rustix::fs::openat2(
        &root,
        p,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT,
    ) {
        Ok(fd) => {
            let real = fs::read_link(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&fd)
            ))?;
            Ok(Some(real.strip_prefix(mount).unwrap().to_owned()))
        }
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

const QUERIES: &[&str] = &[
    "",
    "/",
    "etc/hosts",
    "/etc/hosts",
    "abs",
    "abs/hosts",
    "abs/conf/a.conf",
    "rel",
    "up",
    "up/hosts",
    "a/b/c/deep",
    "dirlink/c/deep",
    "dirlink/../b/c/deep",
    "dirlink/../../etc/top.conf",
    "chain/hosts",
    "chain/top.conf",
    "abs2",
    "loop1",
    "loop2/x",
    "dangling",
    "dangling/x",
    "link_to_whiteout",
    "willbegone",
    "gonedir",
    "gonedir/inner",
    "never-existed",
    "opq/old",
    "opq/new",
    "hidden/x",
    "hidden/y",
    "fod",
    "fod/child",
    "rel/x",
    "../../etc/hosts",
    "etc/../../../etc/conf/../hosts",
    "nothing/here",
];

#[test]
fn merged_view_matches_an_overlay_mount() {
    assert!(common::is_root(), "this test mounts overlayfs: run as root");
    let tmp = tempfile::tempdir().unwrap();
    let (top, base) = layers(tmp.path());
    let merged = tmp.path().join("merged");
    fs::create_dir(&merged).unwrap();
    let view = MergedView::new(vec![top.clone(), base.clone()]);
    let _m = Mount::overlay(&[&top, &base], None, &merged);

    // Everything visible, with read_dir and lstat.
    assert_same(
        "MergedView vs mount",
        &view_tree(&view),
        &host_tree(&merged),
    );

    for q in QUERIES {
        let want = kernel_resolve(&merged, q);
        let got = view.resolve(Path::new(q));
        match (&want, &got) {
            (Ok(w), Ok(g)) => assert_eq!(g, w, "resolve({q:?})"),
            (Err(w), Err(g)) => assert_eq!(
                w.raw_os_error(),
                g.raw_os_error(),
                "resolve({q:?}): {w} vs {g}"
            ),
            _ => panic!("resolve({q:?}): kernel {want:?}, view {got:?}"),
        }
    }
    // Spot checks, so the comparison above cannot pass by both being wrong alike.
    assert_eq!(
        view.resolve(Path::new("up/hosts")).unwrap(),
        Some(PathBuf::from("etc/hosts"))
    );
    assert_eq!(
        view.resolve(Path::new("a/b/c/deep")).unwrap(),
        Some(PathBuf::from("etc/conf/a.conf"))
    );
    assert_eq!(view.resolve(Path::new("link_to_whiteout")).unwrap(), None);
    assert_eq!(
        view.resolve(Path::new("loop1")).unwrap_err().raw_os_error(),
        Some(40)
    );

    // lstat: absent for whited-out, hidden and below-a-file paths; the top-most
    // object's host path otherwise.
    for absent in [
        "willbegone",
        "gonedir",
        "gonedir/inner",
        "never-existed",
        "opq/old",
        "fod/child",
        "abs/hosts",
    ] {
        assert!(view.lstat(Path::new(absent)).unwrap().is_none(), "{absent}");
    }
    let n = view.lstat(Path::new("/hidden/x")).unwrap().unwrap();
    assert_eq!(n.host_path, base.join("hidden/x"));
    let n = view.lstat(Path::new("hidden")).unwrap().unwrap();
    assert_eq!(n.host_path, top.join("hidden"));
    assert!(view
        .lstat(Path::new("abs"))
        .unwrap()
        .unwrap()
        .metadata
        .is_symlink());
    let names: Vec<_> = view
        .read_dir(Path::new("hidden"))
        .unwrap()
        .into_iter()
        .map(|n| n.as_bytes().to_vec())
        .collect();
    assert_eq!(names, vec![b"x".to_vec(), b"y".to_vec()]);
    assert_eq!(
        view.read_dir(Path::new("fod")).unwrap_err().kind(),
        io::ErrorKind::NotADirectory
    );
    assert_eq!(
        view.read_dir(Path::new("gonedir")).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
}

#[test]
fn plain_dir_stays_inside_its_root() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, base) = layers(tmp.path());
    // A host file next to the root, that `..` or an absolute link might reach.
    fs::write(tmp.path().join("outside"), b"host").unwrap();
    common::symlink("../outside", &base.join("esc"));
    common::symlink("/tmp", &base.join("host-tmp"));
    let tree = PlainDir::new(base.clone());

    assert!(
        tree.lstat(Path::new("abs/hosts")).unwrap().is_none(),
        "no lookup through a symlink"
    );
    assert!(tree.lstat(Path::new("host-tmp/x")).unwrap().is_none());
    assert!(tree.read_dir(Path::new("abs")).is_err());
    assert!(tree.read_dir(Path::new("host-tmp")).is_err());
    assert!(
        tree.lstat(Path::new("../outside")).unwrap().is_none(),
        "`..` clamps at the root"
    );
    assert_eq!(
        tree.resolve(Path::new("esc")).unwrap(),
        None,
        "../outside resolves to /outside in the tree, which is missing"
    );
    assert_eq!(
        tree.resolve(Path::new("up/hosts")).unwrap(),
        Some(PathBuf::from("etc/hosts"))
    );
    assert_eq!(
        tree.resolve(Path::new("host-tmp")).unwrap(),
        None,
        "/tmp inside the tree does not exist"
    );
    assert_eq!(
        tree.resolve(Path::new("chain/conf/a.conf")).unwrap(),
        Some(PathBuf::from("etc/conf/a.conf"))
    );
    assert_eq!(
        tree.resolve(Path::new("loop1")).unwrap_err().raw_os_error(),
        Some(40)
    );
    let n = tree.lstat(Path::new("/etc/conf/a.conf")).unwrap().unwrap();
    assert_eq!(n.host_path, base.join("etc/conf/a.conf"));
    assert!(n.metadata.is_file());
    assert!(tree
        .lstat(Path::new("rel"))
        .unwrap()
        .unwrap()
        .metadata
        .is_symlink());
    assert!(tree.lstat(Path::new("rel/x")).unwrap().is_none());
    // A PlainDir knows nothing of whiteouts: the same tree as a host walk.
    assert_same(
        "PlainDir vs host walk",
        &view_tree(&tree),
        &host_tree(&base),
    );
}
