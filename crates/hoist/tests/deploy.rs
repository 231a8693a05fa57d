//! Deployments end to end: the real `hoist proxy` and `hoist daemon` processes,
//! services of busybox httpd images built by `hoist build`, tasks on the embedded
//! runtime in their own network namespaces, and traffic through the proxy while
//! versions change. Root, loopback only.
#![allow(clippy::unwrap_used)]

mod util;

use std::io::Write;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use util::world::{assert_ok, body, eventually, get, Load, World};

#[test]
fn rolling_deploys_replace_every_task_without_failing_a_request_and_rollback_returns() {
    let w = World::running(&[("web:1", "version 1", true), ("web:2", "version 2", true)]);
    let file = w.service_file("web", "");

    let out = w.deploy(&file, "web:1");
    assert_ok(&out, "first deploy", &w);
    assert_eq!(body(w.addr()).as_deref(), Some("version 1"));
    let first: Vec<String> = w
        .tasks("web")
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(first.len(), 2);

    let load = Load::start(w.addr());
    let out = w.deploy(&file, "web:2");
    assert_ok(&out, "rolling deploy", &w);
    // Keep the load on while the old tasks drain and stop.
    eventually("the old tasks stop", || {
        w.tasks("web")
            .iter()
            .all(|t| !first.contains(&t["id"].as_str().unwrap().to_owned()))
    });
    let seen = load.finish();
    let failed: Vec<&String> = seen.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed during the rolling deploy: {:?}",
        failed.len(),
        seen.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(seen.iter().any(|r| r.as_deref() == Ok("version 1")));
    assert!(seen.iter().any(|r| r.as_deref() == Ok("version 2")));
    assert_eq!(body(w.addr()).as_deref(), Some("version 2"));
    let tasks = w.tasks("web");
    assert_eq!(tasks.len(), 2);
    assert!(tasks.iter().all(|t| t["phase"] == "running"));

    // The events tell the story.
    let events = w.env.ok(&["service", "events", "web"]);
    for kind in [
        "created",
        "task-running",
        "task-healthy",
        "task-draining",
        "succeeded",
    ] {
        assert!(events.contains(kind), "no {kind} event in:\n{events}");
    }

    // Logs: httpd -f writes nothing by default, but the command works and names no
    // unknown task.
    w.env.ok(&["logs", "web", "--tail", "5"]);

    // On-demand rollback goes back to version 1.
    let out = w.env.hoist().args(["rollback", "web"]).output().unwrap();
    assert_ok(&out, "rollback", &w);
    eventually("version 1 serves again", || {
        body(w.addr()).as_deref() == Some("version 1")
    });
    let ls = w.env.ok(&["--json", "service", "ls"]);
    let ls: serde_json::Value = serde_json::from_str(&ls).unwrap();
    assert_eq!(ls[0]["name"], "web");
    assert_eq!(ls[0]["state"], "succeeded");
    assert!(ls[0]["image"].as_str().unwrap().contains("web@sha256:"));
}

