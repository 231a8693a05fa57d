//! `Runtime::exec` into running tasks and the Docker-style health probe a task's
//! helper runs through it. Real `hoist` helper, busybox rootfs, root; both
//! backends for exec.
#![allow(clippy::unwrap_used)]

mod util;

use util::world::eventually;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hoist_runtime::{
    Backend, ContainerSpec, ExecOptions, ExitStatus, HealthStatus, Limits, Network, Probe,
    ProbeCommand, Rootfs, Runtime, TaskOptions, TaskState,
};
use util::task_runtime as runtime;

fn spec(dir: &Path, name: &str, script: &str) -> ContainerSpec {
    let upper = dir.join(format!("{name}-upper"));
    let work = dir.join(format!("{name}-work"));
    std::fs::create_dir_all(&upper).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    ContainerSpec {
        rootfs: Rootfs::Overlay {
            lowers: vec![util::busybox_rootfs()],
            upper,
            work,
        },
        args: vec!["/bin/sh".into(), "-c".into(), script.into()],
        env: vec!["GREETING=hello from the task env".into()],
        cwd: "/tmp".into(),
        user: "1234:5678".into(),
        hostname: name.into(),
        network: Network::None,
        mounts: vec![],
        limits: Limits::default(),
        readonly_rootfs: false,
    }
}

fn sh(line: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), line.into()]
}

/// Stops a task when the test ends, passing or not.
struct Stop<'a>(&'a Runtime, String);
impl Drop for Stop<'_> {
    fn drop(&mut self) {
        let _ = self.0.stop(&self.1);
        let _ = self.0.remove(&self.1);
    }
}

/// Processes whose command line holds `needle`.
fn processes_naming(needle: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .collect()
}

