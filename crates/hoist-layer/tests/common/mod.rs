//! Helpers shared by the integration tests: tree snapshots, fixtures and a raw tar
//! builder for archives `tar::Builder` would refuse to produce.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, Timespec, Timestamps, XattrFlags, CWD};

/// Everything the round trip must preserve about one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub content: Vec<u8>,
    pub link: Option<Vec<u8>>,
    pub rdev: u64,
    /// Path of the first node (in sorted order) sharing this inode, if not itself.
    pub same_inode_as: Option<String>,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

pub fn user_xattrs(p: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut names = vec![0u8; 65536];
    let n = match rustix::fs::llistxattr(p, &mut names[..]) {
        Ok(n) => n,
        Err(_) => return Vec::new(),
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

/// Snapshot of a tree (root excluded), keyed by relative path.
pub fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    let mut paths = Vec::new();
    collect(root, root, &mut paths);
    paths.sort();
    let mut first_of_inode: HashMap<(u64, u64), String> = HashMap::new();
    let mut out = BTreeMap::new();
    for rel in paths {
        let p = root.join(&rel);
        let md = fs::symlink_metadata(&p).unwrap();
        let ft = md.file_type();
        use std::os::unix::fs::FileTypeExt;
        let kind = if ft.is_dir() {
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
        };
        let same_inode_as = if !ft.is_dir() && md.nlink() > 1 {
            let key = (md.dev(), md.ino());
            match first_of_inode.get(&key) {
                Some(first) => Some(first.clone()),
                None => {
                    first_of_inode.insert(key, rel.clone());
                    None
                }
            }
        } else {
            None
        };
        out.insert(
            rel.clone(),
            Node {
                kind,
                mode: md.permissions().mode() & 0o7777,
                uid: md.uid(),
                gid: md.gid(),
                mtime: md.mtime(),
                content: if ft.is_file() {
                    fs::read(&p).unwrap()
                } else {
                    Vec::new()
                },
                link: if ft.is_symlink() {
                    Some(fs::read_link(&p).unwrap().as_os_str().as_bytes().to_vec())
                } else {
                    None
                },
                rdev: md.rdev(),
                same_inode_as,
                xattrs: user_xattrs(&p),
            },
        );
    }
    out
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let is_dir = e.file_type().unwrap().is_dir();
        out.push(rel);
        if is_dir {
            collect(root, &p, out);
        }
    }
}

pub fn set_mtime(p: &Path, secs: i64) {
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        CWD,
        p,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

pub fn lchown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
}

pub fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

pub fn write(p: &Path, data: &[u8], mode: u32) {
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(p, data).unwrap();
    chmod(p, mode);
}

