//! examples/flask-app end to end: its base.sh makes the Debian python3-flask base
//! image (debootstrap, cached), then `hoist up` on a git repository holding the
//! example runs its tests, builds it (the Dockerfile's RUN runs the unit tests with
//! Debian's Flask), scans it and deploys it to dev behind the real proxy; an
//! uncommitted change of APP_VERSION in hoist.yml rolls out on the next `hoist up`.
//!
//! Root, loopback only, and `debootstrap` (apt-get install -y debootstrap) with the
//! Debian mirror reachable the first time; the root file system is cached under
//! `/var/cache/hoist-test/debootstrap` (or `$HOIST_TEST_CACHE`), as the inventory
//! tests cache theirs.
#![allow(clippy::unwrap_used)]

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use hoist_runtime::logs::read_logs;
use hoist_runtime::{
    Backend, ContainerSpec, ExitStatus, Limits, Network, Rootfs, TaskOptions, TaskState,
};
use util::world::{assert_ok, eventually, get, run_stages, World};

const GREETING: &str = "Hello from Flask on hoist!";

/// `examples/flask-app/base.sh` with the hoist under test and the world's store.
fn base_image(w: &World) {
    let out = Command::new("bash")
        .arg(util::root().join("examples/flask-app/base.sh"))
        .env("HOIST", env!("CARGO_BIN_EXE_hoist"))
        .env("HOIST_HOME", w.env.home())
        .output()
        .unwrap();
    util::assert_success(&out, "examples/flask-app/base.sh");
    let image = w.env.inspect("localhost/debian-python3-flask:bookworm");
    assert!(image["Digest"].as_str().unwrap().starts_with("sha256:"));
}

/// A world with no images (the example brings its own base), a proxy and a daemon.
fn world() -> World {
    let mut w = World {
        env: util::Env::new(),
        proxy: None,
        daemon: None,
        port: util::free_port(),
    };
    base_image(&w);
    w.start_proxy();
    w.start_daemon();
    w
}

/// A git repository holding examples/flask-app's files, its listeners moved to
/// free ports (dev to the world's), committed on `main`.
fn repo(w: &World) -> PathBuf {
    let src = util::root().join("examples/flask-app");
    let dir = w.env.path("flask-app");
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
    }
    let yml = std::fs::read_to_string(dir.join("hoist.yml")).unwrap();
    for addr in ["127.0.0.1:5080", "127.0.0.1:5081"] {
        assert!(
            yml.contains(addr),
            "hoist.yml has no listener {addr}:\n{yml}"
        );
    }
    let yml = yml
        .replace("127.0.0.1:5080", &format!("127.0.0.1:{}", w.port))
        .replace(
            "127.0.0.1:5081",
            &format!("127.0.0.1:{}", util::free_port()),
        );
    std::fs::write(dir.join("hoist.yml"), yml).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(
            "git init -q -b main && git config user.email dev@example.com && \
             git config user.name Dev && git add -A && git commit -q -m 'flask-app'",
        )
        .current_dir(&dir)
        .output()
        .unwrap();
    util::assert_success(&out, "git commit");
    dir
}

fn up(w: &World, dir: &Path) -> std::process::Output {
    w.env
        .hoist()
        .args(["up", dir.to_str().unwrap()])
        .output()
        .unwrap()
}

/// The JSON the proxy answers at `/`, if it answers 200 with JSON.
fn index(w: &World) -> Option<serde_json::Value> {
    match get(w.addr(), "/") {
        Some((200, body)) => serde_json::from_str(&body).ok(),
        _ => None,
    }
}

