//! Detached tasks (hoist-runtime's `start`/`stop`/`tasks`): long-running containers
//! that outlive their starter, log to rotated json-file logs, live in their own
//! network namespace, and stop gracefully. Real `hoist` helper, busybox rootfs, root.
#![allow(clippy::unwrap_used)]

mod util;

use util::world::eventually;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hoist_runtime::logs::read_logs;
use hoist_runtime::{
    Backend, ContainerSpec, ExitStatus, Limits, Network, Rootfs, Runtime, Stream, TaskOptions,
    TaskState,
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
        env: vec![],
        cwd: "/".into(),
        user: String::new(),
        hostname: name.into(),
        network: Network::None,
        mounts: vec![],
        limits: Limits::default(),
        readonly_rootfs: false,
    }
}

fn parent_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// `wget` run inside the task's network namespace (nsenter), the way the proxy
/// reaches a task: no address, no bridge.
fn fetch_inside(netns: &Path, url: &str) -> Option<String> {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .args(["/bin/busybox", "wget", "-q", "-O", "-", url])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn check_task_lifecycle(backend: Backend) {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(&tmp.path().join("state"), backend);
    let script = "mkdir -p /www && echo hello from the task > /www/index.html; \
                  echo started; echo warming up >&2; \
                  trap 'echo got TERM; exit 7' TERM; \
                  httpd -f -p 127.0.0.1:8080 -h /www & \
                  while true; do sleep 0.2; done";
    let info = rt
        .start(&spec(tmp.path(), "web", script), &TaskOptions::default())
        .unwrap();
    assert_eq!(info.state, TaskState::Running);
    let helper = info.helper_pid.unwrap();
    assert_ne!(
        parent_of(helper),
        std::process::id() as i32,
        "the helper must not be the starter's child"
    );

    // Reachable inside its namespace only.
    let netns = info.netns.clone().unwrap();
    let mut body = None;
    let log_dir = info.log_dir.clone();
    let _dump = Dump(log_dir);
    eventually("httpd answers inside the task's namespace", || {
        body = fetch_inside(&netns, "http://127.0.0.1:8080/index.html");
        body.is_some()
    });
    assert_eq!(body.unwrap(), "hello from the task\n");
    assert!(
        std::net::TcpStream::connect("127.0.0.1:8080").is_err(),
        "the task's port must not be on the host's loopback"
    );

    // A second Runtime over the same state dir (a restarted controller) finds it.
    let again = runtime(&tmp.path().join("state"), Backend::Embedded);
    let listed = again.tasks().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, info.id);
    assert_eq!(listed[0].state, TaskState::Running);
    assert!(
        again.remove(&info.id).is_err(),
        "a running task cannot be removed"
    );

    eventually("both streams reach the log", || {
        let logs = read_logs(&info.log_dir).unwrap();
        logs.iter()
            .any(|e| e.log == "started\n" && e.stream == Stream::Stdout)
            && logs
                .iter()
                .any(|e| e.log == "warming up\n" && e.stream == Stream::Stderr)
    });

    // Graceful stop: the trap runs and sets the exit code.
    let stopped = again.stop(&info.id).unwrap();
    assert_eq!(stopped.state, TaskState::Exited(ExitStatus::Code(7)));
    assert!(stopped.netns.is_none());
    let logs = read_logs(&info.log_dir).unwrap();
    assert!(logs.iter().any(|e| e.log == "got TERM\n"), "{logs:?}");
    again.remove(&info.id).unwrap();
    assert!(again.tasks().unwrap().is_empty());
}

#[test]
fn embedded_task_runs_detached_logs_and_stops_gracefully() {
    check_task_lifecycle(Backend::Embedded);
}

#[test]
fn runc_task_runs_detached_logs_and_stops_gracefully() {
    check_task_lifecycle(Backend::Oci(PathBuf::from("/usr/sbin/runc")));
}

