//! The controller's state in SQLite (`<home>/deploy/state.db`, WAL mode): services,
//! deployments, their events and tasks. Every change is one transaction, committed
//! before the action it records is taken or acknowledged, so a killed controller or
//! CLI loses nothing it acknowledged and a restarted one resumes from the record.
//!
//! The CLI and the daemon share the file: the CLI writes desired state (a new
//! deployment, a rollback request) and reads progress; the daemon writes everything
//! else. SQLite's locking serialises them (busy timeout 10 s).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::spec::ServiceSpec;

/// What went wrong with the state database.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// SQLite failed.
    #[error("{path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A recorded spec no longer parses (written by a different hoist).
    #[error("{path}: deployment {id}: recorded spec is unreadable: {source}")]
    Spec {
        /// The database file.
        path: PathBuf,
        /// The deployment.
        id: i64,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The named service does not exist.
    #[error("no service named {0:?}")]
    NoService(String),
    /// A request that does not fit the current state.
    #[error("{0}")]
    Conflict(String),
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Where a deployment is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeploymentState {
    /// Being rolled out.
    InProgress,
    /// Finished: it is (or was) the stable version.
    Succeeded,
    /// Failed and rolled back (by the circuit breaker, the error-rate check or a
    /// rollback request).
    Failed,
    /// Replaced by a newer deployment before it finished.
    Superseded,
}

impl DeploymentState {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentState::InProgress => "in_progress",
            DeploymentState::Succeeded => "succeeded",
            DeploymentState::Failed => "failed",
            DeploymentState::Superseded => "superseded",
        }
    }

    fn parse(s: &str) -> DeploymentState {
        match s {
            "succeeded" => DeploymentState::Succeeded,
            "failed" => DeploymentState::Failed,
            "superseded" => DeploymentState::Superseded,
            _ => DeploymentState::InProgress,
        }
    }

    /// Whether the deployment is over.
    pub fn is_final(self) -> bool {
        self != DeploymentState::InProgress
    }
}

/// One deployment of a service.
#[derive(Clone, Debug)]
pub struct Deployment {
    /// Its id (increasing).
    pub id: i64,
    /// The service.
    pub service: String,
    /// The spec it rolls out.
    pub spec: ServiceSpec,
    /// The image, pinned (`name@sha256:...` or the store's digest).
    pub image: String,
    /// The manifest digest.
    pub digest: String,
    /// The version key: spec and digest hashed; tasks of one version are
    /// interchangeable and share a target group.
    pub version: String,
    /// `deploy` or `rollback`.
    pub kind: String,
    /// Where it is.
    pub state: DeploymentState,
    /// The traffic step reached (traffic-shifting strategies).
    pub step: u32,
    /// When the current step began (ms since the epoch), once traffic shifted.
    pub step_since: Option<i64>,
    /// New tasks that failed to start or failed health checks.
    pub failures: u32,
    /// Why it ended, for failed and superseded deployments.
    pub reason: Option<String>,
    /// When it was created (ms).
    pub created: i64,
    /// When it ended (ms).
    pub finished: Option<i64>,
}

/// A service's record.
#[derive(Clone, Debug)]
pub struct Service {
    /// Its name.
    pub name: String,
    /// The deployment it converges to.
    pub active: Option<i64>,
    /// The last deployment that succeeded.
    pub stable: Option<i64>,
    /// A rollback was asked for (`hoist rollback`), not yet acted on.
    pub rollback_requested: Option<String>,
    /// `hoist service rm`: stop everything, then forget the service.
    pub removing: bool,
}

/// A task's life as the controller sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskPhase {
    /// Recorded; the runtime is starting it.
    Pending,
    /// Running and registered with the load balancer.
    Running,
    /// Deregistered; waiting for the proxy to drain it.
    Draining,
    /// Being stopped (SIGTERM, then SIGKILL after the stop timeout).
    Stopping,
    /// Gone, normally.
    Stopped,
    /// Gone, because it failed (did not start, exited, turned unhealthy).
    Failed,
}

