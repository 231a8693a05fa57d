//! Authentication and authorization for the registry's API.
//!
//! # Who is calling
//!
//! A request is made by one of three principals:
//!
//! - **anonymous**: no credentials. With `anonymous_pull` (the default) it may pull
//!   every repository.
//! - **a registry token** made by `hoist registry token create` ([`TokenStore`]): a
//!   256-bit random secret, printed once and kept only as its SHA-256 in
//!   `<root>/auth/tokens.json`; it grants pull (and optionally push and delete) on the
//!   repositories matching its patterns. Clients send it as the password of Basic
//!   credentials with any user name.
//! - **an htpasswd user** (`[auth] htpasswd = FILE`, bcrypt hashes, the file
//!   Distribution reads) with the access the `[[auth.grant]]` entries give it.
//!
//! An authenticated principal may also do whatever anonymous callers may.
//!
//! When there are no registry tokens, no htpasswd file and anonymous pull is on, the
//! registry is **open**: everyone may do everything, as before authentication existed.
//! The token and htpasswd files are re-read when they change, so `token create` and
//! `token revoke` take effect on a running server.
//!
//! # The token flow
//!
//! The registry speaks Docker's token flow (Distribution's "token authentication
//! specification"), serving the token endpoint itself at `/token`:
//!
//! 1. A request without acceptable credentials gets `401 UNAUTHORIZED` with
//!    `WWW-Authenticate: Bearer realm="<scheme>://<host>/token",service="hoist-registry",scope="repository:<name>:<actions>"`.
//! 2. The client asks `GET /token?service=hoist-registry&scope=...` with Basic
//!    credentials (or none) and gets `{"token","access_token","expires_in","issued_at"}`;
//!    the token grants the intersection of what was asked and what the principal may
//!    do, possibly nothing.
//! 3. The client retries with `Authorization: Bearer <token>`. The bearer token is an
//!    HS256 JWT ([`Claims`]) signed with a key generated into `<root>/auth/signing.key`
//!    (mode 0600) at first start, valid for `token_ttl` (5 minutes by default).
//!
//! Basic credentials sent straight to `/v2/` endpoints are accepted too. A bearer
//! token is only as good as its principal: a revoked or expired registry token, or a
//! user removed from the htpasswd file, makes its bearer tokens fail at once.
//!
//! Valid credentials without the needed permission get `403 DENIED`, except a bearer
//! token whose principal could have been granted the access: that gets a 401
//! challenge with `error="insufficient_scope"` so the client fetches a wider token.
//!
//! # Actions
//!
//! `GET`/`HEAD` of manifests, blobs, tags and referrers need `pull`; everything under
//! `/blobs/uploads/` and manifest `PUT` need `push` (a cross-repository mount also
//! needs `pull` on `from`, else it falls back to a normal upload); `DELETE` needs
//! `delete`; `/v2/_catalog` lists only the repositories the caller may pull.
//!
//! Repository patterns are globs matched with `/` as a literal separator: `*` stays
//! within one path component, `**` crosses them (`team/**`).
//!
//! # Not here
//!
//! No refresh tokens (`offline_token`), no OAuth2 `POST /token` (clients fall back to
//! `GET`), no htpasswd hash formats other than bcrypt, and no rate limiting of
//! password guesses.

mod bearer;
mod htpasswd;
mod store;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

pub use bearer::{Claims, Signer, TokenError};
pub use store::{NewToken, TokenInfo, TokenStore};

use crate::storage::valid_name;

/// The service name in challenges, and the audience of bearer tokens.
pub const SERVICE: &str = "hoist-registry";

/// Lifetime of bearer tokens unless configured: five minutes.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(300);

/// What went wrong with authentication state: key, token file, htpasswd file,
/// patterns.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// An I/O error on a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file whose contents are wrong.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line when there is one.
        message: String,
    },
    /// A repository pattern that is not a valid glob.
    #[error("invalid repository pattern {pattern:?}: {message}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// Why.
        message: String,
    },
    /// `token revoke` of an ID that is not there.
    #[error("no registry token with ID {0:?}")]
    UnknownToken(String),
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> AuthError + '_ {
    move |source| AuthError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Something a principal may do to a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Read manifests, blobs, tags and referrers.
    Pull,
    /// Upload blobs and put manifests.
    Push,
    /// Delete manifests, tags and blob links.
    Delete,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 3] = [Action::Pull, Action::Push, Action::Delete];

    /// The scope spelling: `pull`, `push`, `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }

    /// Parse the scope spelling.
    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A glob over repository names: `*` within a path component, `**` across them.
#[derive(Debug, Clone)]
pub struct RepoPattern {
    text: String,
    matcher: globset::GlobMatcher,
}

