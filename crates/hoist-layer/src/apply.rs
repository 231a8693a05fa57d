//! Applying a layer onto a directory.
//!
//! The target is opened once as a directory fd; every entry's parent is resolved
//! from it with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` (missing parents
//! are created one component at a time, each relative to the last resolved one),
//! and the final component is created with `*at` calls that never follow it.
//! Whatever symlinks the layer or the lower layers planted, resolution treats the
//! target as `/`, so no entry can reach outside it.
//!
//! OCI whiteouts only affect what lower layers left: a `.wh.<name>` is ignored when
//! this layer itself wrote `<name>` (or something below it), and an opaque
//! directory is pruned after the whole layer is applied, keeping exactly the paths
//! this layer wrote, whether they came before or after the marker. Directory
//! metadata is applied last, deepest first, so the children written into a
//! directory do not disturb its mtime and a read-only directory can still be
//! filled.
//!
//! With [`WhiteoutMode::Overlay`] the layer is unpacked in overlayfs form instead,
//! for a directory that will serve as one overlay lowerdir: a `.wh.<name>` becomes a
//! character device 0/0 named `<name>` and a `.wh..wh..opq` in a directory sets
//! `trusted.overlay.opaque=y` on it; nothing is deleted. Both are created at the end
//! of the layer, so the same rules as above decide what they mean: a whiteout of a
//! path this layer wrote before the marker is ignored, and a whiteout followed by
//! a directory of the same name written by this layer makes that directory opaque
//! (in the default mode the lower one would have been removed before it was
//! written).

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use hoist_oci::Digest;
use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;

use crate::compression::Compression;
use crate::error::{ApplyError, ReadError};
use crate::fsutil::{
    list_dir, lstat_type, open_dir_in_root, open_in_root, proc_path, remove_all_at,
};
use crate::paths::{join, lossy, path_bytes, split_parent, to_path_buf};
use crate::reader::{EntryInfo, EntryKind, LayerReader, Whiteout};

/// How to apply a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Give entries the uid/gid the tar records. Default: when running as root.
    pub same_owner: bool,
    /// Restore extended attributes. `security.*`/`trusted.*` failures and
    /// unsupported file systems are warnings; other `user.*` failures are errors.
    pub xattrs: bool,
    /// What OCI whiteouts do. Default: [`WhiteoutMode::Apply`].
    pub whiteouts: WhiteoutMode,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            same_owner: rustix::process::geteuid().is_root(),
            xattrs: true,
            whiteouts: WhiteoutMode::default(),
        }
    }
}

/// What OCI whiteouts (`.wh.<name>`, `.wh..wh..opq`) do when a layer is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhiteoutMode {
    /// Delete what they name from the target (lower layers applied before): the
    /// target ends up as the flattened rootfs.
    #[default]
    Apply,
    /// Write them in overlayfs form and delete nothing: `.wh.<name>` becomes a
    /// character device 0/0 named `<name>`, `.wh..wh..opq` in directory `D` becomes
    /// the xattr `trusted.overlay.opaque=y` on `D`. For unpacking one layer into
    /// its own empty directory, to serve as an overlay lowerdir. Needs
    /// `CAP_MKNOD` and `CAP_SYS_ADMIN` (trusted xattrs); failures are errors.
    Overlay,
}

/// Something skipped or only partly applied, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyWarning {
    /// Path relative to the target.
    pub path: PathBuf,
    /// What happened.
    pub message: String,
}

/// What applying a layer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    /// SHA-256 of the uncompressed tar: compare with the config's diff_id.
    pub diff_id: Digest,
    /// Size of the uncompressed tar.
    pub uncompressed_size: u64,
    /// Compression detected from the magic bytes.
    pub compression: Compression,
    /// Paths created or updated, in archive order (relative to the target).
    pub applied: Vec<PathBuf>,
    /// Targets of `.wh.<name>` entries (removed if a lower layer had them).
    pub whiteouts: Vec<PathBuf>,
    /// Directories marked opaque.
    pub opaque_dirs: Vec<PathBuf>,
    /// Entries skipped or partly applied.
    pub warnings: Vec<ApplyWarning>,
}

