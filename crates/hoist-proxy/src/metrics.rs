//! Prometheus metrics and the request counters the controller diffs for error rates.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

pub(crate) type Labels = Vec<(&'static str, String)>;

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~16 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

pub(crate) struct Metrics {
    registry: Registry,
    pub(crate) requests: Family<Labels, Counter>,
    pub(crate) latency: Family<Labels, Histogram, fn() -> Histogram>,
    pub(crate) upstream_connections: Family<Labels, Gauge>,
    pub(crate) downstream_connections: Family<Labels, Gauge>,
    pub(crate) healthy: Family<Labels, Gauge>,
    counts: Mutex<HashMap<(String, String), Arc<ClassCounters>>>,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("hoist_proxy");
        let requests = Family::<Labels, Counter>::default();
        let latency =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let upstream_connections = Family::<Labels, Gauge>::default();
        let downstream_connections = Family::<Labels, Gauge>::default();
        let healthy = Family::<Labels, Gauge>::default();
        registry.register(
            "requests",
            "Requests answered, by service, target group, target and status class \
             (target empty when the proxy answered itself)",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from receiving a request to sending the response head",
            latency.clone(),
        );
        registry.register(
            "upstream_connections",
            "Open connections to a target (pooled idle, busy and WebSocket)",
            upstream_connections.clone(),
        );
        registry.register(
            "client_connections",
            "Open client connections on a listener",
            downstream_connections.clone(),
        );
        registry.register(
            "target_healthy",
            "1 when the target passes its health check, 0 otherwise (initial, unhealthy)",
            healthy.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            upstream_connections,
            downstream_connections,
            healthy,
            counts: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub(crate) fn counters(&self, service: &str, group: &str) -> Arc<ClassCounters> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts
            .entry((service.to_owned(), group.to_owned()))
            .or_default()
            .clone()
    }

    pub(crate) fn snapshot(&self) -> RequestCounts {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        RequestCounts {
            routes: counts
                .iter()
                .map(|(k, c)| {
                    (
                        k.clone(),
                        StatusCounts {
                            by_class: c.0.each_ref().map(|a| a.load(Ordering::Relaxed)),
                        },
                    )
                })
                .collect(),
        }
    }
}

pub(crate) fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Live counters of one (service, target group): index 0 is 1xx .. index 4 is 5xx.
#[derive(Default, Debug)]
pub(crate) struct ClassCounters([AtomicU64; 5]);

impl ClassCounters {
    pub(crate) fn record(&self, status: u16) {
        let i = usize::from((status / 100).clamp(1, 5) - 1);
        self.0[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts of answered requests by status class: `by_class[0]` is 1xx .. `by_class[4]`
/// is 5xx. Proxy-generated answers (502, 503, 504, 404 for no rule) are included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatusCounts {
    /// Requests per status class, 1xx first.
    pub by_class: [u64; 5],
}

impl StatusCounts {
    /// All requests.
    pub fn total(&self) -> u64 {
        self.by_class.iter().sum()
    }

    /// Requests answered with 5xx.
    pub fn server_errors(&self) -> u64 {
        self.by_class[4]
    }

    /// 5xx / total, `None` when there were no requests.
    pub fn ratio_5xx(&self) -> Option<f64> {
        let total = self.total();
        (total > 0).then(|| self.server_errors() as f64 / total as f64)
    }

    fn saturating_sub(&self, earlier: &StatusCounts) -> StatusCounts {
        let mut by_class = self.by_class;
        for (n, e) in by_class.iter_mut().zip(earlier.by_class) {
            *n = n.saturating_sub(e);
        }
        StatusCounts { by_class }
    }

    fn add(&mut self, other: &StatusCounts) {
        for (n, o) in self.by_class.iter_mut().zip(other.by_class) {
            *n += o;
        }
    }
}

/// A snapshot of monotonically increasing request counters per (service, target group),
/// from [`crate::Proxy::request_counts`]. Take one at the start of a window and one at
/// its end; [`RequestCounts::since`] gives the window's counts. The target group is
/// empty for answers given before a group was chosen (no healthy target anywhere).
///
/// Its JSON form (`GET /counts`) is an array with one object per (service, target
/// group), sorted: `{"service", "target_group", "total", "1xx", "2xx", "3xx", "4xx",
/// "5xx"}`; `total` is informational and ignored when read back.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(into = "Vec<CountsRow>", from = "Vec<CountsRow>")]
pub struct RequestCounts {
    /// Counts keyed by (service, target group).
    pub routes: BTreeMap<(String, String), StatusCounts>,
}

impl RequestCounts {
    /// The counts that happened after `earlier` was taken.
    pub fn since(&self, earlier: &RequestCounts) -> RequestCounts {
        RequestCounts {
            routes: self
                .routes
                .iter()
                .map(|(k, now)| {
                    let before = earlier.routes.get(k).copied().unwrap_or_default();
                    (k.clone(), now.saturating_sub(&before))
                })
                .collect(),
        }
    }

    /// Sum over all target groups of a service.
    pub fn service(&self, service: &str) -> StatusCounts {
        let mut sum = StatusCounts::default();
        for ((s, _), c) in &self.routes {
            if s == service {
                sum.add(c);
            }
        }
        sum
    }

    /// Counts of one (service, target group).
    pub fn route(&self, service: &str, target_group: &str) -> StatusCounts {
        self.routes
            .get(&(service.to_owned(), target_group.to_owned()))
            .copied()
            .unwrap_or_default()
    }
}

/// One (service, target group) of [`RequestCounts`] in JSON.
#[derive(serde::Serialize, serde::Deserialize)]
struct CountsRow {
    service: String,
    target_group: String,
    #[serde(default)]
    total: u64,
    #[serde(rename = "1xx", default)]
    c1: u64,
    #[serde(rename = "2xx", default)]
    c2: u64,
    #[serde(rename = "3xx", default)]
    c3: u64,
    #[serde(rename = "4xx", default)]
    c4: u64,
    #[serde(rename = "5xx", default)]
    c5: u64,
}

impl From<RequestCounts> for Vec<CountsRow> {
    fn from(counts: RequestCounts) -> Self {
        counts
            .routes
            .into_iter()
            .map(|((service, target_group), c)| {
                let [c1, c2, c3, c4, c5] = c.by_class;
                CountsRow {
                    service,
                    target_group,
                    total: c.total(),
                    c1,
                    c2,
                    c3,
                    c4,
                    c5,
                }
            })
            .collect()
    }
}

impl From<Vec<CountsRow>> for RequestCounts {
    fn from(rows: Vec<CountsRow>) -> Self {
        RequestCounts {
            routes: rows
                .into_iter()
                .map(|r| {
                    let by_class = [r.c1, r.c2, r.c3, r.c4, r.c5];
                    ((r.service, r.target_group), StatusCounts { by_class })
                })
                .collect(),
        }
    }
}
