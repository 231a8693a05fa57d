//! `hoist server` end to end: a git repository, the server building it, signed push
//! webhooks, the REST API with its tokens, `hoist approve` promoting a run to prod,
//! and a server killed with SIGKILL in the middle of a run. The real daemon, proxy
//! and registry; root, loopback only.
#![allow(clippy::unwrap_used)]

mod util;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use util::world::{body, get, hello_version, run_stages, Proc, World};

const SECRET: &str = "a webhook secret";

/// A server over the world's home, building `repo` as `hello`.
struct Server {
    proc: Option<Proc>,
    addr: SocketAddr,
    token: String,
    agent: ureq::Agent,
}

impl Server {
    fn start(w: &World, repo: &Path, token: Option<String>) -> Server {
        Server::start_with(w, repo, token, &[])
    }

    fn start_with(w: &World, repo: &Path, token: Option<String>, extra: &[&str]) -> Server {
        let token = token.unwrap_or_else(|| {
            w.env
                .ok(&["server", "token", "create", "ci"])
                .trim()
                .to_owned()
        });
        let addr: SocketAddr = format!("127.0.0.1:{}", util::free_port()).parse().unwrap();
        let repo_arg = format!("hello={}", repo.display());
        let listen = addr.to_string();
        let mut args = vec!["server", "--listen", &listen, "--repo", &repo_arg];
        args.extend_from_slice(extra);
        let proc = Proc::spawn(&w.env, &args, "server.log");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let s = Server {
            proc: Some(proc),
            addr,
            token,
            agent,
        };
        util::world::eventually("the server answers", || {
            get(addr, "/healthz").is_some_and(|(st, _)| st == 200)
        });
        s
    }