impl TaskPhase {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskPhase::Pending => "pending",
            TaskPhase::Running => "running",
            TaskPhase::Draining => "draining",
            TaskPhase::Stopping => "stopping",
            TaskPhase::Stopped => "stopped",
            TaskPhase::Failed => "failed",
        }
    }

    fn parse(s: &str) -> TaskPhase {
        match s {
            "running" => TaskPhase::Running,
            "draining" => TaskPhase::Draining,
            "stopping" => TaskPhase::Stopping,
            "stopped" => TaskPhase::Stopped,
            "failed" => TaskPhase::Failed,
            _ => TaskPhase::Pending,
        }
    }

    /// Holds a container (or may).
    pub fn is_live(self) -> bool {
        !matches!(self, TaskPhase::Stopped | TaskPhase::Failed)
    }
}

/// One task.
#[derive(Clone, Debug)]
pub struct Task {
    /// The controller's id (`t-<12 hex>`).
    pub id: String,
    /// The runtime's task id, once started.
    pub runtime_id: Option<String>,
    /// The service.
    pub service: String,
    /// The version it runs.
    pub version: String,
    /// The deployment that started it.
    pub deployment: i64,
    /// Its phase.
    pub phase: TaskPhase,
    /// Its network namespace (`/proc/PID/ns/net`) while running.
    pub netns: Option<String>,
    /// The container port.
    pub port: u16,
    /// It passed its health check at least once.
    pub healthy_once: bool,
    /// Proxy config generation that deregistered it (draining).
    pub drain_generation: Option<u64>,
    /// Why it stopped or failed.
    pub reason: Option<String>,
    /// When it was recorded (ms).
    pub created: i64,
    /// Last change (ms).
    pub updated: i64,
}

/// One recorded event.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Event {
    /// Increasing id.
    pub id: i64,
    /// The service.
    pub service: String,
    /// The deployment, when the event belongs to one.
    pub deployment: Option<i64>,
    /// When (ms).
    pub time: i64,
    /// A short kind (`started`, `healthy`, `shifted`, `rollback`...).
    pub kind: String,
    /// What happened.
    pub message: String,
}

/// The state database.
pub struct State {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").field("path", &self.path).finish()
    }
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS services (
    name TEXT PRIMARY KEY,
    active INTEGER,
    stable INTEGER,
    rollback_requested TEXT,
    removing INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS deployments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT NOT NULL,
    spec TEXT NOT NULL,
    image TEXT NOT NULL,
    digest TEXT NOT NULL,
    version TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    step INTEGER NOT NULL DEFAULT 0,
    step_since INTEGER,
    failures INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    created INTEGER NOT NULL,
    finished INTEGER
);
CREATE INDEX IF NOT EXISTS deployments_service ON deployments(service, id);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT NOT NULL,
    deployment INTEGER,
    time INTEGER NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_service ON events(service, id);
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    runtime_id TEXT,
    service TEXT NOT NULL,
    version TEXT NOT NULL,
    deployment INTEGER NOT NULL,
    phase TEXT NOT NULL,
    netns TEXT,
    port INTEGER NOT NULL,
    healthy_once INTEGER NOT NULL DEFAULT 0,
    drain_generation INTEGER,
    reason TEXT,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_service ON tasks(service, phase);
"#;

const SERVICE_COLS: &str = "name, active, stable, rollback_requested, removing";
const DEPLOYMENT_COLS: &str = "id, service, spec, image, digest, version, kind, state, step, step_since, failures, reason, created, finished";
const TASK_COLS: &str = "id, runtime_id, service, version, deployment, phase, netns, port, healthy_once, drain_generation, reason, created, updated";

