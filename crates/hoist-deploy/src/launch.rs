//! From a deployment to a container: the image's config merged with the service
//! spec (as `docker run` merges flags over the image), the image's layers as
//! overlay lowers, a fresh upper directory per task, and secrets resolved at the
//! last moment.
//!
//! # Health
//!
//! A service file's `health_check:` is an HTTP check sent by the proxy
//! ([`TaskHealth::Http`]). Without one, the image's `HEALTHCHECK` (Docker's
//! `Healthcheck` of the image config: `["CMD", ...]` or `["CMD-SHELL", "..."]`,
//! durations in nanoseconds, zero meaning Docker's defaults of 30 s interval, 30 s
//! timeout, no start period, 3 retries, start interval = interval) becomes the task's [`Probe`]: the task's
//! helper runs it inside the container and writes the verdict beside the task,
//! and the proxy reads it ([`TaskHealth::Image`], `HealthCheckMode::Reported`).
//! `HEALTHCHECK NONE`, or no `HEALTHCHECK` at all, leaves [`TaskHealth::Running`]:
//! a task is healthy once it runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hoist_oci::Store;
use hoist_runtime::{ContainerSpec, Limits, Network, Probe, ProbeCommand, Rootfs};
use hoist_secrets::SecretStore;
use hoist_snapshot::Snapshots;

use crate::spec::{HealthCheckSpec, NetworkMode, ServiceSpec};

/// What can go wrong preparing a task.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The image is not in the store, or unreadable.
    #[error("image {image}: {message}")]
    Image {
        /// The image.
        image: String,
        /// What is wrong.
        message: String,
    },
    /// A secret the service names is missing.
    #[error("secret {name:?} (for ${var}) is not in hoist's secret store; add it with `hoist secret set {name}`")]
    MissingSecret {
        /// The secret.
        name: String,
        /// The variable it feeds.
        var: String,
    },
    /// The secret store failed.
    #[error("secret store: {0}")]
    Secrets(String),
    /// No port given and the image exposes none or several.
    #[error("{0}")]
    Port(String),
    /// The image runs nothing.
    #[error("image {0} has no ENTRYPOINT or CMD and the service gives no command")]
    NoCommand(String),
    /// File system trouble with the task's scratch directory.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// A version's container, ready to instantiate per task.
#[derive(Clone, Debug)]
pub struct Template {
    lowers: Vec<PathBuf>,
    args: Vec<String>,
    env: Vec<String>,
    cwd: String,
    user: String,
    network: Network,
    limits: Limits,
    read_only: bool,
    /// The container port the proxy connects to.
    pub port: u16,
    secrets: Vec<(String, String)>,
    /// How its tasks' health is known.
    pub health: TaskHealth,
}

/// How a version's tasks' health is known.
#[derive(Clone, Debug, PartialEq)]
pub enum TaskHealth {
    /// The service file's HTTP check, sent by the proxy.
    Http(HealthCheckSpec),
    /// The image's `HEALTHCHECK`, run by each task's helper; the proxy reads the
    /// verdict from the task's health file.
    Image(Probe),
    /// Neither: a task is healthy once it runs.
    Running,
}

impl TaskHealth {
    /// The service file's check if it has one, else the image's `HEALTHCHECK`
    /// (`image` is the image config's `Healthcheck`, `shell` its `Shell`).
    pub fn resolve(
        spec: &ServiceSpec,
        image: Option<&hoist_oci::config::HealthConfig>,
        shell: Option<&[String]>,
    ) -> Result<TaskHealth, String> {
        if let Some(h) = &spec.health_check {
            return Ok(TaskHealth::Http(h.clone()));
        }
        Ok(
            match image.map(|h| probe_of(h, shell)).transpose()?.flatten() {
                Some(p) => TaskHealth::Image(p),
                None => TaskHealth::Running,
            },
        )
    }

    /// The probe each task runs, for [`TaskHealth::Image`].
    pub fn probe(&self) -> Option<&Probe> {
        match self {
            TaskHealth::Image(p) => Some(p),
            _ => None,
        }
    }
}

/// Docker's `Healthcheck` as a probe; `None` for `NONE` or an empty test (no
/// check). `CMD-SHELL` runs with the image's `Shell` when it sets one (as Docker
/// does), else `/bin/sh -c`.
pub fn probe_of(
    h: &hoist_oci::config::HealthConfig,
    shell: Option<&[String]>,
) -> Result<Option<Probe>, String> {
    let command = match h.test.split_first() {
        None => return Ok(None),
        Some((kind, _)) if kind == "NONE" => return Ok(None),
        Some((kind, args)) if kind == "CMD" && !args.is_empty() => {
            ProbeCommand::Exec(args.to_vec())
        }
        Some((kind, [line])) if kind == "CMD-SHELL" => match shell {
            Some(sh) if !sh.is_empty() && sh != ["/bin/sh", "-c"] => {
                ProbeCommand::Exec(sh.iter().chain([line]).cloned().collect())
            }
            _ => ProbeCommand::Shell(line.clone()),
        },
        Some(_) => {
            return Err(format!(
                "unsupported HEALTHCHECK test {:?} (expected NONE, CMD or CMD-SHELL)",
                h.test
            ))
        }
    };
    let or = |ns: u64, default: Duration| {
        if ns == 0 {
            default
        } else {
            Duration::from_nanos(ns)
        }
    };
    let defaults = Probe::new(command.clone());
    Ok(Some(Probe {
        command,
        interval: or(h.interval, defaults.interval),
        timeout: or(h.timeout, defaults.timeout),
        start_period: or(h.start_period, defaults.start_period),
        retries: if h.retries == 0 {
            defaults.retries
        } else {
            u32::try_from(h.retries).unwrap_or(u32::MAX)
        },
        start_interval: (h.start_interval != 0).then(|| Duration::from_nanos(h.start_interval)),
    }))
}

