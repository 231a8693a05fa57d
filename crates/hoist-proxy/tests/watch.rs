//! `watch::run_from_file` in process, watched through `admin::AdminClient`: the typed
//! admin API a controller uses. Real sockets and real files; waits poll with generous
//! deadlines, nothing passes or fails on timing.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hoist_proxy::admin::AdminClient;
use hoist_proxy::watch::{self, ADMIN_ADDR_FILE};
use hoist_proxy::{Config, Endpoint, HealthState, Listener, Rule, TargetGroup, WeightedGroup};
use http_body_util::{BodyExt, Empty, Full};
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// A backend answering its name; `/fail` answers 500, `/slow` signals `arrived` and
/// waits for `release`.
async fn backend(name: &'static str, arrived: Arc<Notify>, release: Arc<Notify>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (arrived, release) = (arrived.clone(), release.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (arrived, release) = (arrived.clone(), release.clone());
                    async move {
                        let mut resp = Response::new(Full::new(Bytes::from(name)));
                        match req.uri().path() {
                            "/fail" => {
                                *resp.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR
                            }
                            "/slow" => {
                                arrived.notify_one();
                                release.notified().await;
                            }
                            _ => {}
                        }
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

fn config(generation: u64, group: &str, target: SocketAddr) -> Config {
    Config {
        generation,
        listeners: vec![Listener {
            addr: "127.0.0.1:0".parse().unwrap(),
            tls: None,
            rules: vec![Rule {
                service: "web".into(),
                host: None,
                path_prefix: "/".into(),
                forward: vec![WeightedGroup {
                    target_group: group.into(),
                    weight: 1,
                }],
            }],
        }],
        target_groups: vec![TargetGroup {
            drain_timeout: None,
            name: group.into(),
            health_check: None,
            targets: vec![Endpoint::Tcp(target)],
        }],
        ..Config::default()
    }
}

/// Polls `f` every 20 ms until it gives `Some`, failing after a generous 30 s.
async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, mut f: impl FnMut() -> F) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let resp = client
        .get(format!("http://{addr}{path}").parse().unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn admin_of(dir: &Path) -> AdminClient {
    let text = eventually("admin.addr", || async {
        std::fs::read_to_string(dir.join(ADMIN_ADDR_FILE)).ok()
    })
    .await;
    AdminClient::new(text.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_view_through_the_admin_client() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy/config.json");
    let (arrived, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let blue = backend("blue", arrived.clone(), release.clone()).await;
    let green = backend("green", arrived.clone(), release.clone()).await;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    watch::write_config(&path, &config(1, "blue", blue)).unwrap();

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run_path = path.clone();
    let run = tokio::spawn(async move {
        watch::run_from_file(&run_path, "127.0.0.1:0".parse().unwrap(), 0, async {
            let _ = stop_rx.await;
        })
        .await
    });
    let admin = admin_of(path.parent().unwrap()).await;

    let status = admin.status().await.unwrap();
    assert_eq!(status.generation, 1);
    assert_eq!(status.error, None);
    assert_eq!(status.pid, std::process::id());
    let listen = status.listeners[&"127.0.0.1:0".parse().unwrap()];
    assert_eq!(get(listen, "/").await, (200, "blue".to_owned()));

    let targets = admin.targets().await.unwrap();
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].target_group, "blue");
    assert_eq!(targets[0].endpoint, Endpoint::Tcp(blue));
    assert_eq!(targets[0].state, HealthState::Healthy);

    // Counts: one 2xx so far; a 5xx shows up in the diff of two snapshots.
    let before = admin.counts().await.unwrap();
    assert_eq!(get(listen, "/fail").await.0, 500);
    assert_eq!(get(listen, "/").await.0, 200);
    let window = admin.counts().await.unwrap().since(&before);
    assert_eq!(window.route("web", "blue").total(), 2);
    assert_eq!(window.route("web", "blue").server_errors(), 1);
    assert_eq!(window.service("web").ratio_5xx(), Some(0.5));

    // A request in flight on blue while the file switches to green: blue drains.
    let slow = tokio::spawn(get(listen, "/slow"));
    tokio::time::timeout(Duration::from_secs(30), arrived.notified())
        .await
        .expect("the slow request reaches blue");
    watch::write_config(&path, &config(2, "green", green)).unwrap();
    eventually("generation 2", || async {
        (admin.status().await.unwrap().generation == 2).then_some(())
    })
    .await;
    assert_eq!(get(listen, "/").await, (200, "green".to_owned()));
    let draining = admin.draining().await.unwrap();
    assert_eq!(draining.len(), 1, "{draining:?}");
    assert_eq!(draining[0].target_group, "blue");
    assert_eq!(draining[0].endpoint, Endpoint::Tcp(blue));
    assert_eq!(draining[0].in_flight, 1);
    assert!(draining[0].remaining_ms > 0 && draining[0].remaining_ms <= 30_000);
    let states: Vec<_> = admin
        .targets()
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.target_group, t.state))
        .collect();
    assert_eq!(
        states,
        vec![
            ("blue".to_owned(), HealthState::Draining),
            ("green".to_owned(), HealthState::Healthy)
        ]
    );
    release.notify_one();
    assert_eq!(slow.await.unwrap(), (200, "blue".to_owned()));
    eventually("blue to finish draining", || async {
        admin.draining().await.unwrap().is_empty().then_some(())
    })
    .await;

    // A file naming a missing group parses but cannot be applied: green keeps serving.
    let mut bad = config(3, "green", green);
    bad.listeners[0].rules[0].forward[0].target_group = "nope".into();
    watch::write_config(&path, &bad).unwrap();
    let error = eventually("the rejection", || async {
        admin.status().await.unwrap().error
    })
    .await;
    assert!(
        error.contains("generation 3") && error.contains("\"nope\""),
        "{error}"
    );
    assert_eq!(admin.status().await.unwrap().generation, 2);
    assert_eq!(get(listen, "/").await, (200, "green".to_owned()));

    stop_tx.send(()).unwrap();
    run.await.unwrap().unwrap();
    assert!(!path.parent().unwrap().join(ADMIN_ADDR_FILE).exists());
    // The admin task is aborted with the proxy; the runtime drops it (and closes
    // its listener) at its next turn, not within `run`'s return.
    eventually("the admin listener to close after stop", || async {
        admin.status().await.is_err().then_some(())
    })
    .await;
}
