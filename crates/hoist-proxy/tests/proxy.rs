//! Integration tests: real sockets on loopback, real network namespaces, a real hyper
//! backend and real clients. Nothing passes or fails on timing; waits have generous
//! deadlines.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hoist_proxy::{Endpoint, HealthCheck, HealthCheckMode, HealthState, HostMatch, Proxy};
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

mod support;
use support::{bound, config, group, listen_any, rule};

type Body = BoxBody<Bytes, Infallible>;

fn full(s: impl Into<Bytes>) -> Body {
    Full::new(s.into()).boxed()
}

/// A small HTTP server standing for one task.
struct Backend {
    addr: SocketAddr,
    healthy: Arc<AtomicBool>,
    hits: Arc<AtomicUsize>,
    /// Connections accepted (health checks use their own).
    conns: Arc<AtomicUsize>,
}

async fn backend(name: &'static str) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let healthy = Arc::new(AtomicBool::new(true));
    let hits = Arc::new(AtomicUsize::new(0));
    let conns = Arc::new(AtomicUsize::new(0));
    let (h, n, c) = (healthy.clone(), hits.clone(), conns.clone());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            c.fetch_add(1, Ordering::SeqCst);
            let (h, n) = (h.clone(), n.clone());
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req| handle(name, h.clone(), n.clone(), req));
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Backend {
        addr,
        healthy,
        hits,
        conns,
    }
}

