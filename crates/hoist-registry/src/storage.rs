//! The registry's state on disk: the shared blob store plus per-repository links,
//! tags, revisions, referrers and upload sessions. Everything here is synchronous file
//! I/O; the HTTP layer calls it on blocking threads.
//!
//! Layout under the registry root:
//!
//! ```text
//! blobs/<alg>/<hex>                                  content (hoist_oci::BlobStore)
//! tmp/                                               the blob store's temp files
//! repositories/<name>/_layers/<alg>/<hex>            blob link (holds the digest)
//! repositories/<name>/_manifests/revisions/<alg>/<hex>  manifest link (holds its media type)
//! repositories/<name>/_manifests/tags/<tag>          tag (holds the manifest digest)
//! repositories/<name>/_referrers/<alg>/<hex>/<alg>-<hex>  referrer descriptor (JSON)
//! _uploads/<uuid>/name                               the repository of an upload
//! _uploads/<uuid>/data                               the bytes received so far
//! repositories/<name>/_manifests/pushed/<alg>/<hex>  when the revision was first pushed (RFC 3339)
//! gc.lock                                            link creation (shared) against GC (exclusive)
//! ```
//!
//! Registries written before push times were recorded have no `pushed/` file; the
//! revision link's modification time stands in for it.
//!
//! Every metadata file except an upload's `name` is written with
//! [`hoist_oci::write_atomic`]; blobs enter [`BlobStore`] verified, either through its
//! writer or, for a finished upload, by renaming `data` into place
//! ([`BlobStore::adopt_verified`]) once its digest matched. Repository
//! components start with `[a-z0-9]` (the spec's name grammar), so they can never
//! collide with the `_`-prefixed directories.

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use hoist_oci::{Algorithm, BlobError, BlobStore, Digest, Digester};

/// What went wrong opening or using the registry's storage.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// An I/O error on a path.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// An error from the blob store.
    #[error(transparent)]
    Blob(#[from] BlobError),
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> RegistryError + '_ {
    move |source| RegistryError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A registry rooted at a directory: cheap to clone, safe to share between threads.
#[derive(Debug, Clone)]
pub struct Registry {
    root: PathBuf,
    blobs: BlobStore,
    /// Repository policies and push hooks (module `policy`).
    pub(crate) policy: Arc<crate::policy::PolicyState>,
    hashes: RunningHashes,
}

/// The running sha256 of each upload session whose bytes all arrived through this
/// process, keyed by upload id. A session is absent after a restart, after a failed
/// write, or once its digest was taken at `PUT`; `finish_upload` then hashes the file.
#[derive(Clone, Default)]
struct RunningHashes(Arc<Mutex<HashMap<String, Digester>>>);

impl RunningHashes {
    fn take(&self, uuid: &str) -> Option<Digester> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uuid)
    }

    fn put(&self, uuid: &str, digester: Digester) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uuid.to_owned(), digester);
    }
}

impl std::fmt::Debug for RunningHashes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.lock().map_or(0, |m| m.len());
        write!(f, "RunningHashes({n} sessions)")
    }
}

/// Write buffer of an upload's data file, and read buffer when it must be re-hashed.
const UPLOAD_BUFFER: usize = 1 << 20;

/// An upload's data file is flushed to disk (`fdatasync`) every this many bytes while
/// it streams in, so the `fsync` before the `201` finds little left to write.
const UPLOAD_SYNC_EVERY: u64 = 64 << 20;

/// Appends one request's bytes to an upload session's data file, hashing them as they
/// go. Made by [`Registry::upload_writer`]; [`UploadWriter::finish`] keeps the running
/// hash for the next request of the session. Dropping it unfinished forgets the hash
/// (the bytes written stay; `PUT` then re-hashes the file).
pub struct UploadWriter {
    hashes: RunningHashes,
    uuid: String,
    path: PathBuf,
    out: BufWriter<fs::File>,
    digester: Option<Digester>,
    len: u64,
    synced: u64,
}

