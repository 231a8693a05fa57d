//! `hoist.yml`: the app, how it is built, tested and scanned, the environments it
//! is deployed to in order (each a service of `hoist_deploy`, named
//! `<app>-<environment>`), and who is told.
//!
//! [`PipelineSpec::parse`] reads a file in two passes: serde reads the typed value
//! and stops at the first syntax or type error; then every check that involves
//! more than one field runs and all of their problems are reported together, each
//! at the line of its field.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use hoist_deploy::spec::{
    default_count, default_drain_timeout, default_stop_timeout, human, human_opt, DeploymentSpec,
    HealthCheckSpec, LimitsSpec, ListenerSpec, Name, NetworkMode, Port, ServiceSpec, Strategy,
};
use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{parse_yaml, Locator, SpecErrors};

/// A whole `hoist.yml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// The application's name (as a service name: `[a-z0-9][a-z0-9-]*`).
    pub app: Name,
    /// How the image is built (defaults: `Dockerfile` in `.`).
    #[serde(default)]
    pub build: BuildSettings,
    /// Test steps, run in order after the build.
    #[serde(default)]
    pub test: Vec<TestStep>,
    /// The directory kept from run to run (`$HOIST_CACHE_DIR`) and what keys it.
    #[serde(default)]
    pub cache: CacheSettings,
    /// The scan gate between test and deploy.
    #[serde(default)]
    pub scan: ScanPolicy,
    /// Where the image is pushed (default: hoist's embedded registry).
    #[serde(default)]
    pub push: PushSettings,
    /// Where the image goes, in order; at least one.
    #[serde(default)]
    pub environments: Vec<Environment>,
    /// Who is told about runs and deployments.
    #[serde(default)]
    pub notifications: Notifications,
}

/// The push stage's registry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushSettings {
    /// `host[:port][/namespace]` the image's tags are pushed under, such as
    /// `123456789012.dkr.ecr.eu-west-1.amazonaws.com` (ECR credentials come from
    /// the AWS credential chain). Default: hoist's embedded registry, started on
    /// demand.
    pub registry: Option<String>,
    /// For an ECR registry: create the repository on first push (immutable tags,
    /// scan on push, AES256 encryption).
    pub create_repository: bool,
}

/// The image build.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BuildSettings {
    /// The Dockerfile, from the repository root (default `Dockerfile`).
    pub dockerfile: PathBuf,
    /// The build context (default `.`).
    pub context: PathBuf,
    /// `--build-arg`s.
    pub args: BTreeMap<String, String>,
    /// The stage to build (default the last).
    pub target: Option<String>,
}

impl Default for BuildSettings {
    fn default() -> Self {
        BuildSettings {
            dockerfile: PathBuf::from("Dockerfile"),
            context: PathBuf::from("."),
            args: BTreeMap::new(),
            target: None,
        }
    }
}

/// `$HOIST_CACHE_DIR`: a directory per app kept from run to run. With `key`, one
/// per distinct content of those files (lockfiles), as GitLab's `cache:key:files`:
/// a run whose lockfiles changed starts from an empty cache, not a stale one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    /// Files, from the repository root, whose contents key the cache (a missing
    /// file keys as missing).
    pub key: Vec<PathBuf>,
    /// How many keyed caches of the app to keep, the least recently used removed
    /// first (default 3).
    pub keep: usize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            key: Vec::new(),
            keep: 3,
        }
    }
}

/// One test step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestStep {
    /// Shown in the run's log.
    pub name: String,
    /// Shell commands, run one after the other with `sh -c` (a single string is one
    /// command); the step fails at the first that fails.
    #[serde(deserialize_with = "one_or_many")]
    pub run: Vec<String>,
    /// Run inside a container of this image instead of on the host.
    #[serde(default)]
    pub image: Option<String>,
    /// Limit for the whole step (default 10m).
    #[serde(default = "default_test_timeout", with = "human")]
    pub timeout: Duration,
    /// Environment variables added for the step.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

fn default_test_timeout() -> Duration {
    Duration::from_secs(600)
}

