//! `docker exec` for detached tasks: run one more process in a running task's
//! container, with its namespaces, cgroup, root, user, working directory and
//! environment, and a timeout.
//!
//! The parent side ([`Runtime::exec`]) writes `exec-<hex>.json` into the task's
//! state dir and starts a fresh helper, `hoist __container --exec <dir> <file>`,
//! with its stdout and stderr piped back, keeping at most
//! [`ExecOptions::max_output`] bytes of each. The helper is single-threaded, so it
//! may use libcontainer's tenant builder ([`Backend::Embedded`](crate::Backend)),
//! which forks and `setns`es into the container (user, groups and working
//! directory are taken from the task's OCI spec, so the process runs as the
//! container's does); for [`Backend::Oci`](crate::Backend) it runs `runc exec`,
//! which does the same from the bundle. It kills the process (`SIGKILL`) at the
//! timeout and writes `exec-<hex>.result.json` atomically; the parent removes both
//! files. Nothing forks in the caller, which may be multi-threaded.
//!
//! Limits: with the embedded backend the exec'd process does not get the task's
//! seccomp filter (libcontainer's tenant spec carries no seccomp section); runc
//! applies it. Children the process leaves behind stay in the container, as with
//! `docker exec`.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::process::{Pid, PidfdFlags, Signal};
use serde::{Deserialize, Serialize};

use crate::helper::{self, error_chain, open_pid, read_request, reap, write_atomic};
use crate::run::{drain, poll_pipes, read_some};
use crate::task::TaskState;
use crate::{Backend, ExitStatus, Runtime, RuntimeError, Stream};

/// How an exec runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOptions {
    /// Kill the process after this long ([`ExecOutcome::timed_out`]).
    pub timeout: Duration,
    /// Keep at most this many bytes of stdout, and as many of stderr.
    pub max_output: usize,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            timeout: Duration::from_secs(30),
            max_output: 64 << 10,
        }
    }
}

/// How an exec ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    /// The process's exit status (`Signal(9)` or, through runc, `Code(137)` when
    /// it was killed at the timeout).
    pub status: ExitStatus,
    /// It was killed because [`ExecOptions::timeout`] passed.
    pub timed_out: bool,
    /// Its stdout, cut at [`ExecOptions::max_output`].
    pub stdout: Vec<u8>,
    /// Its stderr, cut at [`ExecOptions::max_output`].
    pub stderr: Vec<u8>,
    /// Output was cut.
    pub truncated: bool,
}

/// What the parent asks of an exec helper.
#[derive(Debug, Serialize, Deserialize)]
struct ExecRequest {
    args: Vec<String>,
    timeout_ms: u64,
}

/// What an exec helper reports.
#[derive(Debug, Serialize, Deserialize)]
struct ExecResult {
    status: Option<ExitStatus>,
    timed_out: bool,
    error: Option<String>,
}

/// Past the timeout, how long the helper gets to kill the process and report
/// before it is killed itself.
const EXEC_GRACE: Duration = Duration::from_secs(10);

fn result_path(request: &Path) -> std::path::PathBuf {
    request.with_extension("result.json")
}

impl Runtime {
    /// Run `args` in the running task `id`'s container and wait for it (at most
    /// `opts.timeout`, then it is killed). `args[0]` is looked up through the
    /// container's `PATH`. An error means it could not be run at all: no such
    /// task, the task is not running, or the helper failed.
    pub fn exec(
        &self,
        id: &str,
        args: &[String],
        opts: &ExecOptions,
    ) -> Result<ExecOutcome, RuntimeError> {
        if args.is_empty() {
            return Err(RuntimeError::InvalidSpec("exec: args is empty".to_owned()));
        }
        let (dir, req) = self
            .task_dir(id)
            .ok_or_else(|| RuntimeError::InvalidSpec(format!("no task {id}")))?;
        let state = self.task_in(id, &dir, req.spec.network, false).state;
        if state != TaskState::Running {
            return Err(RuntimeError::InvalidSpec(format!(
                "task {id} is not running ({state:?})"
            )));
        }
        let name = format!("exec-{}.json", hex::encode(rand::random::<[u8; 8]>()));
        let req_path = dir.join(name);
        let request = ExecRequest {
            args: args.to_vec(),
            timeout_ms: u64::try_from(opts.timeout.as_millis()).unwrap_or(u64::MAX),
        };
        write_atomic(&req_path, &request)
            .map_err(|m| RuntimeError::io(&req_path, std::io::Error::other(m)))?;
        let result = self.exec_with(&dir, &req_path, opts);
        let _ = std::fs::remove_file(&req_path);
        let _ = std::fs::remove_file(result_path(&req_path));
        let _ = std::fs::remove_file(req_path.with_extension("pid"));
        result
    }

