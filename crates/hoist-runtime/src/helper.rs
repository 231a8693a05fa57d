//! The helper process (`hoist __container <state dir>`): single-threaded, it sets
//! up namespaces and the overlay, runs the container, waits for it, cleans up and
//! writes `result.json`. Also the state-dir layout and cleanup shared with the parent.

use std::ffi::{CString, OsString};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::process::{Pid, PidfdFlags, WaitOptions};
use serde::{Deserialize, Serialize};

use crate::logs::LogWriter;
use crate::spec::{EtcFiles, SpecInput};
use crate::task::TaskOptions;
use crate::{
    cgroup, user, Backend, ContainerSpec, ExitStatus, HelperCommand, Network, Rootfs, Stream,
};

/// The request the parent writes for the helper.
pub(crate) const REQUEST: &str = "request.json";
/// The helper's result, written atomically.
pub(crate) const RESULT: &str = "result.json";
/// `"<pid> <start time>"` of the helper, written by the parent (by the helper
/// itself for a detached task).
pub(crate) const HELPER_PID: &str = "helper.pid";
/// A detached task's start record, written by the helper once the container runs.
pub(crate) const STARTED: &str = "started.json";
/// A detached task's log directory.
pub(crate) const LOG_DIR: &str = "log";
/// The container's cgroup path, written by the helper before creating it.
const CGROUP_FILE: &str = "cgroup";
/// libcontainer's state root (`lc/<id>/state.json`).
pub(crate) const LC_ROOT: &str = "lc";
/// runc's `--root`.
pub(crate) const RUNC_ROOT: &str = "runc";
/// The OCI bundle (`bundle/config.json`).
pub(crate) const BUNDLE: &str = "bundle";
/// runc's log (JSON lines).
const RUNC_LOG: &str = "runc.log";

/// What the parent asks of the helper.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Request {
    pub id: String,
    pub parent_pid: i32,
    pub backend: Backend,
    pub spec: ContainerSpec,
    /// Set for a detached task (`Runtime::start`), absent for `Runtime::run`.
    #[serde(default)]
    pub task: Option<TaskRequest>,
    /// The `pasta` program, found by the parent, for [`Network::Outbound`].
    #[serde(default)]
    pub pasta: Option<PathBuf>,
}

/// What a detached task's helper needs beyond a run's request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TaskRequest {
    pub options: TaskOptions,
    /// How to start the helper again, detached from the caller.
    pub helper: HelperCommand,
}

/// What a detached task's helper records once the container runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Started {
    /// The container's init process (the OCI runtime's for [`Backend::Oci`]).
    pub pid: i32,
    /// RFC 3339.
    pub at: String,
}

/// What the helper reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct HelperResult {
    pub status: Option<ExitStatus>,
    pub error: Option<String>,
}

/// Entry point for `hoist __container <state dir>`: returns the helper's exit code
/// (0 when it wrote a result, whatever the container's status).
pub fn helper_main(args: Vec<OsString>) -> i32 {
    if args.first().is_some_and(|a| a == "--spawn") {
        return match args.get(1) {
            Some(dir) => spawn_detached(Path::new(dir)),
            None => 2,
        };
    }
    if args.first().is_some_and(|a| a == "--exec") {
        return match (args.get(1), args.get(2)) {
            (Some(dir), Some(request)) => {
                crate::exec::exec_main(Path::new(dir), Path::new(request))
            }
            _ => 2,
        };
    }
    if args.first().is_some_and(|a| a == "--health") {
        return match args.get(1) {
            Some(dir) => crate::health::health_main(Path::new(dir)),
            None => 2,
        };
    }
    let Some(dir) = args.first().map(PathBuf::from) else {
        return 2;
    };
    let result = match helper(&dir) {
        Ok(status) => HelperResult {
            status: Some(status),
            error: None,
        },
        Err(message) => HelperResult {
            status: None,
            error: Some(message),
        },
    };
    match write_atomic(&dir.join(RESULT), &result) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

/// `hoist __container --spawn <dir>`: start the task's real helper in its own
/// process group and return at once, so the helper is nobody's child (it is
/// adopted by init) and outlives the caller. A failure to start it is recorded as
/// the task's result.
fn spawn_detached(dir: &Path) -> i32 {
    use std::os::unix::process::CommandExt;
    let spawned = read_request(dir).and_then(|req| {
        let task = req
            .task
            .ok_or_else(|| "the request is not a task's".to_owned())?;
        Command::new(&task.helper.program)
            .args(&task.helper.args)
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("{}: {e}", task.helper.program.display()))
    });
    match spawned {
        Ok(_) => 0,
        Err(message) => {
            let result = HelperResult {
                status: None,
                error: Some(message),
            };
            match write_atomic(&dir.join(RESULT), &result) {
                Ok(()) => 0,
                Err(_) => 1,
            }
        }
    }
}

