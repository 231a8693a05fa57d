//! [`Network::Outbound`](crate::Network::Outbound): the container keeps its own
//! network namespace (so a load balancer still reaches it on `127.0.0.1` inside
//! `/proc/<helper>/ns/net`) and gets outbound TCP, UDP and ping through `pasta`
//! (Debian's `passt` package), a user-mode network stack that turns the
//! namespace's packets into ordinary sockets on the host.
//!
//! The helper creates the namespace, brings `lo` up, then runs `pasta` from the
//! host's namespace before the container exists. `pasta` configures the namespace
//! (`--config-net`: a tap interface with the host's address and routes), forks to
//! the background and records its pid, which the helper keeps as `pasta.pid`
//! (`"<pid> <start time>"`). Whoever cleans the container up
//! ([`crate::helper::cleanup_container`]: the helper when its container ends, the
//! parent after a helper died) kills that `pasta` and waits until it is gone.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::process::{Pid, PidfdFlags, Signal};

use crate::helper::{live_pid, start_time};
use crate::RuntimeError;

/// The program and the Debian package it comes in.
pub(crate) const PASTA: &str = "pasta";
const PASTA_PACKAGE: &str = "passt";
/// The address the container's resolv.conf names; pasta forwards DNS queries to
/// it (UDP port 53) to the host's first resolver (`--dns-forward`). Link-local, as
/// Podman's default for pasta, so it never is a real host on any network.
pub(crate) const DNS_FORWARD: &str = "169.254.1.1";
/// `"<pid> <start time>"` of the task's pasta, in the state dir.
const PASTA_PID: &str = "pasta.pid";
/// What pasta writes its pid to (plain pid).
const PASTA_PIDFILE: &str = "pasta.pidfile";
/// pasta's own log.
const PASTA_LOG: &str = "pasta.log";
/// pasta's stderr (option errors before its log is open).
const PASTA_STDERR: &str = "pasta.stderr";
/// How long to wait for a killed pasta to be gone.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// The first executable `name` in the colon-separated `path` list.
pub(crate) fn find_in_path(name: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// `pasta` on the caller's `PATH` (or the usual system directories when `PATH` is
/// unset), or an error naming the program and its package.
pub(crate) fn find_pasta() -> Result<PathBuf, RuntimeError> {
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    find_in_path(PASTA, &path).ok_or_else(missing_pasta)
}

fn missing_pasta() -> RuntimeError {
    RuntimeError::MissingProgram {
        program: PASTA.to_owned(),
        package: PASTA_PACKAGE.to_owned(),
        needed_for: "Network::Outbound".to_owned(),
    }
}

/// The container's `/etc/resolv.conf`: pasta's DNS forwarder as the only
/// nameserver (the host's may be on its loopback, unreachable from the
/// namespace), and the host's `search`, `domain` and `options` lines.
pub(crate) fn resolv_conf(host: &str) -> String {
    let mut out = format!("nameserver {DNS_FORWARD}\n");
    for line in host.lines() {
        let keyword = line.split_whitespace().next().unwrap_or("");
        if matches!(keyword, "search" | "domain" | "options") {
            out.push_str(line.trim());
            out.push('\n');
        }
    }
    out
}

/// Attach pasta to the helper's (new, current) network namespace. `host_ns` is
/// the namespace pasta must live in (the helper's before it unshared one).
pub(crate) fn start(dir: &Path, pasta: &Path, host_ns: &File) -> Result<(), String> {
    let own_ns = File::open("/proc/self/ns/net").map_err(|e| format!("/proc/self/ns/net: {e}"))?;
    // pasta, started as root, cannot open /proc/<pid>/ns/net of a process with
    // more capabilities than it keeps; it opens its own inherited descriptor.
    let inheritable = OwnedFd::from(
        own_ns
            .try_clone()
            .map_err(|e| format!("duplicating the namespace descriptor: {e}"))?,
    );
    rustix::io::fcntl_setfd(&inheritable, rustix::io::FdFlags::empty())
        .map_err(|e| format!("fcntl(F_SETFD): {e}"))?;
    nix::sched::setns(host_ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("setns to the host's network namespace: {e}"))?;
    let ran = run_pasta(dir, pasta, inheritable.as_raw_fd());
    // Back into the container's namespace whatever happened; and the descriptor
    // must not reach the container.
    drop(inheritable);
    nix::sched::setns(own_ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("setns back to the container's network namespace: {e}"))?;
    ran
}

fn run_pasta(dir: &Path, pasta: &Path, ns_fd: i32) -> Result<(), String> {
    let stderr_path = dir.join(PASTA_STDERR);
    let stderr =
        File::create(&stderr_path).map_err(|e| format!("{}: {e}", stderr_path.display()))?;
    let status = Command::new(pasta)
        // Stay root: as `nobody` it could not enter the namespace. It keeps only
        // CAP_NET_ADMIN, CAP_NET_BIND_SERVICE and CAP_SYS_ADMIN, in its own
        // mount and PID namespaces.
        .args(["--runas", "0"])
        // Give the namespace the host's addresses and routes and bring the tap up,
        // before pasta returns.
        .arg("--config-net")
        .arg("--quiet")
        .arg("--log-file")
        .arg(dir.join(PASTA_LOG))
        .arg("--pid")
        .arg(dir.join(PASTA_PIDFILE))
        // No port forwarding either way: the load balancer enters the namespace
        // instead, and replicas must not fight over host ports nor reach host
        // ports through their own loopback.
        .args(["-t", "none", "-u", "none", "-T", "none", "-U", "none"])
        .args(["--dns-forward", DNS_FORWARD])
        // pasta would otherwise make the gateway address an alias of the host's
        // loopback: a task could reach every service bound to 127.0.0.1 (the
        // proxy's admin API, a loopback registry), which a Docker bridge does not
        // allow either.
        .arg("--no-map-gw")
        .arg("--netns")
        .arg(format!("/proc/self/fd/{ns_fd}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr))
        .status()
        .map_err(|e| format!("{}: {e}", pasta.display()))?;
    if !status.success() {
        return Err(format!(
            "{} could not set up the container's outbound network ({status}): {}",
            pasta.display(),
            pasta_messages(dir)
        ));
    }
    // pasta forked to the background and wrote the daemon's pid.
    let pidfile = dir.join(PASTA_PIDFILE);
    let text =
        std::fs::read_to_string(&pidfile).map_err(|e| format!("{}: {e}", pidfile.display()))?;
    let pid = text
        .trim()
        .parse::<i32>()
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| format!("{}: not a pid: {text:?}", pidfile.display()))?;
    let start = start_time(pid).ok_or_else(|| {
        format!(
            "pasta (pid {}) exited right after starting: {}",
            pid.as_raw_nonzero(),
            pasta_messages(dir)
        )
    })?;
    let record = dir.join(PASTA_PID);
    std::fs::write(&record, format!("{} {start}\n", pid.as_raw_nonzero()))
        .map_err(|e| format!("{}: {e}", record.display()))
}

/// What pasta said, for an error message: its log and stderr, without timestamps
/// and syslog noise.
fn pasta_messages(dir: &Path) -> String {
    let mut lines = Vec::new();
    for name in [PASTA_LOG, PASTA_STDERR] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty()
                || line.starts_with("Failed to send")
                || line.starts_with("pasta ")
                || line.contains(": /usr/bin/")
            {
                continue;
            }
            // "0.0589: ERROR:   message" in the log file.
            let line = match line.split_once(": ") {
                Some((t, rest)) if t.parse::<f64>().is_ok() => rest.trim(),
                _ => line,
            };
            if !lines.iter().any(|l: &String| l == line) {
                lines.push(line.to_owned());
            }
        }
    }
    if lines.is_empty() {
        "no message".to_owned()
    } else {
        lines.join("; ")
    }
}