impl RepoPattern {
    /// Compile `pattern`.
    pub fn new(pattern: &str) -> Result<RepoPattern, AuthError> {
        let bad = |message: String| AuthError::Pattern {
            pattern: pattern.to_owned(),
            message,
        };
        if pattern.is_empty() {
            return Err(bad("empty pattern".to_owned()));
        }
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| bad(e.kind().to_string()))?;
        Ok(RepoPattern {
            text: pattern.to_owned(),
            matcher: glob.compile_matcher(),
        })
    }

    /// Whether repository `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        self.matcher.is_match(name)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl PartialEq for RepoPattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl TryFrom<String> for RepoPattern {
    type Error = AuthError;
    fn try_from(s: String) -> Result<Self, AuthError> {
        RepoPattern::new(&s)
    }
}

impl<'de> Deserialize<'de> for RepoPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RepoPattern::new(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for RepoPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl fmt::Display for RepoPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// One rule: these actions on the repositories matching a pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// The repositories.
    pub repo: RepoPattern,
    /// What may be done to them.
    pub actions: Vec<Action>,
}

/// What a principal may do: the union of its grants.
#[derive(Debug, Clone, Default)]
pub struct Permissions {
    everything: bool,
    grants: Vec<Grant>,
}

impl Permissions {
    /// Everything on every repository (an open registry).
    pub fn everything() -> Permissions {
        Permissions {
            everything: true,
            grants: Vec::new(),
        }
    }

    /// The union of `grants`.
    pub fn new(grants: Vec<Grant>) -> Permissions {
        Permissions {
            everything: false,
            grants,
        }
    }

    /// Whether `action` on repository `name` is allowed.
    pub fn allows(&self, name: &str, action: Action) -> bool {
        self.everything
            || self
                .grants
                .iter()
                .any(|g| g.actions.contains(&action) && g.repo.matches(name))
    }

    /// The token server's grant: for each requested scope, the requested actions this
    /// principal may do (`*` asks for all). Repository scopes with nothing allowed and
    /// unknown resource types are dropped; `registry:catalog:*` is kept when `catalog`.
    /// Scopes naming the same resource are merged.
    pub fn intersect(&self, requested: &[Scope], catalog: bool) -> Vec<Scope> {
        let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for s in requested {
            match s.kind.as_str() {
                "repository" if valid_name(&s.name) => {
                    let wanted: Vec<Action> = if s.actions.iter().any(|a| a == "*") {
                        Action::ALL.to_vec()
                    } else {
                        s.actions.iter().filter_map(|a| Action::parse(a)).collect()
                    };
                    let entry = out.entry((s.kind.clone(), s.name.clone())).or_default();
                    for a in wanted {
                        if self.allows(&s.name, a) && !entry.iter().any(|e| e == a.as_str()) {
                            entry.push(a.as_str().to_owned());
                        }
                    }
                }
                "registry"
                    if s.name == "catalog" && catalog && s.actions.iter().any(|a| a == "*") =>
                {
                    out.insert((s.kind.clone(), s.name.clone()), vec!["*".to_owned()]);
                }
                _ => {}
            }
        }
        out.into_iter()
            .filter(|(_, actions)| !actions.is_empty())
            .map(|((kind, name), mut actions)| {
                actions.sort_by_key(|a| Action::parse(a).map_or(9, |a| a as u8));
                Scope {
                    kind,
                    name,
                    actions,
                }
            })
            .collect()
    }
}

/// A resource scope, `type:name:action[,action...]` in the token flow and an entry of
/// a bearer token's `access` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    /// The resource type: `repository` or `registry`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The resource name: a repository, or `catalog`.
    pub name: String,
    /// `pull`, `push`, `delete` or `*`.
    pub actions: Vec<String>,
}

impl Scope {
    /// A repository scope.
    pub fn repository(name: &str, actions: &[Action]) -> Scope {
        Scope {
            kind: "repository".to_owned(),
            name: name.to_owned(),
            actions: actions.iter().map(|a| a.as_str().to_owned()).collect(),
        }
    }

    /// `registry:catalog:*`.
    pub fn catalog() -> Scope {
        Scope {
            kind: "registry".to_owned(),
            name: "catalog".to_owned(),
            actions: vec!["*".to_owned()],
        }
    }

