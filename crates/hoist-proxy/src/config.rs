//! The configuration the controller hands to [`crate::Proxy::apply`]: plain data, no I/O.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything the proxy serves. Applying a new `Config` replaces the previous one as a
/// whole; targets are identified by (target group name, [`Endpoint`]), so a target that
/// is in both keeps its health state, pool and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Ports to accept client connections on, each with its rules.
    pub listeners: Vec<Listener>,
    /// Target groups that rules forward to, by name.
    pub target_groups: Vec<TargetGroup>,
    /// Timeouts for connecting to targets and waiting for their answers.
    pub timeouts: Timeouts,
    /// How long a deregistered target keeps its in-flight requests and open
    /// WebSockets before they are cut (default 30 s; ends early when idle).
    pub drain_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listeners: Vec::new(),
            target_groups: Vec::new(),
            timeouts: Timeouts::default(),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// Connect and request timeouts for traffic to targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Time allowed for the TCP connect and HTTP/1 handshake to one target (default
    /// 2 s). A connect that times out is retried on another target.
    pub connect: Duration,
    /// Time allowed from sending a request to receiving the response head (default
    /// 60 s); past it the client gets 504. Response bodies and WebSockets are not cut.
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

/// An address to accept connections on (HTTP/1.1 and h2c) and the rules for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    /// Address to bind. Port 0 binds an ephemeral port; see
    /// [`crate::Proxy::listener_addrs`]. The configured address is the listener's
    /// identity across [`crate::Proxy::apply`] calls.
    pub addr: SocketAddr,
    /// Rules in priority order: the first that matches a request handles it. A request
    /// that matches none gets 404.
    pub rules: Vec<Rule>,
}

/// A routing rule: conditions on host and path, and a weighted forward.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Service name, used as the `service` label of metrics and in request counts.
    pub service: String,
    /// Host condition; `None` matches any host.
    pub host: Option<HostMatch>,
    /// Path prefix, matched on whole segments: `/api` matches `/api` and `/api/x` but
    /// not `/apix`; a prefix ending in `/` (like the default `/`) matches as a plain
    /// string prefix.
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightedGroup {
    /// Name of a [`TargetGroup`] in the same [`Config`].
    pub target_group: String,
    /// Relative weight.
    pub weight: u32,
}

/// A named set of targets with one health check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetGroup {
    /// Name, unique in the config; the `target_group` label of metrics.
    pub name: String,
    /// Health check for every target; `None` treats targets as healthy at once.
    pub health_check: Option<HealthCheck>,
    /// Where the group's tasks listen.
    pub targets: Vec<Endpoint>,
}

/// Where a target listens.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
    },
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(addr) => write!(f, "{addr}"),
            Endpoint::Netns { path, port } => write!(f, "netns:{}:{port}", path.display()),
        }
    }
}

/// An HTTP health check, as on an ALB target group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    /// Path requested with `GET` (default `/`).
    pub path: String,
    /// Time between checks of one target (default 2 s).
    pub interval: Duration,
    /// Time allowed for one check, connect included (default 1 s).
    pub timeout: Duration,
    /// Consecutive successes that make a target healthy (default 2).
    pub healthy_threshold: u32,
    /// Consecutive failures that make a target unhealthy (default 3).
    pub unhealthy_threshold: u32,
    /// Status codes that count as success, as inclusive ranges (default 200-399).
    pub success_codes: Vec<(u16, u16)>,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
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
