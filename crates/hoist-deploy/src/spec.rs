//! The service definition: what a user writes (a YAML file, later an environment of
//! `hoist.yml`) and what a deployment records. Parsing and validation only, no I/O
//! beyond the text handed in.
//!
//! Values are checked while they are read, so a bad value is reported at its line
//! and column together with its field path (`deployment.strategy.max_percent`).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A service, as in ECS: a named set of identical tasks behind a listener.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Service name: `[a-z0-9][a-z0-9-]*`, at most 63 characters.
    pub name: Name,
    /// Image reference as written (a name in the local store, a registry reference,
    /// or `name@sha256:...`). A deployment pins it to a manifest digest.
    pub image: String,
    /// Desired number of tasks (default 1).
    #[serde(default = "default_count")]
    pub count: u32,
    /// The port the container listens on (inside its own network namespace).
    /// Default: the image's single exposed TCP port.
    #[serde(default)]
    pub port: Option<Port>,
    /// Replaces the image's ENTRYPOINT.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the image's CMD.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Environment variables, added to the image's.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Environment variables whose values come from hoist's secret store:
    /// `VARIABLE: secret-name`. Injected at start; never logged or shown.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// User to run as (overrides the image's USER).
    #[serde(default)]
    pub user: Option<String>,
    /// Mount the root file system read-only.
    #[serde(default)]
    pub read_only: bool,
    /// Resource limits.
    #[serde(default)]
    pub limits: LimitsSpec,
    /// Outbound network (default none: only the load balancer reaches the task).
    #[serde(default)]
    pub network: NetworkMode,
    /// Time between SIGTERM and SIGKILL when a task is stopped (default 30s).
    #[serde(default = "default_stop_timeout", with = "human")]
    pub stop_timeout: Duration,
    /// How long a deregistered task keeps its in-flight requests and WebSockets
    /// before they are cut (an ALB's deregistration delay; default 30s; ends early
    /// once the task is idle).
    #[serde(default = "default_drain_timeout", with = "human")]
    pub drain_timeout: Duration,
    /// The HTTP health check. When the file gives none, the image's
    /// `HEALTHCHECK` is used, run inside each task by its helper (`HEALTHCHECK
    /// NONE` disables it); with neither, a task is healthy once it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckSpec>,
    /// Where the service is served.
    pub listener: ListenerSpec,
    /// How new versions are rolled out.
    #[serde(default)]
    pub deployment: DeploymentSpec,
}

/// The default `count`: one task.
pub fn default_count() -> u32 {
    1
}

/// The default `drain_timeout`: 30s, as an ALB's deregistration delay is often set.
pub fn default_drain_timeout() -> Duration {
    Duration::from_secs(30)
}

/// The default `stop_timeout`: 30s between SIGTERM and SIGKILL, as ECS.
pub fn default_stop_timeout() -> Duration {
    Duration::from_secs(30)
}

/// A service name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    /// Checks `s` against `[a-z0-9][a-z0-9-]{0,62}`.
    pub fn new(s: &str) -> Result<Name, String> {
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-');
        if ok {
            Ok(Name(s.to_owned()))
        } else {
            Err(format!(
                "invalid service name {s:?}: use 1 to 63 of a-z, 0-9 and '-', not starting with '-'"
            ))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Name::new(&s).map_err(serde::de::Error::custom)
    }
}

/// A TCP port, 1 to 65535.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Port(pub u16);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u16::deserialize(d)? {
            0 => Err(serde::de::Error::custom(
                "port 0 is not a port (use 1 to 65535)",
            )),
            p => Ok(Port(p)),
        }
    }
}

/// cgroup limits.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Memory limit: bytes, or with a unit (`256m`, `256MiB`, `1g`).
    #[serde(default)]
    pub memory: Option<ByteSize>,
    /// CPU quota in CPUs (`0.5`).
    #[serde(default)]
    pub cpus: Option<f64>,
    /// Maximum number of processes.
    #[serde(default)]
    pub pids: Option<i64>,
}

