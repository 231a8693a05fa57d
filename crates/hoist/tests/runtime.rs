//! hoist-runtime driven end to end, with the real `hoist` binary as the container
//! helper and Debian's busybox-static as the rootfs. Needs root (as CI runs).
#![allow(clippy::unwrap_used)]

mod util;

use std::collections::BTreeSet;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hoist_runtime::{
    Backend, BindMount, ContainerSpec, ExitStatus, Limits, Network, Rootfs, RunOptions, RunOutcome,
    Runtime, RuntimeError, Stream,
};
use util::task_runtime as runtime_with;

const RUNC: &str = "/usr/sbin/runc";

/// A scratch dir with a state dir and an overlay (upper/work) over busybox.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().expect("tempdir");
        for d in ["state", "upper", "work"] {
            std::fs::create_dir(dir.path().join(d)).expect("mkdir");
        }
        Scratch { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn runtime(&self) -> Runtime {
        runtime_with(&self.path("state"), Backend::Embedded)
    }

    fn overlay(&self) -> Rootfs {
        Rootfs::Overlay {
            lowers: vec![util::busybox_rootfs()],
            upper: self.path("upper"),
            work: self.path("work"),
        }
    }

    fn spec(&self, script: &str) -> ContainerSpec {
        ContainerSpec {
            rootfs: self.overlay(),
            args: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: vec![],
            cwd: "/".into(),
            user: String::new(),
            hostname: "box".into(),
            network: Network::None,
            mounts: vec![],
            limits: Limits::default(),
            readonly_rootfs: false,
        }
    }

    /// No container state may be left behind after a run.
    fn assert_state_empty(&self) {
        let left: Vec<_> = std::fs::read_dir(self.path("state"))
            .expect("state dir")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "state dir not cleaned: {left:?}");
    }
}

struct Ran {
    stdout: String,
    stderr: String,
    outcome: RunOutcome,
}

fn run_with(rt: &Runtime, spec: &ContainerSpec, opts: &RunOptions) -> Result<Ran, RuntimeError> {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let outcome = rt.run(spec, opts, &mut |s, b| match s {
        Stream::Stdout => out.extend_from_slice(b),
        Stream::Stderr => err.extend_from_slice(b),
    })?;
    Ok(Ran {
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
        outcome,
    })
}

fn run(rt: &Runtime, spec: &ContainerSpec) -> Ran {
    run_with(rt, spec, &RunOptions::default()).expect("run container")
}

/// Run and require exit 0; returns stdout.
fn ok(rt: &Runtime, spec: &ContainerSpec) -> String {
    let r = run(rt, spec);
    assert!(
        r.outcome.status.success(),
        "{:?} failed: {:?}\nstdout:\n{}\nstderr:\n{}",
        spec.args,
        r.outcome.status,
        r.stdout,
        r.stderr
    );
    r.stdout
}

/// Whether a process exists and is not a zombie.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn stdout_and_stderr_are_separate_and_exit_code_returned() {
    let s = Scratch::new();
    let r = run(
        &s.runtime(),
        &s.spec("echo out; echo err >&2; echo out2; exit 7"),
    );
    assert_eq!(r.stdout, "out\nout2\n");
    assert_eq!(r.stderr, "err\n");
    assert_eq!(r.outcome.status, ExitStatus::Code(7));
    assert_eq!(r.outcome.status.code(), 7);
    assert!(!r.outcome.timed_out && !r.outcome.cancelled);
    s.assert_state_empty();
}

