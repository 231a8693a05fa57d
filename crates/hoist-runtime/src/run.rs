//! The parent side: start the helper, stream its pipes, enforce timeout and cancel,
//! read the result, and clean up after helpers that died.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::process::{Pid, PidfdFlags, Signal};

use crate::helper::{self, start_time, HelperResult, Request, HELPER_PID, REQUEST, RESULT};
use crate::{
    ContainerSpec, ExitStatus, Network, RunOptions, RunOutcome, RuntimeConfig, RuntimeError, Stream,
};

/// How long the helper gets to kill and delete its container after `SIGTERM`
/// before it is killed (its container is then cleaned up from the parent).
const GRACE: Duration = Duration::from_secs(5);
/// A state dir without `helper.pid` is someone's run being set up, unless older.
const UNCLAIMED_AGE: Duration = Duration::from_secs(60);

/// Runs containers; cheap to share (`run` takes `&self`).
#[derive(Debug, Clone)]
pub struct Runtime {
    config: RuntimeConfig,
}

impl Runtime {
    /// A runtime keeping container state under `config.state_dir` (created).
    pub fn new(config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        std::fs::create_dir_all(&config.state_dir)
            .map_err(|e| RuntimeError::io(&config.state_dir, e))?;
        let state_dir = config
            .state_dir
            .canonicalize()
            .map_err(|e| RuntimeError::io(&config.state_dir, e))?;
        Ok(Runtime {
            config: RuntimeConfig {
                state_dir,
                ..config
            },
        })
    }

    /// The configuration, with `state_dir` made absolute.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Checks `spec`, finds `pasta` when it needs outbound network, and makes the
    /// new container's state dir: `(id, dir, pasta)`. Shared by `run` and `start`.
    pub(crate) fn new_container(
        &self,
        spec: &ContainerSpec,
    ) -> Result<(String, PathBuf, Option<PathBuf>), RuntimeError> {
        if spec.args.is_empty() {
            return Err(RuntimeError::InvalidSpec("args is empty".to_owned()));
        }
        if !spec.cwd.starts_with('/') {
            return Err(RuntimeError::InvalidSpec(format!(
                "cwd {:?} is not absolute",
                spec.cwd
            )));
        }
        let pasta = match spec.network {
            Network::Outbound => Some(crate::outbound::find_pasta()?),
            _ => None,
        };
        let id = format!("hoist-{}", hex::encode(rand::random::<[u8; 8]>()));
        let dir = self.config.state_dir.join(&id);
        std::fs::create_dir(&dir).map_err(|e| RuntimeError::io(&dir, e))?;
        Ok((id, dir, pasta))
    }

