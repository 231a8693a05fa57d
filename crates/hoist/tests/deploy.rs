//! Deployments end to end: the real `hoist proxy` and `hoist daemon` processes,
//! services of busybox httpd images built by `hoist build`, tasks on the embedded
//! runtime in their own network namespaces, and traffic through the proxy while
//! versions change. Root, loopback only.
#![allow(clippy::unwrap_used)]

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use util::Env;

/// A background `hoist` process killed when dropped.
struct Proc {
    child: Child,
}

impl Proc {
    fn spawn(env: &Env, args: &[&str], log: &str) -> Proc {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(env.path(log))
            .unwrap();
        let child = env
            .hoist()
            .args(args)
            .env("HOIST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Proc { child }
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A deployment world: store with images, a proxy, a daemon.
struct World {
    daemon: Option<Proc>,
    proxy: Option<Proc>,
    port: u16,
    // Last: the directory goes after the processes using it.
    env: Env,
}

impl World {
    fn new() -> World {
        let env = Env::new();
        env.import_busybox("busybox");
        World {
            env,
            proxy: None,
            daemon: None,
            port: util::free_port(),
        }
    }

    /// A world with these images (`(name, body, healthy)`, see [`World::image`])
    /// and a proxy and a daemon running.
    fn running(images: &[(&str, &str, bool)]) -> World {
        let mut w = World::new();
        for (name, body, healthy) in images {
            w.image(name, body, *healthy);
        }
        w.start_proxy();
        w.start_daemon();
        w
    }

    /// Builds `name` serving `body` at `/` and, when `healthy`, `ok` at `/healthz`.
    fn image(&self, name: &str, body: &str, healthy: bool) {
        let ctx = self.env.path(&format!("ctx-{}", name.replace(':', "-")));
        std::fs::create_dir_all(&ctx).unwrap();
        let health = if healthy {
            " && echo ok > /www/healthz"
        } else {
            ""
        };
        std::fs::write(
            ctx.join("Dockerfile"),
            format!(
                "FROM busybox\nRUN mkdir -p /www && echo '{body}' > /www/index.html{health}\nEXPOSE 8080\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"
            ),
        )
        .unwrap();
        self.env.ok(&[
            "build",
            ctx.to_str().unwrap(),
            "-t",
            name,
            "--progress",
            "quiet",
        ]);
    }

    fn proxy_config(&self) -> PathBuf {
        self.env.home().join("proxy/config.json")
    }

    fn start_proxy(&mut self) {
        std::fs::create_dir_all(self.proxy_config().parent().unwrap()).unwrap();
        let cfg = self.proxy_config().display().to_string();
        self.proxy = Some(Proc::spawn(
            &self.env,
            &["proxy", "--config", &cfg, "--admin", "127.0.0.1:0"],
            "proxy.log",
        ));
        let addr = self.env.home().join("proxy/admin.addr");
        eventually("the proxy writes its admin address", || addr.exists());
    }

    fn start_daemon(&mut self) {
        let before = self.log("daemon.log").matches("managing services").count();
        self.daemon = Some(Proc::spawn(
            &self.env,
            &["daemon", "--no-proxy"],
            "daemon.log",
        ));
        // Ready once it holds its lock, so `hoist deploy` does not start another.
        eventually("the daemon starts", || {
            self.log("daemon.log").matches("managing services").count() > before
        });
    }

    fn service_file(&self, name: &str, extra: &str) -> PathBuf {
        let path = self.env.path(&format!("{name}.yml"));
        std::fs::write(
            &path,
            format!(
                "name: {name}\nimage: {name}:1\ncount: 2\nstop_timeout: 2s\nhealth_check: {{path: /healthz, interval: 1s, timeout: 500ms, healthy_threshold: 2, unhealthy_threshold: 2}}\nlistener: {{addr: 127.0.0.1:{}}}\n{extra}",
                self.port
            ),
        )
        .unwrap();
        path
    }

    fn deploy(&self, file: &Path, image: &str) -> std::process::Output {
        self.env
            .hoist()
            .args(["deploy", file.to_str().unwrap(), "--image", image])
            .output()
            .unwrap()
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn tasks(&self, service: &str) -> Vec<serde_json::Value> {
        let out = self.env.ok(&["--json", "service", "ps", service]);
        serde_json::from_str(&out).unwrap()
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.env.path(name)).unwrap_or_default()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Remove every service through the daemon (its tasks drain and stop), then
        // stop the daemon and the proxy: nothing outlives the test.
        if self.daemon.is_some() {
            let ls = self.env.hoist().args(["--json", "service", "ls"]).output();
            let names: Vec<String> = ls
                .ok()
                .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
                .and_then(|v| v.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|s| s["name"].as_str().map(str::to_owned))
                .collect();
            for name in &names {
                let _ = self.env.hoist().args(["service", "rm", name]).output();
            }
            let deadline = Instant::now() + Duration::from_secs(60);
            while !names.is_empty() && Instant::now() < deadline {
                let out = self.env.hoist().args(["--json", "service", "ls"]).output();
                if out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "[]") {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        if let Some(mut d) = self.daemon.take() {
            d.kill9();
        }
    }
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One GET through the proxy: (status, body), or None when the connection failed.
fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    Some((status, body))
}

fn body(addr: SocketAddr) -> Option<String> {
    match get(addr, "/") {
        Some((200, b)) => Some(b.trim().to_owned()),
        _ => None,
    }
}

fn assert_ok(out: &std::process::Output, what: &str, w: &World) {
    assert!(
        out.status.success(),
        "{what} failed:\nstdout:\n{}\nstderr:\n{}\ndaemon log:\n{}\nproxy log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        w.log("daemon.log"),
        w.log("proxy.log"),
    );
}

/// Requests in a loop from another thread, counting failures.
struct Load {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Result<String, String>>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(addr: SocketAddr) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s, v) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let r = match get(addr, "/") {
                    Some((200, b)) => Ok(b.trim().to_owned()),
                    Some((code, b)) => Err(format!("{code} {}", b.trim())),
                    None => Err("connection failed".to_owned()),
                };
                v.lock().unwrap().push(r);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Load {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Vec<Result<String, String>> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

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
