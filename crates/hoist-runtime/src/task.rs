//! Detached tasks: long-running containers (a service's replicas) that outlive the
//! process that started them, as ECS tasks outlive a restart of the ECS agent.
//!
//! [`Runtime::start`] writes the request, runs `hoist __container --spawn <dir>`,
//! which starts the real helper in its own process group and exits, so the helper
//! is adopted by init and keeps supervising the container (and writing its log)
//! whatever happens to the caller. The state dir then tells everything:
//! `helper.pid` (the helper, with its start time), `started.json` (the container
//! runs), `log/` (Docker `json-file` logs, see [`crate::logs`]), `result.json` (it
//! ended). A restarted controller finds its tasks again with [`Runtime::tasks`].
//!
//! [`Runtime::stop`] sends the helper `SIGTERM`; the helper passes `SIGTERM` to the
//! container's init, waits up to the task's stop timeout, then sends `SIGKILL`, as
//! `docker stop` and ECS's `stopTimeout` do.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;
use serde::{Deserialize, Serialize};

use crate::health::{read_health, Health, Probe, HEALTH};
use crate::helper::{
    self, HelperResult, Request, TaskRequest, HELPER_PID, LOG_DIR, REQUEST, RESULT, STARTED,
};
use crate::run::clean_dir;
use crate::{ContainerSpec, ExitStatus, Network, Runtime, RuntimeError};

/// How a detached task runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskOptions {
    /// Between `SIGTERM` and `SIGKILL` when the task is stopped (ECS's
    /// `stopTimeout`; default 30 s).
    pub stop_timeout: Duration,
    /// Rotate the log past this size (default 10 MiB).
    pub log_max_bytes: u64,
    /// Log files kept, the current one included (default 3).
    pub log_max_files: u32,
    /// A Docker-style health probe run beside the task by its helper (see
    /// module `health`); its verdict is [`TaskInfo::health`]. Default none.
    #[serde(default)]
    pub health: Option<Probe>,
}

impl Default for TaskOptions {
    fn default() -> Self {
        TaskOptions {
            stop_timeout: Duration::from_secs(30),
            log_max_bytes: 10 << 20,
            log_max_files: 3,
            health: None,
        }
    }
}

/// Where a task is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    /// The helper runs and is setting the container up.
    Starting,
    /// The container runs.
    Running,
    /// The container ended with this status.
    Exited(ExitStatus),
    /// The container could not be set up or run.
    Failed(String),
    /// The helper is gone without a result (killed); its container may still
    /// exist until [`Runtime::remove`] cleans it up.
    Lost,
}

impl TaskState {
    /// Starting or running: the task holds resources and must be stopped before
    /// it is removed.
    pub fn is_live(&self) -> bool {
        matches!(self, TaskState::Starting | TaskState::Running)
    }
}

/// What is known of a detached task.
#[derive(Debug, Clone)]
pub struct TaskInfo {
    /// Its id (`hoist-<16 hex>`).
    pub id: String,
    /// Its state now.
    pub state: TaskState,
    /// The helper's pid while it runs.
    pub helper_pid: Option<i32>,
    /// The task's own network namespace while it runs (`Network::None` and
    /// `Network::Outbound`), for
    /// connecting to it from outside (`/proc/<pid>/ns/net`).
    pub netns: Option<PathBuf>,
    /// Where its logs are ([`crate::logs::read_logs`]).
    pub log_dir: PathBuf,
    /// When the container started (RFC 3339), once it has.
    pub started_at: Option<String>,
    /// The task's health file ([`Runtime::health_file`]) when it has a probe.
    pub health_file: Option<PathBuf>,
    /// Its last recorded health, once the probe runs (the last verdict is kept
    /// after the task ended).
    pub health: Option<Health>,
}

/// Whether the state dir `dir` belongs to a detached task.
pub(crate) fn is_task(dir: &Path) -> bool {
    task_request(dir).is_some()
}

/// The request in `dir` when it is a detached task's.
fn task_request(dir: &Path) -> Option<Request> {
    helper::read_request(dir).ok().filter(|r| r.task.is_some())
}

