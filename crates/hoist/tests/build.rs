//! `hoist build` end to end: the real binary, the embedded runtime, a busybox base
//! imported from Debian's busybox-static.
#![allow(clippy::unwrap_used)]

mod util;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use util::{assert_success, Env};

/// A build context with the given files.
fn context(env: &Env, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = env.path(name);
    for (path, text) in files {
        let p = dir.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
    }
    dir
}

/// The JSON events of a build.
struct Build {
    events: Vec<serde_json::Value>,
}

impl Build {
    fn done(&self) -> &serde_json::Value {
        self.events
            .iter()
            .find(|e| e["event"] == "build_done")
            .expect("build_done event")
    }

    fn runs(&self) -> u64 {
        self.done()["runs"].as_u64().unwrap()
    }

    /// Instructions of the steps answered from the cache, in step order.
    fn cached(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["event"] == "step_cached")
            .map(|e| self.instruction(e["step"].as_u64().unwrap()))
            .collect()
    }

    /// Instructions of steps that made a layer or ran, not from the cache.
    fn rebuilt(&self) -> Vec<String> {
        let cached: Vec<u64> = self
            .events
            .iter()
            .filter(|e| e["event"] == "step_cached")
            .map(|e| e["step"].as_u64().unwrap())
            .collect();
        self.events
            .iter()
            .filter(|e| e["event"] == "step_done" && !e["layer"].is_null())
            .map(|e| e["step"].as_u64().unwrap())
            .filter(|s| !cached.contains(s))
            .map(|s| self.instruction(s))
            .collect()
    }

    fn instruction(&self, step: u64) -> String {
        self.events
            .iter()
            .find(|e| e["event"] == "step_started" && e["step"].as_u64() == Some(step))
            .map(|e| e["instruction"].as_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    fn output(&self) -> String {
        self.events
            .iter()
            .filter(|e| e["event"] == "step_output")
            .map(|e| format!("{}\n", e["line"].as_str().unwrap()))
            .collect()
    }
}

fn build(env: &Env, ctx: &Path, extra: &[&str]) -> Build {
    build_with(env, ctx, extra, "overlay")
}

fn build_with(env: &Env, ctx: &Path, extra: &[&str], snapshotter: &str) -> Build {
    let mut args = vec!["build", ctx.to_str().unwrap(), "--progress", "json"];
    args.extend_from_slice(extra);
    let out = env
        .hoist()
        .env("HOIST_SNAPSHOTTER", snapshotter)
        .args(&args)
        .output()
        .expect("run hoist");
    assert_success(&out, &format!("hoist {}", args.join(" ")));
    Build {
        events: String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON event"))
            .collect(),
    }
}

/// The layers of an image, decompressed, as (path, bytes of the whole tar).
fn layers(env: &Env, image: &str) -> Vec<Vec<u8>> {
    let v = env.inspect(image);
    v["Manifest"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let d = l["digest"].as_str().unwrap();
            let (alg, hex) = d.split_once(':').unwrap();
            let f = fs::File::open(env.home().join("blobs").join(alg).join(hex)).unwrap();
            let mut r =
                hoist_oci::media_type::Decompressor::new(std::io::BufReader::new(f)).unwrap();
            let mut bytes = Vec::new();
            r.read_to_end(&mut bytes).unwrap();
            bytes
        })
        .collect()
}

