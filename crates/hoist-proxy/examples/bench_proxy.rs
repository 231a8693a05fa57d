//! A standalone proxy for `bench/proxy.sh`: `bench_proxy LISTEN TARGET [TARGET...]`
//! forwards every request on LISTEN to the TCP targets, round-robin, no health check.
//! `HOIST_BENCH_RUNTIME=current` runs it on a current-thread Tokio runtime instead of
//! the default multi-thread one.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use hoist_proxy::{Config, Endpoint, Listener, Proxy, Rule, TargetGroup, WeightedGroup};

fn main() {
    let mut builder = match std::env::var("HOIST_BENCH_RUNTIME").as_deref() {
        Ok("current") => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all().build().unwrap().block_on(run());
}

async fn run() {
    let mut args = std::env::args().skip(1);
    let listen: SocketAddr = args.next().expect("LISTEN").parse().unwrap();
    let targets: Vec<Endpoint> = args.map(|a| Endpoint::Tcp(a.parse().unwrap())).collect();
    let proxy = Proxy::new().unwrap();
    proxy
        .apply(Config {
            listeners: vec![Listener {
                addr: listen,
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
                name: "bench".into(),
                health_check: None,
                targets,
            }],
            ..Config::default()
        })
        .unwrap();
    tokio::signal::ctrl_c().await.unwrap();
}
