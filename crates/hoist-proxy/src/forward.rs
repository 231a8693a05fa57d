//! The request path: match a rule, pick a target group and target, forward, retry
//! connect failures, tunnel upgrades.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use crate::balance::{host_matches, normalize_host, path_matches, SmoothWrr};
use crate::config::{HostMatch, Timeouts};
use crate::metrics::{status_class, ClassCounters, Metrics};
use crate::target::{Body, ConnectError, InflightGuard, TargetRuntime};

/// How many targets one request may try when connecting fails.
pub(crate) const MAX_CONNECT_ATTEMPTS: usize = 3;

pub(crate) struct GroupRuntime {
    pub(crate) targets: Vec<Arc<TargetRuntime>>,
    rr: AtomicUsize,
}

impl GroupRuntime {
    pub(crate) fn new(targets: Vec<Arc<TargetRuntime>>) -> Self {
        GroupRuntime {
            targets,
            rr: AtomicUsize::new(0),
        }
    }

    fn usable(&self, t: &TargetRuntime, tried: &[Arc<TargetRuntime>], healthy_only: bool) -> bool {
        !t.is_draining()
            && !tried.iter().any(|x| std::ptr::eq(Arc::as_ptr(x), t))
            && (!healthy_only || t.is_healthy())
    }

    fn has(&self, tried: &[Arc<TargetRuntime>], healthy_only: bool) -> bool {
        self.targets
            .iter()
            .any(|t| self.usable(t, tried, healthy_only))
    }

    /// Round-robin over usable targets.
    fn pick(&self, tried: &[Arc<TargetRuntime>], healthy_only: bool) -> Option<Arc<TargetRuntime>> {
        let n = self.targets.len();
        if n == 0 {
            return None;
        }
        let start = self.rr.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| &self.targets[(start + i) % n])
            .find(|t| self.usable(t, tried, healthy_only))
            .cloned()
    }
}

pub(crate) struct CompiledRule {
    pub(crate) service: String,
    pub(crate) host: Option<HostMatch>,
    pub(crate) path_prefix: String,
    pub(crate) groups: Vec<Arc<GroupRuntime>>,
    pub(crate) weights: Vec<u32>,
    pub(crate) counters: Vec<Arc<ClassCounters>>,
    pub(crate) no_group_counters: Arc<ClassCounters>,
    pub(crate) wrr: Mutex<SmoothWrr>,
}

impl CompiledRule {
    /// Picks a group by weight among those with a healthy target; when none has one,
    /// fails open to groups with any registered target (as an ALB does).
    fn pick(&self, tried: &[Arc<TargetRuntime>]) -> Option<(usize, Arc<TargetRuntime>)> {
        for healthy_only in [true, false] {
            let chosen = self
                .wrr
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pick(&self.weights, |i| self.groups[i].has(tried, healthy_only));
            if let Some(i) = chosen {
                if let Some(t) = self.groups[i].pick(tried, healthy_only) {
                    return Some((i, t));
                }
            }
        }
        None
    }
}

pub(crate) struct ListenerRoutes {
    pub(crate) rules: Vec<CompiledRule>,
    /// The listener's certificate, when it serves HTTPS.
    pub(crate) tls: Option<hoist_tls::tokio_rustls::TlsAcceptor>,
}

pub(crate) struct RouteState {
    /// A B-tree rather than a hash map: with a handful of listeners a few address
    /// comparisons cost less than hashing one, and this is looked up per request.
    pub(crate) listeners: std::collections::BTreeMap<SocketAddr, ListenerRoutes>,
    pub(crate) timeouts: Timeouts,
}

