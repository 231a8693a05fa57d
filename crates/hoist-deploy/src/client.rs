//! The caller's side of a deployment, shared by `hoist deploy` and the pipeline:
//! check a spec against the store, the secret store and the other services
//! ([`check`]), record it ([`State::submit`]), make sure a controller runs
//! ([`ensure_daemon`]) and wait for the outcome ([`wait`]).
//!
//! Callers never start or stop tasks: they write desired state and read what the
//! daemon records. The daemon and the proxy are started as detached `hoist`
//! processes from the binary the caller names, so that killing the caller touches
//! neither.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use hoist_oci::Store;

use crate::controller;
use crate::spec::{ServiceSpec, TlsSpec};
use crate::state::{DeploymentState, Event, State, StateError};

/// Why a deployment could not be submitted or followed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The state database.
    #[error(transparent)]
    State(#[from] StateError),
    /// The spec does not fit the image, the secret store or another service.
    #[error("{0}")]
    Invalid(String),
    /// A background process (daemon, proxy) could not be started.
    #[error("{0}")]
    Start(String),
    /// The deployment disappeared from the state database while followed.
    #[error("deployment #{0} vanished from the state database")]
    Vanished(i64),
    /// The deployment had not ended by the caller's deadline (it goes on).
    #[error("deployment #{0} had not finished after {1}; see `hoist events {2}`")]
    TimedOut(i64, String, String),
}

/// How a followed deployment ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The new version serves all traffic.
    Succeeded,
    /// It failed and the service rolled back to the previous version, which
    /// serves again; `reason` says why the new one failed.
    RolledBack {
        /// Why the deployment failed.
        reason: String,
    },
    /// It failed and nothing could take over.
    Failed {
        /// Why.
        reason: String,
    },
    /// A newer deployment replaced it before it finished.
    Superseded {
        /// What superseded it.
        reason: String,
    },
}

impl Outcome {
    /// Whether the new version went live.
    pub fn succeeded(&self) -> bool {
        matches!(self, Outcome::Succeeded)
    }
}

/// Checks what the controller would find wrong only once the deployment runs: the
/// image (in `store`, by `digest`) must give the service a port, every secret must
/// be in hoist's secret store, and services sharing a listener address must share
/// its protocol and certificate. `origin` names the spec's file in messages.
pub fn check(
    home: &Path,
    store: &Store,
    spec: &ServiceSpec,
    digest: &str,
    origin: &str,
) -> Result<(), ClientError> {
    crate::launch::resolve_port(store, spec, digest)
        .map_err(|e| ClientError::Invalid(format!("{origin}: {e}")))?;
    if !spec.secrets.is_empty() {
        let secrets = hoist_secrets::SecretStore::open(&home.join("secrets"))
            .map_err(|e| ClientError::Invalid(format!("{origin}: secrets: {e}")))?;
        for (var, name) in &spec.secrets {
            let present = secrets
                .get(name)
                .map_err(|e| ClientError::Invalid(format!("{origin}: secrets.{var}: {e}")))?;
            if present.is_none() {
                return Err(ClientError::Invalid(format!(
                    "{origin}: secrets.{var}: secret {name:?} is not in hoist's secret store; add it with `hoist secret set {name}`"
                )));
            }
        }
    }
    check_shared_listener(home, spec, origin)
}

/// Services sharing a listener address share its protocol and certificate: refuse
/// a spec that disagrees with another service's.
fn check_shared_listener(home: &Path, spec: &ServiceSpec, origin: &str) -> Result<(), ClientError> {
    let path = controller::state_path(home);
    if !path.exists() {
        return Ok(());
    }
    let state = State::open(&path)?;
    for svc in state.services()? {
        if svc.name == spec.name.as_str() || svc.removing {
            continue;
        }
        let Some(other) = svc
            .active
            .map(|id| state.deployment(id))
            .transpose()?
            .flatten()
        else {
            continue;
        };
        let l = &other.spec.listener;
        if l.addr == spec.listener.addr && l.tls != spec.listener.tls {
            let show = |t: &Option<TlsSpec>| match t {
                Some(t) => format!("HTTPS with {}", t.cert.display()),
                None => "plain HTTP".to_owned(),
            };
            return Err(ClientError::Invalid(format!(
                "{origin}: listener.tls: service {} serves {} with {}; services sharing an address share its certificate",
                svc.name,
                l.addr,
                show(&l.tls)
            )));
        }
    }
    Ok(())
}

/// `name@digest` for a name, the digest alone for a digest.
pub fn pin(image: &str, digest: &str) -> String {
    if image.starts_with("sha256:") || image.contains('@') {
        return image.to_owned();
    }
    let name = match image.rsplit_once(':') {
        Some((n, tag)) if !tag.contains('/') => n,
        _ => image,
    };
    format!("{name}@{digest}")
}