impl UploadWriter {
    /// The session's size so far, including what this writer appended.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the session holds no bytes yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Append `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), RegistryError> {
        self.out.write_all(bytes).map_err(io_err(&self.path))?;
        if let Some(d) = &mut self.digester {
            d.update(bytes);
        }
        self.len += bytes.len() as u64;
        if self.len - self.synced >= UPLOAD_SYNC_EVERY {
            self.out.flush().map_err(io_err(&self.path))?;
            self.out.get_ref().sync_data().map_err(io_err(&self.path))?;
            self.synced = self.len;
        }
        Ok(())
    }

    /// Flush what was appended and keep the running hash; returns the session's size.
    pub fn finish(mut self) -> Result<u64, RegistryError> {
        self.out.flush().map_err(io_err(&self.path))?;
        if let Some(d) = self.digester.take() {
            self.hashes.put(&self.uuid, d);
        }
        Ok(self.len)
    }
}

/// The digest of a file's contents, read with a large buffer.
fn hash_file(path: &Path, algorithm: Algorithm) -> Result<(Digest, u64), RegistryError> {
    let mut file = fs::File::open(path).map_err(io_err(path))?;
    let mut digester = Digester::new(algorithm);
    let mut buf = vec![0; UPLOAD_BUFFER];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => digester.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(path)(e)),
        }
    }
    let len = digester.len();
    Ok((digester.finish(), len))
}

/// `Ok(None)` for a missing file.
fn read_opt(path: &Path) -> Result<Option<String>, RegistryError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

fn remove_opt(path: &Path) -> Result<bool, RegistryError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err(path)(e)),
    }
}

fn write_file(path: &Path, contents: &[u8]) -> Result<(), RegistryError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    hoist_oci::write_atomic(path, |f| f.write_all(contents))?;
    Ok(())
}

fn digest_path(dir: PathBuf, digest: &Digest) -> PathBuf {
    dir.join(digest.algorithm().as_str()).join(digest.hex())
}