async fn handle(
    name: &'static str,
    healthy: Arc<AtomicBool>,
    hits: Arc<AtomicUsize>,
    mut req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, Infallible> {
    let header = |n: &str| {
        req.headers()
            .get(n)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    match req.uri().path() {
        "/health" => {
            let ok = healthy.load(Ordering::SeqCst);
            let mut r = Response::new(full(if ok { "ok" } else { "sick" }));
            *r.status_mut() = if ok {
                StatusCode::OK
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            Ok(r)
        }
        "/headers" => {
            hits.fetch_add(1, Ordering::SeqCst);
            let body = format!(
                "xff={} proto={} xhost={} host={} keepalive={} custom={} connection={}",
                header("x-forwarded-for"),
                header("x-forwarded-proto"),
                header("x-forwarded-host"),
                header("host"),
                header("keep-alive"),
                header("x-hop"),
                header("connection"),
            );
            Ok(Response::new(full(body)))
        }
        "/echo" => {
            hits.fetch_add(1, Ordering::SeqCst);
            let method = req.method().to_string();
            let body = req.into_body().collect().await.unwrap().to_bytes();
            Ok(Response::new(full(format!(
                "{name} {method} {}",
                String::from_utf8_lossy(&body)
            ))))
        }
        "/slow" => {
            let ms: u64 = req
                .uri()
                .query()
                .and_then(|q| q.parse().ok())
                .unwrap_or(1000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            hits.fetch_add(1, Ordering::SeqCst);
            Ok(Response::new(full(name)))
        }
        "/ws" => {
            assert_eq!(header("upgrade"), "websocket");
            let on = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let mut io = TokioIo::new(on.await.unwrap());
                let mut buf = [0u8; 1024];
                loop {
                    let n = io.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    let mut reply = format!("{name}:").into_bytes();
                    reply.extend_from_slice(&buf[..n]);
                    io.write_all(&reply).await.unwrap();
                }
            });
            let r = Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header("upgrade", "websocket")
                .header("connection", "Upgrade")
                .body(full(""))
                .unwrap();
            Ok(r)
        }
        _ => {
            hits.fetch_add(1, Ordering::SeqCst);
            Ok(Response::new(full(name)))
        }
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn fast_health() -> HealthCheck {
    HealthCheck {
        path: "/health".into(),
        interval: Duration::from_millis(100),
        timeout: Duration::from_secs(1),
        healthy_threshold: 2,
        unhealthy_threshold: 2,
        ..HealthCheck::default()
    }
}

fn tcp(b: &Backend) -> Endpoint {
    Endpoint::Tcp(b.addr)
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn get(client: &HttpClient, url: &str) -> Result<(StatusCode, String), String> {
    let resp = client
        .get(url.parse().unwrap())
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn state_of(proxy: &Proxy, ep: &Endpoint) -> Option<HealthState> {
    proxy
        .target_health()
        .into_iter()
        .find(|t| &t.endpoint == ep)
        .map(|t| t.state)
}

/// Kills the namespace-holding process when the test ends, pass or fail.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn netns_target_is_reached_inside_its_namespace() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("whoami"), "inside-the-namespace").unwrap();
    let port = free_port();
    let child = std::process::Command::new("unshare")
        .args([
            "--net",
            "sh",
            "-c",
            &format!("ip link set lo up && exec python3 -m http.server --bind 127.0.0.1 {port}"),
        ])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("unshare");
    let child = ChildGuard(child);
    let ns_path = std::path::PathBuf::from(format!("/proc/{}/ns/net", child.0.id()));
    // Until unshare(2) has run, the child is still in our namespace.
    let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
    wait_for("the child to unshare its network namespace", || {
        std::fs::read_link(&ns_path).is_ok_and(|theirs| theirs != ours)
    })
    .await;
    let ns = Endpoint::Netns {
        path: ns_path,
        port,
        health_file: None,
    };

    let proxy = Proxy::new().unwrap();
    let hc = HealthCheck {
        path: "/whoami".into(),
        ..fast_health()
    };
    proxy
        .apply(config(
            listen_any(),
            vec![rule("web", &[("tasks", 1)])],
            vec![group("tasks", Some(hc), vec![ns.clone()])],
        ))
        .unwrap();
    wait_for("the namespace target to turn healthy", || {
        state_of(&proxy, &ns) == Some(HealthState::Healthy)
    })
    .await;

    let url = format!("http://{}/whoami", bound(&proxy));
    let (status, body) = get(&client(), &url).await.unwrap();
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "inside-the-namespace")
    );
    // The same port on the host's loopback has nothing: the proxy went inside.
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} is open on the host"
    );
}

#[tokio::test]
async fn weighted_split_is_exact() {
    let (blue, green) = (backend("blue").await, backend("green").await);
    let proxy = Proxy::new().unwrap();
    proxy
        .apply(config(
            listen_any(),
            vec![rule("web", &[("blue", 80), ("green", 20)])],
            vec![
                group("blue", None, vec![tcp(&blue)]),
                group("green", None, vec![tcp(&green)]),
            ],
        ))
        .unwrap();
    let url = format!("http://{}/", bound(&proxy));
    let c = client();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for _ in 0..1000 {
        let (status, body) = get(&c, &url).await.unwrap();
        assert_eq!(status, StatusCode::OK);
        *seen.entry(body).or_default() += 1;
    }
    assert_eq!(seen["blue"], 800);
    assert_eq!(seen["green"], 200);
    assert_eq!(
        (
            blue.hits.load(Ordering::SeqCst),
            green.hits.load(Ordering::SeqCst)
        ),
        (800, 200)
    );
    // One client at a time: each target's single keep-alive connection is reused.
    assert_eq!(
        (
            blue.conns.load(Ordering::SeqCst),
            green.conns.load(Ordering::SeqCst)
        ),
        (1, 1)
    );
}

#[tokio::test]
async fn host_and_path_rules_pick_in_priority_order() {
    let (api, wild, rest) = (
        backend("api").await,
        backend("wild").await,
        backend("rest").await,
    );
    let proxy = Proxy::new().unwrap();
    let mut r_api = rule("api", &[("api", 1)]);
    r_api.path_prefix = "/api".into();
    let mut r_wild = rule("wild", &[("wild", 1)]);
    r_wild.host = Some(HostMatch::parse("*.example.com"));
    proxy
        .apply(config(
            listen_any(),
            vec![r_api, r_wild, rule("rest", &[("rest", 1)])],
            vec![
                group("api", None, vec![tcp(&api)]),
                group("wild", None, vec![tcp(&wild)]),
                group("rest", None, vec![tcp(&rest)]),
            ],
        ))
        .unwrap();
    let addr = bound(&proxy);
    let ask = |host: &'static str, path: &'static str| async move {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = Request::get(path)
            .header("host", host)
            .body(Empty::<Bytes>::new())
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        String::from_utf8(
            resp.into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
        .unwrap()
    };
    assert_eq!(ask("a.example.com", "/api/x").await, "api");
    assert_eq!(ask("a.example.com:8080", "/apix").await, "wild");
    assert_eq!(ask("example.com", "/apix").await, "rest");
    assert_eq!(ask("other.org", "/").await, "rest");
}

#[tokio::test]
async fn unhealthy_target_gets_no_traffic_and_comes_back() {
    let (a, b) = (backend("a").await, backend("b").await);
    let proxy = Proxy::new().unwrap();
    proxy
        .apply(config(
            listen_any(),
            vec![rule("web", &[("g", 1)])],
            vec![group("g", Some(fast_health()), vec![tcp(&a), tcp(&b)])],
        ))
        .unwrap();
    // New targets start Initial and take no traffic until healthy.
    assert_eq!(state_of(&proxy, &tcp(&a)), Some(HealthState::Initial));
    wait_for("both healthy", || {
        proxy
            .target_health()
            .iter()
            .all(|t| t.state == HealthState::Healthy)
    })
    .await;
    let url = format!("http://{}/", bound(&proxy));
    let c = client();

    b.healthy.store(false, Ordering::SeqCst);
    wait_for("b unhealthy", || {
        state_of(&proxy, &tcp(&b)) == Some(HealthState::Unhealthy)
    })
    .await;
    let reason = proxy
        .target_health()
        .into_iter()
        .find(|t| t.endpoint == tcp(&b))
        .unwrap()
        .reason;
    assert_eq!(reason.as_deref(), Some("status 500"));
    let before = b.hits.load(Ordering::SeqCst);
    for _ in 0..50 {
        assert_eq!(get(&c, &url).await.unwrap().1, "a");
    }
    assert_eq!(b.hits.load(Ordering::SeqCst), before);

    b.healthy.store(true, Ordering::SeqCst);
    wait_for("b healthy again", || {
        state_of(&proxy, &tcp(&b)) == Some(HealthState::Healthy)
    })
    .await;
    let mut bodies = Vec::new();
    for _ in 0..10 {
        bodies.push(get(&c, &url).await.unwrap().1);
    }
    assert_eq!(bodies.iter().filter(|b| *b == "b").count(), 5, "{bodies:?}");
}

#[tokio::test]
async fn all_unhealthy_fails_open_and_a_sick_group_sheds_its_weight() {
    let (blue, green) = (backend("blue").await, backend("green").await);
    green.healthy.store(false, Ordering::SeqCst);
    let proxy = Proxy::new().unwrap();
    proxy
        .apply(config(
            listen_any(),
            vec![rule("web", &[("blue", 50), ("green", 50)])],
            vec![
                group("blue", Some(fast_health()), vec![tcp(&blue)]),
                group("green", Some(fast_health()), vec![tcp(&green)]),
            ],
        ))
        .unwrap();
    wait_for("blue healthy, green unhealthy", || {
        state_of(&proxy, &tcp(&blue)) == Some(HealthState::Healthy)
            && state_of(&proxy, &tcp(&green)) == Some(HealthState::Unhealthy)
    })
    .await;
    let url = format!("http://{}/", bound(&proxy));
    let c = client();
    for _ in 0..20 {
        assert_eq!(get(&c, &url).await.unwrap().1, "blue");
    }
    blue.healthy.store(false, Ordering::SeqCst);
    wait_for("blue unhealthy", || {
        state_of(&proxy, &tcp(&blue)) == Some(HealthState::Unhealthy)
    })
    .await;
    // Nothing healthy: fail open, by weight, to everything registered.
    let mut bodies = Vec::new();
    for _ in 0..20 {
        let (status, body) = get(&c, &url).await.unwrap();
        assert_eq!(status, StatusCode::OK);
        bodies.push(body);
    }
    assert_eq!(
        bodies.iter().filter(|b| *b == "green").count(),
        10,
        "{bodies:?}"
    );
}

#[tokio::test]
async fn draining_finishes_in_flight_and_sends_new_requests_elsewhere() {
    let (old, new) = (backend("old").await, backend("new").await);
    let proxy = Proxy::new().unwrap();
    let groups = |eps: Vec<Endpoint>| vec![group("g", None, eps)];
    proxy
        .apply(config(
            listen_any(),
            vec![rule("web", &[("g", 1)])],
            groups(vec![tcp(&old)]),
        ))
        .unwrap();
    let base = format!("http://{}", bound(&proxy));
    let c = client();

    let slow = tokio::spawn({
        let (c, url) = (c.clone(), format!("{base}/slow?1500"));
        async move { get(&c, &url).await }
    });
    wait_for("the slow request to be in flight", || {
        // The backend counts it only at the end; the proxy holds the request's slot
        // before it opens the connection, so an open connection means in flight.
        proxy
            .metrics_text()
            .contains("hoist_proxy_upstream_connections{target_group=\"g\"")
    })
    .await;
    proxy
        .apply(config(
            listen_any(),
            vec![rule("web", &[("g", 1)])],
            groups(vec![tcp(&new)]),
        ))
        .unwrap();
    let draining = proxy.draining();
    assert_eq!(draining.len(), 1, "{draining:?}");
    assert_eq!(
        (draining[0].endpoint.clone(), draining[0].in_flight),
        (tcp(&old), 1)
    );
    assert_eq!(state_of(&proxy, &tcp(&old)), Some(HealthState::Draining));
    for _ in 0..10 {
        assert_eq!(
            get(&c, &format!("{base}/")).await.unwrap(),
            (StatusCode::OK, "new".to_owned())
        );
    }
    assert_eq!(
        slow.await.unwrap().unwrap(),
        (StatusCode::OK, "old".to_owned())
    );
    wait_for("draining to end once idle", || proxy.draining().is_empty()).await;
    assert_eq!(state_of(&proxy, &tcp(&old)), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_swaps_under_load_drop_nothing() {
    let backends = [backend("a").await, backend("b").await, backend("c").await];
    // Two worker runtimes with SO_REUSEPORT sockets and per-worker pools.
    let proxy = Arc::new(Proxy::with_workers(2).unwrap());
    // Partial changes, and whole replacements (as a blue/green switch is: every
    // target a request could have picked before the swap drains after it).
    let sets: [&[usize]; 6] = [&[0], &[0, 1], &[1], &[1, 2], &[2, 0], &[1]];
    let apply = |set: &[usize]| {
        let eps = set.iter().map(|&i| tcp(&backends[i])).collect();
        let mut forward = rule("web", &[("g", 1)]);
        forward.path_prefix = "/".into();
        proxy
            .apply(config(
                listen_any(),
                vec![forward],
                vec![group("g", None, eps)],
            ))
            .unwrap();
    };
    apply(sets[0]);
    let url = format!("http://{}/slow?5", bound(&proxy));
    let stop = Arc::new(AtomicBool::new(false));
    let mut loops = Vec::new();
    for _ in 0..4 {
        let (c, url, stop) = (client(), url.clone(), stop.clone());
        loops.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0usize, Vec::new());
            while !stop.load(Ordering::SeqCst) {
                match get(&c, &url).await {
                    Ok((StatusCode::OK, _)) => ok += 1,
                    other => failed.push(format!("{other:?}")),
                }
            }
            (ok, failed)
        }));
    }
    for round in 0..36 {
        tokio::time::sleep(Duration::from_millis(30)).await;
        apply(sets[round % sets.len()]);
    }
    stop.store(true, Ordering::SeqCst);
    let mut total = 0;
    for l in loops {
        let (ok, failed) = l.await.unwrap();
        assert!(failed.is_empty(), "failed requests: {failed:?}");
        total += ok;
    }
    assert!(total > 0);
    let counts = proxy.request_counts().service("web");
    assert_eq!(counts.server_errors(), 0);
    assert!(backends.iter().all(|b| b.hits.load(Ordering::SeqCst) > 0));
}

