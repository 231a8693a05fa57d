//! Docker-style `HEALTHCHECK` supervision of a detached task, run beside the task
//! by its own helper, as dockerd runs it, so it goes on while whoever started the
//! task (the deploy controller) is down.
//!
//! A task started with [`TaskOptions::health`](crate::TaskOptions::health) gets a
//! second re-executed process next to its helper, `hoist __container --health
//! <dir>`, started once the container runs and killed when it ends (or when the
//! task is being stopped); it also dies with the helper (`PR_SET_PDEATHSIG`). It
//! writes `health.json` (`starting`) at once, then every
//! [`Probe::interval`] runs the probe through [`Runtime::exec`] (so it is
//! whatever `docker exec` would run: the container's namespaces, cgroup, user and
//! environment) and rewrites `health.json` atomically. The file is Docker's
//! `State.Health`: `{"Status": "starting"|"healthy"|"unhealthy", "FailingStreak":
//! N, "Log": [{"Start", "End", "ExitCode", "Output"}, ...]}` with the last
//! [`MAX_LOG_ENTRIES`] results and outputs cut at [`MAX_OUTPUT`] bytes. Readers
//! ([`crate::TaskInfo::health`], the proxy) only ever see a whole file.
//!
//! The status follows Docker's rules ([`Health::record`]): exit code 0 is a pass
//! and makes the task healthy at once; any other code, a timeout (exit code -1)
//! or an exec that could not run (-1) is a failure; [`Probe::retries`] failures
//! in a row make it unhealthy; failures during [`Probe::start_period`] do not
//! count while the task has not been healthy yet.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::exec::ExecOptions;
use crate::helper::{self, write_atomic};
use crate::{Runtime, RuntimeConfig};

/// The health file in a task's state dir.
pub(crate) const HEALTH: &str = "health.json";
/// Results kept in [`Health::log`] (Docker's).
pub const MAX_LOG_ENTRIES: usize = 5;
/// Bytes of a probe's output kept in a [`HealthResult`] (Docker's).
pub const MAX_OUTPUT: usize = 4096;

/// A health probe: Docker's `HEALTHCHECK` of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// What to run in the container.
    pub command: ProbeCommand,
    /// Time between the end of one probe and the start of the next (Docker's
    /// default 30 s); the first runs one interval after the container started.
    pub interval: Duration,
    /// Time one probe may take before it is killed and counted as a failure
    /// (Docker's default 30 s).
    pub timeout: Duration,
    /// Failures during this time after the start do not count, until the task
    /// was healthy once (default 0).
    pub start_period: Duration,
    /// Consecutive failures that make the task unhealthy (Docker's default 3).
    pub retries: u32,
    /// Time between probes while the task is still `starting` (Docker's
    /// `--start-interval`); `None` uses `interval`.
    #[serde(default)]
    pub start_interval: Option<Duration>,
}

/// A probe's command, from Docker's `Test` (`["CMD", ...]` or `["CMD-SHELL",
/// "..."]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeCommand {
    /// argv, run as is (`CMD`).
    Exec(Vec<String>),
    /// A command line for `/bin/sh -c` (`CMD-SHELL`).
    Shell(String),
}

impl Probe {
    /// A probe with Docker's defaults for everything but the command.
    pub fn new(command: ProbeCommand) -> Probe {
        Probe {
            command,
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            start_period: Duration::ZERO,
            retries: 3,
            start_interval: None,
        }
    }

    /// The wait before the next probe, given the current verdict.
    pub fn next_wait(&self, status: HealthStatus) -> Duration {
        match (status, self.start_interval) {
            (HealthStatus::Starting, Some(d)) => d,
            _ => self.interval,
        }
    }

    /// The argv that runs the probe.
    pub fn argv(&self) -> Vec<String> {
        match &self.command {
            ProbeCommand::Exec(args) => args.clone(),
            ProbeCommand::Shell(line) => vec!["/bin/sh".into(), "-c".into(), line.clone()],
        }
    }
}

