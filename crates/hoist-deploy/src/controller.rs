//! The controller loop (`hoist daemon`): every tick it observes (the runtime's
//! tasks, the proxy's target health, draining and request counts), asks
//! [`crate::plan`] what each service needs, records the decision in the state
//! database, then acts (start and stop tasks, rewrite the proxy's config file).
//!
//! It holds nothing that matters in memory: starts and stops in flight, per-service
//! back-off and error-rate baselines are rebuilt after a restart, and a task's
//! container and the proxy keep running while the controller is away.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hoist_oci::Store;
use hoist_proxy::admin::AdminClient;
use hoist_proxy::{Config, Endpoint, HealthState, RequestCounts};
use hoist_runtime::{Runtime, TaskOptions, TaskState};
use hoist_secrets::SecretStore;
use hoist_snapshot::Snapshots;

use crate::launch::{TaskHealth, Template};
use crate::plan::{self, ErrorCounts, Health, TaskView};
use crate::proxyconf::{self, group_name, ServiceRoute, VersionTargets};
use crate::spec::Strategy;
use crate::state::{now_ms, Deployment, DeploymentState, State, StateError, Task, TaskPhase};

/// How the controller is set up.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// hoist's home (image store, snapshots, secrets).
    pub home: PathBuf,
    /// The proxy's configuration file, written atomically.
    pub proxy_config: PathBuf,
    /// The proxy's admin address; default: read `admin.addr` next to the config.
    pub proxy_admin: Option<SocketAddr>,
    /// Time between ticks (default 250 ms).
    pub tick: Duration,
}

/// Where the controller keeps things under the home.
pub fn deploy_dir(home: &Path) -> PathBuf {
    home.join("deploy")
}

/// The state database of a home.
pub fn state_path(home: &Path) -> PathBuf {
    deploy_dir(home).join("state.db")
}

/// The runtime state dir for service tasks (apart from build containers).
pub fn tasks_dir(home: &Path) -> PathBuf {
    deploy_dir(home).join("tasks")
}

/// What stops the controller.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The state database failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// Another controller runs on this home.
    #[error("another hoist daemon (pid {pid}) manages {dir}")]
    Running {
        /// Its pid, as it recorded it.
        pid: String,
        /// The deploy dir.
        dir: PathBuf,
    },
    /// Setup failed.
    #[error("{0}")]
    Setup(String),
}

/// Consecutive failures of a service's tasks, for start back-off.
#[derive(Debug, Default, Clone, Copy)]
struct Backoff {
    failures: u32,
    not_before: Option<Instant>,
}

impl Backoff {
    fn fail(&mut self) {
        self.failures += 1;
        let delay = Duration::from_millis(500)
            .saturating_mul(1 << self.failures.saturating_sub(1).min(6))
            .min(Duration::from_secs(30));
        self.not_before = Some(Instant::now() + delay);
    }

    fn ready(&self) -> bool {
        self.not_before.is_none_or(|t| Instant::now() >= t)
    }
}

/// What the proxy told us this tick.
#[derive(Default)]
struct ProxyView {
    reachable: bool,
    generation: u64,
    /// Why the proxy rejected the newest configuration it was given.
    error: Option<String>,
    health: HashMap<(String, Endpoint), (HealthState, Option<String>)>,
    draining: HashSet<(String, Endpoint)>,
    counts: Option<RequestCounts>,
}

/// The controller.
pub struct Controller {
    opts: ControllerOptions,
    state: Arc<State>,
    runtime: Arc<Runtime>,
    store: Arc<Store>,
    snapshots: Arc<Snapshots>,
    secrets: Option<Arc<SecretStore>>,
    templates: HashMap<String, Arc<Template>>,
    in_flight: Arc<std::sync::Mutex<HashSet<String>>>,
    backoff: HashMap<String, Backoff>,
    baselines: HashMap<i64, RequestCounts>,
    generation: u64,
    written: Option<Config>,
    _lock: std::fs::File,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("home", &self.opts.home)
            .finish_non_exhaustive()
    }
}