    /// Parse one `type:name:actions`. The name may hold a `:` (a host's port), so the
    /// type ends at the first colon and the actions start after the last; a resource
    /// class (`repository(plugin)`) is dropped.
    pub fn parse(s: &str) -> Option<Scope> {
        let (kind, rest) = s.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        let kind = kind.split_once('(').map_or(kind, |(k, _)| k);
        if kind.is_empty()
            || !kind
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            || name.is_empty()
        {
            return None;
        }
        Some(Scope {
            kind: kind.to_owned(),
            name: name.to_owned(),
            actions: actions
                .split(',')
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }

    /// Parse a space-separated list of scopes, skipping malformed ones.
    pub fn parse_list(s: &str) -> Vec<Scope> {
        s.split(' ').filter_map(Scope::parse).collect()
    }

    /// Whether this scope gives `action` on repository `name`.
    fn covers(&self, kind: &str, name: &str, action: &str) -> bool {
        self.kind == kind
            && self.name == name
            && self.actions.iter().any(|a| a == action || a == "*")
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.kind, self.name, self.actions.join(","))
    }
}

/// The `[auth]` section of the configuration file.
///
/// ```toml
/// [auth]
/// anonymous_pull = false           # default true
/// token_ttl = "10m"                # bearer token lifetime, default 5m
/// htpasswd = "users.htpasswd"      # bcrypt users, relative to the config file
/// realm = "https://reg.example/token"  # override the challenge's realm (behind a proxy)
///
/// [[auth.grant]]                   # access for htpasswd users; "*" is every user
/// user = "ci"
/// repo = "team/**"
/// actions = ["pull", "push"]
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Whether anyone may pull without credentials.
    #[serde(default = "default_true")]
    pub anonymous_pull: bool,
    /// How long a bearer token from `/token` stays valid.
    #[serde(default = "default_ttl", deserialize_with = "de_duration")]
    pub token_ttl: Duration,
    /// An htpasswd file of users with bcrypt hashes.
    #[serde(default)]
    pub htpasswd: Option<PathBuf>,
    /// The token endpoint's URL in challenges [default: `<scheme>://<Host>/token`].
    #[serde(default)]
    pub realm: Option<String>,
    /// What htpasswd users may do.
    #[serde(default, rename = "grant")]
    pub grants: Vec<UserGrant>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            anonymous_pull: true,
            token_ttl: DEFAULT_TOKEN_TTL,
            htpasswd: None,
            realm: None,
            grants: Vec::new(),
        }
    }
}

impl AuthConfig {
    /// Resolve relative paths against `base` (the configuration file's directory).
    pub fn resolve_paths(&mut self, base: &Path) {
        if let Some(h) = &mut self.htpasswd {
            *h = base.join(&*h);
        }
    }
}

/// One `[[auth.grant]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserGrant {
    /// The htpasswd user, or `*` for every authenticated user.
    pub user: String,
    /// The repositories.
    pub repo: RepoPattern,
    /// What the user may do to them.
    pub actions: Vec<Action>,
}

fn default_true() -> bool {
    true
}

fn default_ttl() -> Duration {
    DEFAULT_TOKEN_TTL
}

fn de_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    let v = humantime::parse_duration(&s).map_err(serde::de::Error::custom)?;
    if v < Duration::from_secs(1) {
        return Err(serde::de::Error::custom("token_ttl must be at least 1s"));
    }
    Ok(v)
}

/// A file re-read whenever it changes (by inode, size or modification time).
struct Watched<T> {
    path: PathBuf,
    parse: fn(&Path, Option<Vec<u8>>) -> Result<T, AuthError>,
    cached: Mutex<Option<(Stamp, Arc<T>)>>,
}

type Stamp = Option<(u64, u64, i64, i64)>;

impl<T> Watched<T> {
    fn new(path: PathBuf, parse: fn(&Path, Option<Vec<u8>>) -> Result<T, AuthError>) -> Self {
        Watched {
            path,
            parse,
            cached: Mutex::new(None),
        }
    }

    fn get(&self) -> Result<Arc<T>, AuthError> {
        use std::os::unix::fs::MetadataExt;
        let stamp: Stamp = match std::fs::metadata(&self.path) {
            Ok(m) => Some((m.ino(), m.size(), m.mtime(), m.mtime_nsec())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&self.path)(e)),
        };
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((s, v)) = &*cached {
            if *s == stamp {
                return Ok(v.clone());
            }
        }
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&self.path)(e)),
        };
        let value = Arc::new((self.parse)(&self.path, bytes)?);
        *cached = Some((stamp, value.clone()));
        Ok(value)
    }
}

struct Inner {
    config: AuthConfig,
    signer: Signer,
    tokens: Watched<store::TokenFile>,
    users: Option<Watched<htpasswd::Users>>,
}

/// The registry's authentication state, shared by every request: configuration,
/// signing key, and the token and htpasswd files. Cheap to clone.
#[derive(Clone)]
pub struct Auth {
    inner: Option<Arc<Inner>>,
    /// Whether the server speaks HTTPS (the realm's scheme).
    pub(crate) https: bool,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("enabled", &self.inner.is_some())
            .field("https", &self.https)
            .finish()
    }
}

/// Who made a request, and what it may do.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    principal: Principal,
    perms: Permissions,
    /// The access claim of the bearer token used, if any.
    token_access: Option<Vec<Scope>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Principal {
    Anonymous,
    Token(String),
    User(String),
}

