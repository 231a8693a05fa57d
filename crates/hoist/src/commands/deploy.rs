//! `hoist deploy`, `hoist rollback`, `hoist service ...`, `hoist logs` and
//! `hoist daemon`: thin handlers over hoist-deploy. The CLI records desired state
//! in the state database and follows the events the daemon records; it never
//! starts or stops a task itself.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use hoist_deploy::client::{self, Outcome};
use hoist_deploy::controller::{self, Controller, ControllerOptions};
use hoist_deploy::spec::{Name, Port, ServiceSpec, Strategy};
use hoist_deploy::state::{Event, State, TaskPhase};
use serde_json::json;

use crate::cli::{
    DaemonArgs, DeployArgs, EventsArgs, LogsArgs, PsArgs, RollbackArgs, ServiceCommand,
};
use crate::settings::Settings;

fn open_state(settings: &Settings) -> Result<State> {
    Ok(State::open(&controller::state_path(&settings.home))?)
}

/// The state database when something was ever deployed (asking creates nothing).
fn existing_state(settings: &Settings) -> Result<Option<State>> {
    let path = controller::state_path(&settings.home);
    if !path.exists() {
        return Ok(None);
    }
    Ok(Some(State::open(&path)?))
}

/// Image digests that services still need.
pub fn digests_in_use(
    settings: &Settings,
) -> Result<BTreeMap<String, std::collections::BTreeSet<String>>> {
    match existing_state(settings)? {
        Some(state) => Ok(state.digests_in_use()?),
        None => Ok(BTreeMap::new()),
    }
}

/// `hoist deploy FILE|IMAGE`
pub fn deploy(settings: &Settings, args: DeployArgs) -> Result<()> {
    if args.ecs.ecs.is_some() {
        return super::ecs::deploy(settings, &args);
    }
    let (spec, origin) = service_spec(settings, &args)?;
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
    client::check(&settings.home, &store, &spec, &digest, &origin)?;
    let pinned = client::pin(&spec.image, &digest);
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

/// The spec to deploy and what it came from (for errors): the service file with
/// the flags applied, or for an image the service's current spec (or a new one
/// with defaults) with the new image and the flags applied.
fn service_spec(settings: &Settings, args: &DeployArgs) -> Result<(ServiceSpec, String)> {
    let path = Path::new(&args.target);
    let is_file = path.is_file()
        || [".yml", ".yaml"]
            .iter()
            .any(|ext| args.target.ends_with(ext));
    let (mut spec, origin) = if is_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the service file {}", args.target))?;
        let mut spec = ServiceSpec::parse(&args.target, &text)?;
        if let Some(tls) = &mut spec.listener.tls {
            // Paths in a service file are relative to it.
            let base = path.parent().unwrap_or(Path::new("."));
            for p in [&mut tls.cert, &mut tls.key] {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
                if let Ok(abs) = std::path::absolute(&*p) {
                    *p = abs;
                }
            }
        }
        if let Some(image) = &args.image {
            spec.image = image.clone();
        }
        (spec, args.target.clone())
    } else {
        if args.image.is_some() {
            bail!(
                "--image replaces a service file's image; {:?} is not a file, so it is the image itself",
                args.target
            );
        }
        let name = match &args.service {
            Some(n) => n.clone(),
            None => service_name_of(&args.target),
        };
        let name = Name::new(&name).map_err(|e| anyhow::anyhow!("--service: {e}"))?;
        let state = open_state(settings)?;
        let current = match state.service(name.as_str())? {
            Some(svc) => match svc.active.or(svc.stable) {
                Some(id) => state.deployment(id)?.map(|d| d.spec),
                None => None,
            },
            None => None,
        };
        let spec = match current {
            Some(mut spec) => {
                spec.image = args.target.clone();
                spec
            }
            None => {
                let Some(listen) = args.listen else {
                    bail!(
                        "service {name} does not exist yet: give its listener with --listen ADDR (e.g. 0.0.0.0:80), or deploy a service file"
                    );
                };
                ServiceSpec::new(name, &args.target, listen)
            }
        };
        (spec, "hoist deploy".to_owned())
    };
    if let Some(name) = &args.service {
        spec.name = Name::new(name).map_err(|e| anyhow::anyhow!("--service: {e}"))?;
    }
    if let Some(n) = args.replicas {
        spec.count = n;
    }
    if let Some(port) = args.port {
        if port == 0 {
            bail!("--port: port 0 is not a port (use 1 to 65535)");
        }
        spec.port = Some(Port(port));
    }
    if let Some(s) = &args.strategy {
        let mut strategy: Strategy = s.parse().map_err(|e| anyhow::anyhow!("--strategy: {e}"))?;
        // A file's blue/green test listener survives a bake given on the command line.
        if let (
            Strategy::BlueGreen {
                test_listener: new, ..
            },
            Strategy::BlueGreen {
                test_listener: old, ..
            },
        ) = (&mut strategy, &spec.deployment.strategy)
        {
            if new.is_none() {
                *new = *old;
            }
        }
        spec.deployment.strategy = strategy;
    }
    if let Some(addr) = args.listen {
        spec.listener.addr = addr;
    }
    if let Some(path) = &args.health_path {
        let mut check = spec.health_check.take().unwrap_or_default();
        check.path = path.clone();
        spec.health_check = Some(check);
    }
    for kv in &args.env {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("--env {kv:?}: write KEY=VALUE");
        };
        spec.env.insert(k.to_owned(), v.to_owned());
    }
    spec.validate()
        .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    if let Some(tls) = &spec.listener.tls {
        hoist_tls::server_config(&tls.cert, &tls.key, &[])
            .map_err(|e| anyhow::anyhow!("{origin}: listener.tls: {e}"))?;
    }
    Ok((spec, origin))
}

