//! The local image store: blobs plus a record of which manifests are images and what
//! they are called.
//!
//! Layout under the store's home (`HOIST_HOME`):
//!
//! ```text
//! blobs/sha256/<hex>     content (see [`crate::blob`])
//! tmp/                   blobs being written
//! images.json            image records, replaced atomically
//! locks/images.lock      held while images.json is read-modified-written
//! locks/gc.lock          shared by every writer for its whole session, exclusive for GC
//! ```
//!
//! An image is recorded by its manifest digest, as Docker does with image IDs, and
//! carries zero or more names (`docker.io/library/busybox:latest`). An image is only
//! recorded once every blob it references is in the store, so nothing ever names a
//! partial image. Garbage collection deletes blobs no record reaches; because every
//! writer holds the GC lock shared from its first blob to its record, GC never sees a
//! blob that is written but not yet recorded.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::blob::{io_err, write_atomic, BlobError, BlobStore};
use crate::config::ImageConfig;
use crate::manifest::{Descriptor, ImageManifest, Manifest, ManifestError};
use crate::media_type as mt;
use crate::reference::{Reference, ReferenceError};
use crate::Digest;

/// What went wrong in the image store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A blob store error.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// A stored manifest that does not parse.
    #[error("manifest {digest}: {source}")]
    Manifest {
        /// The manifest.
        digest: Digest,
        /// Why it does not parse.
        source: ManifestError,
    },
    /// A stored config that does not parse.
    #[error("image config {digest}: {source}")]
    Config {
        /// The config blob.
        digest: Digest,
        /// Why it does not parse.
        source: serde_json::Error,
    },
    /// The images record is corrupt.
    #[error("{path}: corrupt image records: {source}")]
    Records {
        /// images.json.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// A name that is not a valid reference.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// Nothing matches.
    #[error("no such image: {0}")]
    NotFound(String),
    /// An ID prefix matching several images.
    #[error("{input:?} is ambiguous: it matches {count} images; give more of the ID")]
    Ambiguous {
        /// What was given.
        input: String,
        /// How many images match.
        count: usize,
    },
    /// An image referenced by several names, removed by ID without force.
    #[error(
        "image {id} is referenced by several names ({names}); remove them by name or use --force"
    )]
    MultipleNames {
        /// The image.
        id: String,
        /// Its names.
        names: String,
    },
    /// A manifest whose content is not all in the store.
    #[error("image {manifest} is incomplete: blob {missing} is missing from the store")]
    Incomplete {
        /// The manifest.
        manifest: Digest,
        /// The first missing blob.
        missing: Digest,
    },
    /// A name given with a digest only where a tag is needed.
    #[error("{0}: a name with a tag is needed here, not a digest")]
    NeedsTag(String),
}

/// Shorthand.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One image in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The manifest (or index) digest.
    pub digest: Digest,
    /// The manifest's media type.
    pub media_type: String,
    /// The manifest's size.
    pub size: u64,
    /// Docker's image ID: the config digest for an image manifest, the index digest
    /// for an index.
    pub id: Digest,
    /// Normalized names with tags (`docker.io/library/busybox:latest`), sorted.
    #[serde(default)]
    pub names: Vec<String>,
    /// When the image entered the store, RFC 3339.
    pub added: String,
}

impl ImageRecord {
    /// The manifest descriptor.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(self.media_type.clone(), self.digest.clone(), self.size)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Records {
    version: u32,
    images: BTreeMap<String, ImageRecord>,
}

/// What [`Store::remove`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removed {
    /// Names removed.
    pub untagged: Vec<String>,
    /// Images deleted (manifest digests).
    pub deleted: Vec<Digest>,
    /// Blobs garbage-collected as a result.
    pub blobs_removed: usize,
}

/// What [`Store::gc`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs deleted.
    pub blobs_removed: usize,
    /// Bytes freed.
    pub bytes_freed: u64,
    /// Stale temp files deleted (left by killed writers).
    pub temp_files_removed: usize,
}

/// Held by a writer for the whole time it adds blobs that are not yet recorded.
/// GC waits for every session to end.
pub struct WriteSession {
    _lock: File,
}

/// Extra GC roots: blobs some other component (the build cache) still needs.
pub type GcRoots = std::sync::Arc<dyn Fn() -> std::io::Result<BTreeSet<Digest>> + Send + Sync>;

/// The image store under one home directory.
#[derive(Clone)]
pub struct Store {
    home: PathBuf,
    blobs: BlobStore,
    roots: Vec<GcRoots>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("home", &self.home)
            .field("gc_roots", &self.roots.len())
            .finish()
    }
}