impl Principal {
    fn subject(&self) -> String {
        match self {
            Principal::Anonymous => String::new(),
            Principal::Token(id) => format!("token:{id}"),
            Principal::User(u) => format!("user:{u}"),
        }
    }
}

impl Caller {
    pub(crate) fn everything() -> Caller {
        Caller {
            principal: Principal::Anonymous,
            perms: Permissions::everything(),
            token_access: None,
        }
    }

    /// Whether the caller may pull `name` (what `_catalog` shows).
    pub(crate) fn may_pull(&self, name: &str) -> bool {
        self.perms.allows(name, Action::Pull)
    }

    /// Whether a cross-repository mount from `from` is allowed: the bearer token
    /// carries pull on it, or (without a bearer token) the principal may pull it.
    pub(crate) fn may_mount_from(&self, from: &str) -> bool {
        match &self.token_access {
            Some(access) => access
                .iter()
                .any(|s| s.covers("repository", from, Action::Pull.as_str())),
            None => self.may_pull(from),
        }
    }
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need<'a> {
    /// Nothing: an unknown endpoint (404 for everyone).
    Nothing,
    /// `/v2/`: any authenticated caller.
    Base,
    /// `/v2/_catalog`.
    Catalog,
    /// An action on a repository.
    Repo(&'a str, Action),
}

/// The outcome of checking a caller against a need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Allow,
    /// 401 with a challenge; `insufficient_scope` when a wider token would do.
    Challenge {
        insufficient_scope: bool,
    },
    /// 403 DENIED.
    Deny,
}

/// The pure core: may `caller` (whose credentials have been checked) do `need`?
/// `anonymous_pull` decides whether an anonymous caller may list the catalog.
pub(crate) fn decide(caller: &Caller, need: Need<'_>, anonymous_pull: bool) -> Decision {
    let anonymous = caller.principal == Principal::Anonymous;
    match need {
        Need::Nothing => Decision::Allow,
        Need::Base => {
            if anonymous && caller.token_access.is_none() && !caller.perms.everything {
                Decision::Challenge {
                    insufficient_scope: false,
                }
            } else {
                Decision::Allow
            }
        }
        Need::Catalog => match &caller.token_access {
            Some(access) if access.iter().any(|s| s.covers("registry", "catalog", "*")) => {
                Decision::Allow
            }
            Some(_) => Decision::Challenge {
                insufficient_scope: !anonymous || anonymous_pull,
            },
            None if caller.perms.everything || !anonymous || anonymous_pull => Decision::Allow,
            None => Decision::Challenge {
                insufficient_scope: false,
            },
        },
        Need::Repo(name, action) => {
            let allowed = caller.perms.allows(name, action);
            match &caller.token_access {
                Some(access)
                    if access
                        .iter()
                        .any(|s| s.covers("repository", name, action.as_str())) =>
                {
                    // The token says so; its principal must still be allowed (a
                    // token outlives nothing it was derived from).
                    if allowed {
                        Decision::Allow
                    } else if anonymous {
                        Decision::Challenge {
                            insufficient_scope: false,
                        }
                    } else {
                        Decision::Deny
                    }
                }
                Some(_) if allowed => Decision::Challenge {
                    insufficient_scope: true,
                },
                _ if allowed => Decision::Allow,
                _ if anonymous => Decision::Challenge {
                    insufficient_scope: false,
                },
                _ => Decision::Deny,
            }
        }
    }
}

/// How the request authenticated.
enum Presented {
    None,
    Basic(String, String),
    Bearer(String),
    Other,
}

fn presented(headers: &HeaderMap) -> Presented {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Presented::None;
    };
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        match decoded.as_deref().and_then(|s| s.split_once(':')) {
            Some((u, p)) => Presented::Basic(u.to_owned(), p.to_owned()),
            None => Presented::Other,
        }
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Presented::Bearer(rest.trim().to_owned())
    } else {
        Presented::Other
    }
}

/// A 401/403/500 made while authenticating.
enum Failure {
    /// Credentials were sent and are not valid.
    BadCredentials { bearer: bool },
    /// The auth state could not be read.
    Internal(AuthError),
}

fn error_body(code: &str, message: &str, detail: serde_json::Value) -> String {
    let mut e = serde_json::json!({ "code": code, "message": message });
    if !detail.is_null() {
        e["detail"] = detail;
    }
    serde_json::json!({ "errors": [e] }).to_string()
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn internal(e: &AuthError) -> Response {
    tracing::error!("registry authentication state: {e}");
    json_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        error_body("UNKNOWN", &e.to_string(), serde_json::Value::Null),
    )
}

impl Auth {
    /// No authentication at all: every request may do everything and `/token` is 404.
    /// For embedding and tests; `hoist registry serve` uses [`Auth::new`].
    pub fn none() -> Auth {
        Auth {
            inner: None,
            https: false,
        }
    }