/// Entry paths of a layer tar.
fn entries(tar_bytes: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(tar_bytes);
    a.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// Apply every layer of `image` onto a fresh directory.
fn rootfs(env: &Env, image: &str, dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    for layer in layers(env, image) {
        hoist_layer::apply_layer(&layer[..], dir, &Default::default()).unwrap();
    }
}

#[test]
fn multi_stage_build_copies_from_an_earlier_stage() {
    let env = Env::new();
    env.import_busybox("busybox");
    let ctx = context(
        &env,
        "ctx",
        &[
            ("greeting.txt", "hello from the context\n"),
            (
                "Dockerfile",
                "FROM busybox AS gen\n\
                 ARG WHO=world\n\
                 RUN mkdir -p /out && echo \"generated for $WHO\" > /out/gen.txt\n\
                 FROM busybox AS unused\n\
                 RUN exit 1\n\
                 FROM scratch\n\
                 COPY --from=gen /out/gen.txt /gen.txt\n\
                 COPY greeting.txt /etc/\n\
                 ENV APP=demo\n\
                 WORKDIR /srv/app\n\
                 USER 1000:1000\n\
                 EXPOSE 8080\n\
                 LABEL org.example.team=platform\n\
                 CMD [\"/app\"]\n",
            ),
        ],
    );
    let b = build(&env, &ctx, &["-t", "multi:1", "--build-arg", "WHO=tests"]);
    assert_eq!(b.runs(), 1, "the unused stage must be skipped");
    let dir = env.path("rootfs");
    rootfs(&env, "multi:1", &dir);
    assert_eq!(
        fs::read_to_string(dir.join("gen.txt")).unwrap(),
        "generated for tests\n"
    );
    assert_eq!(
        fs::read_to_string(dir.join("etc/greeting.txt")).unwrap(),
        "hello from the context\n"
    );
    assert!(dir.join("srv/app").is_dir());
    assert!(!dir.join("bin/busybox").exists(), "scratch has no busybox");
    let v = env.inspect("multi:1");
    let c = &v["Config"];
    assert_eq!(c["Cmd"][0], "/app");
    assert_eq!(c["WorkingDir"], "/srv/app");
    assert_eq!(c["User"], "1000:1000");
    assert!(c["ExposedPorts"]["8080/tcp"].is_object());
    assert_eq!(c["Labels"]["org.example.team"], "platform");
    let envs: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(envs.contains(&"APP=demo"), "{envs:?}");
    assert!(envs.iter().any(|e| e.starts_with("PATH=")), "{envs:?}");
    let history = v["History"].as_array().unwrap();
    let layered = history.iter().filter(|h| h["empty_layer"] != true).count();
    assert_eq!(layered, v["RootFS"]["Layers"].as_array().unwrap().len());
}

#[test]
fn a_run_that_deletes_a_base_file_writes_a_whiteout() {
    deletes_a_base_file("overlay");
}

#[test]
fn the_walking_snapshotter_makes_the_same_whiteouts() {
    deletes_a_base_file("walk");
}

fn deletes_a_base_file(snapshotter: &str) {
    let env = Env::new();
    env.import_busybox("busybox");
    let ctx = context(
        &env,
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\n\
             RUN mkdir -p /data/sub && echo a > /data/a && echo b > /data/sub/b\n\
             RUN rm /bin/ls && rm -r /data && mkdir /data && echo new > /data/fresh\n",
        )],
    );
    build_with(&env, &ctx, &["-t", "deleted"], snapshotter);
    let ls = layers(&env, "deleted");
    let top = entries(ls.last().unwrap());
    assert!(top.iter().any(|p| p == "bin/.wh.ls"), "{top:?}");
    // overlay sees a recreated directory (opaque); a walk sees what went missing.
    let opaque = top.iter().any(|p| p == "data/.wh..wh..opq");
    let each = ["data/.wh.a", "data/.wh.sub"]
        .iter()
        .all(|w| top.iter().any(|p| p == w));
    assert!(opaque || (snapshotter == "walk" && each), "{top:?}");
    let dir = env.path("rootfs");
    rootfs(&env, "deleted", &dir);
    assert!(!dir.join("bin/ls").exists());
    assert!(dir.join("bin/cat").exists());
    assert_eq!(fs::read_to_string(dir.join("data/fresh")).unwrap(), "new\n");
    assert_eq!(fs::read_dir(dir.join("data")).unwrap().count(), 1);
    // Nothing but the step's own changes: no mountpoint stubs in the layer.
    assert!(
        !top.iter()
            .any(|p| p.contains("hosts") || p.contains("resolv")),
        "{top:?}"
    );
}