#[tokio::test]
async fn websocket_upgrade_is_proxied_both_ways() {
    let ws = backend("ws").await;
    let proxy = Proxy::new().unwrap();
    proxy
        .apply(config(
            listen_any(),
            vec![rule("web", &[("g", 1)])],
            vec![group("g", None, vec![tcp(&ws)])],
        ))
        .unwrap();
    let stream = tokio::net::TcpStream::connect(bound(&proxy)).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn.with_upgrades());
    let req = Request::get("/ws")
        .header("host", "example.com")
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(resp.headers()["upgrade"], "websocket");
    let mut io = TokioIo::new(hyper::upgrade::on(resp).await.unwrap());
    for msg in ["hello", "again"] {
        io.write_all(msg.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 3 + msg.len()];
        io.read_exact(&mut buf).await.unwrap();
        assert_eq!(String::from_utf8(buf).unwrap(), format!("ws:{msg}"));
    }
    // An open WebSocket counts as in flight: removing its target drains, not cuts.
    proxy
        .apply(config(
            listen_any(),
            vec![rule("web", &[("g", 1)])],
            vec![group("g", None, vec![])],
        ))
        .unwrap();
    assert_eq!(proxy.draining().first().map(|d| d.in_flight), Some(1));
    io.write_all(b"still").await.unwrap();
    let mut buf = [0u8; 8];
    io.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ws:still");
    drop(io);
    wait_for("the closed WebSocket to end the drain", || {
        proxy.draining().is_empty()
    })
    .await;
}