    /// Authentication for the registry rooted at `root` with `config`: reads (or
    /// generates, mode 0600) the signing key `<root>/auth/signing.key`, and checks the
    /// htpasswd file now so a bad one fails at startup, naming the file. Registry
    /// tokens are read from `<root>/auth/tokens.json` ([`TokenStore`]).
    pub fn new(root: &Path, config: AuthConfig) -> Result<Auth, AuthError> {
        let dir = root.join("auth");
        store::make_private_dir(&dir)?;
        let signer = Signer::load_or_create(&dir.join("signing.key"))?;
        let tokens = Watched::new(dir.join("tokens.json"), store::TokenFile::parse);
        tokens.get()?;
        let users = match &config.htpasswd {
            Some(path) => {
                let w = Watched::new(path.clone(), htpasswd::Users::parse);
                if !path.is_file() {
                    return Err(AuthError::Invalid {
                        path: path.clone(),
                        message: "the htpasswd file does not exist".to_owned(),
                    });
                }
                let users = w.get()?;
                for g in &config.grants {
                    if g.user != "*" && !users.contains(&g.user) {
                        tracing::warn!(
                            "[[auth.grant]] names user {:?}, who is not in {}",
                            g.user,
                            path.display()
                        );
                    }
                }
                Some(w)
            }
            None => None,
        };
        Ok(Auth {
            inner: Some(Arc::new(Inner {
                config,
                signer,
                tokens,
                users,
            })),
            https: false,
        })
    }

    /// Check the request's credentials against `need`: the caller, or the 401/403
    /// response to send.
    pub(crate) async fn authorize(
        &self,
        headers: &HeaderMap,
        need: Need<'_>,
    ) -> Result<Caller, Response> {
        let Some(inner) = &self.inner else {
            return Ok(Caller::everything());
        };
        if need == Need::Nothing {
            return Ok(Caller::everything());
        }
        let caller = match inner.caller(headers, true).await {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(Caller::everything()),
            Err(Failure::Internal(e)) => return Err(internal(&e)),
            Err(Failure::BadCredentials { bearer }) => {
                let error = if bearer { Some("invalid_token") } else { None };
                return Err(self.challenge(inner, headers, need, error));
            }
        };
        match decide(&caller, need, inner.config.anonymous_pull) {
            Decision::Allow => Ok(caller),
            Decision::Challenge { insufficient_scope } => Err(self.challenge(
                inner,
                headers,
                need,
                insufficient_scope.then_some("insufficient_scope"),
            )),
            Decision::Deny => Err(json_response(
                StatusCode::FORBIDDEN,
                error_body(
                    "DENIED",
                    "requested access to the resource is denied",
                    need_detail(need),
                ),
            )),
        }
    }

    fn realm(&self, inner: &Inner, headers: &HeaderMap) -> String {
        if let Some(r) = &inner.config.realm {
            return r.clone();
        }
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .filter(|h| !h.is_empty() && !h.contains(['"', '\\', '/']))
            .unwrap_or("localhost");
        format!(
            "{}://{host}/token",
            if self.https { "https" } else { "http" }
        )
    }

    fn challenge(
        &self,
        inner: &Inner,
        headers: &HeaderMap,
        need: Need<'_>,
        error: Option<&str>,
    ) -> Response {
        let mut value = format!(
            "Bearer realm=\"{}\",service=\"{SERVICE}\"",
            self.realm(inner, headers)
        );
        if let Some(scope) = challenge_scope(need) {
            value.push_str(&format!(",scope=\"{scope}\""));
        }
        if let Some(e) = error {
            value.push_str(&format!(",error=\"{e}\""));
        }
        let message = match error {
            Some("invalid_token") => "the bearer token is invalid, expired or revoked",
            Some(_) => "the bearer token does not grant the requested access",
            None => "authentication required",
        };
        let mut resp = json_response(
            StatusCode::UNAUTHORIZED,
            error_body("UNAUTHORIZED", message, need_detail(need)),
        );
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    }

