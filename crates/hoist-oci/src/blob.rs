//! The content-addressed blob store: `blobs/<algorithm>/<hex>` under the store root.
//!
//! Invariants:
//! - a file at a blob path always holds exactly the bytes of its digest: writes go to a
//!   temp file in the same file system, are verified against the digest, fsynced, then
//!   renamed into place (and the directory fsynced), so a crash leaves either nothing
//!   or the whole blob;
//! - concurrent writers of one blob are safe: each writes its own temp file, and the
//!   rename of identical content over identical content changes nothing for readers;
//! - reads check the size (cheap) always, and the digest where the caller asks for it
//!   (manifests and configs, which are small and are parsed);
//! - a resumable download ([`PartialBlob`], `tmp/partial-<algorithm>-<hex>`) is a temp
//!   file that outlives its process, locked by its one writer and verified against its
//!   digest before it is renamed into place, exactly like a [`BlobWriter`]'s.
//!
//! The store knows nothing of images or names; see [`crate::store`] for that.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Algorithm, Digest, Digester};

/// What went wrong in the blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// An I/O error on a path.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The content does not hash to the expected digest.
    #[error("content digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What the caller said the content hashes to.
        expected: Digest,
        /// What it actually hashes to.
        actual: Digest,
    },
    /// The content has the wrong size.
    #[error("blob {digest}: size mismatch: expected {expected} bytes, found {actual}")]
    SizeMismatch {
        /// The blob.
        digest: Digest,
        /// The size the caller expected.
        expected: u64,
        /// The size found.
        actual: u64,
    },
    /// No such blob.
    #[error("blob {0} is not in the store")]
    NotFound(Digest),
    /// A blob too large to be read into memory through [`BlobStore::read`].
    #[error("blob {digest} is {size} bytes, more than the {limit} bytes allowed for a document")]
    TooLarge {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
}

/// Shorthand.
pub type Result<T, E = BlobError> = std::result::Result<T, E>;

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BlobError + '_ {
    move |source| BlobError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Largest document (manifest, config, index) read whole into memory: 16 MiB.
pub const MAX_DOCUMENT_SIZE: u64 = 16 << 20;

/// A directory of blobs named by digest.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
    tmp: PathBuf,
}

impl BlobStore {
    /// Open (creating if needed) a blob store whose blobs live under `root/blobs` and
    /// whose temp files live under `root/tmp` (same file system, so renames are atomic).
    pub fn open(root: &Path) -> Result<BlobStore> {
        let blobs = root.join("blobs");
        let tmp = root.join("tmp");
        for dir in [
            blobs.join(Algorithm::Sha256.as_str()),
            blobs.join(Algorithm::Sha512.as_str()),
            tmp.clone(),
        ] {
            fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        }
        Ok(BlobStore { root: blobs, tmp })
    }

    /// Where the blob with `digest` lives (whether or not it exists).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    /// The directory for temp files (same file system as the blobs).
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// Whether the blob exists.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// The blob's size, or `None` when absent.
    pub fn size(&self, digest: &Digest) -> Result<Option<u64>> {
        let path = self.path(digest);
        match fs::metadata(&path) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Open a blob for reading, checking its size when `expected_size` is given.
    pub fn open_blob(&self, digest: &Digest, expected_size: Option<u64>) -> Result<File> {
        let path = self.path(digest);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound(digest.clone()))
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        if let Some(expected) = expected_size {
            let actual = file.metadata().map_err(io_err(&path))?.len();
            if actual != expected {
                return Err(BlobError::SizeMismatch {
                    digest: digest.clone(),
                    expected,
                    actual,
                });
            }
        }
        Ok(file)
    }