/// The body of a response the proxy makes itself: one line of text.
pub(crate) fn error_body(status: StatusCode, msg: &str) -> String {
    format!(
        "{} {}: {msg}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
}

fn text(status: StatusCode, msg: &str) -> Response<Body> {
    let body = Full::new(Bytes::from(error_body(status, msg)))
        .map_err(|never: Infallible| match never {})
        .boxed();
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// The client's address as `X-Forwarded-For` gives it; made once per connection.
pub(crate) fn forwarded_for(peer: SocketAddr) -> HeaderValue {
    HeaderValue::from_str(&peer.ip().to_canonical().to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

pub(crate) static HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// The tokens of the `Connection` header(s), trimmed, as written (compare them
/// ignoring case).
fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// `Connection` tokens that name no header to remove beyond the hop-by-hop ones
/// (checked first, so the usual `Connection: keep-alive` costs no allocation).
pub(crate) const COMMON_TOKENS: [&str; 3] = ["close", "keep-alive", "upgrade"];

fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::UPGRADE || HOP_BY_HOP.contains(name)
}

/// Removes hop-by-hop headers; with `upgrade`, keeps `Upgrade` and sends
/// `Connection: upgrade`.
fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: Option<HeaderValue>) {
    // One pass over the names finds the hop-by-hop ones there (usually none, or
    // `Connection`), so only those are looked up again to be removed.
    let mut present: [Option<HeaderName>; HOP_BY_HOP.len() + 1] = Default::default();
    for (slot, name) in present
        .iter_mut()
        .zip(headers.keys().filter(|n| is_hop_by_hop(n)))
    {
        *slot = Some(name.clone());
    }
    if present[0].is_some() {
        // Other headers that `Connection` names are hop-by-hop too.
        let named: Vec<HeaderName> = connection_tokens(headers)
            .filter(|t| !COMMON_TOKENS.iter().any(|c| t.eq_ignore_ascii_case(c)))
            .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
            .filter(|n| !is_hop_by_hop(n) && headers.contains_key(n))
            .collect();
        for name in named.iter().chain(present.iter().flatten()) {
            headers.remove(name);
        }
    }
    if let Some(proto) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, proto);
    }
}

fn upgrade_protocol(req: &Request<Incoming>) -> Option<HeaderValue> {
    if req.version() != Version::HTTP_11
        || !connection_tokens(req.headers()).any(|t| t.eq_ignore_ascii_case("upgrade"))
    {
        return None;
    }
    req.headers().get(header::UPGRADE).cloned()
}