#[test]
fn container_sees_only_its_own_processes() {
    let s = Scratch::new();
    let out = ok(
        &s.runtime(),
        &s.spec("echo $$; ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '"),
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1"), "{out}");
    let pids: Vec<u32> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(|p| p.parse().expect("pid"))
        .collect();
    assert!(pids.contains(&1), "{pids:?}");
    // sh, ls, grep, sort, tr: nothing from the host.
    assert!(pids.len() <= 6 && pids.iter().all(|&p| p < 50), "{pids:?}");
}

#[test]
fn rootfs_dir_writes_stay_inside_the_dir() {
    let s = Scratch::new();
    let root = s.path("rootfs");
    let cp = Command::new("cp")
        .arg("-a")
        .arg(util::busybox_rootfs())
        .arg(&root)
        .status()
        .expect("cp");
    assert!(cp.success());
    let name = format!("hoist-rt-hostfile-{}", std::process::id());
    let mut spec = s.spec(&format!("echo hi > /{name} && cat /{name}"));
    spec.rootfs = Rootfs::Dir(root.clone());
    assert_eq!(ok(&s.runtime(), &spec), "hi\n");
    assert_eq!(
        std::fs::read_to_string(root.join(&name)).expect("in rootfs"),
        "hi\n"
    );
    assert!(
        !Path::new("/").join(&name).exists(),
        "wrote to the host's /"
    );
    // The generated /etc files are mount points only: not written into the dir.
    let hosts = std::fs::read_to_string(root.join("etc/hosts")).unwrap_or_default();
    assert!(!hosts.contains("box"), "{hosts}");
}

#[test]
fn overlay_upper_gets_writes_and_whiteouts() {
    let s = Scratch::new();
    ok(
        &s.runtime(),
        &s.spec("echo new > /new.txt && rm /bin/vi && mkdir -p /made/here && echo x > /tmp/t"),
    );
    let upper = s.path("upper");
    assert_eq!(
        std::fs::read_to_string(upper.join("new.txt")).unwrap(),
        "new\n"
    );
    assert!(upper.join("made/here").is_dir());
    let wh = std::fs::symlink_metadata(upper.join("bin/vi")).expect("whiteout");
    assert!(wh.file_type().is_char_device(), "{wh:?}");
    assert_eq!(wh.rdev(), 0);
    // The lower layer is untouched.
    let lower = util::busybox_rootfs();
    assert!(std::fs::symlink_metadata(lower.join("bin/vi")).is_ok());
    assert!(!lower.join("new.txt").exists());
    s.assert_state_empty();
}

#[test]
fn overlay_with_many_long_lowers() {
    let s = Scratch::new();
    // A long common prefix makes the absolute lowerdir list exceed a page.
    let base = s.path(&"l".repeat(150));
    std::fs::create_dir(&base).unwrap();
    let cp = Command::new("cp")
        .arg("-a")
        .arg(util::busybox_rootfs())
        .arg(base.join("busybox"))
        .status()
        .expect("cp");
    assert!(cp.success());
    let mut lowers = Vec::new();
    for i in 0..32 {
        let l = base.join(format!("layer{i:02}"));
        std::fs::create_dir_all(l.join("layers")).unwrap();
        std::fs::write(l.join(format!("layers/f{i}")), "").unwrap();
        std::fs::write(l.join("layers/shadow"), format!("{i}\n")).unwrap();
        lowers.push(l);
    }
    lowers.push(base.join("busybox"));
    let total: usize = lowers.iter().map(|l| l.as_os_str().len() + 1).sum();
    assert!(
        total > 4096,
        "test paths too short to exercise the limit: {total}"
    );
    let mut spec = s.spec("cat /layers/shadow; ls /layers | wc -l");
    spec.rootfs = Rootfs::Overlay {
        lowers,
        upper: s.path("upper"),
        work: s.path("work"),
    };
    let out = ok(&s.runtime(), &spec);
    // Top-most first: layer00 wins; 32 files plus `shadow`.
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["0", "33"]);
}

#[test]
fn empty_lowers_give_an_empty_root() {
    let s = Scratch::new();
    let mut spec = s.spec("unused");
    spec.rootfs = Rootfs::Overlay {
        lowers: vec![],
        upper: s.path("upper"),
        work: s.path("work"),
    };
    // Nothing to exec in an empty root: a setup error, not a hang.
    let err = run_with(&s.runtime(), &spec, &RunOptions::default()).err();
    assert!(matches!(err, Some(RuntimeError::Setup { .. })), "{err:?}");
    s.assert_state_empty();
}

#[test]
fn user_is_applied() {
    let s = Scratch::new();
    let rt = s.runtime();
    let mut spec = s.spec("id -u; id -g; grep CapEff /proc/self/status");
    spec.user = "nobody".into();
    let out = ok(&rt, &spec);
    assert_eq!(out.lines().take(2).collect::<Vec<_>>(), ["65534", "65534"]);
    // Docker gives non-root users no effective capabilities.
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");

    spec.user = "1234".into();
    assert_eq!(
        ok(&rt, &spec).lines().take(2).collect::<Vec<_>>(),
        ["1234", "0"]
    );
    spec.user = "1234:65534".into();
    assert_eq!(
        ok(&rt, &spec).lines().take(2).collect::<Vec<_>>(),
        ["1234", "65534"]
    );

    spec.user = "mallory".into();
    match run_with(&rt, &spec, &RunOptions::default()) {
        Err(RuntimeError::Setup { message }) => assert!(message.contains("mallory"), "{message}"),
        other => panic!("unknown user ran: {:?}", other.map(|r| r.outcome)),
    }
}

