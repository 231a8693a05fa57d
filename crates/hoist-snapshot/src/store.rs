//! The snapshot directory: one unpacked directory per layer, keyed by diff_id.
//!
//! ```text
//! <root>/layers/sha256/<hex>/   a layer in overlay form: the lowerdir itself
//! <root>/tmp/<name>/            unpacks, scratch areas and trash being removed
//! <root>/locks/<xx>             lock stripes, by the first two hex digits of a diff_id
//! ```
//!
//! A snapshot only ever appears by `rename` of a complete directory, after the
//! file system was synced, so a path under `layers/` always holds a whole layer.
//! Every temp directory is `flock`ed by its writer for as long as it lives; `prune`
//! removes exactly the ones whose lock it can take, so a killed writer's leftovers
//! go and a live writer's stay. Unpacking the same layer twice at once is avoided
//! by an exclusive lock on the diff_id's stripe (threads and processes alike); the
//! loser of any remaining race finds the snapshot in place and discards its copy.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use hoist_layer::{apply_layer, ApplyOptions, WhiteoutMode};
use hoist_oci::{BlobStore, Descriptor, Digest, ImageConfig, ImageManifest, Store};
use rustix::fs::FlockOperation;
use rustix::io::Errno;

use crate::error::{io_err, SnapshotError};

/// The snapshot directory under `<home>/snapshots`.
#[derive(Debug, Clone)]
pub struct Snapshots {
    root: PathBuf,
    layers: PathBuf,
    tmp: PathBuf,
    locks: PathBuf,
}

/// What [`Snapshots::prune`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Snapshots removed.
    pub removed: usize,
    /// Snapshots kept.
    pub kept: usize,
    /// Temp directories of writers that are gone, removed.
    pub temp_removed: usize,
}

/// A fresh directory under the snapshot root (so on the same file system as the
/// snapshots), with empty `upper/` and `work/` subdirectories for an overlay
/// mount. Removed, with whatever is left in it, when dropped.
#[derive(Debug)]
pub struct Scratch {
    dir: TempDir,
    upper: PathBuf,
    work: PathBuf,
}

impl Scratch {
    /// The overlay upper directory, or a staging directory for `COPY` output;
    /// hand it to [`Snapshots::adopt`] to keep it.
    pub fn upper(&self) -> &Path {
        &self.upper
    }

    /// The overlay work directory (empty, never reused for another mount).
    pub fn work(&self) -> &Path {
        &self.work
    }

    /// The scratch directory itself, for other files a step needs (secrets,
    /// bind-mount sources); `upper()` and `work()` are inside it.
    pub fn path(&self) -> &Path {
        &self.dir.path
    }
}

impl Snapshots {
    /// Open (creating if needed) the snapshot directory at `root`.
    pub fn open(root: &Path) -> Result<Snapshots, SnapshotError> {
        let s = Snapshots {
            root: root.to_owned(),
            layers: root.join("layers"),
            tmp: root.join("tmp"),
            locks: root.join("locks"),
        };
        for dir in [&s.tmp, &s.locks] {
            fs::create_dir_all(dir).map_err(io_err(dir, "create directory"))?;
        }
        for alg in [hoist_oci::Algorithm::Sha256, hoist_oci::Algorithm::Sha512] {
            let dir = s.layers.join(alg.as_str());
            fs::create_dir_all(&dir).map_err(io_err(&dir, "create directory"))?;
        }
        Ok(s)
    }

