//! Deployment decisions as a pure function: what a service's active deployment
//! needs next, given its tasks and their health. No I/O and no clock: the
//! controller observes, calls [`plan`], records the result, then acts on it.
//!
//! Tasks of one *version* (spec and image digest) are interchangeable and form one
//! proxy target group; weights go to versions.
//!
//! - **Rolling** (ECS): with `min` = ceil(count × min_healthy%) and `max` =
//!   floor(count × max%), start new tasks while the live total stays within `max`,
//!   and deregister an old task (unhealthy ones first) while the healthy total
//!   without it stays at `min` or more. Traffic follows tasks: each version weighs
//!   its registered task count. Done when `count` new tasks are healthy and no old
//!   task is registered.
//! - **Traffic shifting** (blue/green, canary, linear): start the whole new set
//!   (step 0) while the old version keeps all traffic; when `count` new tasks are
//!   healthy, walk the steps `(percent, bake)`: give the new version `percent`, hold
//!   for `bake`, next. After the last bake, deregister the old tasks. Done.
//! - A first deployment (nothing old registered) skips traffic steps.
//! - **Circuit breaker**: `failures` (new tasks that failed to start, exited or
//!   turned unhealthy) reaching the threshold fails the deployment. **Error rate**:
//!   the new version's 5xx share over its requests since the deployment began,
//!   once there are `min_requests`, above `max_percent`, fails it too. The plan
//!   that fails a deployment gives all traffic to the versions it was replacing
//!   (the failing version keeps its share only when nothing else is registered),
//!   so the tick that fails it still serves a route. The controller then rolls
//!   back; a rollback itself is rolling 100/200 and is not rolled back again.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::spec::{ceil_percent, floor_percent, Strategy};
use crate::state::{Deployment, DeploymentState, TaskPhase};

/// A task's health as the load balancer sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// Not checked yet, or not known (the proxy is not answering).
    Unknown,
    /// Passing.
    Healthy,
    /// Failing.
    Unhealthy,
}

/// What the planner needs to know of one live task.
#[derive(Clone, Debug)]
pub struct TaskView {
    /// Task id.
    pub id: String,
    /// Its version.
    pub version: String,
    /// Its phase (only live phases are passed in).
    pub phase: TaskPhase,
    /// Its health (meaningful while running).
    pub health: Health,
}

impl TaskView {
    fn registered(&self) -> bool {
        self.phase == TaskPhase::Running
    }

    fn healthy(&self) -> bool {
        self.registered() && self.health == Health::Healthy
    }

    fn counts_toward_max(&self) -> bool {
        self.phase.is_live()
    }
}

/// Requests answered by the new version since the deployment began.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErrorCounts {
    /// All answers.
    pub total: u64,
    /// 5xx answers.
    pub server_errors: u64,
}

/// What to do next.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Tasks of the deployment's version to start.
    pub start: u32,
    /// Registered tasks to deregister (they drain, then stop).
    pub deregister: Vec<String>,
    /// Traffic weight per version (relative); versions with tasks but no weight
    /// are health-checked without traffic.
    pub weights: BTreeMap<String, u32>,
    /// Move to this traffic step, starting now.
    pub set_step: Option<u32>,
    /// End the deployment.
    pub finish: Option<(DeploymentState, String)>,
    /// Events to record: (kind, message).
    pub events: Vec<(String, String)>,
}

/// Traffic steps of a strategy: `(percent to the new version, bake)`; empty for
/// rolling.
pub fn traffic_steps(strategy: &Strategy) -> Vec<(u32, Duration)> {
    match strategy {
        Strategy::Rolling { .. } => Vec::new(),
        Strategy::BlueGreen { bake, .. } => vec![(100, *bake)],
        Strategy::Canary { percent, bake } => {
            if percent.0 >= 100 {
                vec![(100, *bake)]
            } else {
                vec![(percent.0, *bake), (100, Duration::ZERO)]
            }
        }
        Strategy::Linear { percent, interval } => {
            let step = percent.0.max(1);
            let mut out = Vec::new();
            let mut p = step;
            while p < 100 {
                out.push((p, *interval));
                p += step;
            }
            out.push((100, Duration::ZERO));
            out
        }
    }
}

/// The strategy a deployment follows: its spec's, except that a rollback is
/// rolling 100/200 (fast, and with the old tasks often still there, instant).
pub fn effective_strategy(d: &Deployment) -> Strategy {
    if d.kind == "rollback" {
        Strategy::default()
    } else {
        d.spec.deployment.strategy.clone()
    }
}