#[test]
fn env_and_cwd_are_applied() {
    let s = Scratch::new();
    let mut spec = s.spec("echo $FOO; pwd; echo $PATH; stat -c %u:%g .");
    spec.env = vec!["FOO=bar baz".into()];
    spec.cwd = "/work/sub".into();
    spec.user = "nobody".into();
    let out = ok(&s.runtime(), &spec);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "bar baz",
            "/work/sub",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "65534:65534"
        ]
    );
    // A PATH in env is kept.
    let mut spec = s.spec("echo $PATH");
    spec.env = vec!["PATH=/bin".into()];
    assert_eq!(ok(&s.runtime(), &spec), "/bin\n");
}

#[test]
fn hostname_and_etc_files() {
    let s = Scratch::new();
    let out = ok(
        &s.runtime(),
        &s.spec("hostname; cat /etc/hostname; grep -c localhost /etc/hosts; echo x >> /etc/hosts || echo ro"),
    );
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(lines[..2], ["box", "box"], "{out}");
    assert_ne!(lines[2], "0", "{out}");
    assert_eq!(lines[3], "ro", "{out}");
}

#[test]
fn network_none_has_only_a_working_loopback() {
    let s = Scratch::new();
    let script = "ls /sys/class/net; echo hello > /tmp/index.html; \
        httpd -p 127.0.0.1:8080 -h /tmp; \
        for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O - http://127.0.0.1:8080/index.html && exit 0; sleep 0.2; done; exit 1";
    let out = ok(&s.runtime(), &s.spec(script));
    assert_eq!(out, "lo\nhello\n");
}

#[test]
fn network_host_sees_host_interfaces() {
    let s = Scratch::new();
    let mut spec = s.spec("ls /sys/class/net");
    spec.network = Network::Host;
    let inside: BTreeSet<String> = ok(&s.runtime(), &spec).lines().map(str::to_owned).collect();
    let host: BTreeSet<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(inside, host);
    assert!(
        host.len() > 1,
        "host has only {host:?}: test proves nothing"
    );
}

#[test]
fn bind_mounts_readonly_and_readwrite() {
    let s = Scratch::new();
    let (ro, rw) = (s.path("ro"), s.path("rw"));
    std::fs::create_dir(&ro).unwrap();
    std::fs::create_dir(&rw).unwrap();
    std::fs::write(ro.join("in"), "data\n").unwrap();
    let mut spec = s.spec(
        "cat /ro/in; touch /ro/x 2>/dev/null && echo ro-writable; echo w > /rw/out; echo done",
    );
    spec.mounts = vec![
        BindMount {
            source: ro.clone(),
            destination: "/ro".into(),
            readonly: true,
        },
        BindMount {
            source: rw.clone(),
            destination: "/rw".into(),
            readonly: false,
        },
    ];
    assert_eq!(ok(&s.runtime(), &spec), "data\ndone\n");
    assert!(!ro.join("x").exists());
    assert_eq!(std::fs::read_to_string(rw.join("out")).unwrap(), "w\n");
}

#[test]
fn readonly_rootfs() {
    let s = Scratch::new();
    let mut spec = s.spec("touch /x 2>/dev/null && echo writable; echo done");
    spec.readonly_rootfs = true;
    assert_eq!(ok(&s.runtime(), &spec), "done\n");
}

