//! Writing a layer: a whole directory or a change list, as a deterministic tar.
//!
//! Entries are gathered first (every path, or the change list plus its whiteout
//! markers), sorted component by component, then written one by one. Each source
//! object is looked up through its parent directory resolved in the root with
//! `openat2(RESOLVE_IN_ROOT)` and `statat(AT_SYMLINK_NOFOLLOW)`, so a symlink
//! planted in the tree by a build step can never make the writer read a host file.
//!
//! Output flows `tar bytes -> DigestWriter (diff_id) -> compressor -> DigestWriter
//! (digest, size) -> caller's Write`, so one pass yields both digests.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use hoist_oci::{Digest, DigestWriter};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::compression::{Compression, Encoder};
use crate::error::WriteError;
use crate::fsutil::{list_dir, open_dir_in_root, open_in_root, proc_path, read_xattrs};
use crate::paths::{cmp_components, join, lossy, normalize, path_bytes, split_parent, to_path_buf};
use crate::reader::{WHITEOUT_OPAQUE, WHITEOUT_PREFIX};
use crate::tarfmt::{self, typeflag, HeaderSpec};

/// How to write a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// Compression of the blob.
    pub compression: Compression,
    /// Compression level (gzip 0-9, default 6; zstd 1-22, default 3).
    pub level: Option<i32>,
    /// `SOURCE_DATE_EPOCH`: every mtime becomes `min(mtime, epoch)`. The library
    /// never reads the environment; the caller passes it here.
    pub source_date_epoch: Option<i64>,
    /// Threads compressing gzip (default: `std::thread::available_parallelism`).
    /// Never changes a byte of the output; zstd ignores it.
    pub threads: Option<usize>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            compression: Compression::Gzip,
            level: None,
            source_date_epoch: None,
            threads: None,
        }
    }
}

/// One change between a lower rootfs and the current one, as the builder found it.
///
/// Paths are relative to the root (a leading `/` is accepted and dropped; `..` is
/// refused). Each change names exactly one path: a directory that was added must
/// have its children listed too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new path; its current state is archived.
    Added(PathBuf),
    /// A changed path; its current state is archived.
    Modified(PathBuf),
    /// A path that no longer exists; archived as a `.wh.<name>` whiteout.
    Deleted(PathBuf),
    /// A directory whose lower contents are all hidden: archived as the directory
    /// itself plus a `.wh..wh..opq` marker inside it.
    OpaqueDir(PathBuf),
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// Digest of the blob as written (compressed).
    pub digest: Digest,
    /// Size of the blob in bytes.
    pub size: u64,
    /// SHA-256 of the uncompressed tar: the image config's `rootfs.diff_ids` entry.
    pub diff_id: Digest,
    /// Size of the uncompressed tar.
    pub uncompressed_size: u64,
    /// Compression used.
    pub compression: Compression,
    /// OCI media type of the blob (`application/vnd.oci.image.layer.v1.tar[+gzip|+zstd]`).
    pub media_type: &'static str,
    /// Number of tar entries (whiteouts included, PAX headers not).
    pub entries: u64,
}

/// Archive every object under `root` (not `root` itself) into a layer.
pub fn write_dir<W: Write>(
    root: &Path,
    out: W,
    opts: &WriteOptions,
) -> Result<LayerInfo, WriteError> {
    let root_fd = open_root(root)?;
    let mut items = Vec::new();
    let mut stack: Vec<Vec<u8>> = vec![Vec::new()];
    while let Some(dir) = stack.pop() {
        let fd = open_in_root(
            root_fd.as_fd(),
            &dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW,
        )
        .map_err(|e| source_err(&dir, "open directory", e))?;
        let parent = fd
            .try_clone()
            .map_err(|e| source_err(&dir, "open directory", e))?;
        let names = list_dir(fd).map_err(|e| source_err(&dir, "read directory", e))?;
        for name in names {
            let p = join(&dir, &name);
            // d_type is not reliable on every file system; ask `statat`.
            let st = rustix::fs::statat(&parent, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| source_err(&p, "stat", e.into()))?;
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                stack.push(p.clone());
            }
            items.push(Item::Fs(p));
        }
    }
    write_items(&root_fd, items, out, opts)
}