/// What removing `input` does to the image it resolved to (`docker rmi`'s rule).
enum Removal {
    /// Only this name goes: the image keeps others.
    Untag(String),
    /// The image goes, with all its names.
    Delete,
    /// The image has several names and was given by ID without `force`.
    NeedsForce,
}

fn removal(rec: &ImageRecord, input: &str, force: bool) -> Removal {
    match by_name(input).filter(|n| rec.names.contains(n)) {
        Some(name) if rec.names.len() > 1 => Removal::Untag(name),
        _ if rec.names.len() > 1 && !force => Removal::NeedsForce,
        _ => Removal::Delete,
    }
}

/// Read and parse the image config `digest` from `blobs` (a store's or a
/// registry's blob store).
pub fn read_config(blobs: &BlobStore, digest: &Digest) -> Result<ImageConfig> {
    let bytes = blobs.read(digest)?;
    serde_json::from_slice(&bytes).map_err(|source| StoreError::Config {
        digest: digest.clone(),
        source,
    })
}

impl Store {
    /// Open (creating if needed) the store in `home`.
    pub fn open(home: &Path) -> Result<Store> {
        let blobs = BlobStore::open(home)?;
        let locks = home.join("locks");
        fs::create_dir_all(&locks).map_err(io_err(&locks))?;
        Ok(Store {
            home: home.to_owned(),
            blobs,
            roots: Vec::new(),
        })
    }

    /// Keep the blobs `roots` names through every GC (including the one
    /// [`Store::remove`] runs). It is called with GC's exclusive lock held.
    pub fn with_gc_roots(mut self, roots: GcRoots) -> Store {
        self.roots.push(roots);
        self
    }

