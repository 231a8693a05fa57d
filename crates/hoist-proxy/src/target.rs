//! One registered target: its connection pool, in-flight count, health state and
//! draining state.

use std::cell::Cell;
use std::convert::Infallible;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use bytes::{Bytes, BytesMut};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Endpoint, HealthCheck, HealthCheckMode};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use crate::metrics::{Labels, Metrics};
use crate::netns::NetnsDialer;
use crate::HealthState;

pub(crate) type Body = BoxBody<Bytes, hyper::Error>;

/// Idle connections of one kind to one target: one pool per worker runtime (so a
/// connection is used where its task runs), each connection with when it went idle.
/// Connections are reused last-in first-out and dropped once idle for [`POOL_IDLE`]
/// or found closed by the kind's `open` test.
struct IdlePools<C>(Vec<Mutex<Vec<(C, Instant)>>>);

impl<C> IdlePools<C> {
    fn new(pools: usize) -> Self {
        IdlePools((0..pools.max(1)).map(|_| Mutex::new(Vec::new())).collect())
    }

    /// This worker's pool, locked.
    fn mine(&self) -> std::sync::MutexGuard<'_, Vec<(C, Instant)>> {
        self.0[WORKER_INDEX.with(Cell::get) % self.0.len()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn clear(&self) {
        for pool in &self.0 {
            pool.lock().unwrap_or_else(PoisonError::into_inner).clear();
        }
    }

    /// The newest connection that is still open.
    fn take(&self, open: impl Fn(&C) -> bool) -> Option<C> {
        let mut idle = self.mine();
        while let Some((conn, since)) = idle.pop() {
            if since.elapsed() < POOL_IDLE && open(&conn) {
                return Some(conn);
            }
        }
        None
    }

    /// Pools `conn`. Taking the newest first leaves the oldest to sit long after the
    /// target closed them under steady traffic, so those are let go here.
    fn put(&self, conn: C, open: impl Fn(&C) -> bool) {
        let mut idle = self.mine();
        while idle
            .first()
            .is_some_and(|(c, since)| since.elapsed() >= POOL_IDLE || !open(c))
        {
            idle.remove(0);
        }
        if idle.len() < POOL_MAX_IDLE {
            idle.push((conn, Instant::now()));
        }
    }
}

/// A connection to a target that [`crate::h1`] speaks HTTP/1.1 on itself, with its
/// read buffer. It counts in `hoist_proxy_upstream_connections` while it lives.
pub(crate) struct RawConn {
    pub(crate) stream: TcpStream,
    pub(crate) buf: BytesMut,
    gauge: Gauge,
}

impl Drop for RawConn {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

impl RawConn {
    /// False when the target closed (or wrote to) the idle connection: a read that
    /// does not block means end of file or bytes nobody asked for. Costs no syscall
    /// while the socket is known not to be readable.
    fn still_idle(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

/// Pooled connections idle longer than this are closed rather than reused, to stay
/// under common keep-alive timeouts of servers.
const POOL_IDLE: Duration = Duration::from_secs(15);
const POOL_MAX_IDLE: usize = 128;

thread_local! {
    /// Which worker runtime this thread is (0 outside workers); picks the pool.
    static WORKER_INDEX: Cell<usize> = const { Cell::new(0) };
}

pub(crate) fn set_worker_index(i: usize) {
    WORKER_INDEX.with(|w| w.set(i));
}

const INITIAL: u8 = 0;
const HEALTHY: u8 = 1;
const UNHEALTHY: u8 = 2;

pub(crate) fn empty_body() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never: Infallible| match never {})
        .boxed()
}

#[derive(Debug)]
pub(crate) enum ConnectError {
    Io(io::Error),
    Timeout,
    Handshake(hyper::Error),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Io(e) => write!(f, "connect: {e}"),
            ConnectError::Timeout => write!(f, "connect timed out"),
            ConnectError::Handshake(e) => write!(f, "handshake: {e}"),
        }
    }
}

#[derive(Default)]
struct HealthCounters {
    ok: u32,
    failed: u32,
    reason: Option<String>,
}

pub(crate) struct DrainState {
    pub(crate) since: Instant,
    pub(crate) deadline: Instant,
}