    /// `GET /token`: Docker's token endpoint.
    pub(crate) async fn token_endpoint(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Response {
        let Some(inner) = &self.inner else {
            return json_response(
                StatusCode::NOT_FOUND,
                error_body(
                    "UNSUPPORTED",
                    "this registry does not use token authentication",
                    serde_json::Value::Null,
                ),
            );
        };
        let mut scopes = Vec::new();
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match &*k {
                "scope" => scopes.extend(Scope::parse_list(&v)),
                "service" if v != SERVICE => {
                    return json_response(
                        StatusCode::BAD_REQUEST,
                        error_body(
                            "UNSUPPORTED",
                            &format!("unknown service {v:?}; this is {SERVICE:?}"),
                            serde_json::Value::Null,
                        ),
                    )
                }
                _ => {}
            }
        }
        if matches!(presented(headers), Presented::Bearer(_)) {
            return basic_challenge("send Basic credentials to the token endpoint");
        }
        let caller = match inner.caller(headers, false).await {
            Ok(Some(c)) => c,
            Ok(None) => Caller::everything(),
            Err(Failure::Internal(e)) => return internal(&e),
            Err(Failure::BadCredentials { .. }) => {
                return basic_challenge("invalid user name or password")
            }
        };
        let catalog = caller.principal != Principal::Anonymous
            || inner.config.anonymous_pull
            || caller.perms.everything;
        let access = caller.perms.intersect(&scopes, catalog);
        let now = unix_now();
        let ttl = inner.config.token_ttl.as_secs().max(1);
        let claims = Claims::new(caller.principal.subject(), access, now, ttl);
        let token = inner.signer.sign(&claims);
        let issued = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(now));
        let body = serde_json::json!({
            "token": token,
            "access_token": token,
            "expires_in": ttl,
            "issued_at": issued.to_string(),
        });
        let mut resp = json_response(StatusCode::OK, body.to_string());
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}

fn basic_challenge(message: &str) -> Response {
    let mut resp = json_response(
        StatusCode::UNAUTHORIZED,
        error_body("UNAUTHORIZED", message, serde_json::Value::Null),
    );
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"hoist-registry\""),
    );
    resp
}

/// The scope a challenge names for `need` (push asks for `pull,push` as Docker
/// clients do).
fn challenge_scope(need: Need<'_>) -> Option<Scope> {
    match need {
        Need::Nothing | Need::Base => None,
        Need::Catalog => Some(Scope::catalog()),
        Need::Repo(name, Action::Push) => {
            Some(Scope::repository(name, &[Action::Pull, Action::Push]))
        }
        Need::Repo(name, a) => Some(Scope::repository(name, &[a])),
    }
}

fn need_detail(need: Need<'_>) -> serde_json::Value {
    match challenge_scope(need) {
        Some(s) => serde_json::Value::Array(
            s.actions
                .iter()
                .map(|a| serde_json::json!({"Type": s.kind, "Name": s.name, "Action": a}))
                .collect(),
        ),
        None => serde_json::Value::Null,
    }
}

impl Inner {
    /// The registry is open when nothing restricts it.
    fn open(&self, tokens: &store::TokenFile) -> bool {
        self.config.anonymous_pull && tokens.is_empty() && self.users.is_none()
    }

    /// What anyone may do: pull everything with `anonymous_pull`, else nothing.
    fn anonymous_grants(&self) -> Vec<Grant> {
        match RepoPattern::new("**") {
            Ok(all) if self.config.anonymous_pull => vec![Grant {
                repo: all,
                actions: vec![Action::Pull],
            }],
            _ => Vec::new(),
        }
    }

    fn anonymous(&self) -> Caller {
        Caller {
            principal: Principal::Anonymous,
            perms: Permissions::new(self.anonymous_grants()),
            token_access: None,
        }
    }

    /// An authenticated caller: its own grants plus what anyone may do.
    fn authenticated(&self, principal: Principal, own: Permissions) -> Caller {
        let mut grants = own.grants;
        grants.extend(self.anonymous_grants());
        Caller {
            principal,
            perms: Permissions::new(grants),
            token_access: None,
        }
    }

    fn user_permissions(&self, user: &str) -> Permissions {
        Permissions::new(
            self.config
                .grants
                .iter()
                .filter(|g| g.user == user || g.user == "*")
                .map(|g| Grant {
                    repo: g.repo.clone(),
                    actions: g.actions.clone(),
                })
                .collect(),
        )
    }

    /// Who is calling: `None` when the registry is open (everything allowed).
    /// `bearer_ok` accepts bearer tokens (not at the token endpoint).
    async fn caller(
        &self,
        headers: &HeaderMap,
        bearer_ok: bool,
    ) -> Result<Option<Caller>, Failure> {
        let tokens = self.tokens.get().map_err(Failure::Internal)?;
        if self.open(&tokens) {
            return Ok(None);
        }
        let now = unix_now();
        match presented(headers) {
            Presented::None => Ok(Some(self.anonymous())),
            Presented::Other => Err(Failure::BadCredentials { bearer: false }),
            Presented::Bearer(t) => {
                if !bearer_ok {
                    return Err(Failure::BadCredentials { bearer: true });
                }
                let claims = self.signer.verify(&t, now).map_err(|e| {
                    tracing::debug!("bearer token refused: {e}");
                    Failure::BadCredentials { bearer: true }
                })?;
                let mut caller = self
                    .resolve_subject(&claims.sub, &tokens, now)?
                    .ok_or(Failure::BadCredentials { bearer: true })?;
                caller.token_access = Some(claims.access);
                Ok(Some(caller))
            }
            Presented::Basic(user, password) => {
                if let Some(t) = tokens.find(&password, now) {
                    return Ok(Some(
                        self.authenticated(Principal::Token(t.id.clone()), t.permissions()),
                    ));
                }
                let Some(users) = &self.users else {
                    return Err(Failure::BadCredentials { bearer: false });
                };
                let users = users.get().map_err(Failure::Internal)?;
                let Some(hash) = users.hash(&user).map(str::to_owned) else {
                    return Err(Failure::BadCredentials { bearer: false });
                };
                let ok = tokio::task::spawn_blocking(move || htpasswd::verify(&password, &hash))
                    .await
                    .unwrap_or(false);
                if !ok {
                    return Err(Failure::BadCredentials { bearer: false });
                }
                let perms = self.user_permissions(&user);
                Ok(Some(self.authenticated(Principal::User(user), perms)))
            }
        }
    }

