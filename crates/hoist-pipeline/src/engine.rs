//! [`Engine::run`]: one run, stage after stage, each recorded before and after it
//! runs, each calling the library of its step.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use hoist_builder::{BuildOptions, Builder};
use hoist_deploy::client::{self, Outcome};
use hoist_deploy::controller;
use hoist_deploy::state::State;
use hoist_oci::{Reference, Store};
use hoist_pipeline_spec::buildspec::Buildspec;
use hoist_pipeline_spec::hoistfile::{Approval, Environment, PipelineSpec, Target};
use hoist_pipeline_spec::imagedefs;

use crate::codebuild;
use crate::notify;
use crate::runs::{Commit, Run, Runs, RunsError, Status};
use crate::shell::{self, Exit, ShellCommand};
use crate::source;
use serde::{Deserialize, Serialize};

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
    /// One lock per service: one deployment per environment at a time.
    deploying: Mutex<BTreeMap<String, Arc<Mutex<()>>>>,
    /// Runs test steps that name an `image`.
    containers: Option<hoist_runtime::Runtime>,
    /// How the push stage talks to registries (credentials, plain HTTP).
    registry_options: hoist_registry_client::ClientOptions,
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
        Engine::open(home, exe, store, builder, None)
    }

    /// [`Engine::new`] with the run history in the PostgreSQL database at
    /// `database` when given (see [`Runs::open_with`]).
    pub fn open(
        home: &Path,
        exe: &Path,
        store: Store,
        builder: Builder,
        database: Option<&str>,
    ) -> Result<Engine, EngineError> {
        let runs = Runs::open_with(&home.join("pipeline"), database)?;
        for id in runs.abandon_dead("the process running it stopped before it finished")? {
            tracing::warn!("run #{id} was left unfinished by a process that died: marked failed");
        }
        Ok(Engine {
            home: home.to_owned(),
            exe: exe.to_owned(),
            store,
            builder,
            runs,
            deploying: Mutex::default(),
            containers: None,
            registry_options: Default::default(),
        })
    }

    /// Runs test steps that name an `image` in containers of `runtime` (without
    /// one, such steps fail with a message saying so).
    pub fn with_containers(mut self, runtime: hoist_runtime::Runtime) -> Engine {
        self.containers = Some(runtime);
        self
    }

    /// The push stage's registry client options: the credentials (ECR's among
    /// them) for a `push.registry`.
    pub fn with_registry_options(
        mut self,
        options: hoist_registry_client::ClientOptions,
    ) -> Engine {
        self.registry_options = options;
        self
    }

    /// The image store it builds into.
    pub fn store(&self) -> &Store {
        &self.store
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
        self.drive(
            run,
            &Source::WorkingTree(dir),
            &commit,
            Some((spec, buildspec)),
            observer,
        )
    }

    /// Runs (or resumes) a run of the server's queue that this process
    /// [`Runs::claim`]ed: its source stage checks out the commit from `mirror` and
    /// reads the pipeline there (hoist.yml, or a buildspec.yml), which records the
    /// rest of the stages, every environment in order. A resumed run goes on from
    /// its first stage that did not succeed, with what the earlier ones handed on.
    pub fn run_queued(
        &self,
        run: &Run,
        mirror: &source::Mirror,
        observer: &(dyn Fn(&Progress<'_>) + Sync),
    ) -> Result<RunResult, EngineError> {
        if run.stages.is_empty() {
            self.runs.set_stages(run.id, 0, &["source".to_owned()])?;
        }
        observer(&Progress::RunStarted {
            run: run.id,
            commit: &run.commit,
        });
        self.drive(run.id, &Source::Commit(mirror), &run.commit, None, observer)
    }

    /// Runs the stages of `run` that did not succeed yet, in order, watching for a
    /// cancel request meanwhile. `pipeline` is the pipeline when the caller has it;
    /// otherwise it is read from the run's workspace once the source stage made it.
    fn drive(
        &self,
        run: i64,
        src: &Source<'_>,
        commit: &Commit,
        pipeline: Option<(&PipelineSpec, Option<&Buildspec>)>,
        observer: &(dyn Fn(&Progress<'_>) + Sync),
    ) -> Result<RunResult, EngineError> {
        let cancel = Arc::new(AtomicBool::new(false));
        let done = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                while !done.load(Ordering::SeqCst) {
                    if self.runs.cancel_requested(run).unwrap_or(false) {
                        cancel.store(true, Ordering::SeqCst);
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(250));
                }
            });
            let result = self.drive_stages(run, src, commit, pipeline, &cancel, observer);
            done.store(true, Ordering::SeqCst);
            result
        })
    }

    fn drive_stages(
        &self,
        run: i64,
        src: &Source<'_>,
        commit: &Commit,
        pipeline: Option<(&PipelineSpec, Option<&Buildspec>)>,
        cancel: &Arc<AtomicBool>,
        observer: &(dyn Fn(&Progress<'_>) + Sync),
    ) -> Result<RunResult, EngineError> {
        let facts = match self.runs.state(run)? {
            Some(json) => serde_json::from_str(&json).unwrap_or_default(),
            None => Facts::default(),
        };
        let mut ctx = RunContext {
            engine: self,
            run,
            workspace: self.runs.run_dir(run).join("src"),
            artifacts: self.runs.run_dir(run).join("artifacts"),
            cache: PathBuf::new(),
            facts,
            cancel,
        };
        let mut read: Option<(PipelineSpec, Option<Buildspec>)> = None;
        let mut last_spec: Option<PipelineSpec> = None;
        loop {
            let record = self.runs.get(run)?.ok_or(RunsError::NoRun(run))?;
            let Some(stage) = record
                .stages
                .iter()
                .find(|s| s.status != Status::Succeeded)
                .cloned()
            else {
                break;
            };
            if stage.name != "source" && pipeline.is_none() && read.is_none() {
                match hoist_pipeline_spec::load::pipeline_in(&ctx.workspace, None) {
                    Ok(p) => read = Some(p),
                    Err(e) => {
                        let error = format!("reading the pipeline of the checkout: {e}");
                        self.runs.finish(run, Status::Failed, Some(&error))?;
                        return Err(EngineError::Stage {
                            run,
                            stage: stage.name,
                            message: error,
                        });
                    }
                }
            }
            let pipe = pipeline.or(read.as_ref().map(|(s, b)| (s, b.as_ref())));
            if let Some((spec, _)) = pipe {
                // Once the workspace is there: a keyed cache reads its key files.
                if stage.name != "source" && ctx.cache.as_os_str().is_empty() {
                    ctx.cache = cache_dir(&self.home, spec, &ctx.workspace).map_err(|message| {
                        EngineError::Stage {
                            run,
                            stage: stage.name.clone(),
                            message,
                        }
                    })?;
                }
                last_spec = Some(spec.clone());
            }
            if cancel.load(Ordering::SeqCst) {
                self.runs
                    .finish(run, Status::Cancelled, Some("cancelled"))?;
                if let Some(spec) = &last_spec {
                    self.notify_run(spec, run, observer);
                }
                return Err(EngineError::Stage {
                    run,
                    stage: stage.name,
                    message: "cancelled".into(),
                });
            }
            self.run_stage(
                &mut ctx,
                &stage.name,
                stage.seq,
                src,
                commit,
                pipe,
                observer,
            )?;
        }
        self.runs.finish(run, Status::Succeeded, None)?;
        if let Some(spec) = &last_spec {
            self.notify_run(spec, run, observer);
        }
        let (image, digest) = ctx.facts.image.unwrap_or_default();
        Ok(RunResult {
            run,
            image,
            digest,
            urls: ctx.facts.urls,
        })
    }

    /// Runs one stage, recorded before and after; a failure ends the run.
    #[allow(clippy::too_many_arguments)]
    fn run_stage(
        &self,
        ctx: &mut RunContext<'_>,
        name: &str,
        seq: i64,
        src: &Source<'_>,
        commit: &Commit,
        pipe: Option<(&PipelineSpec, Option<&Buildspec>)>,
        observer: &(dyn Fn(&Progress<'_>) + Sync),
    ) -> Result<(), EngineError> {
        let run = ctx.run;
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
                stage: name.to_owned(),
                message: format!("opening its log: {e}"),
            })?;
        let stage = StageLog {
            name: name.to_owned(),
            log: Mutex::new(log),
            observer,
        };
        let result = match (name, pipe) {
            ("source", _) => ctx.source(src, commit, &stage),
            (_, Some((spec, buildspec))) => ctx.stage(name, commit, spec, buildspec, &stage),
            (_, None) => Err("no pipeline was read".to_owned()),
        };
        let cancelled = result.is_err() && ctx.cancel.load(Ordering::SeqCst);
        let (status, message) = match &result {
            Ok(m) => (Status::Succeeded, m.as_str()),
            Err(_) if cancelled => (Status::Cancelled, "cancelled"),
            Err(m) => (Status::Failed, m.as_str()),
        };
        if let (Some(env), Some((spec, _))) = (name.strip_prefix("deploy:"), pipe) {
            let body = serde_json::json!({
                "event": "deployment",
                "run": run,
                "app": spec.app.as_str(),
                "environment": env,
                "service": format!("{}-{env}", spec.app),
                "image": ctx.facts.image.as_ref().map(|(i, d)| client::pin(i, d)),
                "status": status,
                "message": message,
            });
            self.notify(spec, notify::Event::Deployment, &body, &|l| stage.line(l));
        }
        let state = serde_json::to_string(&ctx.facts).unwrap_or_default();
        self.runs.save_state(run, &state)?;
        self.runs.set_stage(run, seq, status, Some(message))?;
        observer(&Progress::Stage {
            name,
            status,
            message: Some(message),
        });
        if let Err(message) = result {
            let error = format!("{name}: {message}");
            let end = if cancelled {
                Status::Cancelled
            } else {
                Status::Failed
            };
            self.runs.finish(run, end, Some(&error))?;
            if let Some((spec, _)) = pipe {
                self.notify_run(spec, run, observer);
            }
            return Err(EngineError::Stage {
                run,
                stage: name.to_owned(),
                message,
            });
        }
        Ok(())
    }
}

/// Where a run's files come from.
#[derive(Debug)]
pub enum Source<'a> {
    /// A working tree, copied as git sees it (`hoist up`).
    WorkingTree(&'a Path),
    /// A commit of a repository, checked out clean (`hoist server`).
    Commit(&'a source::Mirror),
}

/// What stages hand on to later ones, kept with the run so that a resumed run
/// has it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Facts {
    /// `name:tag` and digest, once built; the registry's `host/name:tag` once pushed.
    image: Option<(String, String)>,
    /// Every tag given to the build, `name:tag`.
    tags: Vec<String>,
    /// The image a buildspec's `imagedefinitions.json` names.
    buildspec_image: Option<String>,
    /// A buildspec's `exported-variables`, seen by every later command.
    exported: BTreeMap<String, String>,
    /// Per environment deployed: its URL.
    urls: Vec<(String, String)>,
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

/// A run as it goes.
struct RunContext<'a> {
    engine: &'a Engine,
    run: i64,
    workspace: PathBuf,
    artifacts: PathBuf,
    /// The app's cache, kept between runs.
    cache: PathBuf,
    facts: Facts,
    cancel: &'a Arc<AtomicBool>,
}

impl RunContext<'_> {
    fn stage(
        &mut self,
        name: &str,
        commit: &Commit,
        spec: &PipelineSpec,
        buildspec: Option<&Buildspec>,
        log: &StageLog<'_>,
    ) -> StageResult {
        match name.split_once(':') {
            None if name == "test" => self.test(spec, commit, log),
            None if name == "buildspec" => match buildspec {
                Some(b) => self.buildspec(b, spec, commit, log),
                None => Err("no buildspec.yml".to_owned()),
            },
            None if name == "build" => self.build(spec, commit, log),
            None if name == "scan" => self.scan(spec, log),
            None if name == "push" => self.push(spec, log),
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

    /// The run's workspace: the working tree's copy, or a clean checkout of the
    /// commit, whose pipeline then names the rest of the run's stages.
    fn source(&mut self, src: &Source<'_>, commit: &Commit, log: &StageLog<'_>) -> StageResult {
        match src {
            Source::WorkingTree(dir) => {
                let n =
                    source::copy_working_tree(dir, &self.workspace).map_err(|e| e.to_string())?;
                let msg = format!("{n} files from {} into the run's workspace", dir.display());
                log.line(&msg);
                Ok(msg)
            }
            Source::Commit(mirror) => {
                // Fetches when the mirror lacks the commit (a push just announced).
                mirror
                    .commit(&commit.sha, commit.branch.as_deref())
                    .map_err(|e| e.to_string())?;
                let n = mirror
                    .checkout(&commit.sha, &self.workspace)
                    .map_err(|e| e.to_string())?;
                log.line(&format!(
                    "{n} files of {} at {} checked out",
                    mirror.url, commit.sha
                ));
                let (spec, buildspec) =
                    hoist_pipeline_spec::load::pipeline_in(&self.workspace, None)
                        .map_err(|e| e.to_string())?;
                let names = stage_names(&spec, buildspec.is_some(), Through::All);
                let runs = &self.engine.runs;
                runs.set_stages(self.run, 1, &names[1..])
                    .map_err(|e| e.to_string())?;
                runs.set_app(self.run, spec.app.as_str())
                    .map_err(|e| e.to_string())?;
                let msg = format!(
                    "{} at {}: {} stages to go ({})",
                    spec.app,
                    &commit.sha[..commit.sha.len().min(12)],
                    names.len() - 1,
                    if buildspec.is_some() {
                        "buildspec.yml"
                    } else {
                        "hoist.yml"
                    }
                );
                log.line(&msg);
                Ok(msg)
            }
        }
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
        if let Some((image, digest)) = &self.facts.image {
            env.insert("HOIST_IMAGE".to_owned(), image.clone());
            env.insert("HOIST_IMAGE_DIGEST".to_owned(), digest.clone());
        }
        env.extend(self.facts.exported.clone());
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
        let exit = shell::run(&cmd, &mut sink, &mut |l| log.line(l), self.cancel)
            .map_err(|e| format!("starting sh: {e}"))?;
        match exit {
            Exit::Success => Ok(()),
            other => Err(format!("`{script}` {other}")),
        }
    }

    fn test(&mut self, spec: &PipelineSpec, commit: &Commit, log: &StageLog<'_>) -> StageResult {
        for step in &spec.test {
            let mut env = self.run_env(commit);
            env.extend(step.env.clone());
            if let Some(image) = &step.image {
                log.line(&format!("--- {} (in {image})", step.name));
                self.test_in_image(image, step, &env, log)
                    .map_err(|e| format!("test {:?}: {e}", step.name))?;
                continue;
            }
            log.line(&format!("--- {}", step.name));
            for script in &step.run {
                self.shell(script, &env, step.timeout, log)
                    .map_err(|e| format!("test {:?}: {e}", step.name))?;
            }
        }
        Ok(format!("{} test steps passed", spec.test.len()))
    }

    /// A test step inside a container of `image` (from hoist's store, else pulled
    /// from its registry), as a CI runner's job container: the run's workspace
    /// mounted at `/workspace` (the working directory), the app's cache at
    /// `/cache` (`$HOIST_CACHE_DIR`), the image's environment under the run's, the
    /// host's network. Each command of `run` in `/bin/sh -c`, in order; writes
    /// outside the two mounts go to a scratch layer dropped afterwards.
    fn test_in_image(
        &self,
        image: &str,
        step: &hoist_pipeline_spec::hoistfile::TestStep,
        env: &BTreeMap<String, String>,
        log: &StageLog<'_>,
    ) -> Result<(), String> {
        use hoist_runtime::{BindMount, ContainerSpec, Network, Rootfs, RunOptions, Stream};
        let runtime = self
            .engine
            .containers
            .as_ref()
            .ok_or("this engine runs no containers (give it a runtime)")?;
        let store = &self.engine.store;
        let record = match store.resolve(image) {
            Ok(r) => r,
            Err(_) => {
                let reference: Reference = image.parse().map_err(|e| format!("{image}: {e}"))?;
                log.line(&format!("{image} is not in hoist's store: pulling it"));
                let client = hoist_registry_client::Client::new(Default::default());
                client
                    .pull(store, &reference, &|_| {})
                    .map_err(|e| format!("pulling {image}: {e}"))?;
                store.resolve(image).map_err(|e| format!("{image}: {e}"))?
            }
        };
        let manifest = hoist_oci::transfer::platform_manifest(store, &record)
            .map_err(|e| format!("{image}: {e}"))?;
        let config = store
            .config(&manifest.config.digest)
            .map_err(|e| format!("{image}: {e}"))?;
        let snapshots = hoist_snapshot::Snapshots::open(&self.engine.home.join("snapshots"))
            .map_err(|e| e.to_string())?;
        let lowers = snapshots
            .image_lowers(store, &manifest, &config)
            .map_err(|e| format!("unpacking {image}: {e}"))?;
        let mut vars: BTreeMap<String, String> = config
            .config
            .as_ref()
            .map(|c| c.env.clone())
            .unwrap_or_default()
            .iter()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        vars.extend(env.clone());
        vars.insert("HOIST_CACHE_DIR".to_owned(), "/cache".to_owned());
        for script in &step.run {
            log.line(&format!("$ {script}"));
            let scratch = snapshots.scratch().map_err(|e| e.to_string())?;
            let spec = ContainerSpec {
                rootfs: Rootfs::Overlay {
                    lowers: lowers.clone(),
                    upper: scratch.upper().to_owned(),
                    work: scratch.work().to_owned(),
                },
                args: vec!["/bin/sh".into(), "-c".into(), script.clone()],
                env: vars.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                cwd: "/workspace".into(),
                user: String::new(),
                hostname: "hoist-test".into(),
                network: Network::Host,
                mounts: vec![
                    BindMount {
                        source: self.workspace.clone(),
                        destination: "/workspace".into(),
                        readonly: false,
                    },
                    BindMount {
                        source: self.cache.clone(),
                        destination: "/cache".into(),
                        readonly: false,
                    },
                ],
                limits: Default::default(),
                readonly_rootfs: false,
            };
            let opts = RunOptions {
                timeout: Some(step.timeout),
                cancel: Some(self.cancel.clone()),
            };
            let mut pending: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
            let outcome = runtime
                .run(&spec, &opts, &mut |stream, bytes| {
                    let buf = &mut pending[usize::from(stream == Stream::Stderr)];
                    buf.extend_from_slice(bytes);
                    while let Some(i) = buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=i).collect();
                        log.line(String::from_utf8_lossy(&line).trim_end_matches(['\n', '\r']));
                    }
                })
                .map_err(|e| format!("running `{script}` in {image}: {e}"))?;
            for rest in pending.iter().filter(|b| !b.is_empty()) {
                log.line(&String::from_utf8_lossy(rest));
            }
            if outcome.timed_out {
                return Err(format!(
                    "`{script}` timed out after {}",
                    humantime::format_duration(step.timeout)
                ));
            }
            if outcome.cancelled {
                return Err(format!("`{script}` was cancelled"));
            }
            if !outcome.status.success() {
                return Err(format!(
                    "`{script}` in {image} exited with status {}",
                    outcome.status.code()
                ));
            }
        }
        Ok(())
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
            self.cancel,
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
        self.facts.exported = outcome.exported;
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
                self.facts.buildspec_image = Some(f.image);
                msg
            }
            None => String::new(),
        };
        Ok(format!("{}{named}", phases.join(", ")))
    }

    fn build(&mut self, spec: &PipelineSpec, commit: &Commit, log: &StageLog<'_>) -> StageResult {
        let app = spec.app.as_str();
        if let Some(named) = self.facts.buildspec_image.clone() {
            // Built by the buildspec itself: take it as it is.
            if let Ok(record) = self.engine.store.resolve(&named) {
                let digest = record.digest.to_string();
                self.engine
                    .runs
                    .set_image(self.run, &client::pin(&named, &digest))
                    .map_err(|e| e.to_string())?;
                log.line(&format!("{named} was built by the buildspec"));
                self.facts.image = Some((named.clone(), digest.clone()));
                self.facts.tags = vec![named.clone()];
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
        if let Some(named) = &self.facts.buildspec_image {
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
        self.facts.image = Some((image, digest));
        self.facts.tags = tags;
        Ok(msg)
    }

    fn scan(&mut self, spec: &PipelineSpec, log: &StageLog<'_>) -> StageResult {
        use hoist_pipeline_spec::hoistfile::Scanner as Kind;
        let (image, _) = self.facts.image.clone().ok_or("no image was built")?;
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
        // The image's SBOM (CycloneDX), kept with the run.
        let sbom = self.artifacts.join("sbom.cdx.json");
        let info = hoist_scan::format::DocumentInfo::now(env!("CARGO_PKG_VERSION"));
        hoist_oci::write_atomic(&sbom, |f| {
            hoist_scan::format::cyclonedx::write(&report, &info, f)
        })
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

    /// Pushes the image: every tag to hoist's embedded registry (started in the
    /// background when none serves `<home>/registry`), or with `push.registry` the
    /// version tag there alone (registries such as ECR keep tags immutable, so a
    /// branch tag that moves is not pushed); an ECR repository is created first with
    /// `push.create_repository`. Later stages deploy the registry's reference by
    /// digest, as ECS deploys an ECR image.
    fn push(&mut self, spec: &PipelineSpec, log: &StageLog<'_>) -> StageResult {
        let (image, digest) = self.facts.image.clone().ok_or("no image was built")?;
        let (registry, tags, client) = match &spec.push.registry {
            None => {
                let addr = ensure_registry(&self.engine.exe, &self.engine.home)?;
                let client = hoist_registry_client::Client::new(Default::default());
                (addr.to_string(), self.facts.tags.clone(), client)
            }
            Some(registry) => {
                let tags: Vec<String> = self.facts.tags.iter().take(1).cloned().collect();
                let host = registry.split('/').next().unwrap_or_default();
                if let Some(ecr) = hoist_aws::ecr::EcrRegistry::parse(host) {
                    for tag in &tags {
                        let name = format!("{registry}/{tag}");
                        let repo = name
                            .split_once('/')
                            .map_or("", |(_, r)| r)
                            .rsplit_once(':')
                            .map_or("", |(r, _)| r)
                            .to_owned();
                        self.ecr_repository(&ecr, &repo, spec.push.create_repository, log)?;
                    }
                }
                let client =
                    hoist_registry_client::Client::new(self.engine.registry_options.clone());
                (registry.clone(), tags, client)
            }
        };
        let mut pushed = Vec::new();
        for tag in &tags {
            let dest_text = format!("{registry}/{tag}");
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
        self.facts.image = Some((first, digest));
        Ok(msg)
    }

    /// Checks that ECR repository `repo` exists, creating it when `create` allows.
    fn ecr_repository(
        &self,
        ecr: &hoist_aws::ecr::EcrRegistry,
        repo: &str,
        create: bool,
        log: &StageLog<'_>,
    ) -> Result<(), String> {
        use hoist_aws::ecr::repository::{self, Ensured, RepositorySettings};
        if create {
            let ensured = repository::ensure_repository(ecr, repo, &RepositorySettings::default())
                .map_err(|e| e.to_string())?;
            let (verb, r) = match &ensured {
                Ensured::Created(r) => ("created", r),
                Ensured::Existed(r) => ("using", r),
            };
            log.line(&format!("{verb} the ECR repository {}", r.uri));
            for concern in r.concerns() {
                log.line(&format!("warning: {}: {concern}", r.uri));
            }
            return Ok(());
        }
        match repository::describe_repository(ecr, repo) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(format!(
                "ECR repository {repo} does not exist in {}: set push.create_repository: true to create it",
                ecr.host
            )),
            // The check is a courtesy: without permission to describe, push anyway.
            Err(e) => {
                log.line(&format!("warning: could not check the ECR repository {repo}: {e}"));
                Ok(())
            }
        }
    }

    fn deploy(
        &mut self,
        spec: &PipelineSpec,
        env: &Environment,
        log: &StageLog<'_>,
    ) -> StageResult {
        let (image, digest) = self.facts.image.clone().ok_or("no image was built")?;
        if let Some(ecs) = env.ecs.as_ref().filter(|_| env.target == Target::Ecs) {
            return deploy_ecs(env, ecs, &client::pin(&image, &digest), log);
        }
        let service = env
            .service_spec(spec.app.as_str(), &image)
            .map_err(|e| e.to_string())?;
        let home = &self.engine.home;
        // One deployment per environment at a time: another run's waits for this one.
        let lock = {
            let mut all = self
                .engine
                .deploying
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            all.entry(service.name.to_string()).or_default().clone()
        };
        let _turn = match lock.try_lock() {
            Ok(turn) => turn,
            Err(_) => {
                log.line(&format!(
                    "waiting for another run's deployment of {} to end",
                    service.name
                ));
                lock.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
            }
        };
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
                self.facts.urls.push((env.name.to_string(), url.clone()));
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
        if env.target == Target::Ecs {
            // ECS checks its tasks' health itself; the deploy stage waited for it.
            return Ok("checked by ECS (no smoke command for ECS environments)".into());
        }
        let url = self
            .facts
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

/// Deploys `image` (by digest) to the ECS service of `env`, following it to steady
/// state (within the environment's timeout) unless `ecs.wait` is false.
fn deploy_ecs(
    env: &Environment,
    ecs: &hoist_pipeline_spec::hoistfile::EcsSettings,
    image: &str,
    log: &StageLog<'_>,
) -> StageResult {
    let follow = ecs.wait.then(|| env.timeout.unwrap_or(DEPLOY_TIMEOUT));
    let request = crate::ecs::request(ecs, env.strategy.as_ref(), image, follow);
    let target = crate::ecs::target(ecs);
    log.line(&format!("deploying {image} to {target}"));
    let done = hoist_aws::ecs::deploy(&target, &request, &|line| log.line(line))
        .map_err(|e| e.to_string())?;
    Ok(if done.steady {
        format!("{target} is steady on {}", done.task_definition)
    } else {
        format!(
            "{target} moves to {} (not followed: ecs.wait is false)",
            done.task_definition
        )
    })
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

/// The app's `$HOIST_CACHE_DIR` under `<home>/pipeline/cache`: `<app>`, or with
/// `cache.key`, `<app>.<hash of the key files>`, marked used now; keyed caches of
/// the app past `cache.keep` go, the least recently used first.
fn cache_dir(home: &Path, spec: &PipelineSpec, workspace: &Path) -> Result<PathBuf, String> {
    use sha2::{Digest, Sha256};
    let base = home.join("pipeline").join("cache");
    let app = spec.app.as_str();
    let io = |p: &Path| {
        let p = p.to_owned();
        move |e: std::io::Error| format!("{}: {e}", p.display())
    };
    if spec.cache.key.is_empty() {
        let dir = base.join(app);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        return Ok(dir);
    }
    let mut hash = Sha256::new();
    for key in &spec.cache.key {
        hash.update(key.as_os_str().as_encoded_bytes());
        hash.update([0]);
        match std::fs::read(workspace.join(key)) {
            Ok(bytes) => {
                hash.update([1]);
                hash.update(Sha256::digest(&bytes));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => hash.update([0]),
            Err(e) => return Err(format!("cache.key {}: {e}", key.display())),
        }
    }
    let name = format!("{app}.{}", &hex::encode(hash.finalize())[..16]);
    let dir = base.join(&name);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let used = |d: &Path| d.join(".hoist-cache-used");
    std::fs::write(used(&dir), b"").map_err(io(&used(&dir)))?;
    // The app's keyed caches, most recently used first.
    let mut keyed: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&base)
        .map_err(io(&base))?
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix(app))
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .map(|e| {
            let at = std::fs::metadata(used(&e.path()))
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (at, e.path())
        })
        .collect();
    keyed.sort_by_key(|k| std::cmp::Reverse(k.0));
    for (_, old) in keyed.iter().skip(spec.cache.keep) {
        if *old != dir {
            tracing::info!("removing the cache {} (cache.keep)", old.display());
            let _ = std::fs::remove_dir_all(old);
        }
    }
    Ok(dir)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_keyed_cache_follows_its_key_files_and_keeps_the_recent_ones() {
        let home = tempfile::tempdir().unwrap();
        let ws = tempfile::tempdir().unwrap();
        let plain =
            PipelineSpec::parse("hoist.yml", "app: web\nenvironments:\n  - name: dev\n    service: {listener: {addr: 127.0.0.1:1}}\n").unwrap();
        let dir = cache_dir(home.path(), &plain, ws.path()).unwrap();
        assert_eq!(dir, home.path().join("pipeline/cache/web"));

        let spec = PipelineSpec::parse(
            "hoist.yml",
            "app: web\ncache: {key: [Cargo.lock], keep: 2}\nenvironments:\n  - name: dev\n    service: {listener: {addr: 127.0.0.1:1}}\n",
        )
        .unwrap();
        let missing = cache_dir(home.path(), &spec, ws.path()).unwrap();
        std::fs::write(ws.path().join("Cargo.lock"), "a = 1\n").unwrap();
        let a = cache_dir(home.path(), &spec, ws.path()).unwrap();
        assert_ne!(a, missing);
        assert!(a.file_name().unwrap().to_str().unwrap().starts_with("web."));
        std::fs::write(a.join("kept"), "").unwrap();
        // Same key, same cache.
        assert_eq!(cache_dir(home.path(), &spec, ws.path()).unwrap(), a);
        assert!(a.join("kept").is_file());
        // A new key: a fresh cache; the least recently used one past `keep` goes.
        std::fs::write(ws.path().join("Cargo.lock"), "a = 2\n").unwrap();
        let b = cache_dir(home.path(), &spec, ws.path()).unwrap();
        assert_ne!(b, a);
        assert!(!b.join("kept").exists());
        assert!(a.is_dir() && b.is_dir());
        assert!(!missing.exists(), "the least recently used of three went");
        // The unkeyed cache of the app is not one of them.
        assert!(dir.is_dir());
    }
}
