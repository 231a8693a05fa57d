//! Amazon ECS deployments: a new task definition revision that changes only the
//! image, the service pointed at it (or a CodeDeploy blue/green deployment of it),
//! and the rollout followed to steady state, with ECS's circuit-breaker rollback
//! reported as the failure it is.
//!
//! The judgement of a rollout is pure ([`Watch::judge`] over a [`Snapshot`] of
//! `DescribeServices`), so it is tested on the sequences real ECS returns; the calls
//! around it are thin.

use std::collections::HashSet;
use std::io;
use std::time::{Duration, Instant};

use aws_sdk_ecs::types::{
    DeploymentControllerType, DeploymentRolloutState, SortOrder, TaskDefinition,
    TaskDefinitionField, TaskDefinitionStatus,
};

use crate::codedeploy::{self, CodeDeployTarget, Traffic};
use crate::sdk;

/// The tag on each revision hoist registers naming the revision it replaced, so that
/// `hoist rollback` returns to exactly that one.
pub const PREVIOUS_TAG: &str = "hoist:previous";

/// How often a rollout is polled.
pub const POLL: Duration = Duration::from_secs(5);

/// An ECS service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EcsService {
    /// The region (default: the credential chain's, `AWS_REGION`).
    pub region: Option<String>,
    /// The cluster's name or ARN.
    pub cluster: String,
    /// The service's name or ARN.
    pub service: String,
}

impl std::fmt::Display for EcsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ECS service {}/{}", self.cluster, self.service)?;
        if let Some(r) = &self.region {
            write!(f, " in {r}")?;
        }
        Ok(())
    }
}

/// What went wrong deploying to ECS.
#[derive(Debug, thiserror::Error)]
pub enum EcsError {
    /// An AWS call failed (no credentials, refused, unreachable endpoint).
    #[error("{op} for {target}: {message}")]
    Api {
        /// The API call.
        op: &'static str,
        /// The service it was about.
        target: String,
        /// The SDK's error with its causes.
        message: String,
    },
    /// The request does not fit the service (no such service or container, a
    /// strategy its deployment controller cannot do, no earlier revision).
    #[error("{0}")]
    Invalid(String),
    /// The deployment failed and nothing rolled it back.
    #[error("the deployment of {task_definition} failed: {detail}")]
    Failed {
        /// The revision that was being deployed.
        task_definition: String,
        /// Why, with the service's events that explain it.
        detail: String,
    },
    /// The deployment failed and was rolled back (ECS's circuit breaker, or
    /// CodeDeploy's automatic rollback).
    #[error("the deployment of {task_definition} failed and was rolled back to {to}: {detail}")]
    RolledBack {
        /// The revision that was being deployed.
        task_definition: String,
        /// The revision the service runs again.
        to: String,
        /// Why, with the service's events that explain it.
        detail: String,
    },
    /// Another deployment replaced this one before it finished.
    #[error("the deployment of {task_definition} was superseded: the service now runs {by}")]
    Superseded {
        /// The revision that was being deployed.
        task_definition: String,
        /// The revision the service was pointed at since.
        by: String,
    },
    /// Not steady in time (the deployment goes on in AWS).
    #[error("{what} not steady after {}s: {last}", after.as_secs())]
    Timeout {
        /// What was followed.
        what: String,
        /// The limit.
        after: Duration,
        /// The last progress seen.
        last: String,
    },
    /// The SDK's runtime could not start.
    #[error("starting the AWS SDK's runtime: {0}")]
    Runtime(io::Error),
}

/// A deployment to ask for.
#[derive(Clone, Debug, Default)]
pub struct Deploy {
    /// The image, as ECS will pull it (`<registry>/<repo>@sha256:...` or `:tag`).
    pub image: String,
    /// The container whose image changes (default: the task definition's only one).
    pub container: Option<String>,
    /// For a service under the CodeDeploy deployment controller: the application
    /// and deployment group.
    pub codedeploy: Option<CodeDeployTarget>,
    /// How CodeDeploy shifts traffic (default: the deployment group's
    /// configuration). Refused for a service under the ECS controller, whose
    /// deployments are rolling updates.
    pub traffic: Option<Traffic>,
    /// For a service under the ECS controller: `minimumHealthyPercent` and
    /// `maximumPercent` for this and later rollouts (default: the service's).
    pub rolling: Option<(i32, i32)>,
    /// Follow the rollout this long (`None`: return once it is requested).
    pub follow: Option<Duration>,
    /// Poll interval while following (default [`POLL`]).
    pub poll: Option<Duration>,
}

