//! The deployment issue's acceptance tests, as worded: examples/hello (the static
//! binary in a `FROM scratch` image, built by `hoist build`) at 3 replicas behind the
//! real `hoist proxy`, the real `hoist daemon`, and a paced client sending about 200
//! requests/s through the proxy while versions change, the daemon is killed, or a
//! release is bad. v1 and v2 are the same image with another `HELLO_VERSION`.
//!
//! Nothing here asserts on timing: times only pick which answers belong to which
//! phase of a deployment (from the events' own timestamps).
#![allow(clippy::unwrap_used)]

mod util;

use std::collections::BTreeMap;
use std::time::Duration;

use util::world::{assert_ok, body, eventually, hello_version, PacedLoad, Proc, Sample, World};

/// Requests per second of the test client, and its threads.
const RATE: u32 = 200;
const THREADS: u32 = 4;

fn version(s: &Sample) -> Option<&str> {
    s.result.as_ref().ok().and_then(|b| hello_version(b))
}

fn tally(samples: &[Sample]) -> BTreeMap<String, usize> {
    let mut t = BTreeMap::new();
    for s in samples {
        let k = match &s.result {
            Ok(b) => format!("v{}", hello_version(b).unwrap_or("?")),
            Err(_) => "failed".to_owned(),
        };
        *t.entry(k).or_default() += 1;
    }
    t
}

fn rate(samples: &[Sample]) -> f64 {
    match (samples.first(), samples.last()) {
        (Some(a), Some(b)) if b.done > a.sent => {
            samples.len() as f64 * 1000.0 / (b.done - a.sent) as f64
        }
        _ => 0.0,
    }
}

/// Every request answered 200 by hello.
/// Keeps the load going for `seconds` more seconds' worth of requests, then stops it.
fn finish_after(load: PacedLoad, seconds: usize) -> Vec<Sample> {
    let enough = load.sent() + seconds * RATE as usize;
    eventually("more seconds of load", || load.sent() >= enough);
    load.finish()
}

/// `N requests at R/s: {outcome: count}`.
fn summary(samples: &[Sample]) -> String {
    format!(
        "{} requests at {:.0}/s: {:?}",
        samples.len(),
        rate(samples),
        tally(samples)
    )
}

fn assert_none_failed(samples: &[Sample], what: &str, w: &World) {
    let failed: Vec<&Sample> = samples.iter().filter(|s| s.result.is_err()).collect();
    assert!(
        failed.is_empty(),
        "{what}: {} of {} requests failed, first ones: {:?}\ndaemon log:\n{}",
        failed.len(),
        samples.len(),
        &failed[..failed.len().min(5)],
        w.log("daemon.log")
    );
    assert!(
        samples.iter().all(|s| version(s).is_some()),
        "{what}: an answer that is not hello's"
    );
}

/// The answers move from v1 to v2: the first ones are v1, both are seen, and every
/// request sent after the deployment succeeded (`done`, its event's time) is v2.
fn assert_moved(samples: &[Sample], done: i64, what: &str) {
    assert_eq!(version(&samples[0]), Some("1"), "{what}: first answer");
    let t = tally(samples);
    assert!(
        t.get("v1").copied().unwrap_or(0) > 0,
        "{what}: no v1: {t:?}"
    );
    assert!(
        t.get("v2").copied().unwrap_or(0) > 0,
        "{what}: no v2: {t:?}"
    );
    let after: Vec<&Sample> = samples.iter().filter(|s| s.sent > done + 200).collect();
    assert!(
        after.len() >= 20,
        "{what}: only {} requests after the deployment",
        after.len()
    );
    let stale: Vec<&&Sample> = after.iter().filter(|s| version(s) != Some("2")).collect();
    assert!(
        stale.is_empty(),
        "{what}: {} of {} answers after the deployment succeeded were not v2: {:?}",
        stale.len(),
        after.len(),
        &stale[..stale.len().min(5)]
    );
}

/// The time of the deployment's last event of `kind`.
fn event_time(w: &World, service: &str, deployment: i64, kind: &str) -> i64 {
    w.events(service)
        .iter()
        .filter(|e| e["deployment"] == deployment && e["kind"] == kind)
        .map(|e| e["time"].as_i64().unwrap())
        .next_back()
        .unwrap_or_else(|| {
            panic!(
                "no {kind} event of deployment #{deployment}:\n{}",
                w.env.ok(&["service", "events", service])
            )
        })
}

