//! Garbage collection of the registry's storage: [`Registry::gc`].
//!
//! One pass, in this order:
//!
//! 1. **Lifecycle**: in each repository whose policy has a lifecycle policy, the
//!    images it expires are deleted (manifest revision, its tags, its push record
//!    and its referrer records), as `DELETE /v2/<name>/manifests/<digest>` would.
//! 2. **Repository links**: a blob link no remaining manifest of that repository
//!    references is dropped once it is older than `grace`.
//! 3. **Store**: a blob in the shared store that no repository links (as a blob or
//!    as a manifest revision) and no remaining manifest references is deleted once
//!    it is older than `grace`.
//! 4. **Uploads**: upload sessions untouched for longer than `upload_ttl` are
//!    removed, as are the blob store's temp files of that age.
//!
//! # Safety while pushes are in flight
//!
//! Steps 1 to 3 hold the exclusive lock on `<root>/gc.lock` (a `flock`, so it also
//! orders `hoist registry gc` in another process against a running server). Every
//! push step that creates a link holds the same lock shared while it checks and
//! links: finishing an upload or mounting ([`Registry::link_blob`] checks the blob is
//! still in the store) and storing a manifest (its blobs and children are checked and
//! its revision written in one critical section). So the sweep never sees half a
//! push, and a link never points at a deleted blob. What the lock cannot cover is
//! the time between a client uploading its blobs and pushing the manifest that uses
//! them; `grace` covers it: fresh links and fresh store blobs are never collected.
//! A blob a client only checked with `HEAD` (and so did not upload again) has an old
//! link; if no manifest references it, a sweep between that `HEAD` and the manifest
//! push can drop it, and the push then fails with `MANIFEST_BLOB_UNKNOWN` and is
//! retried by the client, which uploads it again.
//!
//! A manifest that cannot be read or parsed keeps everything in its repository (its
//! lifecycle policy is not applied and none of its links are dropped); the report
//! says which.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use hoist_oci::Digest;
use serde::{Deserialize, Deserializer, Serialize};

use crate::lifecycle::Image;
use crate::storage::{io_err, Registry, RegistryError};

/// The `[gc]` section of the configuration file.
///
/// ```toml
/// [gc]
/// interval = "24h"     # run by `hoist registry serve` this often (default: never)
/// grace = "1h"         # never collect links and blobs younger than this
/// upload_ttl = "24h"   # drop upload sessions untouched for this long
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GcConfig {
    /// How often `hoist registry serve` collects; `None`: only by `hoist registry gc`.
    #[serde(deserialize_with = "de_opt_duration")]
    pub interval: Option<Duration>,
    /// Links and blobs younger than this are never collected (default one hour).
    #[serde(deserialize_with = "de_duration")]
    pub grace: Duration,
    /// Upload sessions untouched this long are removed (default 24 hours).
    #[serde(deserialize_with = "de_duration")]
    pub upload_ttl: Duration,
}

impl Default for GcConfig {
    fn default() -> GcConfig {
        GcConfig {
            interval: None,
            grace: Duration::from_secs(3600),
            upload_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(|e| {
        serde::de::Error::custom(format!(
            "{s:?} is not a duration like \"90s\", \"1h\" or \"7days\": {e}"
        ))
    })
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let d = de_duration(d)?;
    if d.is_zero() {
        return Err(serde::de::Error::custom(
            "interval must be longer than zero (leave it out for no scheduled GC)",
        ));
    }
    Ok(Some(d))
}

/// What one garbage collection did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Nothing was deleted; the report says what would have been.
    pub dry_run: bool,
    /// Images the lifecycle policies expired.
    pub expired: Vec<ExpiredImage>,
    /// Blob links dropped from repositories.
    pub unlinked: Vec<UnlinkedBlob>,
    /// Blobs deleted from the store.
    pub blobs_removed: Vec<RemovedBlob>,
    /// The bytes those blobs held.
    pub bytes_freed: u64,
    /// Abandoned upload sessions removed.
    pub uploads_removed: Vec<String>,
    /// Stale temp files of the blob store removed.
    pub temp_files_removed: usize,
    /// Things left alone because they could not be read, with why.
    pub skipped: Vec<String>,
}

/// An image a lifecycle rule expired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpiredImage {
    /// The repository.
    pub repository: String,
    /// The manifest digest.
    pub digest: Digest,
    /// The tags it had.
    pub tags: Vec<String>,
    /// Why: the rule, or the subject it went with.
    pub reason: String,
}

