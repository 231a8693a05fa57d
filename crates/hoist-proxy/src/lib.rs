//! hoist's load balancer: an HTTP/1.1 and HTTP/2 reverse proxy with weighted target
//! groups, health-checked targets, connection draining and Prometheus metrics.
//!
//! It is the data plane only: it must not start or stop containers or decide
//! deployments; the controller tells it which targets exist and their weights, and it
//! keeps serving with the last configuration it was given when the controller is gone.
//!
//! # Shape
//!
//! [`Proxy`] is the one handle. The controller builds a [`Config`] (plain data, like an
//! ALB's listeners, rules and target groups) and calls [`Proxy::apply`] whenever its
//! desired state changes; the proxy diffs it against what runs:
//!
//! - **Listeners** ([`Listener`]) accept HTTP/1.1 and HTTP/2 with prior knowledge (h2c)
//!   on one port, or HTTPS with a certificate ([`ListenerTls`]; h2 or http/1.1 by
//!   ALPN). HTTP/1.1 takes the fast path below; HTTP/2 and what the fast path leaves
//!   go to hyper-util's auto server. New addresses are bound before anything
//!   else changes, so a bind error leaves the old configuration serving. A removed
//!   listener stops accepting; its open connections finish.
//! - **Rules** ([`Rule`]) are tried in order; the first whose host ([`HostMatch`]:
//!   exact or `*.suffix`) and path prefix match forwards to a weighted list of target
//!   groups. Groups are chosen by smooth weighted round-robin (nginx's algorithm), so
//!   a 90/10 split is exact over every 100 requests rather than random; the sequence
//!   restarts on every `apply`. Within a group, targets take turns (round-robin).
//! - **Targets** ([`Endpoint`]) are a TCP address, or `127.0.0.1:PORT` inside a
//!   network namespace given by path (`/proc/PID/ns/net`, `/run/netns/NAME`): a task
//!   needs no bridge and no address. For each such target a dedicated std thread
//!   enters the namespace once (`setns(CLONE_NEWNET)`) and makes unconnected sockets on
//!   request; a socket keeps the namespace it was created in, so Tokio connects it like
//!   any other. No Tokio worker thread ever changes namespace. The thread enters the
//!   namespace at the target's first connection (health check or request) and stays
//!   there (retrying while the path cannot be opened), so the path must already name
//!   the task's namespace when the target is applied; a restarted task is a new
//!   target.
//! - **Runtimes**: [`Proxy::new`] serves on the Tokio runtime it is created in.
//!   [`Proxy::with_workers`] starts N threads, each with a current-thread runtime, its
//!   own `SO_REUSEPORT` socket per listener and its own connection pool per target
//!   (nginx's worker model); health checks and draining stay on the creating runtime.
//! - Configuration lives in an [`arc_swap::ArcSwap`]: a request reads one snapshot for
//!   its whole life, and `apply` swaps in the next one without locking or dropping
//!   requests in flight.
//!
//! # Forwarding
//!
//! Plain HTTP/1.1 requests (origin form, no body or a `Content-Length` body up to
//! 64 KiB) take the fast path, `h1`: parsed in place with `httparse`, sent to the
//! target with one write on a raw pooled connection, and answered on the client
//! connection's own task; a client connection idle for 75 s is closed. The first
//! request it does not serve (HTTP/2, HTTP/1.0, `Upgrade`, `Expect`, a chunked or
//! bigger body, an absolute URI) hands the connection, with the bytes read so far, to
//! hyper's server for the rest of its life. Both paths route, pick, retry, count and
//! drain the same way; the rest of this section holds for both. On the fast path a
//! pooled connection found closed before any response byte came back is also retried,
//! on a fresh connection, when the request is idempotent (`GET`, `HEAD`, `PUT`,
//! `DELETE`, `OPTIONS`, `TRACE`) or was never written; a close-delimited response is
//! passed on with `Connection: close`, and interim `1xx` responses are dropped. A
//! client that closes its connection while its request waits for the answer is
//! noticed at once (nginx's 499): the target's connection is closed and the request
//! leaves the in-flight count, so a drain does not wait for it.
//!
//! Requests go to targets over HTTP/1.1 on keep-alive connections, pooled per target:
//! a connection goes back to the pool the moment its response body ends (the body
//! wrapper does it, no task per request), is reused last-in first-out, and is closed
//! after 15 s idle or when its target drains. Health checks use their own short-lived
//! connections. `X-Forwarded-For` gets the client
//! address appended, `X-Forwarded-Proto` is set to `http` and `X-Forwarded-Host` to the
//! host the client asked for; hop-by-hop headers (`Connection` and the headers it names,
//! `Keep-Alive`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`, `Proxy-*`) are not
//! forwarded in either direction, except that an HTTP/1.1 `Upgrade` (WebSocket) is
//! passed on over a fresh connection and, on `101`, both sides are joined byte for byte.
//!
//! A request whose connection to a target could not be *established* (refused, timed
//! out, handshake failed, or a pooled connection that closed before the request was
//! written) is retried on another target, up to 3 targets. A request whose bytes may
//! have reached a target is never retried. The client gets `503` when no target is
//! registered, `502` when none could be reached or the target failed mid-answer, and
//! `504` when connecting or the response head took longer than [`Timeouts`] allow;
//! `404` when no rule matches. Those bodies are one short line of text.
//!
//! # Health (ALB-like)
//!
//! Each target of a group with a [`HealthCheck`] is probed on its own connection
//! (`GET path`, defaults interval 2 s, timeout 1 s, healthy 2, unhealthy 3, success
//! 200-399). A new target starts [`HealthState::Initial`] and takes no traffic until
//! `healthy_threshold` consecutive successes make it `Healthy`; `unhealthy_threshold`
//! consecutive failures make it `Unhealthy`, and `healthy_threshold` successes bring it
//! back. Only healthy targets receive traffic, with the ALB's fail-open rule: when no
//! group of a rule has a healthy target, requests go to all registered targets of the
//! groups by weight, rather than failing. One deliberate difference from an ALB: when
//! one weighted group has no healthy target but another has, the other takes all the
//! traffic (a broken canary sheds its share instead of failing open). A group without
//! a health check counts its targets healthy at once. [`Proxy::target_health`] is what
//! the controller polls while it waits for new tasks.
//!
//! A group whose check is [`HealthCheckMode::Reported`] sends no probes: each
//! target's own supervisor (a task's helper running the image's `HEALTHCHECK`)
//! writes its verdict to the file named by the target's
//! [`Endpoint::Netns`] `health_file`, and the proxy reads that file every interval
//! and feeds the same thresholds and states, so `/targets` and everything
//! downstream treat such targets like any other. The proxy never asks the
//! controller: the file is written beside the task, by the task's helper.
//!
//! # Draining
//!
//! A target missing from the next config stops getting new requests at once, its health
//! checks stop and its idle pooled connections close. Requests in flight (until their
//! response body ends) and open WebSockets continue until they finish or
//! [`Config::drain_timeout`] (default 30 s) passes, when whatever is left is cut; the
//! drain ends as soon as the target is idle. [`Proxy::draining`] lists what is still
//! draining, so the controller stops a task only after it is gone from that list. A
//! target that comes back while draining is simply reused.
//!
//! # Metrics
//!
//! [`Proxy::metrics_text`] (and `GET /metrics` on [`Proxy::serve_admin`]'s listener)
//! gives Prometheus/OpenMetrics text: `hoist_proxy_requests_total{service,
//! target_group,target,code}` by status class, `hoist_proxy_request_duration_seconds`
//! (to the response head), `hoist_proxy_upstream_connections`,
//! `hoist_proxy_client_connections` and `hoist_proxy_target_healthy`.
//! [`Proxy::request_counts`] snapshots per (service, target group) counters; the
//! controller diffs two snapshots ([`RequestCounts::since`]) for the 5xx ratio of a
//! bake window.
//!
//! # As a process: the file contract and the admin JSON
//!
//! The controller and the proxy run apart: `hoist proxy` runs
//! [`watch::run_from_file`], which serves what a JSON file says and keeps serving
//! while the controller is down. [`Config`] and everything in it are serde types; the
//! file is their JSON form: durations as integer milliseconds in `*_ms` fields,
//! endpoints as `{"tcp": "127.0.0.1:8080"}` or `{"netns": {"path":
//! "/proc/123/ns/net", "port": 8080}}`, hosts as `"api.example.com"` or
//! `"*.example.com"`, success codes as `"200-399"`. Missing optional fields take their
//! defaults (`{}` is a valid, empty configuration) and unknown fields are errors. The
//! top-level `generation` is the writer's version number; [`Proxy::applied_generation`]
//! reports the one being served.
//!
//! The writer replaces the file atomically (temp file and rename, as
//! [`watch::write_config`] does). The proxy notices within [`watch::POLL_INTERVAL`]
//! (or at once on `SIGHUP`); a file that does not parse or apply is logged, shown in
//! `GET /status`, and the last good configuration keeps serving. Next to the file,
//! `proxy.lock` (an exclusive `flock`, holding the pid) keeps a second proxy off the
//! same directory and `admin.addr` gives the bound admin address. The module
//! [`watch`] states the whole contract.
//!
//! The admin listener ([`Proxy::serve_admin`]) answers, besides `/metrics` and
//! `/health`, in JSON: `GET /status` (`{"generation", "error", "pid", "listeners"}`),
//! `GET /targets` (`[{"target_group", "endpoint", "state", "reason"}]`), `GET
//! /draining` (`[{"target_group", "endpoint", "in_flight", "remaining_ms"}]`) and `GET
//! /counts` (`[{"service", "target_group", "total", "1xx", .., "5xx"}]`).
//! [`admin::AdminClient`] reads them into the same types; it is what the controller
//! uses.
//!
//! # Invariants
//!
//! - The proxy never waits on the controller: `apply` is synchronous and bounded, and
//!   nothing on the request path calls out of the crate.
//! - Depends on no other hoist crate.
//! - The proxy never writes its configuration file; only the controller does.
//! - A request holds an in-flight slot on its target from before it connects until its
//!   response body ends (or its WebSocket closes); draining waits on exactly that.
//! - A target is identified by (target group name, endpoint); the same endpoint in two
//!   groups is two targets with their own health and pool.
//!
//! # Not there yet
//!
//! HTTP/2 to targets (targets are spoken to in HTTP/1.1); WebSockets over
//! HTTP/2 (RFC 8441); passive health (outlier detection); per-rule timeouts; sticky
//! sessions; a failed apply is retried only when the file changes or on `SIGHUP`, not
//! on a timer.