    fn kill9(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill9();
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// GET with the token: (status, JSON).
    fn get(&self, path: &str) -> (u16, Value) {
        let mut r = self
            .agent
            .get(self.url(path))
            .header("Authorization", format!("Bearer {}", self.token))
            .call()
            .unwrap();
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// POST JSON with the token: (status, JSON).
    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let mut r = self
            .agent
            .post(self.url(path))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .unwrap();
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// POSTs GitHub's push event for `sha` on main, signed with `secret`.
    fn github_push(&self, repo: &Path, sha: &str, secret: &str) -> (u16, Value) {
        let body = serde_json::json!({
            "ref": "refs/heads/main",
            "before": "0000000000000000000000000000000000000000",
            "after": sha,
            "repository": {"name": "hello", "full_name": "acme/hello",
                "clone_url": format!("https://github.com/acme/hello.git?{}", repo.display())},
            "head_commit": {"id": sha, "message": "a change\n\nmore",
                "author": {"name": "Dev", "email": "dev@example.com"}},
            "pusher": {"name": "dev"}
        })
        .to_string();
        let sig = hoist_pipeline::notify::signature(secret.as_bytes(), body.as_bytes());
        let mut r = self
            .agent
            .post(self.url("/api/v1/webhooks/github"))
            .header("X-GitHub-Event", "push")
            .header("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
            .header("X-Hub-Signature-256", &sig)
            .header("Content-Type", "application/json")
            .send(body)
            .unwrap();
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Waits (up to 10 minutes: a run compiles hello) until `done` holds of what
    /// `GET path` answers, and returns that.
    fn wait_get(&self, w: &World, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let (_, got) = self.get(path);
            if done(&got) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{path}: timed out waiting until {what}: {got:#}\nserver log:\n{}",
                w.log("server.log")
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Waits until `done` holds of run `id`.
    fn wait_run(&self, w: &World, id: i64, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        self.wait_get(w, &format!("/api/v1/runs/{id}"), what, done)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn stage<'r>(run: &'r Value, name: &str) -> &'r Value {
    run["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no stage {name} in {run:#}"))
}

fn commit_all(dir: &Path, message: &str) -> String {
    util::sh(
        dir,
        &format!("git add -A && git commit -q -m '{message}' && git rev-parse HEAD"),
    )
}

/// examples/hello as a git repository of its own, its environments listening on
/// `dev` and `prod`, prod's canary shortened, its version `version`.
fn hello_repo(w: &World, dev: u16, prod: u16, version: &str) -> PathBuf {
    let dir = w.env.path("hello");
    let src = util::root().join("examples/hello");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    for f in [
        "Cargo.toml",
        "Cargo.lock",
        "Dockerfile",
        "build.sh",
        ".gitignore",
    ] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    for f in std::fs::read_dir(src.join("src")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), dir.join("src").join(f.file_name())).unwrap();
    }
    write_hoist_yml(&dir, dev, prod, version, "");
    util::git_init(&dir);
    dir
}

fn write_hoist_yml(dir: &Path, dev: u16, prod: u16, version: &str, extra_test: &str) {
    let yml = std::fs::read_to_string(util::root().join("examples/hello/hoist.yml")).unwrap();
    let yml = yml
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{dev}"))
        .replace("127.0.0.1:8081", &format!("127.0.0.1:{prod}"))
        .replace("canary:10%:30s", "canary:50%:2s")
        .replace(
            "HELLO_VERSION: \"1\"",
            &format!("HELLO_VERSION: \"{version}\""),
        );
    // Extra test steps go at the end of `test:`, before the next top-level key.
    let tests = yml.find("\ntest:\n").unwrap() + 7;
    let end = tests
        + yml[tests..]
            .match_indices('\n')
            .find(|(i, _)| {
                yml[tests + i + 1..]
                    .chars()
                    .next()
                    .is_some_and(|c| !c.is_whitespace() && c != '-')
            })
            .map_or(yml.len() - tests, |(i, _)| i);
    let yml = format!("{}{extra_test}{}", &yml[..end], &yml[end..]);
    assert!(yml.contains(&format!("127.0.0.1:{prod}")), "{yml}");
    std::fs::write(dir.join("hoist.yml"), yml).unwrap();
}

fn version_at(port: u16) -> Option<String> {
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    body(addr).and_then(|b| hello_version(&b).map(str::to_owned))
}

#[test]
fn a_signed_github_push_tests_builds_deploys_to_dev_and_an_approval_promotes_it_to_prod() {
    let mut w = World::new();
    w.start_proxy();
    w.start_daemon();
    let (dev, prod) = (util::free_port(), util::free_port());
    let repo = hello_repo(&w, dev, prod, "7");
    let first = commit_all(&repo, "hello 7");
    let mut secret = w.env.hoist();
    secret.args(["secret", "set", "webhook"]);
    let out = secret
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(SECRET.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    util::assert_success(&out, "hoist secret set webhook");
    let server = Server::start(&w, &repo, None);

    // The API needs the token; the OpenAPI document does not, and lists the routes.
    let anonymous = server.agent.get(server.url("/api/v1/runs")).call().unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let mut doc = server
        .agent
        .get(server.url("/api/v1/openapi.json"))
        .call()
        .unwrap();
    let doc: Value = serde_json::from_str(&doc.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/api/v1/runs",
        "/api/v1/runs/{id}",
        "/api/v1/runs/{id}/stages/{seq}/log",
        "/api/v1/runs/{id}/approve",
        "/api/v1/webhooks/github",
        "/api/v1/environments",
        "/api/v1/images",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is not documented");
    }

    // Every documented route is served (with the documented method): with a run
    // that does not exist and an empty body, none is "no such route".
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{id}", "999999")
            .replace("{seq}", "0")
            .replace("{name}", "nothing");
        for method in ops.as_object().unwrap().keys() {
            let req = ureq::http::Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(server.url(&concrete))
                .header("Authorization", format!("Bearer {}", server.token))
                .header("Content-Type", "application/json")
                .body("{}".to_owned())
                .unwrap();
            let mut r = server.agent.run(req).unwrap();
            let status = r.status().as_u16();
            let body = r.body_mut().read_to_string().unwrap_or_default();
            assert!(
                status != 405 && !(status == 404 && body.is_empty()),
                "{method} {path}: {status} {body:?}"
            );
        }
    }

    // A wrong signature: 401, and nothing starts.
    let (status, answer) = server.github_push(&repo, &first, "not the secret");
    assert_eq!(status, 401, "{answer}");
    std::thread::sleep(Duration::from_secs(2));
    let (_, runs) = server.get("/api/v1/runs");
    assert_eq!(runs, Value::Array(vec![]));

    // A signed push: the run tests, builds, scans, pushes, deploys to dev, waits.
    let (status, answer) = server.github_push(&repo, &first, SECRET);
    assert_eq!(status, 202, "{answer}");
    let id = answer["run"].as_i64().unwrap();
    let run = server.wait_run(&w, id, "prod's gate waits", |r| {
        r["status"] == "failed" || stage_status(r, "approval:prod") == Some("waiting")
    });
    assert_eq!(run["status"], "running", "{run:#}");
    assert_eq!(run["commit"]["sha"], first.as_str());
    assert_eq!(run["commit"]["branch"], "main");
    assert_eq!(run["commit"]["author"], "Dev <dev@example.com>");
    assert_eq!(run["repo"], "hello");
    assert!(run["trigger"].as_str().unwrap().starts_with("github push"));
    let done: Vec<_> = run_stages(&run)
        .into_iter()
        .take_while(|(_, s)| s == "succeeded")
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        done,
        [
            "source",
            "test",
            "build",
            "scan",
            "push",
            "deploy:dev",
            "verify:dev"
        ]
    );
    assert_eq!(version_at(dev).as_deref(), Some("7"));
    assert_eq!(
        version_at(prod),
        None,
        "prod is not deployed before its approval"
    );
    // The image is tagged with the commit and the branch.
    let digest = w.env.inspect(&format!("hello:{first}"))["Digest"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(run["image"], format!("hello@{digest}"));
    assert_eq!(w.env.inspect("hello:main")["Digest"], digest.as_str());
    // Logs over the API: the test stage ran hello's unit tests.
    let seq = stage(&run, "test")["seq"].as_i64().unwrap();
    let mut log = server
        .agent
        .get(server.url(&format!("/api/v1/runs/{id}/stages/{seq}/log")))
        .header("Authorization", format!("Bearer {}", server.token))
        .call()
        .unwrap();
    assert_eq!(log.headers()["x-hoist-stage-status"], "succeeded");
    let text = log.body_mut().read_to_string().unwrap();
    assert!(text.contains("cargo test"), "{text}");
    // So does the CLI, over the same history.
    let cli = w
        .env
        .ok(&["runs", "logs", &id.to_string(), "--stage", "source"]);
    assert!(cli.contains("checked out"), "{cli}");

    // `hoist approve`, through the server's API, promotes it to prod: the
    // decision is recorded under the token's name.
    let url = format!("http://{}", server.addr);
    let out = w
        .env
        .hoist()
        .args([
            "--server",
            &url,
            "approve",
            &id.to_string(),
            "--env",
            "prod",
        ])
        .env("HOIST_TOKEN", &server.token)
        .output()
        .unwrap();
    util::assert_success(&out, "hoist --server URL approve");
    // A second decision on the same gate is refused.
    let out = w
        .env
        .hoist()
        .args([
            "--server",
            &url,
            "--token",
            &server.token,
            "reject",
            &id.to_string(),
            "--env",
            "prod",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already"));
    let run = server.wait_run(&w, id, "it ends", |r| r["status"] != "running");
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(stage(&run, "approval:prod")["message"], "approved by ci");
    assert_eq!(version_at(dev).as_deref(), Some("7"));
    assert_eq!(version_at(prod).as_deref(), Some("7"));
    let (_, envs) = server.get("/api/v1/environments");
    let names: Vec<&str> = envs
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["service"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"hello-dev") && names.contains(&"hello-prod"),
        "{envs}"
    );
    let (status, report) = server.get(&format!("/api/v1/runs/{id}/scan"));
    assert_eq!(status, 200, "{report}");

    // A push whose tests fail stops before the build and deploys nothing.
    write_hoist_yml(
        &repo,
        dev,
        prod,
        "8",
        "\n  - name: broken\n    run: echo this test fails; exit 3\n",
    );
    let second = commit_all(&repo, "hello 8, broken");
    let (status, answer) = server.github_push(&repo, &second, SECRET);
    assert_eq!(status, 202, "{answer}");
    let id2 = answer["run"].as_i64().unwrap();
    let run = server.wait_run(&w, id2, "it ends", |r| {
        r["status"] != "running" && r["status"] != "queued"
    });
    assert_eq!(run["status"], "failed", "{run:#}");
    assert_eq!(stage(&run, "test")["status"], "failed");
    for later in ["build", "push", "deploy:dev", "deploy:prod"] {
        assert_eq!(stage(&run, later)["status"], "skipped", "{later}");
    }
    assert_eq!(run["image"], Value::Null);
    assert_eq!(version_at(dev).as_deref(), Some("7"));
    let (_, deployments) = server.get("/api/v1/services/hello-dev/deployments");
    assert_eq!(deployments.as_array().unwrap().len(), 1, "{deployments}");
}

fn stage_status<'r>(run: &'r Value, name: &str) -> Option<&'r str> {
    run["stages"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name)?["status"]
        .as_str()
}

/// A small busybox httpd app whose one test step runs `test` (a YAML plain
/// scalar), one environment on `port` whose health check adds `health` (e.g.
/// `healthy_threshold: 4,`).
fn busybox_repo(w: &World, port: u16, test: &str, health: &str) -> PathBuf {
    let dir = w.env.path("app");
    util::busybox_site(&dir, "resumed");
    std::fs::write(
        dir.join("hoist.yml"),
        format!(
            "app: web\n\
             test:\n  - name: slow\n    run: {test}\n\
             scan:\n  fail_on: high\n  scanners: [secret]\n\
             environments:\n\
             \x20 - name: dev\n\
             \x20   service:\n\
             \x20     stop_timeout: 2s\n\
             \x20     health_check: {{path: /index.html, interval: 1s, {health} timeout: 500ms}}\n\
             \x20     listener: {{addr: 127.0.0.1:{port}}}\n"
        ),
    )
    .unwrap();
    util::git_init(&dir);
    dir
}

#[test]
fn a_server_killed_mid_run_resumes_the_run_where_it_stopped_when_it_starts_again() {
    let mut w = World::new();
    w.start_proxy();
    w.start_daemon();
    let port = util::free_port();
    let repo = busybox_repo(&w, port, "echo started; sleep 4; echo slept", "");
    commit_all(&repo, "first");
    let mut server = Server::start(&w, &repo, None);

    // Through the API this time: the head of main.
    let (status, answer) = server.post(
        "/api/v1/runs",
        &serde_json::json!({"repo": "hello", "branch": "main"}),
    );
    assert_eq!(status, 202, "{answer}");
    let id = answer["run"].as_i64().unwrap();
    server.wait_run(&w, id, "the test stage runs", |r| {
        stage_status(r, "test") == Some("running")
    });
    server.kill9();

    // Dead server: the record says where the run was.
    let run: Value =
        serde_json::from_str(&w.env.ok(&["--json", "runs", "show", &id.to_string()])).unwrap();
    assert_eq!(run["status"], "running");
    assert_eq!(stage_status(&run, "source"), Some("succeeded"));
    assert_eq!(stage_status(&run, "test"), Some("running"));
    assert_eq!(stage_status(&run, "deploy:dev"), Some("pending"));

    let token = server.token.clone();
    let server = Server::start(&w, &repo, Some(token));
    let run = server.wait_run(&w, id, "it ends", |r| {
        r["status"] != "running" && r["status"] != "queued"
    });
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert!(
        run_stages(&run).iter().all(|(_, s)| s == "succeeded"),
        "{run:#}"
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert_eq!(body(addr).as_deref(), Some("resumed"));
    // The test stage ran again, and its log says why.
    let log = w
        .env
        .ok(&["runs", "logs", &id.to_string(), "--stage", "test"]);
    assert_eq!(log.lines().filter(|l| *l == "started").count(), 2, "{log}");
    assert!(w.log("server.log").contains("queued to resume"));
    let (_, deployments) = server.get("/api/v1/services/web-dev/deployments");
    assert_eq!(deployments.as_array().unwrap().len(), 1, "{deployments}");
}

#[test]
fn polling_runs_each_new_head_of_a_branch_once() {
    polling(None);
}

#[test]
fn the_queue_and_history_can_live_in_postgresql() {
    let pg = hoist_pipeline::runs::testing::TestPostgres::start();
    let w = polling(Some(&pg.url()));
    // The runs are in PostgreSQL, not in the home's SQLite.
    let url = pg.url();
    let in_pg: Value =
        serde_json::from_str(&w.env.ok(&["--json", "--database", &url, "runs", "ls"])).unwrap();
    assert_eq!(in_pg.as_array().unwrap().len(), 3, "{in_pg:#}");
    assert!(!w.env.home().join("pipeline/runs.db").exists());
}

/// A server polling a repository (over `database` when given): each new head runs once.
fn polling(database: Option<&str>) -> World {
    let w = World::new();
    let port = util::free_port();
    // Tests that fail: the runs stop early; only their queueing matters here.
    let repo = busybox_repo(&w, port, "exit 1", "");
    let first = commit_all(&repo, "first");
    util::sh(&repo, "git checkout -q -b feature && git checkout -q main");
    let mut extra = vec!["--poll", "1s"];
    if let Some(url) = database {
        extra.extend(["--database", url]);
    }
    let server = Server::start_with(&w, &repo, None, &extra);
    let wait_runs = |n: usize| {
        server.wait_get(&w, "/api/v1/runs", &format!("{n} runs ended"), |r| {
            let all = r.as_array().unwrap();
            all.len() == n && all.iter().all(|r| r["status"] == "failed")
        })
    };
    // One run per branch head (main and feature point at the same commit).
    let runs = wait_runs(2);
    let mut branches: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["trigger"], "poll");
            assert_eq!(r["commit"]["sha"], first.as_str());
            assert_eq!(stage_status(r, "test"), Some("failed"));
            r["commit"]["branch"].as_str().unwrap()
        })
        .collect();
    branches.sort();
    assert_eq!(branches, ["feature", "main"]);
    // A new commit on main: one more run, of it.
    std::fs::write(repo.join("www/index.html"), "two\n").unwrap();
    let second = commit_all(&repo, "second");
    let runs = wait_runs(3);
    assert_eq!(runs[0]["commit"]["sha"], second.as_str());
    assert_eq!(runs[0]["commit"]["branch"], "main");
    assert_eq!(runs[0]["commit"]["message"], "second");
    // Polls go on; nothing new, nothing queued.
    std::thread::sleep(Duration::from_secs(3));
    let (_, runs) = server.get("/api/v1/runs");
    assert_eq!(runs.as_array().unwrap().len(), 3, "{runs:#}");
    drop(server);
    w
}

