//! `hoist deploy`, `hoist rollback`, `hoist service ...`, `hoist logs` and
//! `hoist daemon`: thin handlers over hoist-deploy. The CLI records desired state
//! in the state database and follows the events the daemon records; it never
//! starts or stops a task itself.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use hoist_deploy::controller::{self, Controller, ControllerOptions};
use hoist_deploy::spec::ServiceSpec;
use hoist_deploy::state::{DeploymentState, Event, State, TaskPhase};
use serde_json::json;

use crate::cli::{DaemonArgs, DeployArgs, LogsArgs, RollbackArgs, ServiceCommand};
use crate::settings::Settings;

fn open_state(settings: &Settings) -> Result<State> {
    Ok(State::open(&controller::state_path(&settings.home))?)
}

/// `hoist deploy FILE`
pub fn deploy(settings: &Settings, args: DeployArgs) -> Result<()> {
    let shown = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading the service file {shown}"))?;
    let mut spec = ServiceSpec::parse(&shown, &text)?;
    if let Some(image) = args.image {
        spec.image = image;
    }
    let store = settings.store()?;
    let record = match store.resolve(&spec.image) {
        Ok(r) => r,
        Err(local) => {
            // Not in the store: pull it, as ECS pulls from ECR.
            if super::remote::pull_for_build(&store, &spec.image).is_err() {
                bail!("image {}: {local}, and pulling it failed", spec.image);
            }
            store
                .resolve(&spec.image)
                .with_context(|| format!("image {}", spec.image))?
        }
    };
    let digest = record.digest.to_string();
    hoist_deploy::launch::resolve_port(&store, &spec, &digest)?;
    if !spec.secrets.is_empty() {
        let secrets = hoist_secrets::SecretStore::open(&settings.home.join("secrets"))?;
        for (var, name) in &spec.secrets {
            if secrets.get(name)?.is_none() {
                bail!(
                    "{shown}: secrets.{var}: secret {name:?} is not in hoist's secret store; add it with `hoist secret set {name}`"
                );
            }
        }
    }
    let pinned = pin(&spec.image, &digest);
    let state = open_state(settings)?;
    let id = state.submit(&spec, &pinned, &digest, "deploy")?;
    ensure_daemon(settings)?;
    if !settings.json {
        eprintln!("deployment #{id} of {} ({pinned})", spec.name);
    }
    if args.detach {
        if settings.json {
            println!(
                "{}",
                json!({ "service": spec.name.as_str(), "deployment": id })
            );
        }
        return Ok(());
    }
    follow(settings, &state, spec.name.as_str(), id)
}

/// `name@digest` for a name, the digest alone for a digest.
fn pin(image: &str, digest: &str) -> String {
    if image.starts_with("sha256:") || image.contains('@') {
        return image.to_owned();
    }
    let name = match image.rsplit_once(':') {
        Some((n, tag)) if !tag.contains('/') => n,
        _ => image,
    };
    format!("{name}@{digest}")
}