/// A deployment that was asked for (and, when followed, reached steady state).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployed {
    /// The revision the service runs (or is moving to).
    pub task_definition: String,
    /// The revision it ran before.
    pub previous: String,
    /// The container whose image was set.
    pub container: String,
    /// The CodeDeploy deployment, under that controller.
    pub codedeploy_id: Option<String>,
    /// Whether a new revision was registered (an unchanged image reuses the
    /// service's own revision and forces a new deployment of it).
    pub registered: bool,
    /// Whether the rollout was followed to steady state.
    pub steady: bool,
}

/// Registers a revision of `target`'s task definition with `request.image` in its
/// container (every other field kept, read-only ones dropped), points the service at
/// it (or creates a CodeDeploy deployment under that controller) and, with
/// `request.follow`, waits for steady state, telling `progress` what happens (the
/// service's events among it).
pub fn deploy(
    target: &EcsService,
    request: &Deploy,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Deployed, EcsError> {
    sdk::block_on(deploy_async(target, request, progress)).map_err(EcsError::Runtime)?
}

/// Points `target` back at the revision before its current one (the one hoist's
/// [`PREVIOUS_TAG`] names, else the newest active revision of the family below the
/// current), through CodeDeploy under that controller, and follows it like
/// [`deploy`].
pub fn rollback(
    target: &EcsService,
    container: Option<&str>,
    codedeploy: Option<&CodeDeployTarget>,
    follow: Option<Duration>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Deployed, EcsError> {
    sdk::block_on(rollback_async(
        target, container, codedeploy, follow, progress,
    ))
    .map_err(EcsError::Runtime)?
}

/// One rollout of a service, as `DescribeServices` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rollout {
    /// `ecs-svc/...`.
    pub id: String,
    /// `PRIMARY`, `ACTIVE` or `INACTIVE`.
    pub status: String,
    /// The revision it deploys.
    pub task_definition: String,
    /// Tasks wanted.
    pub desired: i32,
    /// Tasks running.
    pub running: i32,
    /// Tasks starting.
    pub pending: i32,
    /// Tasks that failed to start or failed health checks.
    pub failed_tasks: i32,
    /// `IN_PROGRESS`, `COMPLETED` or `FAILED` (absent outside the ECS controller).
    pub state: Option<String>,
    /// Why it is in that state.
    pub reason: Option<String>,
}

/// A service event (`(service x) has reached a steady state.`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceEvent {
    /// Its ID.
    pub id: String,
    /// When, in seconds since the epoch.
    pub at: i64,
    /// What happened.
    pub message: String,
}

/// What `DescribeServices` says of a service, as far as following a rollout needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The revision the service is pointed at.
    pub task_definition: String,
    /// Its rollouts, the primary one first.
    pub rollouts: Vec<Rollout>,
    /// Its events, newest first (as ECS lists them).
    pub events: Vec<ServiceEvent>,
}

/// Where a rollout stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Still going: a line of progress.
    Waiting(String),
    /// The service runs the revision, steady.
    Steady,
    /// It failed; nothing replaced it.
    Failed(String),
    /// It failed and the service went back to `to`.
    RolledBack {
        /// The revision running again.
        to: String,
        /// Why.
        reason: String,
    },
    /// Another deployment points the service elsewhere.
    Superseded(String),
}

/// Follows one rollout across snapshots.
#[derive(Clone, Debug)]
pub struct Watch {
    ours: String,
    previous: String,
    id: Option<String>,
    /// Rollouts that existed before: not ours, even with our revision (a forced
    /// new deployment of the same revision).
    old: HashSet<String>,
    seen: HashSet<String>,
    told: Vec<String>,
}

impl Watch {
    /// Follows the rollout of `ours` (replacing `previous`); the events already in
    /// `before` are old news.
    pub fn new(ours: &str, previous: &str, before: &Snapshot) -> Watch {
        Watch {
            ours: ours.to_owned(),
            previous: previous.to_owned(),
            id: None,
            old: before.rollouts.iter().map(|r| r.id.clone()).collect(),
            seen: before.events.iter().map(|e| e.id.clone()).collect(),
            told: Vec::new(),
        }
    }

    /// The events of `snap` not seen before, oldest first; remembered as told.
    pub fn new_events(&mut self, snap: &Snapshot) -> Vec<String> {
        let mut fresh: Vec<&ServiceEvent> = snap
            .events
            .iter()
            .filter(|e| !self.seen.contains(&e.id))
            .collect();
        fresh.sort_by_key(|e| e.at);
        let lines: Vec<String> = fresh.iter().map(|e| e.message.clone()).collect();
        for e in fresh {
            self.seen.insert(e.id.clone());
        }
        self.told.extend(lines.iter().cloned());
        lines
    }

    /// The events told since the rollout began (the last few), for a failure's
    /// explanation.
    pub fn story(&self) -> String {
        let start = self.told.len().saturating_sub(8);
        self.told[start..]
            .iter()
            .map(|m| format!("\n  event: {m}"))
            .collect()
    }

