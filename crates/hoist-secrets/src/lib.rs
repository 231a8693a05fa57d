//! hoist's secret store: named values sealed at rest under a key file kept 0600 in
//! hoist's home, handed to the deploy controller to inject into tasks at start.
//!
//! It must never log, print or serialize a secret's value, and knows nothing of
//! services or containers.
//!
//! # Shape
//!
//! [`SecretStore::open`] takes a directory (hoist passes `<home>/secrets`, created
//! 0700) holding three files:
//!
//! - `key`: 32 random bytes, mode 0600, made on first use. It is written to a
//!   temporary file and then hard-linked into place, which fails if a `key`
//!   already exists, so two processes opening a fresh store at once agree on one
//!   key (the loser reads the winner's). A key file readable by group or others,
//!   or of the wrong length, is refused. A missing key next to an existing
//!   `secrets.json` is refused too, rather than sealing new values under a new key
//!   and losing the old ones.
//! - `secrets.json`: every secret's name, nonce, ciphertext (base64) and created /
//!   updated times (RFC 3339), mode 0600. Writers take an exclusive `flock` on
//!   `lock`, read, change one entry and replace the file atomically (temp file,
//!   fsync, rename, fsync of the directory); readers need no lock.
//! - `lock`: the writers' lock file.
//!
//! Each value is sealed with XChaCha20-Poly1305 under a fresh random 24-byte nonce,
//! with the secret's name as associated data: a ciphertext moved to another name,
//! a tampered one, or one read under another key fails to open with
//! [`SecretError::Unseal`], which names the secret and the file and nothing else.
//!
//! [`SecretValue`] is what [`SecretStore::get`] hands out: its bytes are wiped
//! when it is dropped (`zeroize`), its `Debug` and `Display` print `[redacted]`, and
//! the bytes are reached only through [`SecretValue::expose`].
//!
//! # What it does not do
//!
//! No key rotation, no passphrase or KMS wrapping of the key (whoever can read the
//! key file as root can read every secret; the store protects copies of
//! `secrets.json`, backups and logs), no versions or history of a value, no
//! network access.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The longest secret name.
pub const NAME_MAX: usize = 128;

const KEY_FILE: &str = "key";
const DATA_FILE: &str = "secrets.json";
const LOCK_FILE: &str = "lock";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const FORMAT_VERSION: u32 = 1;
/// Prefixed to the name in the associated data, so a ciphertext is bound to this
/// use as well as to its name.
const AAD_PREFIX: &[u8] = b"hoist-secret-v1:";

/// Why a secret operation failed. Never carries a secret's value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// A file or directory of the store could not be used.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A name outside `[A-Za-z0-9_.-]{1,128}`.
    #[error("invalid secret name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The key file exists but cannot be used.
    #[error("key file {}: {reason}", path.display())]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Secrets exist but their key file is gone.
    #[error(
        "key file {} is missing but {} holds secrets sealed under it; restore the key \
         file, or remove {} to start over without them",
        key.display(), data.display(), data.display()
    )]
    KeyMissing {
        /// Where the key file should be.
        key: PathBuf,
        /// The secrets file.
        data: PathBuf,
    },
    /// `secrets.json` is not valid.
    #[error("{}:{line}:{column}: not a valid secrets file: {message}", path.display())]
    Corrupt {
        /// The secrets file.
        path: PathBuf,
        /// 1-based line of the problem (0 when not about a position).
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// One entry of `secrets.json` is malformed (bad base64, nonce or time).
    #[error("secret {name:?} in {}: {reason}", path.display())]
    BadEntry {
        /// The secret's name.
        name: String,
        /// The secrets file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The value does not open: another key, a tampered ciphertext, or a
    /// ciphertext moved from another name.
    #[error(
        "secret {name:?} in {} cannot be decrypted: wrong key file or tampered data",
        path.display()
    )]
    Unseal {
        /// The secret's name.
        name: String,
        /// The secrets file.
        path: PathBuf,
    },
    /// Sealing failed (a value too large for the cipher).
    #[error("secret {name:?} could not be encrypted")]
    Seal {
        /// The secret's name.
        name: String,
    },
}

impl SecretError {
    fn io(path: impl Into<PathBuf>, source: std::io::Error) -> SecretError {
        SecretError::Io {
            path: path.into(),
            source,
        }
    }
}