/// The xattr overlayfs reads to tell an opaque directory.
const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Apply the layer read from `reader` (plain, gzip or zstd tar, detected by magic
/// bytes) onto the directory `target`.
///
/// Paths are confined to `target`: a leading `/` is stripped, a `..` component is
/// refused with [`ReadError::UnsafePath`], and symlinks (from this or lower layers)
/// are resolved as if `target` were `/`. Stops at the first error; what was applied
/// until then stays.
pub fn apply_layer<R: Read>(
    reader: R,
    target: &Path,
    opts: &ApplyOptions,
) -> Result<ApplyReport, ApplyError> {
    let root = rustix::fs::open(
        target,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ApplyError::Target {
        path: target.to_owned(),
        source: e.into(),
    })?;
    let mut layer = LayerReader::new(reader)?;
    let compression = layer.compression();
    let mut a = Applier {
        root,
        opts,
        written: HashSet::new(),
        dirs: BTreeMap::new(),
        opaque: Vec::new(),
        overlay_whiteouts: Vec::new(),
        applied: Vec::new(),
        whiteouts: Vec::new(),
        warnings: Vec::new(),
    };
    for entry in layer.entries()? {
        let mut entry = entry?;
        let info = entry.info().clone();
        a.apply_entry(&info, &mut entry)?;
    }
    a.finish()?;
    let (diff_id, uncompressed_size) = layer.finish()?;
    Ok(ApplyReport {
        diff_id,
        uncompressed_size,
        compression,
        applied: a.applied.iter().map(|p| to_path_buf(p)).collect(),
        whiteouts: a.whiteouts.iter().map(|p| to_path_buf(p)).collect(),
        opaque_dirs: a.opaque.iter().map(|p| to_path_buf(p)).collect(),
        warnings: a.warnings,
    })
}

/// Metadata applied to an object once it exists.
#[derive(Debug, Clone)]
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: Timespec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Meta {
    fn of(info: &EntryInfo) -> Meta {
        Meta {
            uid: info.uid,
            gid: info.gid,
            mode: info.mode & 0o7777,
            mtime: Timespec {
                tv_sec: info.mtime,
                tv_nsec: i64::from(info.mtime_nsec.min(999_999_999)),
            },
            xattrs: info.xattrs.clone(),
        }
    }

    fn times(&self) -> Timestamps {
        Timestamps {
            last_access: self.mtime,
            last_modification: self.mtime,
        }
    }
}

struct Applier<'a> {
    root: OwnedFd,
    opts: &'a ApplyOptions,
    /// Every path this layer wrote, with all its ancestors.
    written: HashSet<Vec<u8>>,
    /// Directories of this layer, metadata deferred to the end.
    dirs: BTreeMap<Vec<u8>, Meta>,
    opaque: Vec<Vec<u8>>,
    /// Overlay mode: whiteout targets, turned into devices (or opaque
    /// directories) at the end.
    overlay_whiteouts: Vec<Vec<u8>>,
    applied: Vec<Vec<u8>>,
    whiteouts: Vec<Vec<u8>>,
    warnings: Vec<ApplyWarning>,
}

fn fs_err(path: &[u8], op: impl Into<String>, source: impl Into<io::Error>) -> ApplyError {
    ApplyError::Fs {
        path: lossy(path),
        op: op.into(),
        source: source.into(),
    }
}

fn errno(e: &io::Error) -> Option<Errno> {
    e.raw_os_error().map(Errno::from_raw_os_error)
}

/// Where extended attributes go: an open fd, or a path naming the object through
/// its parent fd (for symlinks and special files).
enum XattrTarget<'f> {
    Fd(BorrowedFd<'f>),
    Path(Vec<u8>),
}