#[test]
fn unchanged_rebuild_runs_nothing_and_a_changed_file_rebuilds_from_its_copy() {
    let env = Env::new();
    env.import_busybox("busybox");
    let ctx = context(
        &env,
        "ctx",
        &[
            ("one.txt", "one\n"),
            ("two.txt", "two\n"),
            (
                "Dockerfile",
                "FROM busybox\n\
                 RUN echo base > /base\n\
                 COPY one.txt /one.txt\n\
                 RUN cat /one.txt /base > /combined\n\
                 COPY two.txt /two.txt\n\
                 RUN cat /two.txt > /last\n",
            ),
        ],
    );
    let first = build(&env, &ctx, &["-t", "cached"]);
    assert_eq!(first.runs(), 3);
    let again = build(&env, &ctx, &["-t", "cached"]);
    assert_eq!(again.runs(), 0, "an unchanged rebuild runs no RUN");
    assert_eq!(again.rebuilt(), Vec::<String>::new());
    assert_eq!(again.cached().len(), 5);

    fs::write(ctx.join("two.txt"), "TWO\n").unwrap();
    let b = build(&env, &ctx, &["-t", "cached"]);
    assert_eq!(
        b.cached(),
        [
            "RUN echo base > /base",
            "COPY one.txt /one.txt",
            "RUN cat /one.txt /base > /combined"
        ]
    );
    assert_eq!(
        b.rebuilt(),
        ["COPY two.txt /two.txt", "RUN cat /two.txt > /last"]
    );
    assert_eq!(b.runs(), 1);
    let dir = env.path("rootfs");
    rootfs(&env, "cached", &dir);
    assert_eq!(fs::read_to_string(dir.join("last")).unwrap(), "TWO\n");

    // --no-cache runs everything again.
    let nc = build(&env, &ctx, &["-t", "cached", "--no-cache"]);
    assert_eq!(nc.runs(), 3);
    assert!(nc.cached().is_empty());
}

#[test]
fn a_secret_leaves_no_trace() {
    let env = Env::new();
    env.import_busybox("busybox");
    let secret = "s3cr3t-VALUE-9f8e7d";
    let secret_file = env.path("token");
    fs::write(&secret_file, secret).unwrap();
    let ctx = context(
        &env,
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\n\
             RUN --mount=type=secret,id=token sha256sum /run/secrets/token | cut -d' ' -f1 > /used\n\
             RUN --mount=type=secret,id=token,env=TOKEN printf %s \"$TOKEN\" | sha256sum | cut -d' ' -f1 > /env\n",
        )],
    );
    let spec = format!("id=token,src={}", secret_file.display());
    build(&env, &ctx, &["-t", "secret", "--secret", &spec]);
    let dir = env.path("rootfs");
    rootfs(&env, "secret", &dir);
    // The RUNs saw the secret (its hash), as a file and as an environment variable.
    let hash = format!(
        "{:x}\n",
        <sha2::Sha256 as sha2::Digest>::digest(secret.as_bytes())
    );
    assert_eq!(fs::read_to_string(dir.join("used")).unwrap(), hash);
    assert_eq!(fs::read_to_string(dir.join("env")).unwrap(), hash);
    assert!(!dir.join("run/secrets/token").exists());
    // Nowhere in the store: layers, configs, manifests, cache records, snapshots.
    let mut hits = Vec::new();
    for entry in walkdir::WalkDir::new(env.home()) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let bytes = fs::read(entry.path()).unwrap_or_default();
            if contains(&bytes, secret.as_bytes()) {
                hits.push(entry.path().to_owned());
            }
        }
    }
    for layer in layers(&env, "secret") {
        assert!(!contains(&layer, secret.as_bytes()));
        let names = entries(&layer);
        assert!(!names.iter().any(|n| n.contains("secrets")), "{names:?}");
    }
    assert!(hits.is_empty(), "secret found in {hits:?}");
    let v = env.inspect("secret");
    assert!(!v.to_string().contains(secret));
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_failing_run_names_the_command_its_exit_code_and_output() {
    let env = Env::new();
    env.import_busybox("busybox");
    let ctx = context(
        &env,
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo preparing\nRUN echo step one; echo the-last-words >&2; exit 3\n",
        )],
    );
    let err = env.fails(&["build", ctx.to_str().unwrap(), "-t", "broken"]);
    assert!(err.contains("Dockerfile:3"), "{err}");
    assert!(
        err.contains("echo step one; echo the-last-words >&2; exit 3"),
        "{err}"
    );
    assert!(err.contains("exit code: 3"), "{err}");
    assert!(err.contains("the-last-words"), "{err}");
    // Nothing was recorded.
    assert!(env
        .fails(&["image", "inspect", "broken"])
        .contains("no such image"));
}

#[test]
fn missing_base_image_says_how_to_get_one() {
    let env = Env::new();
    let ctx = context(
        &env,
        "ctx",
        &[("Dockerfile", "FROM alpine:3.20\nRUN true\n")],
    );
    let err = env.fails(&["build", ctx.to_str().unwrap()]);
    assert!(err.contains("Dockerfile:1"), "{err}");
    assert!(err.contains("hoist image import"), "{err}");
}

