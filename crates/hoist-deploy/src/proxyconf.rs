//! From services to the proxy's configuration: one target group per (service,
//! version), one rule per service on its listener, weights from the planner.
//! Pure: the controller writes the result to the proxy's config file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use std::time::Duration;

use hoist_proxy::{
    Config, Endpoint, HealthCheck, HealthCheckMode, HostMatch, Listener, ListenerTls, Rule,
    TargetGroup,
};
use hoist_runtime::Probe;

use crate::launch::TaskHealth;
use crate::spec::{HealthCheckSpec, ServiceSpec};

/// One version's registered tasks.
#[derive(Clone, Debug)]
pub struct VersionTargets {
    /// How its tasks' health is known.
    pub health: TaskHealth,
    /// Where its tasks listen: (network namespace path, container port, the
    /// task's health file). The health file reaches the proxy only for
    /// [`TaskHealth::Image`].
    pub endpoints: Vec<(PathBuf, u16, Option<PathBuf>)>,
}

/// What the proxy needs of one service.
#[derive(Clone, Debug)]
pub struct ServiceRoute {
    /// The active deployment's spec (listener and rule).
    pub spec: ServiceSpec,
    /// Relative weight per version; versions absent or at 0 take no traffic.
    pub weights: BTreeMap<String, u32>,
    /// Registered tasks per version.
    pub versions: BTreeMap<String, VersionTargets>,
    /// A blue/green test listener serving one version alone.
    pub test: Option<(SocketAddr, String)>,
}

impl ServiceRoute {
    /// The service's rule with nothing behind it (it answers 503).
    pub fn closed(spec: ServiceSpec) -> ServiceRoute {
        ServiceRoute {
            spec,
            weights: BTreeMap::new(),
            versions: BTreeMap::new(),
            test: None,
        }
    }
}

/// The target group of a service's version.
pub fn group_name(service: &str, version: &str) -> String {
    format!("{service}.{version}")
}

/// The proxy configuration for `routes` (generation left at its default).
pub fn build(routes: &[ServiceRoute]) -> Config {
    let mut listeners: BTreeMap<SocketAddr, Vec<Rule>> = BTreeMap::new();
    // A shared address takes the certificate of the first service (by name) giving one.
    let mut tls: BTreeMap<SocketAddr, ListenerTls> = BTreeMap::new();
    let mut groups = Vec::new();
    for r in routes {
        let name = r.spec.name.as_str();
        for (version, t) in &r.versions {
            let reported = matches!(t.health, TaskHealth::Image(_));
            groups.push(TargetGroup {
                drain_timeout: Some(r.spec.drain_timeout),
                name: group_name(name, version),
                health_check: match &t.health {
                    TaskHealth::Http(h) => Some(health_check(h)),
                    TaskHealth::Image(p) => Some(reported_check(p)),
                    TaskHealth::Running => None,
                },
                targets: t
                    .endpoints
                    .iter()
                    .map(|(path, port, file)| Endpoint::Netns {
                        path: path.clone(),
                        port: *port,
                        health_file: file.clone().filter(|_| reported),
                    })
                    .collect(),
            });
        }
        let forward = r
            .weights
            .iter()
            .filter(|(v, w)| **w > 0 && r.versions.contains_key(*v))
            .map(|(v, w)| hoist_proxy::WeightedGroup {
                target_group: group_name(name, v),
                weight: *w,
            })
            .collect();
        let l = &r.spec.listener;
        if let Some(t) = &l.tls {
            tls.entry(l.addr).or_insert_with(|| ListenerTls {
                cert: t.cert.clone(),
                key: t.key.clone(),
            });
        }
        listeners.entry(l.addr).or_default().push(Rule {
            service: name.to_owned(),
            host: l.host.as_deref().map(HostMatch::parse),
            path_prefix: l.path.clone(),
            forward,
        });
        if let Some((addr, version)) = &r.test {
            let forward = if r.versions.contains_key(version) {
                vec![hoist_proxy::WeightedGroup {
                    target_group: group_name(name, version),
                    weight: 1,
                }]
            } else {
                Vec::new()
            };
            listeners.entry(*addr).or_default().push(Rule {
                service: name.to_owned(),
                host: None,
                path_prefix: "/".to_owned(),
                forward,
            });
        }
    }
    let listeners = listeners
        .into_iter()
        .map(|(addr, mut rules)| {
            rules.sort_by(|a, b| {
                rule_rank(a)
                    .cmp(&rule_rank(b))
                    .then_with(|| a.service.cmp(&b.service))
            });
            Listener {
                addr,
                rules,
                tls: tls.remove(&addr),
            }
        })
        .collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    Config {
        listeners,
        target_groups: groups,
        ..Config::default()
    }
}

/// Most specific first: exact hosts, then wildcard hosts, then any host; within
/// those, longer path prefixes first.
fn rule_rank(r: &Rule) -> (u8, std::cmp::Reverse<usize>) {
    let host = match &r.host {
        Some(HostMatch::Exact(_)) => 0,
        Some(HostMatch::Suffix(_)) => 1,
        None => 2,
    };
    (host, std::cmp::Reverse(r.path_prefix.len()))
}

fn health_check(h: &HealthCheckSpec) -> HealthCheck {
    HealthCheck {
        path: h.path.clone(),
        interval: h.interval,
        timeout: h.timeout,
        healthy_threshold: h.healthy_threshold.0,
        unhealthy_threshold: h.unhealthy_threshold.0,
        ..HealthCheck::default()
    }
}

