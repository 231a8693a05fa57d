//! [`Engine::run`]: one run, stage after stage, each recorded before and after it
//! runs, each calling the library of its step.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use hoist_builder::{BuildOptions, Builder};
use hoist_deploy::client::{self, Outcome};
use hoist_deploy::controller;
use hoist_deploy::state::State;
use hoist_oci::{Reference, Store};
use hoist_pipeline_spec::buildspec::Buildspec;
use hoist_pipeline_spec::hoistfile::{Approval, Environment, PipelineSpec};
use hoist_pipeline_spec::imagedefs;

use crate::codebuild;
use crate::notify;
use crate::runs::{Commit, Runs, RunsError, Status};
use crate::shell::{self, Exit, ShellCommand};
use crate::source;

/// Why a run could not go on. Stage failures are recorded on the run; this is
/// what the caller sees of them.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The run history.
    #[error(transparent)]
    Runs(#[from] RunsError),
    /// A stage failed; the run is recorded as failed.
    #[error("run #{run}: {stage} failed: {message}")]
    Stage {
        /// The run.
        run: i64,
        /// The stage.
        stage: String,
        /// Why.
        message: String,
    },
}

/// What the caller sees of a run as it goes.
#[derive(Debug)]
pub enum Progress<'a> {
    /// The run was recorded.
    RunStarted {
        /// Its number.
        run: i64,
        /// Its source.
        commit: &'a Commit,
    },
    /// A stage moved.
    Stage {
        /// Its name.
        name: &'a str,
        /// Where it stands.
        status: Status,
        /// Its summary.
        message: Option<&'a str>,
    },
    /// A line of a stage's log.
    Line {
        /// The stage.
        stage: &'a str,
        /// The line.
        line: &'a str,
    },
}

/// Which environments a run deploys to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Through {
    /// The first only (`hoist up`): the person running it stands for its approval.
    First,
    /// Every environment in order, waiting at each `approval: manual` for a
    /// decision ([`Runs::decide`], `hoist approve`).
    All,
}

/// What a finished run gives back.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The run number.
    pub run: i64,
    /// The image, `name:tag`.
    pub image: String,
    /// Its manifest digest.
    pub digest: String,
    /// Per environment deployed: its name and URL.
    pub urls: Vec<(String, String)>,
}

/// The pipeline engine over one hoist home.
pub struct Engine {
    home: PathBuf,
    exe: PathBuf,
    store: Store,
    builder: Builder,
    runs: Runs,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("home", &self.home).finish()
    }
}

/// The stage names of a run of `spec`.
pub fn stage_names(spec: &PipelineSpec, buildspec: bool, through: Through) -> Vec<String> {
    let mut names = vec!["source".to_owned()];
    if !spec.test.is_empty() {
        names.push("test".to_owned());
    }
    if buildspec {
        names.push("buildspec".to_owned());
    }
    names.extend(["build", "scan", "push"].map(String::from));
    let envs = match through {
        Through::First => &spec.environments[..spec.environments.len().min(1)],
        Through::All => &spec.environments[..],
    };
    for env in envs {
        if through == Through::All && env.approval == Approval::Manual {
            names.push(format!("approval:{}", env.name));
        }
        names.push(format!("deploy:{}", env.name));
        names.push(format!("verify:{}", env.name));
    }
    names
}

/// A stage in progress: its log file, and its lines to the caller.
struct StageLog<'a> {
    name: String,
    log: Mutex<File>,
    observer: &'a (dyn Fn(&Progress<'_>) + Sync),
}

impl StageLog<'_> {
    fn line(&self, line: &str) {
        if let Ok(mut f) = self.log.lock() {
            let _ = writeln!(f, "{line}");
        }
        (self.observer)(&Progress::Line {
            stage: &self.name,
            line,
        });
    }
}

impl hoist_builder::Progress for StageLog<'_> {
    fn event(&self, event: &hoist_builder::Event) {
        use hoist_builder::Event;
        match event {
            Event::StepStarted {
                step,
                stage,
                index,
                total,
                instruction,
            } => self.line(&format!("#{step} [{stage} {index}/{total}] {instruction}")),
            Event::StepOutput { step, line, .. } => self.line(&format!("#{step} {line}")),
            Event::StepCached { step } => self.line(&format!("#{step} CACHED")),
            _ => {}
        }
    }
}

type StageResult = Result<String, String>;