/// A size in bytes, written with an optional unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `1234`, `64k`, `256m`, `256MiB`, `1g`, `1GB` (powers of 1024).
    pub fn parse(s: &str) -> Result<ByteSize, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num.parse().map_err(|_| {
            format!("invalid size {s:?}: expected a number with an optional unit like 256m")
        })?;
        let shift = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 0,
            "k" | "kb" | "kib" => 10,
            "m" | "mb" | "mib" => 20,
            "g" | "gb" | "gib" => 30,
            other => {
                return Err(format!(
                    "invalid size unit {other:?} in {s:?}: use k, m or g"
                ))
            }
        };
        n.checked_mul(1u64 << shift)
            .map(ByteSize)
            .ok_or_else(|| format!("size {s:?} is too large"))
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => ByteSize::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// Outbound network of a service's tasks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Loopback only; the load balancer connects inside the task's namespace.
    #[default]
    None,
    /// Loopback plus outbound connections (through pasta).
    Outbound,
}

/// An HTTP health check, tighter than an ALB's by default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthCheckSpec {
    /// Path requested with GET (default `/`).
    pub path: String,
    /// Between checks (default 2s).
    #[serde(with = "human")]
    pub interval: Duration,
    /// Per check (default 1s).
    #[serde(with = "human")]
    pub timeout: Duration,
    /// Successes in a row that make a task healthy (default 2).
    pub healthy_threshold: Threshold,
    /// Failures in a row that make a task unhealthy (default 3).
    pub unhealthy_threshold: Threshold,
}

impl Default for HealthCheckSpec {
    fn default() -> Self {
        HealthCheckSpec {
            path: "/".to_owned(),
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            healthy_threshold: Threshold(2),
            unhealthy_threshold: Threshold(3),
        }
    }
}

/// A count from 1 to 10, as an ALB accepts for thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Threshold(pub u32);

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u32::deserialize(d)? {
            n @ 1..=10 => Ok(Threshold(n)),
            n => Err(serde::de::Error::custom(format!(
                "threshold {n} is out of range (1 to 10)"
            ))),
        }
    }
}

/// Where and for which requests a service is served.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerSpec {
    /// Address and port, shared by every service that names it.
    pub addr: SocketAddr,
    /// Host condition (`api.example.com`, `*.example.com`); none matches any host.
    #[serde(default)]
    pub host: Option<String>,
    /// Path prefix (default `/`).
    #[serde(default = "default_path")]
    pub path: String,
    /// Serve HTTPS (HTTP/2 and HTTP/1.1) with this certificate, as an ALB HTTPS
    /// listener. Services sharing the address share the certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
}

/// A listener's certificate: PEM files on this machine (a relative path is taken
/// from the service file's directory).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    /// The certificate chain, leaf first.
    pub cert: std::path::PathBuf,
    /// The private key.
    pub key: std::path::PathBuf,
}

fn default_path() -> String {
    "/".to_owned()
}

/// How a new version replaces the running one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DeploymentSpec {
    /// The strategy (default rolling 100/200).
    pub strategy: Strategy,
    /// Roll back when this many new tasks fail to start or fail their health
    /// checks. Default as ECS: half the desired count, at least 3, at most 200.
    /// `0` turns the circuit breaker off.
    pub circuit_breaker: Option<u32>,
    /// Roll back when the new version's 5xx ratio goes over a limit.
    pub error_rate: Option<ErrorRate>,
}

/// The error-rate alarm of a deployment, from the proxy's own counters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorRate {
    /// Highest acceptable share of 5xx answers from the new version, in percent.
    pub max_percent: f64,
    /// Requests needed before the ratio is judged (default 20).
    #[serde(default = "default_min_requests")]
    pub min_requests: u64,
}

fn default_min_requests() -> u64 {
    20
}

