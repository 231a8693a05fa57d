//! A standalone proxy for `bench/proxy.sh`: `bench_proxy LISTEN TARGET [TARGET...]`
//! forwards every request on LISTEN to the TCP targets, round-robin, no health check.
//! `HOIST_BENCH_RUNTIME` picks how it runs: `workers` (default) `Proxy::with_workers`
//! with one worker per CPU, as `hoist proxy` runs when the daemon starts it; `multi` a
//! multi-thread Tokio runtime; `current` one current-thread runtime.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use hoist_proxy::{Config, Endpoint, Listener, Proxy, Rule, TargetGroup, WeightedGroup};

fn main() {
    let flavour = std::env::var("HOIST_BENCH_RUNTIME").unwrap_or_default();
    let mut builder = match flavour.as_str() {
        "multi" => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    let workers = match flavour.as_str() {
        "multi" | "current" => 0,
        _ => std::thread::available_parallelism().map_or(1, usize::from),
    };
    builder.enable_all().build().unwrap().block_on(run(workers));
}

async fn run(workers: usize) {
    let mut args = std::env::args().skip(1);
    let listen: SocketAddr = args.next().expect("LISTEN").parse().unwrap();
    let targets: Vec<Endpoint> = args.map(|a| Endpoint::Tcp(a.parse().unwrap())).collect();
    let proxy = Proxy::with_workers(workers).unwrap();
    proxy
        .apply(Config {
            listeners: vec![Listener {
                addr: listen,
                tls: None,
                rules: vec![Rule {
                    service: "bench".into(),
                    host: None,
                    path_prefix: "/".into(),
                    forward: vec![WeightedGroup {
                        target_group: "bench".into(),
                        weight: 1,
                    }],
                }],
            }],
            target_groups: vec![TargetGroup {
                drain_timeout: None,
                name: "bench".into(),
                health_check: None,
                targets,
            }],
            ..Config::default()
        })
        .unwrap();
    tokio::signal::ctrl_c().await.unwrap();
}