#[tokio::test]
async fn http2_clients_are_served_and_forwarded_headers_set() {
    let b = backend("b").await;
    let proxy = Proxy::new().unwrap();
    proxy
        .apply(config(
            listen_any(),
            vec![rule("web", &[("g", 1)])],
            vec![group("g", None, vec![tcp(&b)])],
        ))
        .unwrap();
    let addr = bound(&proxy);
    let h2: HttpClient = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let resp = h2
        .get(format!("http://{addr}/headers").parse().unwrap())
        .await
        .unwrap();
    assert_eq!(resp.version(), hyper::Version::HTTP_2);
    let body = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert_eq!(
        body,
        format!("xff=127.0.0.1 proto=http xhost={addr} host={addr} keepalive= custom= connection=")
    );

    // HTTP/1.1: X-Forwarded-For is appended to, hop-by-hop headers are dropped.
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::get("/headers")
        .header("host", "app.example.com")
        .header("x-forwarded-for", "203.0.113.7")
        .header("connection", "keep-alive, x-hop")
        .header("keep-alive", "timeout=5")
        .header("x-hop", "secret")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    let body = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert_eq!(
        body,
        "xff=203.0.113.7, 127.0.0.1 proto=http xhost=app.example.com host=app.example.com keepalive= custom= connection="
    );
}