/// Deployment strategies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StrategyFields", into = "StrategyFields")]
pub enum Strategy {
    /// ECS's rolling update.
    Rolling {
        /// Tasks that must stay healthy during the update, in percent of the
        /// desired count, rounded up (default 100).
        min_healthy_percent: Percent,
        /// Tasks allowed to run during the update, in percent of the desired
        /// count, rounded down (default 200).
        max_percent: u32,
    },
    /// Start all new tasks, shift all traffic at once, keep the old ones through
    /// the bake time.
    BlueGreen {
        /// How long the old version stays ready to take traffic back (default 0s).
        bake: Duration,
        /// A listener that serves the new version alone before the shift.
        test_listener: Option<SocketAddr>,
    },
    /// Shift `percent` of the traffic, bake, then shift the rest and bake again
    /// (CodeDeploy's ECSCanary10Percent5Minutes is `percent: 10, bake: 5m`).
    Canary {
        /// Share of the first step.
        percent: Percent,
        /// Time after each step.
        bake: Duration,
    },
    /// Shift `percent` more traffic every `interval` until all of it
    /// (ECSLinear10PercentEvery1Minutes is `percent: 10, interval: 1m`).
    Linear {
        /// Share added per step.
        percent: Percent,
        /// Time after each step.
        interval: Duration,
    },
}

impl Default for Strategy {
    fn default() -> Self {
        Strategy::Rolling {
            min_healthy_percent: default_min_healthy(),
            max_percent: default_max_percent(),
        }
    }
}

/// The command-line form of a strategy (`hoist deploy --strategy`):
///
/// - `rolling` or `rolling:MIN%:MAX%` (ECS's minimumHealthyPercent and maximumPercent)
/// - `blue-green` or `blue-green:BAKE`
/// - `canary:PERCENT%:BAKE` (CodeDeploy's ECSCanary10Percent5Minutes is `canary:10%:5m`)
/// - `linear:PERCENT%:INTERVAL` (ECSLinear10PercentEvery1Minutes is `linear:10%:1m`)
impl std::str::FromStr for Strategy {
    type Err = String;

    fn from_str(s: &str) -> Result<Strategy, String> {
        let mut parts = s.split(':');
        let kind = parts.next().unwrap_or_default();
        let args: Vec<&str> = parts.collect();
        let usage = "write rolling, rolling:100%:200%, blue-green, blue-green:30s, canary:10%:30s or linear:25%:10s";
        let percent = |v: &str| -> Result<u32, String> {
            let n = v.strip_suffix('%').unwrap_or(v);
            n.parse::<u32>()
                .map_err(|_| format!("strategy {s:?}: {v:?} is not a percentage"))
        };
        let share = |v: &str| -> Result<Percent, String> {
            match percent(v)? {
                n @ 0..=100 => Ok(Percent(n)),
                n => Err(format!(
                    "strategy {s:?}: {n}% is not a share of the traffic (0 to 100)"
                )),
            }
        };
        let duration = |v: &str| -> Result<Duration, String> {
            humantime::parse_duration(v).map_err(|e| {
                format!("strategy {s:?}: invalid duration {v:?} ({e}): write it like 2s, 500ms or 1m30s")
            })
        };
        let strategy = match (kind, args.as_slice()) {
            ("rolling", []) => Strategy::default(),
            ("rolling", [min, max]) => Strategy::Rolling {
                min_healthy_percent: share(min)?,
                max_percent: percent(max)?,
            },
            ("blue-green", []) => Strategy::BlueGreen {
                bake: Duration::ZERO,
                test_listener: None,
            },
            ("blue-green", [bake]) => Strategy::BlueGreen {
                bake: duration(bake)?,
                test_listener: None,
            },
            ("canary", [pct, bake]) => Strategy::Canary {
                percent: share(pct)?,
                bake: duration(bake)?,
            },
            ("linear", [pct, interval]) => Strategy::Linear {
                percent: share(pct)?,
                interval: duration(interval)?,
            },
            ("rolling" | "blue-green" | "canary" | "linear", _) => {
                return Err(format!("strategy {s:?}: wrong number of parts; {usage}"))
            }
            _ => return Err(format!("unknown strategy {kind:?}; {usage}")),
        };
        Ok(strategy)
    }
}

/// The written form of [`Strategy`]: one flat mapping, so that a bad value is
/// reported at its own line; fields that do not belong to the `type` are refused.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StrategyFields {
    #[serde(rename = "type")]
    kind: StrategyKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_healthy_percent: Option<Percent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_percent: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "human_opt")]
    bake: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    test_listener: Option<SocketAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    percent: Option<Percent>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "human_opt")]
    interval: Option<Duration>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum StrategyKind {
    #[default]
    Rolling,
    BlueGreen,
    Canary,
    Linear,
}