pub(crate) async fn handle(
    state: Arc<arc_swap::ArcSwap<RouteState>>,
    metrics: Arc<Metrics>,
    listener: SocketAddr,
    peer: HeaderValue,
    https: bool,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let routes = state.load_full();
    // The host as the client named it: `:authority` (HTTP/2) or an absolute URI's,
    // else the `Host` header (a cheap clone: it shares the read buffer).
    let authority = req.uri().authority().is_some();
    let host_value = match req.uri().authority() {
        Some(a) => HeaderValue::from_str(a.as_str()).ok(),
        None => req.headers().get(header::HOST).cloned(),
    };
    let host_raw = host_value
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let host = normalize_host(host_raw);
    let Some(index) = find_rule(&routes, listener, &host, req.uri().path()) else {
        return Ok(text(
            StatusCode::NOT_FOUND,
            "no rule matches this host and path",
        ));
    };
    let mut route: Route = (routes, listener, index);

    // Build the request the target will see.
    let upgrade = upgrade_protocol(&req);
    let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers, upgrade.clone());
    // Origin-form (`/path?query`, HTTP/1.1's usual) goes on as it is; an absolute URI
    // or HTTP/2's becomes origin-form.
    if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
        let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri = Uri::try_from(path_and_query).unwrap_or_else(|_| Uri::from_static("/"));
    }
    parts.version = Version::HTTP_11;
    if !host_raw.is_empty() {
        if let Some(v) = host_value.clone() {
            if authority {
                parts.headers.insert(header::HOST, v.clone());
            }
            parts.headers.insert(X_FORWARDED_HOST, v);
        }
    }
    let xff = match parts
        .headers
        .get(X_FORWARDED_FOR)
        .and_then(|v| v.to_str().ok())
    {
        Some(prev) if !prev.trim().is_empty() => {
            let ip = peer.to_str().unwrap_or_default();
            HeaderValue::from_str(&format!("{prev}, {ip}")).ok()
        }
        _ => Some(peer.clone()),
    };
    if let Some(v) = xff {
        parts.headers.insert(X_FORWARDED_FOR, v);
    }
    parts.headers.insert(
        X_FORWARDED_PROTO,
        HeaderValue::from_static(if https { "https" } else { "http" }),
    );
    let mut outgoing = Some(Request::from_parts(parts, body.boxed()));

    let timeouts = route.0.timeouts;
    let mut tried: Vec<Arc<TargetRuntime>> = Vec::new();
    let mut last_error: Option<ConnectError> = None;
    let mut resends = 0usize;
    let finish = |rule: &CompiledRule,
                  resp: Response<Body>,
                  group: Option<usize>,
                  target: Option<&TargetRuntime>| {
        record(
            &metrics,
            rule,
            resp.status().as_u16(),
            group,
            target,
            started,
        );
        Ok(resp)
    };

    while tried.len() < MAX_CONNECT_ATTEMPTS {
        let path = outgoing.as_ref().map_or("/", |r| r.uri().path());
        let picked = pick_current(&state, &mut route, &host, path, &tried);
        let Some((gi, target)) = picked else {
            break;
        };
        let Some(rule) = rule_at(&route) else { break };
        let Some(guard) = target.enter() else {
            tried.push(target.clone());
            continue;
        };
        let pooled = if upgrade.is_some() {
            None
        } else {
            target.checkout()
        };
        let pooled = match pooled {
            Some(mut s) => {
                let ready = tokio::time::timeout(timeouts.connect, s.ready()).await;
                matches!(ready, Ok(Ok(()))).then_some(s)
            }
            None => None,
        };
        let mut sender = match pooled {
            Some(s) => s,
            None => match target.open(timeouts.connect, upgrade.is_some()).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(target = %target.label, error = %e, "connect failed, trying another target");
                    tried.push(target.clone());
                    last_error = Some(e);
                    continue;
                }
            },
        };
        let Some(req) = outgoing.take() else { break };
        let sent = tokio::time::timeout(timeouts.request, sender.try_send_request(req)).await;
        let resp = match sent {
            Err(_) => {
                let r = text(
                    StatusCode::GATEWAY_TIMEOUT,
                    "the target did not answer in time",
                );
                return finish(rule, r, Some(gi), Some(&target));
            }
            Ok(Err(mut e)) => match e.take_message() {
                // Never written: the pooled connection was closing. Try again.
                Some(req) if resends < 8 => {
                    resends += 1;
                    outgoing = Some(req);
                    continue;
                }
                _ => {
                    tracing::debug!(target = %target.label, error = %e.into_error(), "request failed");
                    let r = text(StatusCode::BAD_GATEWAY, "the target failed to answer");
                    return finish(rule, r, Some(gi), Some(&target));
                }
            },
            Ok(Ok(resp)) => resp,
        };
        let pool_return = upgrade.is_none().then_some(sender);
        let resp = forward_response(resp, client_upgrade, guard, pool_return, &target);
        return finish(rule, resp, Some(gi), Some(&target));
    }
    let (status, msg) = no_target(last_error.as_ref());
    let resp = text(status, &msg);
    match rule_at(&route) {
        Some(rule) => finish(rule, resp, None, None),
        None => Ok(resp),
    }
}

/// Counts a response in the rule's counters and the metrics: `group` and `target`
/// are `None` when the proxy answered itself.
pub(crate) fn record(
    metrics: &Metrics,
    rule: &CompiledRule,
    status: u16,
    group: Option<usize>,
    target: Option<&TargetRuntime>,
    started: Instant,
) {
    let counters = group.map_or(&rule.no_group_counters, |g| &rule.counters[g]);
    counters.record(status);
    let seconds = started.elapsed().as_secs_f64();
    match target {
        Some(t) => t.series(&rule.service).record(status, seconds),
        None => {
            let mut labels = vec![
                ("service", rule.service.clone()),
                ("target_group", String::new()),
                ("target", String::new()),
            ];
            metrics.latency.get_or_create(&labels).observe(seconds);
            labels.push(("code", status_class(status).to_owned()));
            metrics.requests.get_or_create(&labels).inc();
        }
    }
}