/// A blob link dropped from a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnlinkedBlob {
    /// The repository.
    pub repository: String,
    /// The blob.
    pub digest: Digest,
}

/// A blob deleted from the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemovedBlob {
    /// The blob.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// What a manifest points at.
#[derive(Default)]
struct Refs {
    /// Every digest in a descriptor (config, layers, blobs, manifests, subject).
    all: Vec<Digest>,
    /// An index's manifests.
    children: Vec<Digest>,
    /// The `subject`.
    subject: Option<Digest>,
}

fn manifest_refs(bytes: &[u8]) -> Result<Refs, String> {
    let doc: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let digest_of = |v: &serde_json::Value| -> Result<Option<Digest>, String> {
        match v.get("digest").and_then(|d| d.as_str()) {
            Some(d) => d
                .parse()
                .map(Some)
                .map_err(|e| format!("invalid digest {d:?}: {e}")),
            None => Ok(None),
        }
    };
    let mut refs = Refs::default();
    if let Some(c) = doc.get("config") {
        refs.all.extend(digest_of(c)?);
    }
    for key in ["layers", "blobs"] {
        for l in doc
            .get(key)
            .and_then(|l| l.as_array())
            .into_iter()
            .flatten()
        {
            refs.all.extend(digest_of(l)?);
        }
    }
    for m in doc
        .get("manifests")
        .and_then(|m| m.as_array())
        .into_iter()
        .flatten()
    {
        if let Some(d) = digest_of(m)? {
            refs.children.push(d.clone());
            refs.all.push(d);
        }
    }
    if let Some(s) = doc.get("subject") {
        refs.subject = digest_of(s)?;
        refs.all.extend(refs.subject.clone());
    }
    Ok(refs)
}

fn older_than(now: SystemTime, t: SystemTime, age: Duration) -> bool {
    now.duration_since(t).is_ok_and(|a| a > age)
}

impl Registry {
    /// Collect garbage now (see the module doc); with `dry_run`, only report.
    pub fn gc(&self, config: &GcConfig, dry_run: bool) -> Result<GcReport, RegistryError> {
        self.gc_at(config, dry_run, SystemTime::now())
    }

    /// [`Registry::gc`] as if the time were `now` (lifecycle ages, grace, upload TTL).
    pub fn gc_at(
        &self,
        config: &GcConfig,
        dry_run: bool,
        now: SystemTime,
    ) -> Result<GcReport, RegistryError> {
        let mut report = GcReport {
            dry_run,
            ..GcReport::default()
        };
        {
            let _lock = self.lock_exclusive()?;
            self.sweep(config, dry_run, now, &mut report)?;
        }
        for (uuid, path, touched) in self.upload_sessions()? {
            if older_than(now, touched, config.upload_ttl) {
                if !dry_run {
                    match fs::remove_dir_all(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(io_err(&path)(e)),
                    }
                }
                report.uploads_removed.push(uuid);
            }
        }
        let tmp = self.blobs().tmp_dir().to_owned();
        for entry in fs::read_dir(&tmp).map_err(io_err(&tmp))? {
            let entry = entry.map_err(io_err(&tmp))?;
            let path: PathBuf = entry.path();
            let Ok(modified) = entry.metadata().and_then(|m| m.modified()) else {
                continue;
            };
            if path.is_file() && older_than(now, modified, config.upload_ttl) {
                if !dry_run {
                    let _ = fs::remove_file(&path);
                }
                report.temp_files_removed += 1;
            }
        }
        Ok(report)
    }

