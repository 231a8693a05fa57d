//! Helpers shared by the integration tests: tree descriptions (from a host
//! directory or through a `Tree`), overlay mounts that unmount on drop, layer
//! fixtures.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use hoist_layer::{apply_layer, write_dir, ApplyOptions, LayerInfo, WriteOptions};
use hoist_snapshot::Tree;

/// Everything compared about one visible object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Obj {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds only: layers do not carry nanoseconds.
    pub mtime: i64,
    pub content: Vec<u8>,
    pub link: Option<Vec<u8>>,
    pub rdev: u64,
    /// `user.*` xattrs, sorted.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// The first path (in sorted order) sharing this inode, if not itself.
    pub same_inode_as: Option<String>,
}

fn kind_of(ft: fs::FileType) -> &'static str {
    if ft.is_dir() {
        "dir"
    } else if ft.is_symlink() {
        "symlink"
    } else if ft.is_file() {
        "file"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_char_device() {
        "char"
    } else if ft.is_block_device() {
        "block"
    } else {
        "other"
    }
}

pub fn user_xattrs(p: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut names = vec![0u8; 65536];
    let Ok(n) = rustix::fs::llistxattr(p, &mut names[..]) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in names[..n]
        .split(|&b| b == 0)
        .filter(|n| n.starts_with(b"user."))
    {
        let mut v = vec![0u8; 65536];
        let len = rustix::fs::lgetxattr(p, name, &mut v[..]).unwrap();
        out.push((name.to_vec(), v[..len].to_vec()));
    }
    out.sort();
    out
}

fn obj(host: &Path, md: &fs::Metadata) -> Obj {
    let ft = md.file_type();
    Obj {
        kind: kind_of(ft),
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        mtime: md.mtime(),
        content: if ft.is_file() {
            fs::read(host).unwrap()
        } else {
            Vec::new()
        },
        link: ft
            .is_symlink()
            .then(|| fs::read_link(host).unwrap().as_os_str().as_bytes().to_vec()),
        rdev: md.rdev(),
        xattrs: user_xattrs(host),
        same_inode_as: None,
    }
}

/// Fill `same_inode_as` from (ino, nlink) gathered per path.
fn link_groups(out: &mut BTreeMap<String, Obj>, inos: &BTreeMap<String, (u64, u64, bool)>) {
    let mut first: HashMap<u64, String> = HashMap::new();
    for (path, &(ino, nlink, is_dir)) in inos {
        if is_dir || nlink < 2 {
            continue;
        }
        match first.get(&ino) {
            Some(f) => out.get_mut(path).unwrap().same_inode_as = Some(f.clone()),
            None => {
                first.insert(ino, path.clone());
            }
        }
    }
}

/// A host directory (root excluded), walked without following symlinks.
pub fn host_tree(root: &Path) -> BTreeMap<String, Obj> {
    let mut out = BTreeMap::new();
    let mut inos = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in fs::read_dir(root.join(&rel)).unwrap() {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            let host = root.join(&r);
            let md = fs::symlink_metadata(&host).unwrap();
            if md.is_dir() {
                stack.push(r.clone());
            }
            let key = r.to_string_lossy().into_owned();
            inos.insert(key.clone(), (md.ino(), md.nlink(), md.is_dir()));
            out.insert(key, obj(&host, &md));
        }
    }
    link_groups(&mut out, &inos);
    out
}

/// The same description through a `Tree`'s `read_dir` and `lstat` only.
pub fn view_tree(tree: &dyn Tree) -> BTreeMap<String, Obj> {
    let mut out = BTreeMap::new();
    let mut inos = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let names = tree.read_dir(&rel).unwrap();
        let mut sorted = names.clone();
        sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        assert_eq!(names, sorted, "read_dir({rel:?}) is sorted");
        for name in names {
            let r = rel.join(&name);
            let node = tree
                .lstat(&r)
                .unwrap()
                .unwrap_or_else(|| panic!("{r:?} listed but lstat says absent"));
            if node.metadata.is_dir() {
                stack.push(r.clone());
            }
            let key = r.to_string_lossy().into_owned();
            inos.insert(
                key.clone(),
                (
                    node.metadata.ino(),
                    node.metadata.nlink(),
                    node.metadata.is_dir(),
                ),
            );
            out.insert(key, obj(&node.host_path, &node.metadata));
        }
    }
    link_groups(&mut out, &inos);
    out
}

/// Assert two tree descriptions are equal, showing the first difference.
pub fn assert_same(what: &str, got: &BTreeMap<String, Obj>, want: &BTreeMap<String, Obj>) {
    let keys_got: Vec<_> = got.keys().collect();
    let keys_want: Vec<_> = want.keys().collect();
    assert_eq!(keys_got, keys_want, "{what}: paths differ");
    for (k, w) in want {
        assert_eq!(&got[k], w, "{what}: {k} differs");
    }
}

/// An overlay mount, unmounted on drop.
pub struct Mount {
    pub target: PathBuf,
}

impl Mount {
    /// `lowers` top-most first; with `upper_work`, a read-write mount.
    pub fn overlay(lowers: &[&Path], upper_work: Option<(&Path, &Path)>, target: &Path) -> Mount {
        let lowerdir: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
        let mut opts = format!("lowerdir={}", lowerdir.join(":"));
        if let Some((u, w)) = upper_work {
            opts.push_str(&format!(
                ",upperdir={},workdir={}",
                u.display(),
                w.display()
            ));
        }
        let out = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &opts])
            .arg(target)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount -o {opts} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Mount {
            target: target.to_owned(),
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.target).status();
    }
}

pub fn write(p: &Path, content: &[u8], mode: u32) {
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(p, content).unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

pub fn symlink(target: &str, link: &Path) {
    if let Some(parent) = link.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    std::os::unix::fs::symlink(target, link).unwrap();
}

pub fn set_mtime(p: &Path, secs: i64) {
    let t = rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        p,
        &rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

/// Give every object under `root` (root included) a fixed mtime, deepest first,
/// so that trees built at different moments compare equal.
pub fn fix_mtimes(root: &Path, secs: i64) {
    let mut all = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p.clone());
            }
            all.push(p);
        }
    }
    all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in all {
        set_mtime(&p, secs);
    }
    set_mtime(root, secs);
}

/// A copy of `src` in `dst` (through a layer: keeps owners, modes, xattrs,
/// hardlinks, mtimes to the second).
pub fn copy_tree(src: &Path, dst: &Path) {
    let mut blob = Vec::new();
    write_dir(src, &mut blob, &WriteOptions::default()).unwrap();
    apply_layer(&blob[..], dst, &ApplyOptions::default()).unwrap();
}

/// A whole-directory layer of `src`.
pub fn layer_of_dir(src: &Path) -> (Vec<u8>, LayerInfo) {
    let mut blob = Vec::new();
    let info = write_dir(src, &mut blob, &WriteOptions::default()).unwrap();
    (blob, info)
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}
