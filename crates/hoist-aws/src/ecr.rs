//! Amazon ECR: host recognition, registry credentials (`GetAuthorizationToken` and
//! the token cache), repositories ([`repository`]) and scan findings ([`scan`]).

pub mod repository;
pub mod scan;

use std::collections::HashMap;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine as _;

/// Tokens are refreshed this long before they expire.
pub const REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);

/// What went wrong talking to ECR.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// A host that is not an ECR registry.
    #[error("{0}: not an Amazon ECR registry host (<account>.dkr.ecr.<region>.amazonaws.com)")]
    NotEcr(String),
    /// The AWS call failed (no credentials, refused, unreachable endpoint).
    #[error("ECR {operation} for account {account} in {region}: {message}")]
    Api {
        /// The API operation (`GetAuthorizationToken`, `CreateRepository`...).
        operation: &'static str,
        /// The registry's account.
        account: String,
        /// The region.
        region: String,
        /// The SDK's error with its causes.
        message: String,
    },
    /// An answer without a usable token.
    #[error("ECR GetAuthorizationToken for account {account}: {message}")]
    BadToken {
        /// The registry's account.
        account: String,
        /// What is wrong with it.
        message: String,
    },
    /// The token cache could not be written.
    #[error("{path}: {source}")]
    Cache {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The SDK's runtime could not start.
    #[error("starting the AWS SDK's runtime: {0}")]
    Runtime(io::Error),
    /// An answer that lacks what hoist needs from it.
    #[error("ECR {operation} for account {account}: {message}")]
    BadAnswer {
        /// The API operation.
        operation: &'static str,
        /// The registry's account.
        account: String,
        /// What is missing or wrong.
        message: String,
    },
    /// ECR ended the image's scan without findings (`FAILED`, `UNSUPPORTED_IMAGE`...).
    #[error("ECR could not scan {repository}@{digest}: {status}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    ScanFailed {
        /// The repository.
        repository: String,
        /// The image's digest.
        digest: String,
        /// ECR's scan status.
        status: String,
        /// ECR's explanation, if it gave one.
        description: Option<String>,
    },
    /// No scan of the image appeared.
    #[error("ECR has no scan of {repository}@{digest} after {}s: does the repository scan on push (or a registry scanning rule cover it)?", waited.as_secs())]
    ScanNotFound {
        /// The repository.
        repository: String,
        /// The image's digest.
        digest: String,
        /// How long hoist waited for one.
        waited: Duration,
    },
    /// The scan did not finish in time.
    #[error("ECR's scan of {repository}@{digest} is still {status} after {}s", waited.as_secs())]
    ScanTimeout {
        /// The repository.
        repository: String,
        /// The image's digest.
        digest: String,
        /// The last status seen.
        status: String,
        /// How long hoist waited.
        waited: Duration,
    },
}

impl AwsError {
    /// An [`AwsError::Api`] for `registry` from an SDK error (with its causes).
    pub(crate) fn api<E: std::error::Error>(
        operation: &'static str,
        registry: &EcrRegistry,
        error: &E,
    ) -> AwsError {
        AwsError::Api {
            operation,
            account: registry.account.clone(),
            region: registry.region.clone(),
            message: aws_sdk_ecr::error::DisplayErrorContext(error).to_string(),
        }
    }
}

/// An ECR registry, as named by its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrRegistry {
    /// The host (lower case, without a port).
    pub host: String,
    /// The 12-digit account (the registry ID).
    pub account: String,
    /// The region (`eu-west-1`).
    pub region: String,
    /// Whether the host is a FIPS endpoint (`dkr.ecr-fips`).
    pub fips: bool,
}

impl EcrRegistry {
    /// Parse `<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]`, with an optional
    /// `:port`; `None` for any other host.
    pub fn parse(host: &str) -> Option<EcrRegistry> {
        let name = match host.rsplit_once(':') {
            Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        };
        let name = name.to_ascii_lowercase();
        let rest = name
            .strip_suffix(".amazonaws.com")
            .or_else(|| name.strip_suffix(".amazonaws.com.cn"))?;
        let labels: Vec<&str> = rest.split('.').collect();
        let [account, "dkr", ecr, region] = labels[..] else {
            return None;
        };
        let fips = match ecr {
            "ecr" => false,
            "ecr-fips" => true,
            _ => return None,
        };
        let region_ok = !region.is_empty()
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) || !region_ok {
            return None;
        }
        Some(EcrRegistry {
            account: account.to_owned(),
            region: region.to_owned(),
            fips,
            host: name,
        })
    }
}

/// Registry credentials from `GetAuthorizationToken`.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EcrToken {
    /// The user name (always `AWS`).
    pub username: String,
    /// The password (the token's secret part).
    pub password: String,
    /// When ECR stops accepting it (twelve hours after it was issued).
    #[serde(with = "unix_seconds")]
    pub expires_at: SystemTime,
    /// The registry URL ECR returned it for.
    pub proxy_endpoint: String,
}