pub mod admin;
mod balance;
mod config;
mod forward;
mod h1;
mod metrics;
mod netns;
mod target;
pub mod watch;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

pub use config::{
    Config, Endpoint, HealthCheck, HealthCheckMode, HostMatch, Listener, ListenerTls, Rule,
    TargetGroup, Timeouts, WeightedGroup,
};
pub use metrics::{RequestCounts, StatusCounts};

use balance::SmoothWrr;
use forward::{CompiledRule, GroupRuntime, ListenerRoutes, RouteState};
use metrics::Metrics;
use target::TargetRuntime;

/// What went wrong applying a configuration or starting a listener. A failed
/// [`Proxy::apply`] changes nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// [`Proxy::new`] was called outside a Tokio runtime.
    #[error("hoist-proxy must be started inside a Tokio runtime")]
    NoRuntime,
    /// A listener address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// Two listeners have the same address.
    #[error("listener {0} appears twice in the configuration")]
    DuplicateListener(SocketAddr),
    /// Two target groups have the same name.
    #[error("target group {0:?} appears twice in the configuration")]
    DuplicateTargetGroup(String),
    /// A rule forwards to a target group that is not in the configuration.
    #[error("rule of service {service:?} on listener {listener} forwards to unknown target group {target_group:?}")]
    UnknownTargetGroup {
        /// The rule's service.
        service: String,
        /// The listener holding the rule.
        listener: SocketAddr,
        /// The missing group's name.
        target_group: String,
    },
    /// A health check has a zero threshold, interval or timeout, or a path not
    /// starting with `/`.
    #[error("target group {target_group:?}: invalid health check: {problem}")]
    InvalidHealthCheck {
        /// The group.
        target_group: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// A listener's certificate or key cannot be used.
    #[error("listener {listener}: {source}")]
    Tls {
        /// The listener.
        listener: SocketAddr,
        /// What is wrong with its certificate or key.
        #[source]
        source: hoist_tls::TlsError,
    },
    /// A worker thread or its runtime could not be started.
    #[error("cannot start a proxy worker thread: {0}")]
    Worker(#[source] io::Error),
    /// The thread that enters a target's network namespace could not be started.
    #[error(
        "target {endpoint} of group {target_group:?}: cannot start its namespace thread: {source}"
    )]
    NetnsThread {
        /// The group.
        target_group: String,
        /// The target.
        endpoint: Endpoint,
        /// The system error.
        #[source]
        source: io::Error,
    },
}