impl State {
    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<State, StateError> {
        let err = |source| StateError::Sqlite {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            // Private: task state under it holds secrets in the tasks' environment.
            std::fs::create_dir_all(dir)
                .and_then(|()| {
                    std::fs::set_permissions(
                        dir,
                        std::os::unix::fs::PermissionsExt::from_mode(0o700),
                    )
                })
                .map_err(|e| err(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?;
        }
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(State {
            path: path.to_owned(),
            conn: Mutex::new(conn),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sql<T>(&self, r: rusqlite::Result<T>) -> Result<T, StateError> {
        r.map_err(|source| StateError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }

    /// Runs `f` in one immediate transaction: all of it commits or none of it.
    pub fn transaction<T>(
        &self,
        f: impl FnOnce(&Tx<'_>) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|source| StateError::Sqlite {
                path: self.path.clone(),
                source,
            })?;
        let out = f(&Tx {
            tx: &tx,
            path: &self.path,
        })?;
        self.sql(tx.commit())?;
        Ok(out)
    }

    /// Records a new deployment of `spec` (pinned to `image`/`digest`) and makes it
    /// the service's active one, superseding one in progress. Returns its id.
    pub fn submit(
        &self,
        spec: &ServiceSpec,
        image: &str,
        digest: &str,
        kind: &str,
    ) -> Result<i64, StateError> {
        self.transaction(|tx| tx.submit(spec, image, digest, kind))
    }

    /// All services, by name.
    pub fn services(&self) -> Result<Vec<Service>, StateError> {
        let conn = self.lock();
        let mut st = self.sql(conn.prepare(&format!(
            "SELECT {SERVICE_COLS} FROM services ORDER BY name"
        )))?;
        let rows = self.sql(st.query_map([], service_row))?;
        self.sql(rows.collect())
    }

    /// One service.
    pub fn service(&self, name: &str) -> Result<Option<Service>, StateError> {
        self.sql(service_by_name(&self.lock(), name))
    }

    /// One deployment.
    pub fn deployment(&self, id: i64) -> Result<Option<Deployment>, StateError> {
        let raw = self.sql(deployment_by_id(&self.lock(), id))?;
        raw.map(|r| r.parse(&self.path)).transpose()
    }

    /// A service's deployments, newest first.
    pub fn deployments(&self, service: &str, limit: u32) -> Result<Vec<Deployment>, StateError> {
        let raws: Vec<RawDeployment> = {
            let conn = self.lock();
            let mut st = self.sql(conn.prepare(&format!(
                "SELECT {DEPLOYMENT_COLS} FROM deployments WHERE service = ?1 ORDER BY id DESC LIMIT ?2"
            )))?;
            let rows = self.sql(st.query_map(params![service, limit], raw_deployment))?;
            self.sql(rows.collect())?
        };
        raws.into_iter().map(|r| r.parse(&self.path)).collect()
    }

    /// A service's tasks; only live ones unless `all`.
    pub fn tasks(&self, service: &str, all: bool) -> Result<Vec<Task>, StateError> {
        let conn = self.lock();
        let filter = if all {
            ""
        } else {
            " AND phase NOT IN ('stopped', 'failed')"
        };
        let mut st = self.sql(conn.prepare(&format!(
            "SELECT {TASK_COLS} FROM tasks WHERE service = ?1{filter} ORDER BY created, id"
        )))?;
        let rows = self.sql(st.query_map([service], task_row))?;
        self.sql(rows.collect())
    }

    /// Every live task of every service.
    pub fn live_tasks(&self) -> Result<Vec<Task>, StateError> {
        let conn = self.lock();
        let mut st = self.sql(conn.prepare(&format!(
            "SELECT {TASK_COLS} FROM tasks WHERE phase NOT IN ('stopped', 'failed') ORDER BY created, id"
        )))?;
        let rows = self.sql(st.query_map([], task_row))?;
        self.sql(rows.collect())
    }

    /// Events of a service after event id `after`, oldest first.
    pub fn events(&self, service: &str, after: i64) -> Result<Vec<Event>, StateError> {
        self.query_events(
            "SELECT id, service, deployment, time, kind, message FROM events WHERE service = ?1 AND id > ?2 ORDER BY id",
            params![service, after],
        )
    }

    /// The service's newest `limit` events, oldest first.
    pub fn latest_events(&self, service: &str, limit: u32) -> Result<Vec<Event>, StateError> {
        let mut events = self.query_events(
            "SELECT id, service, deployment, time, kind, message FROM events WHERE service = ?1 ORDER BY id DESC LIMIT ?2",
            params![service, limit],
        )?;
        events.reverse();
        Ok(events)
    }

    fn query_events(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<Event>, StateError> {
        let conn = self.lock();
        let mut st = self.sql(conn.prepare(sql))?;
        let rows = self.sql(st.query_map(params, |r| {
            Ok(Event {
                id: r.get(0)?,
                service: r.get(1)?,
                deployment: r.get(2)?,
                time: r.get(3)?,
                kind: r.get(4)?,
                message: r.get(5)?,
            })
        }))?;
        self.sql(rows.collect())
    }

    /// Image digests services still need, with the services needing each: those
    /// of every service's active and last good deployment and of its live tasks
    /// (`hoist image rm` refuses to delete them).
    pub fn digests_in_use(&self) -> Result<BTreeMap<String, BTreeSet<String>>, StateError> {
        let conn = self.lock();
        let mut st = self.sql(conn.prepare(
            "SELECT d.digest, d.service FROM deployments d JOIN services s ON s.name = d.service \
             WHERE d.id = s.active OR d.id = s.stable \
             OR d.id IN (SELECT deployment FROM tasks WHERE phase NOT IN ('stopped', 'failed'))",
        ))?;
        let rows =
            self.sql(st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))))?;
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for row in rows {
            let (digest, service) = self.sql(row)?;
            out.entry(digest).or_default().insert(service);
        }
        Ok(out)
    }

    /// Asks the daemon to roll `service` back at once (`hoist rollback`).
    pub fn request_rollback(&self, service: &str, reason: &str) -> Result<(), StateError> {
        self.transaction(|tx| {
            let svc = tx.service(service)?;
            if svc.stable.is_none() {
                return Err(StateError::Conflict(format!(
                    "service {service:?} has no earlier successful deployment to roll back to"
                )));
            }
            tx.exec(
                "UPDATE services SET rollback_requested = ?2, updated = ?3 WHERE name = ?1",
                params![service, reason, now_ms()],
            )?;
            tx.event(service, svc.active, "rollback-requested", reason)
        })
    }

    /// Sets the desired task count of `service` without a new version (`hoist
    /// scale`, `hoist stop`): on its active deployment, and on its last good one so
    /// that a rollback keeps it. Returns the count before.
    pub fn scale(&self, service: &str, count: u32, why: &str) -> Result<u32, StateError> {
        self.transaction(|tx| {
            let svc = tx.service(service)?;
            let active = svc.active.ok_or_else(|| {
                StateError::Conflict(format!("service {service:?} has no deployment to scale"))
            })?;
            if svc.removing {
                return Err(StateError::Conflict(format!(
                    "service {service:?} is being removed"
                )));
            }
            let before = tx.deployment(active)?.spec.count;
            let mut ids = vec![active];
            ids.extend(svc.stable.filter(|s| *s != active));
            for id in ids {
                let mut spec = tx.deployment(id)?.spec;
                spec.count = count;
                spec.validate()
                    .map_err(|e| StateError::Conflict(format!("{service}: count {count}: {e}")))?;
                let json = serde_json::to_string(&spec).map_err(|source| StateError::Spec {
                    path: tx.path.to_owned(),
                    id,
                    source,
                })?;
                tx.exec(
                    "UPDATE deployments SET spec = ?2 WHERE id = ?1",
                    params![id, json],
                )?;
            }
            tx.exec(
                "UPDATE services SET updated = ?2 WHERE name = ?1",
                params![service, now_ms()],
            )?;
            tx.event(
                service,
                Some(active),
                "scaled",
                &format!("desired count {before} -> {count} ({why})"),
            )?;
            Ok(before)
        })
    }

    /// Asks the daemon to stop every task of `service` and forget it.
    pub fn request_removal(&self, service: &str) -> Result<(), StateError> {
        self.transaction(|tx| {
            let svc = tx.service(service)?;
            tx.exec(
                "UPDATE services SET removing = 1, updated = ?2 WHERE name = ?1",
                params![service, now_ms()],
            )?;
            tx.event(service, svc.active, "removing", "service removal requested")
        })
    }
}

/// An open transaction (see [`State::transaction`]).
pub struct Tx<'a> {
    tx: &'a Transaction<'a>,
    path: &'a Path,
}

impl Tx<'_> {
    fn sql<T>(&self, r: rusqlite::Result<T>) -> Result<T, StateError> {
        r.map_err(|source| StateError::Sqlite {
            path: self.path.to_owned(),
            source,
        })
    }

    fn exec(&self, sql: &str, p: impl rusqlite::Params) -> Result<usize, StateError> {
        self.sql(self.tx.execute(sql, p))
    }

    /// The service, or [`StateError::NoService`].
    pub fn service(&self, name: &str) -> Result<Service, StateError> {
        self.sql(service_by_name(self.tx, name))?
            .ok_or_else(|| StateError::NoService(name.to_owned()))
    }

    /// One deployment.
    pub fn deployment(&self, id: i64) -> Result<Deployment, StateError> {
        let raw = self
            .sql(deployment_by_id(self.tx, id))?
            .ok_or_else(|| StateError::Sqlite {
                path: self.path.to_owned(),
                source: rusqlite::Error::QueryReturnedNoRows,
            })?;
        raw.parse(self.path)
    }

    /// See [`State::submit`].
    pub fn submit(
        &self,
        spec: &ServiceSpec,
        image: &str,
        digest: &str,
        kind: &str,
    ) -> Result<i64, StateError> {
        let name = spec.name.as_str();
        let now = now_ms();
        let json = serde_json::to_string(spec).map_err(|source| StateError::Spec {
            path: self.path.to_owned(),
            id: 0,
            source,
        })?;
        let version = version_of(spec, digest);
        self.exec(
            "INSERT INTO services (name, created, updated) VALUES (?1, ?2, ?2) ON CONFLICT(name) DO UPDATE SET removing = 0, updated = ?2",
            params![name, now],
        )?;
        let svc = self.service(name)?;
        if let Some(prev) = svc.active {
            let d = self.deployment(prev)?;
            if d.state == DeploymentState::InProgress {
                self.finish(
                    prev,
                    DeploymentState::Superseded,
                    "a newer deployment started",
                )?;
            }
        }
        self.exec(
            "INSERT INTO deployments (service, spec, image, digest, version, kind, state, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'in_progress', ?7)",
            params![name, json, image, digest, version, kind, now],
        )?;
        let id = self.tx.last_insert_rowid();
        self.exec(
            "UPDATE services SET active = ?2, rollback_requested = NULL, updated = ?3 WHERE name = ?1",
            params![name, id, now],
        )?;
        self.event(
            name,
            Some(id),
            "created",
            &format!("{kind} of {image} ({})", strategy_name(spec)),
        )?;
        Ok(id)
    }

    /// Ends a deployment.
    pub fn finish(&self, id: i64, state: DeploymentState, reason: &str) -> Result<(), StateError> {
        let d = self.deployment(id)?;
        self.exec(
            "UPDATE deployments SET state = ?2, reason = ?3, finished = ?4 WHERE id = ?1",
            params![id, state.as_str(), reason, now_ms()],
        )?;
        if state == DeploymentState::Succeeded {
            self.exec(
                "UPDATE services SET stable = ?2, updated = ?3 WHERE name = ?1",
                params![d.service, id, now_ms()],
            )?;
        }
        self.event(&d.service, Some(id), state.as_str(), reason)
    }

    /// Moves a deployment to traffic step `step`, starting now.
    pub fn set_step(&self, id: i64, step: u32) -> Result<(), StateError> {
        self.exec(
            "UPDATE deployments SET step = ?2, step_since = ?3 WHERE id = ?1",
            params![id, step, now_ms()],
        )?;
        Ok(())
    }

    /// Counts one failed task against a deployment; returns the new count.
    pub fn add_failure(&self, id: i64) -> Result<u32, StateError> {
        self.exec(
            "UPDATE deployments SET failures = failures + 1 WHERE id = ?1",
            [id],
        )?;
        self.sql(self.tx.query_row(
            "SELECT failures FROM deployments WHERE id = ?1",
            [id],
            |r| r.get(0),
        ))
    }

    /// Clears a rollback request.
    pub fn clear_rollback_request(&self, service: &str) -> Result<(), StateError> {
        self.exec(
            "UPDATE services SET rollback_requested = NULL WHERE name = ?1",
            [service],
        )?;
        Ok(())
    }

    /// Forgets a service whose tasks are all gone (its history goes with it).
    pub fn delete_service(&self, service: &str) -> Result<(), StateError> {
        for table in ["tasks", "events", "deployments"] {
            self.exec(
                &format!("DELETE FROM {table} WHERE service = ?1"),
                [service],
            )?;
        }
        self.exec("DELETE FROM services WHERE name = ?1", [service])?;
        Ok(())
    }

    /// Records an event.
    pub fn event(
        &self,
        service: &str,
        deployment: Option<i64>,
        kind: &str,
        message: &str,
    ) -> Result<(), StateError> {
        tracing::info!(service, deployment, kind, "{message}");
        self.exec(
            "INSERT INTO events (service, deployment, time, kind, message) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![service, deployment, now_ms(), kind, message],
        )?;
        Ok(())
    }

    /// Records a new task (pending).
    pub fn insert_task(&self, task: &Task) -> Result<(), StateError> {
        self.exec(
            &format!("INSERT INTO tasks ({TASK_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"),
            params![
                task.id,
                task.runtime_id,
                task.service,
                task.version,
                task.deployment,
                task.phase.as_str(),
                task.netns,
                task.port,
                task.healthy_once,
                task.drain_generation.map(|g| g as i64),
                task.reason,
                task.created,
                task.updated
            ],
        )?;
        Ok(())
    }

    /// Updates a task and records an event about it, under its service and the
    /// deployment that started it.
    pub fn task_event(&self, task: &Task, kind: &str, message: &str) -> Result<(), StateError> {
        self.update_task(task)?;
        self.event(&task.service, Some(task.deployment), kind, message)
    }

    /// Updates a task's phase and what goes with it.
    pub fn update_task(&self, task: &Task) -> Result<(), StateError> {
        self.exec(
            "UPDATE tasks SET runtime_id = ?2, phase = ?3, netns = ?4, healthy_once = ?5, drain_generation = ?6, reason = ?7, updated = ?8 WHERE id = ?1",
            params![
                task.id,
                task.runtime_id,
                task.phase.as_str(),
                task.netns,
                task.healthy_once,
                task.drain_generation.map(|g| g as i64),
                task.reason,
                now_ms()
            ],
        )?;
        Ok(())
    }
}

/// The version key of a spec and an image digest: what makes two tasks
/// interchangeable. The desired count and the deployment settings (strategy,
/// circuit breaker, error rate) and the drain timeout do not change a task, so they are left out: a
/// deployment that only changes them keeps the running tasks.
pub fn version_of(spec: &ServiceSpec, digest: &str) -> String {
    use sha2::{Digest as _, Sha256};
    let mut task = spec.clone();
    task.count = 0;
    task.deployment = Default::default();
    task.drain_timeout = Duration::ZERO;
    // Serializing plain data into a string cannot fail.
    let json = serde_json::to_string(&task).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(json.as_bytes());
    h.update([0]);
    h.update(digest.as_bytes());
    hex::encode(&h.finalize()[..6])
}

fn strategy_name(spec: &ServiceSpec) -> String {
    use crate::spec::Strategy;
    match &spec.deployment.strategy {
        Strategy::Rolling {
            min_healthy_percent,
            max_percent,
        } => format!("rolling {}/{max_percent}", min_healthy_percent.0),
        Strategy::BlueGreen { bake, .. } => {
            format!("blue/green, bake {}", humantime::format_duration(*bake))
        }
        Strategy::Canary { percent, bake } => format!(
            "canary {}% then all, bake {}",
            percent.0,
            humantime::format_duration(*bake)
        ),
        Strategy::Linear { percent, interval } => format!(
            "linear {}% every {}",
            percent.0,
            humantime::format_duration(*interval)
        ),
    }
}

/// The service named `name`, read through a connection or a transaction.
fn service_by_name(conn: &Connection, name: &str) -> rusqlite::Result<Option<Service>> {
    conn.query_row(
        &format!("SELECT {SERVICE_COLS} FROM services WHERE name = ?1"),
        [name],
        service_row,
    )
    .optional()
}

/// Deployment `id`, not yet parsed, read through a connection or a transaction.
fn deployment_by_id(conn: &Connection, id: i64) -> rusqlite::Result<Option<RawDeployment>> {
    conn.query_row(
        &format!("SELECT {DEPLOYMENT_COLS} FROM deployments WHERE id = ?1"),
        [id],
        raw_deployment,
    )
    .optional()
}

fn service_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Service> {
    Ok(Service {
        name: r.get(0)?,
        active: r.get(1)?,
        stable: r.get(2)?,
        rollback_requested: r.get(3)?,
        removing: r.get::<_, i64>(4)? != 0,
    })
}

struct RawDeployment {
    id: i64,
    service: String,
    spec: String,
    image: String,
    digest: String,
    version: String,
    kind: String,
    state: String,
    step: u32,
    step_since: Option<i64>,
    failures: u32,
    reason: Option<String>,
    created: i64,
    finished: Option<i64>,
}

impl RawDeployment {
    fn parse(self, path: &Path) -> Result<Deployment, StateError> {
        let spec = serde_json::from_str(&self.spec).map_err(|source| StateError::Spec {
            path: path.to_owned(),
            id: self.id,
            source,
        })?;
        Ok(Deployment {
            id: self.id,
            service: self.service,
            spec,
            image: self.image,
            digest: self.digest,
            version: self.version,
            kind: self.kind,
            state: DeploymentState::parse(&self.state),
            step: self.step,
            step_since: self.step_since,
            failures: self.failures,
            reason: self.reason,
            created: self.created,
            finished: self.finished,
        })
    }
}

fn raw_deployment(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawDeployment> {
    Ok(RawDeployment {
        id: r.get(0)?,
        service: r.get(1)?,
        spec: r.get(2)?,
        image: r.get(3)?,
        digest: r.get(4)?,
        version: r.get(5)?,
        kind: r.get(6)?,
        state: r.get(7)?,
        step: r.get(8)?,
        step_since: r.get(9)?,
        failures: r.get(10)?,
        reason: r.get(11)?,
        created: r.get(12)?,
        finished: r.get(13)?,
    })
}

fn task_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Task> {
    Ok(Task {
        id: r.get(0)?,
        runtime_id: r.get(1)?,
        service: r.get(2)?,
        version: r.get(3)?,
        deployment: r.get(4)?,
        phase: TaskPhase::parse(&r.get::<_, String>(5)?),
        netns: r.get(6)?,
        port: r.get(7)?,
        healthy_once: r.get::<_, i64>(8)? != 0,
        drain_generation: r.get::<_, Option<i64>>(9)?.map(|g| g as u64),
        reason: r.get(10)?,
        created: r.get(11)?,
        updated: r.get(12)?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn spec(name: &str) -> ServiceSpec {
        ServiceSpec::parse(
            "t.yml",
            &format!("name: {name}\nimage: web:1\nlistener: {{addr: 127.0.0.1:8080}}\n"),
        )
        .unwrap()
    }

    #[test]
    fn latest_events_are_the_newest_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let st = State::open(&dir.path().join("state.db")).unwrap();
        st.transaction(|tx| {
            for i in 0..5 {
                tx.event("web", None, "note", &format!("e{i}"))?;
                tx.event("api", None, "note", &format!("other{i}"))?;
            }
            Ok(())
        })
        .unwrap();
        let messages =
            |events: Vec<Event>| -> Vec<String> { events.into_iter().map(|e| e.message).collect() };
        assert_eq!(messages(st.latest_events("web", 2).unwrap()), ["e3", "e4"]);
        assert_eq!(messages(st.latest_events("web", 50).unwrap()).len(), 5);
        assert_eq!(
            messages(st.events("web", 0).unwrap()),
            ["e0", "e1", "e2", "e3", "e4"]
        );
    }

    #[test]
    fn a_submitted_deployment_becomes_active_and_supersedes_the_one_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        let st = State::open(&dir.path().join("state.db")).unwrap();
        let a = st
            .submit(&spec("web"), "web@sha256:aa", "sha256:aa", "deploy")
            .unwrap();
        let b = st
            .submit(&spec("web"), "web@sha256:bb", "sha256:bb", "deploy")
            .unwrap();
        let svc = st.service("web").unwrap().unwrap();
        assert_eq!(svc.active, Some(b));
        assert_eq!(svc.stable, None);
        let da = st.deployment(a).unwrap().unwrap();
        assert_eq!(da.state, DeploymentState::Superseded);
        let db = st.deployment(b).unwrap().unwrap();
        assert_eq!(db.state, DeploymentState::InProgress);
        assert_ne!(da.version, db.version, "another digest is another version");
        assert_eq!(db.spec, spec("web"));
        st.transaction(|tx| tx.finish(b, DeploymentState::Succeeded, "done"))
            .unwrap();
        assert_eq!(st.service("web").unwrap().unwrap().stable, Some(b));
        let kinds: Vec<String> = st
            .events("web", 0)
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["created", "superseded", "created", "succeeded"]);
    }

    #[test]
    fn a_failed_transaction_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let st = State::open(&path).unwrap();
        let r: Result<(), StateError> = st.transaction(|tx| {
            tx.submit(&spec("web"), "web@sha256:aa", "sha256:aa", "deploy")?;
            Err(StateError::Conflict("boom".into()))
        });
        assert!(r.is_err());
        assert!(st.service("web").unwrap().is_none());
        assert!(st.events("web", 0).unwrap().is_empty());
        // And what committed survives reopening.
        st.submit(&spec("web"), "web@sha256:aa", "sha256:aa", "deploy")
            .unwrap();
        drop(st);
        let st = State::open(&path).unwrap();
        assert!(st.service("web").unwrap().is_some());
    }