/// The scan gate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScanPolicy {
    /// The lowest severity that fails the run (default high).
    pub fail_on: Severity,
    /// Accepted findings (default: `.hoistignore` when the repository has one).
    pub ignore_file: Option<PathBuf>,
    /// Which scanners run (default all).
    pub scanners: BTreeSet<Scanner>,
}

impl Default for ScanPolicy {
    fn default() -> Self {
        ScanPolicy {
            fail_on: Severity::High,
            ignore_file: None,
            scanners: [Scanner::Vuln, Scanner::Secret, Scanner::Misconfig].into(),
        }
    }
}

/// A finding's severity, as the gate compares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Fail on critical findings only.
    Critical,
    /// Fail on high and critical.
    High,
    /// Fail on medium and above.
    Medium,
    /// Fail on any rated finding.
    Low,
    /// Never fail (report only).
    None,
}

/// The scanners of `hoist scan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scanner {
    /// Known vulnerabilities in the image's packages.
    Vuln,
    /// Secrets in the image's files.
    Secret,
    /// Misconfigurations (Dockerfile and the like).
    Misconfig,
}

/// One environment: a service of the app, deployed after the one before it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// Unique in the file; the service is `<app>-<name>`.
    pub name: Name,
    /// Where it runs (default local).
    #[serde(default)]
    pub target: Target,
    /// Whether someone must approve before it is deployed (default none).
    #[serde(default)]
    pub approval: Approval,
    /// The deployment strategy, short (`canary:10%:30s`) or as a mapping; overrides
    /// `service.deployment.strategy`.
    #[serde(default, deserialize_with = "strategy_form")]
    pub strategy: Option<Strategy>,
    /// Environment variables; override the service's of the same name.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Variables from the secret store (`VAR: secret-name`); override the service's.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// The service's settings.
    #[serde(default)]
    pub service: ServiceSettings,
    /// A shell command run after the deployment, with `$HOIST_URL` set to the
    /// environment's listener; the stage fails if it does.
    #[serde(default)]
    pub smoke: Option<String>,
    /// Limit for the environment's stage, deployment and smoke test together
    /// (default: none beyond the deployment's own).
    #[serde(default, with = "human_opt")]
    pub timeout: Option<Duration>,
    /// The ECS service, for `target: ecs` (required there, refused elsewhere).
    #[serde(default)]
    pub ecs: Option<EcsSettings>,
}

/// An environment on Amazon ECS: the service whose task definition gets the new
/// image. Everything else about the service (count, ports, health checks, roles)
/// lives in its task definition and service, managed with Terraform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcsSettings {
    /// The region (default: the AWS credential chain's, `AWS_REGION`).
    #[serde(default)]
    pub region: Option<String>,
    /// The cluster's name or ARN.
    pub cluster: String,
    /// The service's name or ARN.
    pub service: String,
    /// The container whose image is set (default: the task definition's only one).
    #[serde(default)]
    pub container: Option<String>,
    /// For a service under the CODE_DEPLOY deployment controller (blue/green).
    #[serde(default)]
    pub codedeploy: Option<CodeDeploySettings>,
    /// Follow the rollout to steady state (default true); false returns once ECS
    /// or CodeDeploy accepted it.
    #[serde(default = "yes")]
    pub wait: bool,
}

fn yes() -> bool {
    true
}

/// A CodeDeploy application and deployment group for an ECS service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeDeploySettings {
    /// The application.
    pub application: String,
    /// The deployment group.
    pub deployment_group: String,
    /// Lifecycle hooks: hook name (`BeforeInstall`, `AfterInstall`,
    /// `AfterAllowTestTraffic`, `BeforeAllowTraffic`, `AfterAllowTraffic`) to the
    /// Lambda function it invokes.
    #[serde(default)]
    pub hooks: BTreeMap<String, String>,
    /// The container port the load balancer sends to (default: the container's
    /// first port mapping).
    #[serde(default)]
    pub container_port: Option<u16>,
}