#[test]
fn a_run_cancelled_in_its_tests_is_retried_from_that_stage() {
    let mut w = World::new();
    w.start_proxy();
    w.start_daemon();
    let port = util::free_port();
    // The test waits until the flag file exists.
    let flag = w.env.path("flag");
    let test = format!(
        "echo started; while [ ! -e {} ]; do sleep 0.2; done; echo flagged",
        flag.display()
    );
    let repo = busybox_repo(&w, port, &test, "");
    commit_all(&repo, "first");
    let server = Server::start(&w, &repo, None);
    let url = format!("http://{}", server.addr);
    let cli = |args: &[&str]| {
        let mut all = vec!["--server", url.as_str(), "--token", server.token.as_str()];
        all.extend_from_slice(args);
        w.env.ok(&all)
    };

    let (_, answer) = server.post(
        "/api/v1/runs",
        &serde_json::json!({"repo": "hello", "branch": "main"}),
    );
    let id = answer["run"].as_i64().unwrap();
    server.wait_run(&w, id, "the test stage runs", |r| {
        stage_status(r, "test") == Some("running")
    });
    cli(&["runs", "cancel", &id.to_string()]);
    let run = server.wait_run(&w, id, "it stops", |r| r["status"] != "running");
    assert_eq!(run["status"], "cancelled", "{run:#}");
    assert_eq!(stage_status(&run, "test"), Some("cancelled"));
    assert_eq!(stage_status(&run, "build"), Some("skipped"));
    // Cancelling again: it has ended.
    let (status, _) = server.post(&format!("/api/v1/runs/{id}/cancel"), &Value::Null);
    assert_eq!(status, 409);

    // Retried, it goes on from the test stage; the source stage is not run again.
    std::fs::write(&flag, "").unwrap();
    cli(&["runs", "retry", &id.to_string()]);
    let run = server.wait_run(&w, id, "it ends again", |r| {
        r["status"] != "running" && r["status"] != "queued"
    });
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let source_log = cli(&["runs", "logs", &id.to_string(), "--stage", "source"]);
    assert_eq!(source_log.matches("checked out").count(), 1, "{source_log}");
    let test_log = cli(&["runs", "logs", &id.to_string(), "--stage", "test"]);
    assert!(test_log.contains("flagged"), "{test_log}");
    let shown = cli(&["runs", "show", &id.to_string()]);
    assert!(shown.contains("succeeded"), "{shown}");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert_eq!(body(addr).as_deref(), Some("resumed"));
}