/// A secret's value: wiped from memory on drop, never printed.
pub struct SecretValue {
    bytes: Zeroizing<Vec<u8>>,
}

impl SecretValue {
    /// Wrap bytes (they are wiped when the value is dropped).
    pub fn new(bytes: Vec<u8>) -> SecretValue {
        SecretValue {
            bytes: Zeroizing::new(bytes),
        }
    }

    /// The bytes, for handing to the one place that needs them.
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// What can be said about a secret without opening it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMeta {
    /// Its name.
    pub name: String,
    /// When it was first set.
    pub created: SystemTime,
    /// When it was last set.
    pub updated: SystemTime,
    /// The value's length in bytes.
    pub size: usize,
}

/// Check a secret name: `[A-Za-z0-9_.-]{1,128}`, and not `.` or `..` (so a name
/// can always be a file name).
pub fn validate_name(name: &str) -> Result<(), SecretError> {
    let bad = |reason: String| SecretError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("it is empty".to_owned()));
    }
    if name.len() > NAME_MAX {
        return Err(bad(format!(
            "it is {} characters long, over {NAME_MAX}",
            name.len()
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(bad(format!(
            "it contains {c:?}; names use only A-Z a-z 0-9 _ . -"
        )));
    }
    if name == "." || name == ".." {
        return Err(bad("`.` and `..` are reserved".to_owned()));
    }
    Ok(())
}

/// `secrets.json` as stored.
#[derive(Debug, Serialize, Deserialize)]
struct StoreFile {
    version: u32,
    secrets: BTreeMap<String, Entry>,
}

impl Default for StoreFile {
    fn default() -> Self {
        StoreFile {
            version: FORMAT_VERSION,
            secrets: BTreeMap::new(),
        }
    }
}

/// One sealed secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    nonce: String,
    ciphertext: String,
    created: String,
    updated: String,
}

/// The secret store in one directory (see the crate docs).
pub struct SecretStore {
    dir: PathBuf,
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl SecretStore {
    /// Open the store in `dir`, creating the directory (0700) and the key file
    /// (0600) on first use.
    pub fn open(dir: &Path) -> Result<SecretStore, SecretError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| SecretError::io(dir, e))?;
        let key = load_or_create_key(dir)?;
        Ok(SecretStore {
            dir: dir.to_path_buf(),
            key,
        })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Set `name` to `value`, creating or replacing it; returns whether it replaced
    /// an existing value.
    pub fn set(&self, name: &str, value: &[u8]) -> Result<bool, SecretError> {
        validate_name(name)?;
        let _lock = self.lock()?;
        let mut file = self.load()?;
        let now = now_rfc3339();
        let nonce: [u8; NONCE_LEN] = rand::random();
        let ciphertext = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: value,
                    aad: &aad(name),
                },
            )
            .map_err(|_| SecretError::Seal {
                name: name.to_owned(),
            })?;
        let previous = file.secrets.get(name).map(|e| e.created.clone());
        let replaced = previous.is_some();
        file.secrets.insert(
            name.to_owned(),
            Entry {
                nonce: B64.encode(nonce),
                ciphertext: B64.encode(ciphertext),
                created: previous.unwrap_or_else(|| now.clone()),
                updated: now,
            },
        );
        self.save(&file)?;
        Ok(replaced)
    }

    /// The value of `name`, `None` if there is no such secret.
    pub fn get(&self, name: &str) -> Result<Option<SecretValue>, SecretError> {
        validate_name(name)?;
        let file = self.load()?;
        let Some(entry) = file.secrets.get(name) else {
            return Ok(None);
        };
        let path = self.data_path();
        let bad = |reason: String| SecretError::BadEntry {
            name: name.to_owned(),
            path: path.clone(),
            reason,
        };
        let nonce = B64
            .decode(&entry.nonce)
            .map_err(|e| bad(format!("nonce is not base64: {e}")))?;
        if nonce.len() != NONCE_LEN {
            return Err(bad(format!(
                "nonce is {} bytes, not {NONCE_LEN}",
                nonce.len()
            )));
        }
        let ciphertext = B64
            .decode(&entry.ciphertext)
            .map_err(|e| bad(format!("ciphertext is not base64: {e}")))?;
        let plain = self
            .cipher()
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: &aad(name),
                },
            )
            .map_err(|_| SecretError::Unseal {
                name: name.to_owned(),
                path: path.clone(),
            })?;
        Ok(Some(SecretValue::new(plain)))
    }

    /// Every secret's name, times and size, in name order (no value is opened).
    pub fn list(&self) -> Result<Vec<SecretMeta>, SecretError> {
        let file = self.load()?;
        let path = self.data_path();
        file.secrets
            .iter()
            .map(|(name, entry)| {
                let bad = |reason: String| SecretError::BadEntry {
                    name: name.clone(),
                    path: path.clone(),
                    reason,
                };
                let time = |field: &str, text: &str| {
                    humantime::parse_rfc3339(text)
                        .map_err(|e| bad(format!("{field} time {text:?}: {e}")))
                };
                let sealed = B64
                    .decode(&entry.ciphertext)
                    .map_err(|e| bad(format!("ciphertext is not base64: {e}")))?;
                Ok(SecretMeta {
                    name: name.clone(),
                    created: time("created", &entry.created)?,
                    updated: time("updated", &entry.updated)?,
                    size: sealed.len().saturating_sub(TAG_LEN),
                })
            })
            .collect()
    }

    /// Remove `name`; returns whether it existed.
    pub fn remove(&self, name: &str) -> Result<bool, SecretError> {
        validate_name(name)?;
        let _lock = self.lock()?;
        let mut file = self.load()?;
        if file.secrets.remove(name).is_none() {
            return Ok(false);
        }
        self.save(&file)?;
        Ok(true)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(Key::from_slice(&self.key[..]))
    }

    fn data_path(&self) -> PathBuf {
        self.dir.join(DATA_FILE)
    }

    /// The writers' lock, held until the returned file is dropped.
    fn lock(&self) -> Result<File, SecretError> {
        let path = self.dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| SecretError::io(&path, e))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| SecretError::io(&path, e.into()))?;
        Ok(file)
    }

    fn load(&self) -> Result<StoreFile, SecretError> {
        let path = self.data_path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(StoreFile::default()),
            Err(e) => return Err(SecretError::io(&path, e)),
        };
        let file: StoreFile = serde_json::from_slice(&bytes).map_err(|e| SecretError::Corrupt {
            path: path.clone(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        if file.version != FORMAT_VERSION {
            return Err(SecretError::Corrupt {
                path,
                line: 0,
                column: 0,
                message: format!(
                    "format version {} is not the supported {FORMAT_VERSION}",
                    file.version
                ),
            });
        }
        Ok(file)
    }

    /// Replace `secrets.json` atomically; the caller holds the lock.
    fn save(&self, file: &StoreFile) -> Result<(), SecretError> {
        let path = self.data_path();
        let tmp = self.dir.join(format!("{DATA_FILE}.tmp"));
        let mut bytes = serde_json::to_vec_pretty(file).map_err(|e| SecretError::Corrupt {
            path: path.clone(),
            line: 0,
            column: 0,
            message: e.to_string(),
        })?;
        bytes.push(b'\n');
        let mut out = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| SecretError::io(&tmp, e))?;
        // A temp file left by a killed writer may have another mode.
        out.set_permissions(std::fs::Permissions::from_mode(0o600))
            .and_then(|()| out.write_all(&bytes))
            .and_then(|()| out.sync_all())
            .map_err(|e| SecretError::io(&tmp, e))?;
        drop(out);
        std::fs::rename(&tmp, &path).map_err(|e| SecretError::io(&path, e))?;
        sync_dir(&self.dir)
    }
}