/// The answer when no target took the request: 504 when the last try timed out
/// connecting, 502 when none could be reached, 503 when none was there to try.
pub(crate) fn no_target(last_error: Option<&ConnectError>) -> (StatusCode, String) {
    match last_error {
        Some(ConnectError::Timeout) => (
            StatusCode::GATEWAY_TIMEOUT,
            "connecting to the target timed out".to_owned(),
        ),
        Some(e) => (
            StatusCode::BAD_GATEWAY,
            format!("no target could be reached ({e})"),
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no target is available".to_owned(),
        ),
    }
}

/// The index of the first rule of `listener` that matches `host` and `path`.
pub(crate) fn find_rule(
    routes: &RouteState,
    listener: SocketAddr,
    host: &str,
    path: &str,
) -> Option<usize> {
    routes
        .listeners
        .get(&listener)?
        .rules
        .iter()
        .position(|r| host_matches(r.host.as_ref(), host) && path_matches(&r.path_prefix, path))
}

/// A request's rule: the routes it was matched in, and its index there.
pub(crate) type Route = (Arc<RouteState>, SocketAddr, usize);

pub(crate) fn rule_at(route: &Route) -> Option<&CompiledRule> {
    route.0.listeners.get(&route.1)?.rules.get(route.2)
}

/// Picks a target for a request. A request that was matched in routes a newer
/// configuration has since replaced, and finds no usable target left there (the new
/// configuration drained them), is matched again in the current routes: a swap of
/// configuration never turns into a 503.
pub(crate) fn pick_current(
    state: &arc_swap::ArcSwap<RouteState>,
    route: &mut Route,
    host: &str,
    path: &str,
    tried: &[Arc<TargetRuntime>],
) -> Option<(usize, Arc<TargetRuntime>)> {
    loop {
        if let Some(picked) = rule_at(route).and_then(|r| r.pick(tried)) {
            return Some(picked);
        }
        let current = state.load_full();
        if Arc::ptr_eq(&current, &route.0) {
            return None;
        }
        let index = find_rule(&current, route.1, host, path)?;
        *route = (current, route.1, index);
    }
}

fn forward_response(
    mut resp: Response<Incoming>,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    guard: InflightGuard,
    sender: Option<SendRequest<Body>>,
    target: &Arc<TargetRuntime>,
) -> Response<Body> {
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client) = client_upgrade {
            let upstream = hyper::upgrade::on(&mut resp);
            let cancel = target.cancel.clone();
            tokio::spawn(async move {
                let _guard = guard;
                let (client, upstream) = match tokio::try_join!(client, upstream) {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::debug!(error = %e, "upgrade failed");
                        return;
                    }
                };
                let mut client = TokioIo::new(client);
                let mut upstream = TokioIo::new(upstream);
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
                    _ = cancel.cancelled() => {}
                }
            });
            let (mut parts, _) = resp.into_parts();
            let proto = parts.headers.get(header::UPGRADE).cloned();
            strip_hop_by_hop(&mut parts.headers, proto);
            return Response::from_parts(parts, crate::target::empty_body());
        }
    }
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers, None);
    let body = ResponseBody {
        inner: body,
        guard: Some(guard),
        pool: sender.map(|s| (s, target.clone())),
    };
    Response::from_parts(parts, body.boxed())
}

/// A target's response body on its way to the client. While it lives the request
/// counts as in flight (draining waits for it); when it ends, its connection goes back
/// to the pool at once, so the next request finds it.
struct ResponseBody {
    inner: Incoming,
    guard: Option<InflightGuard>,
    pool: Option<(SendRequest<Body>, Arc<TargetRuntime>)>,
}