/// The image's config for `digest`.
fn image_config(
    store: &Store,
    digest: &str,
) -> Result<(hoist_oci::ImageManifest, hoist_oci::config::ImageConfig), LaunchError> {
    let err = |message: String| LaunchError::Image {
        image: digest.to_owned(),
        message,
    };
    let record = store.resolve(digest).map_err(|e| err(e.to_string()))?;
    let manifest =
        hoist_oci::transfer::platform_manifest(store, &record).map_err(|e| err(e.to_string()))?;
    let config = store
        .config(&manifest.config.digest)
        .map_err(|e| err(e.to_string()))?;
    Ok((manifest, config))
}

/// The port a service's tasks listen on: the spec's, else the image's single
/// exposed TCP port.
pub fn resolve_port(store: &Store, spec: &ServiceSpec, digest: &str) -> Result<u16, LaunchError> {
    match spec.port {
        Some(p) => Ok(p.0),
        None => port_of(spec, &image_config(store, digest)?.1),
    }
}

/// [`resolve_port`] with the image's config at hand.
fn port_of(
    spec: &ServiceSpec,
    config: &hoist_oci::config::ImageConfig,
) -> Result<u16, LaunchError> {
    if let Some(p) = spec.port {
        return Ok(p.0);
    }
    let exposed: Vec<u16> = config
        .config
        .as_ref()
        .map(|c| {
            c.exposed_ports
                .keys()
                .filter_map(|k| {
                    let (port, proto) = k.split_once('/').unwrap_or((k.as_str(), "tcp"));
                    (proto == "tcp").then(|| port.parse().ok()).flatten()
                })
                .collect()
        })
        .unwrap_or_default();
    match exposed.as_slice() {
        [one] => Ok(*one),
        [] => Err(LaunchError::Port(format!(
            "service {}: no port given and image {} exposes none; set `port:` in the service file",
            spec.name, spec.image
        ))),
        many => Err(LaunchError::Port(format!(
            "service {}: no port given and image {} exposes several ({many:?}); set `port:` in the service file",
            spec.name, spec.image
        ))),
    }
}

