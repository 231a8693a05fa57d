//! Credentials and challenges: Docker's `config.json` (`auths`, `credHelpers`,
//! `credsStore`), credential helpers, and `WWW-Authenticate` parsing.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

use crate::ClientError;

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or personal access token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// The value of an `Authorization: Basic` header.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// Docker's client configuration directory: `$DOCKER_CONFIG`, else `$HOME/.docker`.
pub fn docker_config_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".docker"))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

#[derive(Deserialize)]
struct HelperOutput {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// The key Docker files Docker Hub's credentials under.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// `https://host/v1/` → `host`; `host` stays `host`.
fn normalize_key(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

fn is_docker_hub(host: &str) -> bool {
    matches!(
        host,
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com"
    )
}

/// Find credentials for `domain` (the reference's domain, e.g. `docker.io` or
/// `127.0.0.1:5000`) in the Docker config directory `dir`: a credential helper named
/// for the registry in `credHelpers` first, then `auths`, then `credsStore`. A missing
/// config file means no credentials.
pub fn lookup(dir: &Path, domain: &str) -> Result<Option<Credentials>, ClientError> {
    let path = dir.join("config.json");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ClientError::Credentials {
                path,
                message: e.to_string(),
            })
        }
    };
    let config: ConfigFile =
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Credentials {
            path: path.clone(),
            message: e.to_string(),
        })?;
    let hub = is_docker_hub(domain);
    let matches = |key: &str| {
        let k = normalize_key(key);
        k == domain || (hub && is_docker_hub(k))
    };
    let server = if hub { DOCKER_HUB_KEY } else { domain };
    if let Some((_, helper)) = config.cred_helpers.iter().find(|(k, _)| matches(k)) {
        return run_helper(helper, server);
    }
    if let Some((key, entry)) = config.auths.iter().find(|(k, _)| matches(k)) {
        if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let bad = |message: String| ClientError::Credentials {
                path: path.clone(),
                message: format!("auths.{key:?}.auth: {message}"),
            };
            let raw = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|e| bad(format!("not base64: {e}")))?;
            let raw = String::from_utf8(raw).map_err(|_| bad("not UTF-8".to_owned()))?;
            let (user, pass) = raw
                .split_once(':')
                .ok_or_else(|| bad("not USER:PASSWORD".to_owned()))?;
            return Ok(Some(Credentials {
                username: user.to_owned(),
                password: pass.to_owned(),
            }));
        }
        if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
            return Ok(Some(Credentials {
                username: u.clone(),
                password: p.clone(),
            }));
        }
    }
    if let Some(store) = config.creds_store.as_deref().filter(|s| !s.is_empty()) {
        return run_helper(store, server);
    }
    Ok(None)
}

/// Run `docker-credential-<helper> get` with `server` on stdin. "Not found" (a
/// non-zero exit) means no credentials.
fn run_helper(helper: &str, server: &str) -> Result<Option<Credentials>, ClientError> {
    let program = format!("docker-credential-{helper}");
    let err = |message: String| ClientError::CredentialHelper {
        helper: program.clone(),
        message,
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(format!("cannot run it: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .map_err(|e| err(format!("writing to it: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| err(format!("waiting for it: {e}")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stdout);
        tracing::debug!(%program, %server, "no credentials from helper: {}", stderr.trim());
        return Ok(None);
    }
    let parsed: HelperOutput =
        serde_json::from_slice(&out.stdout).map_err(|e| err(format!("unreadable output: {e}")))?;
    if parsed.username == "<token>" {
        return Err(err(
            "it returned an identity token, which hoist does not support yet".to_owned(),
        ));
    }
    Ok(Some(Credentials {
        username: parsed.username,
        password: parsed.secret,
    }))
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `basic` or `bearer`, lower-cased.
    pub scheme: String,
    /// Parameters (`realm`, `service`, `scope`), names lower-cased.
    pub params: BTreeMap<String, String>,
}

/// Parse the first challenge of a `WWW-Authenticate` header value.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.is_empty() {
        return None;
    }
    let mut params = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                value.push(n);
                            }
                        }
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        params.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    Some(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_bearer_challenge_with_commas_in_quotes() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.docker.io/token");
        assert_eq!(c.params["service"], "registry.docker.io");
        assert_eq!(c.params["scope"], "repository:library/busybox:pull,push");
        let b = parse_challenge(r#"Basic realm="basic-realm""#).unwrap();
        assert_eq!(b.scheme, "basic");
        assert_eq!(b.params["realm"], "basic-realm");
    }

    #[test]
    fn reads_auths_and_docker_hub_keys() {
        let dir = tempfile::tempdir().unwrap();
        let enc = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        std::fs::write(
            dir.path().join("config.json"),
            format!(
                r#"{{"auths":{{"http://127.0.0.1:5000/v2/":{{"auth":"{enc}"}},"https://index.docker.io/v1/":{{"auth":"{enc}"}}}}}}"#
            ),
        )
        .unwrap();
        let c = lookup(dir.path(), "127.0.0.1:5000").unwrap().unwrap();
        assert_eq!(c.username, "alice");
        assert_eq!(c.password, "s3cret");
        assert!(lookup(dir.path(), "docker.io").unwrap().is_some());
        assert!(lookup(dir.path(), "127.0.0.1:5001").unwrap().is_none());
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"x.io":{"auth":"!!"}}}"#,
        )
        .unwrap();
        let e = lookup(dir.path(), "x.io").unwrap_err().to_string();
        assert!(e.contains("config.json") && e.contains("x.io"), "{e}");
    }

    #[test]
    fn runs_a_credential_helper() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("docker-credential-fake");
        std::fs::write(
            &bin,
            "#!/bin/sh\nread host\n[ \"$host\" = reg.example ] || exit 1\necho '{\"ServerURL\":\"reg.example\",\"Username\":\"bob\",\"Secret\":\"pw\"}'\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"credHelpers":{"reg.example":"fake"}}"#,
        )
        .unwrap();
        let path = format!(
            "{}:{}",
            dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        // The helper is found through PATH; set it for this process only in this test.
        // Safe: no other test in this crate reads PATH concurrently with a change.
        let c = with_path(&path, || lookup(dir.path(), "reg.example"))
            .unwrap()
            .unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("bob", "pw"));
    }

    fn with_path<T>(path: &str, f: impl FnOnce() -> T) -> T {
        let old = std::env::var_os("PATH");
        // std::env::set_var is safe in edition 2021.
        std::env::set_var("PATH", path);
        let out = f();
        if let Some(old) = old {
            std::env::set_var("PATH", old);
        }
        out
    }
}