    /// The home directory.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The blob store.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    fn lock_file(&self, name: &str) -> Result<File> {
        let path = self.home.join("locks").join(name);
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io_err(&path)(e).into())
    }

    /// Begin adding content: hold the returned guard until the image is recorded.
    pub fn write_session(&self) -> Result<WriteSession> {
        let lock = self.lock_file("gc.lock")?;
        lock.lock_shared()
            .map_err(io_err(&self.home.join("locks/gc.lock")))?;
        Ok(WriteSession { _lock: lock })
    }

    fn records_path(&self) -> PathBuf {
        self.home.join("images.json")
    }

    fn load_records(&self) -> Result<Records> {
        let path = self.records_path();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| StoreError::Records { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Records {
                version: 1,
                images: BTreeMap::new(),
            }),
            Err(e) => Err(io_err(&path)(e).into()),
        }
    }

    fn save_records(&self, records: &Records) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(records).unwrap_or_default();
        write_atomic(&self.records_path(), |f| f.write_all(&bytes))?;
        Ok(())
    }

    /// Run `f` on the records under the records lock, saving what it leaves.
    fn transact<T>(&self, f: impl FnOnce(&mut Records) -> Result<T>) -> Result<T> {
        let lock = self.lock_file("images.lock")?;
        lock.lock()
            .map_err(io_err(&self.home.join("locks/images.lock")))?;
        let mut records = self.load_records()?;
        let out = f(&mut records)?;
        records.version = 1;
        self.save_records(&records)?;
        Ok(out)
    }

    /// All images, sorted by manifest digest.
    pub fn list(&self) -> Result<Vec<ImageRecord>> {
        Ok(self.load_records()?.images.into_values().collect())
    }

    /// An image's size as `docker images` counts it: config and layers (compressed)
    /// for an image manifest, the manifest itself for an index or anything unreadable.
    pub fn image_size(&self, record: &ImageRecord) -> u64 {
        match self.manifest(&record.descriptor()) {
            Ok(Manifest::Image(m)) => m.config.size + m.layers.iter().map(|l| l.size).sum::<u64>(),
            _ => record.size,
        }
    }

    /// Read and parse a stored manifest.
    pub fn manifest(&self, desc: &Descriptor) -> Result<Manifest> {
        let bytes = self.blobs.read(&desc.digest)?;
        Manifest::parse(&bytes, Some(&desc.media_type))
            .map(|(m, _)| m)
            .map_err(|source| StoreError::Manifest {
                digest: desc.digest.clone(),
                source,
            })
    }

    /// Read and parse a stored image config.
    pub fn config(&self, digest: &Digest) -> Result<ImageConfig> {
        read_config(&self.blobs, digest)
    }

    /// Every blob reachable from a manifest, the manifest included. Child manifests of an
    /// index that are not in the store are skipped (an index may list platforms that
    /// were not copied); anything else missing is an error.
    pub fn reachable(&self, root: &Descriptor) -> Result<BTreeSet<Digest>> {
        let mut seen = BTreeSet::new();
        self.walk(root, &mut seen, true)?;
        Ok(seen)
    }

    fn walk(&self, desc: &Descriptor, seen: &mut BTreeSet<Digest>, required: bool) -> Result<()> {
        if seen.contains(&desc.digest) {
            return Ok(());
        }
        if !self.blobs.contains(&desc.digest) {
            if required {
                return Err(StoreError::Blob(BlobError::NotFound(desc.digest.clone())));
            }
            return Ok(());
        }
        seen.insert(desc.digest.clone());
        if !mt::is_manifest(&desc.media_type) {
            return Ok(());
        }
        match self.manifest(desc)? {
            Manifest::Image(m) => {
                for child in std::iter::once(&m.config).chain(&m.layers) {
                    if !child.urls.is_empty() && !self.blobs.contains(&child.digest) {
                        continue; // foreign layer, fetched from its URLs by clients
                    }
                    if !self.blobs.contains(&child.digest) {
                        return Err(StoreError::Incomplete {
                            manifest: desc.digest.clone(),
                            missing: child.digest.clone(),
                        });
                    }
                    seen.insert(child.digest.clone());
                }
            }
            Manifest::Index(i) => {
                for child in &i.manifests {
                    self.walk(child, seen, false)?;
                }
            }
        }
        Ok(())
    }

    fn image_id(&self, desc: &Descriptor) -> Result<Digest> {
        match self.manifest(desc)? {
            Manifest::Image(m) => Ok(m.config.digest),
            Manifest::Index(_) => Ok(desc.digest.clone()),
        }
    }

    /// Record the manifest `desc` (already in the blob store, with everything it
    /// references) as an image, adding `names` to it. A name moves from whichever image
    /// had it before.
    pub fn add_image(&self, desc: &Descriptor, names: &[Reference]) -> Result<ImageRecord> {
        self.reachable(desc)?;
        let id = self.image_id(desc)?;
        let mut full = Vec::new();
        for name in names {
            if name.tag().is_none() {
                return Err(StoreError::NeedsTag(name.to_string()));
            }
            full.push(name.without_digest().to_string());
        }
        self.transact(|records| {
            for n in &full {
                for other in records.images.values_mut() {
                    other.names.retain(|x| x != n);
                }
            }
            let key = desc.digest.to_string();
            let rec = records.images.entry(key).or_insert_with(|| ImageRecord {
                digest: desc.digest.clone(),
                media_type: desc.media_type.clone(),
                size: desc.size,
                id: id.clone(),
                names: Vec::new(),
                added: now_rfc3339(),
            });
            rec.names.extend(full.iter().cloned());
            rec.names.sort();
            rec.names.dedup();
            Ok(rec.clone())
        })
    }

    /// Write `config` and an OCI manifest over `layers` (already in the blob store) and
    /// return the manifest's descriptor. Nothing is recorded: call [`Store::add_image`].
    pub fn put_image(&self, config: &ImageConfig, layers: Vec<Descriptor>) -> Result<Descriptor> {
        let (digest, size) = self
            .blobs
            .put(&crate::manifest::to_canonical_json(config))?;
        let config = Descriptor::new(mt::OCI_CONFIG, digest, size);
        self.put_manifest(&ImageManifest::new(config, layers))
    }

    /// Write an image manifest to the blob store and return its descriptor.
    pub fn put_manifest(&self, manifest: &ImageManifest) -> Result<Descriptor> {
        let (digest, size) = self
            .blobs
            .put(&crate::manifest::to_canonical_json(manifest))?;
        Ok(Descriptor::new(mt::OCI_MANIFEST, digest, size))
    }

    /// Find an image by name (`busybox`, `busybox:1.36`, `name@sha256:...`), by manifest
    /// digest or image ID, or by a unique prefix of either's hex.
    pub fn resolve(&self, input: &str) -> Result<ImageRecord> {
        let records = self.load_records()?;
        find(&records, input).cloned()
    }

    /// The image [`Store::remove`] would delete for `input` (not merely untag), if
    /// any: callers refuse to remove an image that is still in use.
    pub fn removal_target(&self, input: &str, force: bool) -> Result<Option<ImageRecord>> {
        let records = self.load_records()?;
        let rec = find(&records, input)?;
        Ok(match removal(rec, input, force) {
            Removal::Delete => Some(rec.clone()),
            Removal::Untag(_) | Removal::NeedsForce => None,
        })
    }

    /// Remove an image the way `docker rmi` does: a name removes that name (and the
    /// image with it when it was the last one); an ID removes the image, which needs
    /// `force` when several names point at it. Unreferenced blobs are then collected.
    pub fn remove(&self, input: &str, force: bool) -> Result<Removed> {
        let mut removed = self.transact(|records| {
            let rec = find(records, input)?.clone();
            let mut out = Removed::default();
            match removal(&rec, input, force) {
                Removal::Untag(name) => {
                    if let Some(r) = records.images.get_mut(&rec.digest.to_string()) {
                        r.names.retain(|x| x != &name);
                    }
                    out.untagged.push(name);
                }
                Removal::NeedsForce => {
                    return Err(StoreError::MultipleNames {
                        id: rec.id.short(),
                        names: rec.names.join(", "),
                    });
                }
                Removal::Delete => {
                    records.images.remove(&rec.digest.to_string());
                    out.untagged.extend(rec.names.iter().cloned());
                    out.deleted.push(rec.digest.clone());
                }
            }
            Ok(out)
        })?;
        if !removed.deleted.is_empty() {
            removed.blobs_removed = self.gc()?.blobs_removed;
        }
        Ok(removed)
    }

    /// Delete every blob no image reaches, and temp files of killed writers. Waits for
    /// writers in flight to finish.
    pub fn gc(&self) -> Result<GcReport> {
        self.gc_keeping(|| Ok(BTreeSet::new()))
    }

    /// Like [`Store::gc`], also keeping the blobs `extra` names (the build cache's
    /// layers). `extra` is called once the writers' lock is held, so what it reads
    /// cannot change underneath.
    pub fn gc_keeping(
        &self,
        extra: impl FnOnce() -> std::io::Result<BTreeSet<Digest>>,
    ) -> Result<GcReport> {
        let lock = self.lock_file("gc.lock")?;
        lock.lock()
            .map_err(io_err(&self.home.join("locks/gc.lock")))?;
        let mut live = extra().map_err(io_err(&self.home))?;
        for roots in &self.roots {
            live.extend(roots().map_err(io_err(&self.home))?);
        }
        for rec in self.list()? {
            // A damaged image keeps what can still be reached; never delete on doubt.
            match self.reachable(&rec.descriptor()) {
                Ok(set) => live.extend(set),
                Err(e) => {
                    tracing::warn!(image = %rec.digest, error = %e, "image incomplete; keeping its blobs");
                    live.insert(rec.digest.clone());
                    if let Ok(Manifest::Image(m)) = self.manifest(&rec.descriptor()) {
                        live.extend(m.layers.iter().map(|l| l.digest.clone()));
                        live.insert(m.config.digest);
                    }
                }
            }
        }
        let mut report = GcReport::default();
        for digest in self.blobs.list()? {
            if !live.contains(&digest) {
                report.bytes_freed += self.blobs.size(&digest)?.unwrap_or(0);
                self.blobs.remove(&digest)?;
                report.blobs_removed += 1;
            }
        }
        let tmp = self.blobs.tmp_dir();
        for entry in fs::read_dir(tmp).map_err(io_err(tmp))? {
            let entry = entry.map_err(io_err(tmp))?;
            let path = entry.path();
            let res = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            res.map_err(io_err(&path))?;
            report.temp_files_removed += 1;
        }
        Ok(report)
    }
}