#[test]
fn a_server_killed_while_it_deploys_leaves_a_recorded_deployment_and_the_run_finishes_it() {
    let mut w = World::new();
    w.start_proxy();
    w.start_daemon();
    let port = util::free_port();
    // Quick tests, and a deployment that takes a few seconds to turn healthy.
    let repo = busybox_repo(&w, port, "echo started", "healthy_threshold: 4,");
    commit_all(&repo, "first");
    let mut server = Server::start(&w, &repo, None);
    let (_, answer) = server.post(
        "/api/v1/runs",
        &serde_json::json!({"repo": "hello", "branch": "main"}),
    );
    let id = answer["run"].as_i64().unwrap();
    server.wait_run(&w, id, "dev deploys", |r| {
        stage_status(r, "deploy:dev") == Some("running")
    });
    server.kill9();

    // The daemon has the deployment on record, whatever the run's process did.
    let token = server.token.clone();
    let server = Server::start(&w, &repo, Some(token));
    let run = server.wait_run(&w, id, "it ends", |r| {
        r["status"] != "running" && r["status"] != "queued"
    });
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert_eq!(body(addr).as_deref(), Some("resumed"));
    // Every deployment of dev ended, and the newest one succeeded with the run's image.
    let (_, deployments) = server.get("/api/v1/services/web-dev/deployments");
    let all = deployments.as_array().unwrap();
    assert!(!all.is_empty() && all.len() <= 2, "{deployments:#}");
    assert_eq!(all[0]["state"], "succeeded", "{deployments:#}");
    assert!(
        all.iter().all(|d| d["finished"].is_i64()),
        "a deployment was left going: {deployments:#}"
    );
    let digest = run["image"].as_str().unwrap().rsplit('@').next().unwrap();
    assert_eq!(all[0]["digest"], digest);
}

