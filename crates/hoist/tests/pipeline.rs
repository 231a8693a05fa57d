//! `hoist up` end to end: a git repository holding a busybox httpd app and its
//! hoist.yml; the run copies the working tree, runs the tests on the host, builds,
//! scans (the secrets gate), deploys to the first environment through the real
//! daemon and proxy, and records every stage. Root, loopback only.
#![allow(clippy::unwrap_used)]

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use util::world::{assert_ok, body, run_stages, World};

/// A git repository with an app serving `body` and a hoist.yml whose dev
/// environment listens on the world's port; `test` is its test command.
fn repo(w: &World, body: &str, test: &str) -> PathBuf {
    let dir = w.env.path("app");
    util::busybox_site(&dir, body);
    std::fs::write(
        dir.join("hoist.yml"),
        format!(
            "app: web\n\
             test:\n  - name: unit\n    run: {test}\n\
             scan:\n  fail_on: high\n  scanners: [secret]\n\
             environments:\n\
             \x20 - name: dev\n\
             \x20   service:\n\
             \x20     count: 2\n\
             \x20     stop_timeout: 2s\n\
             \x20     health_check: {{path: /healthz, interval: 1s, timeout: 500ms}}\n\
             \x20     listener: {{addr: 127.0.0.1:{port}}}\n\
             \x20   smoke: busybox wget -q -O - \"$HOIST_URL\" | grep -q .\n\
             \x20 - name: prod\n\
             \x20   approval: manual\n\
             \x20   service:\n\
             \x20     listener: {{addr: 127.0.0.1:{prod}}}\n",
            // A JSON string is a YAML double-quoted scalar.
            test = serde_json::to_string(test).unwrap(),
            port = w.port,
            prod = util::free_port()
        ),
    )
    .unwrap();
    util::git_init(&dir);
    util::sh(
        &dir,
        "printf 'build-output/\\n' > .gitignore && git add -A && git commit -q -m 'first'",
    );
    dir
}

fn up(w: &World, dir: &Path) -> std::process::Output {
    w.env
        .hoist()
        .args(["up", dir.to_str().unwrap()])
        .output()
        .unwrap()
}