#[test]
fn hoist_up_deploys_the_flask_example_and_a_new_app_version_rolls_out() {
    let w = world();
    let dir = repo(&w);

    let out = up(&w, &dir);
    assert_ok(&out, "hoist up examples/flask-app", &w);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("dev: http://127.0.0.1:{}/", w.port)),
        "{stdout}"
    );

    // Through the proxy: the greeting and dev's version, and the health check.
    let answer = index(&w).unwrap_or_else(|| panic!("no JSON at /: {:?}", get(w.addr(), "/")));
    assert_eq!(answer["message"], GREETING);
    assert_eq!(answer["version"], "1.0.0-dev");
    assert_eq!(get(w.addr(), "/health"), Some((200, "ok\n".to_owned())));
    assert_eq!(get(w.addr(), "/nope").map(|(s, _)| s), Some(404));

    // The run went through every stage but prod, which waits for an approval.
    let all = w.runs();
    assert_eq!(all.len(), 1);
    let run = &all[0];
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["commit"]["dirty"], false);
    assert_eq!(
        run_stages(run),
        [
            "source",
            "test",
            "build",
            "scan",
            "push",
            "deploy:dev",
            "verify:dev"
        ]
        .map(|s| (s.to_owned(), "succeeded".to_owned()))
    );
    // The host's test step ran the unit tests (skipped where the host has no Flask).
    let logs = w.env.ok(&["runs", "logs", "1", "--stage", "test"]);
    assert!(logs.contains("Ran 4 tests"), "{logs}");

    // The image: the Dockerfile's user, port and health check.
    let sha = run["commit"]["sha"].as_str().unwrap();
    let image = w.env.inspect(&format!("flask-app:{sha}"));
    let config = &image["Config"];
    assert_eq!(config["User"], "65532:65532", "{image:#}");
    assert!(
        config["ExposedPorts"].get("5000/tcp").is_some(),
        "{image:#}"
    );
    assert!(config["Healthcheck"]["Test"]
        .to_string()
        .contains("/health"));
    let services = w.env.ok(&["--json", "service", "ls"]);
    assert!(services.contains("\"flask-app-dev\""), "{services}");

    // A new version in hoist.yml, not committed: the next run deploys it.
    let yml = std::fs::read_to_string(dir.join("hoist.yml")).unwrap();
    assert!(yml.contains("APP_VERSION: \"1.0.0-dev\""), "{yml}");
    std::fs::write(
        dir.join("hoist.yml"),
        yml.replace("APP_VERSION: \"1.0.0-dev\"", "APP_VERSION: \"1.1.0-dev\""),
    )
    .unwrap();
    let out = up(&w, &dir);
    assert_ok(&out, "second hoist up", &w);
    eventually("the proxy answers with version 1.1.0-dev", || {
        index(&w).is_some_and(|a| a["version"] == "1.1.0-dev")
    });
    let answer = index(&w).unwrap();
    assert_eq!(answer["message"], GREETING);

    let all = w.runs();
    assert_eq!(all.len(), 2);
    let second = all.iter().find(|r| r["id"] == 2).unwrap();
    assert_eq!(second["status"], "succeeded");
    assert_eq!(second["commit"]["dirty"], true);
    assert_eq!(second["commit"]["sha"], sha);
}

/// `examples/flask-app/base.sh --rootfs`: the cached root file system's path.
fn base_rootfs() -> PathBuf {
    let out = Command::new("bash")
        .arg(util::root().join("examples/flask-app/base.sh"))
        .arg("--rootfs")
        .output()
        .unwrap();
    util::assert_success(&out, "examples/flask-app/base.sh --rootfs");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A GET inside a task's network namespace (nsenter and the host's busybox).