fn aad(name: &str) -> Vec<u8> {
    let mut aad = AAD_PREFIX.to_vec();
    aad.extend_from_slice(name.as_bytes());
    aad
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

fn sync_dir(dir: &Path) -> Result<(), SecretError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| SecretError::io(dir, e))
}

/// Read the key file; `Ok(None)` when it does not exist.
fn read_key(path: &Path) -> Result<Option<Zeroizing<[u8; KEY_LEN]>>, SecretError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SecretError::io(path, e)),
    };
    let meta = file.metadata().map_err(|e| SecretError::io(path, e))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretError::KeyFile {
            path: path.to_path_buf(),
            reason: format!("mode {mode:03o} lets others read it; it must be 0600"),
        });
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(KEY_LEN + 1));
    file.read_to_end(&mut bytes)
        .map_err(|e| SecretError::io(path, e))?;
    if bytes.len() != KEY_LEN {
        return Err(SecretError::KeyFile {
            path: path.to_path_buf(),
            reason: format!("it holds {} bytes, not {KEY_LEN}", bytes.len()),
        });
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(&bytes);
    Ok(Some(key))
}

/// The store's key, made on first use: written to a temp file and hard-linked into
/// place, which fails when another process got there first (then its key is read).
fn load_or_create_key(dir: &Path) -> Result<Zeroizing<[u8; KEY_LEN]>, SecretError> {
    let path = dir.join(KEY_FILE);
    if let Some(key) = read_key(&path)? {
        return Ok(key);
    }
    let data = dir.join(DATA_FILE);
    if data.exists() {
        return Err(SecretError::KeyMissing { key: path, data });
    }
    let key = Zeroizing::new(rand::random::<[u8; KEY_LEN]>());
    let suffix: u64 = rand::random();
    let tmp = dir.join(format!("{KEY_FILE}.{suffix:016x}.tmp"));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(key.as_ref()).and_then(|()| f.sync_all()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(SecretError::io(&tmp, e));
    }
    let linked = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            sync_dir(dir)?;
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read_key(&path)?.ok_or_else(|| SecretError::KeyFile {
                path: path.clone(),
                reason: "it vanished while being created".to_owned(),
            })
        }
        Err(e) => Err(SecretError::io(&path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SecretStore) {
        let tmp = tempfile::tempdir().unwrap();
        let store = SecretStore::open(&tmp.path().join("secrets")).unwrap();
        (tmp, store)
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn edit_file(store: &SecretStore, f: impl FnOnce(&mut serde_json::Value)) {
        let path = store.dir().join(DATA_FILE);
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        f(&mut v);
        std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    }

    #[test]
    fn round_trip_replace_list_remove() {
        let (_tmp, store) = store();
        assert!(!store.set("DB_PASSWORD", b"hunter2\n").unwrap());
        assert_eq!(
            store.get("DB_PASSWORD").unwrap().unwrap().expose(),
            b"hunter2\n"
        );
        assert!(store.get("OTHER").unwrap().is_none());

        let before = store.list().unwrap();
        assert_eq!(before.len(), 1);
        assert_eq!(before[0].name, "DB_PASSWORD");
        assert_eq!(before[0].size, 8);
        assert_eq!(before[0].created, before[0].updated);

        assert!(store.set("DB_PASSWORD", b"longer value").unwrap());
        store.set("api.key-1", b"").unwrap();
        let after = store.list().unwrap();
        assert_eq!(
            after.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
            ["DB_PASSWORD", "api.key-1"]
        );
        assert_eq!(after[0].size, 12);
        assert_eq!(after[0].created, before[0].created, "created is kept");
        assert!(after[0].updated > before[0].updated);
        assert!(store.get("api.key-1").unwrap().unwrap().is_empty());

        // A second handle (another process) sees the same store.
        let again = SecretStore::open(store.dir()).unwrap();
        assert_eq!(
            again.get("DB_PASSWORD").unwrap().unwrap().expose(),
            b"longer value"
        );

        assert!(store.remove("DB_PASSWORD").unwrap());
        assert!(!store.remove("DB_PASSWORD").unwrap());
        assert!(store.get("DB_PASSWORD").unwrap().is_none());
        assert_eq!(store.list().unwrap().len(), 1);
    }

    #[test]
    fn files_are_private() {
        let (_tmp, store) = store();
        store.set("a", b"x").unwrap();
        assert_eq!(mode(store.dir()), 0o700);
        assert_eq!(mode(&store.dir().join(KEY_FILE)), 0o600);
        assert_eq!(mode(&store.dir().join(DATA_FILE)), 0o600);
        assert_eq!(
            std::fs::read(store.dir().join(KEY_FILE)).unwrap().len(),
            KEY_LEN
        );
    }

    #[test]
    fn plaintext_never_reaches_the_file() {
        let (_tmp, store) = store();
        let value = b"correct horse battery staple";
        store.set("phrase", value).unwrap();
        store.set("phrase", value).unwrap();
        let text = std::fs::read(store.dir().join(DATA_FILE)).unwrap();
        let contains = |needle: &[u8]| text.windows(needle.len()).any(|w| w == needle);
        assert!(!contains(value));
        assert!(!contains(B64.encode(value).as_bytes()));
        assert!(contains(b"phrase"), "names are stored in the clear");
    }

    #[test]
    fn a_wrong_key_is_refused_naming_the_secret_and_file() {
        let (_tmp, store) = store();
        store.set("token", b"s3cr3t-value").unwrap();
        let key_path = store.dir().join(KEY_FILE);
        std::fs::remove_file(&key_path).unwrap();
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key_path)
            .unwrap();
        f.write_all(&[7u8; KEY_LEN]).unwrap();
        drop(f);
        let other = SecretStore::open(store.dir()).unwrap();
        let err = other.get("token").unwrap_err();
        assert!(matches!(err, SecretError::Unseal { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("\"token\""), "{msg}");
        assert!(msg.contains(&store.dir().join(DATA_FILE).display().to_string()));
        assert!(!msg.contains("s3cr3t"), "{msg}");
    }

    #[test]
    fn tampered_ciphertext_is_refused() {
        let (_tmp, store) = store();
        store.set("token", b"s3cr3t-value").unwrap();
        edit_file(&store, |v| {
            let entry = &mut v["secrets"]["token"]["ciphertext"];
            let mut bytes = B64.decode(entry.as_str().unwrap()).unwrap();
            bytes[0] ^= 1;
            *entry = B64.encode(bytes).into();
        });
        let err = store.get("token").unwrap_err();
        assert!(matches!(err, SecretError::Unseal { .. }), "{err:?}");
    }

    #[test]
    fn a_ciphertext_moved_to_another_name_does_not_open() {
        let (_tmp, store) = store();
        store.set("prod_db", b"prod password").unwrap();
        store.set("dev_db", b"dev password").unwrap();
        edit_file(&store, |v| {
            let prod = v["secrets"]["prod_db"].clone();
            v["secrets"]["dev_db"] = prod;
        });
        let err = store.get("dev_db").unwrap_err();
        assert!(matches!(err, SecretError::Unseal { ref name, .. } if name == "dev_db"));
        assert_eq!(
            store.get("prod_db").unwrap().unwrap().expose(),
            b"prod password"
        );
    }

    #[test]
    fn corrupt_json_names_the_file_and_line() {
        let (_tmp, store) = store();
        let path = store.dir().join(DATA_FILE);
        std::fs::write(&path, "{\n  \"version\": 1,\n  \"secrets\": {oops}\n}\n").unwrap();
        let err = store.list().unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with(&format!("{}:3:", path.display())), "{msg}");
        assert!(store.set("a", b"b").is_err(), "a write must not clobber it");
    }

    #[test]
    fn names_are_validated() {
        let (_tmp, store) = store();
        for good in ["A", "db_password", "api.key-2", &"x".repeat(NAME_MAX)] {
            validate_name(good).unwrap();
        }
        for bad in ["", "a/b", "a b", "é", ".", "..", &"x".repeat(NAME_MAX + 1)] {
            let err = store.set(bad, b"v").unwrap_err();
            assert!(matches!(err, SecretError::InvalidName { .. }), "{bad}");
        }
        let msg = validate_name("a/b").unwrap_err().to_string();
        assert!(msg.contains("'/'"), "{msg}");
    }

    #[test]
    fn values_print_redacted() {
        let v = SecretValue::new(b"top secret".to_vec());
        assert_eq!(format!("{v:?}"), "[redacted]");
        assert_eq!(format!("{v}"), "[redacted]");
        assert_eq!(v.expose(), b"top secret");
    }

    #[test]
    fn racing_opens_agree_on_one_key() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("secrets");
        let stores: Vec<SecretStore> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| SecretStore::open(&dir).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        stores[0].set("shared", b"same key").unwrap();
        for s in &stores {
            assert_eq!(s.get("shared").unwrap().unwrap().expose(), b"same key");
        }
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_lost_key_is_not_silently_replaced_and_a_loose_key_is_refused() {
        let (_tmp, store) = store();
        store.set("a", b"b").unwrap();
        let key = store.dir().join(KEY_FILE);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = SecretStore::open(store.dir()).unwrap_err();
        assert!(err.to_string().contains("0600"), "{err}");
        std::fs::remove_file(&key).unwrap();
        let err = SecretStore::open(store.dir()).unwrap_err();
        assert!(matches!(err, SecretError::KeyMissing { .. }), "{err:?}");
        assert!(!key.exists());
    }
}