pub(crate) fn read_request(dir: &Path) -> Result<Request, String> {
    let path = dir.join(REQUEST);
    let text = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A live process's start time (clock ticks after boot), to tell it from a reused
/// pid; `None` for a zombie or a process that is gone.
pub(crate) fn start_time(pid: Pid) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.as_raw_nonzero())).ok()?;
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    if fields.next()? == "Z" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// The pid recorded in a `"<pid> <start time>"` file, if that process still runs.
pub(crate) fn live_pid(file: &Path) -> Option<Pid> {
    let text = std::fs::read_to_string(file).ok()?;
    let mut parts = text.split_whitespace();
    let pid = Pid::from_raw(parts.next()?.parse().ok()?)?;
    let start: u64 = parts.next()?.parse().ok()?;
    (start_time(pid) == Some(start)).then_some(pid)
}

pub(crate) fn write_atomic<T: Serialize>(path: &Path, value: &T) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    let bytes = serde_json::to_vec(value).map_err(|e| e.to_string())?;
    let mut f = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    f.write_all(&bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Why the helper stopped waiting.
enum Wake {
    Exited,
    Signal,
    ParentGone,
}

struct Signals {
    read: UnixStream,
}

impl Signals {
    /// SIGTERM, SIGINT, SIGHUP (and PR_SET_PDEATHSIG's SIGTERM) write to a pipe.
    fn install() -> Result<Signals, String> {
        let (read, write) = UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
        read.set_nonblocking(true).map_err(|e| e.to_string())?;
        write.set_nonblocking(true).map_err(|e| e.to_string())?;
        for sig in [
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGHUP,
        ] {
            let w = write.try_clone().map_err(|e| e.to_string())?;
            signal_hook::low_level::pipe::register(sig, w)
                .map_err(|e| format!("signal handler: {e}"))?;
        }
        Ok(Signals { read })
    }

    fn pending(&self) -> bool {
        let mut buf = [0u8; 16];
        matches!(rustix::io::read(&self.read, &mut buf), Ok(n) if n > 0)
    }
}

fn parent_gone(parent: i32) -> bool {
    rustix::process::getppid().map(|p| p.as_raw_nonzero().get()) != Some(parent)
}

/// Whom the helper answers to while its container runs.
pub(crate) enum Watch<'a> {
    /// A `Runtime::run`: a signal or the parent's death kills the container.
    Parent(i32),
    /// A detached task: its output goes to the log; a signal stops the container
    /// gracefully (`SIGTERM`, then `SIGKILL` after the stop timeout).
    Task(&'a mut TaskIo),
}

/// Wait until the process behind `pidfd` exits, acting on signals (and, for a
/// task, copying output to the log) meanwhile; `kill` sends a signal number to
/// the container.
fn supervise(pidfd: &OwnedFd, signals: &Signals, watch: Watch<'_>, kill: &mut dyn FnMut(i32)) {
    match watch {
        Watch::Parent(parent) => {
            if let Wake::Signal | Wake::ParentGone = wait_for(pidfd, signals, parent) {
                kill(9);
            }
        }
        Watch::Task(io) => io.supervise(pidfd, signals, kill),
    }
}

/// Wait until `pid` exits, a signal arrives, or the parent goes away.
fn wait_for(pidfd: &OwnedFd, signals: &Signals, parent: i32) -> Wake {
    loop {
        if signals.pending() {
            return Wake::Signal;
        }
        if parent_gone(parent) {
            return Wake::ParentGone;
        }
        let mut fds = [
            PollFd::new(pidfd, PollFlags::IN),
            PollFd::new(&signals.read, PollFlags::IN),
        ];
        let timeout = Timespec {
            tv_sec: 1,
            tv_nsec: 0,
        };
        let _ = rustix::event::poll(&mut fds, Some(&timeout));
        if !fds[0].revents().is_empty() {
            return Wake::Exited;
        }
    }
}

/// A detached task's output: the read ends of the pipes that are the container's
/// stdout and stderr, and the log they go to.
pub(crate) struct TaskIo {
    pipes: [(Stream, Option<OwnedFd>); 2],
    log: LogWriter,
    stop_timeout: std::time::Duration,
    /// How to start `--health` when the task has a probe.
    health_helper: Option<HelperCommand>,
    /// The running `--health` process.
    health: Option<std::process::Child>,
}

impl TaskIo {
    /// Make pipes the helper's own stdout and stderr, so the container inherits
    /// their write ends.
    fn new(dir: &Path, task: &TaskRequest) -> Result<TaskIo, String> {
        let options = &task.options;
        use rustix::pipe::{pipe_with, PipeFlags};
        let log = LogWriter::new(
            &dir.join(LOG_DIR),
            options.log_max_bytes,
            options.log_max_files,
        )
        .map_err(|e| format!("{}: {e}", dir.join(LOG_DIR).display()))?;
        let (out_r, out_w) = pipe_with(PipeFlags::CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        let (err_r, err_w) = pipe_with(PipeFlags::CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        rustix::stdio::dup2_stdout(&out_w).map_err(|e| format!("dup2 stdout: {e}"))?;
        rustix::stdio::dup2_stderr(&err_w).map_err(|e| format!("dup2 stderr: {e}"))?;
        Ok(TaskIo {
            pipes: [(Stream::Stdout, Some(out_r)), (Stream::Stderr, Some(err_r))],
            log,
            stop_timeout: options.stop_timeout,
            health_helper: options.health.as_ref().map(|_| task.helper.clone()),
            health: None,
        })
    }

    /// Once the container runs: start probing it (`--health`), if it has a probe.
    fn start_health(&mut self, dir: &Path) -> Result<(), String> {
        let Some(helper) = &self.health_helper else {
            return Ok(());
        };
        let child = Command::new(&helper.program)
            .args(&helper.args)
            .arg("--health")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!(
                    "starting the health probe {}: {e}",
                    helper.program.display()
                )
            })?;
        self.health = Some(child);
        Ok(())
    }

    /// No more probes: the task is stopping or has ended.
    fn stop_health(&mut self) {
        if let Some(mut child) = self.health.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Once the container runs, let go of the helper's own write ends, so the
    /// pipes end when the container's processes are gone.
    fn release_stdio(&self) -> Result<(), String> {
        let null = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .map_err(|e| format!("/dev/null: {e}"))?;
        rustix::stdio::dup2_stdout(&null).map_err(|e| format!("dup2 stdout: {e}"))?;
        rustix::stdio::dup2_stderr(&null).map_err(|e| format!("dup2 stderr: {e}"))
    }

    fn supervise(&mut self, pidfd: &OwnedFd, signals: &Signals, kill: &mut dyn FnMut(i32)) {
        let mut buf = vec![0u8; 64 * 1024];
        let mut stop_deadline: Option<std::time::Instant> = None;
        let mut killed = false;
        loop {
            if signals.pending() && stop_deadline.is_none() {
                self.stop_health();
                kill(15);
                stop_deadline = Some(std::time::Instant::now() + self.stop_timeout);
            }
            if let Some(d) = stop_deadline {
                if !killed && std::time::Instant::now() >= d {
                    kill(9);
                    killed = true;
                }
            }
            let mut fds = vec![
                PollFd::new(pidfd, PollFlags::IN),
                PollFd::new(&signals.read, PollFlags::IN),
            ];
            let mut which = Vec::new();
            for (i, (_, fd)) in self.pipes.iter().enumerate() {
                if let Some(fd) = fd {
                    fds.push(PollFd::new(fd, PollFlags::IN));
                    which.push(i);
                }
            }
            let timeout = Timespec {
                tv_sec: 0,
                tv_nsec: 200_000_000,
            };
            let _ = rustix::event::poll(&mut fds, Some(&timeout));
            let exited = !fds[0].revents().is_empty();
            let ready: Vec<usize> = fds[2..]
                .iter()
                .zip(&which)
                .filter(|(f, _)| !f.revents().is_empty())
                .map(|(_, &i)| i)
                .collect();
            drop(fds);
            for i in ready {
                self.read_pipe(i, &mut buf, false);
            }
            if exited {
                self.stop_health();
                for i in 0..self.pipes.len() {
                    self.read_pipe(i, &mut buf, true);
                }
                let _ = self.log.finish();
                return;
            }
        }
    }

    /// Copy what a pipe holds to the log; `drain` reads until it would block.
    fn read_pipe(&mut self, i: usize, buf: &mut [u8], drain: bool) {
        let (stream, slot) = &mut self.pipes[i];
        let Some(fd) = slot.as_ref() else { return };
        if drain {
            if let Ok(flags) = rustix::fs::fcntl_getfl(fd) {
                let _ = rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK);
            }
        }
        loop {
            match rustix::io::read(fd, &mut *buf) {
                Ok(0) => {
                    *slot = None;
                    return;
                }
                Ok(n) => {
                    // A full disk must not stop the task; the entry is lost.
                    let _ = self.log.write(*stream, &buf[..n]);
                    if !drain {
                        return;
                    }
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::AGAIN) => return,
                Err(_) => {
                    *slot = None;
                    return;
                }
            }
        }
    }
}

/// The process `raw` (described as `what` in errors) and a pidfd on it.
pub(crate) fn open_pid(raw: i32, what: &str) -> Result<(Pid, OwnedFd), String> {
    let pid = Pid::from_raw(raw).ok_or_else(|| format!("bad {what} pid {raw}"))?;
    let pidfd = rustix::process::pidfd_open(pid, PidfdFlags::empty())
        .map_err(|e| format!("pidfd_open({raw}): {e}"))?;
    Ok((pid, pidfd))
}

pub(crate) fn reap(pid: Pid) -> Result<ExitStatus, String> {
    loop {
        match rustix::process::waitpid(Some(pid), WaitOptions::empty()) {
            Ok(Some((_, st))) => {
                if let Some(code) = st.exit_status() {
                    return Ok(ExitStatus::Code(code));
                }
                if let Some(sig) = st.terminating_signal() {
                    return Ok(ExitStatus::Signal(sig));
                }
            }
            Ok(None) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(format!("waitpid {}: {e}", pid.as_raw_nonzero())),
        }
    }
}

fn helper(dir: &Path) -> Result<ExitStatus, String> {
    let signals = Signals::install()?;
    let req = read_request(dir)?;
    if req.task.is_some() {
        // A task outlives whoever started it: its own session, no death signal.
        let _ = rustix::process::setsid();
        let me = rustix::process::getpid();
        let start = start_time(me).ok_or_else(|| "reading the helper's start time".to_owned())?;
        let pid_path = dir.join(HELPER_PID);
        std::fs::write(&pid_path, format!("{} {start}\n", me.as_raw_nonzero()))
            .map_err(|e| format!("{}: {e}", pid_path.display()))?;
    } else {
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))
            .map_err(|e| format!("prctl(PR_SET_PDEATHSIG): {e}"))?;
        if parent_gone(req.parent_pid) {
            return Err("the parent exited before the container started".to_owned());
        }
    }

    let dir = dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let cg = cgroup::container_path(&req.id)?;
    std::fs::write(dir.join(CGROUP_FILE), cg.as_os_str().as_encoded_bytes())
        .map_err(|e| format!("{}: {e}", dir.join(CGROUP_FILE).display()))?;

    let result = setup_and_run(&dir, &req, &cg, &signals);
    let cleaned = cleanup_container(&dir, &req.id, &req.backend);
    match (result, cleaned) {
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(e),
        (Ok(status), Ok(())) => Ok(status),
    }
}