pub(crate) struct TargetRuntime {
    pub(crate) group: String,
    pub(crate) endpoint: Endpoint,
    pub(crate) label: String,
    dialer: Option<NetnsDialer>,
    /// hyper's connections (the hyper path, WebSockets aside).
    idle: IdlePools<SendRequest<Body>>,
    /// The fast path's raw connections.
    raw_idle: IdlePools<RawConn>,
    inflight: AtomicUsize,
    idle_notify: Notify,
    /// Cut everything: the drain timeout passed or the proxy is gone.
    pub(crate) cancel: CancellationToken,
    state: AtomicU8,
    counters: Mutex<HealthCounters>,
    pub(crate) health_check: ArcSwapOption<HealthCheck>,
    health_task: Mutex<Option<JoinHandle<()>>>,
    draining: AtomicBool,
    pub(crate) drain_generation: AtomicU64,
    pub(crate) drain_state: Mutex<Option<DrainState>>,
    metrics: Arc<Metrics>,
    series: Mutex<Vec<(String, Arc<Series>)>>,
}

/// The metric handles of one (service, target), cached so the request path does not
/// build label sets.
pub(crate) struct Series {
    pub(crate) latency: Histogram,
    requests: [Counter; 5],
}

impl Series {
    pub(crate) fn record(&self, status: u16, seconds: f64) {
        self.latency.observe(seconds);
        self.requests[usize::from((status / 100).clamp(1, 5) - 1)].inc();
    }
}

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Counts a request or tunnel as in flight on a target while alive.
pub(crate) struct InflightGuard(Arc<TargetRuntime>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        if self.0.inflight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle_notify.notify_waiters();
        }
    }
}

impl TargetRuntime {
    pub(crate) fn new(
        group: &str,
        endpoint: &Endpoint,
        health_check: Option<HealthCheck>,
        metrics: Arc<Metrics>,
        pools: usize,
    ) -> io::Result<Arc<TargetRuntime>> {
        let dialer = match endpoint {
            Endpoint::Tcp(_) => None,
            Endpoint::Netns { path, .. } => Some(NetnsDialer::spawn(path)?),
        };
        let state = if health_check.is_some() {
            INITIAL
        } else {
            HEALTHY
        };
        let target = Arc::new(TargetRuntime {
            group: group.to_owned(),
            endpoint: endpoint.clone(),
            label: endpoint.to_string(),
            dialer,
            idle: IdlePools::new(pools),
            raw_idle: IdlePools::new(pools),
            inflight: AtomicUsize::new(0),
            idle_notify: Notify::new(),
            cancel: CancellationToken::new(),
            state: AtomicU8::new(state),
            counters: Mutex::new(HealthCounters::default()),
            health_check: ArcSwapOption::from_pointee(health_check),
            health_task: Mutex::new(None),
            draining: AtomicBool::new(false),
            drain_generation: AtomicU64::new(0),
            drain_state: Mutex::new(None),
            metrics,
            series: Mutex::new(Vec::new()),
        });
        target.publish_health();
        Ok(target)
    }

    fn series_labels(&self, service: &str) -> Labels {
        vec![
            ("service", service.to_owned()),
            ("target_group", self.group.clone()),
            ("target", self.label.clone()),
        ]
    }

    fn class_labels(&self, service: &str, class: &str) -> Labels {
        let mut labels = self.series_labels(service);
        labels.push(("code", class.to_owned()));
        labels
    }