/// Health of a registered target, as [`Proxy::target_health`] reports it. In JSON:
/// `"initial"`, `"healthy"`, `"unhealthy"`, `"draining"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// Registered, not yet passed `healthy_threshold` checks; gets no traffic (unless
    /// the rule fails open).
    Initial,
    /// Passing its health check; gets traffic.
    Healthy,
    /// Failed `unhealthy_threshold` checks in a row; gets no traffic (unless the rule
    /// fails open).
    Unhealthy,
    /// Removed from the configuration and finishing what it has in flight.
    Draining,
}

/// One target's health, from [`Proxy::target_health`] (and `GET /targets`, as
/// `{"target_group", "endpoint", "state", "reason"}`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TargetHealth {
    /// The target group.
    pub target_group: String,
    /// The target.
    pub endpoint: Endpoint,
    /// Its state.
    pub state: HealthState,
    /// Why the last check failed, while checks fail (e.g. `status 500`, `connect: ...`).
    pub reason: Option<String>,
}

/// A target still draining, from [`Proxy::draining`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrainingTarget {
    /// The target group it was removed from.
    pub target_group: String,
    /// The target.
    pub endpoint: Endpoint,
    /// Requests and WebSockets still open.
    pub in_flight: usize,
    /// When draining began.
    pub since: Instant,
    /// When what is left will be cut.
    pub deadline: Instant,
}

type TargetKey = (String, Endpoint);