/// A service name from an image reference: its repository's last component,
/// lowercased, with characters a name may not have turned into `-`
/// (`registry:5000/team/My_App:1.2` is `my-app`).
fn service_name_of(image: &str) -> String {
    let repo = image.split('@').next().unwrap_or(image);
    let repo = match repo.rsplit_once(':') {
        Some((r, tag)) if !tag.contains('/') => r,
        _ => repo,
    };
    let last = repo.rsplit('/').next().unwrap_or(repo);
    last.chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-') => c,
            _ => '-',
        })
        .collect::<String>()
        .trim_matches('-')
        .to_owned()
}

/// Prints the service's events from deployment `id` on until it ends (and, when it
/// failed, until its rollback ends). Fails when the deployment did.
fn follow(settings: &Settings, state: &State, service: &str, id: i64) -> Result<()> {
    match client::wait(state, service, id, None, |e| print_event(settings, e))? {
        Outcome::Succeeded => Ok(()),
        Outcome::RolledBack { reason } => {
            bail!("deployment #{id} failed and was rolled back: {reason}")
        }
        Outcome::Superseded { reason } => bail!("deployment #{id} was superseded: {reason}"),
        Outcome::Failed { reason } => bail!("deployment #{id} failed: {reason}"),
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
    if args.ecs.ecs.is_some() {
        return super::ecs::rollback(settings, &args);
    }
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
        ServiceCommand::Ps(args) => ps(settings, args)?,
        ServiceCommand::Events(args) => events(settings, args)?,
        ServiceCommand::Rm { service } => {
            state.request_removal(&service)?;
            ensure_daemon(settings)?;
            eprintln!("removing {service}: its tasks drain and stop");
        }
    }
    Ok(())
}

/// `hoist ps [SERVICE]`
pub fn ps(settings: &Settings, args: PsArgs) -> Result<()> {
    let state = open_state(settings)?;
    let services = match args.service {
        Some(name) => {
            if state.service(&name)?.is_none() {
                bail!("no service named {name:?}");
            }
            vec![name]
        }
        None => state.services()?.into_iter().map(|s| s.name).collect(),
    };
    let mut tasks = Vec::new();
    for name in &services {
        tasks.extend(state.tasks(name, args.all)?);
    }
    if settings.json {
        let rows: Vec<_> = tasks
            .iter()
            .map(|t| {
                json!({
                    "id": t.id,
                    "service": t.service,
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
            "{:<16} {:<20} {:<10} {:<10} {:<8} REASON",
            "TASK", "SERVICE", "DEPLOYMENT", "PHASE", "HEALTHY"
        );
        for t in tasks {
            println!(
                "{:<16} {:<20} {:<10} {:<10} {:<8} {}",
                t.id,
                t.service,
                format!("#{}", t.deployment),
                t.phase.as_str(),
                if t.healthy_once { "yes" } else { "no" },
                t.reason.unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// `hoist events SERVICE`
pub fn events(settings: &Settings, args: EventsArgs) -> Result<()> {
    let state = open_state(settings)?;
    if state.service(&args.service)?.is_none() {
        bail!("no service named {:?}", args.service);
    }
    let mut last = 0;
    loop {
        for e in state.events(&args.service, last)? {
            last = e.id;
            print_event(settings, &e);
        }
        if !args.follow {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// `hoist scale SERVICE N` and `hoist stop SERVICE` (N = 0): records the desired
/// count on the service's deployments, then (unless `detach`) prints the events
/// until exactly `count` tasks of the active version run healthy and no other
/// task is left.
pub fn scale(settings: &Settings, service: &str, count: u32, detach: bool) -> Result<()> {
    let state = open_state(settings)?;
    let why = if count == 0 {
        "hoist stop"
    } else {
        "hoist scale"
    };
    let last = state.events(service, 0)?.last().map_or(0, |e| e.id);
    let before = state.scale(service, count, why)?;
    ensure_daemon(settings)?;
    if !settings.json {
        eprintln!("{service}: desired count {before} -> {count}");
    }
    if detach {
        return Ok(());
    }
    let mut last = last;
    loop {
        for e in state.events(service, last)? {
            last = e.id;
            print_event(settings, &e);
        }
        let svc = state
            .service(service)?
            .with_context(|| format!("service {service:?} was removed"))?;
        let Some(active) = svc
            .active
            .map(|id| state.deployment(id))
            .transpose()?
            .flatten()
        else {
            bail!("service {service:?} has no active deployment");
        };
        if active.spec.count != count {
            bail!(
                "the desired count of {service} changed to {} meanwhile (another hoist scale or deploy)",
                active.spec.count
            );
        }
        let tasks = state.tasks(service, false)?;
        let ready = tasks
            .iter()
            .filter(|t| {
                t.version == active.version && t.phase == TaskPhase::Running && t.healthy_once
            })
            .count();
        if tasks.len() == count as usize && ready == count as usize {
            if !settings.json {
                eprintln!("{service}: {count} tasks running");
            }
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
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
        client::ensure_proxy(&client::current_exe()?, &settings.home, &proxy_config)?;
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
    Ok(client::ensure_daemon(
        &client::current_exe()?,
        &settings.home,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_is_named_after_its_image_repository() {
        assert_eq!(service_name_of("web:1"), "web");
        assert_eq!(service_name_of("registry:5000/team/My_App:1.2"), "my-app");
        assert_eq!(service_name_of("localhost:5000/api"), "api");
        assert_eq!(
            service_name_of(
                "api@sha256:0000000000000000000000000000000000000000000000000000000000000000"
            ),
            "api"
        );
        assert_eq!(service_name_of("_x_"), "x");
    }
}
