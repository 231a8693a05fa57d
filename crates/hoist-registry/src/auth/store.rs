//! Registry tokens on disk: `<root>/auth/tokens.json` holds, per token, its ID, name,
//! repository patterns, actions, creation and expiry times, and the SHA-256 of its
//! secret. The secret itself (`hoist_<id>_<43 base64url chars>`, 256 random bits) is
//! shown once by `create` and stored nowhere. Changes are made under an exclusive
//! lock (`tokens.lock`) and written atomically, so concurrent `create`/`revoke` lose
//! nothing and a running server never reads half a file.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use ring::rand::SecureRandom as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::{io_err, unix_now, Action, AuthError, Grant, Permissions, RepoPattern};

/// The prefix of every registry token secret.
const PREFIX: &str = "hoist_";

/// One registry token as stored (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Its ID (12 hex digits), for `ls` and `revoke`.
    pub id: String,
    /// A name for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The repositories it may act on.
    pub repos: Vec<RepoPattern>,
    /// What it may do (always pull, maybe push and delete).
    pub actions: Vec<Action>,
    /// When it was made, seconds since the epoch.
    pub created: u64,
    /// When it stops working, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
    /// SHA-256 of the secret, hex.
    sha256: String,
}

impl TokenInfo {
    /// Whether it has expired at `now`.
    pub fn expired(&self, now: u64) -> bool {
        self.expires.is_some_and(|e| now >= e)
    }

    /// What it allows.
    pub fn permissions(&self) -> Permissions {
        Permissions::new(
            self.repos
                .iter()
                .map(|r| Grant {
                    repo: r.clone(),
                    actions: self.actions.clone(),
                })
                .collect(),
        )
    }
}

