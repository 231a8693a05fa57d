//! The step cache: what each cache key produced, and the persistent directories of
//! `RUN --mount=type=cache`.
//!
//! A key is the SHA-256 of the parent step's key and everything that decides the
//! step's result (see the engine). A record holds the layer the step produced, if
//! any, and when it was first made. Records are small JSON files written
//! atomically after the layer blob is committed, so a killed build never leaves a
//! record that names a missing blob; a record whose blob was collected anyway is a
//! miss.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use hoist_oci::{Descriptor, Digest, Digester};
use serde::{Deserialize, Serialize};

use crate::error::BuildError;

/// A chain of cache keys: each step's key hashes its parent's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey(pub Digest);

impl CacheKey {
    /// The first key of a stage, from what it starts from.
    pub fn root(what: &str) -> CacheKey {
        CacheKey(Digest::sha256_of(
            format!("hoist-build-v1\0{what}").as_bytes(),
        ))
    }

    /// The key of the step after this one, from the parts that decide its result.
    pub fn child(&self, parts: &[&str]) -> CacheKey {
        let mut d = Digester::new(hoist_oci::Algorithm::Sha256);
        d.update(self.0.to_string().as_bytes());
        for p in parts {
            // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
            d.update(&(p.len() as u64).to_le_bytes());
            d.update(p.as_bytes());
        }
        CacheKey(d.finish())
    }
}

/// The layer a step produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedLayer {
    /// The blob.
    pub descriptor: Descriptor,
    /// Its uncompressed digest.
    pub diff_id: Digest,
}

/// What a cached step produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRecord {
    /// The layer, or none when the step changed no file.
    pub layer: Option<CachedLayer>,
    /// When the step first ran (RFC 3339), reused as the history time.
    pub created: String,
}

/// The step cache under `<home>/build-cache`.
#[derive(Debug, Clone)]
pub struct StepCache {
    root: PathBuf,
}

impl StepCache {
    /// Open (creating) the cache in `root`.
    pub fn open(root: &Path) -> Result<StepCache, BuildError> {
        for d in [root.join("steps"), root.join("mounts")] {
            fs::create_dir_all(&d).map_err(BuildError::io(&d))?;
        }
        Ok(StepCache {
            root: root.to_owned(),
        })
    }

    fn record_path(&self, key: &CacheKey) -> PathBuf {
        self.root
            .join("steps")
            .join(format!("{}.json", key.0.hex()))
    }

    /// The record for `key`; unreadable records count as misses.
    pub fn get(&self, key: &CacheKey) -> Option<CacheRecord> {
        let bytes = fs::read(self.record_path(key)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Store the record for `key`, atomically.
    pub fn put(&self, key: &CacheKey, record: &CacheRecord) -> Result<(), BuildError> {
        let path = self.record_path(key);
        let bytes = serde_json::to_vec(record).unwrap_or_default();
        hoist_oci::write_atomic(&path, |f| f.write_all(&bytes))?;
        Ok(())
    }

    /// Every blob and diff_id the records name (GC roots).
    pub fn live(&self) -> std::io::Result<(BTreeSet<Digest>, BTreeSet<Digest>)> {
        let mut blobs = BTreeSet::new();
        let mut diff_ids = BTreeSet::new();
        let dir = self.root.join("steps");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((blobs, diff_ids)),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let Ok(bytes) = fs::read(entry.path()) else {
                continue;
            };
            if let Ok(CacheRecord {
                layer: Some(layer), ..
            }) = serde_json::from_slice(&bytes)
            {
                blobs.insert(layer.descriptor.digest);
                diff_ids.insert(layer.diff_id);
            }
        }
        Ok((blobs, diff_ids))
    }

    /// Remove every step record and cache mount; returns how many records went.
    pub fn clear(&self) -> Result<usize, BuildError> {
        let mut n = 0;
        let steps = self.root.join("steps");
        if let Ok(entries) = fs::read_dir(&steps) {
            for entry in entries.flatten() {
                fs::remove_file(entry.path()).map_err(BuildError::io(entry.path()))?;
                n += 1;
            }
        }
        let mounts = self.root.join("mounts");
        if mounts.exists() {
            fs::remove_dir_all(&mounts).map_err(BuildError::io(&mounts))?;
            fs::create_dir_all(&mounts).map_err(BuildError::io(&mounts))?;
        }
        Ok(n)
    }

    /// The persistent directory of cache mount `id`, created with `mode`,
    /// `uid` and `gid` the first time.
    pub fn mount_dir(
        &self,
        id: &str,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<PathBuf, BuildError> {
        let dir = self
            .root
            .join("mounts")
            .join(Digest::sha256_of(id.as_bytes()).hex());
        if !dir.exists() {
            let tmp = self.root.join("mounts").join(format!(
                ".tmp-{}-{}",
                std::process::id(),
                Digest::sha256_of(id.as_bytes()).short()
            ));
            let _ = fs::remove_dir_all(&tmp);
            fs::create_dir_all(&tmp).map_err(BuildError::io(&tmp))?;
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))
                .map_err(BuildError::io(&tmp))?;
            std::os::unix::fs::chown(&tmp, Some(uid), Some(gid)).map_err(BuildError::io(&tmp))?;
            match fs::rename(&tmp, &dir) {
                Ok(()) => {}
                // Another build made it first.
                Err(_) if dir.exists() => {
                    let _ = fs::remove_dir_all(&tmp);
                }
                Err(e) => return Err(BuildError::io(&dir)(e)),
            }
        }
        Ok(dir)
    }

    /// A lock file for a `sharing=locked` cache mount.
    pub fn mount_lock(&self, id: &str) -> Result<fs::File, BuildError> {
        let path = self
            .root
            .join("mounts")
            .join(format!("{}.lock", Digest::sha256_of(id.as_bytes()).hex()));
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(BuildError::io(&path))
    }
}
