//! The proxy as its own process: [`run_from_file`] serves what a JSON file says and
//! follows the file as it changes, so the controller can stop, crash or restart while
//! traffic keeps flowing.
//!
//! # The file contract
//!
//! - The configuration is one JSON file (the serde form of [`Config`]); the writer
//!   replaces it atomically, by writing a temp file in the same directory and renaming
//!   it over the old one ([`write_config`] does that).
//! - The proxy re-reads the file when its identity changes (device, inode, mtime,
//!   ctime, length; polled every [`POLL_INTERVAL`]), on `SIGHUP`, and every 5 s in any
//!   case; it applies the content only when the bytes differ from the last read (or on
//!   `SIGHUP`, which also retries a configuration whose apply failed).
//! - A missing file at start is an empty configuration (no listeners). A file that
//!   disappears later is reported and ignored: the last configuration keeps serving.
//! - A file that does not parse or cannot be applied (a listener cannot bind, a rule
//!   names a missing group) is logged with its reason, `GET /status` shows the reason
//!   in `error`, and the last good configuration keeps serving. Parse errors name the
//!   file, line and column.
//! - Next to the file, in the same directory: `proxy.lock` ([`LOCK_FILE`]) is held
//!   with an exclusive `flock` for the life of the process and holds its pid, so a
//!   second proxy on the same directory fails at once; `admin.addr`
//!   ([`ADMIN_ADDR_FILE`]) holds the bound admin address (`127.0.0.1:7947\n`), written
//!   atomically after the first configuration was applied and the admin listener bound,
//!   and removed at a clean stop.
//! - At shutdown the proxy stops accepting, lets requests in flight finish for up to
//!   the configuration's `drain_timeout_ms`, and returns.

use std::fs;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

use crate::{Config, Proxy};

/// File next to the configuration holding the bound admin address, as text.
pub const ADMIN_ADDR_FILE: &str = "admin.addr";

/// File next to the configuration that the running proxy holds an exclusive `flock` on.
pub const LOCK_FILE: &str = "proxy.lock";

/// How often the file's identity is checked.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Polls between unconditional re-reads (25 × 200 ms = 5 s), which catch a replacement
/// that happens to keep inode, length and timestamps.
const POLLS_PER_REREAD: u32 = 25;

/// A configuration file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigFileError {
    /// Reading failed.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// The content is not a valid configuration; serde_json's message ends with `at
    /// line L column C`.
    #[error("{}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parse error, with its line and column.
        #[source]
        source: serde_json::Error,
    },
}

impl ConfigFileError {
    /// Line and column (1-based) of a parse error.
    pub fn line_column(&self) -> Option<(usize, usize)> {
        match self {
            ConfigFileError::Parse { source, .. } => Some((source.line(), source.column())),
            ConfigFileError::Read { .. } => None,
        }
    }
}

/// Why [`run_from_file`] could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// Another process holds the lock of this configuration directory.
    #[error("another hoist proxy ({}) serves {}", pid.map_or_else(|| "pid unknown".to_owned(), |p| format!("pid {p}")), dir.display())]
    AlreadyRunning {
        /// The configuration directory.
        dir: PathBuf,
        /// The pid written in its lock file, when readable.
        pid: Option<u32>,
    },
    /// A file or directory next to the configuration could not be made or written.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "cannot lock".
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// The proxy could not start (runtime, worker threads, admin listener).
    #[error(transparent)]
    Proxy(#[from] crate::Error),
}