/// The proxy's side of an image's `HEALTHCHECK`: read each task's verdict
/// (every interval, at most every second), one verdict each way, since the
/// task's helper already applied the retries. The proxy counts a verdict as
/// stale after three times (interval + timeout), so the timeout given is the
/// probe's whole period: a probe every interval, each taking up to its timeout.
fn reported_check(p: &Probe) -> HealthCheck {
    HealthCheck {
        mode: HealthCheckMode::Reported,
        interval: p
            .interval
            .clamp(Duration::from_millis(100), Duration::from_secs(1)),
        timeout: p.interval + p.timeout,
        healthy_threshold: 1,
        unhealthy_threshold: 1,
        ..HealthCheck::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn spec(name: &str, listener: &str) -> ServiceSpec {
        ServiceSpec::parse(
            "t.yml",
            &format!("name: {name}\nimage: x\nlistener: {listener}\n"),
        )
        .unwrap()
    }

    fn targets(n: u16) -> VersionTargets {
        VersionTargets {
            health: TaskHealth::Http(HealthCheckSpec::default()),
            endpoints: (0..n)
                .map(|i| (PathBuf::from(format!("/proc/{i}/ns/net")), 8080, None))
                .collect(),
        }
    }

    #[test]
    fn services_share_a_listener_most_specific_rule_first() {
        let web = spec("web", "{addr: 127.0.0.1:8080}");
        let api = spec("api", "{addr: 127.0.0.1:8080, path: /api}");
        let admin = spec("admin", "{addr: 127.0.0.1:8080, host: admin.example.com}");
        let route = |s: &ServiceSpec| ServiceRoute {
            spec: s.clone(),
            weights: BTreeMap::from([("v1".to_owned(), 100)]),
            versions: BTreeMap::from([("v1".to_owned(), targets(1))]),
            test: None,
        };
        let c = build(&[route(&web), route(&api), route(&admin)]);
        assert_eq!(c.listeners.len(), 1);
        let order: Vec<&str> = c.listeners[0]
            .rules
            .iter()
            .map(|r| r.service.as_str())
            .collect();
        assert_eq!(order, ["admin", "api", "web"]);
        assert_eq!(c.target_groups.len(), 3);
        assert_eq!(c.target_groups[0].name, "admin.v1");
    }

    #[test]
    fn weights_and_the_test_listener_follow_the_plan() {
        let web = spec("web", "{addr: 127.0.0.1:8080}");
        let r = ServiceRoute {
            spec: web.clone(),
            weights: BTreeMap::from([("blue".to_owned(), 9000), ("green".to_owned(), 1000)]),
            versions: BTreeMap::from([
                ("blue".to_owned(), targets(2)),
                ("green".to_owned(), targets(2)),
            ]),
            test: Some(("127.0.0.1:9090".parse().unwrap(), "green".to_owned())),
        };
        let c = build(&[r]);
        // Deregistered tasks drain for the service's own time.
        assert!(c
            .target_groups
            .iter()
            .all(|g| g.drain_timeout == Some(web.drain_timeout)));
        let main = &c.listeners[0];
        assert_eq!(main.rules[0].forward.len(), 2);
        assert_eq!(main.rules[0].forward[1].target_group, "web.green");
        assert_eq!(main.rules[0].forward[1].weight, 1000);
        let test = &c.listeners[1];
        assert_eq!(test.addr.port(), 9090);
        assert_eq!(test.rules[0].forward[0].target_group, "web.green");
        // A version at weight 0 is health-checked but takes no traffic.
        let r = ServiceRoute {
            spec: web.clone(),
            weights: BTreeMap::from([("blue".to_owned(), 100), ("green".to_owned(), 0)]),
            versions: BTreeMap::from([
                ("blue".to_owned(), targets(2)),
                ("green".to_owned(), targets(1)),
            ]),
            test: None,
        };
        let c = build(&[r]);
        assert_eq!(c.target_groups.len(), 2);
        assert_eq!(c.listeners[0].rules[0].forward.len(), 1);
    }

    #[test]
    fn image_healthchecks_make_reported_groups_with_health_files() {
        let web = spec("web", "{addr: 127.0.0.1:8080}");
        let probe = Probe {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            ..Probe::new(hoist_runtime::ProbeCommand::Exec(vec!["true".into()]))
        };
        let file = PathBuf::from("/state/hoist-1/health.json");
        let versions = |health: TaskHealth| VersionTargets {
            health,
            endpoints: vec![(PathBuf::from("/proc/1/ns/net"), 8080, Some(file.clone()))],
        };
        let route = |health: TaskHealth| ServiceRoute {
            spec: web.clone(),
            weights: BTreeMap::from([("v1".to_owned(), 100)]),
            versions: BTreeMap::from([("v1".to_owned(), versions(health))]),
            test: None,
        };
        let c = build(&[route(TaskHealth::Image(probe))]);
        let g = &c.target_groups[0];
        let hc = g.health_check.as_ref().unwrap();
        assert_eq!(hc.mode, HealthCheckMode::Reported);
        assert_eq!((hc.healthy_threshold, hc.unhealthy_threshold), (1, 1));
        assert_eq!(hc.interval, Duration::from_secs(1));
        assert_eq!(hc.timeout, Duration::from_secs(7));
        assert_eq!(
            g.targets[0],
            Endpoint::Netns {
                path: "/proc/1/ns/net".into(),
                port: 8080,
                health_file: Some(file.clone()),
            }
        );
        // HTTP checks keep the endpoint as before (no health file); no check at
        // all is no proxy health check.
        let c = build(&[route(TaskHealth::Http(HealthCheckSpec::default()))]);
        let g = &c.target_groups[0];
        assert_eq!(g.health_check.as_ref().unwrap().mode, HealthCheckMode::Http);
        assert_eq!(g.targets[0], g.targets[0].without_health_file());
        let c = build(&[route(TaskHealth::Running)]);
        assert_eq!(c.target_groups[0].health_check, None);
    }
}