/// Prints the service's events from deployment `id` on until it ends (and, when it
/// failed, until its rollback ends). Fails when the deployment did.
fn follow(settings: &Settings, state: &State, service: &str, id: i64) -> Result<()> {
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
            print_event(settings, &e);
        }
        let d = state
            .deployment(watching)?
            .with_context(|| format!("deployment #{watching} vanished"))?;
        if d.state.is_final() {
            match d.state {
                DeploymentState::Succeeded if failure.is_none() => return Ok(()),
                DeploymentState::Succeeded => {
                    bail!(
                        "deployment #{id} failed and was rolled back: {}",
                        failure.unwrap_or_default()
                    )
                }
                DeploymentState::Failed | DeploymentState::Superseded => {
                    let reason = d.reason.clone().unwrap_or_default();
                    let svc = state.service(service)?;
                    match svc.and_then(|s| s.active) {
                        Some(next) if next != watching && d.state == DeploymentState::Failed => {
                            failure.get_or_insert(reason);
                            watching = next;
                        }
                        _ if d.state == DeploymentState::Superseded && watching == id => {
                            bail!("deployment #{id} was superseded: {reason}")
                        }
                        _ => bail!("deployment #{id} failed: {}", failure.unwrap_or(reason)),
                    }
                }
                DeploymentState::InProgress => {}
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn print_event(settings: &Settings, e: &Event) {
    if settings.json {
        if let Ok(line) = serde_json::to_string(e) {
            println!("{line}");
        }
    } else {
        let time = hoist_oci::store::unix_to_rfc3339((e.time / 1000) as u64);
        let dep = e.deployment.map(|d| format!("#{d} ")).unwrap_or_default();
        println!("{time} {dep}{:<18} {}", e.kind, e.message);
    }
}

/// `hoist rollback SERVICE`
pub fn rollback(settings: &Settings, args: RollbackArgs) -> Result<()> {
    let state = open_state(settings)?;
    let before = state
        .service(&args.service)?
        .with_context(|| format!("no service named {:?}", args.service))?;
    state.request_rollback(&args.service, "on demand (hoist rollback)")?;
    ensure_daemon(settings)?;
    if args.detach {
        return Ok(());
    }
    // Wait for the daemon to start the rollback deployment, then follow it.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let svc = state
            .service(&args.service)?
            .with_context(|| format!("service {:?} vanished", args.service))?;
        if svc.rollback_requested.is_none() {
            match svc.active {
                Some(id) if Some(id) != before.active => {
                    return follow(settings, &state, &args.service, id);
                }
                _ => bail!(
                    "the daemon could not roll {} back (see `hoist service events {}`)",
                    args.service,
                    args.service
                ),
            }
        }
        if std::time::Instant::now() > deadline {
            bail!("the daemon did not act on the rollback within 60 s; is `hoist daemon` running?");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `hoist service ...`
pub fn service(settings: &Settings, cmd: ServiceCommand) -> Result<()> {
    let state = open_state(settings)?;
    match cmd {
        ServiceCommand::Ls => {
            let mut rows = Vec::new();
            for svc in state.services()? {
                let active = match svc.active {
                    Some(id) => state.deployment(id)?,
                    None => None,
                };
                let tasks = state.tasks(&svc.name, false)?;
                let running = tasks
                    .iter()
                    .filter(|t| t.phase == TaskPhase::Running)
                    .count();
                rows.push(json!({
                    "name": svc.name,
                    "image": active.as_ref().map(|d| d.image.clone()),
                    "desired": active.as_ref().map(|d| d.spec.count),
                    "running": running,
                    "deployment": active.as_ref().map(|d| d.id),
                    "state": active.as_ref().map(|d| d.state.as_str()),
                    "listener": active.as_ref().map(|d| d.spec.listener.addr.to_string()),
                    "removing": svc.removing,
                }));
            }
            if settings.json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "{:<20} {:<8} {:<12} {:<22} IMAGE",
                    "NAME", "TASKS", "DEPLOYMENT", "LISTENER"
                );
                for r in rows {
                    println!(
                        "{:<20} {:<8} {:<12} {:<22} {}",
                        r["name"].as_str().unwrap_or(""),
                        format!("{}/{}", r["running"], r["desired"]),
                        format!("#{} {}", r["deployment"], r["state"].as_str().unwrap_or("")),
                        r["listener"].as_str().unwrap_or(""),
                        r["image"].as_str().unwrap_or(""),
                    );
                }
            }
        }
        ServiceCommand::Ps { service, all } => {
            if state.service(&service)?.is_none() {
                bail!("no service named {service:?}");
            }
            let tasks = state.tasks(&service, all)?;
            if settings.json {
                let rows: Vec<_> = tasks
                    .iter()
                    .map(|t| {
                        json!({
                            "id": t.id,
                            "runtime_id": t.runtime_id,
                            "deployment": t.deployment,
                            "version": t.version,
                            "phase": t.phase.as_str(),
                            "healthy_once": t.healthy_once,
                            "netns": t.netns,
                            "port": t.port,
                            "reason": t.reason,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "{:<16} {:<10} {:<10} {:<8} REASON",
                    "TASK", "DEPLOYMENT", "PHASE", "HEALTHY"
                );
                for t in tasks {
                    println!(
                        "{:<16} {:<10} {:<10} {:<8} {}",
                        t.id,
                        format!("#{}", t.deployment),
                        t.phase.as_str(),
                        if t.healthy_once { "yes" } else { "no" },
                        t.reason.unwrap_or_default()
                    );
                }
            }
        }
        ServiceCommand::Events { service, follow } => {
            if state.service(&service)?.is_none() {
                bail!("no service named {service:?}");
            }
            let mut last = 0;
            loop {
                for e in state.events(&service, last)? {
                    last = e.id;
                    print_event(settings, &e);
                }
                if !follow {
                    break;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        }
        ServiceCommand::Rm { service } => {
            state.request_removal(&service)?;
            ensure_daemon(settings)?;
            eprintln!("removing {service}: its tasks drain and stop");
        }
    }
    Ok(())
}

/// `hoist logs SERVICE`
pub fn logs(settings: &Settings, args: LogsArgs) -> Result<()> {
    let state = open_state(settings)?;
    if state.service(&args.service)?.is_none() {
        bail!("no service named {:?}", args.service);
    }
    let runtime = settings.task_runtime()?;
    // Per task: the time of the last entry printed.
    let mut printed: BTreeMap<String, String> = BTreeMap::new();
    let mut first = true;
    loop {
        let mut entries = Vec::new();
        for t in state.tasks(&args.service, true)? {
            if args.task.as_ref().is_some_and(|want| *want != t.id) {
                continue;
            }
            let Some(rid) = &t.runtime_id else { continue };
            let Some(info) = runtime.task(rid) else {
                continue;
            };
            let mut lines = hoist_runtime::logs::read_logs(&info.log_dir).unwrap_or_default();
            if first {
                if let Some(n) = args.tail {
                    let skip = lines.len().saturating_sub(n);
                    lines.drain(..skip);
                }
            }
            let after = printed.get(&t.id).cloned().unwrap_or_default();
            for l in lines.into_iter().filter(|l| l.time > after) {
                entries.push((l.time.clone(), t.id.clone(), l));
            }
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (time, task, e) in entries {
            if settings.json {
                println!(
                    "{}",
                    json!({"task": task, "time": e.time, "stream": e.stream, "log": e.log})
                );
            } else {
                print!("{task} | {}", e.log);
                if !e.log.ends_with('\n') {
                    println!();
                }
            }
            printed.insert(task, time);
        }
        first = false;
        if !args.follow {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// `hoist daemon`
pub fn daemon(settings: &Settings, args: DaemonArgs) -> Result<()> {
    if args.detached {
        let _ = rustix::process::setsid();
    }
    let proxy_config = settings.proxy_config();
    if !args.no_proxy && args.proxy_admin.is_none() {
        ensure_proxy(settings, &proxy_config)?;
    }
    let controller = Controller::new(
        ControllerOptions {
            home: settings.home.clone(),
            proxy_config,
            proxy_admin: args.proxy_admin,
            tick: Duration::from_millis(250),
        },
        settings.task_runtime()?,
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        eprintln!(
            "hoist daemon: managing services in {}",
            settings.home.display()
        );
        controller.run(shutdown).await?;
        eprintln!("hoist daemon: stopped; tasks and the proxy keep running");
        Ok(())
    })
}

/// Starts `hoist daemon` in the background when none runs on this home.
fn ensure_daemon(settings: &Settings) -> Result<()> {
    if controller::daemon_running(&settings.home) {
        return Ok(());
    }
    let log = controller::deploy_dir(&settings.home).join("daemon.log");
    spawn_detached(settings, &["daemon", "--detached"], &log)?;
    // Wait until it holds its lock, so a second CLI does not start another.
    for _ in 0..100 {
        if controller::daemon_running(&settings.home) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("hoist daemon did not start; see {}", log.display())
}

/// Starts `hoist proxy` in the background when none serves `config`'s directory.
fn ensure_proxy(settings: &Settings, config: &Path) -> Result<()> {
    let dir = config.parent().unwrap_or(Path::new("."));
    if hoist_proxy::watch::running(dir) {
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let log = dir.join("proxy.log");
    let config_arg = config.display().to_string();
    // One current-thread worker per CPU: about twice the throughput of one
    // work-stealing runtime (BENCHMARKS.md, proxy section).
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .to_string();
    spawn_detached(
        settings,
        &[
            "proxy",
            "--detached",
            "--config",
            &config_arg,
            "--admin",
            "127.0.0.1:0",
            "--workers",
            &workers,
        ],
        &log,
    )?;
    for _ in 0..100 {
        if hoist_proxy::watch::running(dir) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("hoist proxy did not start; see {}", log.display())
}

fn spawn_detached(settings: &Settings, args: &[&str], log: &Path) -> Result<()> {
    use std::os::unix::process::CommandExt;
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let err = out.try_clone()?;
    let exe = std::env::current_exe().context("finding the hoist binary")?;
    Command::new(exe)
        .arg("--home")
        .arg(&settings.home)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting hoist {}", args.join(" ")))?;
    Ok(())
}