/// A tree exercising everything the writer must keep. Mtimes are set last,
/// deepest first, so directory mtimes are meaningful.
pub fn build_rich_tree(root: &Path) {
    let d = |rel: &str, mode: u32| {
        let p = root.join(rel);
        fs::create_dir_all(&p).unwrap();
        chmod(&p, mode);
    };
    d("etc", 0o755);
    write(
        &root.join("etc/passwd"),
        b"root:x:0:0::/root:/bin/sh\n",
        0o644,
    );
    write(&root.join("etc/empty"), b"", 0o600);
    d("bin", 0o755);
    write(&root.join("bin/su"), b"\x7fELF not really", 0o4755);
    write(&root.join("bin/sg"), b"setgid", 0o2711);
    std::os::unix::fs::symlink("/bin/busybox", root.join("bin/sh")).unwrap();
    d("tmp", 0o1777);
    d("srv", 0o2775);
    lchown(&root.join("srv"), 0, 50);
    d("home/user", 0o750);
    write(&root.join("home/user/notes"), b"mine", 0o640);
    lchown(&root.join("home/user"), 1000, 1000);
    lchown(&root.join("home/user/notes"), 1000, 1001);
    write(&root.join("home/big-ids"), b"x", 0o644);
    lchown(&root.join("home/big-ids"), 3_000_000, 4_000_000);
    d("usr/lib", 0o755);
    write(&root.join("usr/lib/libc.so"), &vec![7u8; 70_000], 0o755);
    fs::hard_link(root.join("usr/lib/libc.so"), root.join("usr/lib/libc.so.6")).unwrap();
    fs::hard_link(root.join("usr/lib/libc.so"), root.join("etc/zz-hardlink")).unwrap();
    std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
    std::os::unix::fs::symlink("libc.so", root.join("usr/lib/libc.link")).unwrap();
    lchown(&root.join("usr/lib/libc.link"), 5, 6);
    let long_name = "n".repeat(200);
    write(&root.join("long").join(&long_name), b"long name", 0o644);
    let deep = "deep-directory-name-0123456789/".repeat(5);
    write(&root.join(&deep).join("file-at-depth"), b"deep", 0o644);
    d("run", 0o755);
    rustix::fs::mknodat(
        CWD,
        root.join("run/fifo"),
        FileType::Fifo,
        Mode::from_raw_mode(0o620),
        0,
    )
    .unwrap();
    d("dev", 0o755);
    rustix::fs::mknodat(
        CWD,
        root.join("dev/null"),
        FileType::CharacterDevice,
        Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    )
    .unwrap();
    chmod(&root.join("dev/null"), 0o666);
    chmod(&root.join("run/fifo"), 0o620);
    rustix::fs::lsetxattr(
        root.join("etc/passwd").as_path(),
        "user.test",
        b"hello",
        XattrFlags::empty(),
    )
    .unwrap();
    rustix::fs::lsetxattr(
        root.join("etc").as_path(),
        "user.dir",
        b"on a dir",
        XattrFlags::empty(),
    )
    .unwrap();
    rustix::fs::lsetxattr(
        root.join("etc").as_path(),
        "user.a",
        b"",
        XattrFlags::empty(),
    )
    .unwrap();

    let mut all = Vec::new();
    collect(root, root, &mut all);
    all.sort();
    for (i, rel) in all.iter().enumerate().rev() {
        set_mtime(&root.join(rel), 1_600_000_000 + i as i64 * 1000);
    }
}

/// Assert two snapshots are equal, path by path, for readable failures.
pub fn assert_same_tree(a: &BTreeMap<String, Node>, b: &BTreeMap<String, Node>) {
    let ka: Vec<_> = a.keys().collect();
    let kb: Vec<_> = b.keys().collect();
    assert_eq!(ka, kb, "different path sets");
    for (k, na) in a {
        assert_eq!(Some(na), b.get(k), "path {k} differs");
    }
}

/// Raw tar building: headers are filled byte by byte so any name, link name or
/// type can be written, including ones `tar::Builder` refuses (`..`, absolute).
pub struct RawTar {
    pub buf: Vec<u8>,
}

impl RawTar {
    pub fn new() -> Self {
        RawTar { buf: Vec::new() }
    }

    pub fn entry(
        &mut self,
        name: &str,
        typeflag: u8,
        link: &str,
        data: &[u8],
        mode: u32,
    ) -> &mut Self {
        let mut h = tar::Header::new_ustar();
        {
            let u = h.as_ustar_mut().unwrap();
            u.name = [0; 100];
            u.name[..name.len()].copy_from_slice(name.as_bytes());
            u.linkname = [0; 100];
            u.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(tar::EntryType::new(typeflag));
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_size(data.len() as u64);
        h.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&h, data).unwrap();
        let bytes = b.into_inner().unwrap();
        // `into_inner` appends the two zero end blocks; keep only the entry.
        self.buf.extend_from_slice(&bytes[..bytes.len() - 1024]);
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(name, b'0', "", data, 0o644)
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(name, b'5', "", b"", 0o755)
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, b'2', target, b"", 0o777)
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, b'1', target, b"", 0o644)
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = self.buf.clone();
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

/// Names directly inside `dir`.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

pub fn os(s: &[u8]) -> &OsStr {
    OsStr::from_bytes(s)
}