/// Decides the next step of `d`, the service's active deployment, given the
/// service's live tasks, the time (ms) and the new version's error counts.
pub fn plan(d: &Deployment, tasks: &[TaskView], now: i64, errors: ErrorCounts) -> Plan {
    let mut p = decide(d, tasks, now, errors);
    if matches!(
        d.state,
        DeploymentState::InProgress | DeploymentState::Succeeded
    ) && p
        .finish
        .as_ref()
        .is_none_or(|(s, _)| *s == DeploymentState::Succeeded)
    {
        trim(&mut p, d, tasks);
    }
    p
}

/// Deregisters tasks of the deployment's version beyond its count (the service
/// was scaled down): those not yet healthy first.
fn trim(p: &mut Plan, d: &Deployment, tasks: &[TaskView]) {
    let live = tasks
        .iter()
        .filter(|t| {
            t.version == d.version && matches!(t.phase, TaskPhase::Pending | TaskPhase::Running)
        })
        .count() as u32;
    let mut excess = live.saturating_sub(d.spec.count);
    let mut victims: Vec<&TaskView> = tasks
        .iter()
        .filter(|t| t.version == d.version && t.registered() && !p.deregister.contains(&t.id))
        .collect();
    victims.sort_by_key(|t| (t.healthy(), std::cmp::Reverse(t.id.clone())));
    for v in victims {
        if excess == 0 {
            break;
        }
        p.deregister.push(v.id.clone());
        excess -= 1;
    }
}