impl Controller {
    /// Opens the state and takes the home's controller lock; `runtime` must keep
    /// its state under [`tasks_dir`].
    pub fn new(opts: ControllerOptions, runtime: Runtime) -> Result<Controller, ControllerError> {
        let dir = deploy_dir(&opts.home);
        // Private: task state under it holds secrets in the tasks' environment.
        std::fs::create_dir_all(&dir)
            .and_then(|()| {
                std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            })
            .map_err(|e| ControllerError::Setup(format!("{}: {e}", dir.display())))?;
        let lock = lock_daemon(&dir)?;
        let state = Arc::new(State::open(&state_path(&opts.home))?);
        let store = Store::open(&opts.home)
            .map_err(|e| ControllerError::Setup(format!("image store: {e}")))?;
        let snapshots = Snapshots::open(&opts.home.join("snapshots"))
            .map_err(|e| ControllerError::Setup(format!("snapshots: {e}")))?;
        let secrets = SecretStore::open(&opts.home.join("secrets"))
            .ok()
            .map(Arc::new);
        let (generation, written) = read_written(&opts.proxy_config);
        Ok(Controller {
            opts,
            state,
            runtime: Arc::new(runtime),
            store: Arc::new(store),
            snapshots: Arc::new(snapshots),
            secrets,
            templates: HashMap::new(),
            in_flight: Arc::default(),
            backoff: HashMap::new(),
            baselines: HashMap::new(),
            generation,
            written,
            _lock: lock,
        })
    }