/// What `create` makes.
#[derive(Debug, Clone, Default)]
pub struct NewToken {
    /// A name for people.
    pub name: Option<String>,
    /// Repository patterns (at least one).
    pub repos: Vec<RepoPattern>,
    /// Also allow push.
    pub push: bool,
    /// Also allow delete.
    pub delete: bool,
    /// Lifetime; `None` never expires.
    pub expires: Option<Duration>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenFile {
    tokens: Vec<TokenInfo>,
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl TokenFile {
    pub(crate) fn parse(path: &Path, bytes: Option<Vec<u8>>) -> Result<TokenFile, AuthError> {
        match bytes {
            None => Ok(TokenFile::default()),
            Some(b) => serde_json::from_slice(&b).map_err(|e| AuthError::Invalid {
                path: path.to_owned(),
                message: e.to_string(),
            }),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The unexpired token with this ID.
    pub(crate) fn get(&self, id: &str, now: u64) -> Option<&TokenInfo> {
        self.tokens.iter().find(|t| t.id == id && !t.expired(now))
    }

    /// The unexpired token whose secret is `secret` (compared in constant time).
    pub(crate) fn find(&self, secret: &str, now: u64) -> Option<&TokenInfo> {
        let id = secret.strip_prefix(PREFIX)?.split_once('_')?.0;
        let t = self.get(id, now)?;
        let presented = hash(secret);
        bool::from(presented.as_bytes().ct_eq(t.sha256.as_bytes())).then_some(t)
    }
}

/// Create a directory (and parents) readable by its owner only.
pub(crate) fn make_private_dir(dir: &Path) -> Result<(), AuthError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(dir))
}

/// The registry tokens of the registry rooted at a directory.
#[derive(Debug, Clone)]
pub struct TokenStore {
    dir: PathBuf,
}

impl TokenStore {
    /// The token store of the registry at `root` (`<root>/auth/tokens.json`).
    pub fn new(root: &Path) -> TokenStore {
        TokenStore {
            dir: root.join("auth"),
        }
    }

    /// The token file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join("tokens.json")
    }

    fn read(&self) -> Result<TokenFile, AuthError> {
        let path = self.path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&path)(e)),
        };
        TokenFile::parse(&path, bytes)
    }

    /// Run `change` on the file under an exclusive lock and write the result.
    fn modify<T>(
        &self,
        change: impl FnOnce(&mut TokenFile) -> Result<T, AuthError>,
    ) -> Result<T, AuthError> {
        make_private_dir(&self.dir)?;
        let lock_path = self.dir.join("tokens.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| io_err(&lock_path)(e.into()))?;
        let mut file = self.read()?;
        let out = change(&mut file)?;
        let path = self.path();
        let json = serde_json::to_vec_pretty(&file).map_err(|e| AuthError::Invalid {
            path: path.clone(),
            message: e.to_string(),
        })?;
        hoist_oci::write_atomic(&path, |f| f.write_all(&json)).map_err(|e| AuthError::Invalid {
            path: path.clone(),
            message: e.to_string(),
        })?;
        Ok(out)
    }

    /// Make a token; returns it and its secret, which is not kept anywhere.
    pub fn create(&self, new: &NewToken) -> Result<(TokenInfo, String), AuthError> {
        if new.repos.is_empty() {
            return Err(AuthError::Pattern {
                pattern: String::new(),
                message: "a token needs at least one repository pattern".to_owned(),
            });
        }
        let rng = ring::rand::SystemRandom::new();
        let random = |n: usize| -> Result<Vec<u8>, AuthError> {
            let mut b = vec![0u8; n];
            rng.fill(&mut b).map_err(|_| AuthError::Invalid {
                path: self.path(),
                message: "the system random number generator failed".to_owned(),
            })?;
            Ok(b)
        };
        let secret_bytes = random(32)?;
        let now = unix_now();
        let mut actions = vec![Action::Pull];
        if new.push {
            actions.push(Action::Push);
        }
        if new.delete {
            actions.push(Action::Delete);
        }
        self.modify(|file| {
            let mut id = hex::encode(random(6)?);
            while file.tokens.iter().any(|t| t.id == id) {
                id = hex::encode(random(6)?);
            }
            let secret = format!("{PREFIX}{id}_{}", B64.encode(&secret_bytes));
            let info = TokenInfo {
                id,
                name: new.name.clone(),
                repos: new.repos.clone(),
                actions,
                created: now,
                expires: new.expires.map(|d| now + d.as_secs()),
                sha256: hash(&secret),
            };
            file.tokens.push(info.clone());
            Ok((info, secret))
        })
    }

    /// Every token, expired ones included, oldest first.
    pub fn list(&self) -> Result<Vec<TokenInfo>, AuthError> {
        Ok(self.read()?.tokens)
    }

    /// Delete the token `id`; a running server refuses it (and the bearer tokens
    /// made from it) from its next request on.
    pub fn revoke(&self, id: &str) -> Result<TokenInfo, AuthError> {
        self.modify(|file| {
            let i = file
                .tokens
                .iter()
                .position(|t| t.id == id)
                .ok_or_else(|| AuthError::UnknownToken(id.to_owned()))?;
            Ok(file.tokens.remove(i))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_find_list_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path());
        assert!(store.list().unwrap().is_empty());
        let (info, secret) = store
            .create(&NewToken {
                name: Some("ci".into()),
                repos: vec![RepoPattern::new("team/**").unwrap()],
                push: true,
                ..NewToken::default()
            })
            .unwrap();
        assert!(secret.starts_with(&format!("hoist_{}_", info.id)));
        assert_eq!(secret.len(), "hoist_".len() + 12 + 1 + 43);
        assert_eq!(info.actions, [Action::Pull, Action::Push]);
        let text = std::fs::read_to_string(store.path()).unwrap();
        let random_part = secret.rsplit('_').next().unwrap();
        assert!(!text.contains(random_part), "the secret is stored in clear");
        let file = TokenFile::parse(&store.path(), Some(text.into_bytes())).unwrap();
        let now = unix_now();
        assert_eq!(file.find(&secret, now).map(|t| &t.id), Some(&info.id));
        let mut wrong = secret.clone();
        wrong.pop();
        wrong.push(if secret.ends_with('A') { 'B' } else { 'A' });
        assert!(file.find(&wrong, now).is_none());
        assert!(file.find("hoist_nope", now).is_none());
        assert!(info.permissions().allows("team/a/b", Action::Push));
        assert!(!info.permissions().allows("team/a", Action::Delete));
        assert!(!info.permissions().allows("other", Action::Pull));

        let (short, s2) = store
            .create(&NewToken {
                repos: vec![RepoPattern::new("x").unwrap()],
                expires: Some(Duration::from_secs(60)),
                ..NewToken::default()
            })
            .unwrap();
        let file = store.read().unwrap();
        assert!(file.find(&s2, now).is_some());
        assert!(file.find(&s2, now + 61).is_none(), "expired");
        assert_eq!(store.list().unwrap().len(), 2);
        assert_eq!(store.revoke(&info.id).unwrap().id, info.id);
        assert!(matches!(
            store.revoke(&info.id),
            Err(AuthError::UnknownToken(_))
        ));
        let left = store.list().unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].id, short.id);
        assert!(store.read().unwrap().find(&secret, now).is_none());
    }
}