/// Parses a configuration file's content; `path` names the file in errors.
pub fn parse_config(path: &Path, bytes: &[u8]) -> Result<Config, ConfigFileError> {
    serde_json::from_slice(bytes).map_err(|source| ConfigFileError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// Reads and parses the configuration file; `Ok(None)` when it does not exist.
pub fn read_config(path: &Path) -> Result<Option<Config>, ConfigFileError> {
    match fs::read(path) {
        Ok(bytes) => parse_config(path, &bytes).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigFileError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes `config` to `path` as pretty JSON, atomically: a temp file in the same
/// directory, flushed to disk, renamed over `path`. A running proxy sees either the
/// old or the new file, never a partial one.
pub fn write_config(path: &Path, config: &Config) -> io::Result<()> {
    let mut text = serde_json::to_string_pretty(config).map_err(io::Error::other)?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other(format!("{} names no file", path.display())))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The directory holding the configuration file (and the lock and address files).
fn config_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Takes the directory's lock and writes our pid into it; the lock lasts as long as
/// the returned file is open.
fn lock(dir: &Path) -> Result<fs::File, WatchError> {
    let path = dir.join(LOCK_FILE);
    let io_err = |what, source| WatchError::Io {
        what,
        path: path.clone(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io_err("cannot open", e))?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0)
                .and_then(|()| file.write_all(format!("{}\n", std::process::id()).as_bytes()))
                .and_then(|()| file.flush())
                .map_err(|e| io_err("cannot write", e))?;
            Ok(file)
        }
        Err(fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            Err(WatchError::AlreadyRunning {
                dir: dir.to_owned(),
                pid: text.trim().parse().ok(),
            })
        }
        Err(fs::TryLockError::Error(e)) => Err(io_err("cannot lock", e)),
    }
}

/// What the file looked like at the last read.
#[derive(PartialEq, Eq)]
enum Seen {
    /// Not read yet.
    Nothing,
    Missing,
    Unreadable(String),
    Bytes(Vec<u8>),
}

/// Identity of the file: a rename-replace changes the inode, an in-place write the
/// mtime or length.
#[derive(PartialEq, Eq, Clone, Copy)]
struct FileId {
    dev: u64,
    ino: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    len: u64,
}

fn file_id(path: &Path) -> Option<FileId> {
    let m = fs::metadata(path).ok()?;
    Some(FileId {
        dev: m.dev(),
        ino: m.ino(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
        len: m.size(),
    })
}

struct Watcher<'a> {
    path: &'a Path,
    proxy: &'a Proxy,
    id: Option<FileId>,
    seen: Seen,
    polls: u32,
    /// `drain_timeout` of the configuration being served, for the shutdown drain.
    drain_timeout: Duration,
}

impl Watcher<'_> {
    /// Looks at the file and applies it if it changed (always with `force`).
    fn poll(&mut self, force: bool) {
        self.polls = self.polls.wrapping_add(1);
        let id = file_id(self.path);
        let reread = self.polls.is_multiple_of(POLLS_PER_REREAD);
        if !force && !reread && id == self.id && self.seen != Seen::Nothing {
            return;
        }
        self.id = id;
        let seen = match fs::read(self.path) {
            Ok(bytes) => Seen::Bytes(bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Seen::Missing,
            Err(e) => Seen::Unreadable(e.to_string()),
        };
        if !force && seen == self.seen {
            return;
        }
        let first = self.seen == Seen::Nothing;
        match &seen {
            Seen::Nothing => {}
            Seen::Missing if first => {
                tracing::info!(path = %self.path.display(), "no configuration file yet: serving nothing until it appears");
                self.apply(Config::default());
            }
            Seen::Missing => {
                let reason = format!(
                    "{} is missing; still serving generation {}",
                    self.path.display(),
                    self.proxy.applied_generation()
                );
                tracing::warn!("{reason}");
                self.proxy.reject(reason);
            }
            Seen::Unreadable(e) => {
                let reason = format!("cannot read {}: {e}", self.path.display());
                tracing::error!("{reason}; the last good configuration keeps serving");
                self.proxy.reject(reason);
            }
            Seen::Bytes(bytes) => {
                match parse_config(self.path, bytes) {
                    Ok(config) => self.apply(config),
                    Err(e) => {
                        tracing::error!("rejected configuration: {e}; the last good configuration keeps serving");
                        self.proxy.reject(e.to_string());
                    }
                }
            }
        }
        self.seen = seen;
    }

    fn apply(&mut self, config: Config) {
        let generation = config.generation;
        let drain_timeout = config.drain_timeout;
        match self.proxy.apply(config) {
            Ok(()) => {
                self.drain_timeout = drain_timeout;
                tracing::info!(generation, path = %self.path.display(), "applied configuration");
            }
            Err(e) => tracing::error!(
                generation,
                path = %self.path.display(),
                error = %e,
                "cannot apply configuration; the last good configuration keeps serving"
            ),
        }
    }
}

/// Runs a proxy from the configuration file at `path` until `shutdown` completes (see
/// the module documentation for the contract): takes the directory's lock, applies the
/// file, serves the admin API on `admin` (port 0 picks one; it is written to
/// `admin.addr`), then follows the file. `workers` is as in [`Proxy::with_workers`].
/// Installs a `SIGHUP` handler. Must run inside a Tokio runtime.
pub async fn run_from_file(
    path: &Path,
    admin: SocketAddr,
    workers: usize,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WatchError> {
    let dir = config_dir(path);
    fs::create_dir_all(&dir).map_err(|source| WatchError::Io {
        what: "cannot create",
        path: dir.clone(),
        source,
    })?;
    let _lock = lock(&dir)?;
    let addr_file = dir.join(ADMIN_ADDR_FILE);
    match fs::remove_file(&addr_file) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(WatchError::Io {
                what: "cannot remove the stale",
                path: addr_file,
                source: e,
            })
        }
        _ => {}
    }
    let mut hangup = signal(SignalKind::hangup()).map_err(|source| WatchError::Io {
        what: "cannot handle SIGHUP for",
        path: path.to_owned(),
        source,
    })?;

    let proxy = Proxy::with_workers(workers)?;
    let mut watcher = Watcher {
        path,
        proxy: &proxy,
        id: None,
        seen: Seen::Nothing,
        polls: 0,
        drain_timeout: Config::default().drain_timeout,
    };
    watcher.poll(true);
    let bound = proxy.serve_admin(admin)?;
    write_atomic(&addr_file, format!("{bound}\n").as_bytes()).map_err(|source| WatchError::Io {
        what: "cannot write",
        path: addr_file.clone(),
        source,
    })?;
    tracing::info!(admin = %bound, config = %path.display(), "proxy running");

    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = tick.tick() => watcher.poll(false),
            Some(()) = hangup.recv() => {
                tracing::info!("SIGHUP: re-reading the configuration");
                watcher.poll(true);
            }
        }
    }

    let _ = fs::remove_file(&addr_file);
    let grace = watcher.drain_timeout;
    drain_and_stop(&proxy, grace).await;
    Ok(())
}

