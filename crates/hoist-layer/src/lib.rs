//! OCI image layers: writing a rootfs or a change list as a deterministic tar, and
//! applying a layer onto a directory without ever leaving it.
//!
//! # Main types
//!
//! * [`write_dir`] and [`write_changes`] produce a layer into any `Write`. The
//!   builder hands over either a whole root (a one-layer image) or a root plus a list
//!   of [`Change`]s (`Added`/`Modified`, `Deleted` as `.wh.<name>`, `OpaqueDir` as
//!   `.wh..wh..opq`). [`WriteOptions`] carries the [`Compression`], its level, an
//!   optional `SOURCE_DATE_EPOCH` (passed in, never read from the environment) and
//!   the gzip thread count, which never changes a byte of the output. The
//!   result, [`LayerInfo`], has the blob digest and size *and* the diff_id, computed
//!   in one pass by two `hoist_oci::DigestWriter`s on either side of the compressor,
//!   plus the OCI media type.
//! * [`apply_layer`] reads a plain, gzip or zstd layer (detected by magic bytes, see
//!   [`compression::detect`]) and applies it onto a directory: OCI whiteouts,
//!   opaque directories, ownership (when root, see [`ApplyOptions`]), modes with
//!   setuid/setgid/sticky, mtimes, xattrs, hardlinks, symlinks, devices and fifos.
//!   [`ApplyOptions::whiteouts`] picks between deleting what whiteouts name
//!   (the default) and writing them in overlayfs form ([`WhiteoutMode`]).
//!   It returns an [`ApplyReport`] (diff_id, applied paths, whiteouts, warnings) or
//!   a typed [`ApplyError`] naming the entry.
//! * [`LayerReader`] lists a layer's entries as [`EntryInfo`] (normalised path,
//!   [`EntryKind`], size, mode, owner, [`Whiteout`] meaning) with their content as a
//!   reader, for the scanner; the applier is built on it.
//! * [`walk_visible`] walks what an image shows without unpacking it: layers
//!   top-down, each tar streamed once, every visible regular file a
//!   [`VisibleVisitor`] wants handed over with its content and layer index
//!   (whiteouts, opaque directories, same-layer duplicates and hardlinks handled;
//!   see [`visible`]).
//!
//! # Determinism
//!
//! The writer emits every header byte itself: entries sorted component by
//! component (parents first, bytewise), ustar headers with empty uname/gname, PAX
//! records (sorted) only where ustar cannot say it (long names and link names, big
//! uid/gid/size, out-of-range mtime, `SCHILY.xattr.*`), no atime/ctime, mtimes
//! clamped to the epoch, hardlinks pointing at the first path of their inode in
//! sorted order, gzip without mtime or name. Same tree and options, same digests.
//!
//! # Design choice: fd-relative resolution inside the root
//!
//! Both directions open the root once as a directory fd and resolve every parent
//! with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`; the final component is
//! then handled by `*at` calls that do not follow it (`statat(AT_SYMLINK_NOFOLLOW)`,
//! `openat(O_NOFOLLOW | O_EXCL)`, `mkdirat`, `symlinkat`, `linkat`, `mknodat`,
//! `utimensat(AT_SYMLINK_NOFOLLOW)`). The kernel interprets any symlink met on the
//! way, absolute or `..`-laden, as if the root were `/`. So `link -> /` followed by
//! `link/etc/passwd` writes `ROOT/etc/passwd`; `up -> ../../..` followed by `up/x`
//! writes `ROOT/x`; a hardlink to `/etc/hostname` links `ROOT/etc/hostname` or fails
//! because that does not exist. Entries with a `..` component are refused
//! ([`ReadError::UnsafePath`]); a leading `/` is stripped, as Docker does. Symlink
//! entries are written as-is: absolute targets are normal inside images. Calls
//! without an `*at` form (xattrs on symlinks and special files) go through
//! `/proc/self/fd/<parent>/<name>` with the `l*` variants, so they too only touch the
//! already-resolved parent. No string path is ever joined onto the host root.
//!
//! # What this crate does not do
//!
//! * No registry or blob-store I/O: it reads from a `Read` and writes to a `Write`;
//!   `hoist-oci` stores and verifies blobs, and the caller compares the diff_id.
//! * No overlayfs management: no mounts, no translation of overlay whiteouts
//!   (char 0/0 devices, `trusted.overlay.opaque`) into OCI ones; `hoist-snapshot`
//!   computes the change list. The one step toward overlayfs is
//!   [`WhiteoutMode::Overlay`], which unpacks a layer's whiteouts *as* overlay
//!   whiteouts (for a lowerdir) instead of deleting. `trusted.overlay.*`/
//!   `user.overlay.*` xattrs from a tar are neither written nor applied.
//! * No uid/gid remapping for rootless use, no SELinux relabelling, and no defence
//!   against *other processes* modifying the target while a layer is applied.

pub mod apply;
pub mod compression;
pub mod error;
mod fsutil;
mod paths;
pub mod reader;
mod tarfmt;
pub mod visible;
pub mod writer;

pub use apply::{apply_layer, ApplyOptions, ApplyReport, ApplyWarning, WhiteoutMode};
pub use compression::{Compression, Decompressor};
pub use error::{ApplyError, ReadError, WriteError};
pub use reader::{EntryInfo, EntryKind, LayerEntry, LayerReader, Whiteout};
pub use visible::{walk_visible, LayerProblem, VisibleFile, VisibleVisitor, WalkReport};
pub use writer::{write_changes, write_dir, Change, LayerInfo, WriteOptions};