/// Kill the pasta recorded in `dir`, if it still runs, and wait until it is gone.
pub(crate) fn stop(dir: &Path) -> Result<(), String> {
    let record = dir.join(PASTA_PID);
    let Some(pid) = live_pid(&record) else {
        return Ok(());
    };
    let pidfd = match rustix::process::pidfd_open(pid, PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => return Ok(()),
        Err(e) => return Err(format!("pidfd_open(pasta {}): {e}", pid.as_raw_nonzero())),
    };
    // The pidfd is for whatever has that pid now: make sure it is still pasta.
    if live_pid(&record).is_none() {
        return Ok(());
    }
    rustix::process::pidfd_send_signal(&pidfd, Signal::KILL)
        .map_err(|e| format!("killing pasta {}: {e}", pid.as_raw_nonzero()))?;
    let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
    let timeout = Timespec {
        tv_sec: KILL_WAIT.as_secs() as i64,
        tv_nsec: 0,
    };
    let _ = rustix::event::poll(&mut fds, Some(&timeout));
    if fds[0].revents().is_empty() {
        return Err(format!(
            "pasta {} still runs {}s after SIGKILL",
            pid.as_raw_nonzero(),
            KILL_WAIT.as_secs()
        ));
    }
    let _ = std::fs::remove_file(&record);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_programs_on_a_path_and_names_the_package_when_missing() {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let path = std::env::join_paths([tmp.path().join("nothing"), bin.clone()]).unwrap();
        assert_eq!(find_in_path("pasta", &path), None);
        std::fs::write(bin.join("pasta"), "#!/bin/sh\n").unwrap();
        assert_eq!(find_in_path("pasta", &path), None, "not executable");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join("pasta"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        assert_eq!(find_in_path("pasta", &path), Some(bin.join("pasta")));
        // Relative entries are ignored.
        assert_eq!(find_in_path("pasta", std::ffi::OsStr::new("bin")), None);

        let msg = missing_pasta().to_string();
        assert!(msg.contains("`pasta`") && msg.contains("passt"), "{msg}");
    }

    #[test]
    fn resolv_conf_points_at_the_forwarder_and_keeps_search_domains() {
        let host =
            "# generated\nnameserver 127.0.0.53\nsearch corp.example\noptions edns0 trust-ad\n";
        assert_eq!(
            resolv_conf(host),
            "nameserver 169.254.1.1\nsearch corp.example\noptions edns0 trust-ad\n"
        );
        assert_eq!(resolv_conf(""), "nameserver 169.254.1.1\n");
    }
}