    /// Where the rollout stands in `snap`.
    pub fn judge(&mut self, snap: &Snapshot) -> Verdict {
        let mine = match &self.id {
            Some(id) => snap.rollouts.iter().find(|r| &r.id == id),
            None => snap
                .rollouts
                .iter()
                .find(|r| r.task_definition == self.ours && !self.old.contains(&r.id)),
        };
        let Some(mine) = mine else {
            if self.id.is_some() {
                // Gone: replaced by the rollback ECS made, or by someone's deployment.
                return if snap.task_definition == self.previous {
                    Verdict::RolledBack {
                        to: self.previous.clone(),
                        reason: "the deployment is gone and the service runs the previous revision again".into(),
                    }
                } else if snap.task_definition == self.ours {
                    Verdict::Waiting("waiting for ECS to report the deployment".into())
                } else {
                    Verdict::Superseded(snap.task_definition.clone())
                };
            }
            return if snap.task_definition == self.ours {
                Verdict::Waiting("waiting for ECS to start the deployment".into())
            } else {
                Verdict::Superseded(snap.task_definition.clone())
            };
        };
        self.id = Some(mine.id.clone());
        let counts = format!(
            "{}/{} running, {} pending, {} failed",
            mine.running, mine.desired, mine.pending, mine.failed_tasks
        );
        let primary = snap.rollouts.iter().find(|r| r.status == "PRIMARY");
        match mine.state.as_deref() {
            Some("FAILED") => {
                let reason = mine
                    .reason
                    .clone()
                    .unwrap_or_else(|| "rollout failed".into());
                match primary {
                    Some(p) if p.id != mine.id => Verdict::RolledBack {
                        to: p.task_definition.clone(),
                        reason,
                    },
                    _ => Verdict::Failed(reason),
                }
            }
            Some("COMPLETED") if mine.status == "PRIMARY" => Verdict::Steady,
            Some(_) => Verdict::Waiting(counts),
            // No rollout state: steady when it is the only rollout, at full strength.
            None => {
                if mine.status == "PRIMARY"
                    && snap.rollouts.len() == 1
                    && mine.running == mine.desired
                    && mine.pending == 0
                {
                    Verdict::Steady
                } else {
                    Verdict::Waiting(counts)
                }
            }
        }
    }
}