/// Whether the task of `req` has a health probe.
pub(crate) fn probed(req: &Request) -> bool {
    req.task
        .as_ref()
        .is_some_and(|t| t.options.health.is_some())
}

/// How long `start` waits for the helper to report the container running.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the helper may take to appear after `--spawn` returned.
const APPEAR_TIMEOUT: Duration = Duration::from_secs(10);

impl Runtime {
    /// Start `spec` as a detached task and return once its container runs (or
    /// failed to start: `RuntimeError::Setup`, the task's state dir removed).
    pub fn start(
        &self,
        spec: &ContainerSpec,
        options: &TaskOptions,
    ) -> Result<TaskInfo, RuntimeError> {
        let (id, dir, pasta) = self.new_container(spec)?;
        let config = self.config();
        let request = Request {
            id: id.clone(),
            parent_pid: i32::try_from(std::process::id()).unwrap_or(0),
            backend: config.backend.clone(),
            spec: spec.clone(),
            task: Some(TaskRequest {
                options: options.clone(),
                helper: config.helper.clone(),
            }),
            pasta,
        };
        let req_path = dir.join(REQUEST);
        helper::write_atomic(&req_path, &request)
            .map_err(|m| RuntimeError::io(&req_path, std::io::Error::other(m)))?;

        let helper = &config.helper;
        let status = Command::new(&helper.program)
            .args(&helper.args)
            .arg("--spawn")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|source| RuntimeError::SpawnHelper {
                program: helper.program.clone(),
                source,
            })?;
        if !status.success() {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(RuntimeError::HelperDied {
                id,
                status: status.to_string(),
            });
        }