/// The service's active deployment id.
fn active(w: &World, service: &str) -> i64 {
    w.service_row(service)["deployment"].as_i64().unwrap()
}

/// v1 deployed at 3 replicas, the paced load running; returns the load.
fn v1_under_load(w: &World, extra: &str) -> PacedLoad {
    let v1 = w.hello_file("hello", 3, &[("HELLO_VERSION", "1")], extra);
    assert_ok(&w.deploy(&v1, "hello:dev"), "deploy v1", w);
    assert_eq!(
        body(w.addr())
            .and_then(|b| hello_version(&b).map(str::to_owned))
            .as_deref(),
        Some("1")
    );
    let load = PacedLoad::start(w.addr(), RATE, THREADS);
    eventually("the load runs", || load.sent() >= 100);
    load
}

/// Deploys v2 with `extra`, waits for success, keeps the load on while the old tasks
/// stop and a little after, and checks every answer.
fn zero_downtime(extra: &str, what: &str) -> Vec<Sample> {
    let w = World::hello();
    let load = v1_under_load(&w, extra);
    let v2 = w.hello_file("hello", 3, &[("HELLO_VERSION", "2")], extra);
    let out = w.deploy(&v2, "hello:dev");
    assert_ok(&out, what, &w);
    let id = active(&w, "hello");
    let done = event_time(&w, "hello", id, "succeeded");
    eventually("only the 3 v2 tasks are left", || {
        w.tasks("hello").len() == 3
    });
    let samples = finish_after(load, 2);
    eprintln!("{what}: {}", summary(&samples));
    assert_none_failed(&samples, what, &w);
    assert_moved(&samples, done, what);
    for _ in 0..10 {
        assert_eq!(body(w.addr()).as_deref().and_then(hello_version), Some("2"));
    }
    samples
}

#[test]
fn rolling_deploy_of_3_replicas_under_200_requests_per_second_fails_none() {
    zero_downtime("", "rolling deploy");
}

#[test]
fn blue_green_deploy_of_3_replicas_under_200_requests_per_second_fails_none() {
    zero_downtime(
        "deployment: {strategy: {type: blue-green, bake: 2s}}\n",
        "blue/green deploy",
    );
}