impl Template {
    /// Prepares the container of `spec` running image `digest`: unpacks its
    /// layers once (shared by every task), merges the configs.
    pub fn prepare(
        store: &Store,
        snapshots: &Snapshots,
        spec: &ServiceSpec,
        digest: &str,
    ) -> Result<Template, LaunchError> {
        let (manifest, config) = image_config(store, digest)?;
        let lowers = snapshots
            .image_lowers(store, &manifest, &config)
            .map_err(|e| LaunchError::Image {
                image: digest.to_owned(),
                message: e.to_string(),
            })?;
        let ic = config.config.clone().unwrap_or_default();
        // Docker's rule: an entrypoint given at run time drops the image's CMD.
        let (entrypoint, cmd) = match (&spec.entrypoint, &spec.command) {
            (Some(e), c) => (e.clone(), c.clone().unwrap_or_default()),
            (None, Some(c)) => (ic.entrypoint.clone().unwrap_or_default(), c.clone()),
            (None, None) => (
                ic.entrypoint.clone().unwrap_or_default(),
                ic.cmd.clone().unwrap_or_default(),
            ),
        };
        let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
        if args.is_empty() {
            return Err(LaunchError::NoCommand(spec.image.clone()));
        }
        let mut env: Vec<String> = ic
            .env
            .iter()
            .filter(|kv| {
                let k = kv.split('=').next().unwrap_or("");
                !spec.env.contains_key(k) && !spec.secrets.contains_key(k)
            })
            .cloned()
            .collect();
        env.extend(spec.env.iter().map(|(k, v)| format!("{k}={v}")));
        let port = port_of(spec, &config)?;
        let health = TaskHealth::resolve(spec, ic.healthcheck.as_ref(), ic.shell.as_deref())
            .map_err(|message| LaunchError::Image {
                image: spec.image.clone(),
                message,
            })?;
        Ok(Template {
            health,
            lowers,
            args,
            env,
            cwd: if ic.working_dir.is_empty() {
                "/".to_owned()
            } else {
                ic.working_dir.clone()
            },
            user: spec.user.clone().unwrap_or(ic.user),
            network: match spec.network {
                NetworkMode::None => Network::None,
                NetworkMode::Outbound => Network::Outbound,
            },
            limits: Limits {
                memory_bytes: spec.limits.memory.map(|m| m.0),
                pids: spec.limits.pids,
                cpus: spec.limits.cpus,
            },
            read_only: spec.read_only,
            port,
            secrets: spec
                .secrets
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }

    /// The container of one task, its writable layer under `scratch` (created).
    /// Secrets are read from `secrets` now, so a rotated secret reaches the next
    /// task started.
    pub fn container(
        &self,
        scratch: &Path,
        hostname: &str,
        secrets: Option<&SecretStore>,
    ) -> Result<ContainerSpec, LaunchError> {
        let upper = scratch.join("upper");
        let work = scratch.join("work");
        for d in [&upper, &work] {
            std::fs::create_dir_all(d).map_err(|source| LaunchError::Io {
                path: d.clone(),
                source,
            })?;
        }
        let mut env = self.env.clone();
        for (var, name) in &self.secrets {
            let store = secrets.ok_or_else(|| LaunchError::MissingSecret {
                name: name.clone(),
                var: var.clone(),
            })?;
            let value = store
                .get(name)
                .map_err(|e| LaunchError::Secrets(e.to_string()))?
                .ok_or_else(|| LaunchError::MissingSecret {
                    name: name.clone(),
                    var: var.clone(),
                })?;
            env.push(format!("{var}={}", String::from_utf8_lossy(value.expose())));
        }
        Ok(ContainerSpec {
            rootfs: Rootfs::Overlay {
                lowers: self.lowers.clone(),
                upper,
                work,
            },
            args: self.args.clone(),
            env,
            cwd: self.cwd.clone(),
            user: self.user.clone(),
            hostname: hostname.to_owned(),
            network: self.network,
            mounts: Vec::new(),
            limits: self.limits.clone(),
            readonly_rootfs: self.read_only,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use hoist_oci::config::HealthConfig;

    fn spec(extra: &str) -> ServiceSpec {
        ServiceSpec::parse(
            "t.yml",
            &format!("name: web\nimage: web:1\nlistener: {{addr: 127.0.0.1:8080}}\n{extra}"),
        )
        .unwrap()
    }

    fn image(test: &[&str]) -> HealthConfig {
        HealthConfig {
            test: test.iter().map(|s| s.to_string()).collect(),
            interval: 2_000_000_000,
            timeout: 500_000_000,
            ..HealthConfig::default()
        }
    }

    #[test]
    fn the_files_check_wins_then_the_images_then_running() {
        let hello = image(&["CMD", "/hello", "--health-check"]);
        let given = spec("health_check: {path: /up}\n");
        assert!(matches!(
            TaskHealth::resolve(&given, Some(&hello), None).unwrap(),
            TaskHealth::Http(h) if h.path == "/up"
        ));
        let p = TaskHealth::resolve(&spec(""), Some(&hello), None).unwrap();
        assert_eq!(
            p.probe().unwrap(),
            &Probe {
                command: ProbeCommand::Exec(vec!["/hello".into(), "--health-check".into()]),
                interval: Duration::from_secs(2),
                timeout: Duration::from_millis(500),
                start_period: Duration::ZERO,
                retries: 3,
                start_interval: None,
            }
        );
        let shell_check = image(&["CMD-SHELL", "test -f /ok"]);
        let shell = TaskHealth::resolve(&spec(""), Some(&shell_check), None);
        assert_eq!(
            shell.unwrap().probe().unwrap().command,
            ProbeCommand::Shell("test -f /ok".into())
        );
        // The image's SHELL runs CMD-SHELL, as Docker does.
        let bash = [
            "/bin/bash".to_owned(),
            "-eo".to_owned(),
            "pipefail".to_owned(),
            "-c".to_owned(),
        ];
        let shell = TaskHealth::resolve(&spec(""), Some(&shell_check), Some(&bash));
        assert_eq!(
            shell.unwrap().probe().unwrap().command,
            ProbeCommand::Exec(vec![
                "/bin/bash".into(),
                "-eo".into(),
                "pipefail".into(),
                "-c".into(),
                "test -f /ok".into()
            ])
        );
        assert_eq!(
            TaskHealth::resolve(&spec(""), Some(&image(&["NONE"])), None).unwrap(),
            TaskHealth::Running
        );
        assert_eq!(
            TaskHealth::resolve(&spec(""), None, None).unwrap(),
            TaskHealth::Running
        );
        assert!(TaskHealth::resolve(&spec(""), Some(&image(&["SOMETHING", "x"])), None).is_err());
        // Zero durations are Docker's defaults.
        let bare = HealthConfig {
            test: vec!["CMD".into(), "true".into()],
            ..HealthConfig::default()
        };
        let p = probe_of(&bare, None).unwrap().unwrap();
        assert_eq!(
            (p.interval, p.timeout, p.retries),
            (Duration::from_secs(30), Duration::from_secs(30), 3)
        );
    }
}