    /// The principal a bearer token's subject names, if it still exists.
    fn resolve_subject(
        &self,
        sub: &str,
        tokens: &store::TokenFile,
        now: u64,
    ) -> Result<Option<Caller>, Failure> {
        if sub.is_empty() {
            return Ok(Some(self.anonymous()));
        }
        if let Some(id) = sub.strip_prefix("token:") {
            return Ok(tokens
                .get(id, now)
                .map(|t| self.authenticated(Principal::Token(t.id.clone()), t.permissions())));
        }
        if let (Some(user), Some(users)) = (sub.strip_prefix("user:"), &self.users) {
            let users = users.get().map_err(Failure::Internal)?;
            if users.contains(user) {
                let perms = self.user_permissions(user);
                return Ok(Some(
                    self.authenticated(Principal::User(user.to_owned()), perms),
                ));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(p: &str) -> RepoPattern {
        RepoPattern::new(p).unwrap()
    }

    #[test]
    fn patterns_use_slash_as_a_separator() {
        assert!(pat("team/*").matches("team/app"));
        assert!(!pat("team/*").matches("team/app/web"));
        assert!(pat("team/**").matches("team/app/web"));
        assert!(!pat("team/**").matches("other/app"));
        assert!(pat("**").matches("a/b/c"));
        assert!(pat("app-?").matches("app-1"));
        assert!(!pat("app").matches("app/x"));
        assert!(RepoPattern::new("team/[").is_err());
        assert!(RepoPattern::new("").is_err());
    }

    #[test]
    fn scopes_parse_with_ports_classes_and_lists() {
        let s = Scope::parse("repository:team/app:pull,push").unwrap();
        assert_eq!(
            s,
            Scope::repository("team/app", &[Action::Pull, Action::Push])
        );
        assert_eq!(s.to_string(), "repository:team/app:pull,push");
        let s = Scope::parse("repository:localhost:5000/team/app:pull").unwrap();
        assert_eq!(s.name, "localhost:5000/team/app");
        assert_eq!(s.actions, ["pull"]);
        let s = Scope::parse("repository(plugin):a/b:pull").unwrap();
        assert_eq!((s.kind.as_str(), s.name.as_str()), ("repository", "a/b"));
        assert_eq!(
            Scope::parse("registry:catalog:*").unwrap(),
            Scope::catalog()
        );
        assert!(Scope::parse("repository").is_none());
        assert!(Scope::parse("repository:a").is_none());
        assert!(Scope::parse("Repo:a:pull").is_none());
        assert_eq!(Scope::parse("repository:a:").unwrap().actions.len(), 0);
        let list = Scope::parse_list("repository:a:pull repository:b:push bogus");
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].name, "b");
    }

    fn perms() -> Permissions {
        Permissions::new(vec![
            Grant {
                repo: pat("team/**"),
                actions: vec![Action::Pull, Action::Push],
            },
            Grant {
                repo: pat("public/*"),
                actions: vec![Action::Pull],
            },
        ])
    }

    #[test]
    fn grants_are_the_intersection_of_asked_and_allowed() {
        let p = perms();
        let asked = Scope::parse_list(
            "repository:team/app:pull,push,delete repository:public/x:pull,push \
             repository:secret:pull registry:catalog:* repository:team/app:pull \
             repository:team/b:* repository:Bad_Name:pull whatever:x:y",
        );
        let got = p.intersect(&asked, true);
        assert_eq!(
            got,
            vec![
                Scope::catalog(),
                Scope::repository("public/x", &[Action::Pull]),
                Scope::repository("team/app", &[Action::Pull, Action::Push]),
                Scope::repository("team/b", &[Action::Pull, Action::Push]),
            ]
        );
        assert!(!p.intersect(&asked, false).contains(&Scope::catalog()));
        // Nothing allowed is an empty grant, not an error.
        assert!(Permissions::default().intersect(&asked, false).is_empty());
        assert_eq!(
            Permissions::everything().intersect(&asked[..1], false),
            vec![Scope::repository(
                "team/app",
                &[Action::Pull, Action::Push, Action::Delete]
            )]
        );
    }

    fn caller(principal: Principal, token: Option<Vec<Scope>>) -> Caller {
        Caller {
            principal,
            perms: perms(),
            token_access: token,
        }
    }

    #[test]
    fn decisions() {
        let user = Principal::User("ci".into());
        let push = Need::Repo("team/app", Action::Push);
        let basic = caller(user.clone(), None);
        assert_eq!(decide(&basic, push, true), Decision::Allow);
        assert_eq!(
            decide(&basic, Need::Repo("secret", Action::Pull), true),
            Decision::Deny
        );
        assert_eq!(
            decide(&basic, Need::Repo("team/app", Action::Delete), true),
            Decision::Deny
        );
        assert_eq!(decide(&basic, Need::Base, false), Decision::Allow);
        // A bearer token with only pull: the user could push, so ask for a wider token.
        let pull_token = caller(
            user.clone(),
            Some(vec![Scope::repository("team/app", &[Action::Pull])]),
        );
        assert_eq!(
            decide(&pull_token, Need::Repo("team/app", Action::Pull), true),
            Decision::Allow
        );
        assert_eq!(
            decide(&pull_token, push, true),
            Decision::Challenge {
                insufficient_scope: true
            }
        );
        assert_eq!(
            decide(&pull_token, Need::Repo("public/x", Action::Push), true),
            Decision::Deny
        );
        // A token's claim is not enough when the principal lost the permission.
        let stale = caller(
            user,
            Some(vec![Scope::repository("secret", &[Action::Pull])]),
        );
        assert_eq!(
            decide(&stale, Need::Repo("secret", Action::Pull), true),
            Decision::Deny
        );
        // Anonymous: challenged, never denied.
        let anon = Caller {
            principal: Principal::Anonymous,
            perms: Permissions::default(),
            token_access: None,
        };
        let challenge = Decision::Challenge {
            insufficient_scope: false,
        };
        assert_eq!(decide(&anon, Need::Base, true), challenge);
        assert_eq!(
            decide(&anon, Need::Repo("team/app", Action::Pull), true),
            challenge
        );
        assert_eq!(decide(&anon, Need::Catalog, false), challenge);
        assert_eq!(decide(&anon, Need::Catalog, true), Decision::Allow);
        let anon_token = Caller {
            token_access: Some(vec![]),
            ..anon
        };
        assert_eq!(decide(&anon_token, Need::Base, false), Decision::Allow);
        assert_eq!(
            decide(&anon_token, Need::Repo("team/app", Action::Pull), false),
            challenge
        );
        assert_eq!(decide(&Caller::everything(), push, false), Decision::Allow);
        assert_eq!(decide(&basic, Need::Nothing, false), Decision::Allow);
    }

    #[test]
    fn mounts_need_pull_on_the_source_in_the_token() {
        let user = Principal::User("ci".into());
        let c = caller(
            user.clone(),
            Some(vec![Scope::repository(
                "team/app",
                &[Action::Pull, Action::Push],
            )]),
        );
        assert!(c.may_mount_from("team/app"));
        assert!(!c.may_mount_from("team/other"), "not in the token");
        let c = caller(user, None);
        assert!(c.may_mount_from("team/other"));
        assert!(!c.may_mount_from("secret"));
    }

    #[test]
    fn config_schema() {
        let c: AuthConfig = toml::from_str(
            "anonymous_pull = false\ntoken_ttl = \"10m\"\nhtpasswd = \"u\"\n\
             [[grant]]\nuser = \"ci\"\nrepo = \"team/**\"\nactions = [\"pull\", \"push\"]\n",
        )
        .unwrap();
        assert!(!c.anonymous_pull);
        assert_eq!(c.token_ttl, Duration::from_secs(600));
        assert_eq!(c.grants[0].actions, [Action::Pull, Action::Push]);
        assert!(c.grants[0].repo.matches("team/a/b"));
        let d = AuthConfig::default();
        assert!(d.anonymous_pull && d.token_ttl == DEFAULT_TOKEN_TTL);
        let e = toml::from_str::<AuthConfig>("[[grant]]\nuser=\"a\"\nrepo=\"[\"\nactions=[]\n")
            .unwrap_err();
        assert!(e.to_string().contains("invalid repository pattern"), "{e}");
        let e =
            toml::from_str::<AuthConfig>("[[grant]]\nuser=\"a\"\nrepo=\"x\"\nactions=[\"pul\"]\n")
                .unwrap_err();
        assert!(e.to_string().contains("pul"), "{e}");
    }
}
