//! The configuration the controller hands to [`crate::Proxy::apply`]: plain data, no I/O.
//!
//! Every type here also has a JSON form (serde), the file the controller writes for
//! `hoist proxy` ([`crate::watch`]). Durations are integer milliseconds in fields named
//! `*_ms`; an [`Endpoint`] is `{"tcp": "ADDR"}` or `{"netns": {"path": P, "port": N}}`
//! (plus `"health_file": F` for a target whose group's check has `"mode": "reported"`);
//! a [`HostMatch`] is its string (`api.example.com`, `*.example.com`); success codes
//! are strings like `"200-399"` or `"200"`. Every optional field has a default, and
//! unknown fields are errors.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Everything the proxy serves. Applying a new `Config` replaces the previous one as a
/// whole; targets are identified by (target group name, [`Endpoint`]), so a target that
/// is in both keeps its health state, pool and metrics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Version of this configuration, chosen by whoever writes it (the controller bumps
    /// it on every write). The proxy does not interpret it; it reports the generation it
    /// has applied ([`crate::Proxy::applied_generation`], `GET /status`). Default 0.
    pub generation: u64,
    /// Ports to accept client connections on, each with its rules.
    pub listeners: Vec<Listener>,
    /// Target groups that rules forward to, by name.
    pub target_groups: Vec<TargetGroup>,
    /// Timeouts for connecting to targets and waiting for their answers.
    pub timeouts: Timeouts,
    /// How long a deregistered target keeps its in-flight requests and open
    /// WebSockets before they are cut (default 30 s; ends early when idle).
    #[serde(rename = "drain_timeout_ms", with = "millis")]
    pub drain_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            generation: 0,
            listeners: Vec::new(),
            target_groups: Vec::new(),
            timeouts: Timeouts::default(),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// Connect and request timeouts for traffic to targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timeouts {
    /// Time allowed for the TCP connect and HTTP/1 handshake to one target (default
    /// 2 s). A connect that times out is retried on another target.
    #[serde(rename = "connect_ms", with = "millis")]
    pub connect: Duration,
    /// Time allowed from sending a request to receiving the response head (default
    /// 60 s); past it the client gets 504. Response bodies and WebSockets are not cut.
    #[serde(rename = "request_ms", with = "millis")]
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(2),
            request: Duration::from_secs(60),
        }
    }
}

/// An address to accept connections on (HTTP/1.1 and h2c, or HTTPS) and the rules for
/// it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// Address to bind. Port 0 binds an ephemeral port; see
    /// [`crate::Proxy::listener_addrs`]. The configured address is the listener's
    /// identity across [`crate::Proxy::apply`] calls.
    pub addr: SocketAddr,
    /// Rules in priority order: the first that matches a request handles it. A request
    /// that matches none gets 404.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Serve HTTPS (HTTP/1.1 and HTTP/2 by ALPN) with this certificate instead of
    /// plain HTTP, as an ALB HTTPS listener. The files are read on every
    /// [`crate::Proxy::apply`], so a renewed certificate is picked up by the next
    /// configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ListenerTls>,
}

/// A listener's certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTls {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// A routing rule: conditions on host and path, and a weighted forward.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Service name, used as the `service` label of metrics and in request counts.
    pub service: String,
    /// Host condition; `None` matches any host.
    #[serde(default)]
    pub host: Option<HostMatch>,
    /// Path prefix, matched on whole segments: `/api` matches `/api` and `/api/x` but
    /// not `/apix`; a prefix ending in `/` (like the default `/`) matches as a plain
    /// string prefix. In JSON it defaults to `/`.
    #[serde(default = "root_path")]
    pub path_prefix: String,
    /// Target groups with weights, like an ALB weighted forward (blue 90 / green 10).
    /// Weights are relative; a weight of 0 takes no traffic.
    pub forward: Vec<WeightedGroup>,
}

/// A host condition, compared without the port and case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostMatch {
    /// This host exactly, e.g. `api.example.com`.
    Exact(String),
    /// Any host ending in `.` + this suffix (written `*.example.com`; the suffix stored
    /// here is `example.com`). It does not match `example.com` itself.
    Suffix(String),
}