/// A browser of the dashboard: a cookie jar of one session, no redirects followed.
struct Browser {
    agent: ureq::Agent,
    base: String,
    cookies: std::collections::BTreeMap<String, String>,
}

/// An answer: status, `Location`, body.
struct Page {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Browser {
    fn new(server: &Server) -> Browser {
        Browser {
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .build()
                .into(),
            base: server.url(""),
            cookies: Default::default(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, r: &ureq::http::Response<ureq::Body>) {
        for c in r.headers().get_all("set-cookie") {
            let pair = c.to_str().unwrap().split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
    }

    fn page(&mut self, mut r: ureq::http::Response<ureq::Body>) -> Page {
        self.keep(&r);
        Page {
            status: r.status().as_u16(),
            location: r
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned()),
            body: r.body_mut().read_to_string().unwrap(),
        }
    }

    fn get(&mut self, path: &str) -> Page {
        let r = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Cookie", self.cookie_header())
            .call()
            .unwrap();
        self.page(r)
    }

    fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let r = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Cookie", self.cookie_header())
            .send_form(form.iter().copied())
            .unwrap();
        self.page(r)
    }
}

/// The value of the first hidden `csrf` field of a page.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

/// A world with its daemon and proxy, and a busybox app (uncommitted) whose test
/// step prints `started`, then waits for `flag`; it deploys to dev on `port` and,
/// after a manual approval, to prod on `prod`.
struct GatedApp {
    w: World,
    repo: PathBuf,
    flag: PathBuf,
    port: u16,
    prod: u16,
}

fn gated_app() -> GatedApp {
    let mut w = World::new();
    w.start_proxy();
    w.start_daemon();
    let port = util::free_port();
    let prod = util::free_port();
    let flag = w.env.path("flag");
    let test = format!(
        "echo started; while [ ! -e {} ]; do sleep 0.2; done; echo flagged",
        flag.display()
    );
    let repo = busybox_repo(&w, port, &test, "");
    let yml = repo.join("hoist.yml");
    let text = std::fs::read_to_string(&yml).unwrap();
    std::fs::write(
        &yml,
        format!(
            "{text}\x20 - name: prod\n\x20   approval: manual\n\x20   service:\n\x20     stop_timeout: 2s\n\x20     listener: {{addr: 127.0.0.1:{prod}}}\n"
        ),
    )
    .unwrap();
    GatedApp {
        w,
        repo,
        flag,
        port,
        prod,
    }
}

#[test]
fn the_dashboard_logs_in_with_a_token_and_steers_a_run_through_csrf_checked_forms() {
    let GatedApp {
        w,
        repo,
        flag,
        port,
        prod,
    } = gated_app();
    let yml = repo.join("hoist.yml");
    // Tasks that say something, for their environment's page to show.
    let dockerfile = repo.join("Dockerfile");
    let text = std::fs::read_to_string(&dockerfile).unwrap();
    std::fs::write(
        &dockerfile,
        text.replace(
            "\"sh\", \"-c\", \"trap",
            "\"sh\", \"-c\", \"echo serving the site; trap",
        ),
    )
    .unwrap();
    // The image-config rules too: the scan then has findings to show.
    let text = std::fs::read_to_string(&yml).unwrap();
    std::fs::write(
        &yml,
        text.replace("scanners: [secret]", "scanners: [secret, misconfig]"),
    )
    .unwrap();
    commit_all(&repo, "first");
    let server = Server::start(&w, &repo, None);
    let mut b = Browser::new(&server);

    // Without a session: pages send to the login page, the API answers 401.
    let p = b.get("/runs");
    assert_eq!(p.status, 303);
    assert_eq!(p.location.as_deref(), Some("/login?next=/runs"));
    let api = b.get("/api/v1/runs");
    assert_eq!(api.status, 401);

    // Behind a TLS proxy the cookies are `Secure`; over plain HTTP they cannot be.
    let behind_tls = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
        .get(server.url("/login"))
        .header("X-Forwarded-Proto", "https")
        .call()
        .unwrap();
    let set = behind_tls
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        set.ends_with("; Secure") && set.contains("HttpOnly"),
        "{set}"
    );
    let plain = ureq::get(server.url("/login")).call().unwrap();
    let set = plain.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(!set.contains("Secure") && set.contains("HttpOnly"), "{set}");

