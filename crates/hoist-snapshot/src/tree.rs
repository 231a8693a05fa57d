//! Read-only trees that `COPY` reads from and looks into: a plain directory (the
//! build context, a staging directory) or a merged view over snapshot lowerdirs.
//!
//! Paths are relative to the tree's root (`""` or `/` is the root); `.` and empty
//! components are dropped and `..` is taken lexically, clamped at the root.
//! [`Tree::lstat`] never follows a symlink, not even in a parent (a parent that is
//! a symlink or not a directory makes the path absent); [`Tree::resolve`] follows
//! them, always inside the tree.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::diff::{is_opaque, is_whiteout};

/// The visible object at a tree path.
#[derive(Debug, Clone)]
pub struct Node {
    /// Where it lives on the host (in the lowerdir that provides it).
    pub host_path: PathBuf,
    /// Its metadata, not following a symlink.
    pub metadata: fs::Metadata,
}

/// What `COPY` reads from and looks into: a tree of files addressed by paths
/// relative to its root (`"/"` or `""` = the root).
pub trait Tree: Send + Sync {
    /// lstat: the host path of the visible object and its metadata, `None` if
    /// absent, whited out, or below something that is not a directory.
    fn lstat(&self, path: &Path) -> io::Result<Option<Node>>;

    /// Names in a directory of the tree (whiteouts removed), sorted bytewise.
    /// An error (`NotFound`, `NotADirectory`) when `path` is not a directory.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>>;

    /// Resolve `path` following symlinks (in every component, and the last one)
    /// inside the tree: an absolute target or `..` never leaves the tree root.
    /// Returns the resolved tree-relative path, `None` if something on the way is
    /// missing (or not a directory). A symlink loop (more than 40 links) is an
    /// error.
    fn resolve(&self, path: &Path) -> io::Result<Option<PathBuf>> {
        resolve_in(self, path)
    }
}

/// Maximum symlinks followed in one resolution, as Linux's `MAXSYMLINKS`.
const MAX_LINKS: usize = 40;

/// Normalised components of a tree path: no root, `.`, or `..` (clamped).
fn components(path: &Path) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(x) => out.push(x.to_owned()),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

fn to_path(comps: &[OsString]) -> PathBuf {
    comps.iter().collect()
}

/// [`Tree::resolve`] for any tree, on top of its `lstat`.
fn resolve_in<T: Tree + ?Sized>(tree: &T, path: &Path) -> io::Result<Option<PathBuf>> {
    match resolve_with(&|p: &Path| tree.lstat(p), path, true) {
        Ok(Resolved {
            path,
            node: Some(_),
        }) => Ok(Some(path)),
        Ok(Resolved { node: None, .. }) => Ok(None),
        Err(ResolveError::Lookup(e) | ResolveError::ReadLink { source: e, .. }) => Err(e),
        // ELOOP, as the kernel says it; the caller names the path.
        Err(ResolveError::Loop) => Err(Errno::LOOP.into()),
    }
}

/// Where [`resolve_with`] ended.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The resolved tree-relative path. Past the first missing component the rest
    /// of the path is joined lexically, so it names where the object would be.
    pub path: PathBuf,
    /// The object there, `None` when something on the way is missing or not a
    /// directory.
    pub node: Option<Node>,
}

/// Why [`resolve_with`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError<E> {
    /// The caller's lookup failed.
    #[error(transparent)]
    Lookup(E),
    /// A symlink on the way could not be read.
    #[error("reading symlink {path}: {source}")]
    ReadLink {
        /// The symlink's tree path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// More than 40 symlinks were followed (Linux's `MAXSYMLINKS`).
    #[error("too many levels of symbolic links")]
    Loop,
}

/// Resolve `path` inside a tree given only its `lookup` (an lstat that never
/// follows symlinks), following symlinks in every component, and in the last one
/// when `follow_last`; an absolute target or `..` never leaves the root. This is
/// the one resolver behind [`Tree::resolve`] and the builder's views that filter or
/// stack trees (a `.dockerignore`d context, a staging dir over a stage).
pub fn resolve_with<E>(
    lookup: &dyn Fn(&Path) -> Result<Option<Node>, E>,
    path: &Path,
    follow_last: bool,
) -> Result<Resolved, ResolveError<E>> {
    let mut pending: Vec<OsString> = components_raw(path);
    pending.reverse();
    let mut cur = PathBuf::new();
    let mut missing = false;
    let mut links = 0;
    // The node at `cur` when the last step looked it up.
    let mut found: Option<Node> = None;
    while let Some(c) = pending.pop() {
        found = None;
        if c == ".." {
            cur.pop();
            continue;
        }
        let next = cur.join(&c);
        if missing {
            cur = next;
            continue;
        }
        let Some(node) = lookup(&next).map_err(ResolveError::Lookup)? else {
            missing = true;
            cur = next;
            continue;
        };
        let last = pending.is_empty();
        if node.metadata.file_type().is_symlink() && (!last || follow_last) {
            links += 1;
            if links > MAX_LINKS {
                return Err(ResolveError::Loop);
            }
            let target = fs::read_link(&node.host_path)
                .map_err(|source| ResolveError::ReadLink { path: next, source })?;
            if target.is_absolute() {
                cur = PathBuf::new();
            }
            let mut t = components_raw(&target);
            t.reverse();
            pending.extend(t);
        } else {
            if !last && !node.metadata.is_dir() {
                // A file with more path after it.
                missing = true;
            }
            cur = next;
            found = Some(node);
        }
    }
    let node = match (missing, found) {
        (true, _) => None,
        (false, Some(node)) => Some(node),
        (false, None) => lookup(&cur).map_err(ResolveError::Lookup)?,
    };
    Ok(Resolved { path: cur, node })
}