#[test]
fn two_clean_builds_with_one_source_date_epoch_give_one_digest() {
    let mut digests = Vec::new();
    // Twice with the embedded runtime, once with runc: one image.
    for runtime in ["embedded", "embedded", "/usr/sbin/runc"] {
        let env = Env::new();
        let base = env.import_at_epoch(&util::busybox_rootfs(), "busybox", 1_700_000_000);
        assert!(base["Digest"].is_string());
        let ctx = context(
            &env,
            "ctx",
            &[
                ("app.txt", "app\n"),
                (
                    "Dockerfile",
                    "FROM busybox\nRUN mkdir /data && echo hi > /data/x\nCOPY app.txt /app/\nCMD [\"cat\", \"/app/app.txt\"]\n",
                ),
            ],
        );
        let out = env
            .hoist()
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .env("HOIST_RUNTIME", runtime)
            .args(["build", ctx.to_str().unwrap(), "-q", "-t", "repro"])
            .output()
            .unwrap();
        assert_success(&out, "hoist build");
        digests.push(String::from_utf8_lossy(&out.stdout).trim().to_owned());
    }
    assert!(digests[0].starts_with("sha256:"), "{digests:?}");
    assert_eq!(digests[0], digests[1]);
    assert_eq!(digests[0], digests[2], "runc built another image");
}

#[test]
fn a_run_sees_no_host_process_and_cannot_write_outside_its_rootfs() {
    let env = Env::new();
    env.import_busybox("busybox");
    let marker = format!("/tmp/hoist-escape-{}", std::process::id());
    let _ = fs::remove_file(&marker);
    let ctx = context(
        &env,
        "ctx",
        &[(
            "Dockerfile",
            &format!(
                "FROM busybox\n\
                 RUN ls /proc | grep -E '^[0-9]+$' | wc -l > /pids && echo escaped > {marker}\n"
            ),
        )],
    );
    build(&env, &ctx, &["-t", "jail"]);
    assert!(
        !Path::new(&marker).exists(),
        "a RUN wrote to the host's {marker}"
    );
    let dir = env.path("rootfs");
    rootfs(&env, "jail", &dir);
    let pids: u32 = fs::read_to_string(dir.join("pids"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pids <= 4, "the RUN saw {pids} processes");
    assert_eq!(
        fs::read_to_string(dir.join(marker.trim_start_matches('/'))).unwrap(),
        "escaped\n"
    );
}

#[test]
fn a_killed_build_leaves_the_store_consistent_and_the_next_build_works() {
    let env = Env::new();
    env.import_busybox("busybox");
    let ctx = context(
        &env,
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN dd if=/dev/zero of=/big bs=1M count=8 && echo made\nRUN echo started && sleep 600\n",
        )],
    );
    let mut child = env
        .hoist()
        .args([
            "build",
            ctx.to_str().unwrap(),
            "-t",
            "killed",
            "--progress",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the second RUN is running, then SIGKILL hoist.
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        let n = std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        assert!(n > 0, "build ended before the sleep step started");
        if line.contains("\"started\"") && line.contains("step_output") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Nothing recorded for the killed build.
    assert!(env
        .fails(&["image", "inspect", "killed"])
        .contains("no such image"));
    // The next build succeeds (stale containers are cleaned first) and reuses the
    // first step, whose layer was committed before the kill.
    fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN dd if=/dev/zero of=/big bs=1M count=8 && echo made\nRUN echo finished > /done\n",
    )
    .unwrap();
    let b = build(&env, &ctx, &["-t", "after"]);
    assert_eq!(b.runs(), 1, "{:?}", b.cached());
    // The orphaned `sleep 600` is gone.
    let procs = Command::new("pgrep")
        .args(["-f", "sleep 600"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&procs.stdout).trim().is_empty(),
        "sleep 600 still running"
    );
    // Every image's blobs are whole: GC keeps them and inspect reads them.
    env.ok(&["image", "prune"]);
    let dir = env.path("rootfs");
    rootfs(&env, "after", &dir);
    assert_eq!(fs::read_to_string(dir.join("done")).unwrap(), "finished\n");
}