#[test]
fn stop_kills_a_task_that_ignores_sigterm_after_its_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(&tmp.path().join("state"), Backend::Embedded);
    let options = TaskOptions {
        stop_timeout: Duration::from_secs(1),
        ..TaskOptions::default()
    };
    let info = rt
        .start(
            &spec(
                tmp.path(),
                "stubborn",
                "trap '' TERM; while true; do sleep 0.2; done",
            ),
            &options,
        )
        .unwrap();
    let stopped = rt.stop(&info.id).unwrap();
    assert_eq!(stopped.state, TaskState::Exited(ExitStatus::Signal(9)));
}

#[test]
fn a_task_that_exits_reports_its_status_and_a_bad_one_fails_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(&tmp.path().join("state"), Backend::Embedded);
    let info = rt
        .start(
            &spec(tmp.path(), "short", "echo bye; exit 3"),
            &TaskOptions::default(),
        )
        .unwrap();
    eventually("the task exits", || {
        rt.task(&info.id).unwrap().state == TaskState::Exited(ExitStatus::Code(3))
    });
    assert_eq!(read_logs(&info.log_dir).unwrap()[0].log, "bye\n");

    let mut bad = spec(tmp.path(), "bad", "true");
    bad.user = "nosuchuser".into();
    let err = rt.start(&bad, &TaskOptions::default()).unwrap_err();
    assert!(err.to_string().contains("nosuchuser"), "{err}");
    // Only the exited task's state is left.
    assert_eq!(rt.tasks().unwrap().len(), 1);
}

/// A plain HTTP server on the host's 127.0.0.1 answering every request with one
/// fixed body, for as long as the test process lives.
fn host_http_server(body: &'static str) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let reply = format!(
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    port
}

/// Live processes whose command line names `needle` (zombies have none).
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

/// The first log line starting with `prefix`, once it is there.
fn log_line(log_dir: &Path, prefix: &str) -> String {
    let mut found = None;
    eventually(&format!("the task logs {prefix:?}"), || {
        found = read_logs(log_dir)
            .unwrap()
            .into_iter()
            .find(|e| e.log.starts_with(prefix))
            .map(|e| e.log);
        found.is_some()
    });
    found.unwrap().trim_end().to_owned()
}

/// A network namespace of the test's own, joined to the host by a veth pair
/// (`10.231.N.1` on the host, `10.231.N.2` inside), with busybox httpd serving one
/// body inside: a peer outside the host's loopback that a task with outbound
/// network reaches through pasta. Removed when dropped.
struct Peer {
    name: String,
    host_if: String,
    addr: String,
    httpd: std::process::Child,
    _www: tempfile::TempDir,
}

