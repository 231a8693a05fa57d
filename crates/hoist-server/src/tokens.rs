//! API tokens: random 32-byte secrets handed out once (`hoist server token
//! create NAME`) and kept only as SHA-256 hashes in `<home>/server/tokens.json`,
//! written atomically. A request's token is checked against every hash in constant
//! time.

use std::path::{Path, PathBuf};

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A token-file problem.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not what this module writes.
    #[error("{path}: {source}")]
    Format {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// A name that is taken, or unknown, or not fit.
    #[error("{0}")]
    Name(String),
}

/// A token as stored: its name and the hash of its secret.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Who or what holds it (`ci`, `alice`).
    pub name: String,
    /// SHA-256 of the token, hex.
    pub sha256: String,
    /// Unix milliseconds.
    pub created: i64,
}

/// The token file of one hoist home.
#[derive(Clone, Debug)]
pub struct Tokens {
    path: PathBuf,
}

/// The prefix of every token, so that secret scanners can find leaked ones.
pub const PREFIX: &str = "hoist_";

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// What the file keeps of `token` (its SHA-256, hex): enough to tell later whether
/// that very token is still there, without keeping the token.
pub fn fingerprint(token: &str) -> String {
    hash(token)
}

impl Tokens {
    /// The tokens of the server at `home`.
    pub fn new(home: &Path) -> Tokens {
        Tokens {
            path: home.join("server").join("tokens.json"),
        }
    }

    /// Every token, without secrets.
    pub fn list(&self) -> Result<Vec<TokenRecord>, TokenError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| TokenError::Format {
                path: self.path.clone(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(TokenError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    fn save(&self, all: &[TokenRecord]) -> Result<(), TokenError> {
        let io = |source| TokenError::Io {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = serde_json::to_vec_pretty(all).map_err(|source| TokenError::Format {
            path: self.path.clone(),
            source,
        })?;
        hoist_oci::write_atomic(&self.path, |f| std::io::Write::write_all(f, &text))
            .map_err(|e| io(std::io::Error::other(e.to_string())))
    }

    /// Makes a token for `name` and returns it: the only time it is shown.
    pub fn create(&self, name: &str) -> Result<String, TokenError> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
        {
            return Err(TokenError::Name(format!(
                "token name {name:?}: use letters, digits and - _ . @"
            )));
        }
        let mut all = self.list()?;
        if all.iter().any(|t| t.name == name) {
            return Err(TokenError::Name(format!(
                "a token named {name:?} exists; revoke it first"
            )));
        }
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let token = format!("{PREFIX}{}", hex::encode(secret));
        all.push(TokenRecord {
            name: name.to_owned(),
            sha256: hash(&token),
            created: hoist_pipeline::runs::now_ms(),
        });
        self.save(&all)?;
        Ok(token)
    }

    /// Removes the token named `name`.
    pub fn revoke(&self, name: &str) -> Result<(), TokenError> {
        let mut all = self.list()?;
        let before = all.len();
        all.retain(|t| t.name != name);
        if all.len() == before {
            return Err(TokenError::Name(format!("no token named {name:?}")));
        }
        self.save(&all)
    }

    /// Whether the token with this [`fingerprint`] is still there (not revoked, and
    /// not replaced by a new token of the same name).
    pub fn holds(&self, fingerprint: &str) -> Result<bool, TokenError> {
        Ok(self
            .list()?
            .iter()
            .any(|t| bool::from(t.sha256.as_bytes().ct_eq(fingerprint.as_bytes()))))
    }

    /// The name of the token `token` is, if it is one. Every stored hash is
    /// compared, each in constant time.
    pub fn verify(&self, token: &str) -> Result<Option<String>, TokenError> {
        let given = hash(token);
        let mut found = None;
        for t in self.list()? {
            if bool::from(t.sha256.as_bytes().ct_eq(given.as_bytes())) {
                found = Some(t.name);
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_token_is_shown_once_kept_hashed_and_verified_until_revoked() {
        let home = tempfile::tempdir().unwrap();
        let tokens = Tokens::new(home.path());
        assert!(tokens.list().unwrap().is_empty());
        let t = tokens.create("ci").unwrap();
        assert!(t.starts_with(PREFIX) && t.len() == PREFIX.len() + 64);
        let stored = std::fs::read_to_string(home.path().join("server/tokens.json")).unwrap();
        assert!(
            !stored.contains(&t[PREFIX.len()..]),
            "the secret is not stored"
        );
        assert_eq!(tokens.verify(&t).unwrap().as_deref(), Some("ci"));
        assert_eq!(tokens.verify("hoist_00").unwrap(), None);
        assert!(tokens.create("ci").is_err());
        assert!(tokens.create("bad name").is_err());
        let other = tokens.create("alice").unwrap();
        assert!(tokens.holds(&fingerprint(&t)).unwrap());
        tokens.revoke("ci").unwrap();
        assert!(!tokens.holds(&fingerprint(&t)).unwrap());
        assert_eq!(tokens.verify(&t).unwrap(), None);
        assert_eq!(tokens.verify(&other).unwrap().as_deref(), Some("alice"));
        assert!(tokens.revoke("ci").is_err());
    }
}