impl TryFrom<StrategyFields> for Strategy {
    type Error = String;

    fn try_from(f: StrategyFields) -> Result<Self, String> {
        let kind = f.kind;
        let name = serde_json::to_value(kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let refuse = |field: &str, present: bool| -> Result<(), String> {
            if present {
                Err(format!("`{field}` does not apply to strategy type {name}"))
            } else {
                Ok(())
            }
        };
        let need = |field: &str| format!("strategy type {name} needs `{field}`");
        Ok(match kind {
            StrategyKind::Rolling => {
                refuse("bake", f.bake.is_some())?;
                refuse("test_listener", f.test_listener.is_some())?;
                refuse("percent", f.percent.is_some())?;
                refuse("interval", f.interval.is_some())?;
                Strategy::Rolling {
                    min_healthy_percent: f.min_healthy_percent.unwrap_or_else(default_min_healthy),
                    max_percent: f.max_percent.unwrap_or_else(default_max_percent),
                }
            }
            StrategyKind::BlueGreen => {
                refuse("min_healthy_percent", f.min_healthy_percent.is_some())?;
                refuse("max_percent", f.max_percent.is_some())?;
                refuse("percent", f.percent.is_some())?;
                refuse("interval", f.interval.is_some())?;
                Strategy::BlueGreen {
                    bake: f.bake.unwrap_or_default(),
                    test_listener: f.test_listener,
                }
            }
            StrategyKind::Canary => {
                refuse("min_healthy_percent", f.min_healthy_percent.is_some())?;
                refuse("max_percent", f.max_percent.is_some())?;
                refuse("test_listener", f.test_listener.is_some())?;
                refuse("interval", f.interval.is_some())?;
                Strategy::Canary {
                    percent: f.percent.ok_or_else(|| need("percent"))?,
                    bake: f.bake.ok_or_else(|| need("bake"))?,
                }
            }
            StrategyKind::Linear => {
                refuse("min_healthy_percent", f.min_healthy_percent.is_some())?;
                refuse("max_percent", f.max_percent.is_some())?;
                refuse("test_listener", f.test_listener.is_some())?;
                refuse("bake", f.bake.is_some())?;
                Strategy::Linear {
                    percent: f.percent.ok_or_else(|| need("percent"))?,
                    interval: f.interval.ok_or_else(|| need("interval"))?,
                }
            }
        })
    }
}

impl From<Strategy> for StrategyFields {
    fn from(s: Strategy) -> StrategyFields {
        match s {
            Strategy::Rolling {
                min_healthy_percent,
                max_percent,
            } => StrategyFields {
                kind: StrategyKind::Rolling,
                min_healthy_percent: Some(min_healthy_percent),
                max_percent: Some(max_percent),
                ..StrategyFields::default()
            },
            Strategy::BlueGreen {
                bake,
                test_listener,
            } => StrategyFields {
                kind: StrategyKind::BlueGreen,
                bake: Some(bake),
                test_listener,
                ..StrategyFields::default()
            },
            Strategy::Canary { percent, bake } => StrategyFields {
                kind: StrategyKind::Canary,
                percent: Some(percent),
                bake: Some(bake),
                ..StrategyFields::default()
            },
            Strategy::Linear { percent, interval } => StrategyFields {
                kind: StrategyKind::Linear,
                percent: Some(percent),
                interval: Some(interval),
                ..StrategyFields::default()
            },
        }
    }
}

fn default_min_healthy() -> Percent {
    Percent(100)
}

fn default_max_percent() -> u32 {
    200
}

/// A share from 0 to 100.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Percent(pub u32);

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u32::deserialize(d)? {
            n @ 0..=100 => Ok(Percent(n)),
            n => Err(serde::de::Error::custom(format!(
                "{n} is not a percentage (0 to 100)"
            ))),
        }
    }
}

/// A problem in a service file.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {message}", location.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
pub struct SpecError {
    /// The file, as named by the caller.
    pub file: String,
    /// Line and column, when known.
    pub location: Option<(usize, usize)>,
    /// What is wrong, with the field path.
    pub message: String,
}