    /// The metric handles for requests of `service` to this target.
    pub(crate) fn series(&self, service: &str) -> Arc<Series> {
        let mut cache = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, s)) = cache.iter().find(|(name, _)| name == service) {
            return s.clone();
        }
        let series = Arc::new(Series {
            latency: self
                .metrics
                .latency
                .get_or_create(&self.series_labels(service))
                .clone(),
            requests: CLASSES.map(|c| {
                self.metrics
                    .requests
                    .get_or_create(&self.class_labels(service, c))
                    .clone()
            }),
        });
        cache.push((service.to_owned(), series.clone()));
        series
    }

    /// `Host` of health checks: the address the target is reached at.
    fn host_header(&self) -> String {
        match &self.endpoint {
            Endpoint::Tcp(addr) => addr.to_string(),
            Endpoint::Netns { port, .. } => format!("127.0.0.1:{port}"),
        }
    }

    fn labels(&self) -> Labels {
        vec![
            ("target_group", self.group.clone()),
            ("target", self.label.clone()),
        ]
    }

    pub(crate) fn health(&self) -> HealthState {
        match self.state.load(Ordering::Relaxed) {
            HEALTHY => HealthState::Healthy,
            UNHEALTHY => HealthState::Unhealthy,
            _ => HealthState::Initial,
        }
    }

    pub(crate) fn is_healthy(&self) -> bool {
        self.state.load(Ordering::Relaxed) == HEALTHY
    }

    pub(crate) fn health_reason(&self) -> Option<String> {
        self.counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .reason
            .clone()
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub(crate) fn set_draining(&self, draining: bool) {
        self.draining.store(draining, Ordering::SeqCst);
        if draining {
            self.idle.clear();
            self.raw_idle.clear();
        }
    }

    pub(crate) fn inflight(&self) -> usize {
        self.inflight.load(Ordering::SeqCst)
    }

    /// Takes an in-flight slot, or `None` if the target started draining.
    pub(crate) fn enter(self: &Arc<Self>) -> Option<InflightGuard> {
        self.inflight.fetch_add(1, Ordering::SeqCst);
        let guard = InflightGuard(self.clone());
        (!self.is_draining()).then_some(guard)
    }

    /// Waits until nothing is in flight or `deadline`; true when idle.
    pub(crate) async fn wait_idle(&self, deadline: tokio::time::Instant) -> bool {
        loop {
            let notified = self.idle_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.inflight() == 0 {
                return true;
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline) => return self.inflight() == 0,
            }
        }
    }

    async fn connect_tcp(&self) -> io::Result<TcpStream> {
        match (&self.endpoint, &self.dialer) {
            (Endpoint::Tcp(addr), _) => {
                let stream = TcpStream::connect(addr).await?;
                stream.set_nodelay(true)?;
                Ok(stream)
            }
            (Endpoint::Netns { port, .. }, Some(dialer)) => dialer.connect(*port).await,
            (Endpoint::Netns { .. }, None) => Err(io::Error::other("no netns dialer")),
        }
    }

    /// Opens a new HTTP/1.1 connection; its driver task ends when the target is cut.
    pub(crate) async fn open(
        self: &Arc<Self>,
        timeout: Duration,
        upgrades: bool,
    ) -> Result<SendRequest<Body>, ConnectError> {
        let work = async {
            let stream = self.connect_tcp().await.map_err(ConnectError::Io)?;
            http1::Builder::new()
                .handshake::<_, Body>(TokioIo::new(stream))
                .await
                .map_err(ConnectError::Handshake)
        };
        let (sender, conn) = tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| ConnectError::Timeout)??;
        let gauge = self.count_connection();
        let cancel = self.cancel.clone();
        tokio::spawn(async move {
            if upgrades {
                let conn = conn.with_upgrades();
                tokio::select! { _ = conn => {}, _ = cancel.cancelled() => {} }
            } else {
                tokio::select! { _ = conn => {}, _ = cancel.cancelled() => {} }
            }
            gauge.dec();
        });
        Ok(sender)
    }

    /// Opens a raw connection for the fast path.
    pub(crate) async fn open_raw(&self, timeout: Duration) -> Result<RawConn, ConnectError> {
        let stream = tokio::time::timeout(timeout, self.connect_tcp())
            .await
            .map_err(|_| ConnectError::Timeout)?
            .map_err(ConnectError::Io)?;
        Ok(RawConn {
            stream,
            buf: BytesMut::new(),
            gauge: self.count_connection(),
        })
    }

    /// Counts one more open connection to this target; the caller decrements the
    /// gauge it returns when the connection closes.
    fn count_connection(&self) -> Gauge {
        let gauge = self
            .metrics
            .upstream_connections
            .get_or_create(&self.labels())
            .clone();
        gauge.inc();
        gauge
    }

    /// The most recently pooled raw connection that is still open, if any.
    pub(crate) fn checkout_raw(&self) -> Option<RawConn> {
        self.raw_idle.take(RawConn::still_idle)
    }

    /// Returns a raw connection whose response has ended, with nothing left unread.
    pub(crate) fn checkin_raw(&self, conn: RawConn) {
        if self.is_draining() || self.cancel.is_cancelled() {
            return;
        }
        self.raw_idle.put(conn, RawConn::still_idle);
    }

    /// A pooled connection that is not closed, if there is one. It was returned when
    /// its last response ended, so it is ready or about to be: wait with `ready()`.
    pub(crate) fn checkout(&self) -> Option<SendRequest<Body>> {
        self.idle.take(|s| !s.is_closed())
    }

    /// Returns a connection whose response has ended to the pool.
    pub(crate) fn checkin(&self, sender: SendRequest<Body>) {
        if self.is_draining() || self.cancel.is_cancelled() || sender.is_closed() {
            return;
        }
        self.idle.put(sender, |s| !s.is_closed());
    }

    fn publish_health(&self) {
        let gauge = self.metrics.healthy.get_or_create(&self.labels()).clone();
        gauge.set(i64::from(self.is_healthy()));
    }

    pub(crate) fn forget_metrics(&self) {
        self.metrics.healthy.remove(&self.labels());
        self.metrics.upstream_connections.remove(&self.labels());
        let cache =
            std::mem::take(&mut *self.series.lock().unwrap_or_else(PoisonError::into_inner));
        for (service, _) in cache {
            self.metrics.latency.remove(&self.series_labels(&service));
            for class in CLASSES {
                self.metrics
                    .requests
                    .remove(&self.class_labels(&service, class));
            }
        }
    }

    /// Starts (or restarts) the health-check loop.
    pub(crate) fn start_health(self: &Arc<Self>) {
        let mut slot = self
            .health_task
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = slot.take() {
            old.abort();
        }
        if self.health_check.load().is_none() {
            self.state.store(HEALTHY, Ordering::Relaxed);
            self.publish_health();
            return;
        }
        let target = self.clone();
        *slot = Some(tokio::spawn(async move { target.health_loop().await }));
    }

    pub(crate) fn stop_health(&self) {
        if let Some(task) = self
            .health_task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }

    async fn health_loop(self: Arc<Self>) {
        loop {
            let Some(hc) = self.health_check.load_full() else {
                self.state.store(HEALTHY, Ordering::Relaxed);
                self.publish_health();
                return;
            };
            let started = tokio::time::Instant::now();
            let result = match hc.mode {
                HealthCheckMode::Http => {
                    match tokio::time::timeout(hc.timeout, self.check_once(&hc)).await {
                        Ok(r) => Some(r),
                        Err(_) => Some(Err(format!("timed out after {:?}", hc.timeout))),
                    }
                }
                HealthCheckMode::Reported => self.check_reported(&hc),
            };
            if let Some(result) = result {
                self.record_check(&hc, result);
            }
            tokio::time::sleep_until(started + hc.interval).await;
        }
    }

    /// Reads the target's reported health (a small local file, read in place).
    fn check_reported(&self, hc: &HealthCheck) -> Option<Result<(), String>> {
        let Endpoint::Netns {
            health_file: Some(path),
            ..
        } = &self.endpoint
        else {
            return Some(Err("the target has no health file".to_owned()));
        };
        let stale_after = (hc.interval + hc.timeout) * 3;
        let read = std::fs::metadata(path).and_then(|m| {
            let age = m.modified()?.elapsed().unwrap_or_default();
            Ok((std::fs::read(path)?, age))
        });
        match read {
            Ok((bytes, age)) => reported_verdict(&bytes, age, stale_after),
            Err(e) => Some(Err(format!("health file {}: {e}", path.display()))),
        }
    }

    async fn check_once(self: &Arc<Self>, hc: &HealthCheck) -> Result<(), String> {
        let stream = self
            .connect_tcp()
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut sender, conn) = http1::Builder::new()
            .handshake::<_, Body>(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let driver = tokio::spawn(conn);
        let req = http::Request::get(hc.path.as_str())
            .header(http::header::HOST, self.host_header())
            .header(http::header::USER_AGENT, "hoist-proxy-health-check")
            .header(http::header::CONNECTION, "close")
            .body(empty_body())
            .map_err(|e| format!("bad health check path {:?}: {e}", hc.path))?;
        let result = sender.send_request(req).await;
        let outcome = match result {
            Ok(resp) => {
                let status = resp.status().as_u16();
                // Read the body so the server is not cut off mid-write.
                let _ = resp.into_body().collect().await;
                if hc.is_success(status) {
                    Ok(())
                } else {
                    Err(format!("status {status}"))
                }
            }
            Err(e) => Err(format!("request: {e}")),
        };
        driver.abort();
        outcome
    }

    fn record_check(&self, hc: &HealthCheck, result: Result<(), String>) {
        let mut c = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let state = self.state.load(Ordering::Relaxed);
        let new_state = match result {
            Ok(()) => {
                c.ok = c.ok.saturating_add(1);
                c.failed = 0;
                if state != HEALTHY && c.ok >= hc.healthy_threshold {
                    c.reason = None;
                    HEALTHY
                } else {
                    state
                }
            }
            Err(reason) => {
                c.failed = c.failed.saturating_add(1);
                c.ok = 0;
                c.reason = Some(reason);
                if state != UNHEALTHY && c.failed >= hc.unhealthy_threshold {
                    UNHEALTHY
                } else {
                    state
                }
            }
        };
        drop(c);
        if new_state != state {
            tracing::info!(target_group = %self.group, target = %self.label, ?new_state, "target health changed");
            self.state.store(new_state, Ordering::Relaxed);
            self.publish_health();
        }
    }
}

