//! The one OCI runtime spec both backends run: `libcontainer` reads it from the
//! bundle's `config.json` as runc does. Docker's defaults live here.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder,
    LinuxDeviceType, LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxPidsBuilder, LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimitBuilder,
    PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use crate::user::ResolvedUser;
use crate::ContainerSpec;

/// `PATH` when the spec's environment has none (Docker's).
pub(crate) const DEFAULT_PATH: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default capability set.
pub(crate) const DOCKER_CAPS: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Docker's masked paths.
const MASKED: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths.
const READONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Files generated in the state dir and bind-mounted read-only into `/etc`.
pub(crate) struct EtcFiles {
    pub hosts: PathBuf,
    pub hostname: PathBuf,
    pub resolv_conf: PathBuf,
}

/// Everything besides the [`ContainerSpec`] the OCI spec needs.
pub(crate) struct SpecInput<'a> {
    pub spec: &'a ContainerSpec,
    pub rootfs: &'a Path,
    pub user: &'a ResolvedUser,
    pub etc: &'a EtcFiles,
    pub cgroups_path: PathBuf,
    pub hostname: &'a str,
}

/// The environment with `PATH` added when absent.
pub(crate) fn env_with_path(env: &[String]) -> Vec<String> {
    let mut env = env.to_vec();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(DEFAULT_PATH.to_owned());
    }
    env
}

fn bind(source: &Path, destination: &str, readonly: bool) -> Result<Mount, String> {
    let mut options = vec!["rbind".to_owned(), "rprivate".to_owned()];
    if readonly {
        options.push("ro".to_owned());
    }
    MountBuilder::default()
        .destination(destination)
        .typ("bind")
        .source(source)
        .options(options)
        .build()
        .map_err(|e| format!("mount {destination}: {e}"))
}

fn char_dev(
    major: i64,
    minor: Option<i64>,
) -> Result<oci_spec::runtime::LinuxDeviceCgroup, String> {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .typ(LinuxDeviceType::C)
        .major(major)
        .access("rwm");
    if let Some(minor) = minor {
        b = b.minor(minor);
    }
    b.build().map_err(|e| e.to_string())
}

/// Build the OCI spec.
pub(crate) fn oci_spec(input: &SpecInput<'_>) -> Result<Spec, String> {
    let spec = input.spec;
    let e = |e: oci_spec::OciSpecError| e.to_string();

    let caps: HashSet<Capability> = DOCKER_CAPS.into_iter().collect();
    // Docker (since 20.10) gives a non-root user only the bounding set.
    let eff: HashSet<Capability> = if input.user.uid == 0 {
        caps.clone()
    } else {
        HashSet::new()
    };
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps)
        .effective(eff.clone())
        .permitted(eff)
        .inheritable(HashSet::new())
        .ambient(HashSet::new())
        .build()
        .map_err(e)?;
    let mut user = UserBuilder::default()
        .uid(input.user.uid)
        .gid(input.user.gid);
    if !input.user.additional_gids.is_empty() {
        user = user.additional_gids(input.user.additional_gids.clone());
    }
    // Open files: the caller's hard limit for both (Docker gives 1048576, but
    // raising the hard limit needs CAP_SYS_RESOURCE, which a sandboxed caller may lack).
    let nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap_or(1_048_576);
    let process = ProcessBuilder::default()
        .terminal(false)
        .args(spec.args.clone())
        .env(env_with_path(&spec.env))
        .cwd(&spec.cwd)
        .user(user.build().map_err(e)?)
        .capabilities(capabilities)
        .no_new_privileges(true)
        .rlimits(vec![PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .hard(nofile)
            .soft(nofile)
            .build()
            .map_err(e)?])
        .build()
        .map_err(e)?;

    let mut mounts = oci_spec::runtime::get_default_mounts();
    mounts.push(bind(&input.etc.hosts, "/etc/hosts", true)?);
    mounts.push(bind(&input.etc.hostname, "/etc/hostname", true)?);
    mounts.push(bind(&input.etc.resolv_conf, "/etc/resolv.conf", true)?);
    for m in &spec.mounts {
        if !m.destination.starts_with('/') {
            return Err(format!(
                "bind mount destination {:?} is not absolute",
                m.destination
            ));
        }
        mounts.push(bind(&m.source, &m.destination, m.readonly)?);
    }

    // Namespaces: the network namespace is the helper's own (a new one with `lo`
    // up for Network::None and Network::Outbound, the latter with pasta attached;
    // the host's for Network::Host), so it is not listed.
    let namespaces = [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Cgroup,
    ]
    .into_iter()
    .map(|typ| LinuxNamespaceBuilder::default().typ(typ).build().map_err(e))
    .collect::<Result<Vec<_>, _>>()?;

    let mut devices = vec![LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .map_err(e)?];
    for (major, minor) in [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 2)] {
        devices.push(char_dev(major, Some(minor))?);
    }
    devices.push(char_dev(136, None)?);
    let mut resources = LinuxResourcesBuilder::default().devices(devices);
    if let Some(bytes) = spec.limits.memory_bytes {
        let limit =
            i64::try_from(bytes).map_err(|_| format!("memory limit {bytes} is too large"))?;
        resources = resources.memory(
            LinuxMemoryBuilder::default()
                .limit(limit)
                .build()
                .map_err(e)?,
        );
    }
    if let Some(pids) = spec.limits.pids {
        resources = resources.pids(LinuxPidsBuilder::default().limit(pids).build().map_err(e)?);
    }
    if let Some(cpus) = spec.limits.cpus {
        if !(cpus > 0.0 && cpus.is_finite()) {
            return Err(format!("cpu limit {cpus} must be a positive number"));
        }
        let period = 100_000u64;
        let quota = ((cpus * period as f64).round() as i64).max(1000);
        resources = resources.cpu(
            LinuxCpuBuilder::default()
                .period(period)
                .quota(quota)
                .build()
                .map_err(e)?,
        );
    }

    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .masked_paths(MASKED.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
        .readonly_paths(READONLY.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
        .resources(resources.build().map_err(e)?)
        .cgroups_path(input.cgroups_path.clone());
    if let Some(seccomp) = seccomp::profile()? {
        linux = linux.seccomp(seccomp);
    }

    SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path(input.rootfs)
                .readonly(spec.readonly_rootfs)
                .build()
                .map_err(e)?,
        )
        .hostname(input.hostname)
        .process(process)
        .mounts(mounts)
        .linux(linux.build().map_err(e)?)
        .build()
        .map_err(e)
}