    /// Run `spec` to completion. Blocking. Streams output chunks to `output` as
    /// they arrive (from the calling thread).
    pub fn run(
        &self,
        spec: &ContainerSpec,
        opts: &RunOptions,
        output: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<RunOutcome, RuntimeError> {
        let (id, dir, pasta) = self.new_container(spec)?;
        let result = self.run_in(&id, &dir, spec, pasta, opts, output);
        if result.is_ok() || matches!(result, Err(RuntimeError::Setup { .. })) {
            let _ = std::fs::remove_dir_all(&dir);
        }
        result
    }

    fn run_in(
        &self,
        id: &str,
        dir: &Path,
        spec: &ContainerSpec,
        pasta: Option<PathBuf>,
        opts: &RunOptions,
        output: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<RunOutcome, RuntimeError> {
        let request = Request {
            id: id.to_owned(),
            parent_pid: i32::try_from(std::process::id()).unwrap_or(0),
            backend: self.config.backend.clone(),
            spec: spec.clone(),
            task: None,
            pasta,
        };
        let req_path = dir.join(REQUEST);
        helper::write_atomic(&req_path, &request)
            .map_err(|m| RuntimeError::io(&req_path, std::io::Error::other(m)))?;

        let helper = &self.config.helper;
        let mut child = Command::new(&helper.program)
            .args(&helper.args)
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| RuntimeError::SpawnHelper {
                program: helper.program.clone(),
                source,
            })?;
        let raw = i32::try_from(child.id()).unwrap_or(0);
        let pid = Pid::from_raw(raw);
        if let Some(start) = pid.and_then(start_time) {
            let pid_path = dir.join(HELPER_PID);
            let _ = std::fs::write(&pid_path, format!("{raw} {start}\n"));
        }
        let pidfd = pid.and_then(|p| rustix::process::pidfd_open(p, PidfdFlags::empty()).ok());

        let mut pipes: Vec<(Stream, Option<OwnedFd>)> = vec![
            (Stream::Stdout, child.stdout.take().map(OwnedFd::from)),
            (Stream::Stderr, child.stderr.take().map(OwnedFd::from)),
        ];
        let deadline = opts.timeout.map(|t| Instant::now() + t);
        let (mut timed_out, mut cancelled) = (false, false);
        let mut term_sent: Option<Instant> = None;
        let mut kill_sent = false;
        let mut buf = vec![0u8; 64 * 1024];

        loop {
            // Decide on timeout / cancel.
            if term_sent.is_none() {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    timed_out = true;
                } else if opts
                    .cancel
                    .as_ref()
                    .is_some_and(|c| c.load(Ordering::SeqCst))
                {
                    cancelled = true;
                }
                if timed_out || cancelled {
                    if let Some(p) = pid {
                        let _ = rustix::process::kill_process(p, Signal::TERM);
                    }
                    term_sent = Some(Instant::now());
                }
            } else if !kill_sent && term_sent.is_some_and(|t| t.elapsed() >= GRACE) {
                if let Some(p) = pid {
                    let _ = rustix::process::kill_process(p, Signal::KILL);
                }
                kill_sent = true;
            }

            let mut wait_ms: u64 = 100;
            if let (Some(d), None) = (deadline, term_sent) {
                let left = d.saturating_duration_since(Instant::now()).as_millis() as u64;
                wait_ms = wait_ms.min(left.max(1));
            }
            let (ready, mut helper_exited) = poll_pipes(&pipes, pidfd.as_ref(), wait_ms);
            for i in ready {
                read_some(&mut pipes[i], &mut buf, output);
            }
            if pidfd.is_none() {
                helper_exited = matches!(child.try_wait(), Ok(Some(_)));
            }
            if helper_exited || pipes.iter().all(|(_, fd)| fd.is_none()) {
                if helper_exited {
                    // Whatever the container wrote is in the pipes by now; an
                    // orphaned container may still hold them open, so don't wait.
                    drain(&mut pipes, &mut buf, output);
                    break;
                }
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
            }
        }
        let status = child
            .wait()
            .map_err(|e| RuntimeError::io(&helper.program, e))?;

        let result_path = dir.join(RESULT);
        let result: Option<HelperResult> = std::fs::read(&result_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        match result {
            Some(HelperResult {
                status: Some(status),
                error: None,
            }) => Ok(RunOutcome {
                status,
                timed_out,
                cancelled,
            }),
            Some(HelperResult {
                error: Some(message),
                ..
            }) => Err(RuntimeError::Setup { message }),
            _ => {
                // The helper died without a result: its container may still run.
                let cleanup = clean_dir(dir);
                if let Err(message) = cleanup {
                    return Err(RuntimeError::Cleanup {
                        id: id.to_owned(),
                        message,
                    });
                }
                let _ = std::fs::remove_dir_all(dir);
                if timed_out || cancelled {
                    Ok(RunOutcome {
                        status: ExitStatus::Signal(9),
                        timed_out,
                        cancelled,
                    })
                } else {
                    Err(RuntimeError::HelperDied {
                        id: id.to_owned(),
                        status: status.to_string(),
                    })
                }
            }
        }
    }

    /// Kill and delete containers whose helper process is gone (after a SIGKILL
    /// of hoist); returns how many.
    pub fn cleanup_stale(&self) -> Result<usize, RuntimeError> {
        let dir = &self.config.state_dir;
        let entries = std::fs::read_dir(dir).map_err(|e| RuntimeError::io(dir, e))?;
        let mut count = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(id) = name.to_str().filter(|n| n.starts_with("hoist-")) else {
                continue;
            };
            let path = entry.path();
            // Detached tasks are listed and removed through `tasks`/`remove`.
            if crate::task::is_task(&path) || !is_stale(&path) {
                continue;
            }
            clean_dir(&path).map_err(|message| RuntimeError::Cleanup {
                id: id.to_owned(),
                message,
            })?;
            std::fs::remove_dir_all(&path).map_err(|e| RuntimeError::io(&path, e))?;
            count += 1;
        }
        Ok(count)
    }
}

