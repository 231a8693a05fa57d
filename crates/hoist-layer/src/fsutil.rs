//! File-descriptor-relative file system helpers.
//!
//! Every path that comes from a layer or a rootfs is resolved here, against a
//! directory fd, with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: symlinks
//! (absolute or `..`-laden) are interpreted as if the root were `/`, so resolution
//! can never leave it. Final components are then handled with `*at` calls that do
//! not follow symlinks.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags};

/// How every in-root lookup resolves.
const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// Largest xattr name list and value the kernel allows (`XATTR_LIST_MAX`,
/// `XATTR_SIZE_MAX`).
const XATTR_MAX: usize = 65536;

/// Open `rel` (normalised, `""` = the root itself) beneath `root`, resolving every
/// symlink inside the root.
pub(crate) fn open_in_root(root: BorrowedFd<'_>, rel: &[u8], flags: OFlags) -> io::Result<OwnedFd> {
    let p: &[u8] = if rel.is_empty() { b"." } else { rel };
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(root, p, flags | OFlags::CLOEXEC, Mode::empty(), RESOLVE) {
            // The kernel asks for a retry when a rename raced with the lookup.
            Err(rustix::io::Errno::AGAIN) if tries < 16 => tries += 1,
            r => return r.map_err(io::Error::from),
        }
    }
}

/// Open a directory for `O_PATH` use (a parent for `*at` calls).
pub(crate) fn open_dir_in_root(root: BorrowedFd<'_>, rel: &[u8]) -> io::Result<OwnedFd> {
    open_in_root(root, rel, OFlags::PATH | OFlags::DIRECTORY)
}

/// The file type of `name` in `dir` without following it, `None` if absent.
pub(crate) fn lstat_type(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Option<FileType>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `/proc/self/fd/<dir>/<name>`: a path naming `name` inside an already-resolved
/// directory, for the calls that have no `*at` form (`lsetxattr`, `llistxattr`).
/// The magic link is the directory itself; `name` is one component and the `l*`
/// calls do not follow it.
pub(crate) fn proc_path(dir: BorrowedFd<'_>, name: &[u8]) -> Vec<u8> {
    let mut p = format!("/proc/self/fd/{}", dir.as_raw_fd()).into_bytes();
    if !name.is_empty() {
        p.push(b'/');
        p.extend_from_slice(name);
    }
    p
}

/// Names of directory entries (without `.` and `..`).
pub(crate) fn list_dir(dir: OwnedFd) -> io::Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for entry in Dir::new(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            out.push(name.to_vec());
        }
    }
    Ok(out)
}

/// Remove `name` from `dir`, recursively if it is a directory. Never follows
/// symlinks; a missing entry is not an error.
pub(crate) fn remove_all_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    match lstat_type(dir, name)? {
        None => Ok(()),
        Some(FileType::Directory) => {
            let child = rustix::fs::openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let keep = child.try_clone()?;
            for n in list_dir(child)? {
                remove_all_at(keep.as_fd(), &n)?;
            }
            drop(keep);
            ignore_missing(rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR))
        }
        Some(_) => ignore_missing(rustix::fs::unlinkat(dir, name, AtFlags::empty())),
    }
}

fn ignore_missing(r: rustix::io::Result<()>) -> io::Result<()> {
    match r {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// All extended attributes of the object at `path` (not following a final
/// symlink), sorted by name. An unsupporting file system yields none.
pub(crate) fn read_xattrs(path: &[u8]) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut names = vec![0u8; XATTR_MAX];
    let n = match rustix::fs::llistxattr(path, &mut names[..]) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    let mut value = vec![0u8; XATTR_MAX];
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        match rustix::fs::lgetxattr(path, name, &mut value[..]) {
            Ok(len) => out.push((name.to_vec(), value[..len].to_vec())),
            // Removed between list and get.
            Err(rustix::io::Errno::NODATA) => {}
            Err(e) => return Err(e.into()),
        }
    }
    out.sort();
    Ok(out)
}