fn decide(d: &Deployment, tasks: &[TaskView], now: i64, errors: ErrorCounts) -> Plan {
    let mut p = Plan::default();
    let count = d.spec.count;
    let (new, old): (Vec<&TaskView>, Vec<&TaskView>) =
        tasks.iter().partition(|t| t.version == d.version);
    let new_live = new.iter().filter(|t| t.counts_toward_max()).count() as u32;
    let new_healthy = new.iter().filter(|t| t.healthy()).count() as u32;
    let old_registered: Vec<&&TaskView> = old.iter().filter(|t| t.registered()).collect();

    match d.state {
        DeploymentState::InProgress => {}
        DeploymentState::Succeeded => {
            // Steady state: keep `count` tasks, nothing else.
            p.start = count.saturating_sub(new_live);
            p.deregister = old_registered.iter().map(|t| t.id.clone()).collect();
            p.weights.insert(d.version.clone(), 100);
            return p;
        }
        DeploymentState::Failed | DeploymentState::Superseded => {
            // Nothing to converge to: stop everything.
            p.deregister = tasks
                .iter()
                .filter(|t| t.registered())
                .map(|t| t.id.clone())
                .collect();
            return p;
        }
    }

    // Failure checks first.
    let threshold = d.spec.failure_threshold();
    if threshold > 0 && d.failures >= threshold {
        return failed(
            d,
            tasks,
            format!(
                "circuit breaker: {} new tasks failed to start or to pass health checks (threshold {threshold})",
                d.failures
            ),
        );
    }
    if d.kind != "rollback" {
        if let Some(rate) = &d.spec.deployment.error_rate {
            if errors.total >= rate.min_requests && errors.total > 0 {
                let pct = errors.server_errors as f64 * 100.0 / errors.total as f64;
                if pct > rate.max_percent {
                    return failed(
                        d,
                        tasks,
                        format!(
                            "error rate: {:.1}% of {} requests to the new version failed with 5xx (limit {}%)",
                            pct, errors.total, rate.max_percent
                        ),
                    );
                }
            }
        }
    }

    let strategy = effective_strategy(d);
    let steps = traffic_steps(&strategy);
    if let Strategy::Rolling {
        min_healthy_percent,
        max_percent,
    } = strategy
    {
        let min = ceil_percent(count, min_healthy_percent.0);
        let max = floor_percent(count, max_percent).max(1);
        let live_total = tasks.iter().filter(|t| t.counts_toward_max()).count() as u32;
        p.start = count
            .saturating_sub(new_live)
            .min(max.saturating_sub(live_total));
        // Deregister old tasks while enough stay healthy: unhealthy ones first.
        let mut healthy_total =
            new_healthy + old_registered.iter().filter(|t| t.healthy()).count() as u32;
        let mut victims = old_registered.clone();
        victims.sort_by_key(|t| (t.healthy(), t.id.clone()));
        for v in victims {
            let after = healthy_total - u32::from(v.healthy());
            if after >= min || !v.healthy() {
                healthy_total = after;
                p.deregister.push(v.id.clone());
            } else {
                break;
            }
        }
        for t in tasks.iter().filter(|t| t.registered()) {
            if !p.deregister.contains(&t.id) {
                *p.weights.entry(t.version.clone()).or_default() += 1;
            }
        }
        p.weights.entry(d.version.clone()).or_default();
        if new_healthy >= count && old_registered.len() == p.deregister.len() {
            let msg = if old_registered.is_empty() {
                format!("{count} tasks healthy")
            } else {
                format!("{count} tasks of the new version are healthy; old tasks are draining")
            };
            p.finish = Some((DeploymentState::Succeeded, msg));
        }
        return p;
    }

    // Traffic shifting.
    p.start = count.saturating_sub(new_live);
    let old_weights = |share: u32, p: &mut Plan| {
        let mut by_version: BTreeMap<String, u32> = BTreeMap::new();
        for t in &old_registered {
            *by_version.entry(t.version.clone()).or_default() += 1;
        }
        let total: u32 = by_version.values().sum();
        for (v, n) in by_version {
            // Weights are relative: scale each old version by its task count.
            p.weights.insert(v, share * n * 100 / total.max(1));
        }
    };
    if old_registered.is_empty() {
        // Nothing to shift from.
        p.weights.insert(d.version.clone(), 100);
        if new_healthy >= count {
            p.finish = Some((DeploymentState::Succeeded, format!("{count} tasks healthy")));
        }
        return p;
    }
    let step = d.step as usize;
    if step == 0 {
        old_weights(100, &mut p);
        p.weights.insert(d.version.clone(), 0);
        if new_healthy >= count {
            let (pct, bake) = steps[0];
            p.set_step = Some(1);
            p.events.push((
                "shifted".to_owned(),
                format!(
                    "all {count} new tasks healthy; {pct}% of traffic to the new version, baking {}",
                    humantime::format_duration(bake)
                ),
            ));
            shift(&mut p, d, pct, old_weights);
        }
        return p;
    }
    let (pct, bake) = steps[(step - 1).min(steps.len() - 1)];
    shift(&mut p, d, pct, old_weights);
    let since = d.step_since.unwrap_or(now);
    if now - since >= bake.as_millis() as i64 {
        if step >= steps.len() {
            p.deregister = old_registered.iter().map(|t| t.id.clone()).collect();
            p.weights.retain(|v, _| *v == d.version);
            p.finish = Some((
                DeploymentState::Succeeded,
                "all traffic on the new version; old tasks are draining".to_owned(),
            ));
        } else {
            let (next_pct, next_bake) = steps[step];
            p.set_step = Some(step as u32 + 1);
            p.events.push((
                "shifted".to_owned(),
                format!(
                    "{next_pct}% of traffic to the new version, baking {}",
                    humantime::format_duration(next_bake)
                ),
            ));
            p.weights.clear();
            shift(&mut p, d, next_pct, old_weights);
        }
    }
    p
}

/// The plan of a deployment that fails now: it starts and deregisters nothing (the
/// rollback that follows decides), and until then traffic goes to the versions it
/// was replacing, by their registered tasks, none to the failing version; only when
/// nothing else is registered does the failing version keep its tasks' share. The
/// controller serves these weights in the tick that fails the deployment, so a
/// failure never leaves the service without a route.
/// The plan that fails `d` for `reason`: traffic goes back to the other versions'
/// registered tasks (or stays on `d`'s when there are none), and the deployment ends
/// failed, which rolls it back.
pub fn failed(d: &Deployment, tasks: &[TaskView], reason: String) -> Plan {
    let mut p = Plan {
        finish: Some((DeploymentState::Failed, reason)),
        ..Plan::default()
    };
    for t in tasks
        .iter()
        .filter(|t| t.registered() && t.version != d.version)
    {
        *p.weights.entry(t.version.clone()).or_default() += 1;
    }
    let own = tasks
        .iter()
        .filter(|t| t.registered() && t.version == d.version)
        .count() as u32;
    p.weights.insert(
        d.version.clone(),
        if p.weights.is_empty() { own } else { 0 },
    );
    p
}