fn setup_and_run(
    dir: &Path,
    req: &Request,
    cg: &Path,
    signals: &Signals,
) -> Result<ExitStatus, String> {
    let spec = &req.spec;
    if spec.args.is_empty() {
        return Err("container spec has no args".to_owned());
    }
    if !spec.cwd.starts_with('/') {
        return Err(format!("working directory {:?} is not absolute", spec.cwd));
    }
    // A private mount namespace: the overlay lives and dies with this process.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
    rustix::mount::mount_change(
        "/",
        rustix::mount::MountPropagationFlags::PRIVATE | rustix::mount::MountPropagationFlags::REC,
    )
    .map_err(|e| format!("making mounts private: {e}"))?;
    if matches!(spec.network, Network::None | Network::Outbound) {
        // The host's namespace, for pasta to live in.
        let host_ns = std::fs::File::open("/proc/self/ns/net")
            .map_err(|e| format!("/proc/self/ns/net: {e}"))?;
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("unshare(CLONE_NEWNET): {e}"))?;
        loopback_up()?;
        if spec.network == Network::Outbound {
            // Before the overlay is mounted, so pasta's copy of this mount
            // namespace holds nothing of the container's.
            let pasta = match &req.pasta {
                Some(p) => p.clone(),
                None => crate::outbound::find_pasta().map_err(|e| e.to_string())?,
            };
            crate::outbound::start(dir, &pasta, &host_ns)?;
        }
    }

    let rootfs = match &spec.rootfs {
        Rootfs::Dir(p) => p
            .canonicalize()
            .map_err(|e| format!("rootfs {}: {e}", p.display()))?,
        Rootfs::Overlay {
            lowers,
            upper,
            work,
        } => mount_overlay(dir, lowers, upper, work)?,
    };

    let root_fd = user::open_root(&rootfs)?;
    let passwd = user::read_in_root(&root_fd, "/etc/passwd")?;
    let group = user::read_in_root(&root_fd, "/etc/group")?;
    let resolved = user::resolve(&spec.user, passwd.as_deref(), group.as_deref())?;
    user::ensure_dir_in_root(&root_fd, &spec.cwd, resolved.uid, resolved.gid)?;
    drop(root_fd);

    let hostname = if spec.hostname.is_empty() {
        "hoist"
    } else {
        spec.hostname.as_str()
    };
    let etc = write_etc_files(dir, hostname, spec.network)?;
    let oci = crate::spec::oci_spec(&SpecInput {
        spec,
        rootfs: &rootfs,
        user: &resolved,
        etc: &etc,
        cgroups_path: cg.to_path_buf(),
        hostname,
    })?;
    let bundle = dir.join(BUNDLE);
    std::fs::create_dir_all(&bundle).map_err(|e| format!("{}: {e}", bundle.display()))?;
    oci.save(bundle.join("config.json"))
        .map_err(|e| format!("{}: {e}", bundle.join("config.json").display()))?;

    let mut task_io = match &req.task {
        Some(task) => Some(TaskIo::new(dir, task)?),
        None => None,
    };
    let ctx = RunContext {
        dir,
        id: &req.id,
        bundle: &bundle,
        signals,
    };
    let watch = match task_io.as_mut() {
        Some(io) => Watch::Task(io),
        None => Watch::Parent(req.parent_pid),
    };
    match &req.backend {
        Backend::Embedded => run_embedded(&ctx, watch),
        Backend::Oci(runc) => run_oci(&ctx, runc, watch),
    }
}