/// Archive a change list relative to `root` into a layer: `Added`/`Modified`
/// paths from the file system, `Deleted` as whiteouts, `OpaqueDir` as the
/// directory plus an opaque marker.
pub fn write_changes<W: Write>(
    root: &Path,
    changes: &[Change],
    out: W,
    opts: &WriteOptions,
) -> Result<LayerInfo, WriteError> {
    let root_fd = open_root(root)?;
    let mut items = Vec::with_capacity(changes.len());
    for change in changes {
        let (p, kind) = match change {
            Change::Added(p) | Change::Modified(p) => (p, 0),
            Change::Deleted(p) => (p, 1),
            Change::OpaqueDir(p) => (p, 2),
        };
        let norm = normalize(path_bytes(p)).map_err(|e| WriteError::InvalidChange {
            path: p.clone(),
            reason: e.as_str().to_owned(),
        })?;
        if norm.is_empty() && kind != 2 {
            return Err(WriteError::InvalidChange {
                path: p.clone(),
                reason: "names the root itself".to_owned(),
            });
        }
        match kind {
            0 => items.push(Item::Fs(norm)),
            1 => {
                let (parent, name) = split_parent(&norm);
                let mut wh = WHITEOUT_PREFIX.as_bytes().to_vec();
                wh.extend_from_slice(name);
                items.push(Item::Whiteout(join(parent, &wh)));
            }
            _ => {
                if !norm.is_empty() {
                    items.push(Item::Fs(norm.clone()));
                }
                items.push(Item::Whiteout(join(&norm, WHITEOUT_OPAQUE.as_bytes())));
            }
        }
    }
    write_items(&root_fd, items, out, opts)
}

fn open_root(root: &Path) -> Result<OwnedFd, WriteError> {
    rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| WriteError::Root {
        path: root.to_owned(),
        source: e.into(),
    })
}

fn source_err(path: &[u8], op: &'static str, source: io::Error) -> WriteError {
    WriteError::Source {
        path: to_path_buf(path),
        op,
        source,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// An object in the root, archived as it is.
    Fs(Vec<u8>),
    /// An empty whiteout file (`.wh.<name>` or `.wh..wh..opq`) at this tar path.
    Whiteout(Vec<u8>),
}

impl Item {
    fn path(&self) -> &[u8] {
        match self {
            Item::Fs(p) | Item::Whiteout(p) => p,
        }
    }
}

/// Xattrs that describe the host or the overlay the tree sits on, not the image.
fn keep_xattr(name: &[u8]) -> bool {
    !(name.starts_with(b"system.")
        || name == b"security.selinux"
        || name.starts_with(b"trusted.overlay.")
        || name.starts_with(b"user.overlay."))
}

type Out<W> = BufWriter<DigestWriter<Encoder<DigestWriter<W>>>>;

struct TarWriter<'a, W: Write> {
    root: &'a OwnedFd,
    out: Out<W>,
    opts: &'a WriteOptions,
    /// First tar path of each multiply-linked inode.
    links: HashMap<(u64, u64), Vec<u8>>,
    /// The last parent directory opened, reused by its siblings.
    parent: Option<(Vec<u8>, OwnedFd)>,
    entries: u64,
}

fn write_items<W: Write>(
    root: &OwnedFd,
    mut items: Vec<Item>,
    out: W,
    opts: &WriteOptions,
) -> Result<LayerInfo, WriteError> {
    items.sort_by(|a, b| cmp_components(a.path(), b.path()));
    items.dedup();
    let threads = opts.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let encoder = Encoder::new(
        DigestWriter::new(out),
        opts.compression,
        opts.level,
        threads,
    )
    .map_err(WriteError::Output)?;
    let mut w = TarWriter {
        root,
        out: BufWriter::with_capacity(1 << 16, DigestWriter::new(encoder)),
        opts,
        links: HashMap::new(),
        parent: None,
        entries: 0,
    };
    for item in &items {
        match item {
            Item::Fs(p) => w.write_fs(p)?,
            Item::Whiteout(p) => w.write_whiteout(p)?,
        }
    }
    tarfmt::write_trailer(&mut w.out).map_err(WriteError::Output)?;
    let entries = w.entries;
    let diff_writer = w
        .out
        .into_inner()
        .map_err(|e| WriteError::Output(e.into_error()))?;
    let (encoder, diff_id, uncompressed_size) = diff_writer.finish();
    let blob_writer = encoder.finish().map_err(WriteError::Output)?;
    let (mut sink, digest, size) = blob_writer.finish();
    sink.flush().map_err(WriteError::Output)?;
    Ok(LayerInfo {
        digest,
        size,
        diff_id,
        uncompressed_size,
        compression: opts.compression,
        media_type: hoist_oci::media_type::oci_layer(opts.compression),
        entries,
    })
}