/// Stops accepting (no listeners) and waits, up to `grace`, until no target has
/// requests in flight.
async fn drain_and_stop(proxy: &Proxy, grace: Duration) {
    let stop = Config {
        generation: proxy.applied_generation(),
        drain_timeout: grace,
        ..Config::default()
    };
    if let Err(e) = proxy.apply(stop) {
        tracing::warn!(error = %e, "cannot stop the listeners cleanly");
        return;
    }
    let deadline = tokio::time::Instant::now() + grace;
    while !proxy.draining().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tracing::info!("proxy stopped");
}

/// Whether a proxy holds the lock of configuration directory `dir` now.
pub fn running(dir: &Path) -> bool {
    let Ok(file) = fs::File::open(dir.join(LOCK_FILE)) else {
        return false;
    };
    matches!(file.try_lock_shared(), Err(fs::TryLockError::WouldBlock))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;
    use crate::{Endpoint, HealthCheck, HostMatch, Listener, Rule, TargetGroup, WeightedGroup};

    fn full_config() -> Config {
        Config {
            generation: 7,
            listeners: vec![Listener {
                addr: "0.0.0.0:8080".parse().unwrap(),
                tls: None,
                rules: vec![
                    Rule {
                        service: "api".into(),
                        host: Some(HostMatch::parse("*.example.com")),
                        path_prefix: "/api".into(),
                        forward: vec![
                            WeightedGroup {
                                target_group: "blue".into(),
                                weight: 90,
                            },
                            WeightedGroup {
                                target_group: "green".into(),
                                weight: 10,
                            },
                        ],
                    },
                    Rule {
                        service: "web".into(),
                        host: Some(HostMatch::parse("www.example.com")),
                        path_prefix: "/".into(),
                        forward: vec![WeightedGroup {
                            target_group: "blue".into(),
                            weight: 1,
                        }],
                    },
                ],
            }],
            target_groups: vec![
                TargetGroup {
                    drain_timeout: None,
                    name: "blue".into(),
                    health_check: Some(HealthCheck {
                        mode: crate::HealthCheckMode::Http,
                        path: "/healthz".into(),
                        interval: Duration::from_millis(1500),
                        timeout: Duration::from_millis(500),
                        healthy_threshold: 1,
                        unhealthy_threshold: 2,
                        success_codes: vec![(200, 299), (404, 404)],
                    }),
                    targets: vec![Endpoint::Tcp("127.0.0.1:9001".parse().unwrap())],
                },
                TargetGroup {
                    drain_timeout: None,
                    name: "green".into(),
                    health_check: None,
                    targets: vec![Endpoint::Netns {
                        path: "/proc/123/ns/net".into(),
                        port: 8080,
                        health_file: None,
                    }],
                },
            ],
            timeouts: crate::Timeouts {
                connect: Duration::from_millis(250),
                request: Duration::from_secs(5),
            },
            drain_timeout: Duration::from_secs(12),
        }
    }

    #[test]
    fn config_round_trips_through_json() {
        let config = full_config();
        let text = serde_json::to_string_pretty(&config).unwrap();
        let back: Config = serde_json::from_str(&text).unwrap();
        assert_eq!(back, config);
    }

    #[test]
    fn json_shape_is_the_documented_one() {
        let v = serde_json::to_value(full_config()).unwrap();
        assert_eq!(v["generation"], 7);
        assert_eq!(v["drain_timeout_ms"], 12000);
        assert_eq!(v["timeouts"]["connect_ms"], 250);
        assert_eq!(v["timeouts"]["request_ms"], 5000);
        let rule = &v["listeners"][0]["rules"][0];
        assert_eq!(v["listeners"][0]["addr"], "0.0.0.0:8080");
        assert_eq!(rule["host"], "*.example.com");
        assert_eq!(v["listeners"][0]["rules"][1]["host"], "www.example.com");
        assert_eq!(rule["forward"][1]["target_group"], "green");
        assert_eq!(rule["forward"][1]["weight"], 10);
        let blue = &v["target_groups"][0];
        assert_eq!(
            blue["targets"][0],
            serde_json::json!({"tcp": "127.0.0.1:9001"})
        );
        assert_eq!(blue["health_check"]["interval_ms"], 1500);
        assert_eq!(blue["health_check"]["timeout_ms"], 500);
        assert_eq!(
            blue["health_check"]["success_codes"],
            serde_json::json!(["200-299", "404"])
        );
        assert_eq!(
            v["target_groups"][1]["targets"][0],
            serde_json::json!({"netns": {"path": "/proc/123/ns/net", "port": 8080}})
        );
        assert!(v["target_groups"][1]["health_check"].is_null());
    }

    #[test]
    fn a_short_hand_written_file_gets_defaults() {
        let text = r#"{
            "listeners": [{"addr": "127.0.0.1:8080",
                           "rules": [{"service": "web", "forward": [{"target_group": "web"}]}]}],
            "target_groups": [{"name": "web", "targets": [{"tcp": "127.0.0.1:9000"}],
                               "health_check": {"path": "/up"}}]
        }"#;
        let c = parse_config(Path::new("config.json"), text.as_bytes()).unwrap();
        assert_eq!(c.generation, 0);
        assert_eq!(c.drain_timeout, Duration::from_secs(30));
        assert_eq!(c.timeouts, crate::Timeouts::default());
        let rule = &c.listeners[0].rules[0];
        assert_eq!(rule.path_prefix, "/");
        assert_eq!(rule.host, None);
        assert_eq!(rule.forward[0].weight, 1);
        let hc = c.target_groups[0].health_check.clone().unwrap();
        assert_eq!(
            hc,
            HealthCheck {
                path: "/up".into(),
                ..HealthCheck::default()
            }
        );
        let empty = parse_config(Path::new("c.json"), b"{}").unwrap();
        assert_eq!(empty, Config::default());
    }

    #[test]
    fn unknown_fields_are_errors_naming_file_line_and_column() {
        let text = "{\n  \"generation\": 1,\n  \"listners\": []\n}";
        let e = parse_config(Path::new("/etc/proxy/config.json"), text.as_bytes()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("/etc/proxy/config.json: "), "{msg}");
        assert!(msg.contains("unknown field `listners`"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
        assert_eq!(e.line_column().map(|(l, _)| l), Some(3));

        let nested = r#"{"target_groups": [{"name": "a", "health_check": {"intervall_ms": 5}}]}"#;
        let e = parse_config(Path::new("c.json"), nested.as_bytes()).unwrap_err();
        assert!(
            e.to_string().contains("unknown field `intervall_ms`"),
            "{e}"
        );
        let endpoint = r#"{"target_groups": [{"name": "a", "targets": [{"netns": {"path": "/x", "port": 1, "ip": "1.2.3.4"}}]}]}"#;
        let e = parse_config(Path::new("c.json"), endpoint.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("unknown field `ip`"), "{e}");
    }

    #[test]
    fn bad_values_are_errors() {
        for (text, want) in [
            (r#"{"drain_timeout_ms": "30s"}"#, "invalid type"),
            (
                r#"{"target_groups": [{"name": "a", "health_check": {"success_codes": ["299-200"]}}]}"#,
                "invalid status code range",
            ),
            (
                r#"{"listeners": [{"addr": "127.0.0.1:80", "rules": [{"service": "s", "host": "", "forward": []}]}]}"#,
                "host must not be empty",
            ),
            (
                r#"{"target_groups": [{"name": "a", "targets": [{"udp": "127.0.0.1:1"}]}]}"#,
                "unknown variant `udp`",
            ),
        ] {
            let e = parse_config(Path::new("c.json"), text.as_bytes()).unwrap_err();
            assert!(e.to_string().contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn write_config_replaces_the_file_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        write_config(&path, &Config::default()).unwrap();
        let first = fs::metadata(&path).unwrap().ino();
        write_config(&path, &full_config()).unwrap();
        assert_ne!(fs::metadata(&path).unwrap().ino(), first);
        assert_eq!(read_config(&path).unwrap(), Some(full_config()));
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("config.json")]);
        assert_eq!(read_config(&dir.path().join("none.json")).unwrap(), None);
    }

    #[test]
    fn request_counts_round_trip_through_json() {
        let mut counts = crate::RequestCounts::default();
        counts.routes.insert(
            ("web".into(), "blue".into()),
            crate::StatusCounts {
                by_class: [0, 90, 1, 4, 5],
            },
        );
        let v = serde_json::to_value(&counts).unwrap();
        assert_eq!(
            v,
            serde_json::json!([{"service": "web", "target_group": "blue", "total": 100,
                "1xx": 0, "2xx": 90, "3xx": 1, "4xx": 4, "5xx": 5}])
        );
        let back: crate::RequestCounts = serde_json::from_value(v).unwrap();
        assert_eq!(back, counts);
    }
}