/// What both backends need to run the container.
struct RunContext<'a> {
    dir: &'a Path,
    id: &'a str,
    bundle: &'a Path,
    signals: &'a Signals,
}

/// For a task, once its container runs: record the start and release the pipes.
fn started(ctx: &RunContext<'_>, watch: &mut Watch<'_>, pid: i32) -> Result<(), String> {
    let Watch::Task(io) = watch else {
        return Ok(());
    };
    io.release_stdio()?;
    io.start_health(ctx.dir)?;
    let record = Started {
        pid,
        at: humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
    };
    write_atomic(&ctx.dir.join(STARTED), &record)
}

/// Bring up `lo` in the helper's new network namespace.
fn loopback_up() -> Result<(), String> {
    use libcontainer::network::link::LinkClient;
    let mut client = LinkClient::new(libcontainer::network::wrapper::create_network_client())
        .map_err(|e| format!("netlink: {e}"))?;
    let lo = client
        .get_by_name("lo")
        .map_err(|e| format!("netlink: looking up lo: {e}"))?;
    client
        .set_up(lo.header.index)
        .map_err(|e| format!("netlink: setting lo up: {e}"))
}

/// Escape a path for an overlayfs option (`\`, `,` and `:` are special).
fn escape_overlay(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if matches!(c, '\\' | ',' | ':') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Mount data must fit in one page; past this, lowers are named relative to their
/// common parent (the helper's cwd).
const OVERLAY_DATA_MAX: usize = 4000;

fn common_parent(paths: &[PathBuf]) -> PathBuf {
    let mut common: Option<PathBuf> = None;
    for p in paths {
        let parent = p.parent().unwrap_or(Path::new("/")).to_path_buf();
        common = Some(match common {
            None => parent,
            Some(c) => {
                let mut out = PathBuf::new();
                for (a, b) in c.components().zip(parent.components()) {
                    if a != b {
                        break;
                    }
                    out.push(a);
                }
                out
            }
        });
    }
    common.unwrap_or_else(|| PathBuf::from("/"))
}

pub(crate) fn overlay_data(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    relative_to: Option<&Path>,
) -> Result<String, String> {
    let name = |p: &Path| -> Result<String, String> {
        let p = match relative_to {
            Some(base) => p
                .strip_prefix(base)
                .map_err(|_| format!("{} is not under {}", p.display(), base.display()))?,
            None => p,
        };
        p.to_str()
            .map(escape_overlay)
            .ok_or_else(|| format!("{}: not UTF-8", p.display()))
    };
    let lower = lowers
        .iter()
        .map(|l| name(l))
        .collect::<Result<Vec<_>, _>>()?
        .join(":");
    let abs = |p: &Path| {
        p.to_str()
            .map(escape_overlay)
            .ok_or_else(|| format!("{}: not UTF-8", p.display()))
    };
    Ok(format!(
        "lowerdir={lower},upperdir={},workdir={}",
        abs(upper)?,
        abs(work)?
    ))
}

fn mount_overlay(
    dir: &Path,
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
) -> Result<PathBuf, String> {
    let canon = |p: &Path| {
        p.canonicalize()
            .map_err(|e| format!("overlay dir {}: {e}", p.display()))
    };
    let mut lowers = lowers
        .iter()
        .map(|l| canon(l))
        .collect::<Result<Vec<_>, _>>()?;
    if lowers.is_empty() {
        let empty = dir.join("empty");
        std::fs::create_dir_all(&empty).map_err(|e| format!("{}: {e}", empty.display()))?;
        lowers.push(empty);
    }
    let (upper, work) = (canon(upper)?, canon(work)?);
    let mut data = overlay_data(&lowers, &upper, &work, None)?;
    if data.len() > OVERLAY_DATA_MAX {
        let base = common_parent(&lowers);
        data = overlay_data(&lowers, &upper, &work, Some(&base))?;
        if data.len() > OVERLAY_DATA_MAX {
            return Err(format!(
                "overlay options for {} lower dirs are {} bytes even relative to {}, over the \
                 kernel's one-page limit",
                lowers.len(),
                data.len(),
                base.display()
            ));
        }
        // The helper's own cwd; nothing else in it is relative.
        std::env::set_current_dir(&base).map_err(|e| format!("{}: {e}", base.display()))?;
    }
    let target = dir.join("rootfs");
    std::fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;
    let data = CString::new(data).map_err(|_| "overlay options contain NUL".to_owned())?;
    rustix::mount::mount(
        "overlay",
        &target,
        "overlay",
        rustix::mount::MountFlags::empty(),
        Some(data.as_c_str()),
    )
    .map_err(|e| {
        format!(
            "mounting overlay at {} ({} lowers, upper {}): {e}",
            target.display(),
            lowers.len(),
            upper.display()
        )
    })?;
    Ok(target)
}

fn write_etc_files(dir: &Path, hostname: &str, network: Network) -> Result<EtcFiles, String> {
    let etc = dir.join("etc");
    std::fs::create_dir_all(&etc).map_err(|e| format!("{}: {e}", etc.display()))?;
    let files = EtcFiles {
        hosts: etc.join("hosts"),
        hostname: etc.join("hostname"),
        resolv_conf: etc.join("resolv.conf"),
    };
    let hosts = format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
    );
    let resolv = match network {
        Network::Host => std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        Network::None => String::new(),
        Network::Outbound => crate::outbound::resolv_conf(
            &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        ),
    };
    for (path, text) in [
        (&files.hosts, hosts),
        (&files.hostname, format!("{hostname}\n")),
        (&files.resolv_conf, resolv),
    ] {
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(files)
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

fn run_embedded(ctx: &RunContext<'_>, mut watch: Watch<'_>) -> Result<ExitStatus, String> {
    use libcontainer::container::builder::ContainerBuilder;
    use libcontainer::syscall::syscall::SyscallType;

    // stdin, stdout and stderr are inherited: /dev/null and the parent's pipes (a
    // task's log pipes).
    let mut container = ContainerBuilder::new(ctx.id.to_owned(), SyscallType::default())
        .with_root_path(ctx.dir.join(LC_ROOT))
        .map_err(|e| error_chain(&e))?
        .validate_id()
        .map_err(|e| error_chain(&e))?
        .as_init(ctx.bundle)
        .with_systemd(false)
        .with_detach(false)
        .build()
        .map_err(|e| format!("creating the container: {}", error_chain(&e)))?;
    container
        .start()
        .map_err(|e| format!("starting the container: {}", error_chain(&e)))?;
    let raw = container
        .pid()
        .ok_or_else(|| "the container has no init pid".to_owned())?
        .as_raw();
    let (pid, pidfd) = open_pid(raw, "init")?;
    started(ctx, &mut watch, raw)?;
    supervise(&pidfd, ctx.signals, watch, &mut |signo| {
        let _ = container.refresh_status();
        if container.can_kill() {
            if let Ok(sig) = libcontainer::signal::Signal::try_from(signo) {
                // SIGKILL goes to every process; SIGTERM to init only, as Docker.
                let _ = container.kill(sig, signo == 9);
            }
        }
    });
    reap(pid)
}

fn run_oci(ctx: &RunContext<'_>, runc: &Path, mut watch: Watch<'_>) -> Result<ExitStatus, String> {
    let (dir, id, bundle) = (ctx.dir, ctx.id, ctx.bundle);
    let mut child = Command::new(runc)
        .arg("--root")
        .arg(dir.join(RUNC_ROOT))
        .arg("--log")
        .arg(dir.join(RUNC_LOG))
        .args(["--log-format", "json", "run", "--bundle"])
        .arg(bundle)
        .arg(id)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", runc.display()))?;
    let raw = i32::try_from(child.id()).map_err(|e| e.to_string())?;
    let (_, pidfd) = open_pid(raw, "runc")?;
    started(ctx, &mut watch, raw)?;
    supervise(&pidfd, ctx.signals, watch, &mut |signo| {
        let sig = if signo == 9 { "KILL" } else { "TERM" };
        let _ = runc_cmd(dir, runc, &["kill", id, sig]);
    });
    let status = child.wait().map_err(|e| format!("waiting for runc: {e}"))?;
    if let Some(message) = runc_errors(&dir.join(RUNC_LOG)) {
        return Err(format!("runc: {message}"));
    }
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(c), _) => ExitStatus::Code(c),
        (None, Some(s)) => ExitStatus::Signal(s),
        (None, None) => ExitStatus::Code(255),
    })
}