#[test]
fn hoist_up_tests_builds_scans_and_deploys_the_working_tree_to_the_first_environment() {
    let mut w = World::new();
    w.start_proxy();
    w.start_daemon();
    // The test writes into the workspace; the repository itself stays clean.
    let dir = repo(
        &w,
        "version 1",
        "test -f www/index.html && echo unit tests pass",
    );

    let out = up(&w, &dir);
    assert_ok(&out, "hoist up", &w);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let url = format!("http://127.0.0.1:{}/", w.port);
    assert!(stdout.contains(&format!("dev: {url}")), "{stdout}");
    assert_eq!(body(w.addr()).as_deref(), Some("version 1"));

    let all = w.runs();
    assert_eq!(all.len(), 1);
    let run = &all[0];
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["commit"]["dirty"], false);
    let sha = run["commit"]["sha"].as_str().unwrap();
    assert_eq!(sha.len(), 40);
    assert_eq!(run["commit"]["branch"], "main");
    // Only the first environment: prod waits for the server's approvals.
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
    // The image is tagged with the commit and the branch, and deployed by digest.
    let image = w.env.inspect(&format!("web:{sha}"));
    let digest = image["Digest"].as_str().unwrap();
    assert_eq!(w.env.inspect("web:main")["Digest"], digest);
    assert!(run["image"].as_str().unwrap().ends_with(digest));
    // Pushed to hoist's registry (started on demand), and deployed from there by
    // digest, as ECS deploys from ECR.
    let registry = std::fs::read_to_string(w.env.home().join("registry/serve.addr")).unwrap();
    let pushed = format!("{}/web:{sha}", registry.trim());
    let other = util::Env::new();
    other.ok(&["pull", &pushed]);
    assert_eq!(other.inspect(&pushed)["Digest"], digest);
    let services: serde_json::Value =
        serde_json::from_str(&w.env.ok(&["--json", "service", "ls"])).unwrap();
    assert_eq!(services[0]["name"], "web-dev");
    assert_eq!(
        services[0]["image"],
        format!("{}/web@{digest}", registry.trim())
    );
    // The stage logs hold what the steps printed.
    let logs = w.env.ok(&["runs", "logs", "1", "--stage", "test"]);
    assert!(logs.contains("unit tests pass"), "{logs}");
    // CodePipeline's files name the image.
    let artifacts = w.env.home().join("pipeline/runs/1/artifacts");
    let defs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(artifacts.join("imagedefinitions.json")).unwrap())
            .unwrap();
    assert_eq!(defs[0]["name"], "web");
    assert_eq!(defs[0]["imageUri"], format!("web:{sha}"));
    let detail: serde_json::Value =
        serde_json::from_slice(&std::fs::read(artifacts.join("imageDetail.json")).unwrap())
            .unwrap();
    assert_eq!(detail["ImageURI"], format!("web@{digest}"));

    // Uncommitted changes are part of the next run, tagged as dirty, and roll out.
    std::fs::write(dir.join("www/index.html"), "version 2\n").unwrap();
    let out = up(&w, &dir);
    assert_ok(&out, "second hoist up", &w);
    assert_eq!(body(w.addr()).as_deref(), Some("version 2"));
    let all = w.runs();
    assert_eq!(all[0]["commit"]["dirty"], true);
    assert_eq!(all[0]["commit"]["sha"], sha);
    let tag = format!("web:{}-dirty.run2", &sha[..12]);
    w.env.inspect(&tag);
}