    fn exec_with(
        &self,
        dir: &Path,
        req_path: &Path,
        opts: &ExecOptions,
    ) -> Result<ExecOutcome, RuntimeError> {
        let helper = &self.config().helper;
        let mut child = Command::new(&helper.program)
            .args(&helper.args)
            .arg("--exec")
            .arg(dir)
            .arg(req_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| RuntimeError::SpawnHelper {
                program: helper.program.clone(),
                source,
            })?;
        let pid = i32::try_from(child.id()).ok().and_then(Pid::from_raw);
        let pidfd = pid.and_then(|p| rustix::process::pidfd_open(p, PidfdFlags::empty()).ok());
        let mut pipes = vec![
            (Stream::Stdout, child.stdout.take().map(OwnedFd::from)),
            (Stream::Stderr, child.stderr.take().map(OwnedFd::from)),
        ];
        let mut kept: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
        let mut truncated = false;
        let deadline = Instant::now() + opts.timeout + EXEC_GRACE;
        let mut buf = vec![0u8; 16 * 1024];
        let mut keep = |stream: Stream, bytes: &[u8]| {
            let kept = &mut kept[usize::from(stream == Stream::Stderr)];
            let room = opts.max_output.saturating_sub(kept.len());
            if bytes.len() > room {
                truncated = true;
            }
            kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
        };
        let mut exited = false;
        while !exited && pipes.iter().any(|(_, fd)| fd.is_some()) {
            if Instant::now() >= deadline {
                if let Some(p) = pid {
                    let _ = rustix::process::kill_process(p, Signal::KILL);
                }
                break;
            }
            let (ready, ex) = poll_pipes(&pipes, pidfd.as_ref(), 100);
            for i in ready {
                read_some(&mut pipes[i], &mut buf, &mut keep);
            }
            exited = ex;
        }
        // What is buffered now; a process left behind in the container may hold
        // the pipes open, so don't wait for their end.
        drain(&mut pipes, &mut buf, &mut keep);
        let status = child
            .wait()
            .map_err(|e| RuntimeError::io(&helper.program, e))?;
        let result: Option<ExecResult> = std::fs::read(result_path(req_path))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let [stdout, stderr] = kept;
        match result {
            Some(ExecResult {
                status: Some(status),
                timed_out,
                error: None,
            }) => Ok(ExecOutcome {
                status,
                timed_out,
                stdout,
                stderr,
                truncated,
            }),
            Some(ExecResult {
                error: Some(message),
                ..
            }) => Err(RuntimeError::Setup { message }),
            _ => Err(RuntimeError::HelperDied {
                id: dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                status: format!("exec helper: {status}"),
            }),
        }
    }
}

/// `hoist __container --exec <dir> <request>`: run the request in the task's
/// container, report to `<request>.result.json`.
pub(crate) fn exec_main(dir: &Path, request: &Path) -> i32 {
    let result = match exec_in(dir, request) {
        Ok((status, timed_out)) => ExecResult {
            status: Some(status),
            timed_out,
            error: None,
        },
        Err(message) => ExecResult {
            status: None,
            timed_out: false,
            error: Some(message),
        },
    };
    match write_atomic(&result_path(request), &result) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

fn exec_in(dir: &Path, request: &Path) -> Result<(ExitStatus, bool), String> {
    let task = read_request(dir)?;
    let bytes = std::fs::read(request).map_err(|e| format!("{}: {e}", request.display()))?;
    let exec: ExecRequest =
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", request.display()))?;
    let timeout = Duration::from_millis(exec.timeout_ms);
    match &task.backend {
        Backend::Embedded => exec_embedded(dir, &task.id, &exec.args, timeout),
        Backend::Oci(runc) => exec_oci(dir, runc, &task.id, &exec.args, timeout, request),
    }
}

/// Wait for `pidfd` until `timeout`; true when the process exited.
fn wait_exit(pidfd: &OwnedFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let step = left.min(Duration::from_millis(500));
        let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
        let ts = Timespec {
            tv_sec: i64::try_from(step.as_secs()).unwrap_or(0),
            tv_nsec: i64::from(step.subsec_nanos()),
        };
        let _ = rustix::event::poll(&mut fds, Some(&ts));
        if !fds[0].revents().is_empty() {
            return true;
        }
    }
}