    /// Read a small blob (a manifest or config) whole, verifying its digest.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.path(digest);
        let mut file = self.open_blob(digest, None)?;
        let size = file.metadata().map_err(io_err(&path))?.len();
        if size > MAX_DOCUMENT_SIZE {
            return Err(BlobError::TooLarge {
                digest: digest.clone(),
                size,
                limit: MAX_DOCUMENT_SIZE,
            });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        file.read_to_end(&mut bytes).map_err(io_err(&path))?;
        let actual = Digest::of(digest.algorithm(), &bytes);
        if &actual != digest {
            return Err(BlobError::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Start writing a blob; the digest is computed as bytes arrive.
    pub fn writer(&self) -> Result<BlobWriter> {
        self.writer_with(Algorithm::Sha256)
    }

    /// Start writing a blob hashed with `algorithm`.
    pub fn writer_with(&self, algorithm: Algorithm) -> Result<BlobWriter> {
        let temp = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(&self.tmp)
            .map_err(io_err(&self.tmp))?;
        Ok(BlobWriter {
            store: self.clone(),
            out: BufWriter::with_capacity(1 << 20, temp),
            digester: Digester::new(algorithm),
        })
    }

    /// Store `bytes`, returning their digest and size.
    pub fn put(&self, bytes: &[u8]) -> Result<(Digest, u64)> {
        let digest = Digest::sha256_of(bytes);
        if self.size(&digest)? == Some(bytes.len() as u64) {
            return Ok((digest, bytes.len() as u64));
        }
        let mut w = self.writer()?;
        w.write_all(bytes).map_err(io_err(&self.tmp))?;
        w.commit(Some(&digest))
    }

    /// Store everything `reader` yields. With `expected`, the content must hash to it
    /// (and is hashed with its algorithm); otherwise sha256 is used.
    pub fn put_reader(
        &self,
        reader: &mut dyn Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64)> {
        let mut w = self.writer_with(expected.map_or(Algorithm::Sha256, Digest::algorithm))?;
        io::copy(reader, &mut w).map_err(io_err(&self.tmp))?;
        w.commit(expected)
    }

    /// Move `file`, whose bytes the caller has already verified to hash to `digest`,
    /// into the store without copying them: the file is fsynced, renamed to the blob's
    /// path and the directory fsynced, as [`BlobWriter::commit`] does for its temp file.
    /// `file` must be on the store's file system (a rename across file systems fails
    /// and leaves `file` where it was). Returns the blob's size.
    ///
    /// The store trusts the caller here: adopting a file that does not hash to
    /// `digest` breaks the store's one invariant.
    pub fn adopt_verified(&self, file: &Path, digest: &Digest) -> Result<u64> {
        let f = File::open(file).map_err(io_err(file))?;
        f.sync_all().map_err(io_err(file))?;
        let size = f.metadata().map_err(io_err(file))?.len();
        drop(f);
        let dest = self.path(digest);
        fs::rename(file, &dest).map_err(io_err(&dest))?;
        if let Some(parent) = dest.parent() {
            sync_dir(parent)?;
        }
        Ok(size)
    }

    /// Remove a blob; absent blobs are not an error.
    pub fn remove(&self, digest: &Digest) -> Result<()> {
        let path = self.path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Every blob in the store. Files whose names are not digests are skipped.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.root.join(alg.as_str());
            let entries = fs::read_dir(&dir).map_err(io_err(&dir))?;
            for entry in entries {
                let entry = entry.map_err(io_err(&dir))?;
                let name = entry.file_name();
                if let Some(name) = name.to_str() {
                    if let Ok(d) = format!("{}:{name}", alg.as_str()).parse() {
                        out.push(d);
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// A blob being written. Nothing is visible in the store until [`BlobWriter::commit`];
/// dropping the writer discards the temp file.
pub struct BlobWriter {
    store: BlobStore,
    out: BufWriter<tempfile::NamedTempFile>,
    digester: Digester,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.digester.len()
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.digester.is_empty()
    }

    /// Verify, fsync and move the blob into place. With `expected`, a mismatch is an
    /// error and nothing is stored.
    pub fn commit(self, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        let BlobWriter {
            store,
            out,
            digester,
        } = self;
        let size = digester.len();
        let digest = digester.finish();
        if let Some(expected) = expected {
            if expected != &digest {
                return Err(BlobError::DigestMismatch {
                    expected: expected.clone(),
                    actual: digest,
                });
            }
        }
        let temp = out
            .into_inner()
            .map_err(|e| io_err(store.tmp_dir())(e.into_error()))?;
        temp.as_file().sync_all().map_err(io_err(temp.path()))?;
        let dest = store.path(&digest);
        temp.persist(&dest).map_err(|e| io_err(&dest)(e.error))?;
        if let Some(parent) = dest.parent() {
            sync_dir(parent)?;
        }
        Ok((digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.digester.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Write `path` whole or not at all: `fill` writes a temp file beside it, which is
/// fsynced and renamed over `path`, and the directory is fsynced.
pub fn write_atomic(path: &Path, fill: impl FnOnce(&mut File) -> io::Result<()>) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    fill(tmp.as_file_mut()).map_err(io_err(path))?;
    tmp.as_file().sync_all().map_err(io_err(path))?;
    tmp.persist(path).map_err(|e| io_err(path)(e.error))?;
    sync_dir(dir)
}

/// A download that survives its process: the bytes of one blob received so far, kept
/// in `tmp/partial-<algorithm>-<hex>` so a later attempt can continue where this one
/// stopped (the registry client asks for the rest with `Range`).
///
/// The file is locked (`flock`) while a `PartialBlob` holds it, so two processes never
/// append to one file; what is already there is hashed when it is opened, so
/// [`PartialBlob::commit`] verifies the whole content without reading it again. Like
/// any temp file it is removed by GC ([`crate::Store::gc`]).
pub struct PartialBlob {
    store: BlobStore,
    digest: Digest,
    path: PathBuf,
    out: BufWriter<File>,
    digester: Digester,
}

impl BlobStore {
    /// Where a resumable download of `digest` keeps its bytes so far.
    pub fn partial_path(&self, digest: &Digest) -> PathBuf {
        self.tmp.join(format!(
            "partial-{}-{}",
            digest.algorithm().as_str(),
            digest.hex()
        ))
    }

    /// Open (creating it if needed) the partial download of `digest`, hashing what it
    /// already holds. `None` when another process is writing it.
    pub fn partial(&self, digest: &Digest) -> Result<Option<PartialBlob>> {
        let path = self.partial_path(digest);
        let mut file = fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io_err(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Ok(None),
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&path)(e)),
        }
        // The holder before us may have committed (renamed) the file between our open
        // and our lock: then the path names another file, or none.
        let ours = file.metadata().map_err(io_err(&path))?;
        match fs::metadata(&path) {
            Ok(m)
                if std::os::unix::fs::MetadataExt::ino(&m)
                    == std::os::unix::fs::MetadataExt::ino(&ours) => {}
            _ => return Ok(None),
        }
        let mut digester = Digester::new(digest.algorithm());
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).map_err(io_err(&path))?;
            if n == 0 {
                break;
            }
            digester.update(&buf[..n]);
        }
        Ok(Some(PartialBlob {
            store: self.clone(),
            digest: digest.clone(),
            path,
            out: BufWriter::with_capacity(1 << 20, file),
            digester,
        }))
    }
}

impl PartialBlob {
    /// Bytes held so far.
    pub fn len(&self) -> u64 {
        self.digester.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.digester.is_empty()
    }

    /// The file the bytes are kept in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Drop what is held and start again from byte 0.
    pub fn restart(&mut self) -> Result<()> {
        self.out.flush().map_err(io_err(&self.path))?;
        self.out.get_ref().set_len(0).map_err(io_err(&self.path))?;
        self.digester = Digester::new(self.digest.algorithm());
        Ok(())
    }

    /// Verify the content against the digest, fsync it and move it into the store.
    /// On a mismatch the partial file is deleted (its bytes are wrong, so a later
    /// attempt must start over) and nothing is stored.
    pub fn commit(self) -> Result<u64> {
        let PartialBlob {
            store,
            digest,
            path,
            out,
            digester,
        } = self;
        let size = digester.len();
        let actual = digester.finish();
        if actual != digest {
            drop(out);
            let _ = fs::remove_file(&path);
            return Err(BlobError::DigestMismatch {
                expected: digest,
                actual,
            });
        }
        let file = out
            .into_inner()
            .map_err(|e| io_err(&path)(e.into_error()))?;
        file.sync_all().map_err(io_err(&path))?;
        let dest = store.path(&digest);
        // Renamed while still locked, so no other process opens it as a partial.
        fs::rename(&path, &dest).map_err(io_err(&dest))?;
        if let Some(parent) = dest.parent() {
            sync_dir(parent)?;
        }
        drop(file);
        Ok(size)
    }
}

impl Write for PartialBlob {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.digester.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// fsync a directory so a rename into it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_read_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let (d, n) = store.put(b"hello").unwrap();
        assert_eq!(n, 5);
        assert_eq!(store.read(&d).unwrap(), b"hello");
        assert_eq!(store.list().unwrap(), vec![d.clone()]);
        // Same content again is a no-op.
        assert_eq!(store.put(b"hello").unwrap().0, d);
        // Corruption on disk is detected on read.
        fs::write(store.path(&d), b"hellO").unwrap();
        assert!(matches!(
            store.read(&d),
            Err(BlobError::DigestMismatch { .. })
        ));
        assert!(matches!(
            store.open_blob(&d, Some(6)),
            Err(BlobError::SizeMismatch { .. })
        ));
    }

    #[test]
    fn wrong_expected_digest_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let wrong = Digest::sha256_of(b"other");
        let err = store
            .put_reader(&mut &b"content"[..], Some(&wrong))
            .unwrap_err();
        assert!(matches!(err, BlobError::DigestMismatch { .. }));
        assert!(store.list().unwrap().is_empty());
        assert_eq!(
            fs::read_dir(store.tmp_dir()).unwrap().count(),
            0,
            "temp file left behind"
        );
    }

    #[test]
    fn concurrent_writers_of_one_blob() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let data: Vec<u8> = (0..(4u32 << 20)).map(|i| (i % 251) as u8).collect();
        let expected = Digest::sha256_of(&data);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    let mut w = store.writer().unwrap();
                    for chunk in data.chunks(65536) {
                        w.write_all(chunk).unwrap();
                    }
                    assert_eq!(w.commit(Some(&expected)).unwrap().0, expected);
                });
                s.spawn(|| {
                    // Readers never see a partial blob: it is absent or whole.
                    if let Ok(bytes) = fs::read(store.path(&expected)) {
                        assert_eq!(bytes.len(), data.len());
                    }
                });
            }
        });
        assert_eq!(fs::read(store.path(&expected)).unwrap(), data);
    }

    #[test]
    fn adopting_a_verified_file_moves_it_into_place() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let src = dir.path().join("upload");
        fs::write(&src, b"adopted bytes").unwrap();
        let digest = Digest::sha256_of(b"adopted bytes");
        assert_eq!(store.adopt_verified(&src, &digest).unwrap(), 13);
        assert!(!src.exists());
        assert_eq!(store.read(&digest).unwrap(), b"adopted bytes");
        // A missing source is an error naming it, and stores nothing.
        let other = Digest::sha256_of(b"other");
        let err = store.adopt_verified(&src, &other).unwrap_err();
        assert!(err.to_string().contains("upload"), "{err}");
        assert!(!store.contains(&other));
    }

    #[test]
    fn partial_blobs_resume_and_verify_before_entering_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let content = b"hello, resumable world".to_vec();
        let digest = Digest::sha256_of(&content);
        let mut p = store.partial(&digest).unwrap().unwrap();
        // A second holder (another process, or thread) is turned away.
        assert!(store.partial(&digest).unwrap().is_none());
        p.write_all(&content[..7]).unwrap();
        drop(p);
        assert_eq!(
            fs::read(store.partial_path(&digest)).unwrap(),
            &content[..7]
        );
        // Reopened: it knows what it has, and the rest completes the digest.
        let mut p = store.partial(&digest).unwrap().unwrap();
        assert_eq!(p.len(), 7);
        p.write_all(&content[7..]).unwrap();
        assert_eq!(p.commit().unwrap(), content.len() as u64);
        assert_eq!(store.read(&digest).unwrap(), content);
        assert!(!store.partial_path(&digest).exists());
        // Wrong bytes: nothing stored, and the partial is gone.
        let other = Digest::sha256_of(b"other");
        let mut p = store.partial(&other).unwrap().unwrap();
        p.write_all(b"othe!").unwrap();
        assert!(matches!(p.commit(), Err(BlobError::DigestMismatch { .. })));
        assert!(!store.contains(&other));
        assert!(!store.partial_path(&other).exists());
        // restart() empties it.
        let mut p = store.partial(&other).unwrap().unwrap();
        p.write_all(b"junk").unwrap();
        p.restart().unwrap();
        assert!(p.is_empty());
        p.write_all(b"other").unwrap();
        p.commit().unwrap();
        assert_eq!(store.read(&other).unwrap(), b"other");
    }
}