/// Components with `..` kept (as `".."`), for resolution.
fn components_raw(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(x) => Some(x.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// A plain directory as a [`Tree`] (the build context, a staging directory).
/// Nothing overlay-specific: a character device 0/0 here is just a device.
/// Lookups go through `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, so a
/// symlink in the directory never makes `lstat` or `read_dir` look outside it.
#[derive(Debug, Clone)]
pub struct PlainDir {
    root: PathBuf,
}

impl PlainDir {
    /// The tree rooted at `root` (followed if it is itself a symlink).
    pub fn new(root: PathBuf) -> PlainDir {
        PlainDir { root }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn open(&self, rel: &Path, flags: OFlags) -> io::Result<Option<File>> {
        let root = rustix::fs::open(
            &self.root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let p: &Path = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        let mut tries = 0;
        loop {
            match rustix::fs::openat2(
                &root,
                p,
                flags | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
            ) {
                Ok(fd) => return Ok(Some(File::from(fd))),
                Err(Errno::AGAIN) if tries < 16 => tries += 1,
                // Absent, below a non-directory, or below a symlink.
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Tree for PlainDir {
    fn lstat(&self, path: &Path) -> io::Result<Option<Node>> {
        let rel = to_path(&components(path));
        let Some(f) = self.open(&rel, OFlags::PATH | OFlags::NOFOLLOW)? else {
            return Ok(None);
        };
        Ok(Some(Node {
            host_path: self.root.join(&rel),
            metadata: f.metadata()?,
        }))
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        let rel = to_path(&components(path));
        let Some(f) = self.open(&rel, OFlags::RDONLY | OFlags::DIRECTORY)? else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{}: no such directory in {}",
                    rel.display(),
                    self.root.display()
                ),
            ));
        };
        let mut names = Vec::new();
        for entry in rustix::fs::Dir::read_from(&f)? {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(OsString::from(std::ffi::OsStr::from_bytes(name)));
            }
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        Ok(names)
    }
}

/// A read-only merged view over overlay lowerdirs (top-most first), answering the
/// way a read-only overlayfs mount of them would: the top-most object of a name
/// wins, a character device 0/0 hides the name below it, directories merge down
/// to the first one marked `trusted.overlay.opaque=y`, and a non-directory hides
/// every directory below it. Without mounting anything.
#[derive(Debug, Clone)]
pub struct MergedView {
    lowers: Vec<PathBuf>,
}

/// What one path looks like in the merged view.
enum Lookup {
    Absent,
    /// A non-directory: the layer providing it.
    Leaf(usize),
    /// A directory: the layers whose directories merge into it, top-most first.
    Dir(Vec<usize>),
}

impl MergedView {
    /// A view over `lowers`, top-most first (overlay `lowerdir=` order).
    pub fn new(lowers: Vec<PathBuf>) -> MergedView {
        MergedView { lowers }
    }

    /// The lowerdirs, top-most first.
    pub fn lowers(&self) -> &[PathBuf] {
        &self.lowers
    }

    fn lookup(&self, comps: &[OsString]) -> io::Result<Lookup> {
        let mut layers: Vec<usize> = (0..self.lowers.len()).collect();
        let mut rel = PathBuf::new();
        for (i, c) in comps.iter().enumerate() {
            rel.push(c);
            let last = i + 1 == comps.len();
            let mut next = Vec::new();
            let mut leaf = None;
            for &l in &layers {
                let host = self.lowers[l].join(&rel);
                let md = match fs::symlink_metadata(&host) {
                    Ok(md) => md,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                if is_whiteout(&md) {
                    break;
                }
                if md.is_dir() {
                    next.push(l);
                    if is_opaque(&host).map_err(io::Error::other)? {
                        break;
                    }
                } else {
                    if next.is_empty() {
                        leaf = Some(l);
                    }
                    // A non-directory ends the merge: nothing below it shows.
                    break;
                }
            }
            if let Some(l) = leaf {
                return Ok(if last {
                    Lookup::Leaf(l)
                } else {
                    Lookup::Absent
                });
            }
            if next.is_empty() {
                return Ok(Lookup::Absent);
            }
            layers = next;
        }
        Ok(Lookup::Dir(layers))
    }
}

impl Tree for MergedView {
    fn lstat(&self, path: &Path) -> io::Result<Option<Node>> {
        let comps = components(path);
        let rel = to_path(&comps);
        let layer = match self.lookup(&comps)? {
            Lookup::Absent => return Ok(None),
            Lookup::Leaf(l) => l,
            Lookup::Dir(ls) => match ls.first() {
                Some(&l) => l,
                None => return Ok(None),
            },
        };
        let host_path = self.lowers[layer].join(&rel);
        let metadata = fs::symlink_metadata(&host_path)?;
        Ok(Some(Node {
            host_path,
            metadata,
        }))
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        let comps = components(path);
        let rel = to_path(&comps);
        let layers = match self.lookup(&comps)? {
            Lookup::Dir(ls) if !ls.is_empty() => ls,
            Lookup::Leaf(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    format!("{}: not a directory", rel.display()),
                ))
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{}: no such directory", rel.display()),
                ))
            }
        };
        let mut decided: BTreeSet<Vec<u8>> = BTreeSet::new();
        let mut visible: Vec<OsString> = Vec::new();
        for l in layers {
            let dir = self.lowers[l].join(&rel);
            for entry in fs::read_dir(&dir)? {
                let entry = entry?;
                let name = entry.file_name();
                if !decided.insert(name.as_bytes().to_vec()) {
                    continue;
                }
                let ft = entry.file_type()?;
                if ft.is_char_device() && is_whiteout(&fs::symlink_metadata(entry.path())?) {
                    continue;
                }
                visible.push(name);
            }
        }
        visible.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        Ok(visible)
    }
}