#[test]
fn pids_limit_is_enforced_and_memory_limit_set() {
    let s = Scratch::new();
    let mut spec = s.spec(
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; \
         i=0; while [ $i -lt 30 ]; do sleep 30 & i=$((i+1)); done; echo spawned",
    );
    spec.limits = Limits {
        memory_bytes: Some(64 << 20),
        pids: Some(8),
        cpus: Some(0.5),
    };
    // Learn the container id while it runs, from the state dir.
    let (mut out, mut err, mut id) = (Vec::new(), Vec::new(), None);
    let state = s.path("state");
    let outcome = s
        .runtime()
        .run(&spec, &RunOptions::default(), &mut |st, b| {
            if id.is_none() {
                id = std::fs::read_dir(&state)
                    .ok()
                    .and_then(|mut d| d.next())
                    .map(|e| e.unwrap().file_name());
            }
            match st {
                Stream::Stdout => out.extend_from_slice(b),
                Stream::Stderr => err.extend_from_slice(b),
            }
        })
        .expect("run");
    let (out, err) = (String::from_utf8_lossy(&out), String::from_utf8_lossy(&err));
    assert!(out.starts_with(&format!("{}\n", 64u64 << 20)), "{out}");
    assert!(
        err.contains("fork"),
        "30 background sleeps under pids=8: {err}"
    );
    assert!(!outcome.timed_out);
    s.assert_state_empty();
    // Its cgroups (under this process's memory cgroup) are gone in every hierarchy.
    let id = id.expect("container id seen during the run");
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let mem = own
        .lines()
        .find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_owned()))
        .expect("cgroup v1 memory line");
    for h in ["memory", "pids", "cpu", "devices", "freezer"] {
        let dir = Path::new("/sys/fs/cgroup")
            .join(h)
            .join(mem.trim_start_matches('/'))
            .join(&id);
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[test]
fn timeout_kills_the_container() {
    let s = Scratch::new();
    let r = run_with(
        &s.runtime(),
        &s.spec("echo started; sleep 100"),
        &RunOptions {
            timeout: Some(Duration::from_millis(500)),
            cancel: None,
        },
    )
    .expect("run");
    assert!(r.outcome.timed_out && !r.outcome.cancelled);
    assert_eq!(r.stdout, "started\n");
    assert_eq!(r.outcome.status, ExitStatus::Signal(9));
    assert_eq!(r.outcome.status.code(), 137);
    s.assert_state_empty();
}

#[test]
fn cancel_kills_the_container() {
    let s = Scratch::new();
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let setter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        f.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let r = run_with(
        &s.runtime(),
        &s.spec("sleep 100"),
        &RunOptions {
            timeout: None,
            cancel: Some(flag),
        },
    )
    .expect("run");
    setter.join().unwrap();
    assert!(r.outcome.cancelled && !r.outcome.timed_out);
    assert!(!r.outcome.status.success());
    s.assert_state_empty();
}

#[test]
fn docker_default_capabilities_and_masks() {
    let s = Scratch::new();
    let out = ok(
        &s.runtime(),
        &s.spec(
            "grep -E 'Cap(Eff|Bnd)|NoNewPrivs' /proc/self/status; \
             echo nofile $(ulimit -Sn) $(ulimit -Hn); \
             cat /proc/kcore | wc -c; \
             echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo sys-writable; \
             ls /dev | tr '\\n' ' '",
        ),
    );
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.contains("CapBnd:\t00000000a80425fb"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    // Open files: the caller's hard limit, soft and hard.
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let hard = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4))
        .unwrap()
        .to_owned();
    assert!(out.contains(&format!("nofile {hard} {hard}\n")), "{out}");
    let lines: Vec<_> = out.lines().collect();
    assert!(lines.contains(&"0"), "/proc/kcore not masked: {out}");
    assert!(!out.contains("sys-writable"), "{out}");
    let devs: BTreeSet<&str> = lines.last().unwrap().split_whitespace().collect();
    for d in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue",
    ] {
        assert!(devs.contains(d), "/dev lacks {d}: {devs:?}");
    }
    assert!(!devs.contains("sda") && !devs.contains("kmsg"), "{devs:?}");
}

#[test]
fn seccomp_blocks_namespace_and_mount_syscalls() {
    let s = Scratch::new();
    let out = ok(
        &s.runtime(),
        &s.spec(
            "grep Seccomp: /proc/self/status; \
             unshare -U true 2>&1 || echo unshare-refused; \
             mount -t tmpfs none /mnt 2>&1 || echo mount-refused",
        ),
    );
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains("unshare-refused"), "{out}");
    assert!(out.contains("mount-refused"), "{out}");
}

#[test]
fn bad_command_is_a_setup_error_or_127() {
    let s = Scratch::new();
    let mut spec = s.spec("");
    spec.args = vec!["no-such-program".into()];
    match run_with(&s.runtime(), &spec, &RunOptions::default()) {
        Err(RuntimeError::Setup { message }) => {
            assert!(message.contains("no-such-program"), "{message}")
        }
        Ok(r) => assert_eq!(r.outcome.status.code(), 127, "{}", r.stderr),
        Err(e) => panic!("{e}"),
    }
    s.assert_state_empty();
}

#[test]
fn runc_backend_runs_the_same_spec() {
    let s = Scratch::new();
    let rt = runtime_with(&s.path("state"), Backend::Oci(RUNC.into()));
    let r = run(
        &rt,
        &s.spec("echo out; echo err >&2; echo $$; ls /sys/class/net; exit 7"),
    );
    assert_eq!(r.stdout, "out\n1\nlo\n");
    assert_eq!(r.stderr, "err\n");
    assert_eq!(r.outcome.status, ExitStatus::Code(7));
    assert!(s.path("upper").read_dir().is_ok());
    let r = run_with(
        &rt,
        &s.spec("sleep 100"),
        &RunOptions {
            timeout: Some(Duration::from_millis(500)),
            cancel: None,
        },
    )
    .expect("run");
    assert!(r.outcome.timed_out);
    assert!(!r.outcome.status.success());
    s.assert_state_empty();
}