    /// The snapshot root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn snapshot_path(&self, diff_id: &Digest) -> PathBuf {
        self.layers
            .join(diff_id.algorithm().as_str())
            .join(diff_id.hex())
    }

    /// Path of `diff_id`'s snapshot if present.
    pub fn get(&self, diff_id: &Digest) -> Option<PathBuf> {
        let p = self.snapshot_path(diff_id);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => Some(p),
            _ => None,
        }
    }

    /// The unpacked directory of one layer (overlay whiteout form), unpacking it
    /// from `blobs` on first use: into a temp directory under the root, checking
    /// the content against `diff_id`, then renamed into place. Safe for concurrent
    /// callers, threads and processes; a killed unpack leaves only a temp
    /// directory, which [`Snapshots::prune`] removes.
    pub fn layer_dir(
        &self,
        blobs: &BlobStore,
        layer: &Descriptor,
        diff_id: &Digest,
    ) -> Result<PathBuf, SnapshotError> {
        if let Some(p) = self.get(diff_id) {
            return Ok(p);
        }
        let _lock = self.lock_stripe(diff_id)?;
        if let Some(p) = self.get(diff_id) {
            return Ok(p);
        }
        let tmp = self.temp_dir()?;
        let target = tmp.path.join("rootfs");
        fs::create_dir(&target).map_err(io_err(&target, "create directory"))?;
        fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(io_err(&target, "chmod"))?;
        let blob = blobs
            .open_blob(&layer.digest, Some(layer.size))
            .map_err(|source| SnapshotError::Blob {
                digest: layer.digest.clone(),
                source,
            })?;
        let opts = ApplyOptions {
            whiteouts: WhiteoutMode::Overlay,
            ..ApplyOptions::default()
        };
        tracing::debug!(layer = %layer.digest, diff_id = %diff_id, "unpacking layer snapshot");
        let report = apply_layer(BufReader::with_capacity(1 << 20, blob), &target, &opts).map_err(
            |source| SnapshotError::Apply {
                digest: layer.digest.clone(),
                path: target.clone(),
                source: Box::new(source),
            },
        )?;
        if &report.diff_id != diff_id {
            return Err(SnapshotError::DiffIdMismatch {
                digest: layer.digest.clone(),
                expected: diff_id.clone(),
                actual: report.diff_id,
            });
        }
        self.install(&target, diff_id)
    }

    /// Lowerdirs for an image, top-most layer first (overlay `lowerdir=` order),
    /// unpacking the layers met for the first time.
    pub fn image_lowers(
        &self,
        store: &Store,
        manifest: &ImageManifest,
        config: &ImageConfig,
    ) -> Result<Vec<PathBuf>, SnapshotError> {
        let diff_ids = &config.rootfs.diff_ids;
        if manifest.layers.len() != diff_ids.len() {
            return Err(SnapshotError::LayerCount {
                layers: manifest.layers.len(),
                diff_ids: diff_ids.len(),
            });
        }
        let mut out = Vec::with_capacity(diff_ids.len());
        for (layer, diff_id) in manifest.layers.iter().zip(diff_ids).rev() {
            out.push(self.layer_dir(store.blobs(), layer, diff_id)?);
        }
        Ok(out)
    }

    /// A fresh scratch area under the root: `upper()` and `work()` for an overlay
    /// mount, or a staging directory for `COPY` output.
    pub fn scratch(&self) -> Result<Scratch, SnapshotError> {
        let dir = self.temp_dir()?;
        let upper = dir.path.join("upper");
        let work = dir.path.join("work");
        for d in [&upper, &work] {
            fs::create_dir(d).map_err(io_err(d, "create directory"))?;
            fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .map_err(io_err(d, "chmod"))?;
        }
        Ok(Scratch { dir, upper, work })
    }

    /// Move an overlay-form directory (an upper directory after a `RUN`, or a
    /// `COPY` staging directory) in as the snapshot of `diff_id`. If that snapshot
    /// exists already, `dir` is removed and the existing path returned. `dir` must
    /// be on the snapshot root's file system (a [`Scratch`] is).
    pub fn adopt(&self, dir: &Path, diff_id: &Digest) -> Result<PathBuf, SnapshotError> {
        let md = fs::symlink_metadata(dir).map_err(io_err(dir, "stat"))?;
        if !md.is_dir() {
            return Err(SnapshotError::Io {
                path: dir.to_owned(),
                op: "adopt as snapshot",
                source: io::Error::from(io::ErrorKind::NotADirectory),
            });
        }
        if let Some(p) = self.get(diff_id) {
            discard(dir);
            return Ok(p);
        }
        let _lock = self.lock_stripe(diff_id)?;
        self.install(dir, diff_id)
    }

    /// Rename a complete directory into place (the stripe lock held), or discard
    /// it if the snapshot appeared meanwhile.
    fn install(&self, dir: &Path, diff_id: &Digest) -> Result<PathBuf, SnapshotError> {
        let dest = self.snapshot_path(diff_id);
        if self.get(diff_id).is_some() {
            discard(dir);
            return Ok(dest);
        }
        // Everything written into `dir` reaches the disk before the name does:
        // a crash must not leave a snapshot of empty files.
        let f = File::open(dir).map_err(io_err(dir, "open"))?;
        rustix::fs::syncfs(&f).map_err(|e| io_err(dir, "syncfs")(e.into()))?;
        drop(f);
        match fs::rename(dir, &dest) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.raw_os_error().map(Errno::from_raw_os_error),
                    Some(Errno::EXIST | Errno::NOTEMPTY)
                ) =>
            {
                discard(dir);
                return Ok(dest);
            }
            Err(e) => return Err(io_err(dir, "rename into the snapshot directory")(e)),
        }
        let parent = dest.parent().unwrap_or(&self.layers);
        File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io_err(parent, "fsync"))?;
        Ok(dest)
    }

    /// Remove snapshots whose diff_id is not in `keep`, and the temp directories
    /// of writers that are gone. Live writers' temp directories stay.
    pub fn prune(&self, keep: &BTreeSet<Digest>) -> Result<PruneReport, SnapshotError> {
        let mut report = PruneReport::default();
        for alg in [hoist_oci::Algorithm::Sha256, hoist_oci::Algorithm::Sha512] {
            let dir = self.layers.join(alg.as_str());
            for name in list(&dir)? {
                let Some(text) = name.to_str() else { continue };
                let Ok(digest) = format!("{}:{text}", alg.as_str()).parse::<Digest>() else {
                    tracing::warn!(path = %dir.join(&name).display(), "not a snapshot name: left alone");
                    continue;
                };
                if keep.contains(&digest) {
                    report.kept += 1;
                    continue;
                }
                let _lock = self.lock_stripe(&digest)?;
                let src = dir.join(&name);
                if fs::symlink_metadata(&src).is_err() {
                    continue;
                }
                // Out of sight in one step, then removed at leisure.
                let trash = self.temp_dir()?;
                let to = trash.path.join("snapshot");
                fs::rename(&src, &to).map_err(io_err(&src, "move to trash"))?;
                remove_all(&to)?;
                report.removed += 1;
            }
        }
        for name in list(&self.tmp)? {
            let path = self.tmp.join(&name);
            let md = match fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(&path, "stat")(e)),
            };
            if md.is_dir() {
                let f = match File::open(&path) {
                    Ok(f) => f,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io_err(&path, "open")(e)),
                };
                match rustix::fs::flock(&f, FlockOperation::NonBlockingLockExclusive) {
                    Ok(()) => {}
                    Err(Errno::WOULDBLOCK) => continue,
                    Err(e) => return Err(io_err(&path, "lock")(e.into())),
                }
                remove_all(&path)?;
            } else {
                fs::remove_file(&path).map_err(io_err(&path, "remove"))?;
            }
            report.temp_removed += 1;
        }
        Ok(report)
    }

    /// A new, locked, empty directory under `tmp/`.
    fn temp_dir(&self) -> Result<TempDir, SnapshotError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        loop {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let name = format!(
                "{}-{nanos:08x}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let path = self.tmp.join(name);
            match fs::create_dir(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_err(&path, "create temp directory")(e)),
            }
            let lock = File::open(&path).map_err(io_err(&path, "open temp directory"))?;
            rustix::fs::flock(&lock, FlockOperation::LockExclusive)
                .map_err(|e| io_err(&path, "lock temp directory")(e.into()))?;
            // A prune may have taken the lock between mkdir and flock and removed
            // the directory: start over with another one.
            let ours = lock.metadata().map_err(io_err(&path, "stat"))?;
            match fs::symlink_metadata(&path) {
                Ok(m) if m.dev() == ours.dev() && m.ino() == ours.ino() => {
                    return Ok(TempDir { path, _lock: lock })
                }
                _ => continue,
            }
        }
    }

    /// Exclusive lock on the stripe of `diff_id` (blocking).
    fn lock_stripe(&self, diff_id: &Digest) -> Result<File, SnapshotError> {
        let stripe = diff_id.hex().get(..2).unwrap_or("00");
        let path = self.locks.join(stripe);
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(&path, "open lock"))?;
        rustix::fs::flock(&f, FlockOperation::LockExclusive)
            .map_err(|e| io_err(&path, "lock")(e.into()))?;
        Ok(f)
    }
}

/// A directory under `tmp/`, locked while this lives, removed on drop.
#[derive(Debug)]
struct TempDir {
    path: PathBuf,
    _lock: File,
}

impl Drop for TempDir {
    fn drop(&mut self) {
        discard(&self.path);
    }
}

fn discard(path: &Path) {
    if let Err(e) = remove_all(path) {
        tracing::warn!("{e}");
    }
}

fn remove_all(path: &Path) -> Result<(), SnapshotError> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path, "remove")(e)),
    }
}

fn list(dir: &Path) -> Result<Vec<std::ffi::OsString>, SnapshotError> {
    let mut out = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err(dir, "read directory")(e)),
    };
    for entry in rd {
        out.push(entry.map_err(io_err(dir, "read directory"))?.file_name());
    }
    out.sort();
    Ok(out)
}
