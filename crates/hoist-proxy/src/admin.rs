//! The admin listener's JSON, as types, and [`AdminClient`], the client a controller
//! uses to watch a proxy running in another process.
//!
//! Endpoints ([`crate::Proxy::serve_admin`]), all `GET`, all `application/json`:
//!
//! - `/status`: [`Status`], `{"generation", "error", "pid", "listeners"}`.
//! - `/targets`: a list of [`TargetHealth`], `{"target_group", "endpoint", "state",
//!   "reason"}` with `state` one of `initial`, `healthy`, `unhealthy`, `draining`.
//! - `/draining`: a list of [`Draining`], `{"target_group", "endpoint", "in_flight",
//!   "remaining_ms"}`.
//! - `/counts`: [`RequestCounts`], a list of `{"service", "target_group", "total",
//!   "1xx", "2xx", "3xx", "4xx", "5xx"}`.
//!
//! Readers should ignore fields they do not know; fields may be added, never renamed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{DrainingTarget, Endpoint, RequestCounts, TargetHealth};

/// `GET /status`: what the proxy serves and whether the last configuration was
/// rejected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The `generation` of the configuration being served (0 before any).
    pub generation: u64,
    /// Why the newest configuration (file) was rejected, or `None` when the newest one
    /// is the one being served. The previous configuration keeps serving meanwhile.
    pub error: Option<String>,
    /// The proxy's process ID.
    pub pid: u32,
    /// Bound address of each listener, keyed by its configured address (they differ
    /// when the configured port is 0).
    #[serde(default)]
    pub listeners: BTreeMap<SocketAddr, SocketAddr>,
}

/// `GET /draining`: a target removed from the configuration that still has requests
/// or WebSockets open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draining {
    /// The target group it was removed from.
    pub target_group: String,
    /// The target.
    pub endpoint: Endpoint,
    /// Requests and WebSockets still open.
    pub in_flight: usize,
    /// Milliseconds until what is left is cut.
    pub remaining_ms: u64,
}

impl Draining {
    pub(crate) fn new(d: DrainingTarget, now: Instant) -> Draining {
        let remaining = d.deadline.saturating_duration_since(now);
        Draining {
            target_group: d.target_group,
            endpoint: d.endpoint,
            in_flight: d.in_flight,
            remaining_ms: u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// What went wrong asking a proxy's admin listener.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The address did not make a valid URL.
    #[error("invalid URL {url}: {source}")]
    Url {
        /// The URL.
        url: String,
        /// The parse error.
        #[source]
        source: http::uri::InvalidUri,
    },
    /// No connection, or the connection failed before an answer.
    #[error("GET {url}: {source}")]
    Request {
        /// The URL asked.
        url: String,
        /// The client error.
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// The answer's body could not be read.
    #[error("GET {url}: reading the body: {source}")]
    Body {
        /// The URL asked.
        url: String,
        /// The error.
        #[source]
        source: hyper::Error,
    },
    /// No answer within the client's timeout.
    #[error("GET {url}: no answer within {timeout:?}")]
    Timeout {
        /// The URL asked.
        url: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The proxy answered with a status other than 200.
    #[error("GET {url}: status {status}: {body}")]
    Status {
        /// The URL asked.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The body was not the expected JSON.
    #[error("GET {url}: unexpected JSON: {source}")]
    Json {
        /// The URL asked.
        url: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// A client of one proxy's admin listener (plain HTTP/1.1). Cheap to clone; each call
/// is one `GET` with a timeout (default 5 s).
#[derive(Clone, Debug)]
pub struct AdminClient {
    addr: SocketAddr,
    timeout: Duration,
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl AdminClient {
    /// A client of the admin listener at `addr` (see `admin.addr` next to the config
    /// file, [`crate::watch::ADMIN_ADDR_FILE`]).
    pub fn new(addr: SocketAddr) -> AdminClient {
        AdminClient {
            addr,
            timeout: Duration::from_secs(5),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// The same client with another per-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> AdminClient {
        self.timeout = timeout;
        self
    }

    /// The admin address asked.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `GET /status`.
    pub async fn status(&self) -> Result<Status, ClientError> {
        self.get("/status").await
    }

    /// `GET /targets`: every registered and draining target's health.
    pub async fn targets(&self) -> Result<Vec<TargetHealth>, ClientError> {
        self.get("/targets").await
    }

    /// `GET /draining`: targets still draining.
    pub async fn draining(&self) -> Result<Vec<Draining>, ClientError> {
        self.get("/draining").await
    }

    /// `GET /counts`: a request counter snapshot; diff two with
    /// [`RequestCounts::since`].
    pub async fn counts(&self) -> Result<RequestCounts, ClientError> {
        self.get("/counts").await
    }

    /// `GET /metrics`: the Prometheus text exposition.
    pub async fn metrics(&self) -> Result<String, ClientError> {
        let (_, body) = self.fetch("/metrics").await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let (url, body) = self.fetch(path).await?;
        serde_json::from_slice(&body).map_err(|source| ClientError::Json { url, source })
    }

    /// The body of `GET path` when the answer is 200, with the URL asked.
    async fn fetch(&self, path: &str) -> Result<(String, hyper::body::Bytes), ClientError> {
        let url = format!("http://{}{path}", self.addr);
        let fetch = async {
            let uri: hyper::Uri = url.parse().map_err(|source| ClientError::Url {
                url: url.clone(),
                source,
            })?;
            let resp = self
                .client
                .get(uri)
                .await
                .map_err(|source| ClientError::Request {
                    url: url.clone(),
                    source,
                })?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|source| ClientError::Body {
                    url: url.clone(),
                    source,
                })?
                .to_bytes();
            Ok((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, fetch)
            .await
            .map_err(|_| ClientError::Timeout {
                url: url.clone(),
                timeout: self.timeout,
            })??;
        if status != hyper::StatusCode::OK {
            let text = String::from_utf8_lossy(&body);
            return Err(ClientError::Status {
                url,
                status: status.as_u16(),
                body: text.chars().take(200).collect(),
            });
        }
        Ok((url, body))
    }
}