        let began = Instant::now();
        loop {
            let info = self.task_in(&id, &dir, spec.network, options.health.is_some());
            match &info.state {
                TaskState::Running => return Ok(info),
                TaskState::Failed(message) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    return Err(RuntimeError::Setup {
                        message: message.clone(),
                    });
                }
                TaskState::Exited(_) => return Ok(info),
                TaskState::Lost if began.elapsed() > APPEAR_TIMEOUT => {
                    let cleaned = clean_dir(&dir);
                    let _ = std::fs::remove_dir_all(&dir);
                    cleaned.map_err(|message| RuntimeError::Cleanup {
                        id: id.clone(),
                        message,
                    })?;
                    return Err(RuntimeError::HelperDied {
                        id,
                        status: "gone before the container started".to_owned(),
                    });
                }
                _ if began.elapsed() > START_TIMEOUT => {
                    let _ = self.stop(&id);
                    return Err(RuntimeError::Setup {
                        message: format!(
                            "task {id} did not start within {}s",
                            START_TIMEOUT.as_secs()
                        ),
                    });
                }
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    /// Every detached task under the state dir, in id order.
    pub fn tasks(&self) -> Result<Vec<TaskInfo>, RuntimeError> {
        let root = &self.config().state_dir;
        let entries = std::fs::read_dir(root).map_err(|e| RuntimeError::io(root, e))?;
        let mut out: Vec<TaskInfo> = entries
            .flatten()
            .filter_map(|e| {
                let id = e.file_name().to_str()?.to_owned();
                let dir = e.path();
                let req = task_request(&dir).filter(|_| id.starts_with("hoist-"))?;
                Some(self.task_in(&id, &dir, req.spec.network, probed(&req)))
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// One task, `None` if there is no such task.
    pub fn task(&self, id: &str) -> Option<TaskInfo> {
        let (dir, req) = self.task_dir(id)?;
        Some(self.task_in(id, &dir, req.spec.network, probed(&req)))
    }

    /// Stop a task: `SIGTERM` to its container, `SIGKILL` after its stop timeout.
    /// Returns once it has ended. Stopping an ended task does nothing.
    pub fn stop(&self, id: &str) -> Result<TaskInfo, RuntimeError> {
        let (dir, req) = self
            .task_dir(id)
            .ok_or_else(|| RuntimeError::InvalidSpec(format!("no task {id}")))?;
        let network = req.spec.network;
        let probed = probed(&req);
        let options = req.task.map(|t| t.options).unwrap_or_default();
        let Some(pid) = helper::live_pid(&dir.join(HELPER_PID)) else {
            return Ok(self.task_in(id, &dir, network, probed));
        };
        let _ = rustix::process::kill_process(pid, Signal::TERM);
        // The helper kills the container after the stop timeout; past that and a
        // margin, it is killed itself and its container cleaned up from here.
        let deadline = Instant::now() + options.stop_timeout + Duration::from_secs(10);
        while helper::live_pid(&dir.join(HELPER_PID)).is_some() {
            if Instant::now() >= deadline {
                let _ = rustix::process::kill_process(pid, Signal::KILL);
                clean_dir(&dir).map_err(|message| RuntimeError::Cleanup {
                    id: id.to_owned(),
                    message,
                })?;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(self.task_in(id, &dir, network, probed))
    }

    /// Delete an ended task's state and logs (cleaning up the container of a
    /// lost one). A live task must be stopped first.
    pub fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let Some((dir, req)) = self.task_dir(id) else {
            return Ok(());
        };
        let info = self.task_in(id, &dir, req.spec.network, probed(&req));
        if info.state.is_live() {
            return Err(RuntimeError::InvalidSpec(format!(
                "task {id} is still running; stop it first"
            )));
        }
        if info.state == TaskState::Lost {
            clean_dir(&dir).map_err(|message| RuntimeError::Cleanup {
                id: id.to_owned(),
                message,
            })?;
        }
        std::fs::remove_dir_all(&dir).map_err(|e| RuntimeError::io(&dir, e))
    }

    /// Where task `id`'s helper writes its health (Docker's `State.Health` as
    /// JSON, see [`Health`]) when the task has a probe. For readers in other
    /// processes, such as the proxy; the file is replaced atomically.
    pub fn health_file(&self, id: &str) -> PathBuf {
        self.config().state_dir.join(id).join(HEALTH)
    }

    pub(crate) fn task_dir(&self, id: &str) -> Option<(PathBuf, Request)> {
        let valid = valid_task_id(id);
        let dir = self.config().state_dir.join(id);
        let req = task_request(&dir).filter(|_| valid)?;
        Some((dir, req))
    }

    pub(crate) fn task_in(&self, id: &str, dir: &Path, network: Network, probed: bool) -> TaskInfo {
        let started: Option<helper::Started> = std::fs::read(dir.join(STARTED))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let result: Option<HelperResult> = std::fs::read(dir.join(RESULT))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let helper_pid = helper::live_pid(&dir.join(HELPER_PID));
        let state = match (result, helper_pid, &started) {
            (
                Some(HelperResult {
                    error: Some(message),
                    ..
                }),
                _,
                _,
            ) => TaskState::Failed(message),
            (
                Some(HelperResult {
                    status: Some(status),
                    ..
                }),
                _,
                _,
            ) => TaskState::Exited(status),
            (Some(_), _, _) => TaskState::Failed("the helper reported nothing".to_owned()),
            (None, Some(_), Some(_)) => TaskState::Running,
            (None, Some(_), None) => TaskState::Starting,
            (None, None, _) => TaskState::Lost,
        };
        let netns = match (&state, helper_pid, network) {
            (TaskState::Running, Some(pid), Network::None | Network::Outbound) => Some(
                PathBuf::from(format!("/proc/{}/ns/net", pid.as_raw_nonzero())),
            ),
            _ => None,
        };
        TaskInfo {
            id: id.to_owned(),
            state,
            helper_pid: helper_pid.map(|p| p.as_raw_nonzero().get()),
            netns,
            log_dir: dir.join(LOG_DIR),
            started_at: started.map(|s| s.at),
            health_file: probed.then(|| dir.join(HEALTH)),
            health: read_health(&dir.join(HEALTH)),
        }
    }
}

/// `hoist-` and 16 hex digits: what [`Runtime::start`] names tasks.
fn valid_task_id(id: &str) -> bool {
    id.strip_prefix("hoist-")
        .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The log directory of task `id` of the runtime over `state_dir` (read with
/// [`crate::logs::read_logs`]), for readers in other processes such as `hoist
/// server`'s dashboard; `None` for a name no task can have.
pub fn task_log_dir(state_dir: &Path, id: &str) -> Option<PathBuf> {
    valid_task_id(id).then(|| state_dir.join(id).join(LOG_DIR))
}