/// Follows deployment `id` of `service` until it ends and, when it failed, until
/// the rollback it caused ends; `on_event` sees each of the service's events from
/// that deployment on, once. With a `timeout`, gives up waiting after it.
pub fn wait(
    state: &State,
    service: &str,
    id: i64,
    timeout: Option<Duration>,
    mut on_event: impl FnMut(&Event),
) -> Result<Outcome, ClientError> {
    let started = std::time::Instant::now();
    let mut last = state
        .events(service, 0)?
        .iter()
        .filter(|e| e.deployment.is_some_and(|d| d < id))
        .map(|e| e.id)
        .max()
        .unwrap_or(0);
    let mut watching = id;
    let mut failure: Option<String> = None;
    loop {
        for e in state.events(service, last)? {
            last = e.id;
            on_event(&e);
        }
        let d = state
            .deployment(watching)?
            .ok_or(ClientError::Vanished(watching))?;
        match d.state {
            DeploymentState::InProgress => {}
            DeploymentState::Succeeded => {
                return Ok(match failure {
                    None => Outcome::Succeeded,
                    Some(reason) => Outcome::RolledBack { reason },
                })
            }
            DeploymentState::Failed | DeploymentState::Superseded => {
                let reason = d.reason.clone().unwrap_or_default();
                let active = state.service(service)?.and_then(|s| s.active);
                match active {
                    Some(next) if next != watching && d.state == DeploymentState::Failed => {
                        failure.get_or_insert(reason);
                        watching = next;
                    }
                    _ if d.state == DeploymentState::Superseded && watching == id => {
                        return Ok(Outcome::Superseded { reason })
                    }
                    _ => {
                        return Ok(Outcome::Failed {
                            reason: failure.unwrap_or(reason),
                        })
                    }
                }
            }
        }
        if timeout.is_some_and(|t| started.elapsed() > t) {
            let after = humantime::format_duration(started.elapsed()).to_string();
            return Err(ClientError::TimedOut(id, after, service.to_owned()));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Starts `exe daemon` in the background when no daemon runs on `home`, and waits
/// until it holds its lock (so a second caller does not start another).
pub fn ensure_daemon(exe: &Path, home: &Path) -> Result<(), ClientError> {
    if controller::daemon_running(home) {
        return Ok(());
    }
    let log = controller::deploy_dir(home).join("daemon.log");
    spawn_detached(exe, home, &["daemon", "--detached"], &log)?;
    wait_for(|| controller::daemon_running(home), "hoist daemon", &log)
}

/// Starts `exe proxy` in the background when none serves `config`'s directory:
/// one current-thread worker per CPU, about twice the throughput of one
/// work-stealing runtime (BENCHMARKS.md, proxy section).
pub fn ensure_proxy(exe: &Path, home: &Path, config: &Path) -> Result<(), ClientError> {
    let dir = config.parent().unwrap_or(Path::new("."));
    if hoist_proxy::watch::running(dir) {
        return Ok(());
    }
    let log = dir.join("proxy.log");
    let config_arg = config.display().to_string();
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .to_string();
    let args = [
        "proxy",
        "--detached",
        "--config",
        &config_arg,
        "--admin",
        "127.0.0.1:0",
        "--workers",
        &workers,
    ];
    spawn_detached(exe, home, &args, &log)?;
    wait_for(|| hoist_proxy::watch::running(dir), "hoist proxy", &log)
}

/// Waits up to 10 s for a background process started with [`spawn_detached`] to be
/// `ready`; `what` and its `log` name it in the error.
pub fn wait_for(ready: impl Fn() -> bool, what: &str, log: &Path) -> Result<(), ClientError> {
    for _ in 0..200 {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(ClientError::Start(format!(
        "{what} did not start; see {}",
        log.display()
    )))
}

/// Runs `exe --home HOME ARGS...` in a process group of its own, its output
/// appended to `log`.
pub fn spawn_detached(
    exe: &Path,
    home: &Path,
    args: &[&str],
    log: &Path,
) -> Result<(), ClientError> {
    use std::os::unix::process::CommandExt;
    let start_err =
        |what: String| move |e: std::io::Error| ClientError::Start(format!("{what}: {e}"));
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).map_err(start_err(format!("creating {}", dir.display())))?;
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(start_err(format!("opening {}", log.display())))?;
    let err = out
        .try_clone()
        .map_err(start_err(format!("opening {}", log.display())))?;
    Command::new(exe)
        .arg("--home")
        .arg(home)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(start_err(format!("starting hoist {}", args.join(" "))))?;
    Ok(())
}

/// The hoist binary to start background processes from: this process's own.
pub fn current_exe() -> Result<PathBuf, ClientError> {
    std::env::current_exe()
        .map_err(|e| ClientError::Start(format!("finding the hoist binary: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_keeps_the_name_and_drops_the_tag() {
        let d = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
        assert_eq!(pin("web:1", d), format!("web@{d}"));
        assert_eq!(
            pin("localhost:5000/web", d),
            format!("localhost:5000/web@{d}")
        );
        assert_eq!(
            pin("localhost:5000/web:v2", d),
            format!("localhost:5000/web@{d}")
        );
        assert_eq!(pin(d, d), d);
        assert_eq!(pin(&format!("web@{d}"), "other"), format!("web@{d}"));
    }
}