fn shift(p: &mut Plan, d: &Deployment, pct: u32, old: impl Fn(u32, &mut Plan)) {
    old(100 - pct, p);
    p.weights.insert(d.version.clone(), pct * 100);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::spec::{Percent, ServiceSpec};

    fn deployment(count: u32, strategy: &str) -> Deployment {
        let spec = ServiceSpec::parse(
            "t.yml",
            &format!(
                "name: web\nimage: web:2\ncount: {count}\nlistener: {{addr: 127.0.0.1:8080}}\ndeployment: {{strategy: {strategy}, error_rate: {{max_percent: 10}}}}\n"
            ),
        )
        .unwrap();
        Deployment {
            id: 2,
            service: "web".into(),
            spec,
            image: "web:2".into(),
            digest: "sha256:2".into(),
            version: "new".into(),
            kind: "deploy".into(),
            state: DeploymentState::InProgress,
            step: 0,
            step_since: None,
            failures: 0,
            reason: None,
            created: 0,
            finished: None,
        }
    }

    fn task(id: &str, version: &str, phase: TaskPhase, health: Health) -> TaskView {
        TaskView {
            id: id.into(),
            version: version.into(),
            phase,
            health,
        }
    }

    fn old(n: usize) -> Vec<TaskView> {
        (0..n)
            .map(|i| task(&format!("o{i}"), "old", TaskPhase::Running, Health::Healthy))
            .collect()
    }

    fn new_tasks(n: usize, health: Health) -> Vec<TaskView> {
        (0..n)
            .map(|i| task(&format!("n{i}"), "new", TaskPhase::Running, health))
            .collect()
    }

    const ROLLING: &str = "{type: rolling}";

    #[test]
    fn rolling_100_200_starts_every_new_task_then_swaps_one_for_one() {
        let d = deployment(4, ROLLING);
        let p = plan(&d, &old(4), 0, ErrorCounts::default());
        assert_eq!(p.start, 4);
        assert!(p.deregister.is_empty());
        assert_eq!(p.weights["old"], 4);
        assert_eq!(p.weights["new"], 0);

        // One new task healthy: exactly one old one may go.
        let mut tasks = old(4);
        tasks.extend(new_tasks(1, Health::Healthy));
        tasks.extend(new_tasks(4, Health::Unknown).into_iter().skip(1));
        let p = plan(&d, &tasks, 0, ErrorCounts::default());
        assert_eq!(p.start, 0);
        assert_eq!(p.deregister.len(), 1);
        assert!(p.finish.is_none());

        // All new healthy: the rest go and the deployment succeeds.
        let mut tasks = old(3);
        tasks.extend(new_tasks(4, Health::Healthy));
        let p = plan(&d, &tasks, 0, ErrorCounts::default());
        assert_eq!(p.deregister.len(), 3);
        assert_eq!(p.weights.get("old"), None);
        assert_eq!(p.weights["new"], 4);
        assert!(matches!(p.finish, Some((DeploymentState::Succeeded, _))));
    }

    #[test]
    fn scaling_down_deregisters_the_excess_once_and_unhealthy_tasks_first() {
        let mut d = deployment(3, ROLLING);
        d.state = DeploymentState::Succeeded;
        let mut tasks = new_tasks(3, Health::Healthy);
        tasks[1].health = Health::Unhealthy;
        d.spec.count = 1;
        let p = plan(&d, &tasks, 0, ErrorCounts::default());
        assert_eq!(p.start, 0);
        assert_eq!(p.deregister.len(), 2);
        assert!(p.deregister.contains(&"n1".to_owned()), "unhealthy first");
        // Next tick: the two drain; nothing more goes.
        for t in tasks.iter_mut().filter(|t| p.deregister.contains(&t.id)) {
            t.phase = TaskPhase::Draining;
        }
        let again = plan(&d, &tasks, 0, ErrorCounts::default());
        assert!(again.deregister.is_empty(), "{:?}", again.deregister);
        assert_eq!(again.start, 0);
        // Scaling to zero lets every task go; up again starts new ones.
        d.spec.count = 0;
        let p = plan(
            &d,
            &new_tasks(3, Health::Healthy),
            0,
            ErrorCounts::default(),
        );
        assert_eq!(p.deregister.len(), 3);
        d.spec.count = 5;
        let p = plan(
            &d,
            &new_tasks(3, Health::Healthy),
            0,
            ErrorCounts::default(),
        );
        assert_eq!(p.start, 2);
        assert!(p.deregister.is_empty());
    }

    #[test]
    fn rolling_50_100_stops_before_it_starts() {
        let d = deployment(
            4,
            "{type: rolling, min_healthy_percent: 50, max_percent: 100}",
        );
        let p = plan(&d, &old(4), 0, ErrorCounts::default());
        assert_eq!(p.start, 0, "max 100% leaves no room to start first");
        assert_eq!(p.deregister.len(), 2, "min 50% of 4 lets two go");
        // Two draining still count toward max until they stop.
        let mut tasks = old(4);
        tasks[0].phase = TaskPhase::Draining;
        tasks[1].phase = TaskPhase::Draining;
        let p = plan(&d, &tasks, 0, ErrorCounts::default());
        assert_eq!(p.start, 0);
        let p = plan(&d, &old(2), 0, ErrorCounts::default());
        assert_eq!(p.start, 2);
        assert!(p.deregister.is_empty(), "2 healthy is the minimum");
    }

    #[test]
    fn unhealthy_old_tasks_go_first_and_do_not_count_as_healthy() {
        let d = deployment(2, ROLLING);
        let mut tasks = old(2);
        tasks[1].health = Health::Unhealthy;
        let p = plan(&d, &tasks, 0, ErrorCounts::default());
        assert_eq!(p.deregister, vec!["o1".to_owned()]);
    }

    #[test]
    fn the_circuit_breaker_fails_the_deployment_at_its_threshold() {
        let mut d = deployment(2, ROLLING);
        d.failures = 2;
        assert!(plan(&d, &old(2), 0, ErrorCounts::default())
            .finish
            .is_none());
        d.failures = 3;
        let p = plan(&d, &old(2), 0, ErrorCounts::default());
        let (state, reason) = p.finish.unwrap();
        assert_eq!(state, DeploymentState::Failed);
        assert!(reason.contains("circuit breaker"), "{reason}");
        assert_eq!(p.start, 0);
        // The old version keeps its traffic while the failure is recorded.
        let mut tasks = old(2);
        tasks.extend(new_tasks(2, Health::Unhealthy));
        let p = plan(&d, &tasks, 0, ErrorCounts::default());
        assert_eq!(p.weights.get("old"), Some(&2));
        assert_eq!(p.weights.get("new").copied().unwrap_or(0), 0);
    }

    /// The tick that fails a deployment still routes traffic (an empty weight map
    /// made the proxy answer 503 until the rollback's first plan, a tick later):
    /// all of it to the old version, none to the failing one.
    #[test]
    fn a_failing_deployment_routes_all_traffic_to_the_old_version() {
        for strategy in [ROLLING, "{type: canary, percent: 50, bake: 1m}"] {
            let mut d = deployment(2, strategy);
            d.step = 1;
            d.step_since = Some(0);
            let mut tasks = old(2);
            tasks.extend(new_tasks(2, Health::Healthy));
            // By the circuit breaker ...
            d.failures = 3;
            let p = plan(&d, &tasks, 0, ErrorCounts::default());
            assert!(matches!(p.finish, Some((DeploymentState::Failed, _))));
            assert_eq!(p.weights["old"], 2, "{strategy}");
            assert_eq!(p.weights["new"], 0, "{strategy}");
            assert!(p.deregister.is_empty() && p.start == 0);
            // ... and by the error rate.
            d.failures = 0;
            let errors = ErrorCounts {
                total: 100,
                server_errors: 50,
            };
            let p = plan(&d, &tasks, 0, errors);
            assert!(matches!(p.finish, Some((DeploymentState::Failed, _))));
            assert_eq!(p.weights["old"], 2, "{strategy}");
            assert_eq!(p.weights["new"], 0, "{strategy}");
        }
        // Nothing else registered: the failing version keeps what it has.
        let mut d = deployment(2, ROLLING);
        d.failures = 3;
        let p = plan(
            &d,
            &new_tasks(1, Health::Unhealthy),
            0,
            ErrorCounts::default(),
        );
        assert_eq!(p.weights["new"], 1);
    }

    #[test]
    fn the_error_rate_fails_only_past_min_requests() {
        let d = deployment(2, ROLLING);
        let few = ErrorCounts {
            total: 10,
            server_errors: 10,
        };
        assert!(plan(&d, &old(2), 0, few).finish.is_none());
        let many = ErrorCounts {
            total: 100,
            server_errors: 11,
        };
        let (state, reason) = plan(&d, &old(2), 0, many).finish.unwrap();
        assert_eq!(state, DeploymentState::Failed);
        assert!(reason.contains("11.0% of 100 requests"), "{reason}");
        let fine = ErrorCounts {
            total: 100,
            server_errors: 10,
        };
        assert!(plan(&d, &old(2), 0, fine).finish.is_none());
    }

    #[test]
    fn canary_waits_for_the_whole_new_set_then_steps_with_bakes() {
        let mut d = deployment(2, "{type: canary, percent: 10, bake: 10s}");
        let p = plan(&d, &old(2), 0, ErrorCounts::default());
        assert_eq!(p.start, 2);
        assert_eq!(p.weights["new"], 0);
        assert_eq!(p.set_step, None);

        let mut tasks = old(2);
        tasks.extend(new_tasks(2, Health::Healthy));
        let p = plan(&d, &tasks, 0, ErrorCounts::default());
        assert_eq!(p.set_step, Some(1));
        assert_eq!(p.weights["new"], 1000);
        assert_eq!(p.weights["old"], 9000);

        d.step = 1;
        d.step_since = Some(1_000);
        let p = plan(&d, &tasks, 5_000, ErrorCounts::default());
        assert_eq!(p.set_step, None, "still baking");
        assert_eq!(p.weights["new"], 1000);
        let p = plan(&d, &tasks, 11_000, ErrorCounts::default());
        assert_eq!(p.set_step, Some(2));
        assert_eq!(p.weights["new"], 10000);
        assert_eq!(p.weights["old"], 0);
        assert!(p.finish.is_none());

        d.step = 2;
        d.step_since = Some(11_000);
        let p = plan(&d, &tasks, 11_000, ErrorCounts::default());
        assert!(matches!(p.finish, Some((DeploymentState::Succeeded, _))));
        assert_eq!(p.deregister.len(), 2);
        assert_eq!(p.weights.keys().collect::<Vec<_>>(), ["new"]);
    }

    #[test]
    fn linear_steps_cover_every_share() {
        let s = Strategy::Linear {
            percent: Percent(30),
            interval: Duration::from_secs(1),
        };
        let pcts: Vec<u32> = traffic_steps(&s).into_iter().map(|s| s.0).collect();
        assert_eq!(pcts, [30, 60, 90, 100]);
        let bg = Strategy::BlueGreen {
            bake: Duration::from_secs(5),
            test_listener: None,
        };
        assert_eq!(traffic_steps(&bg), [(100, Duration::from_secs(5))]);
    }

    #[test]
    fn a_first_deployment_takes_all_traffic_at_once() {
        let d = deployment(2, "{type: canary, percent: 10, bake: 1h}");
        let p = plan(
            &d,
            &new_tasks(2, Health::Healthy),
            0,
            ErrorCounts::default(),
        );
        assert!(matches!(p.finish, Some((DeploymentState::Succeeded, _))));
        assert_eq!(p.weights["new"], 100);
    }

    #[test]
    fn a_rollback_is_rolling_and_adopts_the_tasks_still_running() {
        let mut d = deployment(2, "{type: canary, percent: 10, bake: 1h}");
        d.kind = "rollback".into();
        d.version = "old".into();
        // Canary failed: old tasks (now the rollback's version) still run.
        let mut tasks = old(2);
        tasks.extend(new_tasks(2, Health::Healthy).into_iter().map(|mut t| {
            t.version = "bad".into();
            t
        }));
        let p = plan(
            &d,
            &tasks,
            0,
            ErrorCounts {
                total: 100,
                server_errors: 100,
            },
        );
        assert_eq!(p.start, 0);
        assert_eq!(p.deregister.len(), 2, "the bad tasks go at once");
        assert!(matches!(p.finish, Some((DeploymentState::Succeeded, _))));
    }

    #[test]
    fn steady_state_replaces_missing_tasks() {
        let mut d = deployment(3, ROLLING);
        d.state = DeploymentState::Succeeded;
        let p = plan(
            &d,
            &new_tasks(1, Health::Healthy),
            0,
            ErrorCounts::default(),
        );
        assert_eq!(p.start, 2);
        assert_eq!(p.weights["new"], 100);
    }
}
