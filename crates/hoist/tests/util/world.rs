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
                "FROM busybox\nRUN mkdir -p /www && echo '{body}' > /www/index.html{health}\nEXPOSE 8080\nCMD [\"sh\", \"-c\", \"trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait\"]\n"
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
    }
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
