//! The fallback where overlayfs is missing: record a tree's state before a step,
//! walk it again after, and compare.
//!
//! Each object is recorded with its type, mode, owner, size, mtime and ctime (to
//! the nanosecond), inode, device number, link target and extended attributes. The
//! ctime and inode catch what the rest misses: a file rewritten in place to the
//! same size with its mtime put back, a file replaced by rename, a new hardlink to
//! an old file.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use hoist_layer::Change;
use rustix::io::Errno;

use crate::error::{io_err, SnapshotError};

/// The recorded state of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    /// `st_mode` (type and permission bits).
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    dev: u64,
    ino: u64,
    rdev: u64,
    link: Option<OsString>,
    xattrs: Xattrs,
}

/// Extended attributes as (name, value), sorted.
type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

impl State {
    fn is_dir(&self) -> bool {
        // S_IFMT, S_IFDIR
        self.mode & 0o170000 == 0o040000
    }
}

/// A tree's recorded state, for [`WalkSnapshot::diff`] after a step changed it.
/// Does not descend into other file systems mounted below the root, and does not
/// record the root itself.
#[derive(Debug, Clone)]
pub struct WalkSnapshot {
    /// Keyed by components, so iteration is in layer order (parents first).
    entries: BTreeMap<Vec<OsString>, State>,
}

impl WalkSnapshot {
    /// Record the state of every object below `root`.
    pub fn capture(root: &Path) -> Result<WalkSnapshot, SnapshotError> {
        let root_dev = fs::symlink_metadata(root)
            .map_err(io_err(root, "stat"))?
            .dev();
        let mut entries = BTreeMap::new();
        let mut stack: Vec<Vec<OsString>> = vec![Vec::new()];
        while let Some(dir) = stack.pop() {
            let host: PathBuf = root.join(dir.iter().collect::<PathBuf>());
            for entry in fs::read_dir(&host).map_err(io_err(&host, "read directory"))? {
                let entry = entry.map_err(io_err(&host, "read directory"))?;
                let mut key = dir.clone();
                key.push(entry.file_name());
                let path = entry.path();
                let state = record(&path)?;
                if state.is_dir() && state.dev == root_dev {
                    stack.push(key.clone());
                }
                entries.insert(key, state);
            }
        }
        Ok(WalkSnapshot { entries })
    }

    /// Number of objects recorded.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was recorded (an empty root).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Walk `root` again and list what changed since [`WalkSnapshot::capture`]:
    /// new objects as [`Change::Added`], changed ones (anything recorded differs,
    /// the size and times of directories included) as [`Change::Modified`], gone
    /// ones as [`Change::Deleted`] (only the top-most of a deleted subtree). In
    /// layer order, ready for `hoist_layer::write_changes(root, ...)`.
    pub fn diff(&self, root: &Path) -> Result<Vec<Change>, SnapshotError> {
        let now = WalkSnapshot::capture(root)?;
        let mut out = Vec::new();
        let mut old = self.entries.iter().peekable();
        let mut new = now.entries.iter().peekable();
        let path = |k: &[OsString]| k.iter().collect::<PathBuf>();
        // A path whose parent is still a directory (a deleted path below a deleted
        // or replaced directory goes with it).
        let parent_is_dir = |k: &[OsString]| {
            k.len() == 1
                || now
                    .entries
                    .get(&k[..k.len() - 1])
                    .is_some_and(State::is_dir)
        };
        loop {
            match (old.peek(), new.peek()) {
                (None, None) => break,
                (Some((ko, so)), Some((kn, sn))) if ko == kn => {
                    if so != sn {
                        out.push(Change::Modified(path(kn)));
                    }
                    old.next();
                    new.next();
                }
                (Some((ko, _)), Some((kn, _))) if ko < kn => {
                    if parent_is_dir(ko) {
                        out.push(Change::Deleted(path(ko)));
                    }
                    old.next();
                }
                (Some((ko, _)), None) => {
                    if parent_is_dir(ko) {
                        out.push(Change::Deleted(path(ko)));
                    }
                    old.next();
                }
                (_, Some((kn, _))) => {
                    out.push(Change::Added(path(kn)));
                    new.next();
                }
            }
        }
        Ok(out)
    }
}

fn record(path: &Path) -> Result<State, SnapshotError> {
    let md = fs::symlink_metadata(path).map_err(io_err(path, "stat"))?;
    let link = if md.file_type().is_symlink() {
        Some(
            fs::read_link(path)
                .map_err(io_err(path, "readlink"))?
                .into_os_string(),
        )
    } else {
        None
    };
    Ok(State {
        mode: md.mode(),
        uid: md.uid(),
        gid: md.gid(),
        size: md.size(),
        mtime: (md.mtime(), md.mtime_nsec()),
        ctime: (md.ctime(), md.ctime_nsec()),
        dev: md.dev(),
        ino: md.ino(),
        rdev: md.rdev(),
        link,
        xattrs: xattrs(path)?,
    })
}

/// All extended attributes of `path` (not followed), sorted.
fn xattrs(path: &Path) -> Result<Xattrs, SnapshotError> {
    let mut names = vec![0u8; 65536];
    let n = match rustix::fs::llistxattr(path, &mut names[..]) {
        Ok(n) => n,
        Err(Errno::NOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(io_err(path, "list xattrs")(e.into())),
    };
    let mut out = Vec::new();
    let mut value = vec![0u8; 65536];
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let os = OsString::from_vec(name.to_vec());
        match rustix::fs::lgetxattr(path, os.as_bytes(), &mut value[..]) {
            Ok(len) => out.push((name.to_vec(), value[..len].to_vec())),
            Err(Errno::NODATA) => {}
            Err(e) => return Err(io_err(path, "read xattr")(e.into())),
        }
    }
    out.sort();
    Ok(out)
}