impl ServiceSpec {
    /// Parses and validates a service file's text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<ServiceSpec, SpecError> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        let spec: ServiceSpec = serde_path_to_error::deserialize(de).map_err(|e| {
            let problem = YamlProblem::new(text, e);
            SpecError {
                file: file.to_owned(),
                location: problem.location,
                message: if problem.path.is_empty() {
                    problem.message
                } else {
                    format!("{}: {}", problem.path, problem.message)
                },
            }
        })?;
        spec.validate().map_err(|message| SpecError {
            file: file.to_owned(),
            location: None,
            message,
        })?;
        Ok(spec)
    }

    /// A service with every default, for `hoist deploy IMAGE --service NAME
    /// --listen ADDR` without a file.
    pub fn new(name: Name, image: &str, listen: SocketAddr) -> ServiceSpec {
        ServiceSpec {
            name,
            image: image.to_owned(),
            count: default_count(),
            port: None,
            entrypoint: None,
            command: None,
            env: BTreeMap::new(),
            secrets: BTreeMap::new(),
            user: None,
            read_only: false,
            limits: LimitsSpec::default(),
            network: NetworkMode::default(),
            stop_timeout: default_stop_timeout(),
            drain_timeout: default_drain_timeout(),
            health_check: None,
            listener: ListenerSpec {
                addr: listen,
                host: None,
                path: default_path(),
                tls: None,
            },
            deployment: DeploymentSpec::default(),
        }
    }

    /// Checks that involve more than one field.
    pub fn validate(&self) -> Result<(), String> {
        if let Strategy::Rolling {
            min_healthy_percent,
            max_percent,
        } = &self.deployment.strategy
        {
            let count = self.count;
            let min = ceil_percent(count, min_healthy_percent.0);
            let max = floor_percent(count, *max_percent);
            if count > 0 && max <= count && min >= count {
                return Err(format!(
                    "deployment.strategy: max_percent {max_percent} allows no task above the {min} that must stay healthy (min_healthy_percent {}); a rolling update could never start",
                    min_healthy_percent.0
                ));
            }
            if count > 0 && max == 0 {
                return Err(format!(
                    "deployment.strategy.max_percent: {max_percent} allows no task at all for count {count}"
                ));
            }
        }
        if let Strategy::Linear { percent, .. } = &self.deployment.strategy {
            if percent.0 == 0 {
                return Err(
                    "deployment.strategy.percent: a linear step of 0% never finishes".to_owned(),
                );
            }
        }
        if let Some(hc) = &self.health_check {
            if !hc.path.starts_with('/') {
                return Err(format!(
                    "health_check.path: {:?} must start with '/'",
                    hc.path
                ));
            }
            if hc.timeout >= hc.interval {
                return Err(format!(
                    "health_check.timeout: {} must be shorter than the interval ({})",
                    humantime::format_duration(hc.timeout),
                    humantime::format_duration(hc.interval)
                ));
            }
        }
        if !self.listener.path.starts_with('/') {
            return Err(format!(
                "listener.path: {:?} must start with '/'",
                self.listener.path
            ));
        }
        for key in self.env.keys().chain(self.secrets.keys()) {
            if key.is_empty() || key.contains('=') {
                return Err(format!("env: invalid variable name {key:?}"));
            }
        }
        if let Some(k) = self.secrets.keys().find(|k| self.env.contains_key(*k)) {
            return Err(format!(
                "secrets.{k}: also set in env; a variable comes from one place"
            ));
        }
        if let Strategy::BlueGreen {
            test_listener: Some(t),
            ..
        } = &self.deployment.strategy
        {
            if *t == self.listener.addr {
                return Err(format!(
                    "deployment.strategy.test_listener: {t} is the service's own listener"
                ));
            }
        }
        if let Some(rate) = &self.deployment.error_rate {
            if !(0.0..=100.0).contains(&rate.max_percent) {
                return Err(format!(
                    "deployment.error_rate.max_percent: {} is not a percentage",
                    rate.max_percent
                ));
            }
        }
        Ok(())
    }

    /// The circuit breaker's threshold: as configured, else ECS's rule.
    pub fn failure_threshold(&self) -> u32 {
        self.deployment
            .circuit_breaker
            .unwrap_or_else(|| (self.count.div_ceil(2)).clamp(3, 200))
    }
}