fn check_exec(backend: Backend) {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(&tmp.path().join("state"), backend);
    let script = "echo made by the task > /tmp/mark; while true; do sleep 0.2; done";
    let options = TaskOptions {
        stop_timeout: Duration::from_secs(1),
        ..TaskOptions::default()
    };
    let info = rt
        .start(&spec(tmp.path(), "box", script), &options)
        .unwrap();
    let _stop = Stop(&rt, info.id.clone());
    eventually("the task wrote its mark", || {
        rt.exec(&info.id, &sh("test -f /tmp/mark"), &ExecOptions::default())
            .is_ok_and(|o| o.status.success())
    });

    // The task's root, hostname, user, working directory and environment.
    let o = rt
        .exec(
            &info.id,
            &sh(
                "cat /tmp/mark; hostname; id -u; id -g; pwd; echo $GREETING; echo oops >&2; exit 3",
            ),
            &ExecOptions::default(),
        )
        .unwrap();
    assert_eq!(o.status, ExitStatus::Code(3));
    assert!(!o.timed_out);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "made by the task\nbox\n1234\n5678\n/tmp\nhello from the task env\n"
    );
    assert_eq!(String::from_utf8_lossy(&o.stderr), "oops\n");
    // Its PID namespace: the task's shell is pid 1 there.
    let o = rt
        .exec(
            &info.id,
            &sh("cat /proc/1/cmdline"),
            &ExecOptions::default(),
        )
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("made by the task"),
        "{:?}",
        String::from_utf8_lossy(&o.stdout)
    );

    // argv without a shell, looked up through PATH; a missing program fails.
    let o = rt
        .exec(
            &info.id,
            &["echo".into(), "a  b".into()],
            &ExecOptions::default(),
        )
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "a  b\n");

    // Output is bounded.
    let small = ExecOptions {
        max_output: 1000,
        ..ExecOptions::default()
    };
    let o = rt
        .exec(&info.id, &sh("yes | head -c 100000"), &small)
        .unwrap();
    assert!(o.status.success());
    assert_eq!(o.stdout.len(), 1000);
    assert!(o.truncated);

    // The timeout kills the process.
    let quick = ExecOptions {
        timeout: Duration::from_millis(500),
        ..ExecOptions::default()
    };
    let o = rt
        .exec(&info.id, &sh("echo before; exec sleep 1234"), &quick)
        .unwrap();
    assert!(o.timed_out);
    assert!(!o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "before\n");
    let o = rt
        .exec(&info.id, &sh("ps"), &ExecOptions::default())
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("sleep 1234"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // Only a running task.
    rt.stop(&info.id).unwrap();
    let err = rt
        .exec(&info.id, &sh("true"), &ExecOptions::default())
        .unwrap_err();
    assert!(err.to_string().contains("not running"), "{err}");
    assert!(rt
        .exec(
            "hoist-0000000000000000",
            &sh("true"),
            &ExecOptions::default()
        )
        .is_err());
    // Nothing left behind in the state dir.
    let left: Vec<String> = std::fs::read_dir(tmp.path().join("state").join(&info.id))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("exec-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn embedded_exec_runs_in_the_tasks_container_with_a_timeout() {
    check_exec(Backend::Embedded);
}

#[test]
fn runc_exec_runs_in_the_tasks_container_with_a_timeout() {
    check_exec(Backend::Oci(PathBuf::from("/usr/sbin/runc")));
}

#[test]
fn the_helper_probes_a_task_and_records_dockers_health() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let rt = runtime(&state, Backend::Embedded);
    let options = TaskOptions {
        stop_timeout: Duration::from_secs(2),
        health: Some(Probe {
            command: ProbeCommand::Shell("echo checking; test -f /tmp/ok".into()),
            interval: Duration::from_millis(200),
            timeout: Duration::from_secs(5),
            start_period: Duration::ZERO,
            retries: 2,
            start_interval: None,
        }),
        ..TaskOptions::default()
    };
    let info = rt
        .start(
            &spec(tmp.path(), "probed", "while true; do sleep 0.2; done"),
            &options,
        )
        .unwrap();
    let _stop = Stop(&rt, info.id.clone());
    let dir = state.canonicalize().unwrap().join(&info.id);
    let file = info.health_file.clone().unwrap();
    assert_eq!(file, rt.health_file(&info.id));

    // The probe fails: two failures in a row make it unhealthy.
    eventually("the task is unhealthy", || {
        rt.task(&info.id)
            .and_then(|t| t.health)
            .is_some_and(|h| h.status == HealthStatus::Unhealthy)
    });
    let h = rt.task(&info.id).unwrap().health.unwrap();
    assert!(h.failing_streak >= 2, "{h:?}");
    let last = h.log.last().unwrap();
    assert_eq!(last.exit_code, 1);
    assert_eq!(last.output, "checking\n");
    // The file is Docker's State.Health.
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(v["Status"], "unhealthy");

    // A created file heals it; the probe goes on, nobody but the helper asking
    // (here through another Runtime over the same state dir).
    let other = runtime(&state, Backend::Embedded);
    other
        .exec(&info.id, &sh("touch /tmp/ok"), &ExecOptions::default())
        .unwrap();
    eventually("the task is healthy", || {
        rt.task(&info.id)
            .and_then(|t| t.health)
            .is_some_and(|h| h.status == HealthStatus::Healthy && h.failing_streak == 0)
    });

    // Old notify sockets of libcontainer's execs are swept: back-date them and
    // probe once more.
    let lc = dir.join("lc").join(&info.id);
    let sockets = || -> Vec<PathBuf> {
        std::fs::read_dir(&lc)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("tenant-notify-")
            })
            .collect()
    };
    let old = sockets();
    assert!(!old.is_empty());
    for p in &old {
        let st = Command::new("touch").args(["-d", "@0"]).arg(p).status();
        assert!(st.unwrap().success());
    }
    rt.exec(&info.id, &sh("true"), &ExecOptions::default())
        .unwrap();
    let left = sockets();
    assert!(old.iter().all(|p| !left.contains(p)), "{old:?} {left:?}");

    // Stopping the task ends its probe process.
    let probe = |dir: &Path| {
        processes_naming("--health").into_iter().any(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&*dir.to_string_lossy()))
        })
    };
    assert!(probe(&dir), "the probe process runs");
    let stopped = rt.stop(&info.id).unwrap();
    assert!(matches!(stopped.state, TaskState::Exited(_)));
    eventually("the probe process is gone", || !probe(&dir));
}