impl std::fmt::Debug for EcrToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcrToken")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("proxy_endpoint", &self.proxy_endpoint)
            .finish()
    }
}

impl EcrToken {
    /// Whether it can still be used at `now` (not within [`REFRESH_BEFORE`] of expiry).
    pub fn fresh_at(&self, now: SystemTime) -> bool {
        now + REFRESH_BEFORE < self.expires_at
    }
}

mod unix_seconds {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    pub fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        s.serialize_u64(secs)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let secs: u64 = serde::Deserialize::deserialize(d)?;
        Ok(UNIX_EPOCH + Duration::from_secs(secs))
    }
}

/// Decode an `authorizationToken` (base64 of `user:password`).
pub fn decode_token(token: &str) -> Result<(String, String), String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|e| format!("the token is not base64: {e}"))?;
    let raw = String::from_utf8(raw).map_err(|_| "the token is not UTF-8".to_owned())?;
    let (user, password) = raw
        .split_once(':')
        .ok_or_else(|| "the token is not USER:PASSWORD".to_owned())?;
    Ok((user.to_owned(), password.to_owned()))
}

/// The clock the cache reads (a seam for tests).
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// ECR credentials for any number of registries, cached in memory and (with a cache
/// directory) on disk. Share one per process.
pub struct EcrCredentials {
    cache_dir: Option<PathBuf>,
    memory: Mutex<HashMap<String, EcrToken>>,
    clock: Clock,
}

impl EcrCredentials {
    /// Credentials cached in memory and, with `cache_dir` (hoist passes
    /// `<HOIST_HOME>/aws/ecr-tokens`), in files there.
    pub fn new(cache_dir: Option<PathBuf>) -> EcrCredentials {
        EcrCredentials {
            cache_dir,
            memory: Mutex::new(HashMap::new()),
            clock: Arc::new(SystemTime::now),
        }
    }

    /// The same with another clock.
    pub fn with_clock(mut self, clock: Clock) -> EcrCredentials {
        self.clock = clock;
        self
    }

    /// The cache file of a registry: `<cache_dir>/<account>/<host>.json`.
    pub fn cache_path(&self, registry: &EcrRegistry) -> Option<PathBuf> {
        self.cache_dir.as_ref().map(|d| {
            d.join(&registry.account)
                .join(format!("{}.json", registry.host))
        })
    }

    /// Credentials for the ECR registry at `host`.
    pub fn token(&self, host: &str) -> Result<EcrToken, AwsError> {
        let registry = EcrRegistry::parse(host).ok_or_else(|| AwsError::NotEcr(host.to_owned()))?;
        self.token_for(&registry)
    }

    /// Credentials for `registry`: from memory, else the disk cache, else AWS (and
    /// then cached in both), whichever first has one that is not about to expire.
    pub fn token_for(&self, registry: &EcrRegistry) -> Result<EcrToken, AwsError> {
        let now = (self.clock)();
        let key = format!("{}/{}", registry.account, registry.host);
        let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = memory.get(&key).filter(|t| t.fresh_at(now)) {
            return Ok(t.clone());
        }
        let path = self.cache_path(registry);
        if let Some(t) = path
            .as_deref()
            .and_then(read_cache)
            .filter(|t| t.fresh_at(now))
        {
            memory.insert(key, t.clone());
            return Ok(t);
        }
        let token = fetch(registry)?;
        if let Some(path) = &path {
            if let Err(e) = write_cache(path, &token) {
                // A cache that cannot be written costs a call next time, nothing more.
                tracing::warn!(error = %e, "not caching the ECR token");
            }
        }
        memory.insert(key, token.clone());
        Ok(token)
    }
}

fn read_cache(path: &Path) -> Option<EcrToken> {
    let bytes = std::fs::read(path).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "ignoring an unreadable ECR token cache");
            None
        }
    }
}

/// Write the cache file with mode 0600 (by a 0600 temp file renamed over it), in a
/// 0700 directory.
fn write_cache(path: &Path, token: &EcrToken) -> Result<(), AwsError> {
    let err = |path: &Path| {
        let path = path.to_owned();
        move |source| AwsError::Cache { path, source }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(err(dir))?;
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        path.file_name().and_then(|n| n.to_str()).unwrap_or("token")
    ));
    let bytes = serde_json::to_vec(token).map_err(|e| AwsError::Cache {
        path: path.to_owned(),
        source: io::Error::other(e),
    })?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err(&tmp))?;
    f.write_all(&bytes).map_err(err(&tmp))?;
    f.sync_all().map_err(err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(err(path))
}

