//! What the API and the dashboard both show of the deployment daemon's state, as
//! JSON: one reading, two presentations.

use std::path::Path;

use hoist_deploy::state::{Deployment, State};
use serde_json::{json, Value};

/// The deployment state under `home`.
pub(crate) fn deploy_state(home: &Path) -> Result<State, hoist_deploy::state::StateError> {
    State::open(&hoist_deploy::controller::state_path(home))
}

/// A deployment as the API shows it.
pub(crate) fn deployment_json(d: &Deployment) -> Value {
    json!({
        "id": d.id,
        "service": d.service,
        "image": d.image,
        "digest": d.digest,
        "kind": d.kind,
        "state": d.state.as_str(),
        "strategy": serde_json::to_value(&d.spec.deployment.strategy).unwrap_or_default(),
        "reason": d.reason,
        "created": d.created,
        "finished": d.finished,
    })
}

/// Every service of the deployment daemon (an environment is `<app>-<env>`), with
/// the deployment it converges to, the last one that succeeded, and its live tasks.
pub(crate) fn environments(home: &Path) -> Result<Value, hoist_deploy::state::StateError> {
    let state = deploy_state(home)?;
    let mut out = Vec::new();
    for s in state.services()? {
        let get = |id: Option<i64>| -> Result<Value, hoist_deploy::state::StateError> {
            Ok(match id {
                Some(id) => state
                    .deployment(id)?
                    .map_or(Value::Null, |d| deployment_json(&d)),
                None => Value::Null,
            })
        };
        let live = state
            .tasks(&s.name, false)?
            .iter()
            .filter(|t| t.phase.is_live())
            .count();
        out.push(json!({
            "service": s.name,
            "active": get(s.active)?,
            "stable": get(s.stable)?,
            "live_tasks": live,
        }));
    }
    Ok(Value::from(out))
}

/// One environment: its deployments (newest first), its tasks, and its latest
/// events (oldest first); `None` when there is no such service.
pub(crate) fn environment(
    home: &Path,
    service: &str,
) -> Result<Option<Value>, hoist_deploy::state::StateError> {
    let state = deploy_state(home)?;
    let Some(s) = state.service(service)? else {
        return Ok(None);
    };
    let deployments: Vec<Value> = state
        .deployments(service, 20)?
        .iter()
        .map(deployment_json)
        .collect();
    let tasks_dir = hoist_deploy::controller::tasks_dir(home);
    let tasks: Vec<Value> = state
        .tasks(service, false)?
        .iter()
        .map(|t| {
            // The task's last lines of output, as `hoist logs --tail 30` shows them.
            let logs = t
                .runtime_id
                .as_deref()
                .and_then(|rid| hoist_runtime::task_log_dir(&tasks_dir, rid))
                .and_then(|dir| hoist_runtime::logs::read_logs(&dir).ok())
                .unwrap_or_default();
            let tail: String = logs
                .iter()
                .skip(logs.len().saturating_sub(30))
                .map(|l| {
                    let mut line = l.log.clone();
                    if !line.ends_with('\n') {
                        line.push('\n');
                    }
                    line
                })
                .collect();
            json!({
                "id": t.id,
                "deployment": t.deployment,
                "phase": t.phase.as_str(),
                "live": t.phase.is_live(),
                "reason": t.reason,
                "logs": tail,
            })
        })
        .collect();
    let recent: Vec<Value> = state
        .latest_events(service, 50)?
        .iter()
        .map(|e| {
            json!({
                "deployment": e.deployment,
                "time": e.time,
                "kind": e.kind,
                "message": e.message,
            })
        })
        .collect();
    Ok(Some(json!({
        "service": s.name,
        "active": s.active,
        "stable": s.stable,
        "deployments": deployments,
        "tasks": tasks,
        "events": recent,
    })))
}
