//! Configuration helpers shared by the proxy's integration tests.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use hoist_proxy::{
    Config, Endpoint, HealthCheck, Listener, Proxy, Rule, TargetGroup, Timeouts, WeightedGroup,
};

pub fn group(name: &str, hc: Option<HealthCheck>, targets: Vec<Endpoint>) -> TargetGroup {
    TargetGroup {
        drain_timeout: None,
        name: name.into(),
        health_check: hc,
        targets,
    }
}

/// A rule for every host and path, forwarding to `forward`'s groups by weight.
pub fn rule(service: &str, forward: &[(&str, u32)]) -> Rule {
    Rule {
        service: service.into(),
        host: None,
        path_prefix: "/".into(),
        forward: forward
            .iter()
            .map(|(g, w)| WeightedGroup {
                target_group: (*g).into(),
                weight: *w,
            })
            .collect(),
    }
}

/// One listener on `listen` with `rules`, and `groups`.
pub fn config(listen: SocketAddr, rules: Vec<Rule>, groups: Vec<TargetGroup>) -> Config {
    Config {
        generation: 0,
        listeners: vec![Listener {
            addr: listen,
            tls: None,
            rules,
        }],
        target_groups: groups,
        timeouts: Timeouts {
            connect: Duration::from_secs(2),
            request: Duration::from_secs(30),
        },
        drain_timeout: Duration::from_secs(30),
    }
}

/// A listener address the kernel picks the port of.
pub fn listen_any() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Where the [`listen_any`] listener of `proxy` is bound.
pub fn bound(proxy: &Proxy) -> SocketAddr {
    proxy.listener_addrs()[&listen_any()]
}
