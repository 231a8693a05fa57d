//! Bearer tokens: HS256 JSON Web Tokens signed with the registry's own key. Only
//! this registry reads them, so the format is a convenience for people debugging
//! (`jwt decode`), not an interface.

use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use ring::hmac;
use ring::rand::SecureRandom as _;
use serde::{Deserialize, Serialize};

use super::{io_err, AuthError, Scope, SERVICE};

/// Clock skew tolerated on `nbf`, in seconds.
const SKEW: u64 = 60;

/// The claims of a bearer token (Distribution's JWT claim set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: always [`SERVICE`].
    pub iss: String,
    /// Subject: `token:<id>`, `user:<name>`, or empty for anonymous.
    pub sub: String,
    /// Audience: always [`SERVICE`].
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Not before, seconds since the epoch.
    pub nbf: u64,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// A random ID.
    pub jti: String,
    /// What the token grants.
    pub access: Vec<Scope>,
}

impl Claims {
    /// Claims for `sub` granting `access`, issued at `now`, valid for `ttl` seconds.
    pub fn new(sub: String, access: Vec<Scope>, now: u64, ttl: u64) -> Claims {
        let mut jti = [0u8; 12];
        let _ = ring::rand::SystemRandom::new().fill(&mut jti);
        Claims {
            iss: SERVICE.to_owned(),
            sub,
            aud: SERVICE.to_owned(),
            exp: now + ttl,
            nbf: now,
            iat: now,
            jti: hex::encode(jti),
            access,
        }
    }
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts of JSON.
    #[error("malformed token")]
    Malformed,
    /// The signature does not match (tampered, or another key).
    #[error("bad signature")]
    BadSignature,
    /// Past its expiry.
    #[error("token expired")]
    Expired,
    /// Its `nbf` is in the future.
    #[error("token not valid yet")]
    NotYetValid,
    /// For another service.
    #[error("token is for another service")]
    WrongAudience,
}

/// Signs and verifies bearer tokens with an HMAC-SHA256 key.
pub struct Signer {
    key: hmac::Key,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(<key>)")
    }
}

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

impl Signer {
    /// A signer with `key` (at least 32 bytes for full strength).
    pub fn new(key: &[u8]) -> Signer {
        Signer {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }

    /// Read the 32-byte key at `path`, or create it (mode 0600, never replacing a key
    /// another process wrote first).
    pub fn load_or_create(path: &Path) -> Result<Signer, AuthError> {
        match std::fs::read(path) {
            Ok(key) => return Signer::check(path, key),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(path)(e)),
        }
        let mut key = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| AuthError::Invalid {
                path: path.to_owned(),
                message: "the system random number generator failed".to_owned(),
            })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        // tempfile creates the file 0600; persist_noclobber links it into place only
        // if no key is there yet.
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-key-")
            .tempfile_in(dir)
            .map_err(io_err(dir))?;
        tmp.write_all(&key)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(io_err(path))?;
        match tmp.persist_noclobber(path) {
            Ok(_) => Ok(Signer::new(&key)),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                let key = std::fs::read(path).map_err(io_err(path))?;
                Signer::check(path, key)
            }
            Err(e) => Err(io_err(path)(e.error)),
        }
    }

    fn check(path: &Path, key: Vec<u8>) -> Result<Signer, AuthError> {
        if key.len() < 32 {
            return Err(AuthError::Invalid {
                path: path.to_owned(),
                message: format!(
                    "the signing key is {} bytes, expected 32 (delete it to make a new one)",
                    key.len()
                ),
            });
        }
        Ok(Signer::new(&key))
    }

    /// The signed token for `claims`.
    pub fn sign(&self, claims: &Claims) -> String {
        let payload = serde_json::to_vec(claims).unwrap_or_default();
        let signing_input = format!("{}.{}", B64.encode(HEADER), B64.encode(payload));
        let tag = hmac::sign(&self.key, signing_input.as_bytes());
        format!("{signing_input}.{}", B64.encode(tag.as_ref()))
    }

    /// The claims of `token` if it is signed with this key, for this service, and
    /// valid at `now` (seconds since the epoch).
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        let (signing_input, sig) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (header, payload) = signing_input.split_once('.').ok_or(TokenError::Malformed)?;
        let sig = B64.decode(sig).map_err(|_| TokenError::Malformed)?;
        hmac::verify(&self.key, signing_input.as_bytes(), &sig)
            .map_err(|_| TokenError::BadSignature)?;
        let header: serde_json::Value = B64
            .decode(header)
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or(TokenError::Malformed)?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
            return Err(TokenError::Malformed);
        }
        let claims: Claims = B64
            .decode(payload)
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok())
            .ok_or(TokenError::Malformed)?;
        if claims.aud != SERVICE || claims.iss != SERVICE {
            return Err(TokenError::WrongAudience);
        }
        if now >= claims.exp {
            return Err(TokenError::Expired);
        }
        if claims.nbf > now + SKEW {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Action;

    fn claims(now: u64) -> Claims {
        Claims::new(
            "token:abc".into(),
            vec![Scope::repository("team/app", &[Action::Pull])],
            now,
            300,
        )
    }

    #[test]
    fn signed_tokens_verify_until_they_expire() {
        let s = Signer::new(&[7; 32]);
        let c = claims(1000);
        let t = s.sign(&c);
        assert_eq!(t.split('.').count(), 3);
        assert_eq!(s.verify(&t, 1000), Ok(c.clone()));
        assert_eq!(s.verify(&t, 1299), Ok(c));
        assert_eq!(s.verify(&t, 1300), Err(TokenError::Expired));
        assert_eq!(s.verify(&t, 900), Err(TokenError::NotYetValid));
    }

    #[test]
    fn tampered_or_foreign_tokens_are_refused() {
        let s = Signer::new(&[7; 32]);
        let t = s.sign(&claims(1000));
        // Another key.
        assert_eq!(
            Signer::new(&[8; 32]).verify(&t, 1000),
            Err(TokenError::BadSignature)
        );
        // Widen the access claim, keep the signature.
        let mut wider = claims(1000);
        wider.access = vec![Scope::repository("team/app", &[Action::Pull, Action::Push])];
        let forged = s.sign(&wider);
        let forged_payload = forged.split('.').nth(1).unwrap();
        let parts: Vec<&str> = t.split('.').collect();
        let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert_eq!(s.verify(&tampered, 1000), Err(TokenError::BadSignature));
        // Truncated or garbage.
        assert_eq!(s.verify("abc", 1000), Err(TokenError::Malformed));
        assert_eq!(
            s.verify(&t[..t.len() - 3], 1000),
            Err(TokenError::BadSignature)
        );
        // Signed by us, but for another audience.
        let mut other = claims(1000);
        other.aud = "elsewhere".into();
        assert_eq!(
            s.verify(&s.sign(&other), 1000),
            Err(TokenError::WrongAudience)
        );
    }

    #[test]
    fn the_key_is_made_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        let a = Signer::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = Signer::load_or_create(&path).unwrap();
        let t = a.sign(&claims(5));
        assert!(
            b.verify(&t, 5).is_ok(),
            "the second start reads the same key"
        );
        std::fs::write(&path, b"short").unwrap();
        let e = Signer::load_or_create(&path).unwrap_err().to_string();
        assert!(e.contains("signing.key") && e.contains("5 bytes"), "{e}");
    }
}
