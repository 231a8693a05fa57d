//! The container runtime: runs one process in a container made from a root file
//! system, with Docker-like isolation, through youki's `libcontainer` inside a
//! re-executed single-threaded helper process (or an OCI runtime binary).
//!
//! It must not know about images, layers, registries or builds: callers hand it a
//! prepared rootfs (a directory or overlay lower/upper/work dirs).
//!
//! # Shape
//!
//! [`Runtime::run`] takes a [`ContainerSpec`] and blocks until the process exits,
//! streaming its stdout and stderr (kept apart) to a callback on the calling thread,
//! and returns a [`RunOutcome`]. It never forks inside the caller: it starts a
//! *helper*, the caller's own binary re-executed ([`HelperCommand`], for hoist
//! `hoist __container <dir>`), whose entry point is [`helper_main`]. The helper:
//!
//! 1. reads `request.json` from the per-container state dir `<state_dir>/<id>/`
//!    (ids are `hoist-<16 hex>`; the parent also records `helper.pid` there);
//! 2. enters a private mount namespace (and, for [`Network::None`] and
//!    [`Network::Outbound`], a new network namespace whose `lo` it brings up, with
//!    `pasta` attached for the latter: see below), mounts the overlay there, so the
//!    mount vanishes with the helper even after a `SIGKILL`;
//! 3. resolves the user from the rootfs's `/etc/passwd` and `/etc/group`, creates
//!    the working directory, writes `/etc/hosts`, `/etc/hostname` and
//!    `/etc/resolv.conf` into the state dir (bind-mounted read-only, as in a Docker
//!    build), and builds one OCI runtime spec (`spec.rs`);
//! 4. runs it with `libcontainer` while still single-threaded ([`Backend::Embedded`]),
//!    or writes an OCI bundle and runs `runc run` ([`Backend::Oci`]);
//! 5. waits on a pidfd together with a signal pipe (`SIGTERM`/`SIGINT` from the
//!    parent, or the parent's death through `PR_SET_PDEATHSIG`) and a periodic
//!    `getppid` check; any of those kills the container;
//! 6. always deletes the container and its cgroup directories (and kills its
//!    `pasta`), then writes
//!    `result.json` atomically (exit status or setup error), never mixing its own
//!    messages into the container's stderr.
//!
//! The parent turns a timeout or a cancel flag into `SIGTERM` to the helper, then
//! `SIGKILL` after a grace period. A helper that died without a result has its
//! container killed and deleted through the state dir; [`Runtime::cleanup_stale`]
//! does the same for every container whose helper is gone (after hoist itself was
//! killed). The parent changes no process-wide state (cwd, signal handlers, umask).
//!
//! # Detached tasks
//!
//! [`Runtime::start`] runs a container as a *task* that outlives its caller (a
//! service replica): the helper is started through `hoist __container --spawn`,
//! which leaves it adopted by init, in its own session, with no death signal. It
//! copies the container's stdout and stderr into rotated Docker `json-file` logs
//! ([`logs`]), records `started.json` and finally `result.json`, and answers
//! `SIGTERM` with a graceful stop (`SIGTERM` to the container, `SIGKILL` after
//! [`TaskOptions::stop_timeout`]). [`Runtime::tasks`] lists tasks from the state dir
//! alone, so a restarted controller adopts them; [`TaskInfo::netns`] is the task's
//! network namespace, where a load balancer connects to it. See module `task`.
//!
//! # Exec and health checks
//!
//! [`Runtime::exec`] runs one more process in a running task's container, as
//! `docker exec` does (its namespaces, cgroup, root, user and environment), with a
//! timeout and bounded output: a fresh helper (`hoist __container --exec`) joins
//! the container with libcontainer's tenant builder, or runs `runc exec`. See
//! module `exec`.
//!
//! A task started with [`TaskOptions::health`] (a [`Probe`]: an image's
//! `HEALTHCHECK`) is probed by a `hoist __container --health` process its helper
//! starts once the container runs, through that same exec path, every interval,
//! and its verdict is written atomically to `health.json` in the task's state dir
//! in the shape of Docker's `State.Health` ([`Health`], [`TaskInfo::health`],
//! [`Runtime::health_file`]). It depends on nothing but the helper, so it goes on
//! while the controller is down; the proxy reads the file. See [`health`].
//!
//! # Outbound network
//!
//! A service that calls out (a database, an API) runs with [`Network::Outbound`]:
//! its own namespace as with [`Network::None`], so the load balancer still reaches
//! it on `127.0.0.1:PORT` inside [`TaskInfo::netns`] and replicas never compete for
//! host ports, plus a tap interface served by `pasta` (Debian's `passt`), a
//! user-mode network stack that turns the namespace's connections into ordinary
//! sockets of the host. No bridge, no NAT rules, no veth pairs, no root-owned
//! network state outside the namespace: what pasta cannot do, the task cannot do.
//!
//! The helper runs pasta from the host's namespace right after creating the
//! container's, before the overlay is mounted and before the container exists, with
//! `--config-net` (the namespace gets the host's address and routes; pasta returns
//! once they are set), no port forwarding in either direction (`-t/-u/-T/-U none`),
//! and `--dns-forward 169.254.1.1`, the only nameserver of the container's
//! `resolv.conf` (the host's `search` and `options` lines are kept): pasta sends
//! those queries to the host's first resolver, which may well be on the host's
//! loopback. pasta runs as root (`--runas 0`, keeping only `CAP_NET_ADMIN`,
//! `CAP_NET_BIND_SERVICE` and `CAP_SYS_ADMIN`, in its own mount and PID
//! namespaces) and opens the namespace through a descriptor it inherits, since it
//! may not open `/proc/<helper>/ns/net` of a process with more capabilities. It
//! forks to the background; the helper records its pid (`pasta.pid`, with its
//! start time) and whoever deletes the container (the helper when the container
//! ends, [`Runtime::stop`], [`Runtime::remove`] or [`Runtime::cleanup_stale`] after
//! a helper died) kills it and waits until it is gone. The parent checks that
//! `pasta` is on `PATH` before starting anything
//! ([`RuntimeError::MissingProgram`]). It works the same with both backends, since
//! neither lists a network namespace in the OCI spec.
//!
//! pasta runs with `--no-map-gw`: the gateway address is not an alias of the
//! host's loopback, so a task cannot reach what listens on the host's `127.0.0.1`
//! (the proxy's admin API, a loopback registry), as behind a Docker bridge. It
//! reaches other hosts, and the host's own non-loopback addresses other than the
//! one pasta copies into the namespace.
//!
//! # Isolation (Docker's defaults)
//!
//! New PID, mount, UTS, IPC and cgroup namespaces; a new network namespace with only
//! `lo` (up) for [`Network::None`], the same with pasta's tap interface for
//! [`Network::Outbound`], the host's for [`Network::Host`]. Docker's default
//! capability set (bounding; also effective/permitted for uid 0 only, as Docker does
//! since 20.10), `no_new_privileges`, Docker's masked and read-only `/proc` and
//! `/sys` paths, a tmpfs `/dev` with null, zero, full, random, urandom, tty, pts,
//! shm and mqueue, a device cgroup that denies everything else, and cgroup limits
//! (memory, pids, cpu) only when set. Cgroups are nested under the caller's own
//! cgroup (its memory cgroup on v1, its unified path on v2), so a sandboxed caller's
//! limit also bounds its containers.
//!
//! With the `seccomp` feature (default) every container gets a seccomp filter. It
//! is a **denylist**, not Docker's allowlist: everything is allowed except the
//! syscalls Docker's default profile refuses to a container with default
//! capabilities (module loading, kexec, mount and pivot_root and the new mount API,
//! swap, reboot, bpf, perf_event_open, userfaultfd, keyrings, unshare/setns and
//! namespace flags of clone, open_by_handle_at, acct, clock setting, iopl/ioperm,
//! quotactl, NUMA policy, ...), which fail with `EPERM` (`clone3` with `ENOSYS`, so
//! libc falls back to `clone`, as with Docker). Syscalls unknown to the running
//! architecture are skipped; foreign-architecture syscalls are killed by libseccomp.
//!
//! # What it does not do
//!
//! No images, layers or snapshots; no TTYs or stdin (stdin is `/dev/null`); no user
//! namespaces, port publishing or bridge networks; no egress filtering of
//! [`Network::Outbound`] tasks; no AppArmor/SELinux. cgroup v2
//! support is written from the documentation and untested on the development
//! machines, which run hybrid v1.