impl<W: Write> TarWriter<'_, W> {
    fn clamp(&self, mtime: i64) -> i64 {
        match self.opts.source_date_epoch {
            Some(epoch) => mtime.min(epoch),
            None => mtime,
        }
    }

    fn parent_fd(&mut self, parent: &[u8]) -> Result<&OwnedFd, WriteError> {
        let cached = matches!(&self.parent, Some((p, _)) if p == parent);
        if !cached {
            let fd = open_dir_in_root(self.root.as_fd(), parent)
                .map_err(|e| source_err(parent, "open parent directory", e))?;
            self.parent = Some((parent.to_vec(), fd));
        }
        match &self.parent {
            Some((_, fd)) => Ok(fd),
            None => unreachable!("parent cache was just filled"),
        }
    }

    fn write_whiteout(&mut self, path: &[u8]) -> Result<(), WriteError> {
        let spec = HeaderSpec {
            path,
            typeflag: typeflag::REGULAR,
            mode: 0,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
            linkname: b"",
            devmajor: 0,
            devminor: 0,
            xattrs: &[],
        };
        tarfmt::write_headers(&mut self.out, &spec).map_err(WriteError::Output)?;
        self.entries += 1;
        Ok(())
    }

    fn write_fs(&mut self, path: &[u8]) -> Result<(), WriteError> {
        let (parent, name) = split_parent(path);
        let parent_fd = self
            .parent_fd(parent)?
            .try_clone()
            .map_err(|e| source_err(parent, "dup", e))?;
        let st = rustix::fs::statat(&parent_fd, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| source_err(path, "stat", e.into()))?;
        let ftype = FileType::from_raw_mode(st.st_mode);
        let mut tar_path = path.to_vec();
        let mut spec_type;
        let mut linkname = Vec::new();
        let mut size = 0;
        let (mut devmajor, mut devminor) = (0, 0);
        let mut file = None;
        let mut st = st;
        match ftype {
            FileType::Directory => {
                tar_path.push(b'/');
                spec_type = typeflag::DIR;
            }
            FileType::RegularFile => {
                let fd = rustix::fs::openat(
                    &parent_fd,
                    name,
                    OFlags::RDONLY
                        | OFlags::NOFOLLOW
                        | OFlags::NONBLOCK
                        | OFlags::NOCTTY
                        | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| source_err(path, "open", e.into()))?;
                // Describe what was opened, not what was stat'ed a moment earlier.
                st = rustix::fs::fstat(&fd).map_err(|e| source_err(path, "stat", e.into()))?;
                if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                    return Err(source_err(
                        path,
                        "open",
                        io::Error::other("changed type while being archived"),
                    ));
                }
                size = u64::try_from(st.st_size).unwrap_or(0);
                spec_type = typeflag::REGULAR;
                file = Some(File::from(fd));
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(&parent_fd, name, Vec::new())
                    .map_err(|e| source_err(path, "readlink", e.into()))?;
                linkname = target.into_bytes();
                spec_type = typeflag::SYMLINK;
            }
            FileType::CharacterDevice | FileType::BlockDevice => {
                spec_type = if ftype == FileType::CharacterDevice {
                    typeflag::CHAR
                } else {
                    typeflag::BLOCK
                };
                devmajor = rustix::fs::major(st.st_rdev);
                devminor = rustix::fs::minor(st.st_rdev);
            }
            FileType::Fifo => spec_type = typeflag::FIFO,
            FileType::Socket => {
                tracing::debug!(path = %lossy(path), "skipping socket: sockets cannot be archived");
                return Ok(());
            }
            FileType::Unknown => {
                tracing::debug!(path = %lossy(path), "skipping object of unknown type");
                return Ok(());
            }
        }

        // A second name of an inode already in this layer becomes a hardlink entry.
        if ftype != FileType::Directory && st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key) {
                linkname = first.clone();
                spec_type = typeflag::HARDLINK;
                size = 0;
                file = None;
            } else {
                self.links.insert(key, path.to_vec());
            }
        }

        let xattrs = if spec_type == typeflag::HARDLINK {
            Vec::new()
        } else {
            let pp = proc_path(parent_fd.as_fd(), name);
            let mut xs = read_xattrs(&pp).map_err(|e| source_err(path, "read xattrs", e))?;
            xs.retain(|(n, _)| {
                if !keep_xattr(n) {
                    return false;
                }
                if std::str::from_utf8(n).is_err() {
                    tracing::warn!(path = %lossy(path), xattr = %lossy(n), "skipping xattr with a non-UTF-8 name");
                    return false;
                }
                true
            });
            xs
        };

        let spec = HeaderSpec {
            path: &tar_path,
            typeflag: spec_type,
            mode: st.st_mode & 0o7777,
            uid: u64::from(st.st_uid),
            gid: u64::from(st.st_gid),
            size,
            mtime: self.clamp(st.st_mtime),
            linkname: &linkname,
            devmajor,
            devminor,
            xattrs: &xattrs,
        };
        tarfmt::write_headers(&mut self.out, &spec).map_err(WriteError::Output)?;
        if let Some(f) = file {
            let mut limited = f.take(size);
            let copied = copy_exact(&mut limited, &mut self.out).map_err(|e| match e {
                CopyError::Read(e) => source_err(path, "read", e),
                CopyError::Write(e) => WriteError::Output(e),
            })?;
            if copied != size {
                return Err(WriteError::Changed {
                    path: to_path_buf(path),
                    expected: size,
                    actual: copied,
                });
            }
            tarfmt::pad(&mut self.out, size).map_err(WriteError::Output)?;
        }
        self.entries += 1;
        Ok(())
    }
}

enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// `io::copy` that tells read failures (the source) from write failures (the output).
fn copy_exact(r: &mut impl Read, w: &mut impl Write) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        w.write_all(&buf[..n]).map_err(CopyError::Write)?;
        total += n as u64;
    }
}