/// `ceil(count * percent / 100)`.
pub fn ceil_percent(count: u32, percent: u32) -> u32 {
    (u64::from(count) * u64::from(percent)).div_ceil(100) as u32
}

/// `floor(count * percent / 100)`.
pub fn floor_percent(count: u32, percent: u32) -> u32 {
    (u64::from(count) * u64::from(percent) / 100) as u32
}

/// A YAML file's first syntax or type error, taken apart: the field path, the
/// line and column of the field, and the message without either.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YamlProblem {
    /// The field path (`deployment.strategy.max_percent`, `env[0].name`); empty
    /// for the document itself.
    pub path: String,
    /// Line and column (from 1), when the parser knows them.
    pub location: Option<(usize, usize)>,
    /// What is wrong, without the path and the location.
    pub message: String,
}

impl YamlProblem {
    /// Takes apart an error of `serde_path_to_error::deserialize` over a
    /// `serde_yaml_ng::Deserializer` reading `text`. Shared with the other YAML
    /// files hoist reads (`hoist.yml`), so that they report alike.
    pub fn new(text: &str, e: serde_path_to_error::Error<serde_yaml_ng::Error>) -> YamlProblem {
        let mut path = e.path().to_string();
        if path == "." {
            path.clear();
        }
        let inner = e.into_inner();
        let location = inner
            .location()
            .map(|l| refine_location(text, &path, (l.line(), l.column())));
        let mut message = strip_location(&inner.to_string());
        // serde_yaml_ng prefixes its own (shorter) path; the full one is shown.
        if let Some((prefix, rest)) = message.split_once(": ") {
            if !prefix.contains(' ') && path.starts_with(prefix) {
                message = rest.to_owned();
            }
        }
        YamlProblem {
            path,
            location,
            message,
        }
    }
}

/// serde_yaml_ng places a value's error at the start of the mapping holding it;
/// the key itself is on that line or below it, so look for it there.
fn refine_location(text: &str, path: &str, (line, col): (usize, usize)) -> (usize, usize) {
    let Some(key) = path
        .rsplit('.')
        .next()
        .filter(|k| !k.is_empty() && *k != "?")
    else {
        return (line, col);
    };
    for (n, l) in text.lines().enumerate().skip(line.saturating_sub(1)) {
        let mut from = 0;
        while let Some(i) = l[from..].find(key) {
            let at = from + i;
            let before_ok = at == 0 || !is_key_char(l.as_bytes()[at - 1]);
            let after = l[at + key.len()..].trim_start();
            if before_ok && after.starts_with(':') {
                return (n + 1, at + 1);
            }
            from = at + key.len();
        }
    }
    (line, col)
}

fn is_key_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// serde_yaml's messages end in "at line L column C"; the location is shown apart.
fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// Durations written as humantime strings (`2s`, `1m30s`, `500ms`), for
/// `#[serde(with = "human")]`.
pub mod human {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `d` as `1m 30s`.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    /// Reads `2s`, `500ms`, `1m30s`; anything else is an error naming the value.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {s:?} ({e}): write it like 2s, 500ms or 1m30s"
            ))
        })
    }
}

/// Optional humantime durations, for `#[serde(default, with = "human_opt")]`.
pub mod human_opt {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    /// Writes `Some(d)` as [`super::human`] does, `None` as null.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::human::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    /// Reads a present value as [`super::human`] does.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::human::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MINIMAL: &str = "name: web\nimage: web:1\nlistener:\n  addr: 127.0.0.1:8080\n";