impl Applier<'_> {
    fn warn(&mut self, path: &[u8], message: String) {
        tracing::warn!(path = %lossy(path), "{message}");
        self.warnings.push(ApplyWarning {
            path: to_path_buf(path),
            message,
        });
    }

    fn mark_written(&mut self, path: &[u8]) {
        let mut p = path;
        while !p.is_empty() && self.written.insert(p.to_vec()) {
            p = split_parent(p).0;
        }
    }

    fn apply_entry(&mut self, info: &EntryInfo, data: &mut dyn Read) -> Result<(), ApplyError> {
        let path = path_bytes(&info.path).to_vec();
        match &info.whiteout {
            Some(Whiteout::Meta) => {
                tracing::debug!(path = %info.raw_path, "skipping AUFS metadata entry");
                Ok(())
            }
            Some(Whiteout::Opaque(dir)) => {
                let dir = path_bytes(dir).to_vec();
                self.ensure_dir(&path, &dir)?;
                self.mark_written(&dir);
                if !self.opaque.contains(&dir) {
                    self.opaque.push(dir);
                }
                Ok(())
            }
            Some(Whiteout::Remove(target)) => {
                let target = path_bytes(target).to_vec();
                self.whiteout(&path, &target)?;
                self.whiteouts.push(target);
                Ok(())
            }
            None => self.create(info, &path, data),
        }
    }

    fn whiteout(&mut self, entry: &[u8], target: &[u8]) -> Result<(), ApplyError> {
        if self.written.contains(target) {
            tracing::debug!(path = %lossy(target), "whiteout of a path this layer wrote: ignored");
            return Ok(());
        }
        if self.opts.whiteouts == WhiteoutMode::Overlay {
            if !self.overlay_whiteouts.iter().any(|t| t == target) {
                self.overlay_whiteouts.push(target.to_vec());
            }
            return Ok(());
        }
        let (parent, name) = split_parent(target);
        let pfd = match open_dir_in_root(self.root.as_fd(), parent) {
            Ok(fd) => fd,
            // Nothing below a missing or non-directory parent to delete.
            Err(e) if matches!(errno(&e), Some(Errno::NOENT | Errno::NOTDIR)) => return Ok(()),
            Err(e) => return Err(fs_err(entry, "resolve whiteout parent", e)),
        };
        remove_all_at(pfd.as_fd(), name).map_err(|e| fs_err(entry, "remove whiteout target", e))?;
        self.dirs.remove(target);
        Ok(())
    }

    /// Resolve `parent` in the root, creating missing directories (mode 0755).
    fn ensure_parent(&mut self, entry: &[u8], parent: &[u8]) -> Result<OwnedFd, ApplyError> {
        match open_dir_in_root(self.root.as_fd(), parent) {
            Ok(fd) => return Ok(fd),
            Err(e) if errno(&e) == Some(Errno::NOENT) => {}
            Err(e) if errno(&e) == Some(Errno::NOTDIR) => {
                return Err(ApplyError::ParentNotDir {
                    path: lossy(entry),
                    parent: lossy(parent),
                })
            }
            Err(e) => return Err(fs_err(entry, "resolve parent directory", e)),
        }
        let mut cur = open_dir_in_root(self.root.as_fd(), b"")
            .map_err(|e| fs_err(entry, "open target directory", e))?;
        let mut prefix: Vec<u8> = Vec::new();
        for comp in parent.split(|&b| b == b'/') {
            let next = join(&prefix, comp);
            cur = match open_dir_in_root(self.root.as_fd(), &next) {
                Ok(fd) => fd,
                Err(e) if errno(&e) == Some(Errno::NOENT) => {
                    match rustix::fs::mkdirat(&cur, comp, Mode::from_raw_mode(0o755)) {
                        Ok(()) => {}
                        // Something is there that does not resolve: a dangling symlink.
                        Err(Errno::EXIST) => {
                            return Err(ApplyError::ParentNotDir {
                                path: lossy(entry),
                                parent: lossy(&next),
                            })
                        }
                        Err(e) => {
                            return Err(fs_err(
                                entry,
                                format!("create parent {:?}", lossy(&next)),
                                e,
                            ))
                        }
                    }
                    rustix::fs::openat(
                        &cur,
                        comp,
                        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| fs_err(entry, format!("open parent {:?}", lossy(&next)), e))?
                }
                Err(e) if errno(&e) == Some(Errno::NOTDIR) => {
                    return Err(ApplyError::ParentNotDir {
                        path: lossy(entry),
                        parent: lossy(&next),
                    })
                }
                Err(e) => return Err(fs_err(entry, "resolve parent directory", e)),
            };
            prefix = next;
        }
        Ok(cur)
    }

    /// Make sure `dir` exists as a directory (for an opaque marker).
    fn ensure_dir(&mut self, entry: &[u8], dir: &[u8]) -> Result<(), ApplyError> {
        if dir.is_empty() {
            return Ok(());
        }
        let (parent, name) = split_parent(dir);
        let pfd = self.ensure_parent(entry, parent)?;
        match lstat_type(pfd.as_fd(), name).map_err(|e| fs_err(entry, "stat", e))? {
            Some(FileType::Directory) => Ok(()),
            None => rustix::fs::mkdirat(&pfd, name, Mode::from_raw_mode(0o755))
                .map_err(|e| fs_err(entry, "create opaque directory", e)),
            Some(_) => Err(ApplyError::ParentNotDir {
                path: lossy(entry),
                parent: lossy(dir),
            }),
        }
    }

    fn remove_existing(
        &mut self,
        path: &[u8],
        pfd: BorrowedFd<'_>,
        name: &[u8],
        existing: Option<FileType>,
    ) -> Result<(), ApplyError> {
        match existing {
            None => Ok(()),
            Some(FileType::Directory) => {
                self.dirs.remove(path);
                remove_all_at(pfd, name).map_err(|e| fs_err(path, "replace directory", e))
            }
            Some(_) => match rustix::fs::unlinkat(pfd, name, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => Ok(()),
                Err(e) => Err(fs_err(path, "replace existing entry", e)),
            },
        }
    }

    fn create(
        &mut self,
        info: &EntryInfo,
        path: &[u8],
        data: &mut dyn Read,
    ) -> Result<(), ApplyError> {
        match info.kind {
            EntryKind::Other(b'g') => {
                tracing::debug!(path = %info.raw_path, "skipping PAX global header");
                return Ok(());
            }
            EntryKind::Other(t) => {
                self.warn(
                    path,
                    format!("unsupported tar entry type {:?}: skipped", char::from(t)),
                );
                return Ok(());
            }
            _ => {}
        }
        if path.is_empty() {
            if info.kind == EntryKind::Dir {
                self.dirs.insert(Vec::new(), Meta::of(info));
            } else {
                self.warn(path, "non-directory entry for the root: skipped".to_owned());
            }
            return Ok(());
        }
        let (parent, name) = split_parent(path);
        let pfd = self.ensure_parent(path, parent)?;
        let pfd = pfd.as_fd();
        self.mark_written(path);
        let existing = lstat_type(pfd, name).map_err(|e| fs_err(path, "stat existing entry", e))?;
        let meta = Meta::of(info);

        match info.kind {
            EntryKind::Dir => {
                if existing != Some(FileType::Directory) {
                    self.remove_existing(path, pfd, name, existing)?;
                    rustix::fs::mkdirat(pfd, name, Mode::from_raw_mode(0o700))
                        .map_err(|e| fs_err(path, "create directory", e))?;
                }
                self.dirs.insert(path.to_vec(), meta);
            }
            EntryKind::File => {
                self.remove_existing(path, pfd, name, existing)?;
                let fd = rustix::fs::openat(
                    pfd,
                    name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| fs_err(path, "create file", e))?;
                let mut file = File::from(fd);
                let copied = copy_entry(data, &mut file, path)?;
                if copied != info.size {
                    return Err(ReadError::Stream(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "layer stream ended inside {:?} ({copied} of {} bytes)",
                            info.raw_path, info.size
                        ),
                    ))
                    .into());
                }
                self.meta_on_fd(path, file.as_fd(), &meta)?;
            }
            EntryKind::Symlink => {
                let target = info
                    .link_target
                    .as_deref()
                    .map(path_bytes)
                    .unwrap_or_default();
                self.remove_existing(path, pfd, name, existing)?;
                rustix::fs::symlinkat(target, pfd, name)
                    .map_err(|e| fs_err(path, "create symlink", e))?;
                self.meta_at(path, pfd, name, &meta, false)?;
            }
            EntryKind::Hardlink => {
                let target = info
                    .link_target
                    .as_deref()
                    .map(path_bytes)
                    .unwrap_or_default();
                if target == path {
                    tracing::debug!(path = %info.raw_path, "hardlink to itself: ignored");
                    return Ok(());
                }
                let link_err = |reason: String| ApplyError::LinkTarget {
                    path: info.raw_path.clone(),
                    target: lossy(target),
                    reason,
                };
                let (tparent, tname) = split_parent(target);
                let tpfd = open_dir_in_root(self.root.as_fd(), tparent).map_err(|e| {
                    link_err(format!("cannot resolve its directory inside the root: {e}"))
                })?;
                match lstat_type(tpfd.as_fd(), tname) {
                    Ok(Some(FileType::Directory)) => {
                        return Err(link_err("is a directory".to_owned()))
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => return Err(link_err("does not exist inside the root".to_owned())),
                    Err(e) => return Err(link_err(format!("cannot stat: {e}"))),
                }
                self.remove_existing(path, pfd, name, existing)?;
                rustix::fs::linkat(&tpfd, tname, pfd, name, AtFlags::empty())
                    .map_err(|e| link_err(format!("link failed: {}", io::Error::from(e))))?;
            }
            EntryKind::CharDevice | EntryKind::BlockDevice | EntryKind::Fifo => {
                let ftype = match info.kind {
                    EntryKind::CharDevice => FileType::CharacterDevice,
                    EntryKind::BlockDevice => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let (major, minor) = info.device.unwrap_or((0, 0));
                self.remove_existing(path, pfd, name, existing)?;
                match rustix::fs::mknodat(
                    pfd,
                    name,
                    ftype,
                    Mode::from_raw_mode(meta.mode & 0o777),
                    rustix::fs::makedev(major, minor),
                ) {
                    Ok(()) => {}
                    Err(Errno::PERM) if ftype != FileType::Fifo => {
                        self.warn(
                            path,
                            "not permitted to create a device node: skipped".to_owned(),
                        );
                        return Ok(());
                    }
                    Err(e) => return Err(fs_err(path, "create special file", e)),
                }
                self.meta_at(path, pfd, name, &meta, true)?;
            }
            EntryKind::Other(_) => {}
        }
        self.applied.push(path.to_vec());
        Ok(())
    }

    /// Ownership, mode, xattrs and times on an open file (order matters: chown
    /// clears setuid bits and file capabilities, so it goes first).
    fn meta_on_fd(
        &mut self,
        path: &[u8],
        fd: BorrowedFd<'_>,
        meta: &Meta,
    ) -> Result<(), ApplyError> {
        if self.opts.same_owner {
            rustix::fs::fchown(
                fd,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
            )
            .map_err(|e| fs_err(path, "chown", e))?;
        }
        rustix::fs::fchmod(fd, Mode::from_raw_mode(meta.mode))
            .map_err(|e| fs_err(path, "chmod", e))?;
        self.set_xattrs(path, XattrTarget::Fd(fd), &meta.xattrs)?;
        rustix::fs::futimens(fd, &meta.times()).map_err(|e| fs_err(path, "set times", e))
    }

    /// The same for an object named in its parent, never following it.
    fn meta_at(
        &mut self,
        path: &[u8],
        pfd: BorrowedFd<'_>,
        name: &[u8],
        meta: &Meta,
        chmod: bool,
    ) -> Result<(), ApplyError> {
        if self.opts.same_owner {
            rustix::fs::chownat(
                pfd,
                name,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| fs_err(path, "chown", e))?;
        }
        if chmod {
            // Only for the special file just created here, never a symlink.
            rustix::fs::chmodat(pfd, name, Mode::from_raw_mode(meta.mode), AtFlags::empty())
                .map_err(|e| fs_err(path, "chmod", e))?;
        }
        self.set_xattrs(path, XattrTarget::Path(proc_path(pfd, name)), &meta.xattrs)?;
        rustix::fs::utimensat(pfd, name, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| fs_err(path, "set times", e))
    }

    fn set_xattrs(
        &mut self,
        path: &[u8],
        target: XattrTarget<'_>,
        xattrs: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<(), ApplyError> {
        if !self.opts.xattrs {
            return Ok(());
        }
        for (name, value) in xattrs {
            let shown = lossy(name);
            if name.starts_with(b"trusted.overlay.")
                || name.starts_with(b"user.overlay.")
                || name.contains(&0)
            {
                self.warn(
                    path,
                    format!("xattr {shown:?} is reserved for overlayfs: skipped"),
                );
                continue;
            }
            let r = match &target {
                XattrTarget::Fd(fd) => {
                    rustix::fs::fsetxattr(fd, name.as_slice(), value, XattrFlags::empty())
                }
                XattrTarget::Path(p) => {
                    rustix::fs::lsetxattr(p.as_slice(), name.as_slice(), value, XattrFlags::empty())
                }
            };
            match r {
                Ok(()) => {}
                Err(e)
                    if matches!(e, Errno::NOTSUP | Errno::PERM) || !name.starts_with(b"user.") =>
                {
                    self.warn(
                        path,
                        format!("xattr {shown:?} not restored: {}", io::Error::from(e)),
                    );
                }
                Err(e) => return Err(fs_err(path, format!("setxattr {shown}"), e)),
            }
        }
        Ok(())
    }

    /// Open a directory of this layer by path, without following its last
    /// component. `None` when it is gone or no longer a directory.
    fn open_layer_dir(&self, path: &[u8]) -> Result<Option<OwnedFd>, ApplyError> {
        let r = if path.is_empty() {
            open_in_root(self.root.as_fd(), b"", OFlags::RDONLY | OFlags::DIRECTORY)
        } else {
            let (parent, name) = split_parent(path);
            open_dir_in_root(self.root.as_fd(), parent).and_then(|pfd| {
                rustix::fs::openat(
                    &pfd,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(io::Error::from)
            })
        };
        match r {
            Ok(fd) => Ok(Some(fd)),
            Err(e) if matches!(errno(&e), Some(Errno::NOENT | Errno::NOTDIR | Errno::LOOP)) => {
                Ok(None)
            }
            Err(e) => Err(fs_err(path, "open directory", e)),
        }
    }

    /// Remove everything below `dir` this layer did not write.
    fn prune(&mut self, dir_fd: OwnedFd, prefix: &[u8]) -> Result<(), ApplyError> {
        let keep = dir_fd.try_clone().map_err(|e| fs_err(prefix, "dup", e))?;
        let names = list_dir(dir_fd).map_err(|e| fs_err(prefix, "read opaque directory", e))?;
        for name in names {
            let p = join(prefix, &name);
            if !self.written.contains(&p) {
                remove_all_at(keep.as_fd(), &name)
                    .map_err(|e| fs_err(&p, "remove below opaque directory", e))?;
            } else if lstat_type(keep.as_fd(), &name).map_err(|e| fs_err(&p, "stat", e))?
                == Some(FileType::Directory)
            {
                let child = rustix::fs::openat(
                    &keep,
                    name.as_slice(),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| fs_err(&p, "open directory", e))?;
                self.prune(child, &p)?;
            }
        }
        Ok(())
    }

    /// Overlay mode: a character device 0/0 at `target`, replacing whatever is
    /// there (nothing this layer wrote: those whiteouts were ignored).
    fn overlay_whiteout(&mut self, target: &[u8]) -> Result<(), ApplyError> {
        let (parent, name) = split_parent(target);
        let pfd = self.ensure_parent(target, parent)?;
        let existing =
            lstat_type(pfd.as_fd(), name).map_err(|e| fs_err(target, "stat existing entry", e))?;
        self.remove_existing(target, pfd.as_fd(), name, existing)?;
        rustix::fs::mknodat(
            &pfd,
            name,
            FileType::CharacterDevice,
            Mode::empty(),
            rustix::fs::makedev(0, 0),
        )
        .map_err(|e| fs_err(target, "create overlay whiteout (char 0/0)", e))
    }

    /// Overlay mode: mark `dir` opaque.
    fn overlay_opaque(&mut self, dir: &[u8]) -> Result<(), ApplyError> {
        let Some(fd) = self.open_layer_dir(dir)? else {
            return Ok(());
        };
        rustix::fs::fsetxattr(&fd, OVERLAY_OPAQUE_XATTR, b"y", XattrFlags::empty())
            .map_err(|e| fs_err(dir, "setxattr trusted.overlay.opaque", e))
    }

    fn finish(&mut self) -> Result<(), ApplyError> {
        if self.opts.whiteouts == WhiteoutMode::Overlay {
            for target in std::mem::take(&mut self.overlay_whiteouts) {
                if !self.written.contains(&target) {
                    self.overlay_whiteout(&target)?;
                } else {
                    // Whited out, then written by this layer: if it is now a
                    // directory, the lower one is gone and this one replaces it.
                    self.overlay_opaque(&target)?;
                }
            }
            for dir in self.opaque.clone() {
                self.overlay_opaque(&dir)?;
            }
        } else {
            for dir in self.opaque.clone() {
                if let Some(fd) = self.open_layer_dir(&dir)? {
                    self.prune(fd, &dir)?;
                }
            }
        }
        // Children sort after their parents bytewise, so reverse order is
        // deepest first: a directory's mtime is set after everything inside it.
        let dirs = std::mem::take(&mut self.dirs);
        for (path, meta) in dirs.iter().rev() {
            if let Some(fd) = self.open_layer_dir(path)? {
                self.meta_on_fd(path, fd.as_fd(), meta)?;
            }
        }
        Ok(())
    }
}

/// Copy an entry's data, telling stream errors from file system errors.
fn copy_entry(data: &mut dyn Read, file: &mut File, path: &[u8]) -> Result<u64, ApplyError> {
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = match data.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReadError::Stream(e).into()),
        };
        file.write_all(&buf[..n])
            .map_err(|e| fs_err(path, "write file", e))?;
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::fs;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    use super::*;
    use crate::writer::{write_changes, Change, WriteOptions};

    fn opaque(p: &Path) -> Option<Vec<u8>> {
        let mut buf = [0u8; 16];
        rustix::fs::lgetxattr(p, OVERLAY_OPAQUE_XATTR, &mut buf[..])
            .ok()
            .map(|n| buf[..n].to_vec())
    }

    #[test]
    fn overlay_mode_writes_overlay_whiteouts_and_deletes_nothing() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: needs root for mknod and trusted xattrs");
            return;
        }
        let src = tempfile::tempdir().unwrap();
        let s = src.path();
        fs::create_dir_all(s.join("a")).unwrap();
        fs::create_dir_all(s.join("o")).unwrap();
        fs::create_dir_all(s.join("re")).unwrap();
        fs::write(s.join("o/new"), b"n").unwrap();
        fs::write(s.join("re/f"), b"f").unwrap();
        let changes = vec![
            Change::Added("a".into()),
            Change::Deleted("a/gone".into()),
            Change::OpaqueDir("o".into()),
            Change::Added("o/new".into()),
            // Whited out, then written again as a directory in the same layer.
            Change::Deleted("re".into()),
            Change::Added("re".into()),
            Change::Added("re/f".into()),
            Change::Deleted("top".into()),
        ];
        let mut blob = Vec::new();
        write_changes(s, &changes, &mut blob, &WriteOptions::default()).unwrap();

        let dst = tempfile::tempdir().unwrap();
        let d = dst.path();
        fs::write(d.join("top"), b"replaced by the whiteout").unwrap();
        let opts = ApplyOptions {
            whiteouts: WhiteoutMode::Overlay,
            ..ApplyOptions::default()
        };
        let report = apply_layer(&blob[..], d, &opts).unwrap();
        for wh in ["a/gone", "top"] {
            let md = fs::symlink_metadata(d.join(wh)).unwrap();
            assert!(md.file_type().is_char_device(), "{wh}");
            assert_eq!(md.rdev(), 0, "{wh}");
        }
        assert_eq!(opaque(&d.join("o")).as_deref(), Some(&b"y"[..]));
        assert_eq!(fs::read(d.join("o/new")).unwrap(), b"n");
        assert_eq!(opaque(&d.join("re")).as_deref(), Some(&b"y"[..]));
        assert_eq!(fs::read(d.join("re/f")).unwrap(), b"f");
        assert_eq!(opaque(&d.join("a")), None);
        assert!(!d.join("a/.wh.gone").exists() && !d.join("o/.wh..wh..opq").exists());
        assert_eq!(report.opaque_dirs, vec![PathBuf::from("o")]);

        // The default mode still deletes.
        let flat = tempfile::tempdir().unwrap();
        fs::write(flat.path().join("top"), b"lower").unwrap();
        apply_layer(&blob[..], flat.path(), &ApplyOptions::default()).unwrap();
        assert!(fs::symlink_metadata(flat.path().join("top")).is_err());
        assert!(fs::symlink_metadata(flat.path().join("a/gone")).is_err());
        assert_eq!(opaque(&flat.path().join("o")), None);
    }
}