/// The lifecycle hooks of CodeDeploy's ECS deployments.
pub const CODEDEPLOY_HOOKS: [&str; 5] = [
    "BeforeInstall",
    "AfterInstall",
    "AfterAllowTestTraffic",
    "BeforeAllowTraffic",
    "AfterAllowTraffic",
];

/// Where an environment runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// hoist's own runtime and load balancer on this machine.
    #[default]
    Local,
    /// An Amazon ECS service (its settings under `ecs:`).
    Ecs,
}

/// The gate before an environment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Approval {
    /// Deployed as soon as the stage before it succeeds.
    #[default]
    None,
    /// Waits for `hoist approve`.
    Manual,
}

/// A service file's settings but its name and image, which come from the app, the
/// environment and the build. Each field means what it means in
/// [`ServiceSpec`], and has the same default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSettings {
    /// See [`ServiceSpec::count`].
    #[serde(default = "default_count")]
    pub count: u32,
    /// See [`ServiceSpec::port`].
    #[serde(default)]
    pub port: Option<Port>,
    /// See [`ServiceSpec::entrypoint`].
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// See [`ServiceSpec::command`].
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// See [`ServiceSpec::env`].
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// See [`ServiceSpec::secrets`].
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// See [`ServiceSpec::user`].
    #[serde(default)]
    pub user: Option<String>,
    /// See [`ServiceSpec::read_only`].
    #[serde(default)]
    pub read_only: bool,
    /// See [`ServiceSpec::limits`].
    #[serde(default)]
    pub limits: LimitsSpec,
    /// See [`ServiceSpec::network`].
    #[serde(default)]
    pub network: NetworkMode,
    /// See [`ServiceSpec::stop_timeout`].
    #[serde(default = "default_stop_timeout", with = "human")]
    pub stop_timeout: Duration,
    /// See [`ServiceSpec::drain_timeout`].
    #[serde(default = "default_drain_timeout", with = "human")]
    pub drain_timeout: Duration,
    /// See [`ServiceSpec::health_check`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckSpec>,
    /// See [`ServiceSpec::listener`]; required for a local environment.
    #[serde(default)]
    pub listener: Option<ListenerSpec>,
    /// See [`ServiceSpec::deployment`].
    #[serde(default)]
    pub deployment: DeploymentSpec,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        ServiceSettings {
            count: default_count(),
            port: None,
            entrypoint: None,
            command: None,
            env: BTreeMap::new(),
            secrets: BTreeMap::new(),
            user: None,
            read_only: false,
            limits: LimitsSpec::default(),
            network: NetworkMode::default(),
            stop_timeout: default_stop_timeout(),
            drain_timeout: default_drain_timeout(),
            health_check: None,
            listener: None,
            deployment: DeploymentSpec::default(),
        }
    }
}

/// Who is told.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Notifications {
    /// HTTP endpoints sent a JSON event.
    pub webhooks: Vec<Webhook>,
}

/// An HTTP endpoint told about events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// `http://` or `https://` URL the event is POSTed to.
    pub url: String,
    /// Which events (default both).
    #[serde(default = "all_events")]
    pub events: BTreeSet<Event>,
    /// Secret (in hoist's store) keying an HMAC-SHA256 signature header.
    #[serde(default)]
    pub secret: Option<String>,
}

fn all_events() -> BTreeSet<Event> {
    [Event::Run, Event::Deployment].into()
}

/// What a webhook is told about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// A pipeline run started, finished or waits for approval.
    Run,
    /// A deployment started, finished or rolled back.
    Deployment,
}