    // The login form: a wrong token, a missing CSRF token, then the right one.
    let login = b.get("/login?next=/runs");
    assert_eq!(login.status, 200);
    assert!(
        login.body.contains("<label for=\"token\">"),
        "{}",
        login.body
    );
    let csrf = csrf_of(&login.body);
    let wrong = b.post(
        "/login",
        &[
            ("token", "hoist_nottoken"),
            ("csrf", &csrf),
            ("next", "/runs"),
        ],
    );
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.body.contains("not a valid API token"),
        "{}",
        wrong.body
    );
    let csrf = csrf_of(&wrong.body);
    let forged = b.post("/login", &[("token", &server.token), ("next", "/runs")]);
    assert_eq!(forged.status, 403, "a login form without its CSRF token");
    let csrf_ok = csrf_of(&forged.body);
    assert_ne!(csrf, csrf_ok, "each form gets a fresh token");
    let ok = b.post(
        "/login",
        &[
            ("token", &server.token),
            ("csrf", &csrf_ok),
            ("next", "/runs"),
        ],
    );
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.location.as_deref(), Some("/runs"));
    assert!(b.cookies.contains_key("hoist_session"));
    // The session cookie is no API token.
    assert_eq!(b.get("/api/v1/runs").status, 401);

    // A run, shown in the list and on its page, its log arriving live.
    let (_, answer) = server.post(
        "/api/v1/runs",
        &serde_json::json!({"repo": "hello", "branch": "main"}),
    );
    let id = answer["run"].as_i64().unwrap();
    server.wait_run(&w, id, "the test stage runs", |r| {
        stage_status(r, "test") == Some("running")
    });
    let list = b.get("/runs");
    assert_eq!(list.status, 200);
    assert!(
        list.body.contains(&format!("href=\"/runs/{id}\"")),
        "{}",
        list.body
    );
    let filtered = b.get("/runs?status=succeeded");
    assert!(!filtered.body.contains(&format!("href=\"/runs/{id}\"")));
    let page = b.get(&format!("/runs/{id}"));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<main id=\"main\" role=\"main\">"));
    assert!(page.body.contains("aria-label=\"Stage graph\""));
    let mut events = b
        .agent
        .get(format!("{}/runs/{id}/events", b.base))
        .header("Cookie", b.cookie_header())
        .call()
        .unwrap();
    assert_eq!(
        events.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut seen = String::new();
    {
        use std::io::Read;
        let mut reader = events.body_mut().as_reader();
        let mut buf = [0u8; 4096];
        while !(seen.contains("event: log") && seen.contains("started")) {
            let n = reader.read(&mut buf).unwrap();
            assert!(n > 0, "the stream ended early: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
    assert!(seen.contains("event: stage"), "{seen}");
    drop(events);

    // A form posted without the session's CSRF token changes nothing.
    let csrf = csrf_of(&page.body);
    let refused = b.post(&format!("/runs/{id}/cancel"), &[]);
    assert_eq!(refused.status, 403);
    let refused = b.post(&format!("/runs/{id}/cancel"), &[("csrf", "0000")]);
    assert_eq!(refused.status, 403);
    assert_eq!(
        server.get(&format!("/api/v1/runs/{id}")).1["status"],
        "running"
    );

    // Cancel, then retry, from the page.
    let done = b.post(&format!("/runs/{id}/cancel"), &[("csrf", &csrf)]);
    assert_eq!(done.status, 303);
    server.wait_run(&w, id, "it is cancelled", |r| r["status"] == "cancelled");
    std::fs::write(&flag, "").unwrap();
    let page = b.get(&format!("/runs/{id}"));
    assert!(
        page.body.contains("Retry from the first stage"),
        "{}",
        page.body
    );
    assert_eq!(
        b.post(&format!("/runs/{id}/retry"), &[("csrf", &csrf)])
            .status,
        303
    );

    // It deploys dev and waits at prod's gate; the page's approve button promotes it.
    let run = server.wait_run(&w, id, "it waits for approval", |r| {
        stage_status(r, "approval:prod") == Some("waiting") || r["status"] == "failed"
    });
    assert_eq!(
        stage_status(&run, "approval:prod"),
        Some("waiting"),
        "{run:#}"
    );
    let page = b.get(&format!("/runs/{id}"));
    assert!(page.body.contains("Approve prod"), "{}", page.body);
    let approved = b.post(
        &format!("/runs/{id}/approve"),
        &[("csrf", &csrf), ("environment", "prod")],
    );
    assert_eq!(approved.status, 303);
    let run = server.wait_run(&w, id, "it ends", |r| {
        r["status"] == "succeeded" || r["status"] == "failed"
    });
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let prod_addr: SocketAddr = format!("127.0.0.1:{prod}").parse().unwrap();
    assert_eq!(body(prod_addr).as_deref(), Some("resumed"));
    let approval = b.get(&format!("/runs/{id}"));
    assert!(
        approval.body.contains("dashboard"),
        "the decision names the dashboard"
    );
    assert!(
        approval.body.contains("data-final=\"true\""),
        "an ended run's page does not follow it live"
    );

    // The overview shows both environments on the run's image.
    let overview = b.get("/");
    assert_eq!(overview.status, 200);
    let image = run["image"].as_str().unwrap();
    for env in ["web-dev", "web-prod"] {
        let row = overview
            .body
            .split(&format!("<tr data-service=\"{env}\">"))
            .nth(1)
            .unwrap_or_else(|| panic!("no row of {env}: {}", overview.body));
        let row = row.split("</tr>").next().unwrap();
        assert!(row.contains(image), "{env}: {row}");
    }

    // Images: the run's image with its scan summary, the report, and the SBOM.
    let digest = image.split_once('@').unwrap().1;
    let images = b.get("/images");
    assert_eq!(images.status, 200, "{}", images.body);
    let row = images
        .body
        .split(&format!("<tr data-digest=\"{digest}\">"))
        .nth(1)
        .unwrap_or_else(|| panic!("no row of {digest}: {}", images.body))
        .split("</tr>")
        .next()
        .unwrap()
        .to_owned();
    assert!(row.contains(&format!("href=\"/runs/{id}/scan\"")), "{row}");
    assert!(row.contains(&format!("href=\"/runs/{id}/sbom\"")), "{row}");
    // The image config has no HEALTHCHECK: one low finding, which the filters hide.
    assert!(row.contains("1 low"), "{row}");
    let scan = b.get(&format!("/runs/{id}/scan"));
    assert_eq!(scan.status, 200);
    assert!(scan.body.contains("1 of 1 findings shown"), "{}", scan.body);
    assert!(
        scan.body.contains("<code>HL-DF-005</code>"),
        "{}",
        scan.body
    );
    assert!(
        scan.body.contains("<code>(image config)</code>"),
        "{}",
        scan.body
    );
    for filter in ["severity=high", "kind=secret"] {
        let none = b.get(&format!("/runs/{id}/scan?{filter}"));
        assert!(
            none.body.contains("0 of 1 findings shown"),
            "{filter}: {}",
            none.body
        );
        assert!(!none.body.contains("HL-DF-005"), "{filter}");
    }
    let sbom = b.get(&format!("/runs/{id}/sbom"));
    assert_eq!(sbom.status, 200);
    let doc: Value = serde_json::from_str(&sbom.body).unwrap();
    assert_eq!(doc["bomFormat"], "CycloneDX");

    // An environment's page: its deployments (the serving one marked), tasks, events.
    let env = b.get("/environments/web-prod");
    assert_eq!(env.status, 200);
    assert!(env.body.contains("(serving)"), "{}", env.body);
    assert!(env.body.contains(image), "{}", env.body);
    assert!(
        env.body.contains("<strong>task-healthy</strong>"),
        "{}",
        env.body
    );
    assert!(env.body.contains("<td>rolling, "), "{}", env.body);
    assert!(
        !env.body.contains(">None<"),
        "no Python-style None: {}",
        env.body
    );
    assert!(
        env.body.contains("serving the site"),
        "the task's output: {}",
        env.body
    );
    assert_eq!(b.get("/environments/nothing-here").status, 404);
    // Its traffic as the proxy counted it: prod answered the test's request with 2xx.
    let traffic: Value =
        serde_json::from_str(&b.get("/environments/web-prod/traffic").body).unwrap();
    assert_eq!(traffic["service"], "web-prod");
    let ok: u64 = traffic["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["by_class"][1].as_u64().unwrap())
        .sum();
    assert!(ok >= 1, "{traffic}");
    // And its latency histogram: every request falls in the +Inf bucket.
    let buckets = traffic["latency"].as_array().unwrap();
    let last = buckets.last().unwrap_or_else(|| panic!("{traffic}"));
    assert!(last[0].is_null(), "+Inf last: {traffic}");
    assert!(last[1].as_u64().unwrap() >= ok, "{traffic}");
    assert_eq!(traffic["tasks"]["live"], 1, "{traffic}");

    // A second version reaches dev, its prod gate is rejected on the page, and dev
    // is rolled back from its environment's page.
    std::fs::write(repo.join("www/index.html"), "second\n").unwrap();
    commit_all(&repo, "second");
    let (_, answer) = server.post(
        "/api/v1/runs",
        &serde_json::json!({"repo": "hello", "branch": "main"}),
    );
    let second = answer["run"].as_i64().unwrap();
    let run2 = server.wait_run(&w, second, "it waits at prod's gate", |r| {
        stage_status(r, "approval:prod") == Some("waiting") || r["status"] == "failed"
    });
    assert_eq!(
        stage_status(&run2, "approval:prod"),
        Some("waiting"),
        "{run2:#}"
    );
    let dev: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert_eq!(body(dev).as_deref(), Some("second"));
    let rejected = b.post(
        &format!("/runs/{second}/reject"),
        &[("csrf", &csrf), ("environment", "prod")],
    );
    assert_eq!(rejected.status, 303);
    let run2 = server.wait_run(&w, second, "it stops", |r| r["status"] != "running");
    assert_eq!(run2["status"], "failed", "{run2:#}");
    let page = b.get("/environments/web-dev");
    assert!(
        page.body
            .contains("Roll back to the previous good deployment"),
        "{}",
        page.body
    );
    assert_eq!(b.post("/environments/web-dev/rollback", &[]).status, 403);
    assert_eq!(
        body(dev).as_deref(),
        Some("second"),
        "a refused form changes nothing"
    );
    let rolled = b.post("/environments/web-dev/rollback", &[("csrf", &csrf)]);
    assert_eq!(rolled.status, 303, "{}", rolled.body);
    util::world::eventually("dev serves the first version again", || {
        body(dev).as_deref() == Some("resumed")
    });
    let page = b.get("/environments/web-dev");
    assert!(
        page.body.contains("in the dashboard)"),
        "the request is recorded: {}",
        page.body
    );

    // Logged out, the session is gone.
    assert_eq!(b.post("/logout", &[("csrf", &csrf)]).status, 303);
    assert_eq!(b.get("/runs").status, 303);

    // A revoked token ends its sessions at once.
    let login = b.get("/login?next=/runs");
    let again = b.post(
        "/login",
        &[
            ("token", &server.token),
            ("csrf", &csrf_of(&login.body)),
            ("next", "/runs"),
        ],
    );
    assert_eq!(again.status, 303, "{}", again.body);
    assert_eq!(b.get("/runs").status, 200);
    w.env.ok(&["server", "token", "revoke", "ci"]);
    let after = b.get("/runs");
    assert_eq!(
        after.status, 303,
        "a revoked token's session: {}",
        after.body
    );
    assert_eq!(after.location.as_deref(), Some("/login?next=/runs"));
}

/// The dashboard in a real browser: Debian's chromium driven by playwright-core
/// (`tests/browser/dashboard.mjs`; `.ci/run` installs both) logs in, opens the run,
/// sees its log lines arrive, approves the prod gate, and sees prod serve the
/// version. Screenshots of every page go to `test-output/dashboard/`.
#[test]
fn the_dashboard_in_chromium_follows_a_run_and_approves_prod() {
    use std::io::{BufRead, BufReader, Write};
    let browser_dir = util::root().join("crates/hoist/tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: npm ci --prefix {}",
        browser_dir.display()
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is not installed (apt-get install chromium)"
    );
    let GatedApp {
        w,
        repo,
        flag,
        prod,
        ..
    } = gated_app();
    commit_all(&repo, "first");
    let server = Server::start(&w, &repo, None);
    let (_, answer) = server.post(
        "/api/v1/runs",
        &serde_json::json!({"repo": "hello", "branch": "main"}),
    );
    let id = answer["run"].as_i64().unwrap();
    server.wait_run(&w, id, "the test stage runs", |r| {
        stage_status(r, "test") == Some("running")
    });

    let out = util::root().join("test-output/dashboard");
    let _ = std::fs::remove_dir_all(&out);
    let mut node = std::process::Command::new("node")
        .arg(browser_dir.join("dashboard.mjs"))
        .env("HOIST_URL", server.url(""))
        .env("HOIST_TOKEN", &server.token)
        .env("HOIST_RUN", id.to_string())
        .env("PROD_URL", format!("http://127.0.0.1:{prod}/"))
        .env("PROD_BODY", "resumed")
        .env("OUT", &out)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = node.stdin.take().unwrap();
    let mut said = Vec::new();
    for line in BufReader::new(node.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line == "page open" {
            // Only now may the test step finish: its last line must arrive live.
            std::fs::write(&flag, "").unwrap();
            writeln!(stdin, "go").unwrap();
        }
        said.push(line);
    }
    let status = node.wait().unwrap();
    assert!(
        status.success(),
        "the browser script failed ({status}) after: {said:?}\nserver log:\n{}",
        w.log("server.log")
    );
    assert_eq!(
        said,
        [
            "page open",
            "log arrived",
            "run succeeded",
            "overview shows prod on it",
            "prod serves it"
        ]
    );
    let run = server.get(&format!("/api/v1/runs/{id}")).1;
    assert_eq!(run["status"], "succeeded");
    let approval = run["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "approval:prod")
        .unwrap();
    assert!(
        approval["message"]
            .as_str()
            .unwrap()
            .contains("(dashboard)"),
        "{approval}"
    );
    for page in [
        "login",
        "runs",
        "run",
        "gate",
        "overview-before",
        "succeeded",
        "overview",
        "environment",
        "images",
        "scan",
        "prod",
    ] {
        let png = std::fs::read(out.join(format!("{page}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{page}.png");
    }
}