/// The verdict of a reported health file (Docker's `State.Health`: `Status`,
/// `Log[].Output`) written `age` ago: `None` while it is `starting`.
pub(crate) fn reported_verdict(
    bytes: &[u8],
    age: Duration,
    stale_after: Duration,
) -> Option<Result<(), String>> {
    if age > stale_after {
        return Some(Err(format!(
            "health status not updated for {}s",
            age.as_secs()
        )));
    }
    let v: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => return Some(Err(format!("unreadable health status: {e}"))),
    };
    match v["Status"].as_str() {
        Some("healthy") => Some(Ok(())),
        Some("starting") => None,
        Some("unhealthy") => {
            let last = v["Log"]
                .as_array()
                .and_then(|l| l.last())
                .map(|r| {
                    let output = r["Output"].as_str().unwrap_or("").trim();
                    let code = r["ExitCode"].as_i64().unwrap_or(-1);
                    let output: String = output.chars().take(200).collect();
                    if output.is_empty() {
                        format!("exit code {code}")
                    } else {
                        format!("exit code {code}: {output}")
                    }
                })
                .unwrap_or_else(|| "no result".to_owned());
            Some(Err(format!("health check failed ({last})")))
        }
        other => Some(Err(format!("unknown health status {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALE: Duration = Duration::from_secs(9);

    #[test]
    fn reported_statuses_map_to_verdicts() {
        let ok = br#"{"Status":"healthy","FailingStreak":0,"Log":[]}"#;
        assert_eq!(reported_verdict(ok, Duration::ZERO, STALE), Some(Ok(())));
        let starting = br#"{"Status":"starting","FailingStreak":0,"Log":[]}"#;
        assert_eq!(reported_verdict(starting, Duration::ZERO, STALE), None);
        let bad = br#"{"Status":"unhealthy","FailingStreak":3,"Log":[{"ExitCode":1,"Output":"no /ok\n"}]}"#;
        assert_eq!(
            reported_verdict(bad, Duration::ZERO, STALE),
            Some(Err("health check failed (exit code 1: no /ok)".to_owned()))
        );
        // A healthy file nobody rewrites any more is a failure.
        assert!(matches!(
            reported_verdict(ok, Duration::from_secs(10), STALE),
            Some(Err(m)) if m.contains("not updated")
        ));
        assert!(matches!(
            reported_verdict(b"{", Duration::ZERO, STALE),
            Some(Err(_))
        ));
    }
}