/// The normalized `name:tag` an input names, if it is a name with a tag.
fn by_name(input: &str) -> Option<String> {
    let r: Reference = input.parse().ok()?;
    r.digest().is_none().then(|| r.to_string())
}

fn find<'a>(records: &'a Records, input: &str) -> Result<&'a ImageRecord> {
    let not_found = || StoreError::NotFound(input.to_owned());
    // A full digest: manifest digest or image ID.
    if let Ok(d) = input.parse::<Digest>() {
        return records
            .images
            .values()
            .find(|r| r.digest == d || r.id == d)
            .ok_or_else(not_found);
    }
    // A hex prefix of an ID or digest (Docker accepts any unique prefix).
    let hex = input.strip_prefix("sha256:").unwrap_or(input);
    let is_hex = hex.len() >= 4
        && hex.len() <= 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if is_hex {
        let matches: Vec<&ImageRecord> = records
            .images
            .values()
            .filter(|r| r.id.hex().starts_with(hex) || r.digest.hex().starts_with(hex))
            .collect();
        match matches.len() {
            1 => return Ok(matches[0]),
            0 => {} // may still be a name like `cafe`
            count => {
                return Err(StoreError::Ambiguous {
                    input: input.to_owned(),
                    count,
                })
            }
        }
    }
    let reference: Reference = input.parse()?;
    if let Some(d) = reference.digest() {
        // Content is named by its digest whatever repository it was stored under.
        return records
            .images
            .values()
            .find(|r| &r.digest == d)
            .ok_or_else(not_found);
    }
    let full = reference.to_string();
    records
        .images
        .values()
        .find(|r| r.names.iter().any(|n| n == &full))
        .ok_or_else(not_found)
}

/// The current time as RFC 3339 with seconds, UTC.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// A Unix time as RFC 3339 with seconds, UTC.
pub fn unix_to_rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .to_string()
}