/// A canary's first step sends its weight's share of the requests to the new
/// version: measured over the requests of its bake, within 5 binomial standard
/// deviations (plus 2 points) of the weight.
#[test]
fn canary_first_step_splits_traffic_by_its_weight_and_fails_no_request() {
    let extra = "deployment: {strategy: {type: canary, percent: 20, bake: 6s}}\n";
    let w = World::hello();
    let load = v1_under_load(&w, extra);
    let v2 = w.hello_file("hello", 3, &[("HELLO_VERSION", "2")], extra);
    assert_ok(&w.deploy(&v2, "hello:dev"), "canary deploy", &w);
    let id = active(&w, "hello");
    let done = event_time(&w, "hello", id, "succeeded");
    eventually("only the 3 v2 tasks are left", || {
        w.tasks("hello").len() == 3
    });
    let samples = finish_after(load, 2);
    assert_none_failed(&samples, "canary", &w);
    assert_moved(&samples, done, "canary");

    // The first step: from its "shifted" event (plus a second for the proxy to
    // take the new weights) to the next step's event, when the 100% config is
    // written.
    let shifts: Vec<(i64, String)> = w
        .events("hello")
        .iter()
        .filter(|e| e["deployment"] == id && e["kind"] == "shifted")
        .map(|e| {
            (
                e["time"].as_i64().unwrap(),
                e["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(shifts.len(), 2, "{shifts:?}");
    assert!(shifts[0].1.contains("20% of traffic"), "{shifts:?}");
    assert!(shifts[1].1.contains("100% of traffic"), "{shifts:?}");
    let (from, to) = (shifts[0].0 + 1000, shifts[1].0);
    let step: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.sent >= from && s.done <= to)
        .collect();
    let n = step.len() as f64;
    assert!(n >= 100.0, "only {n} requests during the first step");
    let new = step.iter().filter(|s| version(s) == Some("2")).count() as f64;
    let p = 0.20;
    let observed = new / n;
    let tolerance = 5.0 * (p * (1.0 - p) / n).sqrt() + 0.02;
    eprintln!(
        "canary: {} requests at {:.0}/s: {:?}; first step: {new} of {n} to v2 = {:.3} (weight {p}, tolerance ±{tolerance:.3})",
        samples.len(),
        rate(&samples),
        tally(&samples),
        observed
    );
    assert!(
        (observed - p).abs() <= tolerance,
        "the canary's first step sent {observed:.3} of {n} requests to v2, weight {p} ± {tolerance:.3}"
    );
}

/// A bad v2 under load: the deploy fails at the circuit breaker's threshold and rolls
/// back on its own, and every request keeps being answered by v1.
fn bad_release_rolls_back(v2_env: &[(&str, &str)], v2_extra: &str, what: &str) {
    let extra = "deployment: {circuit_breaker: 3}\n";
    let w = World::hello();
    let load = v1_under_load(&w, extra);
    let v1_id = active(&w, "hello");
    let v2 = w.hello_file("hello", 3, v2_env, &format!("{extra}{v2_extra}"));
    let out = w.deploy(&v2, "hello:dev");
    assert!(
        !out.status.success(),
        "{what}: the deploy must fail:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("circuit breaker"), "{what}: {stderr}");
    assert!(stderr.contains("threshold 3"), "{what}: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("rolling back"), "{what}: {stdout}");
    // The rollback deployment succeeded, with v1's 3 tasks.
    let rollback = active(&w, "hello");
    assert!(rollback > v1_id + 1);
    assert_eq!(w.service_row("hello")["state"], "succeeded");
    eventually("only v1's 3 tasks are left", || {
        let tasks = w.tasks("hello");
        tasks.len() == 3 && tasks.iter().all(|t| t["phase"] == "running")
    });
    let samples = finish_after(load, 1);
    eprintln!("{what}: {}", summary(&samples));
    assert_none_failed(&samples, what, &w);
    assert!(
        samples.iter().all(|s| version(s) == Some("1")),
        "{what}: {:?}",
        tally(&samples)
    );
    // It stopped at the threshold: a task fails once, and once 3 had failed no
    // more were started, so at most 2 + the 3 running at once were ever started.
    let events = w.events("hello");
    let bad_id = v1_id + 1;
    let started = events
        .iter()
        .filter(|e| e["deployment"] == bad_id && e["kind"] == "task-starting")
        .count();
    assert!(
        (3..=5).contains(&started),
        "{what}: the failed deployment started {started} tasks"
    );
}

#[test]
fn a_release_failing_its_health_check_rolls_back_at_the_breaker_threshold_under_load() {
    bad_release_rolls_back(
        &[("HELLO_VERSION", "2"), ("HELLO_UNHEALTHY", "1")],
        "",
        "unhealthy release",
    );
}

#[test]
fn a_release_exiting_at_once_rolls_back_at_the_breaker_threshold_under_load() {
    bad_release_rolls_back(
        &[("HELLO_VERSION", "2")],
        "command: [\"--no-such-flag\"]\n",
        "release exiting at once",
    );
}

/// [`eventually`], telling on timeout what the daemon, its tasks and the
/// service's events looked like.
fn until(w: &World, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}\ntasks: {}\nevents:\n{}\nruntime: {:?}\ndaemon log:\n{}",
            w.env.ok(&["--json", "service", "ps", "--all", "hello"]),
            w.env.ok(&["service", "events", "hello"]),
            std::fs::read_dir(w.env.home().join("deploy/tasks"))
                .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
                .unwrap_or_default(),
            w.log("daemon.log"),
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// (task id, runtime id, phase, pids) of each task.
type Snapshot = Vec<(String, String, String, Vec<i32>)>;

fn snapshot(w: &World) -> Snapshot {
    w.tasks("hello")
        .iter()
        .map(|t| {
            let rid = t["runtime_id"].as_str().unwrap_or("").to_owned();
            let pids = w.task_pids(&rid);
            (
                t["id"].as_str().unwrap().to_owned(),
                rid,
                t["phase"].as_str().unwrap().to_owned(),
                pids,
            )
        })
        .collect()
}

/// Kills the daemon with SIGKILL, waits a second with the load on, starts a new
/// one and waits until it has adopted the tasks and ticked a few times.
fn restart_daemon(w: &mut World) {
    w.daemon.take().unwrap().kill9();
    std::thread::sleep(Duration::from_secs(1));
    let before = w.log("daemon.log").matches("controller started").count();
    w.daemon = Some(Proc::spawn(&w.env, &["daemon", "--no-proxy"], "daemon.log"));
    until(w, "the new daemon adopts the tasks", || {
        w.log("daemon.log").matches("controller started").count() > before
    });
    std::thread::sleep(Duration::from_secs(2));
}

/// Running tasks that passed their health check: (task id, runtime id, pids).
fn healthy_tasks(w: &World) -> Vec<(String, String, Vec<i32>)> {
    w.tasks("hello")
        .iter()
        .filter(|t| t["phase"] == "running" && t["healthy_once"] == true)
        .map(|t| {
            let rid = t["runtime_id"].as_str().unwrap().to_owned();
            let pids = w.task_pids(&rid);
            (t["id"].as_str().unwrap().to_owned(), rid, pids)
        })
        .collect()
}

/// After a restart: every task healthy before it is either still running on the
/// same processes, or (an old version's, not deployment `id`'s) draining or
/// stopped as the deployment goes on; none failed.
fn assert_kept(w: &World, healthy: &[(String, String, Vec<i32>)], id: i64, when: &str) {
    let now = w.tasks_all("hello");
    for (task, rid, pids) in healthy {
        let t = now
            .iter()
            .find(|t| t["id"] == task.as_str())
            .unwrap_or_else(|| panic!("{when}: task {task} vanished"));
        assert_eq!(t["runtime_id"], rid.as_str(), "{when}");
        let phase = t["phase"].as_str().unwrap();
        assert_ne!(phase, "failed", "{when}: {t}\n{}", w.log("daemon.log"));
        if phase == "running" {
            assert_eq!(
                &w.task_pids(rid),
                pids,
                "{when}: task {task} was restarted\n{}",
                w.log("daemon.log")
            );
        } else {
            assert_ne!(t["deployment"], id, "{when}: a new task was stopped: {t}");
        }
    }
}

/// The controller dies (SIGKILL) in steady state, while a canary deployment starts
/// its tasks, and during the canary's bake: requests keep succeeding, the restarted
/// daemon adopts every healthy task (same runtime ids, same processes), finishes the
/// deployment with them and leaves no stray container behind.
#[test]
fn killing_the_daemon_in_steady_state_and_mid_deployment_fails_no_request_and_keeps_tasks() {
    let mut w = World::hello();
    let load = v1_under_load(&w, "");

    // Steady state.
    let before = snapshot(&w);
    assert_eq!(before.len(), 3);
    assert!(
        before.iter().all(|t| t.2 == "running" && t.3.len() >= 2),
        "{before:?}"
    );
    restart_daemon(&mut w);
    let after = snapshot(&w);
    assert_eq!(
        before,
        after,
        "the restarted daemon changed the steady-state tasks:\n{}",
        w.log("daemon.log")
    );

    // While the new tasks start.
    let v2 = w.hello_file(
        "hello",
        3,
        &[("HELLO_VERSION", "2")],
        "deployment: {strategy: {type: canary, percent: 20, bake: 4s}}\n",
    );
    assert_ok(&w.deploy_detached(&v2), "deploy v2 --detach", &w);
    let id = active(&w, "hello");
    let healthy = healthy_tasks(&w);
    until(&w, "the deployment starts a task", || {
        w.events("hello")
            .iter()
            .any(|e| e["deployment"] == id && e["kind"] == "task-starting")
    });
    restart_daemon(&mut w);
    assert_kept(&w, &healthy, id, "killed while tasks start");

    // During the bake.
    until(&w, "the canary bakes", || {
        w.events("hello")
            .iter()
            .any(|e| e["deployment"] == id && e["kind"] == "shifted")
    });
    let healthy = healthy_tasks(&w);
    let new_ids: Vec<String> = w
        .tasks("hello")
        .iter()
        .filter(|t| t["deployment"] == id && t["healthy_once"] == true)
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(new_ids.len(), 3);
    assert_eq!(healthy.len(), 6, "{healthy:?}");
    restart_daemon(&mut w);
    assert_kept(&w, &healthy, id, "killed during the bake");

    until(&w, "the deployment finishes", || {
        w.service_row("hello")["state"] != "in_progress"
    });
    let row = w.service_row("hello");
    assert_eq!(row["deployment"], id, "{row}\n{}", w.log("daemon.log"));
    assert_eq!(row["state"], "succeeded", "{row}");
    let done = event_time(&w, "hello", id, "succeeded");
    until(&w, "only the 3 v2 tasks are left", || {
        w.tasks("hello").len() == 3
    });
    // The v2 tasks healthy before the last kill are the final ones, unrestarted.
    let fin = snapshot(&w);
    for nid in &new_ids {
        let (_, rid, pids) = healthy.iter().find(|h| &h.0 == nid).unwrap();
        let f = fin.iter().find(|f| &f.0 == nid).unwrap_or_else(|| {
            panic!("the new task {nid} healthy before the kill is gone: {fin:?}")
        });
        assert_eq!(
            (&f.1, &f.3),
            (rid, pids),
            "the new task {nid} was restarted"
        );
    }
    // No container is left of a task the killed daemon was starting.
    until(&w, "the runtime holds only the 3 tasks", || {
        std::fs::read_dir(w.env.home().join("deploy/tasks"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("hoist-"))
            .count()
            == 3
    });
    let enough = load.sent() + RATE as usize;
    until(&w, "another second of load", || load.sent() >= enough);
    let samples = load.finish();
    eprintln!("daemon kill -9 (3 times): {}", summary(&samples));
    for line in w.log("daemon.log").lines() {
        if line.contains("controller started") || line.contains("no service owns") {
            eprintln!("  {line}");
        }
    }
    assert_none_failed(&samples, "daemon kill -9", &w);
    assert_moved(&samples, done, "daemon kill -9");
}

/// A canary whose new version passes its health check but answers 500 on `/` is
/// rolled back by the error-rate alarm (the proxy's 5xx counts during the bake),
/// and `hoist service events` says why.
#[test]
fn a_canary_answering_500_rolls_back_on_its_error_rate() {
    let extra = "deployment: {strategy: {type: canary, percent: 50, bake: 10s}, error_rate: {max_percent: 10, min_requests: 20}}\n";
    let w = World::hello();
    let load = v1_under_load(&w, extra);
    let v1_id = active(&w, "hello");
    let v2 = w.hello_file(
        "hello",
        3,
        &[("HELLO_VERSION", "2"), ("HELLO_BROKEN", "1")],
        extra,
    );
    let out = w.deploy(&v2, "hello:dev");
    assert!(
        !out.status.success(),
        "the broken canary must fail:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error rate"), "{stderr}");
    let events = w.env.ok(&["service", "events", "hello"]);
    assert!(
        events.contains("50% of traffic to the new version"),
        "{events}"
    );
    assert!(
        events.contains("rolling back to deployment") && events.contains("because error rate: "),
        "{events}"
    );
    assert!(events.contains("failed with 5xx (limit 10%)"), "{events}");
    // The v2 deployment failed, the rollback to v1 succeeded.
    let json = w.events("hello");
    let failed = json
        .iter()
        .find(|e| e["kind"] == "rollback")
        .unwrap_or_else(|| panic!("no rollback event:\n{events}"));
    assert!(failed["deployment"].as_i64().unwrap() > v1_id + 1);
    assert_eq!(w.service_row("hello")["state"], "succeeded");
    eventually("only v1's 3 tasks are left", || w.tasks("hello").len() == 3);
    let samples = finish_after(load, 1);
    let broken = samples
        .iter()
        .filter(|s| s.result.as_ref().is_err_and(|e| e.contains("broken")))
        .count();
    let other: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            version(s) != Some("1") && !s.result.as_ref().is_err_and(|e| e.contains("broken"))
        })
        .collect();
    eprintln!(
        "error-rate rollback: {} requests at {:.0}/s, {broken} answered 500 by v2: {:?}",
        samples.len(),
        rate(&samples),
        tally(&samples)
    );
    assert!(broken > 0, "v2 never got traffic");
    assert!(other.is_empty(), "{:?}", &other[..other.len().min(5)]);
    // After the rollback, only v1 answers.
    for _ in 0..20 {
        assert_eq!(body(w.addr()).as_deref().and_then(hello_version), Some("1"));
    }
}