mod cgroup;
mod exec;
pub mod health;
mod helper;
pub mod logs;
mod outbound;
mod run;
mod spec;
mod task;
pub mod user;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use exec::{ExecOptions, ExecOutcome};
pub use health::{Health, HealthResult, HealthStatus, Probe, ProbeCommand};
pub use helper::helper_main;
pub use run::Runtime;
pub use task::{task_log_dir, TaskInfo, TaskOptions, TaskState};

/// How a [`Runtime`] runs containers and where it keeps their state.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Per-container state goes to `<state_dir>/<id>/`; created if missing.
    pub state_dir: PathBuf,
    /// Which runtime creates the container.
    pub backend: Backend,
    /// How to start the helper process (the caller's binary, re-executed).
    pub helper: HelperCommand,
}

/// Which runtime creates the container inside the helper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Backend {
    /// youki's `libcontainer`, linked into the helper.
    Embedded,
    /// An OCI runtime binary with runc's command line (path to `runc`).
    Oci(PathBuf),
}

/// The command that starts the helper; the state dir of the container is appended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HelperCommand {
    /// The program, e.g. `std::env::current_exe()`.
    pub program: PathBuf,
    /// Arguments before the state dir, e.g. `["__container"]`.
    pub args: Vec<OsString>,
}

/// What to run and in which container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// The root file system.
    pub rootfs: Rootfs,
    /// argv; `args[0]` is looked up through `PATH` from `env` unless absolute.
    pub args: Vec<String>,
    /// `KEY=VALUE`; a default `PATH` is added when absent.
    pub env: Vec<String>,
    /// Absolute working directory; created (owned by the user) when missing.
    pub cwd: String,
    /// `""` (root), `uid`, `name`, `uid:gid`, `name:group`; names come from the
    /// rootfs's `/etc/passwd` and `/etc/group`.
    pub user: String,
    /// The container's host name (`hoist` when empty).
    pub hostname: String,
    /// Network namespace.
    pub network: Network,
    /// Extra bind mounts.
    pub mounts: Vec<BindMount>,
    /// cgroup limits.
    pub limits: Limits,
    /// Mount the rootfs read-only.
    pub readonly_rootfs: bool,
}