    #[test]
    fn scaling_keeps_the_version_and_reaches_the_last_good_deployment() {
        let dir = tempfile::tempdir().unwrap();
        let st = State::open(&dir.path().join("state.db")).unwrap();
        assert!(matches!(
            st.scale("web", 3, "test").unwrap_err(),
            StateError::NoService(_)
        ));
        let a = st
            .submit(&spec("web"), "web@sha256:aa", "sha256:aa", "deploy")
            .unwrap();
        st.transaction(|tx| tx.finish(a, DeploymentState::Succeeded, "done"))
            .unwrap();
        let mut canary = spec("web");
        canary.count = 4;
        canary.deployment.strategy = "canary:10%:5s".parse().unwrap();
        let b = st
            .submit(&canary, "web@sha256:bb", "sha256:bb", "deploy")
            .unwrap();
        let before = st.deployment(b).unwrap().unwrap().version;

        assert_eq!(st.scale("web", 7, "test").unwrap(), 4);
        for id in [a, b] {
            assert_eq!(st.deployment(id).unwrap().unwrap().spec.count, 7);
        }
        assert_eq!(st.deployment(b).unwrap().unwrap().version, before);
        let last = st.events("web", 0).unwrap().pop().unwrap();
        assert_eq!(last.kind, "scaled");
        assert!(last.message.contains("4 -> 7"), "{}", last.message);

        // Count and strategy are not part of the version; the image and the rest are.
        let base = version_of(&spec("web"), "sha256:aa");
        assert_eq!(version_of(&canary, "sha256:aa"), base);
        let mut env = spec("web");
        env.env.insert("A".into(), "1".into());
        assert_ne!(version_of(&env, "sha256:aa"), base);
        assert_ne!(version_of(&spec("web"), "sha256:bb"), base);

        // A count the rolling bounds cannot work with is refused, and nothing changes.
        let mut tight = spec("web");
        tight.deployment.strategy = "rolling:100%:100%".parse().unwrap();
        st.submit(&tight, "web@sha256:aa", "sha256:aa", "deploy")
            .unwrap();
        assert!(st.scale("web", 0, "test").is_ok(), "0 always works");
        let e = st.scale("web", 2, "test").unwrap_err();
        assert!(e.to_string().contains("count 2"), "{e}");
    }

