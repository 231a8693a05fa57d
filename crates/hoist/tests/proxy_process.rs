//! `hoist proxy` as the controller sees it: a separate process following a JSON file,
//! watched through its admin API. Backends are small std HTTP servers on loopback;
//! every wait polls with a generous deadline, nothing passes or fails on timing.
#![allow(clippy::unwrap_used)]

mod util;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use util::Env;

const DEADLINE: Duration = Duration::from_secs(30);

/// Polls `f` every 20 ms until it gives `Some`; panics with `what` after 30 s.
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A backend answering every request with `name`, one connection at a time.
fn backend(name: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match stream.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{name}",
                name.len()
            );
        }
    });
    addr
}

/// `GET path` on `addr` over a fresh connection: (status, body).
fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(DEADLINE))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no head in {text:?}")))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    Ok((status, body.to_owned()))
}

/// A proxy configuration: one listener on an ephemeral port forwarding everything to
/// `group`, whose one target is `backend`.
fn config(generation: u64, group: &str, backend: &str) -> String {
    json!({
        "generation": generation,
        "listeners": [{"addr": "127.0.0.1:0",
                       "rules": [{"service": "web", "forward": [{"target_group": group}]}]}],
        "target_groups": [{"name": group, "targets": [{"tcp": backend}]}]
    })
    .to_string()
}

/// Replace `path` the way the controller does: temp file, then rename.
fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A running `hoist proxy`, killed on drop.
struct ProxyProcess {
    child: Child,
    dir: PathBuf,
    admin: String,
}

impl ProxyProcess {
    /// Start `hoist proxy` on `dir/config.json` with admin port 0; wait for
    /// `admin.addr`.
    fn start(env: &Env, dir: &Path) -> ProxyProcess {
        std::fs::create_dir_all(dir).unwrap();
        let log = std::fs::File::create(dir.join("proxy.log")).unwrap();
        let mut child = env
            .hoist()
            .args(["-v", "proxy", "--admin", "127.0.0.1:0", "--config"])
            .arg(dir.join("config.json"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let admin = eventually("admin.addr", || {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "hoist proxy exited ({status}) before serving:\n{}",
                    std::fs::read_to_string(dir.join("proxy.log")).unwrap_or_default()
                );
            }
            std::fs::read_to_string(dir.join("admin.addr"))
                .ok()
                .map(|s| s.trim().to_owned())
        });
        ProxyProcess {
            child,
            dir: dir.to_owned(),
            admin,
        }
    }

    fn admin_json(&self, path: &str) -> Value {
        let (status, body) = http_get(&self.admin, path).unwrap();
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    fn status(&self) -> Value {
        self.admin_json("/status")
    }

    /// Wait until `/status` reports `generation`; returns the status.
    fn wait_generation(&self, generation: u64) -> Value {
        eventually(&format!("generation {generation}"), || {
            let s = self.status();
            (s["generation"] == generation).then_some(s)
        })
    }

    /// The bound address of the listener configured as `127.0.0.1:0`.
    fn listener(&self) -> String {
        self.status()["listeners"]["127.0.0.1:0"]
            .as_str()
            .unwrap_or_else(|| panic!("no listener in {}", self.status()))
            .to_owned()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("proxy.log")).unwrap_or_default()
    }

    /// SIGTERM, then wait (generously) for the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let out = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .output()
            .unwrap();
        util::assert_success(&out, "kill -TERM");
        eventually("hoist proxy to exit after SIGTERM", || {
            self.child.try_wait().unwrap()
        })
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serves_what_the_file_says_and_follows_atomic_replacements() {
    let env = Env::new();
    let dir = env.path("proxy");
    let (blue, green) = (backend("blue"), backend("green"));
    std::fs::create_dir_all(&dir).unwrap();
    write_atomically(&dir.join("config.json"), &config(1, "blue", &blue));
    let proxy = ProxyProcess::start(&env, &dir);

    let status = proxy.wait_generation(1);
    assert_eq!(status["error"], Value::Null);
    assert_eq!(status["pid"], proxy.child.id());
    let listen = proxy.listener();
    assert_eq!(http_get(&listen, "/").unwrap(), (200, "blue".to_owned()));
    let targets = proxy.admin_json("/targets");
    assert_eq!(
        targets,
        json!([{"target_group": "blue", "endpoint": {"tcp": blue},
                "state": "healthy", "reason": null}])
    );

    write_atomically(&dir.join("config.json"), &config(2, "green", &green));
    proxy.wait_generation(2);
    assert_eq!(
        proxy.listener(),
        listen,
        "the listener is kept across applies"
    );
    assert_eq!(http_get(&listen, "/").unwrap(), (200, "green".to_owned()));
    let counts = proxy.admin_json("/counts");
    let blue_counts = counts
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["target_group"] == "blue")
        .unwrap_or_else(|| panic!("no blue counts in {counts}"));
    assert_eq!(blue_counts["service"], "web");
    assert_eq!(blue_counts["2xx"], 1);
    assert_eq!(blue_counts["total"], 1);
    assert!(proxy.admin_json("/draining").is_array());
}