impl ResponseBody {
    fn ended(&mut self) {
        if let Some((sender, target)) = self.pool.take() {
            target.checkin(sender);
        }
        self.guard = None;
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        // hyper does not poll a body that says it is empty (204, HEAD, length 0).
        if hyper::body::Body::is_end_stream(&self.inner) {
            self.ended();
        }
    }
}

impl hyper::body::Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.ended(),
            // Trailers end a body: hyper's server does not poll past them.
            Poll::Ready(Some(Ok(frame))) if frame.is_trailers() || this.inner.is_end_stream() => {
                this.ended()
            }
            Poll::Ready(Some(Err(_))) => {
                // The connection is broken; never pool it.
                this.pool = None;
                this.guard = None;
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::{Endpoint, Timeouts};

    fn routes(
        metrics: &Arc<Metrics>,
        listener: SocketAddr,
        group: &str,
        target: &Arc<TargetRuntime>,
    ) -> RouteState {
        let rule = CompiledRule {
            service: "web".into(),
            host: None,
            path_prefix: "/".into(),
            groups: vec![Arc::new(GroupRuntime::new(vec![target.clone()]))],
            weights: vec![1],
            counters: vec![metrics.counters("web", group)],
            no_group_counters: metrics.counters("web", ""),
            wrr: Mutex::new(SmoothWrr::new(1)),
        };
        RouteState {
            listeners: [(
                listener,
                ListenerRoutes {
                    rules: vec![rule],
                    tls: None,
                },
            )]
            .into(),
            timeouts: Timeouts::default(),
        }
    }

    /// A request matched just before a swap, whose targets the new configuration
    /// drained, still finds a target: the new configuration's.
    #[test]
    fn a_request_on_swapped_routes_picks_from_the_current_ones() {
        let metrics = Arc::new(Metrics::new());
        let listener: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let endpoint = |port: u16| Endpoint::Tcp(SocketAddr::from(([127, 0, 0, 1], port)));
        let blue = TargetRuntime::new("blue", &endpoint(1), None, metrics.clone(), 1).unwrap();
        let green = TargetRuntime::new("green", &endpoint(2), None, metrics.clone(), 1).unwrap();
        let state = arc_swap::ArcSwap::from_pointee(routes(&metrics, listener, "blue", &blue));
        let snapshot = state.load_full();
        let index = find_rule(&snapshot, listener, "example.com", "/").unwrap();
        let mut route: Route = (snapshot.clone(), listener, index);

        // The new configuration routes to green, and blue starts draining.
        state.store(Arc::new(routes(&metrics, listener, "green", &green)));
        blue.set_draining(true);

        // The stale routes alone have nothing left to offer...
        assert!(rule_at(&route).unwrap().pick(&[]).is_none());
        // ...so the request looks again, in the current routes.
        let (_, picked) = pick_current(&state, &mut route, "example.com", "/", &[]).unwrap();
        assert!(Arc::ptr_eq(&picked, &green));
        assert!(Arc::ptr_eq(&route.0, &state.load_full()));

        // With nothing usable in the current routes either, there is no target.
        green.set_draining(true);
        assert!(pick_current(&state, &mut route, "example.com", "/", &[]).is_none());
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_removed() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "Keep-Alive, X-Hop"),
            ("connection", "x-other , close"),
            ("keep-alive", "timeout=5"),
            ("x-hop", "1"),
            ("x-other", "2"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("x-kept", "3"),
            ("content-type", "text/plain"),
        ] {
            headers.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        strip_hop_by_hop(&mut headers, None);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-type", "x-kept"]);

        // An upgrade keeps `Upgrade` and says so in `Connection`.
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        strip_hop_by_hop(&mut headers, Some(HeaderValue::from_static("websocket")));
        assert_eq!(headers[header::CONNECTION], "upgrade");
        assert_eq!(headers[header::UPGRADE], "websocket");

        // Nothing hop-by-hop: nothing changes.
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("example.com"));
        strip_hop_by_hop(&mut headers, None);
        assert_eq!(headers.len(), 1);
    }
}