    #[test]
    fn a_minimal_file_gets_the_documented_defaults() {
        let s = ServiceSpec::parse("web.yml", MINIMAL).unwrap();
        assert_eq!(s.count, 1);
        assert_eq!(s.port, None);
        assert_eq!(s.network, NetworkMode::None);
        assert_eq!(s.stop_timeout, Duration::from_secs(30));
        assert_eq!(s.drain_timeout, Duration::from_secs(30));
        // No HTTP check: the image's HEALTHCHECK, or healthy once running.
        assert_eq!(s.health_check, None);
        let given =
            ServiceSpec::parse("web.yml", &format!("{MINIMAL}health_check: {{}}\n")).unwrap();
        assert_eq!(given.health_check, Some(HealthCheckSpec::default()));
        assert_eq!(given.health_check.unwrap().interval, Duration::from_secs(2));
        assert_eq!(s.listener.path, "/");
        assert_eq!(
            s.deployment.strategy,
            Strategy::Rolling {
                min_healthy_percent: Percent(100),
                max_percent: 200
            }
        );
        assert_eq!(s.failure_threshold(), 3);
    }

    #[test]
    fn a_spec_made_in_code_equals_the_minimal_file() {
        let file = ServiceSpec::parse("web.yml", MINIMAL).unwrap();
        let made = ServiceSpec::new(
            Name::new("web").unwrap(),
            "web:1",
            "127.0.0.1:8080".parse().unwrap(),
        );
        assert_eq!(made, file);
    }

    #[test]
    fn strategies_parse_from_their_command_line_form() {
        let ok = |s: &str| s.parse::<Strategy>().unwrap();
        assert_eq!(ok("rolling"), Strategy::default());
        assert_eq!(
            ok("rolling:50%:150%"),
            Strategy::Rolling {
                min_healthy_percent: Percent(50),
                max_percent: 150
            }
        );
        assert_eq!(
            ok("blue-green:30s"),
            Strategy::BlueGreen {
                bake: Duration::from_secs(30),
                test_listener: None
            }
        );
        assert_eq!(
            ok("blue-green"),
            Strategy::BlueGreen {
                bake: Duration::ZERO,
                test_listener: None
            }
        );
        assert_eq!(
            ok("canary:10%:5m"),
            Strategy::Canary {
                percent: Percent(10),
                bake: Duration::from_secs(300)
            }
        );
        assert_eq!(
            ok("linear:25%:10s"),
            Strategy::Linear {
                percent: Percent(25),
                interval: Duration::from_secs(10)
            }
        );
        let err = |s: &str| s.parse::<Strategy>().unwrap_err();
        assert!(err("canary:10%").contains("wrong number of parts"));
        assert!(err("canary:110%:5s").contains("110% is not a share"));
        assert!(err("linear:ten:5s").contains("\"ten\" is not a percentage"));
        assert!(err("canary:10%:soon").contains("invalid duration \"soon\""));
        assert!(err("big-bang").contains("unknown strategy \"big-bang\""));
    }