#[cfg(feature = "seccomp")]
mod seccomp {
    use oci_spec::runtime::{
        LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder,
        LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
    };

    /// Syscalls Docker's default profile refuses to a container with the default
    /// capabilities; they fail with EPERM here.
    pub(crate) const DENIED: &[&str] = &[
        // kernel modules and kexec
        "init_module",
        "finit_module",
        "delete_module",
        "create_module",
        "query_module",
        "get_kernel_syms",
        "kexec_load",
        "kexec_file_load",
        // mounts, old and new API
        "mount",
        "umount",
        "umount2",
        "pivot_root",
        "move_mount",
        "open_tree",
        "fsopen",
        "fsconfig",
        "fsmount",
        "fspick",
        "mount_setattr",
        // namespaces
        "unshare",
        "setns",
        // system-wide state
        "swapon",
        "swapoff",
        "reboot",
        "acct",
        "settimeofday",
        "stime",
        "clock_settime",
        "clock_adjtime",
        "adjtimex",
        "quotactl",
        "quotactl_fd",
        "nfsservctl",
        "vhangup",
        "syslog",
        "lookup_dcookie",
        "sysfs",
        "_sysctl",
        "uselib",
        "ustat",
        // tracing, bpf, keyrings
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "keyctl",
        "add_key",
        "request_key",
        "fanotify_init",
        "kcmp",
        // raw access
        "open_by_handle_at",
        "iopl",
        "ioperm",
        "vm86",
        "vm86old",
        // NUMA policy (CAP_SYS_NICE in Docker's profile)
        "get_mempolicy",
        "set_mempolicy",
        "mbind",
        "move_pages",
        "migrate_pages",
        "set_mempolicy_home_node",
    ];

    /// Namespace flags of clone(2): a clone asking for any of them fails.
    const CLONE_NS_FLAGS: [u64; 7] = [
        0x0002_0000, // CLONE_NEWNS
        0x0200_0000, // CLONE_NEWCGROUP
        0x0400_0000, // CLONE_NEWUTS
        0x0800_0000, // CLONE_NEWIPC
        0x1000_0000, // CLONE_NEWUSER
        0x2000_0000, // CLONE_NEWPID
        0x4000_0000, // CLONE_NEWNET
    ];

    const EPERM: u32 = 1;
    const ENOSYS: u32 = 38;

    pub(crate) fn profile() -> Result<Option<LinuxSeccomp>, String> {
        let e = |e: oci_spec::OciSpecError| e.to_string();
        let mut syscalls: Vec<LinuxSyscall> = vec![LinuxSyscallBuilder::default()
            .names(DENIED.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
            .action(LinuxSeccompAction::ScmpActErrno)
            .errno_ret(EPERM)
            .build()
            .map_err(e)?];
        // glibc falls back to clone(2) when clone3 is ENOSYS; clone3's flags live
        // in memory, out of seccomp's reach, so refusing it is the only way.
        syscalls.push(
            LinuxSyscallBuilder::default()
                .names(vec!["clone3".to_owned()])
                .action(LinuxSeccompAction::ScmpActErrno)
                .errno_ret(ENOSYS)
                .build()
                .map_err(e)?,
        );
        for flag in CLONE_NS_FLAGS {
            // (arg0 & flag) == flag. Mask and value are equal, so the rule reads the
            // same whichever field a runtime takes as the mask (runc and
            // libcontainer disagree).
            let arg = LinuxSeccompArgBuilder::default()
                .index(0usize)
                .value(flag)
                .value_two(flag)
                .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
                .build()
                .map_err(e)?;
            syscalls.push(
                LinuxSyscallBuilder::default()
                    .names(vec!["clone".to_owned()])
                    .action(LinuxSeccompAction::ScmpActErrno)
                    .errno_ret(EPERM)
                    .args(vec![arg])
                    .build()
                    .map_err(e)?,
            );
        }
        LinuxSeccompBuilder::default()
            .default_action(LinuxSeccompAction::ScmpActAllow)
            .syscalls(syscalls)
            .build()
            .map(Some)
            .map_err(e)
    }
}

#[cfg(not(feature = "seccomp"))]
mod seccomp {
    pub(crate) fn profile() -> Result<Option<oci_spec::runtime::LinuxSeccomp>, String> {
        Ok(None)
    }
}