#[test]
fn run_output_streams_with_progress_plain() {
    let env = Env::new();
    env.import_busybox("busybox");
    let ctx = context(
        &env,
        "ctx",
        &[("Dockerfile", "FROM busybox\nRUN echo visible-output-line\n")],
    );
    let out = env
        .hoist()
        .args(["build", ctx.to_str().unwrap(), "--progress", "plain"])
        .output()
        .unwrap();
    assert_success(&out, "hoist build");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[stage-0 2/2] RUN echo visible-output-line"),
        "{err}"
    );
    assert!(err.contains("visible-output-line\n"), "{err}");
    assert!(err.contains("DONE"), "{err}");
    let b = build(&env, &ctx, &[]);
    assert!(b.output().is_empty(), "cached step printed output");
}

#[test]
fn cache_mounts_persist_across_builds_and_stay_out_of_layers() {
    let env = Env::new();
    env.import_busybox("busybox");
    let ctx = context(
        &env,
        "ctx",
        &[
            ("src/main.txt", "source\n"),
            (
                "Dockerfile",
                "FROM busybox\n\
                 RUN --mount=type=cache,target=/var/cache/app echo run >> /var/cache/app/log && wc -l < /var/cache/app/log > /runs\n\
                 RUN --mount=type=bind,source=src,target=/src cat /src/main.txt > /copied\n",
            ),
        ],
    );
    build(&env, &ctx, &["-t", "mounts"]);
    let b = build(&env, &ctx, &["-t", "mounts", "--no-cache"]);
    assert_eq!(b.runs(), 2);
    let dir = env.path("rootfs");
    rootfs(&env, "mounts", &dir);
    // The second build saw the first one's cache contents.
    assert_eq!(fs::read_to_string(dir.join("runs")).unwrap().trim(), "2");
    assert_eq!(fs::read_to_string(dir.join("copied")).unwrap(), "source\n");
    assert!(!dir.join("var/cache/app/log").exists());
    assert!(!dir.join("src/main.txt").exists());
    // A changed bind source is a new cache key.
    fs::write(ctx.join("src/main.txt"), "changed\n").unwrap();
    let c = build(&env, &ctx, &["-t", "mounts"]);
    assert_eq!(c.runs(), 1);
    // `hoist prune` drops the step cache (and cache mounts) but not images.
    let pruned = env.ok(&["prune"]);
    assert!(pruned.contains("cache records"), "{pruned}");
    let after = build(&env, &ctx, &["-t", "mounts"]);
    assert_eq!(after.runs(), 2, "prune must empty the step cache");
    let dir2 = env.path("rootfs2");
    rootfs(&env, "mounts", &dir2);
    assert_eq!(fs::read_to_string(dir2.join("runs")).unwrap().trim(), "1");
}

#[test]
fn independent_stages_build_and_the_target_flag_stops_early() {
    let env = Env::new();
    env.import_busybox("busybox");
    let ctx = context(
        &env,
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox AS a\nRUN echo a > /a\n\
             FROM busybox AS b\nRUN echo b > /b\n\
             FROM busybox AS final\nCOPY --from=a /a /a\nCOPY --from=b /b /b\nRUN cat /a /b > /ab\n",
        )],
    );
    let b = build(&env, &ctx, &["-t", "par"]);
    assert_eq!(b.runs(), 3);
    let stages = b.events[0]["stages"].as_array().unwrap().clone();
    assert_eq!(stages, ["a", "b", "final"]);
    let dir = env.path("rootfs");
    rootfs(&env, "par", &dir);
    assert_eq!(fs::read_to_string(dir.join("ab")).unwrap(), "a\nb\n");
    let t = build(&env, &ctx, &["-t", "only-b", "--target", "b"]);
    assert_eq!(t.events[0]["stages"].as_array().unwrap().len(), 1);
    let err = env.fails(&["build", ctx.to_str().unwrap(), "--target", "nope"]);
    assert!(err.contains("nope") && err.contains("final"), "{err}");
}

