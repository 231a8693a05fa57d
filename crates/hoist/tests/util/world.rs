//! The deployment world shared by the deploy test binaries: the real `hoist proxy`
//! and `hoist daemon` processes over one test home, images of busybox httpd built by
//! `hoist build`, and a load generator counting failed requests.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Env;

/// A background `hoist` process killed when dropped.
pub struct Proc {
    child: Child,
}

impl Proc {
    pub fn spawn(env: &Env, args: &[&str], log: &str) -> Proc {
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

    pub fn kill9(&mut self) {
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
pub struct World {
    pub daemon: Option<Proc>,
    pub proxy: Option<Proc>,
    pub port: u16,
    // Last: the directory goes after the processes using it.
    pub env: Env,
}

impl World {
    pub fn new() -> World {
        let env = Env::new();
        env.import_busybox("busybox");
        World {
            env,
            proxy: None,
            daemon: None,
            port: super::free_port(),
        }
    }

    /// A world with these images (`(name, body, healthy)`, see [`World::image`])
    /// and a proxy and a daemon running.
    pub fn running(images: &[(&str, &str, bool)]) -> World {
        let mut w = World::new();
        for (name, body, healthy) in images {
            w.image(name, body, *healthy);
        }
        w.start_proxy();
        w.start_daemon();
        w
    }

    /// Builds `name` serving `body` at `/` and, when `healthy`, `ok` at `/healthz`.
    /// Its init is a shell that exits on `SIGTERM` (httpd as PID 1 would ignore
    /// it and wait out the stop timeout).
    pub fn image(&self, name: &str, body: &str, healthy: bool) {
        let health = if healthy {
            " && echo ok > /www/healthz"
        } else {
            ""
        };
        self.build(
            name,
            &format!(
                "FROM busybox\nRUN mkdir -p /www && echo '{body}' > /www/index.html{health}\nEXPOSE 8080\nCMD [\"sh\", \"-c\", \"trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait\"]\n"
            ),
        );
    }

    /// Builds `name` from `dockerfile` (a context holding only it).
    pub fn build(&self, name: &str, dockerfile: &str) {
        let ctx = self.env.path(&format!("ctx-{}", name.replace(':', "-")));
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
        self.env.ok(&[
            "build",
            ctx.to_str().unwrap(),
            "-t",
            name,
            "--progress",
            "quiet",
        ]);
    }

    pub fn proxy_config(&self) -> PathBuf {
        self.env.home().join("proxy/config.json")
    }

    pub fn start_proxy(&mut self) {
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

    pub fn start_daemon(&mut self) {
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

    pub fn service_file(&self, name: &str, extra: &str) -> PathBuf {
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

    pub fn deploy(&self, file: &Path, image: &str) -> std::process::Output {
        self.env
            .hoist()
            .args(["deploy", file.to_str().unwrap(), "--image", image])
            .output()
            .unwrap()
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn tasks(&self, service: &str) -> Vec<serde_json::Value> {
        let out = self.env.ok(&["--json", "service", "ps", service]);
        serde_json::from_str(&out).unwrap()
    }

    pub fn log(&self, name: &str) -> String {
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
        // The registry `hoist up` started in the background, while it runs (its
        // lock held, so the pid in it is its own).
        let registry = self.env.home().join("registry");
        if hoist_registry::announce::serving(&registry).is_none() {
            return;
        }
        if let Ok(pid) = std::fs::read_to_string(registry.join("serve.lock")) {
            let _ = std::process::Command::new("kill")
                .args(["-9", pid.trim()])
                .status();
        }
    }
}

impl World {
    /// The pipeline's runs, newest first (`hoist --json runs ls`).
    pub fn runs(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.env.ok(&["--json", "runs", "ls"])).unwrap()
    }
}

/// A run's stages as (name, status), in order.
pub fn run_stages(run: &serde_json::Value) -> Vec<(String, String)> {
    run["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One GET through the proxy: (status, body), or None when the connection failed.
pub fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
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

pub fn body(addr: SocketAddr) -> Option<String> {
    match get(addr, "/") {
        Some((200, b)) => Some(b.trim().to_owned()),
        _ => None,
    }
}

pub fn assert_ok(out: &std::process::Output, what: &str, w: &World) {
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
pub struct Load {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Result<String, String>>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    pub fn start(addr: SocketAddr) -> Load {
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

    pub fn finish(mut self) -> Vec<Result<String, String>> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// examples/hello's static binary in examples/hello/dist/hello, built by its
/// build.sh once per test process into a fixed dir under the target dir (later
/// builds, in other test processes too, are cargo no-ops).
pub fn build_hello() {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        // CARGO_BIN_EXE_hoist is <target>/<profile>/hoist.
        let exe = Path::new(env!("CARGO_BIN_EXE_hoist"));
        let target = exe
            .parent()
            .and_then(Path::parent)
            .map(|t| t.join("hello-example"))
            .unwrap();
        let out = std::process::Command::new("bash")
            .arg(super::root().join("examples/hello/build.sh"))
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .unwrap();
        super::assert_success(&out, "examples/hello/build.sh");
    });
}

/// The version in a hello answer (`hello version=2 host=...`).
pub fn hello_version(body: &str) -> Option<&str> {
    body.split_whitespace()
        .find_map(|w| w.strip_prefix("version="))
}

impl World {
    /// `hoist build examples/hello -t hello:dev`, the binary built first.
    pub fn hello_image(&self) {
        build_hello();
        let ctx = super::root().join("examples/hello");
        self.env.ok(&[
            "build",
            ctx.to_str().unwrap(),
            "-t",
            "hello:dev",
            "--progress",
            "quiet",
        ]);
    }

    /// A world with the hello image and a proxy and a daemon running.
    pub fn hello() -> World {
        let mut w = World::new();
        w.hello_image();
        w.start_proxy();
        w.start_daemon();
        w
    }

    /// A service file running hello:dev with `count` tasks and `env` (e.g.
    /// `HELLO_VERSION`), health-checked on `/health` every 500 ms, plus `extra`
    /// lines. Each call writes a new file.
    pub fn hello_file(&self, name: &str, count: u32, env: &[(&str, &str)], extra: &str) -> PathBuf {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = self.env.path(&format!("{name}-{n}.yml"));
        let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}: \"{v}\"")).collect();
        std::fs::write(
            &path,
            format!(
                "name: {name}\nimage: hello:dev\ncount: {count}\nstop_timeout: 2s\nenv: {{{}}}\nhealth_check: {{path: /health, interval: 500ms, timeout: 400ms, healthy_threshold: 2, unhealthy_threshold: 2}}\nlistener: {{addr: 127.0.0.1:{}}}\n{extra}",
                env.join(", "),
                self.port
            ),
        )
        .unwrap();
        path
    }

    /// `hoist deploy FILE --detach` (the image the file names).
    pub fn deploy_detached(&self, file: &Path) -> std::process::Output {
        self.env
            .hoist()
            .args(["deploy", file.to_str().unwrap(), "--detach"])
            .output()
            .unwrap()
    }

    /// `hoist --json service ps --all SERVICE`: ended tasks too.
    pub fn tasks_all(&self, service: &str) -> Vec<serde_json::Value> {
        let out = self.env.ok(&["--json", "service", "ps", "--all", service]);
        serde_json::from_str(&out).unwrap()
    }

    /// `hoist --json service events SERVICE`, one JSON object per event.
    pub fn events(&self, service: &str) -> Vec<serde_json::Value> {
        self.env
            .ok(&["--json", "service", "events", service])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The service's row of `hoist --json service ls`.
    pub fn service_row(&self, service: &str) -> serde_json::Value {
        let ls = self.env.ok(&["--json", "service", "ls"]);
        let ls: serde_json::Value = serde_json::from_str(&ls).unwrap();
        ls.as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == service)
            .cloned()
            .unwrap_or_default()
    }

    /// The pid of a task's runtime helper (from its state dir's `helper.pid`), and
    /// of every process under it (the container's init and its children).
    pub fn task_pids(&self, runtime_id: &str) -> Vec<i32> {
        let file = self
            .env
            .home()
            .join("deploy/tasks")
            .join(runtime_id)
            .join("helper.pid");
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let Some(helper) = text.split_whitespace().next().and_then(|p| p.parse().ok()) else {
            return Vec::new();
        };
        let mut out = vec![helper];
        let mut i = 0;
        while i < out.len() {
            let pid = out[i];
            let tasks = std::fs::read_dir(format!("/proc/{pid}/task"));
            for t in tasks.into_iter().flatten().flatten() {
                let children = std::fs::read_to_string(t.path().join("children"));
                out.extend(
                    children
                        .unwrap_or_default()
                        .split_whitespace()
                        .filter_map(|c| c.parse::<i32>().ok()),
                );
            }
            i += 1;
        }
        out.sort_unstable();
        out.dedup();
        // Only live processes count.
        out.retain(|p| Path::new(&format!("/proc/{p}")).exists());
        out
    }
}

/// Milliseconds since the Unix epoch, as the state database records times.
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// One request of a [`PacedLoad`]: when it was sent and answered (Unix ms) and the
/// body of a 200, else what went wrong.
#[derive(Clone, Debug)]
pub struct Sample {
    pub sent: i64,
    pub done: i64,
    pub result: Result<String, String>,
}

/// Requests at a steady target rate from several threads, each on a fresh
/// connection, every answer recorded with its time.
pub struct PacedLoad {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl PacedLoad {
    /// `rate` requests per second in all, spread over `threads` threads.
    pub fn start(addr: SocketAddr, rate: u32, threads: u32) -> PacedLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let period = Duration::from_secs(1) * threads / rate;
        let begin = Instant::now();
        let threads = (0..threads)
            .map(|i| {
                let (stop, samples) = (stop.clone(), samples.clone());
                let mut next = begin + period * i / threads.max(1);
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let now = Instant::now();
                        if next > now {
                            std::thread::sleep(next - now);
                        } else if now - next > period * 4 {
                            // Far behind (a slow answer): do not burst to catch up.
                            next = now;
                        }
                        next += period;
                        let sent = unix_ms();
                        let result = request(addr, "/");
                        let done = unix_ms();
                        samples.lock().unwrap().push(Sample { sent, done, result });
                    }
                })
            })
            .collect();
        PacedLoad {
            stop,
            samples,
            threads,
        }
    }

    /// Requests answered so far.
    pub fn sent(&self) -> usize {
        self.samples.lock().unwrap().len()
    }

    /// Stops and returns every sample, in the order answered.
    pub fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
        let mut s = std::mem::take(&mut *self.samples.lock().unwrap());
        s.sort_by_key(|s| s.done);
        s
    }
}

impl Drop for PacedLoad {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One GET: the body of a 200, else the status and body or the I/O error.
pub fn request(addr: SocketAddr, path: &str) -> Result<String, String> {
    let run = || -> std::io::Result<String> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n"
        )?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    let text = run().map_err(|e| format!("connection: {e}"))?;
    let status = text.split_whitespace().nth(1).unwrap_or("");
    let body = text
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or("")
        .trim()
        .to_owned();
    if status == "200" {
        Ok(body)
    } else {
        Err(format!("status {status:?}: {body}"))
    }
}