/// Maps an SDK error of `op` on `target` (ECS's or CodeDeploy's: the same smithy
/// error context) to [`EcsError::Api`].
pub(crate) fn api<E>(op: &'static str, target: &EcsService) -> impl FnOnce(E) -> EcsError
where
    E: std::error::Error,
{
    let target = target.to_string();
    move |e| EcsError::Api {
        op,
        target,
        message: aws_sdk_ecs::error::DisplayErrorContext(&e).to_string(),
    }
}

/// The service as the SDK returns it, refused unless it is active.
async fn describe(
    ecs: &aws_sdk_ecs::Client,
    target: &EcsService,
) -> Result<aws_sdk_ecs::types::Service, EcsError> {
    let out = ecs
        .describe_services()
        .cluster(&target.cluster)
        .services(&target.service)
        .send()
        .await
        .map_err(api("DescribeServices", target))?;
    let found = out
        .services
        .unwrap_or_default()
        .into_iter()
        .find(|s| s.status.as_deref() != Some("INACTIVE"));
    found.ok_or_else(|| {
        let why = out
            .failures
            .unwrap_or_default()
            .into_iter()
            .filter_map(|f| f.reason)
            .collect::<Vec<_>>()
            .join(", ");
        EcsError::Invalid(format!(
            "{target}: no active service{}",
            if why.is_empty() {
                String::new()
            } else {
                format!(" ({why})")
            }
        ))
    })
}

/// What [`Watch`] needs of a service.
pub fn snapshot(service: &aws_sdk_ecs::types::Service) -> Snapshot {
    Snapshot {
        task_definition: service.task_definition.clone().unwrap_or_default(),
        rollouts: service
            .deployments()
            .iter()
            .map(|d| Rollout {
                id: d.id.clone().unwrap_or_default(),
                status: d.status.clone().unwrap_or_default(),
                task_definition: d.task_definition.clone().unwrap_or_default(),
                desired: d.desired_count,
                running: d.running_count,
                pending: d.pending_count,
                failed_tasks: d.failed_tasks,
                state: d
                    .rollout_state
                    .as_ref()
                    .map(DeploymentRolloutState::as_str)
                    .map(str::to_owned),
                reason: d.rollout_state_reason.clone(),
            })
            .collect(),
        events: service
            .events()
            .iter()
            .map(|e| ServiceEvent {
                id: e.id.clone().unwrap_or_default(),
                at: e.created_at.map_or(0, |t| t.secs()),
                message: e.message.clone().unwrap_or_default(),
            })
            .collect(),
    }
}

async fn client(target: &EcsService) -> aws_sdk_ecs::Client {
    aws_sdk_ecs::Client::new(&sdk::config(target.region.clone()).await)
}

async fn task_definition(
    ecs: &aws_sdk_ecs::Client,
    target: &EcsService,
    arn: &str,
) -> Result<(TaskDefinition, Vec<aws_sdk_ecs::types::Tag>), EcsError> {
    let out = ecs
        .describe_task_definition()
        .task_definition(arn)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .map_err(api("DescribeTaskDefinition", target))?;
    let td = out
        .task_definition
        .ok_or_else(|| EcsError::Invalid(format!("{arn}: no such task definition")))?;
    Ok((td, out.tags.unwrap_or_default()))
}

/// The container to change: `wanted`, or the only one.
fn pick_container(td: &TaskDefinition, wanted: Option<&str>) -> Result<usize, EcsError> {
    let names: Vec<&str> = td
        .container_definitions()
        .iter()
        .map(|c| c.name.as_deref().unwrap_or(""))
        .collect();
    let arn = td.task_definition_arn.as_deref().unwrap_or("");
    match wanted {
        Some(w) => names.iter().position(|n| *n == w).ok_or_else(|| {
            EcsError::Invalid(format!(
                "{arn} has no container {w:?} (it has {})",
                names.join(", ")
            ))
        }),
        None if names.len() == 1 => Ok(0),
        None => Err(EcsError::Invalid(format!(
            "{arn} has {} containers ({}): name the one to update (container)",
            names.len(),
            names.join(", ")
        ))),
    }
}

/// The service's deployment controller (ECS's when it names none), refused unless
/// hoist drives it.
fn controller_of(
    target: &EcsService,
    service: &aws_sdk_ecs::types::Service,
) -> Result<DeploymentControllerType, EcsError> {
    let controller = service
        .deployment_controller()
        .map_or(DeploymentControllerType::Ecs, |c| c.r#type().clone());
    match controller {
        DeploymentControllerType::Ecs | DeploymentControllerType::CodeDeploy => Ok(controller),
        other => Err(EcsError::Invalid(format!(
            "{target} uses the {} deployment controller, which hoist does not drive",
            other.as_str()
        ))),
    }
}

/// For a service under the CODE_DEPLOY controller: the CodeDeploy settings, and the
/// port the load balancer sends to (the settings', else the container's first).
fn codedeploy_route<'a>(
    target: &EcsService,
    codedeploy: Option<&'a CodeDeployTarget>,
    container: &aws_sdk_ecs::types::ContainerDefinition,
    revision: &str,
) -> Result<(&'a CodeDeployTarget, u16), EcsError> {
    let cd = codedeploy.ok_or_else(|| {
        EcsError::Invalid(format!(
            "{target} uses the CODE_DEPLOY deployment controller: name its CodeDeploy application and deployment group"
        ))
    })?;
    let mapped = container
        .port_mappings()
        .first()
        .and_then(|p| p.container_port)
        .and_then(|p| u16::try_from(p).ok());
    let port = cd.container_port.or(mapped).ok_or_else(|| {
        EcsError::Invalid(format!(
            "container {} of {revision} maps no port: give the container port for CodeDeploy",
            container.name.as_deref().unwrap_or_default()
        ))
    })?;
    Ok((cd, port))
}

async fn deploy_async(
    target: &EcsService,
    request: &Deploy,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Deployed, EcsError> {
    let ecs = client(target).await;
    let service = describe(&ecs, target).await?;
    let controller = controller_of(target, &service)?;
    if controller == DeploymentControllerType::Ecs && request.traffic.is_some() {
        return Err(EcsError::Invalid(format!(
            "{target} uses the ECS deployment controller, whose deployments are rolling updates: blue/green, canary and linear shifts need a service under the CODE_DEPLOY controller with a CodeDeploy deployment group"
        )));
    }
    let current_arn = service.task_definition.clone().unwrap_or_default();
    let (current, tags) = task_definition(&ecs, target, &current_arn).await?;
    let index = pick_container(&current, request.container.as_deref())?;
    let container = current.container_definitions()[index]
        .name
        .clone()
        .unwrap_or_default();
    let unchanged =
        current.container_definitions()[index].image.as_deref() == Some(request.image.as_str());
    // Checked before a revision is registered: a refusal changes nothing.
    let codedeploy_route = match controller {
        DeploymentControllerType::CodeDeploy => Some(codedeploy_route(
            target,
            request.codedeploy.as_ref(),
            &current.container_definitions()[index],
            &current_arn,
        )?),
        _ => None,
    };

    let ours = if unchanged {
        progress(&format!(
            "{current_arn} already runs {}: deploying it again",
            request.image
        ));
        current_arn.clone()
    } else {
        let arn = register(&ecs, target, current, tags, index, &request.image).await?;
        progress(&format!(
            "registered {arn} ({container}: {}), replacing {current_arn}",
            request.image
        ));
        arn
    };

    let before = snapshot(&service);
    let mut codedeploy_id = None;
    if let Some((cd, port)) = codedeploy_route {
        let id = codedeploy::create(
            target,
            cd,
            &ours,
            &container,
            port,
            request.traffic,
            progress,
        )
        .await?;
        codedeploy_id = Some(id);
    } else {
        let mut update = ecs
            .update_service()
            .cluster(&target.cluster)
            .service(&target.service)
            .task_definition(&ours)
            .force_new_deployment(unchanged);
        if let Some((min, max)) = request.rolling {
            let mut config = service
                .deployment_configuration
                .clone()
                .unwrap_or_else(|| aws_sdk_ecs::types::DeploymentConfiguration::builder().build());
            config.minimum_healthy_percent = Some(min);
            config.maximum_percent = Some(max);
            update = update.deployment_configuration(config);
        }
        update.send().await.map_err(api("UpdateService", target))?;
        progress(&format!("updated {target} to {ours}"));
    }
    if request.codedeploy.is_some() && controller == DeploymentControllerType::Ecs {
        progress("note: the service uses the ECS deployment controller; CodeDeploy settings are not used");
    }
    if let Some(rolling) = request.rolling {
        if controller != DeploymentControllerType::Ecs {
            progress(&format!(
                "note: minimum/maximum percent {}/{} apply to the ECS controller only",
                rolling.0, rolling.1
            ));
        }
    }

    let done = Deployed {
        task_definition: ours.clone(),
        previous: current_arn.clone(),
        container,
        codedeploy_id: codedeploy_id.clone(),
        registered: !unchanged,
        steady: false,
    };
    let follow = request
        .follow
        .map(|limit| (limit, request.poll.unwrap_or(POLL)));
    settle(&ecs, target, done, &before, follow, progress).await
}

/// Follows what `done` started when asked to (`follow`: for how long, polling how
/// often) and marks it steady once it is.
async fn settle(
    ecs: &aws_sdk_ecs::Client,
    target: &EcsService,
    mut done: Deployed,
    before: &Snapshot,
    follow: Option<(Duration, Duration)>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Deployed, EcsError> {
    if let Some((limit, poll)) = follow {
        follow_rollout(ecs, target, &done, before, limit, poll, progress).await?;
        done.steady = true;
    }
    Ok(done)
}

/// Follows what `done` started: its CodeDeploy deployment, else the service's
/// rollout (`before` being the service as it was before the change).
async fn follow_rollout(
    ecs: &aws_sdk_ecs::Client,
    target: &EcsService,
    done: &Deployed,
    before: &Snapshot,
    limit: Duration,
    poll: Duration,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), EcsError> {
    let (ours, previous) = (&done.task_definition, &done.previous);
    match &done.codedeploy_id {
        Some(id) => codedeploy::follow(target, id, ours, previous, limit, poll, progress).await,
        None => {
            let watch = Watch::new(ours, previous, before);
            follow(ecs, target, watch, limit, poll, progress).await
        }
    }
}

/// Registers `current` again with the image of container `index` replaced; tagged
/// with the revision it replaces.
async fn register(
    ecs: &aws_sdk_ecs::Client,
    target: &EcsService,
    current: TaskDefinition,
    tags: Vec<aws_sdk_ecs::types::Tag>,
    index: usize,
    image: &str,
) -> Result<String, EcsError> {
    let current_arn = current.task_definition_arn.clone().unwrap_or_default();
    let mut containers = current.container_definitions.unwrap_or_default();
    containers[index].image = Some(image.to_owned());
    let mut tags: Vec<_> = tags
        .into_iter()
        .filter(|t| t.key.as_deref() != Some(PREVIOUS_TAG))
        .collect();
    tags.push(
        aws_sdk_ecs::types::Tag::builder()
            .key(PREVIOUS_TAG)
            .value(&current_arn)
            .build(),
    );
    // Every writable field kept; the read-only ones (ARN, revision, status,
    // requiresAttributes, compatibilities, registeredAt/By, deregisteredAt) are not
    // inputs, so they fall away here.
    let out = ecs
        .register_task_definition()
        .set_family(current.family)
        .set_task_role_arn(current.task_role_arn)
        .set_execution_role_arn(current.execution_role_arn)
        .set_network_mode(current.network_mode)
        .set_container_definitions(Some(containers))
        .set_volumes(current.volumes)
        .set_placement_constraints(current.placement_constraints)
        .set_requires_compatibilities(current.requires_compatibilities)
        .set_cpu(current.cpu)
        .set_memory(current.memory)
        .set_pid_mode(current.pid_mode)
        .set_ipc_mode(current.ipc_mode)
        .set_proxy_configuration(current.proxy_configuration)
        .set_ephemeral_storage(current.ephemeral_storage)
        .set_runtime_platform(current.runtime_platform)
        .set_enable_fault_injection(current.enable_fault_injection)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(api("RegisterTaskDefinition", target))?;
    out.task_definition
        .and_then(|t| t.task_definition_arn)
        .ok_or_else(|| EcsError::Invalid("RegisterTaskDefinition answered without an ARN".into()))
}

/// Polls the service until `watch` says the rollout ended, or `limit`.
async fn follow(
    ecs: &aws_sdk_ecs::Client,
    target: &EcsService,
    mut watch: Watch,
    limit: Duration,
    poll: Duration,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), EcsError> {
    let start = Instant::now();
    let ours = watch.ours.clone();
    let mut last = String::new();
    loop {
        let service = describe(ecs, target).await?;
        let snap = snapshot(&service);
        for line in watch.new_events(&snap) {
            progress(&format!("event: {line}"));
        }
        match watch.judge(&snap) {
            Verdict::Steady => {
                progress(&format!("{target} is steady on {ours}"));
                return Ok(());
            }
            Verdict::Waiting(line) => {
                if line != last {
                    progress(&line);
                    last = line;
                }
            }
            Verdict::Failed(reason) => {
                return Err(EcsError::Failed {
                    task_definition: ours,
                    detail: format!("{reason}{}", watch.story()),
                })
            }
            Verdict::RolledBack { to, reason } => {
                return Err(EcsError::RolledBack {
                    task_definition: ours,
                    to,
                    detail: format!("{reason}{}", watch.story()),
                })
            }
            Verdict::Superseded(by) => {
                return Err(EcsError::Superseded {
                    task_definition: ours,
                    by,
                })
            }
        }
        if start.elapsed() >= limit {
            return Err(EcsError::Timeout {
                what: format!("{target} on {ours}"),
                after: limit,
                last,
            });
        }
        tokio::time::sleep(poll.min(limit.saturating_sub(start.elapsed()))).await;
    }
}

async fn rollback_async(
    target: &EcsService,
    container: Option<&str>,
    codedeploy: Option<&CodeDeployTarget>,
    follow_for: Option<Duration>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Deployed, EcsError> {
    let ecs = client(target).await;
    let service = describe(&ecs, target).await?;
    let current_arn = service.task_definition.clone().unwrap_or_default();
    let (current, tags) = task_definition(&ecs, target, &current_arn).await?;
    let tagged = tags
        .iter()
        .find(|t| t.key.as_deref() == Some(PREVIOUS_TAG))
        .and_then(|t| t.value.clone());
    let previous = match tagged {
        Some(arn) => arn,
        None => {
            let family = current.family.clone().unwrap_or_default();
            let out = ecs
                .list_task_definitions()
                .family_prefix(&family)
                .status(TaskDefinitionStatus::Active)
                .sort(SortOrder::Desc)
                .send()
                .await
                .map_err(api("ListTaskDefinitions", target))?;
            out.task_definition_arns()
                .iter()
                .find(|arn| {
                    revision_of(arn).is_some_and(|r| r < current.revision)
                        && family_of(arn) == Some(family.as_str())
                })
                .cloned()
                .ok_or_else(|| {
                    EcsError::Invalid(format!(
                        "{target}: no revision of {family} before {current_arn} to roll back to"
                    ))
                })?
        }
    };
    let (prev_td, _) = task_definition(&ecs, target, &previous).await?;
    let index = pick_container(&prev_td, container).ok();
    let container = index.and_then(|i| prev_td.container_definitions()[i].name.clone());
    progress(&format!(
        "rolling {target} back from {current_arn} to {previous}"
    ));
    let before = snapshot(&service);
    let mut codedeploy_id = None;
    if controller_of(target, &service)? == DeploymentControllerType::CodeDeploy {
        let index = index.ok_or_else(|| {
            EcsError::Invalid(format!("{previous}: name the container for CodeDeploy"))
        })?;
        let def = &prev_td.container_definitions()[index];
        let (cd, port) = codedeploy_route(target, codedeploy, def, &previous)?;
        let name = def.name.clone().unwrap_or_default();
        codedeploy_id =
            Some(codedeploy::create(target, cd, &previous, &name, port, None, progress).await?);
    } else {
        ecs.update_service()
            .cluster(&target.cluster)
            .service(&target.service)
            .task_definition(&previous)
            .send()
            .await
            .map_err(api("UpdateService", target))?;
        progress(&format!("updated {target} to {previous}"));
    }
    let done = Deployed {
        task_definition: previous.clone(),
        previous: current_arn.clone(),
        container: container.unwrap_or_default(),
        codedeploy_id: codedeploy_id.clone(),
        registered: false,
        steady: false,
    };
    let follow = follow_for.map(|limit| (limit, POLL));
    settle(&ecs, target, done, &before, follow, progress).await
}

/// `family` of `arn:aws:ecs:...:task-definition/family:7`.
fn family_of(arn: &str) -> Option<&str> {
    let tail = arn.rsplit_once('/')?.1;
    Some(tail.rsplit_once(':')?.0)
}

/// `7` of `arn:aws:ecs:...:task-definition/family:7`.
fn revision_of(arn: &str) -> Option<i32> {
    arn.rsplit_once(':')?.1.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const V1: &str = "arn:aws:ecs:eu-west-1:123456789012:task-definition/hello:1";
    const V2: &str = "arn:aws:ecs:eu-west-1:123456789012:task-definition/hello:2";

    fn rollout(id: &str, status: &str, td: &str, running: i32, state: &str) -> Rollout {
        Rollout {
            id: id.into(),
            status: status.into(),
            task_definition: td.into(),
            desired: 2,
            running,
            pending: 2 - running,
            failed_tasks: 0,
            state: Some(state.into()),
            reason: None,
        }
    }

    fn event(id: &str, at: i64, message: &str) -> ServiceEvent {
        ServiceEvent {
            id: id.into(),
            at,
            message: message.into(),
        }
    }

    /// A steady service on v1, as `DescribeServices` shows it before the update.
    fn before() -> Snapshot {
        Snapshot {
            task_definition: V1.into(),
            rollouts: vec![rollout("ecs-svc/1", "PRIMARY", V1, 2, "COMPLETED")],
            events: vec![event(
                "e0",
                100,
                "(service hello) has reached a steady state.",
            )],
        }
    }

    #[test]
    fn a_rolling_update_is_followed_to_completion() {
        let mut w = Watch::new(V2, V1, &before());
        // Right after UpdateService: the service names v2, the new rollout is there.
        let mut s = Snapshot {
            task_definition: V2.into(),
            rollouts: vec![
                rollout("ecs-svc/2", "PRIMARY", V2, 0, "IN_PROGRESS"),
                rollout("ecs-svc/1", "ACTIVE", V1, 2, "COMPLETED"),
            ],
            events: before().events,
        };
        assert_eq!(
            w.judge(&s),
            Verdict::Waiting("0/2 running, 2 pending, 0 failed".into())
        );
        assert!(w.new_events(&s).is_empty(), "old events are not news");
        s.rollouts[0].running = 2;
        s.rollouts[0].pending = 0;
        s.events.insert(
            0,
            event(
                "e1",
                130,
                "(service hello) has started 2 tasks: (task a) (task b).",
            ),
        );
        assert!(matches!(w.judge(&s), Verdict::Waiting(_)));
        assert_eq!(
            w.new_events(&s),
            ["(service hello) has started 2 tasks: (task a) (task b)."]
        );
        // The old rollout drained, the new one completed.
        s.rollouts.truncate(1);
        s.rollouts[0].state = Some("COMPLETED".into());
        s.events.insert(
            0,
            event("e3", 190, "(service hello) has reached a steady state."),
        );
        s.events.insert(
            1,
            event("e2", 160, "(service hello) deployment ecs-svc/2 completed."),
        );
        assert_eq!(w.judge(&s), Verdict::Steady);
        assert_eq!(
            w.new_events(&s),
            [
                "(service hello) deployment ecs-svc/2 completed.",
                "(service hello) has reached a steady state."
            ],
            "oldest first"
        );
    }

    #[test]
    fn a_circuit_breaker_rollback_is_a_rollback_not_a_success() {
        let mut w = Watch::new(V2, V1, &before());
        let mut s = Snapshot {
            task_definition: V2.into(),
            rollouts: vec![
                rollout("ecs-svc/2", "PRIMARY", V2, 0, "IN_PROGRESS"),
                rollout("ecs-svc/1", "ACTIVE", V1, 2, "COMPLETED"),
            ],
            events: before().events,
        };
        assert!(matches!(w.judge(&s), Verdict::Waiting(_)));
        // ECS's circuit breaker trips: the failed rollout stays ACTIVE as FAILED, a
        // new PRIMARY rollout of v1 appears (the shape ECS documents).
        s.rollouts = vec![
            Rollout {
                state: Some("IN_PROGRESS".into()),
                ..rollout("ecs-svc/3", "PRIMARY", V1, 1, "IN_PROGRESS")
            },
            Rollout {
                failed_tasks: 3,
                reason: Some("ECS deployment circuit breaker: tasks failed to start.".into()),
                ..rollout("ecs-svc/2", "ACTIVE", V2, 0, "FAILED")
            },
        ];
        s.task_definition = V1.into();
        s.events.insert(
            0,
            event(
                "e1",
                150,
                "(service hello) (deployment ecs-svc/2) deployment failed: tasks failed to start.",
            ),
        );
        let v = w.judge(&s);
        assert_eq!(
            v,
            Verdict::RolledBack {
                to: V1.into(),
                reason: "ECS deployment circuit breaker: tasks failed to start.".into()
            }
        );
        w.new_events(&s);
        assert!(w
            .story()
            .contains("deployment failed: tasks failed to start"));
    }

    #[test]
    fn failure_without_rollback_and_vanished_rollouts() {
        // Circuit breaker without rollback: FAILED and still primary.
        let mut w = Watch::new(V2, V1, &before());
        let s = Snapshot {
            task_definition: V2.into(),
            rollouts: vec![Rollout {
                reason: Some("ECS deployment circuit breaker: tasks failed to start.".into()),
                ..rollout("ecs-svc/2", "PRIMARY", V2, 0, "FAILED")
            }],
            events: vec![],
        };
        assert!(matches!(w.judge(&s), Verdict::Failed(r) if r.contains("circuit breaker")));

        // Our rollout seen, then gone, the service back on v1: rolled back.
        let mut w = Watch::new(V2, V1, &before());
        let s = Snapshot {
            task_definition: V2.into(),
            rollouts: vec![rollout("ecs-svc/2", "PRIMARY", V2, 0, "IN_PROGRESS")],
            events: vec![],
        };
        assert!(matches!(w.judge(&s), Verdict::Waiting(_)));
        let back = Snapshot {
            task_definition: V1.into(),
            rollouts: vec![rollout("ecs-svc/3", "PRIMARY", V1, 2, "COMPLETED")],
            events: vec![],
        };
        assert!(matches!(w.judge(&back), Verdict::RolledBack { to, .. } if to == V1));

        // Someone else's revision: superseded.
        let mut w = Watch::new(V2, V1, &before());
        let v3 = V2.replace(":2", ":3");
        let other = Snapshot {
            task_definition: v3.clone(),
            rollouts: vec![rollout("ecs-svc/4", "PRIMARY", &v3, 0, "IN_PROGRESS")],
            events: vec![],
        };
        assert_eq!(w.judge(&other), Verdict::Superseded(v3));

        // Not started yet (the service names v2, no rollout of it): waiting.
        let mut w = Watch::new(V2, V1, &before());
        let early = Snapshot {
            task_definition: V2.into(),
            rollouts: vec![rollout("ecs-svc/1", "PRIMARY", V1, 2, "COMPLETED")],
            events: vec![],
        };
        assert!(matches!(w.judge(&early), Verdict::Waiting(m) if m.contains("start")));
    }

    #[test]
    fn a_forced_deployment_of_the_same_revision_waits_for_its_own_rollout() {
        let mut w = Watch::new(V1, V1, &before());
        // Right after UpdateService(forceNewDeployment): only the old, completed
        // rollout of the same revision. It is not this deployment.
        assert!(matches!(w.judge(&before()), Verdict::Waiting(m) if m.contains("start")));
        let mut s = before();
        s.rollouts
            .insert(0, rollout("ecs-svc/2", "PRIMARY", V1, 0, "IN_PROGRESS"));
        s.rollouts[1].status = "ACTIVE".into();
        assert!(matches!(w.judge(&s), Verdict::Waiting(m) if m.contains("0/2")));
        s.rollouts.truncate(1);
        s.rollouts[0].state = Some("COMPLETED".into());
        assert_eq!(w.judge(&s), Verdict::Steady);
    }

    #[test]
    fn without_rollout_state_steady_means_alone_and_at_full_strength() {
        let mut w = Watch::new(V2, V1, &before());
        let mut r = rollout("ecs-svc/2", "PRIMARY", V2, 2, "x");
        r.state = None;
        r.pending = 0;
        let mut s = Snapshot {
            task_definition: V2.into(),
            rollouts: vec![r, rollout("ecs-svc/1", "ACTIVE", V1, 1, "COMPLETED")],
            events: vec![],
        };
        assert!(matches!(w.judge(&s), Verdict::Waiting(_)));
        s.rollouts.truncate(1);
        assert_eq!(w.judge(&s), Verdict::Steady);
    }

    #[test]
    fn arns_give_family_and_revision() {
        assert_eq!(family_of(V2), Some("hello"));
        assert_eq!(revision_of(V2), Some(2));
        assert_eq!(revision_of("nonsense"), None);
    }
}