fn exec_embedded(
    dir: &Path,
    id: &str,
    args: &[String],
    timeout: Duration,
) -> Result<(ExitStatus, bool), String> {
    use libcontainer::container::builder::ContainerBuilder;
    use libcontainer::syscall::syscall::SyscallType;

    let config = dir.join(helper::BUNDLE).join("config.json");
    let spec =
        oci_spec::runtime::Spec::load(&config).map_err(|e| format!("{}: {e}", config.display()))?;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| format!("{}: no process", config.display()))?;
    let user = process.user();
    let pid = ContainerBuilder::new(id.to_owned(), SyscallType::default())
        .with_root_path(dir.join(helper::LC_ROOT))
        .map_err(|e| error_chain(&e))?
        .as_tenant()
        .with_detach(false)
        .with_cwd(Some(process.cwd().clone()))
        .with_container_args(args.to_vec())
        .with_user(Some(user.uid()))
        .with_group(Some(user.gid()))
        .with_additional_gids(user.additional_gids().clone().unwrap_or_default())
        .build()
        .map_err(|e| format!("exec in {id}: {}", error_chain(&e)))?;
    sweep_tenant_sockets(&dir.join(helper::LC_ROOT).join(id));
    let raw = pid.as_raw();
    let (pid, pidfd) = open_pid(raw, "exec")?;
    let timed_out = !wait_exit(&pidfd, timeout);
    if timed_out {
        let _ = rustix::process::kill_process(pid, Signal::KILL);
    }
    Ok((reap(pid)?, timed_out))
}

/// libcontainer leaves each exec's `tenant-notify-<random>.sock` in the
/// container's dir; a probe every few seconds would pile them up. Once an exec
/// has started its socket is done with, so those older than a minute (no
/// concurrent exec is still setting up with them) are removed.
fn sweep_tenant_sockets(container_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(container_dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let stale = name
            .to_str()
            .is_some_and(|n| n.starts_with("tenant-notify-"))
            && e.metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > Duration::from_secs(60));
        if stale {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn exec_oci(
    dir: &Path,
    runc: &Path,
    id: &str,
    args: &[String],
    timeout: Duration,
    request: &Path,
) -> Result<(ExitStatus, bool), String> {
    let pid_file = request.with_extension("pid");
    let mut child = Command::new(runc)
        .arg("--root")
        .arg(dir.join(helper::RUNC_ROOT))
        .args(["exec", "--pid-file"])
        .arg(&pid_file)
        .arg(id)
        .args(args)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", runc.display()))?;
    let raw = i32::try_from(child.id()).map_err(|e| e.to_string())?;
    let (pid, pidfd) = open_pid(raw, "runc")?;
    let timed_out = !wait_exit(&pidfd, timeout);
    if timed_out {
        // runc forwards no SIGKILL: kill the exec'd process itself.
        let target = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .and_then(Pid::from_raw);
        match target {
            Some(p) => {
                let _ = rustix::process::kill_process(p, Signal::KILL);
            }
            None => {
                let _ = rustix::process::kill_process(pid, Signal::KILL);
            }
        }
    }
    let status = child.wait().map_err(|e| format!("waiting for runc: {e}"))?;
    use std::os::unix::process::ExitStatusExt;
    Ok((
        match (status.code(), status.signal()) {
            (Some(c), _) => ExitStatus::Code(c),
            (None, Some(s)) => ExitStatus::Signal(s),
            (None, None) => ExitStatus::Code(255),
        },
        timed_out,
    ))
}