impl HostMatch {
    /// Parses `*.example.com` as a suffix match and anything else as exact.
    pub fn parse(s: &str) -> HostMatch {
        match s.strip_prefix("*.") {
            Some(suffix) => HostMatch::Suffix(suffix.to_ascii_lowercase()),
            None => HostMatch::Exact(s.to_ascii_lowercase()),
        }
    }
}

/// One entry of a weighted forward.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightedGroup {
    /// Name of a [`TargetGroup`] in the same [`Config`].
    pub target_group: String,
    /// Relative weight (in JSON, default 1).
    #[serde(default = "one")]
    pub weight: u32,
}

/// A named set of targets with one health check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetGroup {
    /// Name, unique in the config; the `target_group` label of metrics.
    pub name: String,
    /// Health check for every target; `None` treats targets as healthy at once.
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
    /// Where the group's tasks listen.
    #[serde(default)]
    pub targets: Vec<Endpoint>,
    /// How long its deregistered targets drain, as an ALB target group's
    /// deregistration delay [default: the configuration's `drain_timeout`].
    #[serde(
        rename = "drain_timeout_ms",
        default,
        skip_serializing_if = "Option::is_none",
        with = "millis_opt"
    )]
    pub drain_timeout: Option<Duration>,
}

/// Where a target listens.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Endpoint {
    /// A TCP address reachable from the proxy's own network namespace.
    Tcp(SocketAddr),
    /// `127.0.0.1:port` inside the network namespace at `path` (`/proc/PID/ns/net`
    /// or a bind mount such as `/run/netns/NAME`).
    Netns {
        /// Path of the namespace file.
        path: PathBuf,
        /// Port on the namespace's loopback.
        port: u16,
        /// The file where the target's own supervisor reports its health (a
        /// task's `health.json`, Docker's `State.Health` shape): what a group
        /// whose check is [`HealthCheckMode::Reported`] reads instead of sending
        /// HTTP probes. Absent from JSON when `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        health_file: Option<PathBuf>,
    },
}

impl Endpoint {
    /// The same endpoint without its health file: where the target is reached,
    /// for matching a target whatever its health is read from.
    pub fn without_health_file(&self) -> Endpoint {
        match self {
            Endpoint::Netns { path, port, .. } => Endpoint::Netns {
                path: path.clone(),
                port: *port,
                health_file: None,
            },
            other => other.clone(),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(addr) => write!(f, "{addr}"),
            Endpoint::Netns { path, port, .. } => write!(f, "netns:{}:{port}", path.display()),
        }
    }
}

/// Where a health check's verdicts come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthCheckMode {
    /// The proxy sends `GET path` to each target (the default).
    #[default]
    Http,
    /// The target's own supervisor probes it (a task's `HEALTHCHECK`, run by its
    /// helper) and writes the verdict to the target's
    /// [`Endpoint::Netns::health_file`]; every `interval` the proxy reads it:
    /// `"Status": "healthy"` is a success, `"unhealthy"` a failure (the reason is
    /// the last probe's output), `"starting"` leaves the state as it is; a
    /// missing, unreadable or stale file (not rewritten for three times interval
    /// plus timeout) is a failure, as is a target without a health file. `path`
    /// and `success_codes` are unused.
    Reported,
}

/// An HTTP health check, as on an ALB target group, or a reported one
/// ([`HealthCheckMode::Reported`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthCheck {
    /// Where verdicts come from (default HTTP probes; omitted from JSON then).
    #[serde(skip_serializing_if = "is_http")]
    pub mode: HealthCheckMode,
    /// Path requested with `GET` (default `/`).
    pub path: String,
    /// Time between checks of one target (default 2 s).
    #[serde(rename = "interval_ms", with = "millis")]
    pub interval: Duration,
    /// Time allowed for one check, connect included (default 1 s).
    #[serde(rename = "timeout_ms", with = "millis")]
    pub timeout: Duration,
    /// Consecutive successes that make a target healthy (default 2).
    pub healthy_threshold: u32,
    /// Consecutive failures that make a target unhealthy (default 3).
    pub unhealthy_threshold: u32,
    /// Status codes that count as success, as inclusive ranges (default 200-399). In
    /// JSON, strings: `"200-399"`, or `"200"` for one code.
    #[serde(with = "code_ranges")]
    pub success_codes: Vec<(u16, u16)>,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            mode: HealthCheckMode::Http,
            path: "/".to_owned(),
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            healthy_threshold: 2,
            unhealthy_threshold: 3,
            success_codes: vec![(200, 399)],
        }
    }
}