/// How long a deployment may take when its environment gives no `timeout`.
const DEPLOY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1800);

/// How long one buildspec command may run.
const BUILDSPEC_COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

/// How long a smoke command may run when its environment gives no `timeout`.
const SMOKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

impl Engine {
    /// An engine over `home`, building with `builder` (over `store`), starting
    /// background processes (the deployment daemon) from the hoist binary `exe`.
    /// Runs left `running` by a process that died (killed mid-run) are marked
    /// failed first, so no run claims to go on that nothing drives.
    pub fn new(
        home: &Path,
        exe: &Path,
        store: Store,
        builder: Builder,
    ) -> Result<Engine, EngineError> {
        let runs = Runs::open(&home.join("pipeline"))?;
        for id in runs.abandon_dead("the process running it stopped before it finished")? {
            tracing::warn!("run #{id} was left unfinished by a process that died: marked failed");
        }
        Ok(Engine {
            home: home.to_owned(),
            exe: exe.to_owned(),
            store,
            builder,
            runs,
        })
    }

    /// The run history.
    pub fn runs(&self) -> &Runs {
        &self.runs
    }

    /// Runs `spec` on the working tree at `dir`: copies it into the run's
    /// workspace, then test, build, scan and deploy as [`stage_names`] lists.
    pub fn run_working_tree(
        &self,
        dir: &Path,
        spec: &PipelineSpec,
        buildspec: Option<&Buildspec>,
        trigger: &str,
        through: Through,
        observer: &(dyn Fn(&Progress<'_>) + Sync),
    ) -> Result<RunResult, EngineError> {
        let commit = source::working_tree_commit(dir).map_err(|e| EngineError::Stage {
            run: 0,
            stage: "source".into(),
            message: e.to_string(),
        })?;
        let names = stage_names(spec, buildspec.is_some(), through);
        let run = self
            .runs
            .create(spec.app.as_str(), trigger, &commit, &names)?;
        observer(&Progress::RunStarted {
            run,
            commit: &commit,
        });
        let mut ctx = RunContext {
            engine: self,
            run,
            workspace: self.runs.run_dir(run).join("src"),
            artifacts: self.runs.run_dir(run).join("artifacts"),
            cache: self
                .home
                .join("pipeline")
                .join("cache")
                .join(spec.app.as_str()),
            image: None,
            tags: Vec::new(),
            buildspec_image: None,
            exported: BTreeMap::new(),
            urls: Vec::new(),
            cancel: AtomicBool::new(false),
        };
        for (seq, name) in names.iter().enumerate() {
            let seq = seq as i64;
            self.runs.set_stage(run, seq, Status::Running, None)?;
            observer(&Progress::Stage {
                name,
                status: Status::Running,
                message: None,
            });
            let log = File::options()
                .create(true)
                .append(true)
                .open(self.runs.log_path(run, seq))
                .map_err(|e| EngineError::Stage {
                    run,
                    stage: name.clone(),
                    message: format!("opening its log: {e}"),
                })?;
            let stage = StageLog {
                name: name.clone(),
                log: Mutex::new(log),
                observer,
            };
            let result = ctx.stage(name, dir, &commit, spec, buildspec, &stage);
            let (status, message) = match &result {
                Ok(m) => (Status::Succeeded, m.as_str()),
                Err(m) => (Status::Failed, m.as_str()),
            };
            if let Some(env) = name.strip_prefix("deploy:") {
                let body = serde_json::json!({
                    "event": "deployment",
                    "run": run,
                    "app": spec.app.as_str(),
                    "environment": env,
                    "service": format!("{}-{env}", spec.app),
                    "image": ctx.image.as_ref().map(|(i, d)| client::pin(i, d)),
                    "status": status,
                    "message": message,
                });
                self.notify(spec, notify::Event::Deployment, &body, &|l| stage.line(l));
            }
            self.runs.set_stage(run, seq, status, Some(message))?;
            observer(&Progress::Stage {
                name,
                status,
                message: Some(message),
            });
            if let Err(message) = result {
                let error = format!("{name}: {message}");
                self.runs.finish(run, Status::Failed, Some(&error))?;
                self.notify_run(spec, run, observer);
                return Err(EngineError::Stage {
                    run,
                    stage: name.clone(),
                    message,
                });
            }
        }
        self.runs.finish(run, Status::Succeeded, None)?;
        self.notify_run(spec, run, observer);
        let (image, digest) = ctx.image.unwrap_or_default();
        Ok(RunResult {
            run,
            image,
            digest,
            urls: ctx.urls,
        })
    }
}

impl Engine {
    /// Sends `body` to the webhooks of `spec` that want `event`; each delivery's
    /// outcome goes to `log`.
    fn notify(
        &self,
        spec: &PipelineSpec,
        event: notify::Event,
        body: &serde_json::Value,
        log: &dyn Fn(&str),
    ) {
        if spec.notifications.webhooks.is_empty() {
            return;
        }
        for line in notify::send(&self.home, &spec.notifications.webhooks, event, body) {
            log(&line);
        }
    }

    /// The run event: the run as recorded, once it ended. Delivery outcomes are
    /// appended to the run's `notifications.log`.
    fn notify_run(&self, spec: &PipelineSpec, run: i64, observer: &(dyn Fn(&Progress<'_>) + Sync)) {
        if spec.notifications.webhooks.is_empty() {
            return;
        }
        let body = match self.runs.get(run) {
            Ok(Some(r)) => {
                let mut v = serde_json::to_value(&r).unwrap_or_default();
                v["event"] = "run".into();
                v
            }
            _ => return,
        };
        let path = self.runs.run_dir(run).join("notifications.log");
        let file = Mutex::new(File::options().create(true).append(true).open(&path).ok());
        self.notify(spec, notify::Event::Run, &body, &|line| {
            if let Ok(mut f) = file.lock() {
                if let Some(f) = f.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
            }
            observer(&Progress::Line {
                stage: "notify",
                line,
            });
        });
    }
}

/// What stages hand on to the next.
struct RunContext<'a> {
    engine: &'a Engine,
    run: i64,
    workspace: PathBuf,
    artifacts: PathBuf,
    /// The app's cache, kept between runs.
    cache: PathBuf,
    /// `name:tag` and digest, once built; the registry's `host/name:tag` once pushed.
    image: Option<(String, String)>,
    /// Every tag given to the build, `name:tag`.
    tags: Vec<String>,
    /// The image a buildspec's `imagedefinitions.json` names.
    buildspec_image: Option<String>,
    /// A buildspec's `exported-variables`, seen by every later command.
    exported: BTreeMap<String, String>,
    urls: Vec<(String, String)>,
    cancel: AtomicBool,
}

impl RunContext<'_> {
    fn stage(
        &mut self,
        name: &str,
        dir: &Path,
        commit: &Commit,
        spec: &PipelineSpec,
        buildspec: Option<&Buildspec>,
        log: &StageLog<'_>,
    ) -> StageResult {
        match name.split_once(':') {
            None if name == "source" => self.source(dir, log),
            None if name == "test" => self.test(spec, commit, log),
            None if name == "buildspec" => match buildspec {
                Some(b) => self.buildspec(b, spec, commit, log),
                None => Err("no buildspec.yml".to_owned()),
            },
            None if name == "build" => self.build(spec, commit, log),
            None if name == "scan" => self.scan(spec, log),
            None if name == "push" => self.push(log),
            Some(("deploy", env)) => {
                let env = environment(spec, env)?;
                self.deploy(spec, env, log)
            }
            Some(("approval", env)) => self.approval(env, log),
            Some(("verify", env)) => {
                let env = environment(spec, env)?;
                self.verify(env, commit, log)
            }
            _ => Err(format!("unknown stage {name:?}")),
        }
    }

    fn source(&mut self, dir: &Path, log: &StageLog<'_>) -> StageResult {
        std::fs::create_dir_all(&self.cache)
            .map_err(|e| format!("{}: {e}", self.cache.display()))?;
        let n = source::copy_working_tree(dir, &self.workspace).map_err(|e| e.to_string())?;
        let msg = format!("{n} files from {} into the run's workspace", dir.display());
        log.line(&msg);
        Ok(msg)
    }

    /// Variables every command of the run sees. `HOIST_CACHE_DIR` is a directory
    /// kept from run to run of the app (a compiler's target dir, downloaded
    /// dependencies), apart from the run's fresh workspace.
    fn run_env(&self, commit: &Commit) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        env.insert("CI".to_owned(), "true".to_owned());
        env.insert(
            "HOIST_CACHE_DIR".to_owned(),
            self.cache.display().to_string(),
        );
        env.insert("HOIST_RUN".to_owned(), self.run.to_string());
        env.insert("HOIST_COMMIT".to_owned(), commit.sha.clone());
        if let Some(b) = &commit.branch {
            env.insert("HOIST_BRANCH".to_owned(), b.clone());
        }
        if let Some((image, digest)) = &self.image {
            env.insert("HOIST_IMAGE".to_owned(), image.clone());
            env.insert("HOIST_IMAGE_DIGEST".to_owned(), digest.clone());
        }
        env.extend(self.exported.clone());
        env
    }

    fn shell(
        &self,
        script: &str,
        env: &BTreeMap<String, String>,
        timeout: std::time::Duration,
        log: &StageLog<'_>,
    ) -> Result<(), String> {
        log.line(&format!("$ {script}"));
        let cmd = ShellCommand {
            script,
            dir: &self.workspace,
            env,
            timeout,
        };
        let mut sink = std::io::sink();
        let exit = shell::run(&cmd, &mut sink, &mut |l| log.line(l), &self.cancel)
            .map_err(|e| format!("starting sh: {e}"))?;
        match exit {
            Exit::Success => Ok(()),
            other => Err(format!("`{script}` {other}")),
        }
    }

    fn test(&mut self, spec: &PipelineSpec, commit: &Commit, log: &StageLog<'_>) -> StageResult {
        for step in &spec.test {
            if let Some(image) = &step.image {
                return Err(format!(
                    "test {:?}: running tests inside an image ({image}) is not supported yet; run them on the host",
                    step.name
                ));
            }
            let mut env = self.run_env(commit);
            env.extend(step.env.clone());
            log.line(&format!("--- {}", step.name));
            for script in &step.run {
                self.shell(script, &env, step.timeout, log)
                    .map_err(|e| format!("test {:?}: {e}", step.name))?;
            }
        }
        Ok(format!("{} test steps passed", spec.test.len()))
    }

    /// CodeBuild's phases (`codebuild`), as the first half of the build: an
    /// `imagedefinitions.json` they write names the image (built by them, or by the
    /// build stage from the Dockerfile under that name).
    fn buildspec(
        &mut self,
        buildspec: &Buildspec,
        spec: &PipelineSpec,
        commit: &Commit,
        log: &StageLog<'_>,
    ) -> StageResult {
        codebuild::check_offline(buildspec).map_err(|e| e.to_string())?;
        let mut env = self.run_env(commit);
        env.extend(codebuild::codebuild_env(
            &self.workspace,
            &codebuild::BuildInfo {
                project: spec.app.as_str(),
                build_number: self.run as u64,
                source_version: &commit.sha,
            },
        ));
        let out_dir = self.artifacts.join("buildspec");
        let run = codebuild::BuildspecRun {
            workspace: &self.workspace,
            env: &env,
            command_timeout: BUILDSPEC_COMMAND_TIMEOUT,
            artifacts_dir: Some(&out_dir),
        };
        let mut sink = std::io::sink();
        let outcome = codebuild::run(
            buildspec,
            &run,
            &mut sink,
            &mut |l| log.line(l),
            &self.cancel,
        )
        .map_err(|e| e.to_string())?;
        let phases: Vec<String> = outcome
            .phases
            .iter()
            .map(|(p, st)| format!("{p} {st}"))
            .collect();
        if !outcome.succeeded {
            return Err(outcome
                .failure
                .unwrap_or_else(|| format!("the buildspec failed ({})", phases.join(", "))));
        }
        for (k, v) in &outcome.exported {
            log.line(&format!("exported {k}={v}"));
        }
        self.exported = outcome.exported;
        let base = buildspec
            .artifacts
            .as_ref()
            .and_then(|a| a.base_directory.as_deref());
        let found =
            codebuild::image_from_outputs(&self.workspace, &out_dir, base, spec.app.as_str())
                .map_err(|e| e.to_string())?;
        let named = match found {
            Some(f) => {
                let msg = format!("; {} names {}", f.file.display(), f.image);
                self.buildspec_image = Some(f.image);
                msg
            }
            None => String::new(),
        };
        Ok(format!("{}{named}", phases.join(", ")))
    }

    fn build(&mut self, spec: &PipelineSpec, commit: &Commit, log: &StageLog<'_>) -> StageResult {
        let app = spec.app.as_str();
        if let Some(named) = self.buildspec_image.clone() {
            // Built by the buildspec itself: take it as it is.
            if let Ok(record) = self.engine.store.resolve(&named) {
                let digest = record.digest.to_string();
                self.engine
                    .runs
                    .set_image(self.run, &client::pin(&named, &digest))
                    .map_err(|e| e.to_string())?;
                log.line(&format!("{named} was built by the buildspec"));
                self.image = Some((named.clone(), digest.clone()));
                self.tags = vec![named.clone()];
                return Ok(format!("{named} ({digest}), built by the buildspec"));
            }
            if !self.workspace.join(&spec.build.dockerfile).is_file() {
                return Err(format!(
                    "imagedefinitions.json names {named}, which is not in hoist's store, and there is no {} to build it from",
                    spec.build.dockerfile.display()
                ));
            }
        }
        let version = if commit.sha.is_empty() {
            format!("run{}", self.run)
        } else if commit.dirty {
            format!(
                "{}-dirty.run{}",
                &commit.sha[..commit.sha.len().min(12)],
                self.run
            )
        } else {
            commit.sha.clone()
        };
        let mut tags = vec![format!("{app}:{version}")];
        // The buildspec named the image: the Dockerfile's build gets that name first.
        if let Some(named) = &self.buildspec_image {
            tags.insert(0, named.clone());
        }
        if let Some(branch) = &commit.branch {
            let t = source::tag_of(branch);
            if !t.is_empty() {
                tags.push(format!("{app}:{t}"));
            }
        }
        let context = self.workspace.join(&spec.build.context);
        let mut opts = BuildOptions::new(&context);
        opts.dockerfile = Some(self.workspace.join(&spec.build.dockerfile));
        for t in &tags {
            let r: Reference = t.parse().map_err(|e| format!("tag {t:?}: {e}"))?;
            opts.tags.push(r);
        }
        opts.build_args = spec.build.args.clone();
        opts.target = spec.build.target.clone();
        let out = self
            .engine
            .builder
            .build(&opts, log)
            .map_err(|e| e.to_string())?;
        let digest = out.manifest.digest.to_string();
        let image = tags[0].clone();
        // What CodePipeline's ECS actions read: the image per container, and the
        // image by digest for blue/green.
        let defs = imagedefs::ImageDefinitions(vec![imagedefs::ImageDefinition {
            name: app.to_owned(),
            image_uri: image.clone(),
        }]);
        let detail = imagedefs::ImageDetail {
            image_uri: client::pin(&image, &digest),
        };
        std::fs::create_dir_all(&self.artifacts)
            .map_err(|e| format!("{}: {e}", self.artifacts.display()))?;
        write_text(
            &self.artifacts.join("imagedefinitions.json"),
            &defs.to_json(),
        )?;
        write_text(&self.artifacts.join("imageDetail.json"), &detail.to_json())?;
        self.engine
            .runs
            .set_image(self.run, &client::pin(&image, &digest))
            .map_err(|e| e.to_string())?;
        let msg = format!(
            "{image} ({digest}), {} steps, {} from the cache",
            out.steps, out.cached
        );
        self.image = Some((image, digest));
        self.tags = tags;
        Ok(msg)
    }

    fn scan(&mut self, spec: &PipelineSpec, log: &StageLog<'_>) -> StageResult {
        use hoist_pipeline_spec::hoistfile::Scanner as Kind;
        let (image, _) = self.image.clone().ok_or("no image was built")?;
        let policy = &spec.scan;
        let db = if policy.scanners.contains(&Kind::Vuln) {
            Some(
                hoist_vulndb::Db::open(&self.engine.home.join("vulndb"))
                    .map_err(|e| e.to_string())?,
            )
        } else {
            None
        };
        let secrets = if policy.scanners.contains(&Kind::Secret) {
            Some(
                hoist_secretscan::Scanner::with_config(&hoist_secretscan::Config::default())
                    .map_err(|e| e.to_string())?,
            )
        } else {
            None
        };
        let options = hoist_scan::scan::Options {
            vulnerabilities: db.as_ref(),
            secrets: secrets.as_ref(),
            max_db_age: None,
            misconfig: policy.scanners.contains(&Kind::Misconfig),
        };
        let record = self
            .engine
            .store
            .resolve(&image)
            .map_err(|e| e.to_string())?;
        let mut report = hoist_scan::scan::scan(
            hoist_scan::scan::Source::Image {
                store: &self.engine.store,
                image: &record,
                name: image.clone(),
            },
            &options,
        )
        .map_err(|e| e.to_string())?;
        let ignore = match &policy.ignore_file {
            Some(p) => Some(self.workspace.join(p)),
            None => Some(self.workspace.join(".hoistignore")).filter(|p| p.is_file()),
        };
        if let Some(path) = ignore {
            let file = hoist_scan::ignore::IgnoreFile::read(&path).map_err(|e| e.to_string())?;
            file.apply(&mut report, time::OffsetDateTime::now_utc().date());
        }
        for w in &report.warnings {
            log.line(&format!("warning: {w}"));
        }
        let fail_on = severity(policy.fail_on);
        let verdict = hoist_scan::gate::evaluate(&report, fail_on);
        let path = self.artifacts.join("scan.json");
        hoist_oci::write_atomic(&path, |f| hoist_scan::format::json(&report, f))
            .map_err(|e| e.to_string())?;
        let summary = format!(
            "{} vulnerabilities, {} secrets, {} misconfigurations (report: {})",
            report.vulnerabilities.len(),
            report.secrets.len(),
            report.misconfigurations.len(),
            path.display()
        );
        log.line(&summary);
        if verdict.failed() {
            return Err(format!(
                "gate: {} findings at {} or above; {summary}",
                verdict.failing,
                fail_on.map_or("", hoist_scan::Severity::as_str)
            ));
        }
        Ok(summary)
    }

    /// Waits for the decision on the gate before `env` (`hoist approve`, `hoist
    /// reject`, or the server's API), showing the stage as waiting meanwhile.
    fn approval(&mut self, env: &str, log: &StageLog<'_>) -> StageResult {
        let runs = &self.engine.runs;
        let seq = runs
            .get(self.run)
            .map_err(|e| e.to_string())?
            .and_then(|r| {
                r.stages
                    .iter()
                    .find(|s| s.name == format!("approval:{env}"))
                    .map(|s| s.seq)
            })
            .ok_or("the approval stage vanished")?;
        let waiting = format!(
            "waiting for approval: hoist approve {} --env {env} (or hoist reject)",
            self.run
        );
        runs.set_stage(self.run, seq, Status::Waiting, Some(&waiting))
            .map_err(|e| e.to_string())?;
        (log.observer)(&Progress::Stage {
            name: &log.name,
            status: Status::Waiting,
            message: Some(&waiting),
        });
        loop {
            if let Some((approved, by)) = runs.decision(self.run, env).map_err(|e| e.to_string())? {
                return if approved {
                    Ok(format!("approved by {by}"))
                } else {
                    Err(format!("rejected by {by}"))
                };
            }
            if self.cancel.load(std::sync::atomic::Ordering::SeqCst) {
                return Err("cancelled while waiting for approval".into());
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    }

    /// Pushes every tag of the image to hoist's embedded registry (started in the
    /// background when none serves `<home>/registry`); later stages deploy the
    /// registry's reference, as ECS deploys an ECR image.
    fn push(&mut self, log: &StageLog<'_>) -> StageResult {
        let (image, digest) = self.image.clone().ok_or("no image was built")?;
        let addr = ensure_registry(&self.engine.exe, &self.engine.home)?;
        let client = hoist_registry_client::Client::new(Default::default());
        let mut pushed = Vec::new();
        for tag in &self.tags {
            let dest_text = format!("{addr}/{tag}");
            let dest: Reference = dest_text.parse().map_err(|e| format!("{dest_text}: {e}"))?;
            let report = client
                .push(&self.engine.store, tag, &dest, &|_| {})
                .map_err(|e| format!("pushing {tag} to {dest_text}: {e}"))?;
            if report.digest.to_string() != digest {
                return Err(format!(
                    "{dest_text}: the registry names the image {}, not {digest}",
                    report.digest
                ));
            }
            log.line(&format!(
                "pushed {dest_text}: {} blobs uploaded, {} already there",
                report.blobs_copied, report.blobs_skipped
            ));
            pushed.push(dest_text);
        }
        let first = pushed.first().cloned().unwrap_or(image);
        let msg = client::pin(&first, &digest);
        self.image = Some((first, digest));
        Ok(msg)
    }

    fn deploy(
        &mut self,
        spec: &PipelineSpec,
        env: &Environment,
        log: &StageLog<'_>,
    ) -> StageResult {
        let (image, digest) = self.image.clone().ok_or("no image was built")?;
        let service = env
            .service_spec(spec.app.as_str(), &image)
            .map_err(|e| e.to_string())?;
        let home = &self.engine.home;
        let origin = format!("hoist.yml: environments.{}", env.name);
        client::check(home, &self.engine.store, &service, &digest, &origin)
            .map_err(|e| e.to_string())?;
        let state = State::open(&controller::state_path(home)).map_err(|e| e.to_string())?;
        let pinned = client::pin(&image, &digest);
        let id = state
            .submit(&service, &pinned, &digest, "deploy")
            .map_err(|e| e.to_string())?;
        client::ensure_daemon(&self.engine.exe, home).map_err(|e| e.to_string())?;
        log.line(&format!("deployment #{id} of {} ({pinned})", service.name));
        let timeout = env.timeout.unwrap_or(DEPLOY_TIMEOUT);
        let outcome = client::wait(&state, service.name.as_str(), id, Some(timeout), |e| {
            log.line(&format!("{:<18} {}", e.kind, e.message));
        })
        .map_err(|e| e.to_string())?;
        match outcome {
            Outcome::Succeeded => {
                let l = &service.listener;
                let scheme = if l.tls.is_some() { "https" } else { "http" };
                let url = format!("{scheme}://{}{}", l.addr, l.path);
                self.urls.push((env.name.to_string(), url.clone()));
                Ok(format!("deployment #{id} of {} serves {url}", service.name))
            }
            Outcome::RolledBack { reason } => Err(format!(
                "deployment #{id} failed and was rolled back: {reason}"
            )),
            Outcome::Failed { reason } => Err(format!("deployment #{id} failed: {reason}")),
            Outcome::Superseded { reason } => {
                Err(format!("deployment #{id} was superseded: {reason}"))
            }
        }
    }

    fn verify(&mut self, env: &Environment, commit: &Commit, log: &StageLog<'_>) -> StageResult {
        let url = self
            .urls
            .iter()
            .find(|(e, _)| *e == env.name.to_string())
            .map(|(_, u)| u.clone())
            .ok_or("the environment was not deployed")?;
        let Some(smoke) = &env.smoke else {
            return Ok(format!("healthy at {url} (no smoke command)"));
        };
        let mut vars = self.run_env(commit);
        vars.insert("HOIST_URL".to_owned(), url.clone());
        vars.insert("HOIST_ENVIRONMENT".to_owned(), env.name.to_string());
        let timeout = env.timeout.unwrap_or(SMOKE_TIMEOUT);
        self.shell(smoke, &vars, timeout, log)?;
        Ok(format!("smoke command passed against {url}"))
    }
}

/// The address of hoist's embedded registry on `home`, started in the background
/// (`hoist registry serve` on a free loopback port) when none serves it.
fn ensure_registry(exe: &Path, home: &Path) -> Result<std::net::SocketAddr, String> {
    let root = home.join("registry");
    if let Some(addr) = hoist_registry::announce::serving(&root) {
        return Ok(addr);
    }
    let log = root.join("serve.log");
    client::spawn_detached(
        exe,
        home,
        &["registry", "serve", "--detached", "--addr", "127.0.0.1:0"],
        &log,
    )
    .map_err(|e| e.to_string())?;
    client::wait_for(
        || hoist_registry::announce::serving(&root).is_some(),
        "hoist's registry",
        &log,
    )
    .map_err(|e| e.to_string())?;
    hoist_registry::announce::serving(&root)
        .ok_or_else(|| format!("hoist's registry stopped; see {}", log.display()))
}

fn environment<'s>(spec: &'s PipelineSpec, name: &str) -> Result<&'s Environment, String> {
    spec.environments
        .iter()
        .find(|e| e.name.as_str() == name)
        .ok_or_else(|| format!("no environment {name:?}"))
}

/// The scan gate's threshold (`none`: no gate).
fn severity(s: hoist_pipeline_spec::hoistfile::Severity) -> Option<hoist_scan::Severity> {
    use hoist_pipeline_spec::hoistfile::Severity as S;
    match s {
        S::Critical => Some(hoist_scan::Severity::Critical),
        S::High => Some(hoist_scan::Severity::High),
        S::Medium => Some(hoist_scan::Severity::Medium),
        S::Low => Some(hoist_scan::Severity::Low),
        S::None => None,
    }
}

fn write_text(path: &Path, text: &str) -> Result<(), String> {
    hoist_oci::write_atomic(path, |f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("{}: {e}", path.display()))
}