/// Error and fatal messages from runc's JSON log.
fn runc_errors(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let msgs: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| matches!(v["level"].as_str(), Some("error" | "fatal")))
        .filter_map(|v| v["msg"].as_str().map(str::to_owned))
        .collect();
    (!msgs.is_empty()).then(|| msgs.join("; "))
}

fn runc_cmd(dir: &Path, runc: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new(runc)
        .arg("--root")
        .arg(dir.join(RUNC_ROOT))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("{}: {e}", runc.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "runc {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Kill and delete container `id` recorded under `dir` (whether or not it exists
/// or still runs), then remove its cgroup directories. Safe to call from a
/// multi-threaded process: it forks nothing but, for runc, `runc` itself.
pub(crate) fn cleanup_container(dir: &Path, id: &str, backend: &Backend) -> Result<(), String> {
    let mut result = Ok(());
    match backend {
        Backend::Embedded => {
            let root = dir.join(LC_ROOT).join(id);
            if root.join("state.json").exists() {
                match libcontainer::container::Container::load(root.clone()) {
                    Ok(mut c) => {
                        if let Err(e) = c.delete(true) {
                            result = Err(format!("deleting container {id}: {}", error_chain(&e)));
                        }
                    }
                    Err(e) => {
                        result = Err(format!("loading container {id}: {}", error_chain(&e)));
                    }
                }
            }
        }
        Backend::Oci(runc) => {
            if dir.join(RUNC_ROOT).join(id).exists() {
                let _ = runc_cmd(dir, runc, &["kill", id, "KILL"]);
                result = runc_cmd(dir, runc, &["delete", "-f", id]);
            }
        }
    }
    if let Ok(cg) = std::fs::read_to_string(dir.join(CGROUP_FILE)) {
        cgroup::remove(Path::new(cg.trim()));
    }
    // The container's pasta (Network::Outbound), once nothing uses the namespace.
    if let Err(e) = crate::outbound::stop(dir) {
        result = result.and(Err(e));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_data_escapes_and_relativizes() {
        let lowers = vec![PathBuf::from("/l/a:b"), PathBuf::from("/l/c,d")];
        let d = overlay_data(&lowers, Path::new("/u"), Path::new("/w"), None).unwrap();
        assert_eq!(d, "lowerdir=/l/a\\:b:/l/c\\,d,upperdir=/u,workdir=/w");
        let base = common_parent(&lowers);
        assert_eq!(base, PathBuf::from("/l"));
        let d = overlay_data(&lowers, Path::new("/u"), Path::new("/w"), Some(&base)).unwrap();
        assert!(d.starts_with("lowerdir=a\\:b:c\\,d,"), "{d}");
    }
}