    #[test]
    fn rollback_needs_an_earlier_success() {
        let dir = tempfile::tempdir().unwrap();
        let st = State::open(&dir.path().join("state.db")).unwrap();
        st.submit(&spec("web"), "web@sha256:aa", "sha256:aa", "deploy")
            .unwrap();
        let e = st.request_rollback("web", "asked").unwrap_err();
        assert!(
            e.to_string().contains("no earlier successful deployment"),
            "{e}"
        );
        assert!(matches!(
            st.request_rollback("nope", "asked").unwrap_err(),
            StateError::NoService(_)
        ));
    }

    #[test]
    fn tasks_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let st = State::open(&dir.path().join("state.db")).unwrap();
        let d = st
            .submit(&spec("web"), "web@sha256:aa", "sha256:aa", "deploy")
            .unwrap();
        let mut t = Task {
            id: "t-1".into(),
            runtime_id: None,
            service: "web".into(),
            version: "v".into(),
            deployment: d,
            phase: TaskPhase::Pending,
            netns: None,
            port: 8080,
            healthy_once: false,
            drain_generation: None,
            reason: None,
            created: now_ms(),
            updated: now_ms(),
        };
        st.transaction(|tx| tx.insert_task(&t)).unwrap();
        t.phase = TaskPhase::Draining;
        t.drain_generation = Some(7);
        t.runtime_id = Some("hoist-1".into());
        st.transaction(|tx| tx.update_task(&t)).unwrap();
        let got = st.tasks("web", false).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].phase, TaskPhase::Draining);
        assert_eq!(got[0].drain_generation, Some(7));
        t.phase = TaskPhase::Stopped;
        st.transaction(|tx| tx.update_task(&t)).unwrap();
        assert!(st.tasks("web", false).unwrap().is_empty());
        assert_eq!(st.tasks("web", true).unwrap().len(), 1);
    }
}