/// Read one chunk from a pipe; EOF or an error closes it.
/// Waits up to `wait_ms` for output on the open `pipes` or for the process behind
/// `pidfd` to exit; returns the indices of readable pipes and whether it exited.
pub(crate) fn poll_pipes(
    pipes: &[(Stream, Option<OwnedFd>)],
    pidfd: Option<&OwnedFd>,
    wait_ms: u64,
) -> (Vec<usize>, bool) {
    let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(3);
    let mut which: Vec<Option<usize>> = Vec::with_capacity(3);
    for (i, (_, fd)) in pipes.iter().enumerate() {
        if let Some(fd) = fd {
            fds.push(PollFd::new(fd, PollFlags::IN));
            which.push(Some(i));
        }
    }
    if let Some(p) = pidfd {
        fds.push(PollFd::new(p, PollFlags::IN));
        which.push(None);
    }
    let timeout = Timespec {
        tv_sec: (wait_ms / 1000) as i64,
        tv_nsec: ((wait_ms % 1000) * 1_000_000) as i64,
    };
    let _ = rustix::event::poll(&mut fds, Some(&timeout));
    let mut ready = Vec::new();
    let mut exited = false;
    for (f, w) in fds.iter().zip(&which) {
        if !f.revents().is_empty() {
            match w {
                Some(i) => ready.push(*i),
                None => exited = true,
            }
        }
    }
    (ready, exited)
}

/// Reads once from a readable pipe into `output`; closes it at its end.
pub(crate) fn read_some(
    pipe: &mut (Stream, Option<OwnedFd>),
    buf: &mut [u8],
    output: &mut dyn FnMut(Stream, &[u8]),
) {
    let Some(fd) = &pipe.1 else {
        return;
    };
    match rustix::io::read(fd, &mut *buf) {
        Ok(0) => pipe.1 = None,
        Ok(n) => output(pipe.0, &buf[..n]),
        Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => {}
        Err(_) => pipe.1 = None,
    }
}

/// Read what is buffered in the pipes without blocking.
pub(crate) fn drain(
    pipes: &mut [(Stream, Option<OwnedFd>)],
    buf: &mut [u8],
    output: &mut dyn FnMut(Stream, &[u8]),
) {
    for pipe in pipes.iter_mut() {
        let Some(fd) = &pipe.1 else { continue };
        if let Ok(flags) = rustix::fs::fcntl_getfl(fd.as_fd()) {
            let _ = rustix::fs::fcntl_setfl(fd.as_fd(), flags | rustix::fs::OFlags::NONBLOCK);
        }
        while let Some(fd) = &pipe.1 {
            match rustix::io::read(fd, &mut *buf) {
                Ok(0) => pipe.1 = None,
                Ok(n) => output(pipe.0, &buf[..n]),
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => break,
            }
        }
    }
}

/// Whether the container state in `dir` has no live helper.
pub(crate) fn is_stale(dir: &Path) -> bool {
    let pid_file = dir.join(HELPER_PID);
    match pid_file.exists() {
        true => helper::live_pid(&pid_file).is_none(),
        false => {
            let age = std::fs::metadata(dir)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok());
            age.is_some_and(|a| a > UNCLAIMED_AGE)
        }
    }
}

/// Kill and delete the container recorded in `dir`.
pub(crate) fn clean_dir(dir: &Path) -> Result<(), String> {
    let req_path: PathBuf = dir.join(REQUEST);
    let Ok(bytes) = std::fs::read(&req_path) else {
        return Ok(()); // nothing was started from here
    };
    let req: Request =
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", req_path.display()))?;
    helper::cleanup_container(dir, &req.id, &req.backend)
}
