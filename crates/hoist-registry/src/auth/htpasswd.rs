//! htpasswd files as Distribution reads them: `user:hash` lines with bcrypt hashes
//! (`htpasswd -B`). Blank lines and `#` comments are skipped; other hash formats are
//! refused with the line that holds one.

use std::collections::BTreeMap;
use std::path::Path;

use super::AuthError;

/// The users of an htpasswd file.
#[derive(Debug, Default)]
pub(crate) struct Users {
    hashes: BTreeMap<String, String>,
}

impl Users {
    pub(crate) fn parse(path: &Path, bytes: Option<Vec<u8>>) -> Result<Users, AuthError> {
        let Some(bytes) = bytes else {
            tracing::warn!(
                "{}: htpasswd file missing; no user can log in",
                path.display()
            );
            return Ok(Users::default());
        };
        let bad = |line: usize, message: &str| AuthError::Invalid {
            path: path.to_owned(),
            message: format!("line {line}: {message}"),
        };
        let text = String::from_utf8(bytes).map_err(|_| bad(0, "not UTF-8"))?;
        let mut hashes = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| bad(i + 1, "expected USER:HASH"))?;
            if !["$2a$", "$2b$", "$2x$", "$2y$"]
                .iter()
                .any(|p| hash.starts_with(p))
            {
                return Err(bad(
                    i + 1,
                    &format!(
                        "user {user:?} does not have a bcrypt hash (make it with htpasswd -B)"
                    ),
                ));
            }
            hashes.insert(user.to_owned(), hash.to_owned());
        }
        Ok(Users { hashes })
    }

    pub(crate) fn contains(&self, user: &str) -> bool {
        self.hashes.contains_key(user)
    }

    pub(crate) fn hash(&self, user: &str) -> Option<&str> {
        self.hashes.get(user).map(String::as_str)
    }
}

/// Whether `password` matches the bcrypt `hash` (slow by design: call off the async
/// threads).
pub(crate) fn verify(password: &str, hash: &str) -> bool {
    bcrypt::verify(password, hash).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcrypt_users() {
        let h = bcrypt::hash("s3cret", 4).unwrap();
        let text = format!("# users\n\nci:{h}\n");
        let u = Users::parse(Path::new("u"), Some(text.into_bytes())).unwrap();
        assert!(u.contains("ci") && !u.contains("root"));
        assert!(verify("s3cret", u.hash("ci").unwrap()));
        assert!(!verify("S3cret", u.hash("ci").unwrap()));
        let e = Users::parse(
            Path::new("u"),
            Some(b"ok:$2y$05$x\nold:{SHA}abc\n".to_vec()),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 2") && e.contains("old"), "{e}");
        let e = Users::parse(Path::new("u"), Some(b"nocolon\n".to_vec()))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("u: line 1"), "{e}");
    }
}
