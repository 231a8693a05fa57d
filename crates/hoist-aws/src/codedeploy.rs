//! Blue/green deployments of ECS services through AWS CodeDeploy: the AppSpec,
//! the deployment configuration for a traffic shift (CodeDeploy's predefined ones,
//! or a custom one created once), the deployment, and following it to the end;
//! stopped with rollback when it runs out of time.

use std::time::{Duration, Instant};

use aws_sdk_codedeploy::types::{
    AppSpecContent, AutoRollbackConfiguration, AutoRollbackEvent, ComputePlatform,
    RevisionLocation, RevisionLocationType, TimeBasedCanary, TimeBasedLinear, TrafficRoutingConfig,
    TrafficRoutingType,
};

use crate::ecs::{api, EcsError, EcsService, Verdict};
use crate::sdk;

/// The lifecycle hooks of an ECS AppSpec, in the order CodeDeploy runs them.
pub const HOOKS: [&str; 5] = [
    "BeforeInstall",
    "AfterInstall",
    "AfterAllowTestTraffic",
    "BeforeAllowTraffic",
    "AfterAllowTraffic",
];

/// How traffic moves to the new (green) task set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Traffic {
    /// All at once (`CodeDeployDefault.ECSAllAtOnce`).
    AllAtOnce,
    /// `percent` first, the rest after `interval`.
    Canary {
        /// The first step, 1 to 99.
        percent: u8,
        /// Bake time before the rest.
        interval: Duration,
    },
    /// `percent` more every `interval`.
    Linear {
        /// Each step, 1 to 99.
        percent: u8,
        /// Time between steps.
        interval: Duration,
    },
}

/// A deployment configuration to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigChoice {
    /// Its name.
    pub name: String,
    /// For a custom configuration (created when missing): the routing type, the
    /// percentage and the interval in whole minutes (CodeDeploy's unit).
    pub custom: Option<(TrafficRoutingType, i32, i32)>,
    /// When the interval had to be rounded up to whole minutes.
    pub rounded: Option<String>,
}

impl Traffic {
    /// The deployment configuration for this shift: a predefined one where one
    /// matches, else `hoist.ECSCanary<p>Percent<m>Minutes` (or `...Linear...Every...`).
    /// CodeDeploy counts intervals in whole minutes, so seconds round up.
    pub fn config(&self) -> ConfigChoice {
        let minutes = |d: &Duration| -> i32 {
            let m = d.as_secs().div_ceil(60).max(1);
            i32::try_from(m).unwrap_or(i32::MAX)
        };
        let rounded = |d: &Duration| {
            (!d.as_secs().is_multiple_of(60) || d.is_zero() || d.subsec_nanos() != 0).then(|| {
                format!(
                    "CodeDeploy shifts traffic in whole minutes: {}s becomes {} min",
                    d.as_secs(),
                    minutes(d)
                )
            })
        };
        let (kind, name, predefined, percent, m, interval) = match *self {
            Traffic::AllAtOnce => {
                return ConfigChoice {
                    name: "CodeDeployDefault.ECSAllAtOnce".into(),
                    custom: None,
                    rounded: None,
                }
            }
            Traffic::Canary { percent, interval } => {
                let m = minutes(&interval);
                let name = format!("ECSCanary{percent}Percent{m}Minutes");
                let predefined = percent == 10 && (m == 5 || m == 15);
                (
                    TrafficRoutingType::TimeBasedCanary,
                    name,
                    predefined,
                    percent,
                    m,
                    interval,
                )
            }
            Traffic::Linear { percent, interval } => {
                let m = minutes(&interval);
                let name = format!("ECSLinear{percent}PercentEvery{m}Minutes");
                let predefined = percent == 10 && (m == 1 || m == 3);
                (
                    TrafficRoutingType::TimeBasedLinear,
                    name,
                    predefined,
                    percent,
                    m,
                    interval,
                )
            }
        };
        ConfigChoice {
            name: if predefined {
                format!("CodeDeployDefault.{name}")
            } else {
                format!("hoist.{name}")
            },
            custom: (!predefined).then_some((kind, i32::from(percent), m)),
            rounded: rounded(&interval),
        }
    }
}

/// Where a service's blue/green deployments go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CodeDeployTarget {
    /// The CodeDeploy application.
    pub application: String,
    /// Its deployment group (for the ECS service).
    pub deployment_group: String,
    /// Lifecycle hooks: (hook from [`HOOKS`], Lambda function name or ARN).
    pub hooks: Vec<(String, String)>,
    /// The container port the load balancer sends to (default: the container's
    /// first port mapping).
    pub container_port: Option<u16>,
}

