//! An overlay upper directory as an OCI change list.
//!
//! After a `RUN` on `lowerdir=...,upperdir=U`, `U` holds exactly what the step
//! changed: new and copied-up objects as they are, deleted lower objects as
//! character devices 0/0, and directories that replace a lower one (or were
//! removed and made again) marked `trusted.overlay.opaque=y`. So the change list is
//! a walk of `U`, with no look at the lower layers at all.

use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use hoist_layer::Change;
use rustix::io::Errno;

use crate::error::{io_err, SnapshotError};

/// Whether `path` (not followed) carries `trusted.overlay.<name>`, and its value.
pub(crate) fn overlay_xattr(path: &Path, name: &str) -> Result<Option<Vec<u8>>, SnapshotError> {
    let mut buf = vec![0u8; 256];
    let full = format!("trusted.overlay.{name}");
    match rustix::fs::lgetxattr(path, full.as_str(), &mut buf[..]) {
        Ok(n) => {
            buf.truncate(n);
            Ok(Some(buf))
        }
        Err(Errno::NODATA | Errno::NOTSUP) => Ok(None),
        // A value longer than the buffer: present, and not `y`.
        Err(Errno::RANGE) => Ok(Some(Vec::new())),
        Err(e) => Err(io_err(path, "read overlay xattr")(e.into())),
    }
}

/// Whether `path` is a directory marked opaque (`trusted.overlay.opaque=y`).
pub(crate) fn is_opaque(path: &Path) -> Result<bool, SnapshotError> {
    Ok(overlay_xattr(path, "opaque")?.as_deref() == Some(b"y"))
}

/// Whether metadata describes an overlay whiteout (character device 0/0).
pub(crate) fn is_whiteout(md: &fs::Metadata) -> bool {
    md.file_type().is_char_device() && md.rdev() == 0
}

/// An overlay upper directory as an OCI change list: a character device 0/0 is
/// [`Change::Deleted`], a directory with `trusted.overlay.opaque=y` is
/// [`Change::OpaqueDir`] (its contents follow as [`Change::Added`]), everything
/// else is [`Change::Added`]. Sorted component by component, parents before
/// children; paths relative to `upper`. The upper root itself is not listed
/// (unless it is opaque, as `OpaqueDir("")`).
///
/// Refuses objects overlayfs wrote with `metacopy` (data left in a lower layer)
/// or `redirect_dir` (a renamed lower directory) on, which a walk of the upper
/// directory cannot turn into a layer.
pub fn diff_upper(upper: &Path) -> Result<Vec<Change>, SnapshotError> {
    let mut out = Vec::new();
    if is_opaque(upper)? {
        out.push(Change::OpaqueDir(PathBuf::new()));
    }
    walk(upper, Path::new(""), &mut out)?;
    Ok(out)
}

fn walk(upper: &Path, rel: &Path, out: &mut Vec<Change>) -> Result<(), SnapshotError> {
    let dir = upper.join(rel);
    let mut names: Vec<OsString> = Vec::new();
    for entry in fs::read_dir(&dir).map_err(io_err(&dir, "read directory"))? {
        names.push(entry.map_err(io_err(&dir, "read directory"))?.file_name());
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in names {
        let child_rel = rel.join(&name);
        let host = upper.join(&child_rel);
        let md = fs::symlink_metadata(&host).map_err(io_err(&host, "stat"))?;
        if is_whiteout(&md) {
            out.push(Change::Deleted(child_rel));
        } else if md.is_dir() {
            if overlay_xattr(&host, "redirect")?.is_some() {
                return Err(SnapshotError::Unsupported {
                    path: host,
                    reason: "directory renamed with overlayfs redirect_dir on: mount with redirect_dir=off".to_owned(),
                });
            }
            if is_opaque(&host)? {
                out.push(Change::OpaqueDir(child_rel.clone()));
            } else {
                out.push(Change::Added(child_rel.clone()));
            }
            walk(upper, &child_rel, out)?;
        } else {
            if md.is_file() && overlay_xattr(&host, "metacopy")?.is_some() {
                return Err(SnapshotError::Unsupported {
                    path: host,
                    reason:
                        "metadata-only copy-up (overlayfs metacopy on): mount with metacopy=off"
                            .to_owned(),
                });
            }
            out.push(Change::Added(child_rel));
        }
    }
    Ok(())
}