/// A problem building an environment's service, with the field path inside the
/// environment (`service.listener`, `strategy.percent`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct EnvironmentError {
    /// Field path from the environment.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl Environment {
    /// What is wrong with a `target: ecs` environment: (field under the
    /// environment, message).
    fn ecs_problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let Some(ecs) = &self.ecs else {
            out.push((
                "ecs".to_owned(),
                "required for target ecs: cluster and service (and region, container, codedeploy)"
                    .to_owned(),
            ));
            return out;
        };
        for (field, value) in [("cluster", &ecs.cluster), ("service", &ecs.service)] {
            if value.trim().is_empty() {
                out.push((format!("ecs.{field}"), "empty".to_owned()));
            }
        }
        if self.service != ServiceSettings::default() {
            out.push((
                "service".to_owned(),
                "an ECS service's settings live in its task definition and service (see deploy/terraform); hoist sets only the image".to_owned(),
            ));
        }
        for (field, set) in [
            ("env", !self.env.is_empty()),
            ("secrets", !self.secrets.is_empty()),
            ("smoke", self.smoke.is_some()),
        ] {
            if set {
                out.push((
                    field.to_owned(),
                    "not used by an ECS environment: set it in the task definition".to_owned(),
                ));
            }
        }
        if let Some(cd) = &ecs.codedeploy {
            for hook in cd.hooks.keys() {
                if !CODEDEPLOY_HOOKS.contains(&hook.as_str()) {
                    out.push((
                        format!("ecs.codedeploy.hooks.{hook}"),
                        format!(
                            "not an ECS lifecycle hook ({})",
                            CODEDEPLOY_HOOKS.join(", ")
                        ),
                    ));
                }
            }
            if cd.application.trim().is_empty() || cd.deployment_group.trim().is_empty() {
                out.push((
                    "ecs.codedeploy".to_owned(),
                    "application and deployment_group are required".to_owned(),
                ));
            }
        }
        match (&self.strategy, &ecs.codedeploy) {
            (Some(Strategy::Rolling { .. }), Some(_)) => out.push((
                "strategy".to_owned(),
                "a CodeDeploy service deploys blue/green: use blue-green, canary or linear".to_owned(),
            )),
            (Some(Strategy::BlueGreen { .. } | Strategy::Canary { .. } | Strategy::Linear { .. }), None) => out.push((
                "strategy".to_owned(),
                "blue-green, canary and linear on ECS go through CodeDeploy: add ecs.codedeploy (application, deployment_group)".to_owned(),
            )),
            _ => {}
        }
        if let Some(Strategy::BlueGreen {
            test_listener: Some(_),
            ..
        }) = &self.strategy
        {
            out.push((
                "strategy".to_owned(),
                "the test listener of an ECS blue/green deployment is the deployment group's (Terraform), not hoist's".to_owned(),
            ));
        }
        out
    }

    /// The service this environment deploys: `<app>-<name>` running `image`, the
    /// environment's variables and secrets over the service's, its strategy over
    /// the service's; validated as a service file is.
    pub fn service_spec(&self, app: &str, image: &str) -> Result<ServiceSpec, EnvironmentError> {
        let err = |path: &str, message: String| EnvironmentError {
            path: path.to_owned(),
            message,
        };
        let name = Name::new(&format!("{app}-{}", self.name))
            .map_err(|m| err("name", format!("the service name {m}")))?;
        let s = &self.service;
        let listener = s.listener.clone().ok_or_else(|| {
            err(
                "service.listener",
                "required: where the environment is served (addr, and optionally host and path)"
                    .to_owned(),
            )
        })?;
        let ours = |k: &String| self.env.contains_key(k) || self.secrets.contains_key(k);
        let mut env: BTreeMap<String, String> = s.env.clone();
        let mut secrets: BTreeMap<String, String> = s.secrets.clone();
        env.retain(|k, _| !ours(k));
        secrets.retain(|k, _| !ours(k));
        env.extend(self.env.clone());
        secrets.extend(self.secrets.clone());
        let mut deployment = s.deployment.clone();
        if let Some(strategy) = &self.strategy {
            deployment.strategy = strategy.clone();
        }
        let spec = ServiceSpec {
            name,
            image: image.to_owned(),
            count: s.count,
            port: s.port,
            entrypoint: s.entrypoint.clone(),
            command: s.command.clone(),
            env,
            secrets,
            user: s.user.clone(),
            read_only: s.read_only,
            limits: s.limits.clone(),
            network: s.network,
            stop_timeout: s.stop_timeout,
            drain_timeout: s.drain_timeout,
            health_check: s.health_check.clone(),
            listener,
            deployment,
        };
        spec.validate().map_err(|m| self.service_error(&m))?;
        Ok(spec)
    }

    /// Places a message of [`ServiceSpec::validate`] (`listener.path: ...`) at the
    /// environment's field it came from.
    fn service_error(&self, message: &str) -> EnvironmentError {
        let Some((path, what)) = message.split_once(": ") else {
            return EnvironmentError {
                path: "service".to_owned(),
                message: message.to_owned(),
            };
        };
        let mine = |map: &BTreeMap<String, String>, rest: &str| match rest.strip_prefix('.') {
            Some(key) => map.contains_key(key),
            None => map.keys().any(|k| what.contains(&format!("{k:?}"))),
        };
        let path = if let Some(rest) = path.strip_prefix("deployment.strategy") {
            match self.strategy {
                Some(_) => format!("strategy{rest}"),
                None => format!("service.{path}"),
            }
        } else if let Some(rest) = path.strip_prefix("secrets") {
            if mine(&self.secrets, rest) {
                path.to_owned()
            } else {
                format!("service.{path}")
            }
        } else if let Some(rest) = path.strip_prefix("env") {
            if mine(&self.env, rest) || mine(&self.secrets, rest) {
                path.to_owned()
            } else {
                format!("service.{path}")
            }
        } else {
            format!("service.{path}")
        };
        EnvironmentError {
            path,
            message: what.to_owned(),
        }
    }
}