/// Call `GetAuthorizationToken` for `registry` (no cache).
pub fn fetch(registry: &EcrRegistry) -> Result<EcrToken, AwsError> {
    block_on(fetch_async(registry))
}

/// Run `call` to completion on a current-thread tokio runtime of its own thread, so
/// that the blocking API also works when its caller is inside another runtime.
pub(crate) fn block_on<T: Send>(
    call: impl std::future::Future<Output = Result<T, AwsError>> + Send,
) -> Result<T, AwsError> {
    with_runtime(|rt| rt.block_on(call))
}

/// Run `work` on a thread of its own with a current-thread tokio runtime to block on.
pub(crate) fn with_runtime<T: Send>(
    work: impl FnOnce(&tokio::runtime::Runtime) -> Result<T, AwsError> + Send,
) -> Result<T, AwsError> {
    crate::sdk::with_runtime(work).map_err(AwsError::Runtime)?
}

/// An ECR client for `registry`'s region (and FIPS endpoint), with credentials and
/// endpoint overrides from `aws-config`'s standard chain.
pub(crate) async fn client(registry: &EcrRegistry) -> aws_sdk_ecr::Client {
    let config = crate::sdk::config(Some(registry.region.clone())).await;
    let mut ecr = aws_sdk_ecr::config::Builder::from(&config);
    if registry.fips {
        ecr = ecr.use_fips(true);
    }
    aws_sdk_ecr::Client::from_conf(ecr.build())
}

async fn fetch_async(registry: &EcrRegistry) -> Result<EcrToken, AwsError> {
    let client = client(registry).await;
    #[allow(deprecated)] // registryIds: the only way to name another account's registry
    let out = client
        .get_authorization_token()
        .registry_ids(&registry.account)
        .send()
        .await
        .map_err(|e| AwsError::api("GetAuthorizationToken", registry, &e))?;
    let bad = |message: &str| AwsError::BadToken {
        account: registry.account.clone(),
        message: message.to_owned(),
    };
    let data = out
        .authorization_data()
        .first()
        .ok_or_else(|| bad("the answer has no authorizationData"))?;
    let (username, password) = decode_token(
        data.authorization_token()
            .ok_or_else(|| bad("the answer has no authorizationToken"))?,
    )
    .map_err(|m| bad(&m))?;
    let expires_at = data
        .expires_at()
        .and_then(|t| SystemTime::try_from(*t).ok())
        // ECR tokens live twelve hours; assume so when the answer does not say.
        .unwrap_or_else(|| SystemTime::now() + Duration::from_secs(12 * 3600));
    Ok(EcrToken {
        username,
        password,
        expires_at,
        proxy_endpoint: data.proxy_endpoint().unwrap_or_default().to_owned(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn ecr_hosts_give_account_and_region() {
        let r = EcrRegistry::parse("123456789012.dkr.ecr.eu-west-1.amazonaws.com").unwrap();
        assert_eq!(
            (r.account.as_str(), r.region.as_str(), r.fips),
            ("123456789012", "eu-west-1", false)
        );
        let cn =
            EcrRegistry::parse("210987654321.dkr.ecr.cn-north-1.amazonaws.com.cn:443").unwrap();
        assert_eq!(cn.region, "cn-north-1");
        assert_eq!(cn.host, "210987654321.dkr.ecr.cn-north-1.amazonaws.com.cn");
        let fips =
            EcrRegistry::parse("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com").unwrap();
        assert!(fips.fips);
        assert_eq!(fips.region, "us-gov-west-1");
        for bad in [
            "public.ecr.aws",
            "ghcr.io",
            "1234.dkr.ecr.eu-west-1.amazonaws.com",
            "123456789012.dkr.ecr.amazonaws.com",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.io",
            "x.123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "123456789012.dkr.ecs.eu-west-1.amazonaws.com",
            "abcdefghijkl.dkr.ecr.eu-west-1.amazonaws.com",
        ] {
            assert_eq!(EcrRegistry::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn tokens_decode_and_expire_early() {
        let enc = base64::engine::general_purpose::STANDARD.encode("AWS:secret:with:colons");
        assert_eq!(
            decode_token(&enc).unwrap(),
            ("AWS".to_owned(), "secret:with:colons".to_owned())
        );
        assert!(decode_token("!!").is_err());
        let t = EcrToken {
            username: "AWS".into(),
            password: "p".into(),
            expires_at: UNIX_EPOCH + Duration::from_secs(10_000),
            proxy_endpoint: String::new(),
        };
        assert!(t.fresh_at(UNIX_EPOCH + Duration::from_secs(10_000 - 301)));
        assert!(!t.fresh_at(UNIX_EPOCH + Duration::from_secs(10_000 - 300)));
        assert!(!format!("{t:?}").contains("\"p\""));
    }
}