impl HealthCheck {
    pub(crate) fn is_success(&self, status: u16) -> bool {
        self.success_codes
            .iter()
            .any(|&(lo, hi)| lo <= status && status <= hi)
    }
}

impl fmt::Display for HostMatch {
    /// The form [`HostMatch::parse`] reads: `api.example.com` or `*.example.com`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostMatch::Exact(host) => f.write_str(host),
            HostMatch::Suffix(suffix) => write!(f, "*.{suffix}"),
        }
    }
}

impl Serialize for HostMatch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HostMatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        if s.is_empty() || s == "*." {
            return Err(serde::de::Error::custom("a host must not be empty"));
        }
        Ok(HostMatch::parse(&s))
    }
}

fn is_http(mode: &HealthCheckMode) -> bool {
    *mode == HealthCheckMode::Http
}

fn root_path() -> String {
    "/".to_owned()
}

fn one() -> u32 {
    1
}

/// A [`Duration`] as integer milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

/// Optional durations as integer milliseconds.
mod millis_opt {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        d: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::millis::serialize(d, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        super::millis::deserialize(deserializer).map(Some)
    }
}

/// Status code ranges as strings: `"200-399"`, or `"204"` for one code.
mod code_ranges {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        ranges: &[(u16, u16)],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(ranges.iter().map(|&(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        }))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<(u16, u16)>, D::Error> {
        let strings = Vec::<String>::deserialize(deserializer)?;
        strings
            .iter()
            .map(|s| parse(s).ok_or_else(|| D::Error::custom(format!(
                "invalid status code range {s:?}: expected \"200\" or \"200-399\" with codes 100-599"
            ))))
            .collect()
    }

    fn parse(s: &str) -> Option<(u16, u16)> {
        let code = |c: &str| {
            c.trim()
                .parse::<u16>()
                .ok()
                .filter(|c| (100..=599).contains(c))
        };
        let (lo, hi) = match s.split_once('-') {
            Some((lo, hi)) => (code(lo)?, code(hi)?),
            None => (code(s)?, code(s)?),
        };
        (lo <= hi).then_some((lo, hi))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reported_checks_and_health_files_are_optional_json() {
        let text = r#"{"target_groups": [{"name": "web.v1",
            "health_check": {"mode": "reported", "interval_ms": 1000},
            "targets": [{"netns": {"path": "/proc/1/ns/net", "port": 8080,
                                   "health_file": "/t/health.json"}}]}]}"#;
        let c: Config = serde_json::from_str(text).unwrap();
        let g = &c.target_groups[0];
        assert_eq!(
            g.health_check.as_ref().unwrap().mode,
            HealthCheckMode::Reported
        );
        assert_eq!(
            g.targets[0],
            Endpoint::Netns {
                path: "/proc/1/ns/net".into(),
                port: 8080,
                health_file: Some("/t/health.json".into()),
            }
        );
        // Configs without them read and write as before.
        let plain = TargetGroup {
            drain_timeout: None,
            name: "a".into(),
            health_check: Some(HealthCheck::default()),
            targets: vec![Endpoint::Netns {
                path: "/p".into(),
                port: 1,
                health_file: None,
            }],
        };
        let json = serde_json::to_string(&plain).unwrap();
        assert!(
            !json.contains("mode") && !json.contains("health_file"),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<TargetGroup>(&json).unwrap(), plain);
        let bad = r#"{"name": "a", "health_check": {"mode": "tcp"}}"#;
        assert!(serde_json::from_str::<TargetGroup>(bad).is_err());
    }
}