impl Peer {
    fn start(n: u8, body: &str) -> Peer {
        let name = format!("hoist-peer-{}-{n}", std::process::id());
        let host_if = format!("hp{}-{n}", std::process::id() % 100_000);
        let ip = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().unwrap();
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let (host_addr, peer_addr) = (format!("10.231.{n}.1"), format!("10.231.{n}.2"));
        ip(&["netns", "add", &name]);
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", "eth0", "netns", &name,
        ]);
        ip(&["addr", "add", &format!("{host_addr}/30"), "dev", &host_if]);
        ip(&["link", "set", &host_if, "up"]);
        ip(&[
            "-n",
            &name,
            "addr",
            "add",
            &format!("{peer_addr}/30"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", &name, "link", "set", "eth0", "up"]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        let www = tempfile::tempdir().unwrap();
        std::fs::write(www.path().join("index.html"), body).unwrap();
        let httpd = Command::new("ip")
            .args(["netns", "exec", &name, "/bin/busybox", "httpd", "-f"])
            .args(["-p", &format!("{peer_addr}:8080"), "-h"])
            .arg(www.path())
            .spawn()
            .unwrap();
        let peer = Peer {
            name,
            host_if,
            addr: format!("{peer_addr}:8080"),
            httpd,
            _www: www,
        };
        eventually("the peer's httpd answers", || {
            std::net::TcpStream::connect(&peer.addr).is_ok()
        });
        peer
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.httpd.kill();
        let _ = self.httpd.wait();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

fn check_outbound_network(backend: Backend, n: u8) {
    let peer = Peer::start(n, "hello from the peer");
    // A server on the host's own loopback: not for tasks to reach.
    let loopback_port = host_http_server("host loopback");
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let rt = runtime(&state, backend);
    // (busybox wget's own -T crashes; `timeout` bounds it instead.)
    let script = format!(
        "if timeout 20 wget -q -O /tmp/body http://{peer}/; then echo \"body: $(cat /tmp/body)\"; \
         else echo 'body: none'; fi; \
         gw=$(ip route | awk '/^default/ {{print $3; exit}}'); \
         if timeout 5 wget -q -O /tmp/lo http://$gw:{loopback_port}/; then echo \"loopback: $(cat /tmp/lo)\"; \
         else echo 'loopback: none'; fi; \
         echo \"resolv: $(grep nameserver /etc/resolv.conf)\"; \
         mkdir -p /www && echo inside > /www/index.html; \
         httpd -f -p 127.0.0.1:8080 -h /www & \
         trap 'exit 0' TERM; while true; do sleep 0.2; done",
        peer = peer.addr
    );
    let mut outbound = spec(tmp.path(), "out", &script);
    outbound.network = Network::Outbound;
    let info = rt.start(&outbound, &TaskOptions::default()).unwrap();
    let _stop = StopOnPanic(&rt, info.id.clone());
    let _dump = Dump(info.log_dir.clone());
    assert_eq!(info.state, TaskState::Running);

    assert_eq!(
        log_line(&info.log_dir, "body: "),
        "body: hello from the peer"
    );
    // pasta does not map the gateway to the host's loopback (`--no-map-gw`): the
    // proxy's admin API, a loopback registry and the like stay out of reach.
    assert_eq!(log_line(&info.log_dir, "loopback: "), "loopback: none");
    assert_eq!(
        log_line(&info.log_dir, "resolv: "),
        "resolv: nameserver 169.254.1.1"
    );

    // Still reachable from outside through its own namespace, and only there.
    let netns = info.netns.clone().unwrap();
    let mut body = None;
    eventually("httpd answers inside the task's namespace", || {
        body = fetch_inside(&netns, "http://127.0.0.1:8080/index.html");
        body.is_some()
    });
    assert_eq!(body.unwrap(), "inside\n");
    assert!(std::net::TcpStream::connect("127.0.0.1:8080").is_err());

    // One pasta serves the task while it runs, none after it stopped.
    let task_dir = state.canonicalize().unwrap().join(&info.id);
    let pasta_cmdline = format!("--log-file\0{}", task_dir.join("pasta.log").display());
    let pastas = processes_naming(&pasta_cmdline);
    assert_eq!(pastas.len(), 1, "one pasta for the task: {pastas:?}");
    let stopped = rt.stop(&info.id).unwrap();
    assert_eq!(stopped.state, TaskState::Exited(ExitStatus::Code(0)));
    assert!(stopped.netns.is_none());
    let left = processes_naming(&pasta_cmdline);
    assert!(left.is_empty(), "pasta outlived its task: {left:?}");
    rt.remove(&info.id).unwrap();

    // Without Outbound, the same peer is unreachable.
    let script = format!(
        "if timeout 20 wget -q -O /tmp/body http://{}/; then echo 'body: reached'; \
         else echo 'body: none'; fi",
        peer.addr
    );
    let isolated = rt
        .start(&spec(tmp.path(), "none", &script), &TaskOptions::default())
        .unwrap();
    assert_eq!(log_line(&isolated.log_dir, "body: "), "body: none");
}

#[test]
fn embedded_task_with_outbound_network_reaches_a_peer_through_pasta_but_not_host_loopback() {
    check_outbound_network(Backend::Embedded, 1);
}

#[test]
fn runc_task_with_outbound_network_reaches_a_peer_through_pasta_but_not_host_loopback() {
    check_outbound_network(Backend::Oci(PathBuf::from("/usr/sbin/runc")), 2);
}

/// Stops a task when its test fails, so neither it nor its pasta outlives the test.
struct StopOnPanic<'a>(&'a Runtime, String);
impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.stop(&self.1);
        }
    }
}

struct Dump(PathBuf);
impl Drop for Dump {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("task log: {:?}", read_logs(&self.0));
        }
    }
}