struct ListenerHandle {
    local: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

/// A thread running a current-thread runtime that accepts and serves client
/// connections on its own `SO_REUSEPORT` socket.
struct Worker {
    handle: Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

#[derive(Default)]
struct Control {
    targets: HashMap<TargetKey, Arc<TargetRuntime>>,
    listeners: HashMap<SocketAddr, ListenerHandle>,
    admin: Vec<JoinHandle<()>>,
    /// Ends the admin listener's open connections when the proxy is dropped.
    admin_stop: tokio_util::sync::CancellationToken,
    /// Each target group's own drain timeout in the configuration applied last,
    /// for targets whose group is gone from the next one.
    group_drain: HashMap<String, std::time::Duration>,
}

/// The reverse proxy. Create it inside a Tokio runtime, then [`Proxy::apply`] a
/// [`Config`]. Dropping it stops its listeners and health checks and cuts the
/// connections to targets.
pub struct Proxy {
    runtime: Handle,
    workers: Vec<Worker>,
    routes: Arc<ArcSwap<RouteState>>,
    metrics: Arc<Metrics>,
    control: Arc<Mutex<Control>>,
    draining: Arc<Mutex<HashMap<TargetKey, Arc<TargetRuntime>>>>,
    status: Arc<ApplyStatus>,
}

/// What `GET /status` reports: the generation applied and the last rejection.
#[derive(Default)]
struct ApplyStatus {
    generation: AtomicU64,
    error: Mutex<Option<String>>,
}

impl ApplyStatus {
    fn error(&self) -> Option<String> {
        self.error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_error(&self, error: Option<String>) {
        *self.error.lock().unwrap_or_else(PoisonError::into_inner) = error;
    }
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("listeners", &self.listener_addrs())
            .finish_non_exhaustive()
    }
}

fn validate(config: &Config) -> Result<(), Error> {
    let mut seen = std::collections::HashSet::new();
    for l in &config.listeners {
        if !seen.insert(l.addr) {
            return Err(Error::DuplicateListener(l.addr));
        }
    }
    let mut groups = std::collections::HashSet::new();
    for g in &config.target_groups {
        if !groups.insert(g.name.as_str()) {
            return Err(Error::DuplicateTargetGroup(g.name.clone()));
        }
        if let Some(hc) = &g.health_check {
            let problem = if hc.healthy_threshold == 0 || hc.unhealthy_threshold == 0 {
                Some("thresholds must be at least 1")
            } else if hc.interval.is_zero() || hc.timeout.is_zero() {
                Some("interval and timeout must be more than 0")
            } else if hc.mode == HealthCheckMode::Http && !hc.path.starts_with('/') {
                Some("path must start with /")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(Error::InvalidHealthCheck {
                    target_group: g.name.clone(),
                    problem,
                });
            }
        }
    }
    for l in &config.listeners {
        for r in &l.rules {
            for w in &r.forward {
                if !groups.contains(w.target_group.as_str()) {
                    return Err(Error::UnknownTargetGroup {
                        service: r.service.clone(),
                        listener: l.addr,
                        target_group: w.target_group.clone(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// One listening socket, or with workers one `SO_REUSEPORT` socket per worker on the
/// same address (the kernel spreads connections over them).
fn bind_all(addr: SocketAddr, workers: usize) -> io::Result<Vec<std::net::TcpListener>> {
    if workers == 0 {
        return Ok(vec![bind(addr, false)?]);
    }
    let first = bind(addr, true)?;
    let actual = first.local_addr()?;
    let mut all = vec![first];
    for _ in 1..workers {
        all.push(bind(actual, true)?);
    }
    Ok(all)
}

fn bind(addr: SocketAddr, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

impl Proxy {
    /// Creates a proxy with no listeners. Must be called inside a Tokio runtime (any
    /// flavour); its tasks run there.
    pub fn new() -> Result<Proxy, Error> {
        Proxy::with_workers(0)
    }

    /// Like [`Proxy::new`], but client connections are accepted and served by
    /// `workers` threads, each running its own current-thread Tokio runtime with its
    /// own `SO_REUSEPORT` socket per listener and its own connection pools (nginx's
    /// worker model: no work stealing, no cross-core wake-ups on the request path).
    /// Health checks and draining still run on the calling runtime. `0` serves on the
    /// calling runtime, as [`Proxy::new`] does.
    pub fn with_workers(workers: usize) -> Result<Proxy, Error> {
        let runtime = Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let mut started = Vec::new();
        for i in 0..workers {
            let (handle_tx, handle_rx) = std::sync::mpsc::channel();
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            std::thread::Builder::new()
                .name(format!("hoist-proxy-{i}"))
                .spawn(move || {
                    target::set_worker_index(i);
                    let rt = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => {
                            let _ = handle_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = handle_tx.send(Ok(rt.handle().clone()));
                    // Runs the worker's tasks until the proxy is dropped.
                    rt.block_on(async {
                        tokio::select! { _ = stop_rx => {}, _ = timer_anchor() => {} }
                    });
                })
                .map_err(Error::Worker)?;
            let handle = handle_rx
                .recv()
                .map_err(|_| Error::Worker(io::Error::other("worker thread died")))?
                .map_err(Error::Worker)?;
            started.push(Worker {
                handle,
                stop: Some(stop_tx),
            });
        }
        let empty = RouteState {
            listeners: BTreeMap::new(),
            timeouts: Timeouts::default(),
        };
        Ok(Proxy {
            runtime,
            workers: started,
            routes: Arc::new(ArcSwap::from_pointee(empty)),
            metrics: Arc::new(Metrics::new()),
            control: Arc::new(Mutex::new(Control::default())),
            draining: Arc::new(Mutex::new(HashMap::new())),
            status: Arc::new(ApplyStatus::default()),
        })
    }

    /// Makes `config` the running configuration, live: new listeners are bound (first,
    /// so a bind error changes nothing), requests already routed finish where they are,
    /// new requests see only `config`. Targets no longer present start draining.
    ///
    /// On success [`Proxy::applied_generation`] becomes `config.generation` and
    /// [`Proxy::last_error`] is cleared (or says which HTTPS listener kept its
    /// previous certificate because its files no longer load); on failure the error
    /// is kept there.
    pub fn apply(&self, config: Config) -> Result<(), Error> {
        let generation = config.generation;
        match self.apply_config(config) {
            Ok(warnings) => {
                self.status
                    .generation
                    .store(generation, AtomicOrdering::SeqCst);
                self.status.set_error(
                    (!warnings.is_empty())
                        .then(|| format!("generation {generation}: {}", warnings.join("; "))),
                );
                Ok(())
            }
            Err(e) => {
                self.status
                    .set_error(Some(format!("generation {generation}: {e}")));
                Err(e)
            }
        }
    }

    /// The `generation` of the last configuration [`Proxy::apply`] succeeded with (0
    /// before any).
    pub fn applied_generation(&self) -> u64 {
        self.status.generation.load(AtomicOrdering::SeqCst)
    }

    /// Why the last configuration was rejected ([`Proxy::apply`] failed, or
    /// [`Proxy::reject`] was told), until a later `apply` succeeds.
    pub fn last_error(&self) -> Option<String> {
        self.status.error()
    }

    /// Records that a configuration was rejected before it reached [`Proxy::apply`]
    /// (e.g. its file did not parse), for [`Proxy::last_error`] and `GET /status`.
    /// What is served does not change.
    pub fn reject(&self, reason: impl Into<String>) {
        self.status.set_error(Some(reason.into()));
    }

    /// Applies `config`; returns what was applied with a fallback (a listener
    /// whose certificate files went bad keeps the certificate it had).
    fn apply_config(&self, config: Config) -> Result<Vec<String>, Error> {
        validate(&config)?;
        let mut warnings = Vec::new();
        // Certificates are read before anything changes. Their files live apart
        // from the configuration and may change under it: a listener that serves
        // HTTPS already keeps its certificate when the files no longer load (the
        // rest of the configuration still applies); a new one is refused.
        let mut tls = HashMap::new();
        let current = self.routes.load();
        for l in &config.listeners {
            if let Some(t) = &l.tls {
                match hoist_tls::server_config(&t.cert, &t.key, &[b"h2", b"http/1.1"]) {
                    Ok(server) => {
                        tls.insert(l.addr, hoist_tls::tokio_rustls::TlsAcceptor::from(server));
                    }
                    Err(source) => {
                        let previous = current.listeners.get(&l.addr).and_then(|r| r.tls.clone());
                        let Some(previous) = previous else {
                            return Err(Error::Tls {
                                listener: l.addr,
                                source,
                            });
                        };
                        let why = format!(
                            "listener {}: {source}; still serving the previous certificate",
                            l.addr
                        );
                        tracing::warn!("{why}");
                        warnings.push(why);
                        tls.insert(l.addr, previous);
                    }
                }
            }
        }
        drop(current);
        let _enter = self.runtime.enter();
        let mut control = self.control.lock().unwrap_or_else(PoisonError::into_inner);

        // 1. Bind listeners that are new.
        let mut new_listeners = Vec::new();
        for l in &config.listeners {
            if !control.listeners.contains_key(&l.addr) {
                let sockets =
                    bind_all(l.addr, self.workers.len()).map_err(|source| Error::Bind {
                        addr: l.addr,
                        source,
                    })?;
                new_listeners.push((l.addr, sockets));
            }
        }

        // 2. Targets: reuse what is registered or draining, create the rest.
        let mut targets: HashMap<TargetKey, Arc<TargetRuntime>> = HashMap::new();
        let mut groups: HashMap<String, Arc<GroupRuntime>> = HashMap::new();
        let mut created = Vec::new();
        for g in &config.target_groups {
            let mut members = Vec::new();
            for ep in &g.targets {
                let key = (g.name.clone(), ep.clone());
                if let Some(t) = targets.get(&key) {
                    members.push(t.clone());
                    continue;
                }
                let existing = control.targets.get(&key).cloned().or_else(|| {
                    let draining = self.draining.lock().unwrap_or_else(PoisonError::into_inner);
                    draining
                        .get(&key)
                        .filter(|t| !t.cancel.is_cancelled())
                        .cloned()
                });
                let t = match existing {
                    Some(t) => t,
                    None => {
                        let t = TargetRuntime::new(
                            &g.name,
                            ep,
                            g.health_check.clone(),
                            self.metrics.clone(),
                            self.workers.len(),
                        )
                        .map_err(|source| Error::NetnsThread {
                            target_group: g.name.clone(),
                            endpoint: ep.clone(),
                            source,
                        })?;
                        created.push(t.clone());
                        t
                    }
                };
                members.push(t.clone());
                targets.insert(key, t);
            }
            groups.insert(g.name.clone(), Arc::new(GroupRuntime::new(members)));
        }

        // Nothing can fail from here on.
        for ((group, _), t) in &targets {
            let hc = config
                .target_groups
                .iter()
                .find(|g| &g.name == group)
                .and_then(|g| g.health_check.clone());
            let was_draining = t.is_draining();
            if was_draining {
                self.draining
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .retain(|_, d| !Arc::ptr_eq(d, t));
                t.drain_generation
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                *t.drain_state.lock().unwrap_or_else(PoisonError::into_inner) = None;
                t.set_draining(false);
            }
            let changed = t.health_check.load().as_deref() != hc.as_ref();
            if changed {
                t.health_check.store(hc.map(Arc::new));
            }
            let is_new = created.iter().any(|c| Arc::ptr_eq(c, t));
            if is_new || changed || was_draining {
                t.start_health();
            }
        }

        // 3. Compile rules and swap.
        let mut listeners = BTreeMap::new();
        for l in &config.listeners {
            let rules = l
                .rules
                .iter()
                .map(|r| {
                    let gs: Vec<Arc<GroupRuntime>> = r
                        .forward
                        .iter()
                        .filter_map(|w| groups.get(&w.target_group).cloned())
                        .collect();
                    CompiledRule {
                        service: r.service.clone(),
                        host: r.host.clone(),
                        path_prefix: r.path_prefix.clone(),
                        weights: r.forward.iter().map(|w| w.weight).collect(),
                        counters: r
                            .forward
                            .iter()
                            .map(|w| self.metrics.counters(&r.service, &w.target_group))
                            .collect(),
                        no_group_counters: self.metrics.counters(&r.service, ""),
                        wrr: Mutex::new(SmoothWrr::new(gs.len())),
                        groups: gs,
                    }
                })
                .collect();
            listeners.insert(
                l.addr,
                ListenerRoutes {
                    rules,
                    tls: tls.remove(&l.addr),
                },
            );
        }
        self.routes.store(Arc::new(RouteState {
            listeners,
            timeouts: config.timeouts,
        }));

        // 4. Drain targets that are gone, for their group's drain timeout (as
        // the new configuration has it, else as the last one had it).
        let group_drain: HashMap<String, std::time::Duration> = config
            .target_groups
            .iter()
            .filter_map(|g| g.drain_timeout.map(|d| (g.name.clone(), d)))
            .collect();
        let previous = std::mem::replace(&mut control.group_drain, group_drain);
        let old = std::mem::replace(&mut control.targets, targets);
        for (key, t) in old {
            if !control.targets.contains_key(&key) {
                let in_new = config.target_groups.iter().find(|g| g.name == key.0);
                let timeout = match in_new {
                    Some(g) => g.drain_timeout,
                    None => previous.get(&key.0).copied(),
                }
                .unwrap_or(config.drain_timeout);
                self.start_drain(key, t, timeout);
            }
        }

        // 5. Listeners: stop removed, start new.
        let keep: std::collections::HashSet<SocketAddr> =
            config.listeners.iter().map(|l| l.addr).collect();
        control.listeners.retain(|addr, h| {
            let keep = keep.contains(addr);
            if !keep {
                h.tasks.iter().for_each(JoinHandle::abort);
            }
            keep
        });
        for (addr, sockets) in new_listeners {
            let local = sockets
                .first()
                .and_then(|l| l.local_addr().ok())
                .unwrap_or(addr);
            let mut tasks = Vec::new();
            for (i, std_listener) in sockets.into_iter().enumerate() {
                let handle = self
                    .workers
                    .get(i)
                    .map_or_else(|| self.runtime.clone(), |w| w.handle.clone());
                let (routes, metrics) = (self.routes.clone(), self.metrics.clone());
                tasks.push(handle.spawn(async move {
                    // Registers with the reactor of the runtime that serves it.
                    match TcpListener::from_std(std_listener) {
                        Ok(l) => accept_loop(l, addr, routes, metrics).await,
                        Err(e) => tracing::error!(%addr, error = %e, "cannot register listener"),
                    }
                }));
            }
            control
                .listeners
                .insert(addr, ListenerHandle { local, tasks });
        }
        Ok(warnings)
    }

    fn start_drain(&self, key: TargetKey, t: Arc<TargetRuntime>, timeout: std::time::Duration) {
        use std::sync::atomic::Ordering;
        t.set_draining(true);
        t.stop_health();
        let generation = t.drain_generation.fetch_add(1, Ordering::SeqCst) + 1;
        let since = Instant::now();
        let deadline = since + timeout;
        *t.drain_state.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(target::DrainState { since, deadline });
        self.draining
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.clone(), t.clone());
        let draining = self.draining.clone();
        tokio::spawn(async move {
            let idle = t.wait_idle(tokio::time::Instant::from_std(deadline)).await;
            if t.drain_generation.load(Ordering::SeqCst) != generation || !t.is_draining() {
                return; // registered again meanwhile
            }
            if !idle {
                tracing::info!(target = %t.label, in_flight = t.inflight(), "drain timeout: cutting connections");
            }
            t.cancel.cancel();
            t.forget_metrics();
            let mut d = draining.lock().unwrap_or_else(PoisonError::into_inner);
            if d.get(&key).is_some_and(|x| Arc::ptr_eq(x, &t)) {
                d.remove(&key);
            }
        });
    }

    /// The bound address of each listener, keyed by its configured address (they
    /// differ when the configured port is 0).
    pub fn listener_addrs(&self) -> BTreeMap<SocketAddr, SocketAddr> {
        let control = self.control.lock().unwrap_or_else(PoisonError::into_inner);
        control
            .listeners
            .iter()
            .map(|(a, h)| (*a, h.local))
            .collect()
    }

    /// Health of every registered target, and of draining ones as
    /// [`HealthState::Draining`], sorted by group and endpoint.
    pub fn target_health(&self) -> Vec<TargetHealth> {
        self.health_source().target_health()
    }

    /// Targets removed from the configuration that still have requests or WebSockets
    /// open (and have not reached their drain deadline), sorted by group and endpoint.
    pub fn draining(&self) -> Vec<DrainingTarget> {
        self.health_source().draining()
    }

    fn health_source(&self) -> HealthSource {
        HealthSource {
            control: self.control.clone(),
            draining: self.draining.clone(),
        }
    }

    /// All metrics in Prometheus (OpenMetrics) text format.
    pub fn metrics_text(&self) -> String {
        self.metrics.encode()
    }

    /// A snapshot of request counters per (service, target group); diff two with
    /// [`RequestCounts::since`] for a window's counts and 5xx ratio.
    pub fn request_counts(&self) -> RequestCounts {
        self.metrics.snapshot()
    }

    /// Serves `GET /metrics` (the text of [`Proxy::metrics_text`]) and `GET /health`
    /// (one line per target: group, endpoint, state) on `addr`, apart from the
    /// listeners; returns the bound address. It stops once the proxy is dropped: its
    /// task is aborted, so the listener closes at the runtime's next turn.
    ///
    /// It also answers in JSON, with the types of [`admin`]: `GET /status`
    /// ([`admin::Status`]), `GET /targets` ([`TargetHealth`] list), `GET /draining`
    /// ([`admin::Draining`] list) and `GET /counts` ([`RequestCounts`]).
    pub fn serve_admin(&self, addr: SocketAddr) -> Result<SocketAddr, Error> {
        let _enter = self.runtime.enter();
        let std_listener = bind(addr, false).map_err(|source| Error::Bind { addr, source })?;
        let local = std_listener
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?;
        let listener =
            TcpListener::from_std(std_listener).map_err(|source| Error::Bind { addr, source })?;
        let metrics = self.metrics.clone();
        let health = self.health_source();
        let apply_status = self.status.clone();
        let control = self.control.clone();
        let stop = self
            .control
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admin_stop
            .clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let metrics = metrics.clone();
                let health = health.clone();
                let apply_status = apply_status.clone();
                let control = control.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let metrics = metrics.clone();
                        let health = health.clone();
                        let apply_status = apply_status.clone();
                        let control = control.clone();
                        async move {
                            let json = |v: serde_json::Result<String>| match v {
                                Ok(body) => (200, "application/json", body),
                                Err(e) => (
                                    500,
                                    "text/plain; charset=utf-8",
                                    format!("cannot encode JSON: {e}\n"),
                                ),
                            };
                            let (status, ctype, body) = match (req.method(), req.uri().path()) {
                                (&hyper::Method::GET, "/metrics") => (
                                    200,
                                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                                    metrics.encode(),
                                ),
                                (&hyper::Method::GET, "/health") => {
                                    (200, "text/plain; charset=utf-8", health.render())
                                }
                                (&hyper::Method::GET, "/status") => {
                                    let listeners = control
                                        .lock()
                                        .unwrap_or_else(PoisonError::into_inner)
                                        .listeners
                                        .iter()
                                        .map(|(a, h)| (*a, h.local))
                                        .collect();
                                    json(serde_json::to_string(&admin::Status {
                                        generation: apply_status
                                            .generation
                                            .load(AtomicOrdering::SeqCst),
                                        error: apply_status.error(),
                                        pid: std::process::id(),
                                        listeners,
                                    }))
                                }
                                (&hyper::Method::GET, "/targets") => {
                                    json(serde_json::to_string(&health.target_health()))
                                }
                                (&hyper::Method::GET, "/draining") => {
                                    let now = Instant::now();
                                    let draining: Vec<admin::Draining> = health
                                        .draining()
                                        .into_iter()
                                        .map(|d| admin::Draining::new(d, now))
                                        .collect();
                                    json(serde_json::to_string(&draining))
                                }
                                (&hyper::Method::GET, "/counts") => {
                                    json(serde_json::to_string(&metrics.snapshot()))
                                }
                                _ => (404, "text/plain; charset=utf-8", "not found\n".to_owned()),
                            };
                            let mut resp = hyper::Response::new(Full::new(Bytes::from(body)));
                            *resp.status_mut() =
                                hyper::StatusCode::from_u16(status).unwrap_or_default();
                            resp.headers_mut().insert(
                                hyper::header::CONTENT_TYPE,
                                hyper::header::HeaderValue::from_static(ctype),
                            );
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    let conn = builder.serve_connection(TokioIo::new(stream), svc);
                    tokio::select! {
                        _ = conn => {}
                        () = stop.cancelled() => {}
                    }
                });
            }
        });
        self.control
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admin
            .push(task);
        Ok(local)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let mut control = self.control.lock().unwrap_or_else(PoisonError::into_inner);
        for (_, h) in control.listeners.drain() {
            h.tasks.iter().for_each(JoinHandle::abort);
        }
        for task in control.admin.drain(..) {
            task.abort();
        }
        control.admin_stop.cancel();
        let draining = self.draining.lock().unwrap_or_else(PoisonError::into_inner);
        for t in control.targets.values().chain(draining.values()) {
            t.stop_health();
            t.cancel.cancel();
        }
        for w in &mut self.workers {
            if let Some(stop) = w.stop.take() {
                let _ = stop.send(());
            }
        }
    }
}

#[derive(Clone)]
struct HealthSource {
    control: Arc<Mutex<Control>>,
    draining: Arc<Mutex<HashMap<TargetKey, Arc<TargetRuntime>>>>,
}

impl HealthSource {
    fn target_health(&self) -> Vec<TargetHealth> {
        let mut out: Vec<TargetHealth> = {
            let control = self.control.lock().unwrap_or_else(PoisonError::into_inner);
            control
                .targets
                .values()
                .map(|t| TargetHealth {
                    target_group: t.group.clone(),
                    endpoint: t.endpoint.clone(),
                    state: t.health(),
                    reason: t.health_reason(),
                })
                .collect()
        };
        out.extend(self.draining().into_iter().map(|d| TargetHealth {
            target_group: d.target_group,
            endpoint: d.endpoint,
            state: HealthState::Draining,
            reason: None,
        }));
        out.sort_by(|a, b| (&a.target_group, &a.endpoint).cmp(&(&b.target_group, &b.endpoint)));
        out
    }

    fn draining(&self) -> Vec<DrainingTarget> {
        let draining = self.draining.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<DrainingTarget> = draining
            .values()
            .filter_map(|t| {
                let state = t.drain_state.lock().unwrap_or_else(PoisonError::into_inner);
                state.as_ref().map(|s| DrainingTarget {
                    target_group: t.group.clone(),
                    endpoint: t.endpoint.clone(),
                    in_flight: t.inflight(),
                    since: s.since,
                    deadline: s.deadline,
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.target_group, &a.endpoint).cmp(&(&b.target_group, &b.endpoint)));
        out
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for t in self.target_health() {
            let state = format!("{:?}", t.state).to_ascii_lowercase();
            out.push_str(&format!("{}\t{}\t{}", t.target_group, t.endpoint, state));
            if let Some(r) = t.reason {
                out.push_str(&format!("\t{r}"));
            }
            out.push('\n');
        }
        out
    }
}

/// Keeps a timer due within [`TIMER_ANCHOR`] on the worker's runtime, forever.
///
/// Every request arms timeouts (connect, response head). Tokio's timer wakes its
/// driver (an eventfd write, and one more `epoll_wait` that returns at once) whenever
/// a timer is armed that is due before the earliest timer the driver saw when it last
/// parked, and "no timer at all" counts as later than any. Between bursts a worker
/// often parks with no request in flight, so without an anchor every request of the
/// next burst paid that syscall pair (a quarter of all requests under `wrk`). With a
/// timer always due sooner than any request timeout, arming one never wakes the
/// driver; the cost is one wake-up per [`TIMER_ANCHOR`].
async fn timer_anchor() {
    loop {
        tokio::time::sleep(TIMER_ANCHOR).await;
    }
}

/// The anchor's period: shorter than any sensible request or connect timeout.
const TIMER_ANCHOR: std::time::Duration = std::time::Duration::from_millis(500);

/// How long a client of an HTTPS listener gets to finish the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

async fn accept_loop(
    listener: TcpListener,
    addr: SocketAddr,
    routes: Arc<ArcSwap<RouteState>>,
    metrics: Arc<Metrics>,
) {
    let gauge = metrics
        .downstream_connections
        .get_or_create(&vec![("listener", addr.to_string())])
        .clone();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(%addr, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let routes = routes.clone();
        let metrics = metrics.clone();
        let gauge = gauge.clone();
        tokio::spawn(async move {
            gauge.inc();
            // The listener's certificate as of now: a new configuration applies to
            // the connections accepted after it.
            let tls = routes
                .load()
                .listeners
                .get(&addr)
                .and_then(|l| l.tls.clone());
            let client = h1::ClientConn {
                routes,
                metrics,
                listener: addr,
                peer: forward::forwarded_for(peer),
                https: tls.is_some(),
            };
            let served = match tls {
                None => serve_client(stream, client, false).await,
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls_stream)) => {
                            let h2 = tls_stream.get_ref().1.alpn_protocol() == Some(b"h2");
                            serve_client(tls_stream, client, h2).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            Ok(())
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            Ok(())
                        }
                    }
                }
            };
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "client connection ended with an error");
            }
            gauge.dec();
        });
    }
}

type ServeError = Box<dyn std::error::Error + Send + Sync>;

/// Serves one client connection: HTTP/1.1 on the fast path ([`h1`]) for as long as it
/// serves what comes, then (or for HTTP/2 at once) with hyper.
async fn serve_client<I>(mut io: I, client: h1::ClientConn, h2: bool) -> Result<(), ServeError>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let read = if h2 {
        bytes::BytesMut::new()
    } else {
        match h1::serve(&mut io, &client).await {
            h1::Served::Closed => return Ok(()),
            h1::Served::Handoff(read) => read,
        }
    };
    let h1::ClientConn {
        routes,
        metrics,
        listener,
        peer,
        https,
    } = client;
    let svc = service_fn(move |req| {
        forward::handle(
            routes.clone(),
            metrics.clone(),
            listener,
            peer.clone(),
            https,
            req,
        )
    });
    auto::Builder::new(TokioExecutor::new())
        .serve_connection_with_upgrades(TokioIo::new(h1::Prefixed::new(read, io)), svc)
        .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn proxy_can_be_shared_between_tasks() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<super::Proxy>();
    }
}