fn fetch_inside(netns: &Path, url: &str) -> Option<String> {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .args(["busybox", "wget", "-q", "-O", "-", url])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The app is its container's PID 1, which the kernel shields from signals it has
/// no handler for: its SIGTERM handler makes a stop end with exit code 0, where
/// without it the stop would end in SIGKILL at the stop timeout.
#[test]
fn app_py_as_pid_1_serves_and_exits_0_on_sigterm() {
    let rootfs = base_rootfs();
    let tmp = tempfile::tempdir().unwrap();
    let (upper, work) = (tmp.path().join("upper"), tmp.path().join("work"));
    std::fs::create_dir_all(upper.join("app")).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    std::fs::copy(
        util::root().join("examples/flask-app/app.py"),
        upper.join("app/app.py"),
    )
    .unwrap();
    let rt = util::task_runtime(&tmp.path().join("state"), Backend::Embedded);
    let spec = ContainerSpec {
        rootfs: Rootfs::Overlay {
            lowers: vec![rootfs],
            upper,
            work,
        },
        args: vec!["/usr/bin/python3".into(), "app.py".into()],
        env: vec![
            "PATH=/usr/local/bin:/usr/bin:/bin".into(),
            "PYTHONDONTWRITEBYTECODE=1".into(),
            "APP_VERSION=pid1".into(),
        ],
        cwd: "/app".into(),
        user: "65532:65532".into(),
        hostname: "flask".into(),
        network: Network::None,
        mounts: vec![],
        limits: Limits::default(),
        readonly_rootfs: false,
    };
    // Long enough that a stop ending in SIGKILL cannot be mistaken for a clean exit.
    let options = TaskOptions {
        stop_timeout: std::time::Duration::from_secs(60),
        ..TaskOptions::default()
    };
    let info = rt.start(&spec, &options).unwrap();
    assert_eq!(info.state, TaskState::Running);
    let netns = info.netns.clone().unwrap();
    let mut answer = None;
    eventually("the app answers in its network namespace", || {
        answer = fetch_inside(&netns, "http://127.0.0.1:5000/");
        answer.is_some()
    });
    let answer: serde_json::Value = serde_json::from_str(&answer.unwrap()).unwrap();
    assert_eq!(answer["message"], GREETING);
    assert_eq!(answer["version"], "pid1");

    let stopped = rt.stop(&info.id).unwrap();
    let logs = read_logs(&info.log_dir).unwrap();
    assert_eq!(
        stopped.state,
        TaskState::Exited(ExitStatus::Code(0)),
        "{logs:?}"
    );
    assert!(
        logs.iter().any(|e| e.log.contains("signal 15: stopping")),
        "{logs:?}"
    );
    rt.remove(&info.id).unwrap();
}

#[test]
fn hoist_up_on_the_buildspec_alone_deploys_the_image_its_imagedefinitions_name() {
    let w = world();
    let dir = repo(&w);
    // A CodeBuild repository: no hoist.yml, the buildspec is the build.
    let out = Command::new("sh")
        .arg("-c")
        .arg("git rm -q hoist.yml && git commit -q -m 'CodeBuild only'")
        .current_dir(&dir)
        .output()
        .unwrap();
    util::assert_success(&out, "git rm hoist.yml");
    let listen = format!("127.0.0.1:{}", w.port);
    let out = w
        .env
        .hoist()
        .args(["up", dir.to_str().unwrap(), "--listen", &listen])
        .output()
        .unwrap();
    assert_ok(&out, "hoist up (buildspec.yml)", &w);
    let answer = index(&w).unwrap_or_else(|| panic!("no JSON at /: {:?}", get(w.addr(), "/")));
    assert_eq!(answer["message"], GREETING);

    let run = &w.runs()[0];
    assert_eq!(
        run_stages(run),
        [
            "source",
            "buildspec",
            "build",
            "scan",
            "push",
            "deploy:dev",
            "verify:dev"
        ]
        .map(|s| (s.to_owned(), "succeeded".to_owned()))
    );
    // The buildspec's phases ran the unit tests; its imagedefinitions.json named
    // the image, built from the Dockerfile under that name and deployed.
    let logs = w.env.ok(&["runs", "logs", "1", "--stage", "buildspec"]);
    assert!(
        logs.contains("Phase complete: POST_BUILD State: SUCCEEDED"),
        "{logs}"
    );
    let sha = run["commit"]["sha"].as_str().unwrap();
    let digest = w.env.inspect(&format!("flask-app:{sha}"))["Digest"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(run["image"].as_str().unwrap().ends_with(&digest), "{run:#}");
}