/// Not a test on its own: the process that `orphaned_container_*` start and kill.
/// Runs `sleep 1000` with the state dir from `HOIST_RT_ORPHAN_STATE`.
#[test]
#[ignore]
fn orphan_runner() {
    let Some(state) = std::env::var_os("HOIST_RT_ORPHAN_STATE") else {
        return;
    };
    let rt = runtime_with(Path::new(&state), Backend::Embedded);
    let s = Scratch::new();
    let mut spec = s.spec("sleep 1000");
    spec.hostname = "orphan".into();
    let _ = run_with(&rt, &spec, &RunOptions::default());
}

/// Start `orphan_runner` in a child process; returns it with the helper pid and
/// the container's init pid once the container runs.
fn start_orphan_runner(state: &Path) -> (std::process::Child, i32, i32) {
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["orphan_runner", "--exact", "--ignored", "--nocapture"])
        .env("HOIST_RT_ORPHAN_STATE", state)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start runner");
    let mut found = None;
    wait_until("the orphan runner's container", || {
        let Some(entry) = std::fs::read_dir(state).ok().and_then(|mut d| d.next()) else {
            return false;
        };
        let dir = entry.unwrap().path();
        let id = dir.file_name().unwrap().to_string_lossy().into_owned();
        let helper = std::fs::read_to_string(dir.join("helper.pid")).unwrap_or_default();
        let lc = std::fs::read_to_string(dir.join("lc").join(&id).join("state.json"))
            .unwrap_or_default();
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&lc) else {
            return false;
        };
        if v["status"] != "running" {
            return false;
        }
        let hp: i32 = helper.split_whitespace().next().unwrap().parse().unwrap();
        found = Some((hp, v["pid"].as_i64().unwrap() as i32));
        true
    });
    let (helper, init) = found.unwrap();
    assert!(alive(helper) && alive(init));
    (child, helper, init)
}

fn signal(pid: i32, sig: &str) {
    let st = Command::new("kill")
        .args(["-s", sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill -s {sig} {pid}");
}

#[test]
fn killed_helper_leaves_a_container_that_cleanup_stale_removes() {
    let s = Scratch::new();
    let state = s.path("state");
    let rt = runtime_with(&state, Backend::Embedded);
    let (mut runner, helper, init) = start_orphan_runner(&state);
    assert_eq!(
        rt.cleanup_stale().unwrap(),
        0,
        "a live container is not stale"
    );
    // Freeze hoist (so it cannot clean up itself), then kill its helper.
    signal(runner.id() as i32, "STOP");
    signal(helper, "KILL");
    wait_until("the helper to die", || !alive(helper));
    assert!(alive(init), "the container outlived its helper");
    assert_eq!(rt.cleanup_stale().unwrap(), 1);
    wait_until("the container to die", || !alive(init));
    s.assert_state_empty();
    let _ = runner.kill();
    let _ = runner.wait();
}

#[test]
fn parent_death_kills_the_container() {
    let s = Scratch::new();
    let state = s.path("state");
    let rt = runtime_with(&state, Backend::Embedded);
    let (mut runner, helper, init) = start_orphan_runner(&state);
    runner.kill().unwrap();
    runner.wait().unwrap();
    wait_until("the container to die with hoist", || !alive(init));
    wait_until("the helper to finish", || !alive(helper));
    // The helper deleted the container; only its state dir is left to remove.
    rt.cleanup_stale().unwrap();
    s.assert_state_empty();
}

/// Start-to-exit latency of `true`, embedded vs runc (run with --ignored).
#[test]
#[ignore]
fn latency_of_true() {
    let s = Scratch::new();
    let mut spec = s.spec("");
    spec.args = vec!["/bin/true".into()];
    for (name, backend) in [
        ("embedded", Backend::Embedded),
        ("runc", Backend::Oci(RUNC.into())),
    ] {
        let rt = runtime_with(&s.path("state"), backend);
        let mut times: Vec<Duration> = (0..21)
            .map(|_| {
                let t = Instant::now();
                ok(&rt, &spec);
                t.elapsed()
            })
            .collect();
        times.sort();
        println!(
            "{name}: median {:?} (min {:?}, max {:?})",
            times[10], times[0], times[20]
        );
    }
}