/// Where a task's health stands (Docker's `State.Health.Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// No verdict yet.
    Starting,
    /// The last probe passed.
    Healthy,
    /// [`Probe::retries`] probes in a row failed.
    Unhealthy,
}

/// A task's health (Docker's `State.Health`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// The verdict.
    pub status: HealthStatus,
    /// Failures in a row that counted.
    pub failing_streak: u32,
    /// The last results, oldest first, at most [`MAX_LOG_ENTRIES`].
    pub log: Vec<HealthResult>,
}

/// One probe's result (Docker's `HealthcheckResult`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthResult {
    /// When it started (RFC 3339).
    pub start: String,
    /// When it ended (RFC 3339).
    pub end: String,
    /// Its exit code; -1 when it timed out or could not run.
    pub exit_code: i32,
    /// Its stdout then stderr, at most [`MAX_OUTPUT`] bytes (lossy UTF-8).
    pub output: String,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            status: HealthStatus::Starting,
            failing_streak: 0,
            log: Vec::new(),
        }
    }
}

impl Health {
    /// Record one result by Docker's rules; `in_start_period` when the task
    /// started less than [`Probe::start_period`] ago.
    pub fn record(&mut self, result: HealthResult, probe: &Probe, in_start_period: bool) {
        let passed = result.exit_code == 0;
        self.log.push(result);
        if self.log.len() > MAX_LOG_ENTRIES {
            let extra = self.log.len() - MAX_LOG_ENTRIES;
            self.log.drain(..extra);
        }
        if passed {
            self.failing_streak = 0;
            self.status = HealthStatus::Healthy;
        } else if in_start_period && self.status == HealthStatus::Starting {
            // Docker: failures in the start period do not count.
        } else {
            self.failing_streak = self.failing_streak.saturating_add(1);
            if self.failing_streak >= probe.retries.max(1) {
                self.status = HealthStatus::Unhealthy;
            }
        }
    }

    /// The last result's output, trimmed, for messages.
    pub fn last_output(&self) -> Option<&str> {
        self.log.last().map(|r| r.output.trim())
    }
}