impl Registry {
    /// Open (creating if needed) the registry rooted at `root`.
    pub fn open(root: &Path) -> Result<Registry, RegistryError> {
        let blobs = BlobStore::open(root)?;
        for dir in [root.join("repositories"), root.join("_uploads")] {
            fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        }
        Ok(Registry {
            root: root.to_owned(),
            blobs,
            policy: Arc::default(),
            hashes: RunningHashes::default(),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The shared content store.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    fn repo(&self, name: &str) -> PathBuf {
        self.root.join("repositories").join(name)
    }

    /// Whether the repository exists (has ever received a blob or manifest).
    pub fn repo_exists(&self, name: &str) -> bool {
        self.repo(name).is_dir()
    }

    fn layer_link(&self, name: &str, digest: &Digest) -> PathBuf {
        digest_path(self.repo(name).join("_layers"), digest)
    }

    fn revision_link(&self, name: &str, digest: &Digest) -> PathBuf {
        digest_path(self.repo(name).join("_manifests/revisions"), digest)
    }

    fn tags_dir(&self, name: &str) -> PathBuf {
        self.repo(name).join("_manifests/tags")
    }

    fn referrers_dir(&self, name: &str, subject: &Digest) -> PathBuf {
        digest_path(self.repo(name).join("_referrers"), subject)
    }

    /// The size of a blob visible in repository `name`, or `None`.
    pub fn blob_size(&self, name: &str, digest: &Digest) -> Result<Option<u64>, RegistryError> {
        if !self.layer_link(name, digest).is_file() {
            return Ok(None);
        }
        Ok(self.blobs.size(digest)?)
    }

    /// Make a blob already in the store visible in repository `name`. Holds the GC
    /// lock shared and checks the blob is in the store, so a link never outlives its
    /// blob; a link that exists already is rewritten, which restarts its GC grace.
    pub fn link_blob(&self, name: &str, digest: &Digest) -> Result<(), RegistryError> {
        let link = self.layer_link(name, digest);
        let _lock = self.lock_shared()?;
        if !self.blobs.contains(digest) {
            return Err(BlobError::NotFound(digest.clone()).into());
        }
        write_file(&link, digest.to_string().as_bytes())
    }

    /// Remove a blob from repository `name` (the content stays until garbage
    /// collection). Returns whether it was there.
    pub fn unlink_blob(&self, name: &str, digest: &Digest) -> Result<bool, RegistryError> {
        remove_opt(&self.layer_link(name, digest))
    }

    /// The media type of manifest `digest` in `name`, when it is there.
    pub fn manifest_media_type(
        &self,
        name: &str,
        digest: &Digest,
    ) -> Result<Option<String>, RegistryError> {
        let Some(mt) = read_opt(&self.revision_link(name, digest))? else {
            return Ok(None);
        };
        if !self.blobs.contains(digest) {
            return Ok(None);
        }
        Ok(Some(mt))
    }

    /// The bytes and media type of manifest `digest` in `name`.
    pub fn manifest(
        &self,
        name: &str,
        digest: &Digest,
    ) -> Result<Option<(Vec<u8>, String)>, RegistryError> {
        let Some(mt) = self.manifest_media_type(name, digest)? else {
            return Ok(None);
        };
        match self.blobs.read(digest) {
            Ok(bytes) => Ok(Some((bytes, mt))),
            Err(BlobError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Store a manifest already validated by the caller, and tag it when `tag` is given.
    pub fn put_manifest(
        &self,
        name: &str,
        bytes: &[u8],
        media_type: &str,
        tag: Option<&str>,
    ) -> Result<Digest, RegistryError> {
        let (digest, _) = self.blobs.put(bytes)?;
        self.put_manifest_digest(name, &digest, media_type, tag)?;
        Ok(digest)
    }

    /// Record manifest `digest` (already in the blob store) in `name`, tagging it when
    /// `tag` is given.
    pub fn put_manifest_digest(
        &self,
        name: &str,
        digest: &Digest,
        media_type: &str,
        tag: Option<&str>,
    ) -> Result<(), RegistryError> {
        write_file(&self.revision_link(name, digest), media_type.as_bytes())?;
        self.record_push(name, digest)?;
        if let Some(tag) = tag {
            write_file(
                &self.tags_dir(name).join(tag),
                digest.to_string().as_bytes(),
            )?;
        }
        Ok(())
    }

    /// Record `descriptor` (JSON) as a referrer of `subject` in `name`.
    pub fn add_referrer(
        &self,
        name: &str,
        subject: &Digest,
        referrer: &Digest,
        descriptor: &[u8],
    ) -> Result<(), RegistryError> {
        let file = self.referrers_dir(name, subject).join(format!(
            "{}-{}",
            referrer.algorithm().as_str(),
            referrer.hex()
        ));
        write_file(&file, descriptor)
    }

    /// The descriptors (JSON) of the manifests in `name` whose subject is `subject`,
    /// in a stable order; referrers whose manifest was deleted are skipped.
    pub fn referrers(
        &self,
        name: &str,
        subject: &Digest,
    ) -> Result<Vec<serde_json::Value>, RegistryError> {
        let dir = self.referrers_dir(name, subject);
        let mut files = match fs::read_dir(&dir) {
            Ok(rd) => rd
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(io_err(&dir))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(&dir)(e)),
        };
        files.sort();
        let mut out = Vec::new();
        for file in files {
            let Some(text) = read_opt(&file)? else {
                continue;
            };
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            let live = value
                .get("digest")
                .and_then(|d| d.as_str())
                .and_then(|d| d.parse::<Digest>().ok())
                .is_some_and(|d| self.revision_link(name, &d).is_file());
            if live {
                out.push(value);
            }
        }
        Ok(out)
    }

    /// The digest tag `tag` of `name` points at.
    pub fn resolve_tag(&self, name: &str, tag: &str) -> Result<Option<Digest>, RegistryError> {
        Ok(read_opt(&self.tags_dir(name).join(tag))?.and_then(|s| s.trim().parse().ok()))
    }

    /// Remove a tag; returns whether it existed.
    pub fn delete_tag(&self, name: &str, tag: &str) -> Result<bool, RegistryError> {
        remove_opt(&self.tags_dir(name).join(tag))
    }

    /// Remove manifest `digest` from `name` and every tag pointing at it; returns
    /// whether it existed.
    pub fn delete_manifest(&self, name: &str, digest: &Digest) -> Result<bool, RegistryError> {
        let existed = remove_opt(&self.revision_link(name, digest))?;
        remove_opt(&self.pushed_record(name, digest))?;
        for tag in self.tags(name)?.unwrap_or_default() {
            if self.resolve_tag(name, &tag)?.as_ref() == Some(digest) {
                self.delete_tag(name, &tag)?;
            }
        }
        Ok(existed)
    }

    /// The tags of `name`, sorted; `None` when the repository does not exist.
    pub fn tags(&self, name: &str) -> Result<Option<Vec<String>>, RegistryError> {
        if !self.repo_exists(name) {
            return Ok(None);
        }
        let dir = self.tags_dir(name);
        let mut tags = Vec::new();
        match fs::read_dir(&dir) {
            Ok(rd) => {
                for entry in rd {
                    let entry = entry.map_err(io_err(&dir))?;
                    if let Some(n) = entry.file_name().to_str() {
                        if !n.starts_with(".tmp-") {
                            tags.push(n.to_owned());
                        }
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&dir)(e)),
        }
        tags.sort();
        Ok(Some(tags))
    }

    /// Every repository name, sorted.
    pub fn catalog(&self) -> Result<Vec<String>, RegistryError> {
        fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<(), RegistryError> {
            let rd = fs::read_dir(dir).map_err(io_err(dir))?;
            let mut is_repo = false;
            for entry in rd {
                let entry = entry.map_err(io_err(dir))?;
                let Some(n) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if n.starts_with('_') {
                    is_repo = true;
                    continue;
                }
                if entry.file_type().map_err(io_err(dir))?.is_dir() {
                    let child = if prefix.is_empty() {
                        n.clone()
                    } else {
                        format!("{prefix}/{n}")
                    };
                    walk(&entry.path(), &child, out)?;
                }
            }
            if is_repo && !prefix.is_empty() {
                out.push(prefix.to_owned());
            }
            Ok(())
        }
        let mut out = Vec::new();
        walk(&self.root.join("repositories"), "", &mut out)?;
        out.sort();
        Ok(out)
    }

    fn upload_dir(&self, uuid: &str) -> PathBuf {
        self.root.join("_uploads").join(uuid)
    }

    /// Start an upload session in `name`; returns its id. Nothing here is fsynced: a
    /// session lost in a crash is one the client starts again.
    pub fn start_upload(&self, name: &str) -> Result<String, RegistryError> {
        let uuid = format!("{:032x}", rand::random::<u128>());
        let dir = self.upload_dir(&uuid);
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let data = dir.join("data");
        fs::File::create(&data).map_err(io_err(&data))?;
        // Written after `data`, so a session with a name always has a data file; a
        // torn name matches no repository and the session is simply unknown.
        let name_file = dir.join("name");
        fs::write(&name_file, name).map_err(io_err(&name_file))?;
        Ok(uuid)
    }

    /// The data file of upload `uuid` in `name`, or `None` when there is no such
    /// upload (or it belongs to another repository).
    pub fn upload_data(&self, name: &str, uuid: &str) -> Result<Option<PathBuf>, RegistryError> {
        if uuid.is_empty() || !uuid.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let dir = self.upload_dir(uuid);
        match read_opt(&dir.join("name"))? {
            Some(n) if n == name => Ok(Some(dir.join("data"))),
            _ => Ok(None),
        }
    }

    /// Open upload `uuid` in `name` for appending, or `None` when there is no such
    /// upload. The caller makes sure only one writer per session exists at a time.
    pub fn upload_writer(
        &self,
        name: &str,
        uuid: &str,
    ) -> Result<Option<UploadWriter>, RegistryError> {
        let Some(path) = self.upload_data(name, uuid)? else {
            return Ok(None);
        };
        let file = fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let len = file.metadata().map_err(io_err(&path))?.len();
        // The running hash is good only if it covers exactly the bytes on disk; an
        // empty session starts one.
        let digester = self
            .hashes
            .take(uuid)
            .filter(|d| d.len() == len)
            .or_else(|| (len == 0).then(|| Digester::new(Algorithm::Sha256)));
        Ok(Some(UploadWriter {
            hashes: self.hashes.clone(),
            uuid: uuid.to_owned(),
            path,
            out: BufWriter::with_capacity(UPLOAD_BUFFER, file),
            digester,
            len,
            synced: len,
        }))
    }

    /// Finish upload `uuid`: verify its bytes against `expected`, move the data file
    /// into the blob store (fsync, rename, fsync the directory: no copy), link it into
    /// `name` and drop the session. The digest is the running hash kept while the bytes
    /// streamed in, or, when that is gone (a restart, a failed request), the file is
    /// hashed again. A mismatch stores nothing and keeps the session (the client may
    /// retry with the right digest).
    pub fn finish_upload(
        &self,
        name: &str,
        uuid: &str,
        expected: &Digest,
    ) -> Result<u64, RegistryError> {
        let dir = self.upload_dir(uuid);
        let data = dir.join("data");
        let size = fs::metadata(&data).map_err(io_err(&data))?.len();
        let running = self
            .hashes
            .take(uuid)
            .filter(|d| d.len() == size && expected.algorithm() == Algorithm::Sha256);
        let actual = match running {
            Some(d) => d.finish(),
            None => {
                let (digest, len) = hash_file(&data, expected.algorithm())?;
                if len != size {
                    // Only a concurrent writer could do this; the session lock forbids it.
                    return Err(io_err(&data)(io::Error::other(
                        "the upload changed while it was being verified",
                    )));
                }
                digest
            }
        };
        if &actual != expected {
            return Err(BlobError::DigestMismatch {
                expected: expected.clone(),
                actual,
            }
            .into());
        }
        if self.blobs.size(&actual)? != Some(size) {
            if let Err(e) = self.blobs.adopt_verified(&data, &actual) {
                if !data.is_file() {
                    return Err(e.into());
                }
                // Not renamable (another file system under the root?): copy it in.
                tracing::warn!("moving upload {uuid} into the blob store: {e}; copying it");
                let mut file = fs::File::open(&data).map_err(io_err(&data))?;
                self.blobs.put_reader(&mut file, Some(expected))?;
            }
        }
        self.link_blob(name, &actual)?;
        self.cancel_upload(uuid)?;
        Ok(size)
    }

    /// Drop upload `uuid` and its bytes.
    pub fn cancel_upload(&self, uuid: &str) -> Result<(), RegistryError> {
        self.hashes.take(uuid);
        let dir = self.upload_dir(uuid);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&dir)(e)),
        }
    }
}

/// What one repository holds, as garbage collection and lifecycle rules see it.
#[derive(Debug, Clone, Default)]
pub(crate) struct RepoListing {
    /// Manifest revisions: digest, media type, push time.
    pub revisions: Vec<(Digest, String, SystemTime)>,
    /// Tags and the digest each points at.
    pub tags: Vec<(String, Digest)>,
    /// Blob links and their modification times.
    pub layers: Vec<(Digest, SystemTime)>,
}

/// Files named `<alg>/<hex>` under `dir`, as digests with their paths.
fn digest_files(dir: &Path) -> Result<Vec<(Digest, PathBuf)>, RegistryError> {
    let mut out = Vec::new();
    let algs = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err(dir)(e)),
    };
    for alg in algs {
        let alg = alg.map_err(io_err(dir))?;
        let Some(alg_name) = alg.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let sub = alg.path();
        if !sub.is_dir() {
            continue;
        }
        for entry in fs::read_dir(&sub).map_err(io_err(&sub))? {
            let entry = entry.map_err(io_err(&sub))?;
            let Some(hex) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if let Ok(d) = format!("{alg_name}:{hex}").parse::<Digest>() {
                out.push((d, entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn mtime(path: &Path) -> Result<Option<SystemTime>, RegistryError> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some(m.modified().map_err(io_err(path))?)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Policy and garbage-collection support: the GC lock, push times, listings.
impl Registry {
    fn lock_file(&self) -> Result<(fs::File, PathBuf), RegistryError> {
        let path = self.root.join("gc.lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        Ok((file, path))
    }

    /// Take the GC lock shared (released when the file is dropped): held by pushes
    /// while they check what they need and create links.
    pub(crate) fn lock_shared(&self) -> Result<fs::File, RegistryError> {
        let (file, path) = self.lock_file()?;
        file.lock_shared().map_err(io_err(&path))?;
        Ok(file)
    }

    /// Take the GC lock exclusively: held by the sweep, in this or another process.
    pub(crate) fn lock_exclusive(&self) -> Result<fs::File, RegistryError> {
        let (file, path) = self.lock_file()?;
        file.lock().map_err(io_err(&path))?;
        Ok(file)
    }

    fn pushed_record(&self, name: &str, digest: &Digest) -> PathBuf {
        digest_path(self.repo(name).join("_manifests/pushed"), digest)
    }

    /// Note now as the push time of `digest` in `name`, unless one is recorded already
    /// (re-pushing the same manifest keeps its first push time, as ECR's
    /// `imagePushedAt`).
    fn record_push(&self, name: &str, digest: &Digest) -> Result<(), RegistryError> {
        let path = self.pushed_record(name, digest);
        if path.is_file() {
            return Ok(());
        }
        let now = humantime::format_rfc3339_nanos(SystemTime::now()).to_string();
        write_file(&path, now.as_bytes())
    }

    /// When manifest `digest` was pushed to `name`: the recorded time, else the
    /// revision link's modification time; `None` when it is not there.
    pub fn pushed_at(
        &self,
        name: &str,
        digest: &Digest,
    ) -> Result<Option<SystemTime>, RegistryError> {
        if let Some(text) = read_opt(&self.pushed_record(name, digest))? {
            if let Ok(t) = humantime::parse_rfc3339(text.trim()) {
                return Ok(Some(t));
            }
        }
        mtime(&self.revision_link(name, digest))
    }

    /// Point `tag` at `digest` only if the tag does not exist yet (atomically: a
    /// hard link of a complete temp file). Returns the digest the tag already held
    /// when it existed; `None` when it now points at `digest`.
    pub(crate) fn create_tag(
        &self,
        name: &str,
        tag: &str,
        digest: &Digest,
    ) -> Result<Option<Digest>, RegistryError> {
        let dir = self.tags_dir(name);
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let path = dir.join(tag);
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&dir)
            .map_err(io_err(&dir))?;
        tmp.write_all(digest.to_string().as_bytes())
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(io_err(tmp.path()))?;
        match fs::hard_link(tmp.path(), &path) {
            Ok(()) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                match self.resolve_tag(name, tag)? {
                    Some(d) if &d == digest => Ok(None),
                    Some(d) => Ok(Some(d)),
                    // A tag file we cannot read as a digest: replace it.
                    None => {
                        write_file(&path, digest.to_string().as_bytes())?;
                        Ok(None)
                    }
                }
            }
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Everything repository `name` holds, for lifecycle rules and GC.
    pub(crate) fn listing(&self, name: &str) -> Result<RepoListing, RegistryError> {
        let mut out = RepoListing::default();
        for (digest, path) in digest_files(&self.repo(name).join("_manifests/revisions"))? {
            let Some(media_type) = read_opt(&path)? else {
                continue;
            };
            let pushed = self
                .pushed_at(name, &digest)?
                .unwrap_or(SystemTime::UNIX_EPOCH);
            out.revisions.push((digest, media_type, pushed));
        }
        for tag in self.tags(name)?.unwrap_or_default() {
            if let Some(d) = self.resolve_tag(name, &tag)? {
                out.tags.push((tag, d));
            }
        }
        for (digest, path) in digest_files(&self.repo(name).join("_layers"))? {
            if let Some(t) = mtime(&path)? {
                out.layers.push((digest, t));
            }
        }
        Ok(out)
    }

    /// Remove the referrer records in `name` whose referrer is not a revision any
    /// more; returns how many.
    pub(crate) fn prune_referrers(&self, name: &str) -> Result<usize, RegistryError> {
        let mut removed = 0;
        for (_, dir) in digest_files(&self.repo(name).join("_referrers"))? {
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(&dir)(e)),
            };
            for entry in rd {
                let entry = entry.map_err(io_err(&dir))?;
                let Some(file) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                let Some(referrer) = file
                    .split_once('-')
                    .and_then(|(a, h)| format!("{a}:{h}").parse::<Digest>().ok())
                else {
                    continue;
                };
                if !self.revision_link(name, &referrer).is_file() && remove_opt(&entry.path())? {
                    removed += 1;
                }
            }
            let _ = fs::remove_dir(&dir); // only when empty
        }
        Ok(removed)
    }

    /// Upload sessions: id, directory and the last time any of its files changed.
    pub(crate) fn upload_sessions(
        &self,
    ) -> Result<Vec<(String, PathBuf, SystemTime)>, RegistryError> {
        let dir = self.root.join("_uploads");
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let path = entry.path();
            let Some(uuid) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let mut newest = mtime(&path)?.unwrap_or(SystemTime::UNIX_EPOCH);
            for f in ["data", "name"] {
                if let Some(t) = mtime(&path.join(f))? {
                    newest = newest.max(t);
                }
            }
            out.push((uuid, path, newest));
        }
        out.sort();
        Ok(out)
    }
}

/// A validated manifest to store: what it needs in the repository, and how to tag it.
#[derive(Debug)]
pub(crate) struct ManifestPush<'a> {
    /// The repository.
    pub name: &'a str,
    /// The manifest's bytes.
    pub bytes: &'a [u8],
    /// Its media type.
    pub media_type: &'a str,
    /// Its digest (computed by the caller with the algorithm the client used).
    pub digest: &'a Digest,
    /// The tag to point at it.
    pub tag: Option<&'a str>,
    /// Blobs that must be in the repository (config and layers).
    pub blobs: &'a [Digest],
    /// Manifests that must be in the repository (an index's children).
    pub children: &'a [Digest],
    /// When it has a `subject`: the subject and the referrer descriptor (JSON).
    pub referrer: Option<(&'a Digest, &'a [u8])>,
}

/// How a manifest push ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PushOutcome {
    /// Stored (and tagged).
    Stored,
    /// A blob or child manifest it needs is not in the repository.
    Missing(Digest),
    /// The tag is immutable and points at this other manifest.
    TagImmutable(Digest),
}

impl Registry {
    /// Store a manifest: check what it needs, refuse to move an immutable tag, write
    /// it, tag it and record it as a referrer; all under the GC lock (shared), so a
    /// concurrent garbage collection sees the push whole or not at all. An immutable
    /// tag is created atomically (two racing pushes cannot both win); when the race is
    /// lost, the manifest stays stored untagged.
    pub(crate) fn push_manifest(&self, p: &ManifestPush<'_>) -> Result<PushOutcome, RegistryError> {
        let _lock = self.lock_shared()?;
        for b in p.blobs {
            if self.blob_size(p.name, b)?.is_none() {
                return Ok(PushOutcome::Missing(b.clone()));
            }
        }
        for c in p.children {
            if self.manifest_media_type(p.name, c)?.is_none() {
                return Ok(PushOutcome::Missing(c.clone()));
            }
        }
        let immutable_tag = p.tag.filter(|t| self.tag_is_immutable(p.name, t));
        if let Some(tag) = immutable_tag {
            if let Some(existing) = self.resolve_tag(p.name, tag)? {
                if &existing != p.digest {
                    return Ok(PushOutcome::TagImmutable(existing));
                }
            }
        }
        let plain_tag = if immutable_tag.is_some() { None } else { p.tag };
        if p.digest.algorithm() == hoist_oci::Algorithm::Sha256 {
            self.put_manifest(p.name, p.bytes, p.media_type, plain_tag)?;
        } else {
            self.blobs.put_reader(&mut &p.bytes[..], Some(p.digest))?;
            self.put_manifest_digest(p.name, p.digest, p.media_type, plain_tag)?;
        }
        if let Some(tag) = immutable_tag {
            if let Some(existing) = self.create_tag(p.name, tag, p.digest)? {
                return Ok(PushOutcome::TagImmutable(existing));
            }
        }
        if let Some((subject, descriptor)) = p.referrer {
            self.add_referrer(p.name, subject, p.digest, descriptor)?;
        }
        Ok(PushOutcome::Stored)
    }
}

/// Whether `name` matches the distribution spec's repository name grammar:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
pub fn valid_name(name: &str) -> bool {
    if name.is_empty() || name.len() > 255 {
        return false;
    }
    name.split('/').all(valid_component)
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    // A run of alphanumerics, then (separator, run)*.
    let run = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && alnum(b[*i]) {
            *i += 1;
        }
        *i > start
    };
    if !run(&mut i) {
        return false;
    }
    while i < b.len() {
        let sep_start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        debug_assert!(i > sep_start);
        if !run(&mut i) {
            return false;
        }
    }
    true
}

/// Whether `tag` matches `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|&x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "team/app/busybox", "a.b_c__d---e/f0", "library/ubuntu"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "A",
            "a//b",
            "/a",
            "a/",
            "a___b",
            "_a",
            "a/_manifests",
            "a-",
            "a..b",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(valid_tag("v1.0_rc-1"));
        assert!(!valid_tag(".x"));
        assert!(!valid_tag(&"a".repeat(129)));
    }

    #[test]
    fn tags_catalog_and_deletion() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        let d = reg
            .put_manifest(
                "x/y",
                b"{}",
                "application/vnd.oci.image.manifest.v1+json",
                Some("t"),
            )
            .unwrap();
        reg.put_manifest("z", b"{}", "m", Some("a")).unwrap();
        assert_eq!(reg.catalog().unwrap(), vec!["x/y", "z"]);
        assert_eq!(reg.resolve_tag("x/y", "t").unwrap(), Some(d.clone()));
        assert_eq!(reg.tags("x/y").unwrap().unwrap(), vec!["t"]);
        assert!(reg.tags("nope").unwrap().is_none());
        assert!(reg.delete_manifest("x/y", &d).unwrap());
        assert!(reg.manifest("x/y", &d).unwrap().is_none());
        assert_eq!(reg.tags("x/y").unwrap().unwrap(), Vec::<String>::new());
        // Still visible in the other repository.
        assert!(reg.manifest("z", &d).unwrap().is_some());
    }
}