    /// Runs until `shutdown` resolves. Tasks and the proxy keep running after.
    pub async fn run(
        mut self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), ControllerError> {
        self.adopt().await?;
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.tick().await {
                tracing::error!(error = %e, "controller tick failed");
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(self.opts.tick) => {}
            }
        }
        Ok(())
    }

    /// After a restart: tasks the runtime runs that the state does not know are
    /// stopped; tasks recorded as starting when the controller died are failed.
    async fn adopt(&mut self) -> Result<(), ControllerError> {
        let known: HashSet<String> = self
            .state
            .live_tasks()?
            .iter()
            .filter_map(|t| t.runtime_id.clone())
            .collect();
        let runtime = self.runtime.clone();
        let orphans = tokio::task::spawn_blocking(move || {
            let mut n = 0;
            for t in runtime.tasks().unwrap_or_default() {
                if !known.contains(&t.id) {
                    tracing::warn!(task = %t.id, "stopping a task no service owns");
                    let _ = runtime.stop(&t.id);
                    let _ = runtime.remove(&t.id);
                    n += 1;
                }
            }
            n
        })
        .await
        .unwrap_or(0);
        let mut adopted = 0;
        for mut t in self.state.live_tasks()? {
            if t.phase == TaskPhase::Pending {
                t.phase = TaskPhase::Failed;
                t.reason = Some("the controller stopped while it was starting".to_owned());
                self.state.transaction(|tx| tx.update_task(&t))?;
                cleanup_scratch(&self.opts.home, &t.id);
            } else {
                adopted += 1;
            }
        }
        tracing::info!(adopted, orphans, "controller started");
        Ok(())
    }

    async fn observe_proxy(&self) -> ProxyView {
        let Some(addr) = self.admin_addr() else {
            return ProxyView::default();
        };
        let client = AdminClient::new(addr);
        let Ok(status) = client.status().await else {
            return ProxyView::default();
        };
        let mut v = ProxyView {
            reachable: true,
            generation: status.generation,
            error: status.error.clone(),
            ..ProxyView::default()
        };
        if let Ok(targets) = client.targets().await {
            for t in targets {
                v.health.insert(
                    (t.target_group, t.endpoint.without_health_file()),
                    (t.state, t.reason),
                );
            }
        }
        if let Ok(draining) = client.draining().await {
            for d in draining {
                v.draining.insert((d.target_group, d.endpoint));
            }
        }
        v.counts = client.counts().await.ok();
        v
    }

    /// Why the proxy cannot serve `d`'s listener, when it rejected the newest
    /// configuration this controller wrote for that reason (its address is taken,
    /// say): nothing of the deployment can get traffic, so waiting for health
    /// checks would only end at the caller's timeout.
    fn listener_refused(&self, d: &crate::state::Deployment, proxy: &ProxyView) -> Option<String> {
        let error = proxy.error.as_deref()?;
        let addr = d.spec.listener.addr.to_string();
        (proxy.reachable && proxy.generation < self.generation && error.contains(&addr))
            .then(|| format!("the proxy cannot serve the listener {addr}: {error}"))
    }

    fn admin_addr(&self) -> Option<SocketAddr> {
        self.opts.proxy_admin.or_else(|| {
            let p = self.opts.proxy_config.with_file_name("admin.addr");
            std::fs::read_to_string(p).ok()?.trim().parse().ok()
        })
    }

    /// One round of observe, decide, record, act.
    pub async fn tick(&mut self) -> Result<(), ControllerError> {
        let proxy = self.observe_proxy().await;
        let mut routes = Vec::new();
        for svc in self.state.services()? {
            if let Some(route) = self.tick_service(&svc, &proxy)? {
                routes.push(route);
            }
        }
        let config = proxyconf::build(&routes);
        self.write_proxy_config(config)?;
        self.stop_drained(&proxy)?;
        Ok(())
    }

    fn tick_service(
        &mut self,
        svc: &crate::state::Service,
        proxy: &ProxyView,
    ) -> Result<Option<ServiceRoute>, ControllerError> {
        let name = svc.name.clone();
        let Some(active_id) = svc.active else {
            return Ok(None);
        };
        let mut active = match self.state.deployment(active_id)? {
            Some(d) => d,
            None => return Ok(None),
        };

        // 1. Tasks that ended on their own, and health.
        let mut tasks = self.state.tasks(&name, false)?;
        let in_flight = self.in_flight.lock().map(|s| s.clone()).unwrap_or_default();
        for t in tasks.iter_mut() {
            if in_flight.contains(&t.id) || t.phase == TaskPhase::Pending {
                continue;
            }
            let Some(rid) = t.runtime_id.clone() else {
                continue;
            };
            let info = self.runtime.task(&rid);
            let ended = match &info {
                None => Some("its container is gone".to_owned()),
                Some(i) => match &i.state {
                    TaskState::Exited(s) => Some(format!("exited with code {}", s.code())),
                    TaskState::Failed(m) => Some(format!("failed: {m}")),
                    TaskState::Lost => Some("its supervisor was killed".to_owned()),
                    _ => None,
                },
            };
            if let Some(why) = ended {
                let expected = t.phase == TaskPhase::Stopping;
                let counts = !expected && t.version == active.version;
                t.phase = if expected {
                    TaskPhase::Stopped
                } else {
                    TaskPhase::Failed
                };
                t.reason = Some(why.clone());
                let task = t.clone();
                self.state.transaction(|tx| {
                    if expected {
                        return tx.update_task(&task);
                    }
                    tx.task_event(&task, "task-exited", &format!("task {} {why}", task.id))?;
                    if counts && active.state == DeploymentState::InProgress {
                        tx.add_failure(active.id)?;
                    }
                    Ok(())
                })?;
                if !expected {
                    self.backoff.entry(name.clone()).or_default().fail();
                }
                let runtime = self.runtime.clone();
                let home = self.opts.home.clone();
                let id = task.id.clone();
                tokio::task::spawn_blocking(move || {
                    let _ = runtime.remove(&rid);
                    cleanup_scratch(&home, &id);
                });
            }
        }
        tasks.retain(|t| t.phase.is_live());

        let mut views = Vec::new();
        for t in tasks.iter_mut() {
            let health = if t.phase == TaskPhase::Running {
                match self.task_health(&name, t, proxy) {
                    Some((HealthState::Healthy, _)) => Health::Healthy,
                    Some((HealthState::Unhealthy, reason)) => {
                        // Replace it: deregister (it drains, then stops).
                        let why = reason.unwrap_or_else(|| "health checks failed".to_owned());
                        let counts = t.version == active.version
                            && active.state == DeploymentState::InProgress;
                        t.phase = TaskPhase::Draining;
                        t.drain_generation = Some(self.generation + 1);
                        t.reason = Some(format!("unhealthy: {why}"));
                        let task = t.clone();
                        self.state.transaction(|tx| {
                            tx.task_event(
                                &task,
                                "task-unhealthy",
                                &format!("task {} is unhealthy ({why}); replacing it", task.id),
                            )?;
                            if counts {
                                tx.add_failure(active.id)?;
                            }
                            Ok(())
                        })?;
                        self.backoff.entry(name.clone()).or_default().fail();
                        Health::Unhealthy
                    }
                    _ => Health::Unknown,
                }
            } else {
                Health::Unknown
            };
            if health == Health::Healthy && !t.healthy_once {
                t.healthy_once = true;
                let task = t.clone();
                self.state.transaction(|tx| {
                    tx.task_event(
                        &task,
                        "task-healthy",
                        &format!("task {} is healthy", task.id),
                    )
                })?;
                self.backoff.remove(&name);
            }
            views.push(TaskView {
                id: t.id.clone(),
                version: t.version.clone(),
                phase: t.phase,
                health,
            });
        }
        // Re-read: failures may have been added above.
        if let Some(d) = self.state.deployment(active.id)? {
            active = d;
        }

        // 2. Removal and rollback requests.
        if svc.removing {
            let live: Vec<&Task> = tasks.iter().filter(|t| t.phase.is_live()).collect();
            if live.is_empty() {
                self.state.transaction(|tx| tx.delete_service(&name))?;
                tracing::info!(service = %name, "service removed");
                return Ok(None);
            }
            self.deregister(
                &tasks,
                &views
                    .iter()
                    .filter(|v| v.phase == TaskPhase::Running)
                    .map(|v| v.id.clone())
                    .collect::<Vec<_>>(),
            )?;
            // No traffic while it drains.
            return Ok(Some(ServiceRoute::closed(active.spec)));
        }
        if let Some(reason) = &svc.rollback_requested {
            self.roll_back(
                &name,
                &active,
                &format!("rollback requested: {reason}"),
                true,
            )?;
            // Plan the rollback in this same tick: traffic never loses its route.
            return match self.state.service(&name)? {
                Some(fresh) if fresh.rollback_requested.is_none() => {
                    self.tick_service(&fresh, proxy)
                }
                _ => Ok(None),
            };
        }

        // 3. Decide.
        let errors = self.errors_since(&active, proxy);
        let decision = match self.listener_refused(&active, proxy) {
            Some(why) if active.state == DeploymentState::InProgress => {
                plan::failed(&active, &views, why)
            }
            _ => plan::plan(&active, &views, now_ms(), errors),
        };

        // 4. Record and act.
        if let Some(step) = decision.set_step {
            let events = decision.events.clone();
            self.state.transaction(|tx| {
                tx.set_step(active.id, step)?;
                for (kind, msg) in &events {
                    tx.event(&name, Some(active.id), kind, msg)?;
                }
                Ok(())
            })?;
        }
        self.deregister(&tasks, &decision.deregister)?;
        let mut starts = decision.start;
        if starts > 0 && !self.backoff.get(&name).is_none_or(Backoff::ready) {
            starts = 0;
        }
        for _ in 0..starts {
            self.start_task(&active)?;
        }
        if let Some((state, reason)) = &decision.finish {
            match state {
                DeploymentState::Failed => {
                    self.roll_back(&name, &active, reason, false)?;
                }
                // Success means the traffic has moved: only once the proxy serves
                // a config without the old tasks (written in an earlier tick).
                _ if decision.deregister.is_empty()
                    && proxy.reachable
                    && proxy.generation >= self.generation =>
                {
                    let id = active.id;
                    self.state.transaction(|tx| tx.finish(id, *state, reason))?;
                    self.baselines.remove(&id);
                }
                _ => {}
            }
        }

        // 5. The route: registered tasks by version.
        let mut versions: BTreeMap<String, VersionTargets> = BTreeMap::new();
        let deregistered: HashSet<&String> = decision.deregister.iter().collect();
        let mut healths: HashMap<i64, TaskHealth> = HashMap::new();
        for t in &tasks {
            if t.phase != TaskPhase::Running || deregistered.contains(&t.id) {
                continue;
            }
            let Some(netns) = &t.netns else { continue };
            let health = match healths.get(&t.deployment) {
                Some(h) => h.clone(),
                None => {
                    let h = match self.state.deployment(t.deployment)? {
                        Some(d) => self.task_health_of(&d),
                        None => TaskHealth::Running,
                    };
                    healths.insert(t.deployment, h.clone());
                    h
                }
            };
            let health_file = t.runtime_id.as_deref().map(|r| self.runtime.health_file(r));
            versions
                .entry(t.version.clone())
                .or_insert_with(|| VersionTargets {
                    health,
                    endpoints: Vec::new(),
                })
                .endpoints
                .push((PathBuf::from(netns), t.port, health_file));
        }
        let test = match &active.spec.deployment.strategy {
            Strategy::BlueGreen {
                test_listener: Some(addr),
                ..
            } if active.state == DeploymentState::InProgress && active.kind == "deploy" => {
                Some((*addr, active.version.clone()))
            }
            _ => None,
        };
        Ok(Some(ServiceRoute {
            spec: active.spec,
            weights: decision.weights,
            versions,
            test,
        }))
    }

    fn task_health(
        &self,
        service: &str,
        t: &Task,
        proxy: &ProxyView,
    ) -> Option<(HealthState, Option<String>)> {
        let netns = t.netns.as_ref()?;
        let key = (
            group_name(service, &t.version),
            Endpoint::Netns {
                path: PathBuf::from(netns),
                port: t.port,
                health_file: None,
            },
        );
        proxy.health.get(&key).cloned()
    }

    fn errors_since(&mut self, d: &Deployment, proxy: &ProxyView) -> ErrorCounts {
        let Some(now) = &proxy.counts else {
            return ErrorCounts::default();
        };
        if d.state != DeploymentState::InProgress {
            return ErrorCounts::default();
        }
        let base = self.baselines.entry(d.id).or_insert_with(|| now.clone());
        let diff = now.since(base);
        let c = diff.route(&d.service, &group_name(&d.service, &d.version));
        ErrorCounts {
            total: c.total(),
            server_errors: c.server_errors(),
        }
    }

    /// Fails `active` and starts a rollback to the last good version, when there
    /// is one and `active` is not itself a rollback (unless asked for).
    fn roll_back(
        &mut self,
        service: &str,
        active: &Deployment,
        reason: &str,
        requested: bool,
    ) -> Result<(), ControllerError> {
        let target = self.rollback_target(service, active)?;
        let active = active.clone();
        let reason = reason.to_owned();
        self.state.transaction(|tx| {
            tx.clear_rollback_request(service)?;
            if active.state == DeploymentState::InProgress {
                tx.finish(active.id, DeploymentState::Failed, &reason)?;
            }
            match &target {
                Some(t) if requested || active.kind != "rollback" => {
                    let id = tx.submit(&t.spec, &t.image, &t.digest, "rollback")?;
                    tx.event(
                        service,
                        Some(id),
                        "rollback",
                        &format!(
                            "rolling back to deployment #{} ({}) because {reason}",
                            t.id, t.image
                        ),
                    )?;
                }
                _ => {
                    tx.event(
                        service,
                        Some(active.id),
                        "rollback-impossible",
                        "no earlier successful deployment to roll back to",
                    )?;
                }
            }
            Ok(())
        })?;
        self.baselines.remove(&active.id);
        Ok(())
    }

    /// The deployment to go back to: the stable one when `active` is not it,
    /// else the last success before it with another version.
    fn rollback_target(
        &self,
        service: &str,
        active: &Deployment,
    ) -> Result<Option<Deployment>, ControllerError> {
        let svc = self.state.service(service)?;
        let stable = svc.and_then(|s| s.stable);
        let history = self.state.deployments(service, 1000)?;
        if let Some(s) = stable.filter(|s| *s != active.id) {
            if let Some(d) = history.iter().find(|d| d.id == s) {
                if d.version != active.version {
                    return Ok(Some(d.clone()));
                }
            }
        }
        Ok(history.into_iter().find(|d| {
            d.id < active.id && d.state == DeploymentState::Succeeded && d.version != active.version
        }))
    }

    fn deregister(&mut self, tasks: &[Task], ids: &[String]) -> Result<(), ControllerError> {
        for id in ids {
            let Some(t) = tasks
                .iter()
                .find(|t| &t.id == id && t.phase == TaskPhase::Running)
            else {
                continue;
            };
            let mut t = t.clone();
            t.phase = TaskPhase::Draining;
            t.drain_generation = Some(self.generation + 1);
            self.state.transaction(|tx| {
                tx.task_event(
                    &t,
                    "task-draining",
                    &format!("task {} deregistered; draining", t.id),
                )
            })?;
        }
        Ok(())
    }

    /// How `d`'s tasks' health is known: the template's, else (no image at hand)
    /// the file's HTTP check or none.
    fn task_health_of(&mut self, d: &Deployment) -> TaskHealth {
        match self.template(d) {
            Ok(t) => t.health.clone(),
            Err(_) => TaskHealth::resolve(&d.spec, None, None).unwrap_or(TaskHealth::Running),
        }
    }

    fn template(&mut self, d: &Deployment) -> Result<Arc<Template>, crate::launch::LaunchError> {
        if let Some(t) = self.templates.get(&d.version) {
            return Ok(t.clone());
        }
        let t = Arc::new(Template::prepare(
            &self.store,
            &self.snapshots,
            &d.spec,
            &d.digest,
        )?);
        self.templates.insert(d.version.clone(), t.clone());
        Ok(t)
    }

    fn start_task(&mut self, d: &Deployment) -> Result<(), ControllerError> {
        let service = d.service.clone();
        let id = format!("t-{}", hex::encode(rand::random::<[u8; 6]>()));
        let template = match self.template(d) {
            Ok(t) => t,
            Err(e) => {
                let msg = format!("cannot prepare a task: {e}");
                self.state.transaction(|tx| {
                    tx.event(&service, Some(d.id), "task-failed", &msg)?;
                    if d.state == DeploymentState::InProgress {
                        tx.add_failure(d.id)?;
                    }
                    Ok(())
                })?;
                self.backoff.entry(service).or_default().fail();
                return Ok(());
            }
        };
        let now = now_ms();
        let task = Task {
            id: id.clone(),
            runtime_id: None,
            service: service.clone(),
            version: d.version.clone(),
            deployment: d.id,
            phase: TaskPhase::Pending,
            netns: None,
            port: template.port,
            healthy_once: false,
            drain_generation: None,
            reason: None,
            created: now,
            updated: now,
        };
        self.state.transaction(|tx| {
            tx.insert_task(&task)?;
            tx.event(
                &service,
                Some(d.id),
                "task-starting",
                &format!("starting task {id}"),
            )
        })?;
        if let Ok(mut s) = self.in_flight.lock() {
            s.insert(id.clone());
        }
        let state = self.state.clone();
        let runtime = self.runtime.clone();
        let secrets = self.secrets.clone();
        let scratch = scratch_dir(&self.opts.home, &id);
        let in_flight = self.in_flight.clone();
        let in_progress = d.state == DeploymentState::InProgress;
        let options = TaskOptions {
            stop_timeout: d.spec.stop_timeout,
            health: template.health.probe().cloned(),
            ..TaskOptions::default()
        };
        let hostname = format!("{service}-{}", &id[2..8]);
        tokio::task::spawn_blocking(move || {
            let result = template
                .container(&scratch, &hostname, secrets.as_deref())
                .map_err(|e| e.to_string())
                .and_then(|spec| runtime.start(&spec, &options).map_err(|e| e.to_string()));
            let mut task = task;
            let r = match result {
                Ok(info) => {
                    task.phase = TaskPhase::Running;
                    task.runtime_id = Some(info.id.clone());
                    task.netns = info.netns.map(|p| p.display().to_string());
                    state.transaction(|tx| {
                        tx.task_event(
                            &task,
                            "task-running",
                            &format!("task {} runs ({})", task.id, info.id),
                        )
                    })
                }
                Err(e) => {
                    task.phase = TaskPhase::Failed;
                    task.reason = Some(e.clone());
                    let _ = std::fs::remove_dir_all(&scratch);
                    state.transaction(|tx| {
                        tx.task_event(
                            &task,
                            "task-failed",
                            &format!("task {} failed to start: {e}", task.id),
                        )?;
                        if in_progress {
                            tx.add_failure(task.deployment)?;
                        }
                        Ok(())
                    })
                }
            };
            if let Err(e) = r {
                tracing::error!(task = %task.id, error = %e, "recording a started task failed");
            }
            if let Ok(mut s) = in_flight.lock() {
                s.remove(&task.id);
            }
        });
        Ok(())
    }

    /// Draining tasks the proxy has let go of are stopped.
    fn stop_drained(&mut self, proxy: &ProxyView) -> Result<(), ControllerError> {
        let in_flight = self.in_flight.lock().map(|s| s.clone()).unwrap_or_default();
        for mut t in self.state.live_tasks()? {
            if in_flight.contains(&t.id) {
                continue;
            }
            let ready = match t.phase {
                TaskPhase::Draining => {
                    let applied = proxy.reachable
                        && proxy.generation >= t.drain_generation.unwrap_or(0)
                        && !proxy.draining.iter().any(|(g, e)| {
                            *g == group_name(&t.service, &t.version)
                                && matches!(e, Endpoint::Netns { path, .. } if Some(path.display().to_string()) == t.netns)
                        });
                    // Without a proxy nothing can be in flight for long.
                    applied || (!proxy.reachable && now_ms() - t.updated > 30_000)
                }
                // A stop the previous controller did not see finish.
                TaskPhase::Stopping => true,
                _ => false,
            };
            if !ready {
                continue;
            }
            t.phase = TaskPhase::Stopping;
            self.state.transaction(|tx| tx.update_task(&t))?;
            if let Ok(mut s) = self.in_flight.lock() {
                s.insert(t.id.clone());
            }
            let state = self.state.clone();
            let runtime = self.runtime.clone();
            let home = self.opts.home.clone();
            let in_flight = self.in_flight.clone();
            tokio::task::spawn_blocking(move || {
                if let Some(rid) = &t.runtime_id {
                    let _ = runtime.stop(rid);
                    let _ = runtime.remove(rid);
                }
                cleanup_scratch(&home, &t.id);
                t.phase = TaskPhase::Stopped;
                if t.reason.is_none() {
                    t.reason = Some("stopped".to_owned());
                }
                let r = state.transaction(|tx| {
                    tx.task_event(&t, "task-stopped", &format!("task {} stopped", t.id))
                });
                if let Err(e) = r {
                    tracing::error!(task = %t.id, error = %e, "recording a stopped task failed");
                }
                if let Ok(mut s) = in_flight.lock() {
                    s.remove(&t.id);
                }
            });
        }
        Ok(())
    }

    fn write_proxy_config(&mut self, mut config: Config) -> Result<(), ControllerError> {
        config.generation = self.generation;
        if self.written.as_ref() == Some(&config) {
            return Ok(());
        }
        self.generation += 1;
        config.generation = self.generation;
        if let Some(dir) = self.opts.proxy_config.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| ControllerError::Setup(format!("{}: {e}", dir.display())))?;
        }
        hoist_proxy::watch::write_config(&self.opts.proxy_config, &config).map_err(|e| {
            ControllerError::Setup(format!("{}: {e}", self.opts.proxy_config.display()))
        })?;
        tracing::debug!(generation = self.generation, "proxy config written");
        self.written = Some(config);
        Ok(())
    }
}