/// A container's root file system.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Rootfs {
    /// A directory used in place (writes land in it).
    Dir(PathBuf),
    /// An overlay mounted by the helper: writes land in `upper`.
    Overlay {
        /// Lower layers, top-most first (overlayfs `lowerdir` order); empty means
        /// an empty root (`FROM scratch`).
        lowers: Vec<PathBuf>,
        /// The writable layer.
        upper: PathBuf,
        /// overlayfs's work dir, on the same file system as `upper`.
        work: PathBuf,
    },
}

/// The container's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Network {
    /// A new network namespace with only the loopback interface (up).
    None,
    /// The host's network namespace.
    Host,
    /// A new network namespace with loopback and outbound connections through
    /// `pasta` (Debian's `passt`), which must be on `PATH`: the host's address and
    /// routes on a tap interface, DNS through pasta's forwarder, no ports
    /// published, and not the host's loopback.
    Outbound,
}

/// A bind mount from the host into the container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BindMount {
    /// Host path, a file or a directory.
    pub source: PathBuf,
    /// Absolute path in the container.
    pub destination: String,
    /// Mount read-only.
    pub readonly: bool,
}

/// cgroup limits; `None` leaves the resource unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Memory limit in bytes.
    pub memory_bytes: Option<u64>,
    /// Maximum number of processes.
    pub pids: Option<i64>,
    /// CPU quota in CPUs (1.5 = one and a half cores).
    pub cpus: Option<f64>,
}

/// How long to let a container run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Kill the container after this long (`RunOutcome::timed_out`).
    pub timeout: Option<Duration>,
    /// Kill the container once this becomes true (`RunOutcome::cancelled`).
    pub cancel: Option<Arc<AtomicBool>>,
}

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// The container's stdout.
    Stdout,
    /// The container's stderr.
    Stderr,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// The container process's exit status.
    pub status: ExitStatus,
    /// The run was killed because `RunOptions::timeout` passed.
    pub timed_out: bool,
    /// The run was killed because `RunOptions::cancel` was set.
    pub cancelled: bool,
}

/// The exit status of the container's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitStatus {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

impl ExitStatus {
    /// Exited with code 0.
    pub fn success(&self) -> bool {
        *self == ExitStatus::Code(0)
    }

    /// The shell's view: the exit code, or 128 + the signal number.
    pub fn code(&self) -> i32 {
        match *self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal(s) => 128 + s,
        }
    }
}

/// Why a container could not be run.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A file or directory in the state dir could not be used.
    #[error("{path}: {source}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The spec is unusable before anything starts.
    #[error("invalid container spec: {0}")]
    InvalidSpec(String),
    /// The helper process could not be started.
    #[error("cannot start the container helper {program}: {source}")]
    SpawnHelper {
        /// The helper program.
        program: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The helper reported a failure while setting up or running the container.
    #[error("container setup failed: {message}")]
    Setup {
        /// The helper's message.
        message: String,
    },
    /// The helper exited without reporting a result.
    #[error(
        "container helper for {id} died without a result ({status}); its container was cleaned up"
    )]
    HelperDied {
        /// The container id.
        id: String,
        /// How the helper ended.
        status: String,
    },
    /// A program the spec needs is not installed.
    #[error("`{program}` is needed for {needed_for} but is not on PATH; install the Debian package `{package}` (apt-get install {package})")]
    MissingProgram {
        /// The program.
        program: String,
        /// The Debian package that has it.
        package: String,
        /// What needs it.
        needed_for: String,
    },
    /// Cleaning up a container failed.
    #[error("cleaning up container {id}: {message}")]
    Cleanup {
        /// The container id.
        id: String,
        /// What went wrong.
        message: String,
    },
}

impl RuntimeError {
    fn io(path: impl Into<PathBuf>, source: std::io::Error) -> RuntimeError {
        RuntimeError::Io {
            path: path.into(),
            source,
        }
    }
}