#[test]
fn a_failing_test_stops_the_run_before_the_build_and_deploys_nothing() {
    let mut w = World::new();
    w.start_proxy();
    w.start_daemon();
    let dir = repo(
        &w,
        "never served",
        "echo 'assertion failed: 1 == 2' && exit 1",
    );
    // A webhook hears about the failed run.
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/ci", hook.local_addr().unwrap());
    let mut yml = std::fs::read_to_string(dir.join("hoist.yml")).unwrap();
    yml.push_str(&format!("notifications:\n  webhooks:\n    - url: {url}\n"));
    std::fs::write(dir.join("hoist.yml"), yml).unwrap();
    let received = std::thread::spawn(move || {
        use std::io::{BufRead, Read, Write};
        let (mut s, _) = hook.accept().unwrap();
        let mut r = std::io::BufReader::new(s.try_clone().unwrap());
        let (mut head, mut length) = (String::new(), 0);
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            head.push_str(&line);
        }
        let mut body = vec![0; length];
        r.read_exact(&mut body).unwrap();
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        (
            head,
            serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
        )
    });

    let out = up(&w, &dir);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("test failed"), "{stderr}");
    assert!(stderr.contains("exited with status 1"), "{stderr}");

    let run = &w.runs()[0];
    assert_eq!(run["status"], "failed");
    assert_eq!(
        run_stages(run),
        [
            ("source", "succeeded"),
            ("test", "failed"),
            ("build", "skipped"),
            ("scan", "skipped"),
            ("push", "skipped"),
            ("deploy:dev", "skipped"),
            ("verify:dev", "skipped"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let logs = w.env.ok(&["runs", "logs", "1"]);
    assert!(logs.contains("assertion failed: 1 == 2"), "{logs}");
    let (head, event) = received.join().unwrap();
    assert!(
        head.to_ascii_lowercase().contains("x-hoist-event: run"),
        "{head}"
    );
    assert_eq!(event["event"], "run");
    assert_eq!(event["id"], 1);
    assert_eq!(event["status"], "failed");
    assert_eq!(event["stages"][1]["status"], "failed");
    assert_eq!(w.env.ok(&["--json", "service", "ls"]).trim(), "[]");
    let images = w.env.ok(&["--json", "image", "ls"]);
    assert!(!images.contains("web:"), "{images}");
}

#[test]
fn a_secret_in_the_image_fails_the_scan_gate_and_deploys_nothing() {
    let mut w = World::new();
    w.start_proxy();
    w.start_daemon();
    let dir = repo(&w, "leaky", "true");
    // An AWS access key ID in a served file: a critical secret. Assembled at run
    // time so this file holds nothing a secret scanner flags.
    let key = format!("{}{}", "AK", "IAZ7Q3XK4M2P5RT6WY");
    std::fs::write(
        dir.join("www/config.txt"),
        format!("aws_access_key_id = {key}\n"),
    )
    .unwrap();

    let out = up(&w, &dir);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("scan failed: gate"), "{stderr}");
    let run = &w.runs()[0];
    let got = run_stages(run);
    assert_eq!(got[3], ("scan".to_owned(), "failed".to_owned()));
    assert_eq!(got[4], ("push".to_owned(), "skipped".to_owned()));
    assert_eq!(got[5], ("deploy:dev".to_owned(), "skipped".to_owned()));
    assert_eq!(w.env.ok(&["--json", "service", "ls"]).trim(), "[]");
    assert!(w
        .env
        .home()
        .join("pipeline/runs/1/artifacts/scan.json")
        .is_file());
}

#[test]
fn a_bad_hoist_yml_is_refused_with_its_line_and_field() {
    let w = World::new();
    let dir = w.env.path("bad");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("hoist.yml"),
        "app: web\nenvironments:\n  - name: dev\n    aproval: manual\n    service:\n      listener: {addr: 127.0.0.1:1}\n",
    )
    .unwrap();
    let out = w
        .env
        .hoist()
        .args(["up", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("hoist.yml:4:"), "{stderr}");
    assert!(stderr.contains("environments[0].aproval"), "{stderr}");
    assert!(stderr.contains("approval"), "{stderr}");
    // Nothing ran.
    assert!(!w.env.home().join("pipeline/runs.db").exists());
}

#[test]
fn hoist_init_writes_a_starter_from_the_repository_and_keeps_an_existing_one() {
    let env = util::Env::new();
    let dir = env.path("repo");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM busybox\nEXPOSE 9000\n").unwrap();
    std::fs::write(dir.join("Makefile"), "test:\n\ttrue\n").unwrap();
    env.ok(&["init", dir.to_str().unwrap()]);
    let text = std::fs::read_to_string(dir.join("hoist.yml")).unwrap();
    assert!(text.contains("make test"), "{text}");
    assert!(text.contains("9000"), "{text}");
    assert!(text.contains("approval: manual"), "{text}");

    std::fs::write(dir.join("hoist.yml"), "app: mine\n").unwrap();
    let err = env.fails(&["init", dir.to_str().unwrap()]);
    assert!(err.contains("--force"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join("hoist.yml")).unwrap(),
        "app: mine\n"
    );
}

#[test]
fn a_run_whose_process_was_killed_is_marked_failed_by_the_next_one() {
    let w = World::new();
    let pidfile = w.env.path("test.pid");
    let dir = repo(
        &w,
        "unused",
        &format!("echo $$ > {} && sleep 600", pidfile.display()),
    );
    let mut up = w
        .env
        .hoist()
        .args(["up", dir.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    util::world::eventually("the test step runs", || pidfile.exists());
    up.kill().unwrap();
    up.wait().unwrap();
    // The test step's shell is in a process group of its own: stop it too.
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = Command::new("kill")
        .args(["-9", "--", &format!("-{pid}")])
        .status();

    let run = &w.runs()[0];
    assert_eq!(run["status"], "running");
    assert_eq!(
        run_stages(run)[1],
        ("test".to_owned(), "running".to_owned())
    );

    // The next engine finds the run's owner gone.
    std::fs::write(
        dir.join("hoist.yml"),
        std::fs::read_to_string(dir.join("hoist.yml"))
            .unwrap()
            .replace("sleep 600", "exit 7"),
    )
    .unwrap();
    let out = w
        .env
        .hoist()
        .args(["up", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let all = w.runs();
    let first = all.iter().find(|r| r["id"] == 1).unwrap();
    assert_eq!(
        first["status"],
        "failed",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        run_stages(first)[1..3],
        [
            ("test".to_owned(), "failed".to_owned()),
            ("build".to_owned(), "skipped".to_owned())
        ]
    );
    assert!(first["error"]
        .as_str()
        .unwrap()
        .contains("stopped before it finished"));
}

#[test]
fn hoist_up_runs_the_hello_example_from_its_tests_to_a_served_version() {
    let mut w = World::new();
    w.start_proxy();
    w.start_daemon();
    // examples/hello/hoist.yml as README runs it, with the world's ports.
    let example = util::root().join("examples/hello");
    let text = std::fs::read_to_string(example.join("hoist.yml"))
        .unwrap()
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{}", w.port))
        .replace(
            "127.0.0.1:8081",
            &format!("127.0.0.1:{}", util::free_port()),
        );
    let file = w.env.path("hello-hoist.yml");
    std::fs::write(&file, text).unwrap();

    let out = w
        .env
        .hoist()
        .args([
            "up",
            example.to_str().unwrap(),
            "-f",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_ok(&out, "hoist up examples/hello", &w);
    let answer = body(w.addr()).unwrap();
    assert_eq!(util::world::hello_version(&answer), Some("1"), "{answer}");
    let run = &w.runs()[0];
    assert_eq!(run["status"], "succeeded");
    // The test stage ran hello's own unit tests, and built the binary the image holds.
    let logs = w.env.ok(&["runs", "logs", "1", "--stage", "test"]);
    assert!(logs.contains("test result: ok"), "{logs}");
    assert!(logs.contains("static"), "{logs}");
}

/// A CodeBuild repository: the busybox app with a buildspec.yml and no hoist.yml.
fn codebuild_repo(w: &World, build_phase: &str) -> PathBuf {
    let dir = repo(w, "built by codebuild", "true");
    std::fs::remove_file(dir.join("hoist.yml")).unwrap();
    std::fs::write(
        dir.join("buildspec.yml"),
        format!(
            "version: 0.2\n\
             env:\n  variables:\n    GREETING: hi\n  exported-variables: [BUILT_AT]\n\
             phases:\n\
             \x20 pre_build:\n    commands:\n      - test -f www/index.html\n      - cd www\n\
             \x20 build:\n    commands:\n      - {build_phase}\n      - export BUILT_AT=$(pwd)\n\
             \x20 post_build:\n    commands:\n      - cd .. && printf '[{{\"name\":\"app\",\"imageUri\":\"web-cb:%s\"}}]' \"$CODEBUILD_RESOLVED_SOURCE_VERSION\" > imagedefinitions.json\n\
             artifacts:\n  files: [imagedefinitions.json]\n"
        ),
    )
    .unwrap();
    util::sh(&dir, "git add -A && git commit -q -m 'codebuild'");
    dir
}

#[test]
fn a_buildspec_repository_builds_through_its_phases_and_deploys_the_image_it_names() {
    let mut w = World::new();
    w.start_proxy();
    w.start_daemon();
    let dir = codebuild_repo(&w, "echo \"$GREETING from $(pwd)\"");
    let listen = format!("127.0.0.1:{}", w.port);
    let out = w
        .env
        .hoist()
        .args(["up", dir.to_str().unwrap(), "--listen", &listen])
        .output()
        .unwrap();
    assert_ok(&out, "hoist up (buildspec)", &w);
    assert_eq!(body(w.addr()).as_deref(), Some("built by codebuild"));
    let run = &w.runs()[0];
    let sha = run["commit"]["sha"].as_str().unwrap();
    assert_eq!(
        run_stages(run)[1],
        ("buildspec".to_owned(), "succeeded".to_owned())
    );
    // The image is the one imagedefinitions.json names.
    let named = format!("web-cb:{sha}");
    let digest = w.env.inspect(&named)["Digest"].as_str().unwrap().to_owned();
    assert!(run["image"].as_str().unwrap().ends_with(&digest));
    let logs = w.env.ok(&["runs", "logs", "1", "--stage", "buildspec"]);
    assert!(logs.contains("hi from"), "{logs}");
    assert!(logs.contains("exported BUILT_AT="), "{logs}");
    assert!(w
        .env
        .home()
        .join("pipeline/runs/1/artifacts/buildspec/imagedefinitions.json")
        .is_file());
}

#[test]
fn a_failing_buildspec_phase_stops_the_run_before_the_image_build() {
    let w = World::new();
    let dir = codebuild_repo(&w, "exit 4");
    let out = w
        .env
        .hoist()
        .args(["up", dir.to_str().unwrap(), "--listen", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let run = &w.runs()[0];
    let got = run_stages(run);
    assert_eq!(got[1], ("buildspec".to_owned(), "failed".to_owned()));
    assert_eq!(got[2], ("build".to_owned(), "skipped".to_owned()));
    // post_build still ran (a failed build phase goes on to it, as in CodeBuild).
    let logs = w.env.ok(&["runs", "logs", "1", "--stage", "buildspec"]);
    assert!(logs.contains("POST_BUILD"), "{logs}");
    let images = w.env.ok(&["--json", "image", "ls"]);
    assert!(!images.contains("web-cb"), "{images}");
}

/// `hoist runs show ID` as JSON (null while the run does not exist yet).
fn run_json(w: &World, id: u32) -> serde_json::Value {
    let out = w
        .env
        .hoist()
        .args(["--json", "runs", "show", &id.to_string()])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

fn stage_status(run: &serde_json::Value, name: &str) -> String {
    if run.is_null() {
        return String::new();
    }
    run_stages(run)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, s)| s)
        .unwrap_or_default()
}

#[test]
fn hoist_up_all_waits_at_the_approval_gate_then_promotes_or_stops() {
    let mut w = World::new();
    w.start_proxy();
    w.start_daemon();
    let dir = repo(&w, "version 1", "true");
    let prod_port = util::free_port();
    let yml = std::fs::read_to_string(dir.join("hoist.yml")).unwrap();
    let at = yml.rfind("127.0.0.1:").unwrap();
    let yml = format!("{}127.0.0.1:{prod_port}}}\n", &yml[..at]);
    std::fs::write(dir.join("hoist.yml"), yml).unwrap();
    let prod = std::net::SocketAddr::from(([127, 0, 0, 1], prod_port));
    let spawn_up = || {
        w.env
            .hoist()
            .args(["up", "--all", dir.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };

    // Run 1: dev deploys, the run waits at prod's gate; approving promotes it.
    let up = spawn_up();
    util::world::eventually("run 1 waits for approval", || {
        stage_status(&run_json(&w, 1), "approval:prod") == "waiting"
    });
    assert_eq!(body(w.addr()).as_deref(), Some("version 1"));
    assert_eq!(body(prod), None);
    // A follower of the run's logs prints until the run ends.
    let follower = w
        .env
        .hoist()
        .args(["runs", "logs", "1", "-f"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    w.env.fails(&["approve", "1", "--env", "dev"]);
    w.env.ok(&["approve", "1", "--env", "prod", "--by", "ann"]);
    let out = up.wait_with_output().unwrap();
    assert_ok(&out, "hoist up --all (approved)", &w);
    let followed = follower.wait_with_output().unwrap();
    let followed = String::from_utf8_lossy(&followed.stdout);
    assert!(followed.contains("==> test\n"), "{followed}");
    assert!(followed.contains("==> deploy:prod\n"), "{followed}");
    assert!(followed.contains("of web-prod"), "{followed}");
    assert_eq!(body(prod).as_deref(), Some("version 1"));
    let run = run_json(&w, 1);
    assert_eq!(run["status"], "succeeded");
    assert_eq!(stage_status(&run, "approval:prod"), "succeeded");
    assert_eq!(stage_status(&run, "verify:prod"), "succeeded");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("prod: http://{prod}/")),
        "{stdout}"
    );

    // Run 2: version 2 reaches dev; rejecting it leaves prod on version 1.
    std::fs::write(dir.join("www/index.html"), "version 2\n").unwrap();
    let up = spawn_up();
    util::world::eventually("run 2 waits for approval", || {
        stage_status(&run_json(&w, 2), "approval:prod") == "waiting"
    });
    w.env.ok(&["reject", "2", "--env", "prod", "--by", "bob"]);
    let out = up.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert_eq!(body(w.addr()).as_deref(), Some("version 2"));
    assert_eq!(body(prod).as_deref(), Some("version 1"));
    let run = run_json(&w, 2);
    assert_eq!(run["status"], "failed");
    assert_eq!(stage_status(&run, "approval:prod"), "failed");
    assert_eq!(stage_status(&run, "deploy:prod"), "skipped");
    assert!(run["error"].as_str().unwrap().contains("rejected by bob"));
    // A decided or ended run takes no more decisions.
    w.env.fails(&["approve", "2", "--env", "prod"]);
}

#[test]
fn test_steps_with_an_image_run_in_a_container_over_the_workspace_and_the_cache() {
    let mut w = World::new();
    w.start_proxy();
    w.start_daemon();
    let dir = repo(&w, "tested in busybox", "true");
    let yml = std::fs::read_to_string(dir.join("hoist.yml")).unwrap();
    let in_image = "test:\n\
         \x20 - name: in busybox\n\
         \x20   image: busybox\n\
         \x20   env: {GREETING: hi}\n\
         \x20   run:\n\
         \x20     - test -f www/index.html && echo \"$GREETING from $(hostname) in $(pwd)\"\n\
         \x20     - touch \"$HOIST_CACHE_DIR/marker\" && echo made > made-in-test.txt\n\
         \x20     - exit 4\n";
    let yml = yml.replace("test:\n  - name: unit\n    run: \"true\"\n", in_image);
    assert!(yml.contains("image: busybox"), "{yml}");
    std::fs::write(dir.join("hoist.yml"), &yml).unwrap();

    // The third command fails: the run stops there, before the build.
    let out = up(&w, &dir);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("exited with status 4"), "{stderr}");
    let run = &w.runs()[0];
    assert_eq!(run_stages(run)[1], ("test".to_owned(), "failed".to_owned()));
    assert_eq!(
        run_stages(run)[2],
        ("build".to_owned(), "skipped".to_owned())
    );
    let logs = w.env.ok(&["runs", "logs", "1", "--stage", "test"]);
    assert!(logs.contains("hi from hoist-test in /workspace"), "{logs}");
    // The commands wrote through the mounts: the workspace and the app's cache.
    let home = w.env.home();
    assert!(home.join("pipeline/runs/1/src/made-in-test.txt").is_file());
    assert!(home.join("pipeline/cache/web/marker").is_file());
    // Nothing else of the container stays, and the repository is untouched.
    assert!(!dir.join("made-in-test.txt").exists());

    std::fs::write(dir.join("hoist.yml"), yml.replace("      - exit 4\n", "")).unwrap();
    let out = up(&w, &dir);
    util::assert_success(&out, "hoist up");
    assert_eq!(body(w.addr()).as_deref(), Some("tested in busybox"));
}