#[test]
fn a_version_failing_its_health_checks_trips_the_circuit_breaker_and_rolls_back() {
    let w = World::running(&[("api:1", "api 1", true), ("api:bad", "api bad", false)]);
    let file = w.service_file("api", "deployment: {circuit_breaker: 2}\n");
    assert_ok(&w.deploy(&file, "api:1"), "first deploy", &w);

    let out = w.deploy(&file, "api:bad");
    assert!(
        !out.status.success(),
        "a failing version must fail the deploy"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("circuit breaker"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("rollback"), "{stdout}");
    // Version 1 kept serving and still does.
    assert_eq!(body(w.addr()).as_deref(), Some("api 1"));
    eventually("only version 1 tasks remain", || {
        let tasks = w.tasks("api");
        tasks.len() == 2 && tasks.iter().all(|t| t["phase"] == "running")
    });
}

#[test]
fn a_listener_address_the_proxy_cannot_bind_fails_the_deploy_and_rolls_back() {
    let w = World::running(&[("api:1", "api 1", true)]);
    let file = w.service_file("api", "");
    assert_ok(&w.deploy(&file, "api:1"), "first deploy", &w);

    // Another process holds the address the new version asks for.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let moved = w.env.path("moved.yml");
    std::fs::write(
        &moved,
        std::fs::read_to_string(&file)
            .unwrap()
            .replace(&format!("127.0.0.1:{}", w.port), &addr),
    )
    .unwrap();
    let out = w.deploy(&moved, "api:1");
    assert!(!out.status.success(), "the deploy cannot succeed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("the proxy cannot serve the listener {addr}")),
        "{stderr}"
    );
    // The previous deployment serves on its own address, as before.
    assert_eq!(body(w.addr()).as_deref(), Some("api 1"));
    eventually("the service is back on its first listener", || {
        w.tasks("api").iter().all(|t| t["phase"] == "running")
    });
    drop(taken);
}

#[test]
fn canary_serves_both_versions_while_baking_then_only_the_new_one() {
    let w = World::running(&[("shop:1", "shop 1", true), ("shop:2", "shop 2", true)]);
    let file = w.service_file(
        "shop",
        "deployment: {strategy: {type: canary, percent: 50, bake: 4s}}\n",
    );
    assert_ok(&w.deploy(&file, "shop:1"), "first deploy", &w);
    let detach = w
        .env
        .hoist()
        .args([
            "deploy",
            file.to_str().unwrap(),
            "--image",
            "shop:2",
            "--detach",
        ])
        .output()
        .unwrap();
    assert_ok(&detach, "deploy --detach", &w);
    // While baking at 50%, both versions answer.
    let mut seen = std::collections::BTreeSet::new();
    eventually("both versions answer during the bake", || {
        if let Some(b) = body(w.addr()) {
            seen.insert(b);
        }
        seen.len() == 2
    });
    eventually("the canary completes", || {
        let ls = w.env.ok(&["--json", "service", "ls"]);
        let ls: serde_json::Value = serde_json::from_str(&ls).unwrap();
        ls[0]["state"] == "succeeded"
    });
    for _ in 0..20 {
        assert_eq!(body(w.addr()).as_deref(), Some("shop 2"));
    }
    let events = w.env.ok(&["service", "events", "shop"]);
    assert!(
        events.contains("50% of traffic to the new version"),
        "{events}"
    );
}

#[test]
fn a_restarted_daemon_adopts_running_tasks_and_traffic_never_depends_on_it() {
    let mut w = World::running(&[("cat:1", "cat 1", true), ("cat:2", "cat 2", true)]);
    let file = w.service_file("cat", "");
    assert_ok(&w.deploy(&file, "cat:1"), "first deploy", &w);
    let before: Vec<(String, String)> = w
        .tasks("cat")
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_owned(),
                t["runtime_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();

    // The controller dies: the proxy and the tasks go on serving.
    w.daemon.take().unwrap().kill9();
    for _ in 0..20 {
        assert_eq!(body(w.addr()).as_deref(), Some("cat 1"));
    }
    // A new controller adopts them instead of restarting them.
    w.start_daemon();
    std::thread::sleep(Duration::from_secs(2));
    let after: Vec<(String, String)> = w
        .tasks("cat")
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_owned(),
                t["runtime_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        before,
        after,
        "healthy tasks were restarted:\n{}",
        w.log("daemon.log")
    );
    // And it keeps deploying.
    assert_ok(&w.deploy(&file, "cat:2"), "deploy after restart", &w);
    assert_eq!(body(w.addr()).as_deref(), Some("cat 2"));
}

#[test]
fn a_bad_service_file_is_refused_with_file_line_and_field() {
    let w = World::new();
    let path = w.env.path("bad.yml");
    std::fs::write(
        &path,
        "name: web\nimage: web:1\nlistener: {addr: 127.0.0.1:8080}\ncount: 2\nstop_timeout: soon\n",
    )
    .unwrap();
    let err = w.env.fails(&["deploy", path.to_str().unwrap()]);
    assert!(err.contains("bad.yml:5:"), "{err}");
    assert!(err.contains("stop_timeout: invalid duration"), "{err}");
    // Nothing was recorded.
    assert!(
        !w.env.home().join("deploy/state.db").exists() || {
            let ls = w.env.ok(&["--json", "service", "ls"]);
            ls.trim() == "[]"
        }
    );
}

#[test]
fn secrets_reach_the_task_environment_and_nothing_else() {
    let mut w = World::new();
    // The task serves its environment, so the test can see what it got.
    let ctx = w.env.path("ctx-env");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN mkdir -p /www && echo ok > /www/healthz\nEXPOSE 8080\nCMD [\"sh\", \"-c\", \"env > /www/env.txt && exec httpd -f -p 8080 -h /www\"]\n",
    )
    .unwrap();
    w.env.ok(&[
        "build",
        ctx.to_str().unwrap(),
        "-t",
        "envy:1",
        "--progress",
        "quiet",
    ]);
    let secret = "s3cr3t-value-4242";
    let mut set = w
        .env
        .hoist()
        .args(["secret", "set", "db-password"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    set.stdin
        .take()
        .unwrap()
        .write_all(secret.as_bytes())
        .unwrap();
    assert!(set.wait().unwrap().success());
    w.start_proxy();
    w.start_daemon();
    let file = w.service_file(
        "envy",
        "env: {MODE: prod}\nsecrets: {DB_PASSWORD: db-password}\n",
    );
    let out = w.deploy(&file, "envy:1");
    assert_ok(&out, "deploy with a secret", &w);
    let (status, env) = get(w.addr(), "/env.txt").unwrap();
    assert_eq!(status, 200);
    assert!(env.contains(&format!("DB_PASSWORD={secret}")), "{env}");
    assert!(env.contains("MODE=prod"), "{env}");
    // Not in what hoist prints or records.
    let shown = [
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        w.env.ok(&["--json", "service", "ps", "envy"]),
        w.env.ok(&["service", "events", "envy"]),
        w.env.ok(&["--json", "secret", "ls"]),
        w.log("daemon.log"),
    ];
    for s in &shown {
        assert!(!s.contains(secret), "the secret leaked into:\n{s}");
    }
    let db = std::fs::read(w.env.home().join("deploy/state.db")).unwrap();
    assert!(
        !db.windows(secret.len()).any(|win| win == secret.as_bytes()),
        "the secret is in the state database"
    );

    // Task state (whose container spec holds the environment) is root's alone.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(w.env.home().join("deploy"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o077, 0, "deploy dir mode {mode:o}");

    // A service naming a missing secret is refused before anything is recorded.
    let file = w.service_file("envy", "secrets: {API_KEY: nope}\n");
    let out = w.deploy(&file, "envy:1");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("secret \"nope\" is not in hoist's secret store"),
        "{err}"
    );
}

#[test]
fn blue_green_serves_the_new_version_on_the_test_listener_then_switches_all_traffic() {
    let w = World::running(&[("bg:1", "blue", true), ("bg:2", "green", true)]);
    let test_port = util::free_port();
    let file = w.service_file(
        "bg",
        &format!(
            "deployment: {{strategy: {{type: blue-green, bake: 30s, test_listener: \"127.0.0.1:{test_port}\"}}}}\n"
        ),
    );
    assert_ok(&w.deploy(&file, "bg:1"), "first deploy", &w);
    let load = Load::start(w.addr());
    let out = w
        .env
        .hoist()
        .args([
            "deploy",
            file.to_str().unwrap(),
            "--image",
            "bg:2",
            "--detach",
        ])
        .output()
        .unwrap();
    assert_ok(&out, "deploy --detach", &w);
    let test = SocketAddr::from(([127, 0, 0, 1], test_port));
    eventually("the test listener serves green", || {
        body(test).as_deref() == Some("green")
    });
    eventually("all traffic goes to green", || {
        (0..10).all(|_| body(w.addr()).as_deref() == Some("green"))
    });
    // Blue stays up through the bake: four tasks run.
    let phases: Vec<String> = w
        .tasks("bg")
        .iter()
        .map(|t| t["phase"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(phases, ["running"; 4], "blue must wait out the bake");
    // A rollback during the bake is instant: blue is still there.
    let out = w.env.hoist().args(["rollback", "bg"]).output().unwrap();
    assert_ok(&out, "rollback during the bake", &w);
    assert_eq!(body(w.addr()).as_deref(), Some("blue"));
    let seen = load.finish();
    let failed: Vec<&String> = seen.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "requests failed: {:?}",
        &failed[..failed.len().min(5)]
    );
    let events = w.env.ok(&["service", "events", "bg"]);
    assert!(events.contains("rollback requested"), "{events}");
}