    /// Steps 1 to 3, under the exclusive lock.
    fn sweep(
        &self,
        config: &GcConfig,
        dry_run: bool,
        now: SystemTime,
        report: &mut GcReport,
    ) -> Result<(), RegistryError> {
        // Everything that must stay in the store.
        let mut live: HashSet<Digest> = HashSet::new();
        for repo in self.catalog()? {
            let listing = self.listing(&repo)?;
            let mut images = Vec::new();
            let mut refs_ok = true;
            let mut refs_by_digest = Vec::new();
            for (digest, _media_type, pushed_at) in &listing.revisions {
                let refs = match self.blobs().read(digest) {
                    Ok(bytes) => manifest_refs(&bytes),
                    Err(e) => Err(e.to_string()),
                };
                let refs = match refs {
                    Ok(r) => r,
                    Err(why) => {
                        report.skipped.push(format!(
                            "{repo}: manifest {digest} unreadable ({why}); the repository is left as it is"
                        ));
                        refs_ok = false;
                        Refs::default()
                    }
                };
                images.push(Image {
                    digest: digest.clone(),
                    tags: listing
                        .tags
                        .iter()
                        .filter(|(_, d)| d == digest)
                        .map(|(t, _)| t.clone())
                        .collect(),
                    pushed_at: *pushed_at,
                    children: refs.children.clone(),
                    subject: refs.subject.clone(),
                });
                refs_by_digest.push((digest.clone(), refs.all));
            }
            if !refs_ok {
                live.extend(listing.revisions.iter().map(|(d, _, _)| d.clone()));
                live.extend(listing.layers.iter().map(|(d, _)| d.clone()));
                live.extend(refs_by_digest.into_iter().flat_map(|(_, r)| r));
                continue;
            }

            // 1. Lifecycle.
            let lifecycle = self.policy_for(&repo).and_then(|p| p.lifecycle());
            let expired: Vec<_> = match lifecycle {
                Some(lc) => lc.evaluate(&images, now),
                None => Vec::new(),
            };
            let expired_set: BTreeSet<&Digest> = expired.iter().map(|(d, _)| d).collect();
            for (digest, reason) in &expired {
                let tags = images
                    .iter()
                    .find(|i| &i.digest == digest)
                    .map(|i| i.tags.clone())
                    .unwrap_or_default();
                if !dry_run {
                    self.delete_manifest(&repo, digest)?;
                }
                report.expired.push(ExpiredImage {
                    repository: repo.clone(),
                    digest: digest.clone(),
                    tags,
                    reason: reason.to_string(),
                });
            }
            if !dry_run && !expired.is_empty() {
                self.prune_referrers(&repo)?;
            }

            // 2. Links no remaining manifest references.
            let mut referenced: HashSet<Digest> = HashSet::new();
            for (digest, refs) in refs_by_digest {
                if !expired_set.contains(&digest) {
                    live.insert(digest);
                    referenced.extend(refs);
                }
            }
            for (digest, modified) in &listing.layers {
                if referenced.contains(digest) || !older_than(now, *modified, config.grace) {
                    live.insert(digest.clone());
                    continue;
                }
                if !dry_run {
                    self.unlink_blob(&repo, digest)?;
                }
                report.unlinked.push(UnlinkedBlob {
                    repository: repo.clone(),
                    digest: digest.clone(),
                });
            }
            live.extend(referenced);
        }

        // 3. Store blobs nothing links or references.
        for digest in self.blobs().list()? {
            if live.contains(&digest) {
                continue;
            }
            let path = self.blobs().path(&digest);
            let meta = match fs::metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(&path)(e)),
            };
            let modified = meta.modified().map_err(io_err(&path))?;
            if !older_than(now, modified, config.grace) {
                continue;
            }
            if !dry_run {
                self.blobs().remove(&digest)?;
            }
            report.bytes_freed += meta.len();
            report.blobs_removed.push(RemovedBlob {
                digest,
                size: meta.len(),
            });
        }
        Ok(())
    }
}

/// Run [`Registry::gc`] every `config.interval` on a thread of its own, logging each
/// report; `None` when no interval is configured.
pub fn schedule(registry: Registry, config: GcConfig) -> Option<std::thread::JoinHandle<()>> {
    let interval = config.interval?;
    let spawned = std::thread::Builder::new()
        .name("registry-gc".into())
        .spawn(move || loop {
            std::thread::sleep(interval);
            match registry.gc(&config, false) {
                Ok(r) => tracing::info!(
                    expired = r.expired.len(),
                    unlinked = r.unlinked.len(),
                    blobs_removed = r.blobs_removed.len(),
                    bytes_freed = r.bytes_freed,
                    uploads_removed = r.uploads_removed.len(),
                    "registry garbage collection done"
                ),
                Err(e) => tracing::error!("registry garbage collection failed: {e}"),
            }
        });
    match spawned {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::error!("cannot start the registry GC thread: {e}");
            None
        }
    }
}