impl PipelineSpec {
    /// Reads and checks a `hoist.yml`; `file` names it in errors. Returns every
    /// problem the checks after parsing find, each with its line.
    pub fn parse(file: &str, text: &str) -> Result<PipelineSpec, SpecErrors> {
        let spec: PipelineSpec = parse_yaml(file, text)?;
        let at = Locator { file, text };
        let problems = spec.problems(|path| at.line(path));
        if problems.is_empty() {
            return Ok(spec);
        }
        Err(at.errors(problems))
    }

    /// The checks that involve more than one field, as (field path, message);
    /// `line_of` finds a field's line, for messages that name another place.
    fn problems(&self, line_of: impl Fn(&str) -> usize) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut problem = |path: String, message: &str| out.push((path, message.to_owned()));
        if self.environments.is_empty() {
            problem(
                "environments".to_owned(),
                "at least one environment is required",
            );
        }
        for (i, step) in self.test.iter().enumerate() {
            let at = format!("test[{i}]");
            if step.name.trim().is_empty() {
                problem(format!("{at}.name"), "empty");
            }
            if step.run.is_empty() || step.run.iter().any(|c| c.trim().is_empty()) {
                problem(format!("{at}.run"), "an empty command");
            }
            if step
                .image
                .as_deref()
                .is_some_and(|i| i.trim().is_empty() || i.contains(char::is_whitespace))
            {
                problem(format!("{at}.image"), "not an image reference");
            }
            if step.timeout.is_zero() {
                problem(format!("{at}.timeout"), "0s leaves the step no time");
            }
            if let Some(j) = self.test[..i].iter().position(|s| s.name == step.name) {
                problem(
                    format!("{at}.name"),
                    &format!("step name {:?} is used by test[{j}] too", step.name),
                );
            }
        }
        for (i, key) in self.cache.key.iter().enumerate() {
            if key.as_os_str().is_empty()
                || key.is_absolute()
                || key
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                problem(
                    format!("cache.key[{i}]"),
                    "a file inside the repository, relative to its root",
                );
            }
        }
        if self.cache.keep == 0 {
            problem("cache.keep".to_owned(), "keep at least 1 cache");
        }
        if let Some(registry) = &self.push.registry {
            // Valid when a repository under it parses, by the reference grammar the
            // push uses, with this host as its registry (not Docker Hub's default).
            let host = registry.split('/').next().unwrap_or_default();
            let under = hoist_oci::Reference::parse_normalized(&format!("{registry}/app:latest"));
            if !under.is_ok_and(|r| r.domain() == host) {
                problem(
                    "push.registry".to_owned(),
                    &format!("{registry:?}: expected host[:port][/namespace], such as 123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
                );
            }
        }
        if self.scan.scanners.is_empty() {
            problem(
                "scan.scanners".to_owned(),
                "no scanner; leave it out for all, or set scan.fail_on: none",
            );
        }
        for (i, env) in self.environments.iter().enumerate() {
            let at = format!("environments[{i}]");
            let same: Vec<String> = self
                .environments
                .iter()
                .enumerate()
                .filter(|(j, e)| *j != i && e.name == env.name)
                .map(|(j, _)| {
                    let other = format!("environments[{j}].name");
                    let line = line_of(&other);
                    format!("{other} (line {line})")
                })
                .collect();
            if !same.is_empty() {
                problem(
                    format!("{at}.name"),
                    &format!(
                        "environment name `{}` is also used by {}",
                        env.name,
                        same.join(", ")
                    ),
                );
            }
            if env.timeout.is_some_and(|t| t.is_zero()) {
                problem(format!("{at}.timeout"), "0s leaves the stage no time");
            }
            if env.target == Target::Ecs {
                for (field, message) in env.ecs_problems() {
                    problem(format!("{at}.{field}"), &message);
                }
                continue;
            }
            if env.ecs.is_some() {
                problem(
                    format!("{at}.ecs"),
                    "ECS settings need `target: ecs` (this environment runs on hoist's runtime)",
                );
            }
            if env.smoke.as_deref().is_some_and(|s| s.trim().is_empty()) {
                problem(format!("{at}.smoke"), "an empty command");
            }
            if let Err(e) = env.service_spec(self.app.as_str(), &format!("{}:latest", self.app)) {
                problem(format!("{at}.{}", e.path), &e.message);
            }
            if let Some(l) = &env.service.listener {
                let clash = self.environments[..i].iter().position(|o| {
                    o.target == Target::Local
                        && o.service.listener.as_ref().is_some_and(|m| {
                            m.addr == l.addr && m.host == l.host && m.path == l.path
                        })
                });
                if let Some(j) = clash {
                    problem(
                        format!("{at}.service.listener"),
                        &format!(
                            "the same listener as environment {} ({}, host {}, path {}): both would serve the same requests",
                            self.environments[j].name,
                            l.addr,
                            l.host.as_deref().unwrap_or("any"),
                            l.path
                        ),
                    );
                }
            }
        }
        for (i, hook) in self.notifications.webhooks.iter().enumerate() {
            let at = format!("notifications.webhooks[{i}]");
            if let Err(m) = check_url(&hook.url) {
                problem(format!("{at}.url"), &m);
            }
            if hook.events.is_empty() {
                problem(format!("{at}.events"), "no event; leave it out for all");
            }
            if hook.secret.as_deref().is_some_and(|s| s.trim().is_empty()) {
                problem(format!("{at}.secret"), "an empty secret name");
            }
        }
        out
    }
}

/// `http://host...` or `https://host...`, with a host and no spaces.
fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("{url:?} is not an http:// or https:// URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err(format!("{url:?} has no host"));
    }
    if url.contains(char::is_whitespace) {
        return Err(format!("{url:?} contains a space"));
    }
    Ok(())
}

/// A command or a list of commands.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct Commands;
    impl<'de> Visitor<'de> for Commands {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a command or a list of commands")
        }

        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Vec<String>, E> {
            Ok(vec![s.to_owned()])
        }

        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Vec<String>, A::Error> {
            Vec::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
        }
    }
    d.deserialize_any(Commands)
}

/// A strategy written short (`canary:10%:30s`) or as `hoist_deploy`'s mapping.
fn strategy_form<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Strategy>, D::Error> {
    struct Form;
    impl<'de> Visitor<'de> for Form {
        type Value = Strategy;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a strategy: rolling, blue-green:30s, canary:10%:30s, linear:25%:10s, or a mapping with `type`")
        }

        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Strategy, E> {
            s.parse().map_err(E::custom)
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Strategy, A::Error> {
            Strategy::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_any(Form).map(Some)
}