    #[test]
    fn a_full_file_parses_every_field() {
        let text = r#"
name: api
image: 127.0.0.1:5000/api@sha256:0000000000000000000000000000000000000000000000000000000000000000
count: 10
port: 8080
command: ["/bin/httpd", "-f"]
env: {MODE: prod}
secrets: {DB_PASSWORD: db-password}
limits: {memory: 256m, cpus: 0.5, pids: 100}
network: outbound
stop_timeout: 5s
health_check: {path: /healthz, interval: 1s, timeout: 500ms, healthy_threshold: 3, unhealthy_threshold: 2}
listener: {addr: "0.0.0.0:80", host: "*.example.com", path: /api}
deployment:
  strategy: {type: canary, percent: 10, bake: 5m}
  circuit_breaker: 4
  error_rate: {max_percent: 5}
"#;
        let s = ServiceSpec::parse("api.yml", text).unwrap();
        assert_eq!(s.count, 10);
        assert_eq!(s.port, Some(Port(8080)));
        assert_eq!(s.limits.memory, Some(ByteSize(256 << 20)));
        assert_eq!(s.secrets["DB_PASSWORD"], "db-password");
        assert_eq!(s.network, NetworkMode::Outbound);
        assert_eq!(
            s.health_check.as_ref().unwrap().timeout,
            Duration::from_millis(500)
        );
        assert_eq!(
            s.deployment.strategy,
            Strategy::Canary {
                percent: Percent(10),
                bake: Duration::from_secs(300)
            }
        );
        assert_eq!(s.failure_threshold(), 4);
        assert_eq!(s.deployment.error_rate.as_ref().unwrap().min_requests, 20);
        // The recorded form reads back the same.
        let json = serde_json::to_string(&s).unwrap();
        let back: ServiceSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn errors_name_the_file_line_and_field() {
        let text = "name: web\nimage: web:1\nlistener:\n  addr: 127.0.0.1:8080\ndeployment:\n  strategy:\n    type: rolling\n    min_healthy_percent: 150\n";
        let e = ServiceSpec::parse("web.yml", text).unwrap_err();
        assert_eq!(e.location.map(|l| l.0), Some(8), "{e}");
        let s = e.to_string();
        assert!(s.starts_with("web.yml:8:"), "{s}");
        assert!(s.contains("deployment.strategy.min_healthy_percent"), "{s}");
        assert!(s.contains("150 is not a percentage"), "{s}");

        let e = ServiceSpec::parse("web.yml", &format!("{MINIMAL}cuont: 3\n")).unwrap_err();
        assert!(e.to_string().contains("unknown field `cuont`"), "{e}");
        assert_eq!(e.location.map(|l| l.0), Some(5), "{e}");

        let e =
            ServiceSpec::parse("web.yml", &format!("{MINIMAL}stop_timeout: soon\n")).unwrap_err();
        assert!(
            e.to_string()
                .contains("stop_timeout: invalid duration \"soon\""),
            "{e}"
        );

        let e = ServiceSpec::parse(
            "web.yml",
            "name: Web\nimage: x\nlistener: {addr: 127.0.0.1:1}\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("name: invalid service name"), "{e}");
        assert_eq!(e.location.map(|l| l.0), Some(1), "{e}");

        let e = ServiceSpec::parse("web.yml", "name: web\nlistener: {addr: 127.0.0.1:1}\n")
            .unwrap_err();
        assert!(e.to_string().contains("missing field `image`"), "{e}");

        let e = ServiceSpec::parse("web.yml", &format!("{MINIMAL}port: 0\n")).unwrap_err();
        assert!(e.to_string().contains("port: port 0"), "{e}");

        let e = ServiceSpec::parse(
            "web.yml",
            &format!("{MINIMAL}deployment: {{strategy: {{type: rolling, max_percent: 100}}}}\n"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("could never start"), "{e}");

        let e = ServiceSpec::parse(
            "web.yml",
            &format!("{MINIMAL}deployment: {{strategy: {{type: rainbow}}}}\n"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown variant `rainbow`"), "{e}");

        let e = ServiceSpec::parse(
            "web.yml",
            &format!("{MINIMAL}deployment: {{strategy: {{type: canary, percent: 10}}}}\n"),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("strategy type canary needs `bake`"),
            "{e}"
        );
        let e = ServiceSpec::parse(
            "web.yml",
            &format!("{MINIMAL}deployment: {{strategy: {{type: rolling, bake: 1s}}}}\n"),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("`bake` does not apply to strategy type rolling"),
            "{e}"
        );
    }

    #[test]
    fn rolling_bounds_that_can_progress_are_accepted() {
        for (min, max) in [(50, 100), (0, 100), (100, 150), (100, 200)] {
            let text = format!(
                "{MINIMAL}count: 4\ndeployment: {{strategy: {{type: rolling, min_healthy_percent: {min}, max_percent: {max}}}}}\n"
            );
            ServiceSpec::parse("web.yml", &text).unwrap();
        }
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(ByteSize::parse("1024").unwrap(), ByteSize(1024));
        assert_eq!(ByteSize::parse("64k").unwrap(), ByteSize(64 << 10));
        assert_eq!(ByteSize::parse("256MiB").unwrap(), ByteSize(256 << 20));
        assert_eq!(ByteSize::parse("1g").unwrap(), ByteSize(1 << 30));
        assert!(ByteSize::parse("1t").is_err());
        assert!(ByteSize::parse("m").is_err());
    }

    #[test]
    fn the_circuit_breaker_threshold_follows_ecs() {
        let mut s = ServiceSpec::parse("web.yml", MINIMAL).unwrap();
        for (count, want) in [(1, 3), (6, 3), (10, 5), (11, 6), (1000, 200)] {
            s.count = count;
            assert_eq!(s.failure_threshold(), want, "count {count}");
        }
    }
}