/// The ECS AppSpec (JSON, which CodeDeploy reads as it reads YAML).
pub fn app_spec(
    task_definition: &str,
    container: &str,
    port: u16,
    hooks: &[(String, String)],
) -> Result<String, EcsError> {
    let mut spec = serde_json::json!({
        "version": 0.0,
        "Resources": [{
            "TargetService": {
                "Type": "AWS::ECS::Service",
                "Properties": {
                    "TaskDefinition": task_definition,
                    "LoadBalancerInfo": {
                        "ContainerName": container,
                        "ContainerPort": port,
                    }
                }
            }
        }]
    });
    if !hooks.is_empty() {
        let mut ordered = Vec::new();
        for (hook, function) in hooks {
            let Some(at) = HOOKS.iter().position(|h| h == hook) else {
                return Err(EcsError::Invalid(format!(
                    "CodeDeploy hook {hook:?}: ECS deployments have {}",
                    HOOKS.join(", ")
                )));
            };
            ordered.push((at, serde_json::json!({ hook.as_str(): function })));
        }
        // In the order CodeDeploy runs them, whatever order they were given in.
        ordered.sort_by_key(|(at, _)| *at);
        spec["Hooks"] = ordered.into_iter().map(|(_, h)| h).collect();
    }
    serde_json::to_string_pretty(&spec).map_err(|e| EcsError::Invalid(e.to_string()))
}

/// What `GetDeployment` says, as far as following needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeploymentStatus {
    /// `Created`, `Queued`, `InProgress`, `Baking`, `Ready`, `Succeeded`, `Failed`
    /// or `Stopped`.
    pub status: String,
    /// `errorInformation.message`.
    pub error: Option<String>,
    /// `rollbackInfo.rollbackDeploymentId`: the deployment that rolled it back.
    pub rollback_deployment: Option<String>,
    /// `rollbackInfo.rollbackMessage`.
    pub rollback_message: Option<String>,
}

/// Where a CodeDeploy deployment of `ours` (replacing `previous`) stands.
pub fn judge(d: &DeploymentStatus, previous: &str) -> Verdict {
    let why = || {
        let mut parts: Vec<&str> = Vec::new();
        parts.extend(d.error.as_deref());
        parts.extend(d.rollback_message.as_deref());
        if parts.is_empty() {
            format!("CodeDeploy says {}", d.status)
        } else {
            parts.join("; ")
        }
    };
    match d.status.as_str() {
        "Succeeded" => Verdict::Steady,
        "Failed" | "Stopped" => {
            if d.rollback_deployment.is_some() {
                Verdict::RolledBack {
                    to: previous.to_owned(),
                    reason: why(),
                }
            } else {
                Verdict::Failed(why())
            }
        }
        other => Verdict::Waiting(format!("CodeDeploy: {other}")),
    }
}

async fn client(target: &EcsService) -> aws_sdk_codedeploy::Client {
    aws_sdk_codedeploy::Client::new(&sdk::config(target.region.clone()).await)
}

/// Creates the deployment configuration `choice` names when it is a custom one that
/// does not exist yet.
async fn ensure_config(
    cd: &aws_sdk_codedeploy::Client,
    target: &EcsService,
    choice: &ConfigChoice,
) -> Result<(), EcsError> {
    let Some((kind, percent, minutes)) = choice.custom.clone() else {
        return Ok(());
    };
    match cd
        .get_deployment_config()
        .deployment_config_name(&choice.name)
        .send()
        .await
    {
        Ok(_) => return Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_deployment_config_does_not_exist_exception()) => {}
        Err(e) => return Err(api("GetDeploymentConfig", target)(e)),
    }
    let mut routing = TrafficRoutingConfig::builder().r#type(kind.clone());
    routing = if kind == TrafficRoutingType::TimeBasedCanary {
        routing.time_based_canary(
            TimeBasedCanary::builder()
                .canary_percentage(percent)
                .canary_interval(minutes)
                .build(),
        )
    } else {
        routing.time_based_linear(
            TimeBasedLinear::builder()
                .linear_percentage(percent)
                .linear_interval(minutes)
                .build(),
        )
    };
    match cd
        .create_deployment_config()
        .deployment_config_name(&choice.name)
        .compute_platform(ComputePlatform::Ecs)
        .traffic_routing_config(routing.build())
        .send()
        .await
    {
        Ok(_) => Ok(()),
        // Someone made it meanwhile: same name, same meaning.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_deployment_config_already_exists_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(api("CreateDeploymentConfig", target)(e)),
    }
}

