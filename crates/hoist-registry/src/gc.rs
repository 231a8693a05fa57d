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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{ManifestPush, PushOutcome};
    use crate::{Config, Registry};

    const MT: &str = "application/vnd.oci.image.manifest.v1+json";

    /// Upload `bytes` to `name` as a client would: a session, then finish it.
    fn upload(reg: &Registry, name: &str, bytes: &[u8]) -> Result<Digest, RegistryError> {
        let uuid = reg.start_upload(name)?;
        let data = reg.upload_data(name, &uuid)?.expect("session");
        fs::write(&data, bytes).expect("write upload");
        let digest = Digest::sha256_of(bytes);
        reg.finish_upload(name, &uuid, &digest)?;
        Ok(digest)
    }

    /// A manifest with a config unique to `seed` and a layer shared by every image.
    fn manifest(seed: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let config = format!(r#"{{"seed":"{seed}"}}"#).into_bytes();
        let layer = b"the shared layer".to_vec();
        let m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MT,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": Digest::sha256_of(&config).to_string(), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": Digest::sha256_of(&layer).to_string(), "size": layer.len()}],
        });
        (config, layer, m.to_string().into_bytes())
    }

    /// Push an image: upload its blobs, then its manifest.
    fn push(
        reg: &Registry,
        name: &str,
        tag: Option<&str>,
        seed: &str,
    ) -> Result<(Digest, PushOutcome), RegistryError> {
        let (config, layer, m) = manifest(seed);
        let blobs = [upload(reg, name, &config)?, upload(reg, name, &layer)?];
        let digest = Digest::sha256_of(&m);
        let outcome = reg.push_manifest(&ManifestPush {
            name,
            bytes: &m,
            media_type: MT,
            digest: &digest,
            tag,
            blobs: &blobs,
            children: &[],
            referrer: None,
        })?;
        Ok((digest, outcome))
    }

    fn registry(config: &str) -> (tempfile::TempDir, Registry) {
        let dir = tempfile::tempdir().unwrap();
        let policies = Config::parse(config).unwrap().repositories;
        let reg = Registry::open(dir.path())
            .unwrap()
            .with_policies(policies)
            .unwrap();
        (dir, reg)
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn config_durations() {
        let c = Config::parse("[gc]\ninterval = \"12h\"\nupload_ttl = \"2days\"\n")
            .unwrap()
            .gc;
        assert_eq!(c.interval, Some(12 * HOUR));
        assert_eq!(c.grace, HOUR);
        assert_eq!(c.upload_ttl, 48 * HOUR);
        assert_eq!(Config::parse("").unwrap().gc, GcConfig::default());
        let (line, _, message) = Config::parse("[gc]\ngrace = \"soon\"\n").unwrap_err();
        assert_eq!(line, 2);
        assert!(message.contains("\"soon\" is not a duration"), "{message}");
    }

    #[test]
    fn a_blob_waiting_for_its_manifest_survives_within_grace() {
        let (_dir, reg) = registry("");
        let d = upload(&reg, "app", b"pushed, manifest not yet").unwrap();
        let config = GcConfig::default();
        let r = reg.gc(&config, false).unwrap();
        assert!(r.unlinked.is_empty() && r.blobs_removed.is_empty(), "{r:?}");
        assert_eq!(reg.blob_size("app", &d).unwrap(), Some(24));
        // Once the grace period is over, the unreferenced blob goes.
        let later = SystemTime::now() + 2 * HOUR;
        let r = reg.gc_at(&config, false, later).unwrap();
        assert_eq!(
            r.unlinked,
            vec![UnlinkedBlob {
                repository: "app".into(),
                digest: d.clone()
            }]
        );
        assert_eq!(
            r.blobs_removed,
            vec![RemovedBlob {
                digest: d.clone(),
                size: 24
            }]
        );
        assert_eq!(r.bytes_freed, 24);
        assert!(reg.blob_size("app", &d).unwrap().is_none());
        assert!(!reg.blobs().contains(&d));
    }

    #[test]
    fn lifecycle_expiry_frees_what_only_the_expired_image_used() {
        let (_dir, reg) = registry(
            r#"
            [[repository]]
            pattern = "app"
            lifecycle_policy = '{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]}'
            "#,
        );
        // Three pushes to `latest`: the first two end up untagged.
        let (one, _) = push(&reg, "app", Some("latest"), "one").unwrap();
        let (two, _) = push(&reg, "app", Some("latest"), "two").unwrap();
        let (three, _) = push(&reg, "app", Some("latest"), "three").unwrap();
        // The same first image in another repository keeps its blobs in the store.
        let (config_one, layer, _) = manifest("one");
        let config_one = Digest::sha256_of(&config_one);
        let layer = Digest::sha256_of(&layer);
        let config = GcConfig::default();
        let later = SystemTime::now() + 2 * HOUR;

        let dry = reg.gc_at(&config, true, later).unwrap();
        assert!(dry.dry_run);
        assert_eq!(dry.expired.len(), 1, "{dry:?}");
        assert_eq!(dry.expired[0].digest, one);
        assert_eq!(dry.expired[0].reason, "rulePriority 1");
        assert!(
            reg.manifest("app", &one).unwrap().is_some(),
            "a dry run deletes nothing"
        );

        let r = reg.gc_at(&config, false, later).unwrap();
        assert_eq!(r.expired, dry.expired);
        assert_eq!(r.unlinked, dry.unlinked);
        assert_eq!(r.blobs_removed, dry.blobs_removed);
        assert!(reg.manifest("app", &one).unwrap().is_none());
        assert!(reg.manifest("app", &two).unwrap().is_some());
        assert_eq!(reg.resolve_tag("app", "latest").unwrap(), Some(three));
        // The expired image's own config and manifest are gone; the shared layer stays.
        let removed: Vec<_> = r.blobs_removed.iter().map(|b| b.digest.clone()).collect();
        assert_eq!(removed.len(), 2, "{removed:?}");
        assert!(removed.contains(&config_one) && removed.contains(&one));
        assert!(reg.blob_size("app", &layer).unwrap().is_some());
        // Nothing left to do.
        let again = reg.gc_at(&config, false, later).unwrap();
        assert!(
            again.expired.is_empty() && again.blobs_removed.is_empty(),
            "{again:?}"
        );
    }

    #[test]
    fn immutable_tags_refuse_another_digest_but_not_the_same_one() {
        let (_dir, reg) =
            registry("[[repository]]\npattern = \"app\"\ntag_mutability = \"IMMUTABLE\"\n");
        let (one, outcome) = push(&reg, "app", Some("v1"), "one").unwrap();
        assert_eq!(outcome, PushOutcome::Stored);
        let (_, outcome) = push(&reg, "app", Some("v1"), "one").unwrap();
        assert_eq!(
            outcome,
            PushOutcome::Stored,
            "re-pushing the same image is idempotent"
        );
        let (_, outcome) = push(&reg, "app", Some("v1"), "two").unwrap();
        assert_eq!(outcome, PushOutcome::TagImmutable(one.clone()));
        assert_eq!(reg.resolve_tag("app", "v1").unwrap(), Some(one));
        // Deleting the tag (as ECR's BatchDeleteImage may) frees it.
        assert!(reg.delete_tag("app", "v1").unwrap());
        let (two, outcome) = push(&reg, "app", Some("v1"), "two").unwrap();
        assert_eq!(outcome, PushOutcome::Stored);
        assert_eq!(reg.resolve_tag("app", "v1").unwrap(), Some(two));
        // Other repositories are mutable.
        let (_, _) = push(&reg, "other", Some("v1"), "one").unwrap();
        let (_, outcome) = push(&reg, "other", Some("v1"), "two").unwrap();
        assert_eq!(outcome, PushOutcome::Stored);
    }

    #[test]
    fn upload_sessions_expire_after_their_ttl() {
        let (_dir, reg) = registry("");
        let uuid = reg.start_upload("app").unwrap();
        let config = GcConfig::default();
        assert!(reg.gc(&config, false).unwrap().uploads_removed.is_empty());
        let r = reg
            .gc_at(&config, false, SystemTime::now() + 25 * HOUR)
            .unwrap();
        assert_eq!(r.uploads_removed, vec![uuid.clone()]);
        assert!(reg.upload_data("app", &uuid).unwrap().is_none());
    }

    /// Pushes race a GC that runs over and over with no grace at all: pushes may have
    /// to retry (as clients do on MANIFEST_BLOB_UNKNOWN), but every push that
    /// succeeded is whole afterwards and no link points at a missing blob.
    #[test]
    fn pushes_racing_gc_end_consistent() {
        let (_dir, reg) = registry("");
        let no_grace = GcConfig {
            grace: Duration::ZERO,
            ..GcConfig::default()
        };
        let pushed = std::thread::scope(|s| {
            // A bounded number of sweeps, so the test's length does not depend on how
            // often pushes lose the race.
            s.spawn(|| {
                for _ in 0..100 {
                    reg.gc(&no_grace, false).unwrap();
                }
            });
            let mut pushed = Vec::new();
            for i in 0..6 {
                let name = format!("repo{}", i % 3);
                let tag = format!("t{i}");
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    assert!(attempts < 100_000, "push {i} never got through");
                    match push(&reg, &name, Some(&tag), &format!("image{i}")) {
                        Ok((d, PushOutcome::Stored)) => {
                            pushed.push((name, tag, d));
                            break;
                        }
                        // A blob swept between upload and manifest: retry.
                        Ok((_, PushOutcome::Missing(_))) => {}
                        // The store blob swept between its write and its link.
                        Err(RegistryError::Blob(hoist_oci::BlobError::NotFound(_))) => {}
                        Err(e) => panic!("push {i}: {e}"),
                        Ok((_, other)) => panic!("push {i}: {other:?}"),
                    }
                }
            }
            pushed
        });
        // One last sweep, then check everything.
        reg.gc(&no_grace, false).unwrap();
        for (name, tag, digest) in &pushed {
            assert_eq!(reg.resolve_tag(name, tag).unwrap().as_ref(), Some(digest));
            let (bytes, _) = reg.manifest(name, digest).unwrap().expect("manifest kept");
            let refs = manifest_refs(&bytes).unwrap();
            for d in refs.all {
                assert!(
                    reg.blob_size(name, &d).unwrap().is_some(),
                    "{name}: {d} missing"
                );
            }
        }
        for name in reg.catalog().unwrap() {
            for (d, _) in reg.listing(&name).unwrap().layers {
                assert!(reg.blobs().contains(&d), "{name}: link to missing {d}");
            }
        }
    }
}