/// A TLS connection to `addr` trusting `cert`, offering `alpn`; returns the stream
/// and the protocol the server chose.
async fn tls_connect(
    addr: SocketAddr,
    cert: &rcgen::Certificate,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap()
}

#[tokio::test]
async fn https_listeners_serve_http2_and_http1_by_alpn_and_refuse_bad_certificates() {
    let b = backend("b").await;
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let proxy = Proxy::new().unwrap();
    let mut cfg = config(
        listen_any(),
        vec![rule("web", &[("g", 1)])],
        vec![group("g", None, vec![tcp(&b)])],
    );
    cfg.listeners[0].tls = Some(hoist_proxy::ListenerTls {
        cert: cert.clone(),
        key: key.clone(),
    });
    proxy.apply(cfg.clone()).unwrap();
    let addr = bound(&proxy);

    // h2 by ALPN.
    let tls = tls_connect(addr, &ck.cert, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = Request::get(format!("https://localhost:{}/headers", addr.port()))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.version(), hyper::Version::HTTP_2);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("proto=https"), "{body}");

    // HTTP/1.1 when the client offers only that.
    let tls = tls_connect(addr, &ck.cert, &[b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::get("/headers")
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("proto=https"));

    // Plain HTTP on the HTTPS port gets no answer.
    assert!(get(&client(), &format!("http://{addr}/")).await.is_err());

    // A configuration whose key does not fit still applies, the listener keeping
    // the certificate it had (the files change apart from the configuration; one
    // bad file must not freeze every other change); the status says so.
    let other = rcgen::generate_simple_self_signed(vec!["x".to_owned()]).unwrap();
    let other_key = dir.path().join("other.pem");
    std::fs::write(&other_key, other.signing_key.serialize_pem()).unwrap();
    let mut bad = cfg.clone();
    bad.listeners[0].tls = Some(hoist_proxy::ListenerTls {
        cert,
        key: other_key,
    });
    bad.generation = 7;
    proxy.apply(bad.clone()).unwrap();
    assert_eq!(proxy.applied_generation(), 7);
    let e = proxy.last_error().unwrap();
    assert!(
        e.contains("other.pem") && e.contains("previous certificate"),
        "{e}"
    );
    let tls = tls_connect(addr, &ck.cert, &[b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    // A new listener with a bad certificate has nothing to fall back on: refused.
    let fresh = Proxy::new().unwrap();
    let e = fresh.apply(bad).unwrap_err().to_string();
    assert!(e.contains("other.pem"), "{e}");
    assert_eq!(fresh.applied_generation(), 0);
}

#[tokio::test]
async fn connect_failures_are_retried_on_another_target() {
    let live = backend("live").await;
    let dead = Endpoint::Tcp(SocketAddr::from(([127, 0, 0, 1], free_port())));
    let proxy = Proxy::new().unwrap();
    proxy
        .apply(config(
            listen_any(),
            vec![rule("web", &[("g", 1)])],
            vec![group("g", None, vec![dead.clone(), tcp(&live)])],
        ))
        .unwrap();
    let url = format!("http://{}/", bound(&proxy));
    let c = client();
    for _ in 0..100 {
        assert_eq!(
            get(&c, &url).await.unwrap(),
            (StatusCode::OK, "live".to_owned())
        );
    }
    assert_eq!(live.hits.load(Ordering::SeqCst), 100);

    // Only dead targets: 502 with a short body; none at all: 503.
    proxy
        .apply(config(
            listen_any(),
            vec![rule("web", &[("g", 1)])],
            vec![group("g", None, vec![dead])],
        ))
        .unwrap();
    let (status, body) = get(&c, &url).await.unwrap();
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(
        body.starts_with("502 Bad Gateway: no target could be reached"),
        "{body}"
    );
    proxy
        .apply(config(
            listen_any(),
            vec![rule("web", &[("g", 1)])],
            vec![group("g", None, vec![])],
        ))
        .unwrap();
    assert_eq!(
        get(&c, &url).await.unwrap().0,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn slow_targets_get_504() {
    let b = backend("b").await;
    let proxy = Proxy::new().unwrap();
    let mut cfg = config(
        listen_any(),
        vec![rule("web", &[("g", 1)])],
        vec![group("g", None, vec![tcp(&b)])],
    );
    cfg.timeouts.request = Duration::from_millis(200);
    proxy.apply(cfg).unwrap();
    let (status, _) = get(&client(), &format!("http://{}/slow?3000", bound(&proxy)))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
}

#[tokio::test]
async fn metrics_and_request_counts() {
    let b = backend("b").await;
    let proxy = Proxy::new().unwrap();
    proxy
        .apply(config(
            listen_any(),
            vec![rule("web", &[("blue", 1)])],
            vec![group("blue", Some(fast_health()), vec![tcp(&b)])],
        ))
        .unwrap();
    wait_for("healthy", || {
        state_of(&proxy, &tcp(&b)) == Some(HealthState::Healthy)
    })
    .await;
    let admin = proxy.serve_admin(listen_any()).unwrap();
    let url = format!("http://{}/", bound(&proxy));
    let c = client();
    let before = proxy.request_counts();
    for _ in 0..7 {
        get(&c, &url).await.unwrap();
    }
    get(&c, &format!("{url}missing-in-backend-but-200"))
        .await
        .unwrap();
    let window = proxy.request_counts().since(&before);
    assert_eq!(window.route("web", "blue").by_class, [0, 8, 0, 0, 0]);
    assert_eq!(window.service("web").ratio_5xx(), Some(0.0));

    let (status, text) = get(&c, &format!("http://{admin}/metrics")).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    let target = b.addr.to_string();
    for line in [
        format!("hoist_proxy_requests_total{{service=\"web\",target_group=\"blue\",target=\"{target}\",code=\"2xx\"}} 8"),
        format!("hoist_proxy_request_duration_seconds_count{{service=\"web\",target_group=\"blue\",target=\"{target}\"}} 8"),
        format!("hoist_proxy_target_healthy{{target_group=\"blue\",target=\"{target}\"}} 1"),
        format!("hoist_proxy_upstream_connections{{target_group=\"blue\",target=\"{target}\"}} 1"),
    ] {
        assert!(text.lines().any(|l| l == line), "no line {line:?} in\n{text}");
    }
    let (_, health) = get(&c, &format!("http://{admin}/health")).await.unwrap();
    assert_eq!(health, format!("blue\t{target}\thealthy\n"));
}

#[tokio::test]
async fn request_bodies_reach_the_target_over_http1_and_http2() {
    let b = backend("b").await;
    let proxy = Proxy::new().unwrap();
    proxy
        .apply(config(
            listen_any(),
            vec![rule("web", &[("g", 1)])],
            vec![group("g", None, vec![tcp(&b)])],
        ))
        .unwrap();
    let url = format!("http://{}/echo", bound(&proxy));
    let big = "x".repeat(300_000);
    for http2 in [false, true] {
        let c: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
            .http2_only(http2)
            .build_http();
        let req = Request::post(url.as_str())
            .body(Full::new(Bytes::from(big.clone())))
            .unwrap();
        let resp = c.request(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body.len(), "b POST ".len() + big.len(), "http2={http2}");
        assert!(body.starts_with(b"b POST xxx"));
    }
}

/// Sends a request the target holds for a minute, through group `g`, and waits
/// until it is in flight; the handle yields its outcome.
async fn stuck_request(
    proxy: &Proxy,
) -> tokio::task::JoinHandle<Result<(StatusCode, String), String>> {
    let url = format!("http://{}/slow?60000", bound(proxy));
    let c = client();
    let slow = tokio::spawn(async move { get(&c, &url).await });
    wait_for("the stuck request to be in flight", || {
        proxy
            .metrics_text()
            .contains("hoist_proxy_upstream_connections{target_group=\"g\"")
    })
    .await;
    slow
}

#[tokio::test]
async fn drain_timeout_cuts_what_is_left() {
    let (stuck, other) = (backend("stuck").await, backend("other").await);
    let proxy = Proxy::new().unwrap();
    let mut cfg = config(
        listen_any(),
        vec![rule("web", &[("g", 1)])],
        vec![group("g", None, vec![tcp(&stuck)])],
    );
    cfg.drain_timeout = Duration::from_millis(300);
    proxy.apply(cfg.clone()).unwrap();
    let slow = stuck_request(&proxy).await;
    cfg.target_groups = vec![group("g", None, vec![tcp(&other)])];
    proxy.apply(cfg).unwrap();
    assert_eq!(proxy.draining().len(), 1);
    // Cut at the deadline: the client gets a 502 long before the target would answer.
    let (status, _) = slow.await.unwrap().unwrap();
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    wait_for("the drain to end", || proxy.draining().is_empty()).await;
    assert_eq!(stuck.hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_groups_own_drain_timeout_wins_even_once_the_group_is_gone() {
    let stuck = backend("stuck").await;
    let proxy = Proxy::new().unwrap();
    let mut g = group("g", None, vec![tcp(&stuck)]);
    g.drain_timeout = Some(Duration::from_millis(300));
    let mut cfg = config(listen_any(), vec![rule("web", &[("g", 1)])], vec![g]);
    // The configuration's own default would keep the request for a minute.
    cfg.drain_timeout = Duration::from_secs(60);
    proxy.apply(cfg.clone()).unwrap();
    let slow = stuck_request(&proxy).await;
    // The group goes away entirely: its last known drain timeout applies.
    cfg.listeners[0].rules = vec![rule("web", &[])];
    cfg.target_groups = Vec::new();
    proxy.apply(cfg).unwrap();
    let deadline = proxy.draining()[0].deadline - proxy.draining()[0].since;
    assert_eq!(deadline, Duration::from_millis(300));
    let (status, _) = slow.await.unwrap().unwrap();
    assert_eq!(status, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn a_reported_check_follows_the_targets_health_file_and_sends_no_probes() {
    let b = backend("task").await;
    // Its HTTP health path fails: only the file may make it healthy.
    b.healthy.store(false, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("health.json");
    let write = |status: &str, code: i32, output: &str| {
        let v = serde_json::json!({"Status": status, "FailingStreak": 0,
            "Log": [{"Start": "", "End": "", "ExitCode": code, "Output": output}]});
        let tmp = dir.path().join("health.tmp");
        std::fs::write(&tmp, v.to_string()).unwrap();
        std::fs::rename(&tmp, &file).unwrap();
    };
    let ep = Endpoint::Netns {
        path: "/proc/self/ns/net".into(),
        port: b.addr.port(),
        health_file: Some(file.clone()),
    };
    let hc = HealthCheck {
        mode: HealthCheckMode::Reported,
        healthy_threshold: 1,
        unhealthy_threshold: 1,
        ..fast_health()
    };
    let proxy = Proxy::new().unwrap();
    proxy
        .apply(config(
            listen_any(),
            vec![rule("web", &[("tasks", 1)])],
            vec![group("tasks", Some(hc), vec![ep.clone()])],
        ))
        .unwrap();
    // No file yet: a failure.
    wait_for("a target without its file to be unhealthy", || {
        state_of(&proxy, &ep) == Some(HealthState::Unhealthy)
    })
    .await;
    write("healthy", 0, "");
    wait_for("the target to turn healthy", || {
        state_of(&proxy, &ep) == Some(HealthState::Healthy)
    })
    .await;
    assert_eq!(b.conns.load(Ordering::SeqCst), 0, "no HTTP probe was sent");
    let url = format!("http://{}/", bound(&proxy));
    let (status, body) = get(&client(), &url).await.unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::OK, "task"));

    write("unhealthy", 1, "no /ready\n");
    wait_for("the target to turn unhealthy", || {
        state_of(&proxy, &ep) == Some(HealthState::Unhealthy)
    })
    .await;
    let reason = proxy
        .target_health()
        .into_iter()
        .find(|t| t.endpoint == ep)
        .and_then(|t| t.reason)
        .unwrap();
    assert_eq!(reason, "health check failed (exit code 1: no /ready)");
}