/// Creates a CodeDeploy deployment of `task_definition` for `target`'s deployment
/// group, rolling back automatically on failure; answers its ID.
pub(crate) async fn create(
    target: &EcsService,
    settings: &CodeDeployTarget,
    task_definition: &str,
    container: &str,
    port: u16,
    traffic: Option<Traffic>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<String, EcsError> {
    let cd = client(target).await;
    let content = app_spec(task_definition, container, port, &settings.hooks)?;
    let mut create = cd
        .create_deployment()
        .application_name(&settings.application)
        .deployment_group_name(&settings.deployment_group)
        .description(format!("hoist: {task_definition}"))
        .revision(
            RevisionLocation::builder()
                .revision_type(RevisionLocationType::AppSpecContent)
                .app_spec_content(AppSpecContent::builder().content(&content).build())
                .build(),
        )
        .auto_rollback_configuration(
            AutoRollbackConfiguration::builder()
                .enabled(true)
                .events(AutoRollbackEvent::DeploymentFailure)
                .events(AutoRollbackEvent::DeploymentStopOnRequest)
                .build(),
        );
    if let Some(traffic) = traffic {
        let choice = traffic.config();
        if let Some(note) = &choice.rounded {
            progress(note);
        }
        ensure_config(&cd, target, &choice).await?;
        create = create.deployment_config_name(&choice.name);
        progress(&format!("deployment configuration {}", choice.name));
    }
    let out = create
        .send()
        .await
        .map_err(api("CreateDeployment", target))?;
    let id = out
        .deployment_id
        .ok_or_else(|| EcsError::Invalid("CreateDeployment answered without an ID".into()))?;
    progress(&format!(
        "CodeDeploy deployment {id} ({}/{}) of {task_definition}",
        settings.application, settings.deployment_group
    ));
    Ok(id)
}

/// The task sets' traffic, as a line (`blue 90% 2/2, green 10% 2/2`), when CodeDeploy
/// tells.
async fn traffic_line(cd: &aws_sdk_codedeploy::Client, id: &str) -> Option<String> {
    let targets = cd
        .list_deployment_targets()
        .deployment_id(id)
        .send()
        .await
        .ok()?;
    let ids = targets.target_ids?;
    if ids.is_empty() {
        return None;
    }
    let out = cd
        .batch_get_deployment_targets()
        .deployment_id(id)
        .set_target_ids(Some(ids))
        .send()
        .await
        .ok()?;
    let mut parts = Vec::new();
    for t in out.deployment_targets() {
        for set in t
            .ecs_target()
            .map(|e| e.task_sets_info())
            .unwrap_or_default()
        {
            let label = set
                .task_set_label
                .as_ref()
                .map_or("task set", |l| l.as_str())
                .to_lowercase();
            parts.push(format!(
                "{label} {}% {}/{}",
                set.traffic_weight, set.running_count, set.desired_count
            ));
        }
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Follows deployment `id` until it ends or `limit`; a deployment still going at
/// the limit is stopped with rollback.
pub(crate) async fn follow(
    target: &EcsService,
    id: &str,
    ours: &str,
    previous: &str,
    limit: Duration,
    poll: Duration,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), EcsError> {
    let cd = client(target).await;
    let start = Instant::now();
    let mut last = String::new();
    loop {
        let out = cd
            .get_deployment()
            .deployment_id(id)
            .send()
            .await
            .map_err(api("GetDeployment", target))?;
        let info = out.deployment_info;
        let status = DeploymentStatus {
            status: info
                .as_ref()
                .and_then(|i| i.status.as_ref())
                .map_or("Unknown", |s| s.as_str())
                .to_owned(),
            error: info
                .as_ref()
                .and_then(|i| i.error_information.as_ref())
                .and_then(|e| e.message.clone()),
            rollback_deployment: info
                .as_ref()
                .and_then(|i| i.rollback_info.as_ref())
                .and_then(|r| r.rollback_deployment_id.clone()),
            rollback_message: info
                .as_ref()
                .and_then(|i| i.rollback_info.as_ref())
                .and_then(|r| r.rollback_message.clone()),
        };
        match judge(&status, previous) {
            Verdict::Steady => {
                progress(&format!(
                    "CodeDeploy deployment {id} succeeded: {ours} serves"
                ));
                return Ok(());
            }
            Verdict::Waiting(mut line) => {
                if let Some(traffic) = traffic_line(&cd, id).await {
                    line = format!("{line}: {traffic}");
                }
                if line != last {
                    progress(&line);
                    last = line;
                }
            }
            Verdict::Failed(reason) => {
                return Err(EcsError::Failed {
                    task_definition: ours.to_owned(),
                    detail: format!("CodeDeploy deployment {id}: {reason}"),
                })
            }
            Verdict::RolledBack { to, reason } => {
                return Err(EcsError::RolledBack {
                    task_definition: ours.to_owned(),
                    to,
                    detail: format!("CodeDeploy deployment {id}: {reason}"),
                })
            }
            Verdict::Superseded(by) => {
                return Err(EcsError::Superseded {
                    task_definition: ours.to_owned(),
                    by,
                })
            }
        }
        if start.elapsed() >= limit {
            let stopped = cd
                .stop_deployment()
                .deployment_id(id)
                .auto_rollback_enabled(true)
                .send()
                .await;
            let what = match stopped {
                Ok(_) => format!("CodeDeploy deployment {id} (stopped, rolling back)"),
                Err(e) => format!(
                    "CodeDeploy deployment {id} (stopping it failed: {})",
                    aws_sdk_codedeploy::error::DisplayErrorContext(&e)
                ),
            };
            return Err(EcsError::Timeout {
                what,
                after: limit,
                last,
            });
        }
        tokio::time::sleep(poll.min(limit.saturating_sub(start.elapsed()))).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn traffic_shifts_pick_codedeploy_configurations() {
        let min = |m: u64| Duration::from_secs(60 * m);
        assert_eq!(
            Traffic::AllAtOnce.config().name,
            "CodeDeployDefault.ECSAllAtOnce"
        );
        let c = Traffic::Canary {
            percent: 10,
            interval: min(5),
        }
        .config();
        assert_eq!(
            (c.name.as_str(), c.custom.is_none()),
            ("CodeDeployDefault.ECSCanary10Percent5Minutes", true)
        );
        let l = Traffic::Linear {
            percent: 10,
            interval: min(1),
        }
        .config();
        assert_eq!(l.name, "CodeDeployDefault.ECSLinear10PercentEvery1Minutes");
        // Custom ones, with seconds rounded up to CodeDeploy's minutes (and said so).
        let c = Traffic::Canary {
            percent: 20,
            interval: Duration::from_secs(30),
        }
        .config();
        assert_eq!(c.name, "hoist.ECSCanary20Percent1Minutes");
        assert_eq!(c.custom, Some((TrafficRoutingType::TimeBasedCanary, 20, 1)));
        assert!(c.rounded.unwrap().contains("30s becomes 1 min"));
        let l = Traffic::Linear {
            percent: 25,
            interval: Duration::from_secs(150),
        }
        .config();
        assert_eq!(l.name, "hoist.ECSLinear25PercentEvery3Minutes");
        assert_eq!(l.custom, Some((TrafficRoutingType::TimeBasedLinear, 25, 3)));
    }

    #[test]
    fn the_app_spec_names_revision_container_port_and_hooks() {
        let td = "arn:aws:ecs:eu-west-1:123456789012:task-definition/hello:7";
        let spec = app_spec(
            td,
            "hello",
            8080,
            &[
                ("BeforeAllowTraffic".into(), "check-v2".into()),
                ("BeforeInstall".into(), "prepare".into()),
            ],
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&spec).unwrap();
        let props = &v["Resources"][0]["TargetService"]["Properties"];
        assert_eq!(
            v["Resources"][0]["TargetService"]["Type"],
            "AWS::ECS::Service"
        );
        assert_eq!(props["TaskDefinition"], td);
        assert_eq!(props["LoadBalancerInfo"]["ContainerName"], "hello");
        assert_eq!(props["LoadBalancerInfo"]["ContainerPort"], 8080);
        assert_eq!(v["Hooks"][0]["BeforeInstall"], "prepare", "run order");
        assert_eq!(v["Hooks"][1]["BeforeAllowTraffic"], "check-v2");
        assert_eq!(v["version"], 0.0);
        let err = app_spec(td, "hello", 8080, &[("BeforeTraffic".into(), "f".into())]).unwrap_err();
        assert!(err.to_string().contains("AfterAllowTestTraffic"), "{err}");
    }

    #[test]
    fn deployments_end_in_success_failure_or_rollback() {
        let prev = "arn:aws:ecs:eu-west-1:123456789012:task-definition/hello:6";
        let at = |status: &str| DeploymentStatus {
            status: status.into(),
            ..Default::default()
        };
        for going in ["Created", "Queued", "InProgress", "Baking", "Ready"] {
            assert!(matches!(judge(&at(going), prev), Verdict::Waiting(l) if l.contains(going)));
        }
        assert_eq!(judge(&at("Succeeded"), prev), Verdict::Steady);
        let failed = DeploymentStatus {
            status: "Failed".into(),
            error: Some("The deployment timed out while waiting for the replacement task set to become healthy.".into()),
            ..Default::default()
        };
        assert!(
            matches!(judge(&failed, prev), Verdict::Failed(r) if r.contains("replacement task set"))
        );
        let rolled = DeploymentStatus {
            rollback_deployment: Some("d-ROLLBACK".into()),
            rollback_message: Some("Deployment d-X has been rolled back by d-ROLLBACK.".into()),
            ..failed
        };
        assert!(
            matches!(judge(&rolled, prev), Verdict::RolledBack { to, reason } if to == prev && reason.contains("rolled back"))
        );
    }
}