fn read_written(path: &Path) -> (u64, Option<Config>) {
    match hoist_proxy::watch::read_config(path).ok().flatten() {
        Some(c) => (c.generation, Some(c)),
        None => (0, None),
    }
}

fn scratch_dir(home: &Path, task: &str) -> PathBuf {
    deploy_dir(home).join("scratch").join(task)
}

fn cleanup_scratch(home: &Path, task: &str) {
    let dir = scratch_dir(home, task);
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a task's scratch dir");
        }
    }
}

fn lock_daemon(dir: &Path) -> Result<std::fs::File, ControllerError> {
    use std::io::{Seek, Write};
    let path = dir.join("daemon.lock");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| ControllerError::Setup(format!("{}: {e}", path.display())))?;
    if f.try_lock().is_err() {
        let pid = std::fs::read_to_string(&path).unwrap_or_default();
        return Err(ControllerError::Running {
            pid: pid.trim().to_owned(),
            dir: dir.to_owned(),
        });
    }
    let _ = f.set_len(0);
    let _ = f.rewind();
    let _ = writeln!(f, "{}", std::process::id());
    Ok(f)
}

/// Whether a controller holds the home's lock now.
pub fn daemon_running(home: &Path) -> bool {
    let Ok(f) = std::fs::File::open(deploy_dir(home).join("daemon.lock")) else {
        return false;
    };
    matches!(f.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock))
}