/// Stdout then stderr, cut at [`MAX_OUTPUT`] bytes, as one lossy UTF-8 string.
pub(crate) fn probe_output(stdout: &[u8], stderr: &[u8]) -> String {
    let mut bytes: Vec<u8> = stdout.iter().chain(stderr).copied().collect();
    bytes.truncate(MAX_OUTPUT);
    String::from_utf8_lossy(&bytes).into_owned()
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

/// Read a health file (`None` when absent or unreadable).
pub(crate) fn read_health(path: &Path) -> Option<Health> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `hoist __container --health <dir>`: probe the task of `dir` until killed.
pub(crate) fn health_main(dir: &Path) -> i32 {
    let parent = rustix::process::getppid();
    // The task's helper kills this process when the container ends; should the
    // helper itself be killed, this goes with it.
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    if rustix::process::getppid() != parent {
        return 0;
    }
    match health_loop(dir) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

fn health_loop(dir: &Path) -> Result<(), String> {
    let req = helper::read_request(dir)?;
    let task = req
        .task
        .ok_or_else(|| "the request is not a task's".to_owned())?;
    let probe = task
        .options
        .health
        .ok_or_else(|| "the task has no health probe".to_owned())?;
    let state_dir = dir
        .parent()
        .ok_or_else(|| format!("{} has no parent", dir.display()))?;
    let runtime = Runtime::new(RuntimeConfig {
        state_dir: state_dir.to_path_buf(),
        backend: req.backend,
        helper: task.helper,
    })
    .map_err(|e| e.to_string())?;
    let path = dir.join(HEALTH);
    let mut health = Health::default();
    write_atomic(&path, &health)?;
    let began = Instant::now();
    let argv = probe.argv();
    let opts = ExecOptions {
        timeout: probe.timeout,
        max_output: MAX_OUTPUT,
    };
    loop {
        std::thread::sleep(probe.next_wait(health.status));
        let start = now_rfc3339();
        let (exit_code, output) = match runtime.exec(&req.id, &argv, &opts) {
            Ok(o) if o.timed_out => (
                -1,
                format!(
                    "Health check exceeded timeout ({})",
                    humantime::format_duration(probe.timeout)
                ),
            ),
            Ok(o) => (o.status.code(), probe_output(&o.stdout, &o.stderr)),
            Err(e) => (-1, probe_output(e.to_string().as_bytes(), b"")),
        };
        let result = HealthResult {
            start,
            end: now_rfc3339(),
            exit_code,
            output,
        };
        health.record(result, &probe, began.elapsed() < probe.start_period);
        write_atomic(&path, &health)?;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn result(code: i32) -> HealthResult {
        HealthResult {
            start: "s".into(),
            end: "e".into(),
            exit_code: code,
            output: format!("code {code}"),
        }
    }

    fn probe(retries: u32) -> Probe {
        Probe {
            retries,
            ..Probe::new(ProbeCommand::Exec(vec!["true".into()]))
        }
    }

    #[test]
    fn retries_failures_in_a_row_make_it_unhealthy_and_one_pass_heals() {
        let p = probe(3);
        let mut h = Health::default();
        h.record(result(1), &p, false);
        h.record(result(1), &p, false);
        assert_eq!(h.status, HealthStatus::Starting);
        assert_eq!(h.failing_streak, 2);
        h.record(result(1), &p, false);
        assert_eq!(h.status, HealthStatus::Unhealthy);
        h.record(result(0), &p, false);
        assert_eq!(h.status, HealthStatus::Healthy);
        assert_eq!(h.failing_streak, 0);
        // A pass resets the streak: two failures after it are not three.
        h.record(result(1), &p, false);
        h.record(result(-1), &p, false);
        assert_eq!(h.status, HealthStatus::Healthy);
        h.record(result(2), &p, false);
        assert_eq!(h.status, HealthStatus::Unhealthy);
    }

    #[test]
    fn start_period_failures_do_not_count_until_healthy_once() {
        let p = probe(1);
        let mut h = Health::default();
        h.record(result(1), &p, true);
        h.record(result(1), &p, true);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 0));
        h.record(result(0), &p, true);
        assert_eq!(h.status, HealthStatus::Healthy);
        // Healthy once: failures count even inside the start period.
        h.record(result(1), &p, true);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Unhealthy, 1));
    }

    #[test]
    fn the_log_keeps_the_last_five_and_output_is_bounded() {
        let p = probe(100);
        let mut h = Health::default();
        for code in 0..8 {
            h.record(result(code), &p, false);
        }
        let codes: Vec<i32> = h.log.iter().map(|r| r.exit_code).collect();
        assert_eq!(codes, [3, 4, 5, 6, 7]);
        assert_eq!(h.last_output(), Some("code 7"));
        let big = vec![b'x'; MAX_OUTPUT + 10];
        assert_eq!(probe_output(&big, b"err").len(), MAX_OUTPUT);
        assert_eq!(probe_output(b"out\n", b"err"), "out\nerr");
    }

    #[test]
    fn the_file_has_dockers_shape() {
        let mut h = Health::default();
        h.record(result(0), &probe(3), false);
        let v: serde_json::Value = serde_json::to_value(&h).unwrap();
        assert_eq!(v["Status"], "healthy");
        assert_eq!(v["FailingStreak"], 0);
        assert_eq!(v["Log"][0]["ExitCode"], 0);
        assert_eq!(v["Log"][0]["Output"], "code 0");
        let shell = Probe::new(ProbeCommand::Shell("test -f /ok".into()));
        assert_eq!(shell.argv(), ["/bin/sh", "-c", "test -f /ok"]);
        let quick_start = Probe {
            start_interval: Some(Duration::from_secs(1)),
            ..shell
        };
        assert_eq!(
            quick_start.next_wait(HealthStatus::Starting),
            Duration::from_secs(1)
        );
        assert_eq!(
            quick_start.next_wait(HealthStatus::Unhealthy),
            Duration::from_secs(30)
        );
    }
}