#[test]
fn a_broken_file_keeps_the_old_config_and_status_names_the_line() {
    let env = Env::new();
    let dir = env.path("proxy");
    let blue = backend("blue");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.json");
    write_atomically(&path, &config(1, "blue", &blue));
    let proxy = ProxyProcess::start(&env, &dir);
    proxy.wait_generation(1);
    let listen = proxy.listener();

    // A typo on line 3: an unknown field.
    write_atomically(&path, "{\n  \"generation\": 2,\n  \"listners\": []\n}\n");
    let error = eventually("the rejection in /status", || {
        proxy.status()["error"].as_str().map(str::to_owned)
    });
    assert!(error.contains(&path.display().to_string()), "{error}");
    assert!(error.contains("unknown field `listners`"), "{error}");
    assert!(error.contains("line 3"), "{error}");
    assert_eq!(proxy.status()["generation"], 1);
    assert_eq!(http_get(&listen, "/").unwrap(), (200, "blue".to_owned()));
    assert!(proxy.log().contains("line 3"), "{}", proxy.log());

    // Fixed: applied, and the error is gone.
    write_atomically(&path, &config(3, "blue", &blue));
    let status = proxy.wait_generation(3);
    assert_eq!(status["error"], Value::Null);
    assert_eq!(http_get(&listen, "/").unwrap(), (200, "blue".to_owned()));
}

#[test]
fn a_second_proxy_on_the_same_directory_fails_with_a_clear_message() {
    let env = Env::new();
    let dir = env.path("proxy");
    let first = ProxyProcess::start(&env, &dir);
    let log = env.path("second.log");
    let mut second = env
        .hoist()
        .args(["proxy", "--admin", "127.0.0.1:0", "--config"])
        .arg(dir.join("config.json"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let exited = (0..1500).find_map(|_| {
        let status = second.try_wait().unwrap();
        if status.is_none() {
            std::thread::sleep(Duration::from_millis(20));
        }
        status
    });
    if exited.is_none() {
        let _ = second.kill();
        let _ = second.wait();
    }
    let stderr = std::fs::read_to_string(&log).unwrap();
    let status = exited.unwrap_or_else(|| panic!("the second proxy kept running:\n{stderr}"));
    assert!(!status.success(), "{status}");
    let want = format!(
        "another hoist proxy (pid {}) serves {}",
        first.child.id(),
        dir.display()
    );
    assert!(stderr.contains(&want), "want {want:?} in:\n{stderr}");
    // The first one is unaffected.
    assert_eq!(first.status()["pid"], first.child.id());
}

#[test]
fn sigterm_stops_accepting_and_exits_zero() {
    let env = Env::new();
    let dir = env.path("proxy");
    let blue = backend("blue");
    std::fs::create_dir_all(&dir).unwrap();
    write_atomically(&dir.join("config.json"), &config(1, "blue", &blue));
    let proxy = ProxyProcess::start(&env, &dir);
    proxy.wait_generation(1);
    let listen = proxy.listener();
    assert_eq!(http_get(&listen, "/").unwrap().0, 200);

    let status = proxy.terminate();
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(
        TcpStream::connect(&listen).is_err(),
        "still accepting on {listen}"
    );
    assert!(!dir.join("admin.addr").exists());
    // The lock went with the process: a new proxy starts on the same directory.
    let again = ProxyProcess::start(&env, &dir);
    again.wait_generation(1);
}

#[test]
fn keeps_serving_after_the_writer_is_gone() {
    let env = Env::new();
    let dir = env.path("proxy");
    let blue = backend("blue");
    // No file yet: an empty configuration, nothing listening.
    let proxy = ProxyProcess::start(&env, &dir);
    let status = proxy.status();
    assert_eq!(
        status,
        json!({"generation": 0, "error": null, "pid": proxy.child.id(), "listeners": {}})
    );

    // The writer is another process that replaces the file and exits.
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#"printf '%s' "$CONFIG" > "$DIR/.config.json.tmp" && mv "$DIR/.config.json.tmp" "$DIR/config.json""#)
        .env("CONFIG", config(5, "blue", &blue))
        .env("DIR", &dir)
        .output()
        .unwrap();
    util::assert_success(&out, "the writer");
    proxy.wait_generation(5);
    let listen = proxy.listener();
    assert_eq!(http_get(&listen, "/").unwrap(), (200, "blue".to_owned()));
    assert_eq!(
        http_get(&listen, "/again").unwrap(),
        (200, "blue".to_owned())
    );
}