#[test]
fn the_examples_build() {
    let env = Env::new();
    env.import_busybox("busybox");
    let root = util::root();
    let b = build(&env, &root.join("examples/busybox-site"), &["-t", "site"]);
    assert!(b.runs() >= 2);
    let v = env.inspect("site");
    assert_eq!(v["Config"]["User"], "www");
    assert_eq!(v["Config"]["Healthcheck"]["Test"][0], "CMD-SHELL");
    let dir = env.path("site-rootfs");
    rootfs(&env, "site", &dir);
    assert!(dir.join("www/index.html").is_file());
    assert!(dir.join("www/SHA256SUMS").is_file());
    assert!(fs::read_to_string(dir.join("etc/passwd"))
        .unwrap()
        .contains("www:x:1000"));

    // examples/hello: build the static binary, then the FROM scratch image.
    let target = env.path("hello-target");
    let out = Command::new("bash")
        .arg(root.join("examples/hello/build.sh"))
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert_success(&out, "examples/hello/build.sh");
    build(&env, &root.join("examples/hello"), &["-t", "hello"]);
    let v = env.inspect("hello");
    assert_eq!(v["Config"]["Entrypoint"][0], "/hello");
    assert_eq!(v["Config"]["User"], "65532:65532");
    assert!(v["Config"]["ExposedPorts"]["8080/tcp"].is_object());
    let dir = env.path("hello-rootfs");
    rootfs(&env, "hello", &dir);
    let names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["hello"]);
}

#[test]
fn onbuild_shell_volume_stopsignal_and_copy_from_an_image() {
    let env = Env::new();
    env.import_busybox("busybox");
    let parent = context(
        &env,
        "parent",
        &[(
            "Dockerfile",
            "FROM busybox\n\
             ONBUILD RUN echo triggered > /onbuild\n\
             SHELL [\"/bin/sh\", \"-ec\"]\n\
             STOPSIGNAL SIGINT\n\
             VOLUME /data\n",
        )],
    );
    build(&env, &parent, &["-t", "parent"]);
    let p = env.inspect("parent");
    assert_eq!(p["Config"]["OnBuild"][0], "RUN echo triggered > /onbuild");
    assert_eq!(p["Config"]["Shell"][1], "-ec");
    assert_eq!(p["Config"]["StopSignal"], "SIGINT");
    assert!(p["Config"]["Volumes"]["/data"].is_object());
    let child = context(
        &env,
        "child",
        &[(
            "Dockerfile",
            "FROM parent\nRUN test -f /onbuild\nFROM scratch\nCOPY --from=busybox /bin/busybox /bb\n",
        )],
    );
    build(&env, &child, &["-t", "child", "--target", "0"]);
    let c = env.inspect("child");
    assert!(
        c["Config"]["OnBuild"].is_null(),
        "triggers are not inherited"
    );
    let dir = env.path("rootfs");
    rootfs(&env, "child", &dir);
    assert_eq!(
        fs::read_to_string(dir.join("onbuild")).unwrap(),
        "triggered\n"
    );
    build(&env, &child, &["-t", "bb"]);
    let dir = env.path("bb");
    rootfs(&env, "bb", &dir);
    assert!(dir.join("bb").is_file());
}

#[test]
fn removing_the_image_keeps_the_build_cache() {
    let env = Env::new();
    env.import_busybox("busybox");
    let ctx = context(
        &env,
        "ctx",
        &[("Dockerfile", "FROM busybox\nRUN echo kept > /kept\n")],
    );
    build(&env, &ctx, &["-t", "gone"]);
    env.ok(&["image", "rm", "gone"]);
    env.ok(&["image", "prune"]);
    let b = build(&env, &ctx, &["-t", "gone"]);
    assert_eq!(
        b.runs(),
        0,
        "image rm and image prune must keep cached layers"
    );
    let dir = env.path("rootfs");
    rootfs(&env, "gone", &dir);
    assert_eq!(fs::read_to_string(dir.join("kept")).unwrap(), "kept\n");
}

#[test]
fn workdir_follows_symlinks_and_gives_new_dirs_to_the_user() {
    use std::os::unix::fs::MetadataExt;
    let env = Env::new();
    env.import_busybox("busybox");
    let ctx = context(
        &env,
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN mkdir -p /real && ln -s /real /linked\nUSER 1000:1000\nWORKDIR /linked/app\nWORKDIR /bin\n",
        )],
    );
    let b = build(&env, &ctx, &["-t", "wd"]);
    // WORKDIR /bin exists already: no layer.
    assert_eq!(b.rebuilt().len(), 2, "{:?}", b.rebuilt());
    let dir = env.path("rootfs");
    rootfs(&env, "wd", &dir);
    assert!(fs::symlink_metadata(dir.join("linked"))
        .unwrap()
        .file_type()
        .is_symlink());
    let app = fs::metadata(dir.join("real/app")).unwrap();
    assert!(app.is_dir());
    assert_eq!((app.uid(), app.gid()), (1000, 1000));
    assert_eq!(fs::metadata(dir.join("real")).unwrap().uid(), 0);
}
