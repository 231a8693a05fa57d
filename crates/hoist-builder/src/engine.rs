//! The build engine: plans the stages a target needs, runs independent stages in
//! parallel, executes each instruction against the step cache, and writes the
//! image.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hoist_dockerfile::instruction::{
    AddInstruction, CommandLine, CopyInstruction, MountType, NetworkMode, RunInstruction,
    SecurityMode, Sharing, Source,
};
use hoist_dockerfile::{Dockerfile, Instruction, ParseError, ParseErrors};
use hoist_layer::{Compression, WriteOptions};
use hoist_oci::config::{ContainerConfig, History, RootFs};
use hoist_oci::manifest::Platform;
use hoist_oci::{Descriptor, Digest, ImageConfig, Reference, Store};
use hoist_runtime::{BindMount, ContainerSpec, Network, RunOptions, Runtime, Stream};
use hoist_snapshot::{MergedView, PlainDir, Snapshots, Tree};

use crate::cache::{CacheKey, CacheRecord, CachedLayer, StepCache};
use crate::context::BuildContext;
use crate::copy::{self, AddOptions, CopyFrom, CopyOp};
use crate::error::BuildError;
use crate::metadata::{self, env_pairs};
use crate::progress::{Event, OutputStream, Progress};

/// `PATH` when the base image sets none, as BuildKit does.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Output lines kept to explain a failed `RUN`.
const TAIL_LINES: usize = 20;

/// Where a `--secret` comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file on the host.
    File(PathBuf),
    /// A value (read from hoist's environment by the caller).
    Value(Vec<u8>),
}

/// Fetches an image the store lacks (a registry pull), given the reference as the
/// Dockerfile names it. The builder calls it for bases and `--from` images it
/// cannot find, then looks again.
#[derive(Clone)]
pub struct Puller(pub Arc<PullFn>);

/// The function a [`Puller`] wraps: `Err` says why the image could not be had.
pub type PullFn = dyn Fn(&str) -> Result<(), String> + Send + Sync;

impl std::fmt::Debug for Puller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Puller")
    }
}

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The context directory.
    pub context: PathBuf,
    /// The Dockerfile (default: `Dockerfile` in the context).
    pub dockerfile: Option<PathBuf>,
    /// Names to give the image.
    pub tags: Vec<Reference>,
    /// `--build-arg`s.
    pub build_args: BTreeMap<String, String>,
    /// `--target`: the stage to stop at (default: the last).
    pub target: Option<String>,
    /// Ignore the step cache (results are still stored).
    pub no_cache: bool,
    /// Network of `RUN` steps without `--network`.
    pub network: Network,
    /// `--secret`s by id.
    pub secrets: BTreeMap<String, SecretSource>,
    /// `SOURCE_DATE_EPOCH`: layer mtimes clamped, every timestamp set to it.
    pub source_date_epoch: Option<i64>,
    /// Layer compression.
    pub compression: Compression,
    /// Stop the build when set (checked between steps and inside `RUN`).
    pub cancel: Arc<AtomicBool>,
    /// How to get images the store lacks (none: they must be imported first).
    pub puller: Option<Puller>,
}

impl BuildOptions {
    /// Defaults for building `context`.
    pub fn new(context: impl Into<PathBuf>) -> BuildOptions {
        BuildOptions {
            context: context.into(),
            dockerfile: None,
            tags: Vec::new(),
            build_args: BTreeMap::new(),
            target: None,
            no_cache: false,
            network: Network::Host,
            secrets: BTreeMap::new(),
            source_date_epoch: None,
            compression: Compression::Gzip,
            cancel: Arc::new(AtomicBool::new(false)),
            puller: None,
        }
    }
}

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    /// The manifest, recorded in the store.
    pub manifest: Descriptor,
    /// The image ID (config digest).
    pub id: Digest,
    /// Steps run or answered from the cache.
    pub steps: usize,
    /// Steps answered from the cache.
    pub cached: usize,
    /// `RUN` steps that ran a container.
    pub runs: usize,
}

/// What [`Builder::prune`] removed.
#[derive(Debug, Clone, Default)]
pub struct PruneReport {
    /// Step cache records.
    pub cache_records: usize,
    /// Unpacked layer snapshots.
    pub snapshots: usize,
    /// Blobs.
    pub blobs: u64,
    /// Bytes of blobs.
    pub bytes: u64,
}

/// How `RUN` steps get their root file system and find their changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Snapshotter {
    /// An overlayfs over the layer snapshots; the upper dir is the change set.
    Overlay,
    /// Where overlayfs is missing: every layer applied into a fresh directory,
    /// walked before and after the step (slower, same layers).
    Walk,
}

/// Builds images into one store.
pub struct Builder {
    store: Store,
    snapshots: Snapshots,
    cache: StepCache,
    runtime: Runtime,
    snapshotter: Snapshotter,
}

/// A layer of a stage's image.
#[derive(Debug, Clone)]
struct Layer {
    desc: Descriptor,
    diff_id: Digest,
}

/// A stage's state as its instructions run; also a finished stage's result.
#[derive(Debug, Clone)]
struct State {
    layers: Vec<Layer>,
    config: ImageConfig,
    key: CacheKey,
    args: Vec<(String, String)>,
    cmd_set: bool,
}

impl State {
    fn container(&mut self) -> &mut ContainerConfig {
        self.config
            .config
            .get_or_insert_with(ContainerConfig::default)
    }

    fn container_ref(&self) -> ContainerConfig {
        self.config.config.clone().unwrap_or_default()
    }

    /// Variables for expansion: the stage's ARGs, then ENV (which wins).
    fn vars(&self) -> Vec<(String, String)> {
        let mut v = self.args.clone();
        v.extend(env_pairs(&self.container_ref()));
        v
    }
}

/// One build in progress.
struct Run<'a> {
    opts: &'a BuildOptions,
    df: Dockerfile,
    file: PathBuf,
    context: BuildContext,
    global: Vec<(String, String)>,
    progress: &'a dyn Progress,
    step: AtomicUsize,
    cached: AtomicUsize,
    runs: AtomicUsize,
    results: Mutex<BTreeMap<usize, State>>,
    /// Downloads (ADD <url>) and inline sources.
    work: tempfile::TempDir,
    empty: PathBuf,
    epoch: Option<i64>,
}

impl Run<'_> {
    fn located(&self, line: usize, instruction: &str, message: impl Into<String>) -> BuildError {
        BuildError::Step {
            file: self.file.clone(),
            line,
            instruction: instruction.to_owned(),
            message: message.into(),
        }
    }

    fn parse_error(&self, e: ParseError) -> BuildError {
        BuildError::Parse {
            file: self.file.clone(),
            errors: ParseErrors { errors: vec![e] },
        }
    }

    fn now(&self) -> String {
        match self.epoch {
            Some(e) => hoist_oci::store::unix_to_rfc3339(u64::try_from(e).unwrap_or(0)),
            None => hoist_oci::store::now_rfc3339(),
        }
    }
}

/// One step's position, for messages and progress.
struct StepCtx<'a> {
    number: usize,
    line: usize,
    text: &'a str,
}

/// What a step did to the image.
struct StepResult {
    key: CacheKey,
    layer: Option<CachedLayer>,
    created: String,
    created_by: String,
    cached: bool,
}

impl Builder {
    /// A builder over `store` (snapshots and cache live in the store's home).
    pub fn new(store: Store, runtime: Runtime) -> Result<Builder, BuildError> {
        let home = store.home().to_owned();
        Ok(Builder {
            snapshots: Snapshots::open(&home.join("snapshots"))?,
            cache: StepCache::open(&home.join("build-cache"))?,
            store,
            runtime,
            snapshotter: if hoist_snapshot::overlay_supported() {
                Snapshotter::Overlay
            } else {
                Snapshotter::Walk
            },
        })
    }

    /// Choose the snapshotter (default: overlay where the kernel has it).
    pub fn with_snapshotter(mut self, snapshotter: Snapshotter) -> Builder {
        self.snapshotter = snapshotter;
        self
    }

    /// The store images go to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Build, reporting to `progress`; the image is recorded with `opts.tags`.
    pub fn build(
        &self,
        opts: &BuildOptions,
        progress: &dyn Progress,
    ) -> Result<BuildOutput, BuildError> {
        let started = Instant::now();
        let file = opts
            .dockerfile
            .clone()
            .unwrap_or_else(|| opts.context.join("Dockerfile"));
        let text = fs::read_to_string(&file).map_err(BuildError::io(&file))?;
        let df = Dockerfile::parse(&text).map_err(|errors| BuildError::Parse {
            file: file.clone(),
            errors,
        })?;
        let context = BuildContext::open(&opts.context, &file).map_err(|e| BuildError::Step {
            file: opts.context.clone(),
            line: 0,
            instruction: "build context".to_owned(),
            message: e.to_string(),
        })?;
        let host = Platform::host();
        let platform = format!("{}/{}", host.os, host.architecture);
        let predefined: Vec<(String, String)> = [
            ("BUILDPLATFORM", platform.as_str()),
            ("BUILDOS", host.os.as_str()),
            ("BUILDARCH", host.architecture.as_str()),
            ("TARGETPLATFORM", platform.as_str()),
            ("TARGETOS", host.os.as_str()),
            ("TARGETARCH", host.architecture.as_str()),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let mut rel_file = file.clone();
        if let Ok(r) = file.strip_prefix(&opts.context) {
            if !r.as_os_str().is_empty() {
                rel_file = r.to_owned();
            }
        }
        let global =
            df.global_args(&opts.build_args, &predefined)
                .map_err(|e| BuildError::Parse {
                    file: file.clone(),
                    errors: ParseErrors { errors: vec![e] },
                })?;
        let work = tempfile::Builder::new()
            .prefix("build-")
            .tempdir_in(self.store.home())
            .map_err(BuildError::io(self.store.home()))?;
        let empty = work.path().join("empty");
        fs::create_dir(&empty).map_err(BuildError::io(&empty))?;
        let run = Run {
            opts,
            df,
            file: rel_file,
            context,
            global,
            progress,
            step: AtomicUsize::new(0),
            cached: AtomicUsize::new(0),
            runs: AtomicUsize::new(0),
            results: Mutex::new(BTreeMap::new()),
            work,
            empty,
            epoch: opts.source_date_epoch,
        };
        let target = match &opts.target {
            Some(t) => {
                run.df
                    .stage(t)
                    .map(|s| s.index)
                    .ok_or_else(|| BuildError::NoSuchTarget {
                        file: file.clone(),
                        target: t.clone(),
                        stages: run
                            .df
                            .stages
                            .iter()
                            .map(|s| s.name().map_or_else(|| s.index.to_string(), str::to_owned))
                            .collect::<Vec<_>>()
                            .join(", "),
                    })?
            }
            None => run.df.stages.len().saturating_sub(1),
        };
        let levels = self.plan(&run, target)?;
        progress.event(&Event::BuildStarted {
            dockerfile: run.file.display().to_string(),
            stages: levels
                .iter()
                .flatten()
                .map(|&i| stage_label(&run.df, i))
                .collect(),
        });
        // Containers of a build killed earlier must not linger.
        if let Err(e) = self.runtime.cleanup_stale() {
            tracing::warn!(error = %e, "could not clean up stale containers");
        }
        let _session = self.store.write_session()?;
        for level in &levels {
            let outcome: Vec<Result<(), BuildError>> = std::thread::scope(|scope| {
                let handles: Vec<_> = level
                    .iter()
                    .map(|&i| {
                        let run = &run;
                        scope.spawn(move || {
                            let state = self.run_stage(run, i);
                            match state {
                                Ok(s) => {
                                    if let Ok(mut r) = run.results.lock() {
                                        r.insert(i, s);
                                    }
                                    Ok(())
                                }
                                Err(e) => {
                                    // Stop sibling stages early.
                                    run.opts.cancel.store(true, Ordering::SeqCst);
                                    Err(e)
                                }
                            }
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or(Err(BuildError::Cancelled)))
                    .collect()
            });
            // Report the first real error, not the cancellations it caused.
            let mut first = None;
            for r in outcome {
                if let Err(e) = r {
                    if first.is_none() || matches!(first, Some(BuildError::Cancelled)) {
                        first = Some(e);
                    }
                }
            }
            if let Some(e) = first {
                return Err(e);
            }
        }
        let mut state = run
            .results
            .lock()
            .ok()
            .and_then(|mut r| r.remove(&target))
            .ok_or(BuildError::Cancelled)?;
        state.config.created = Some(run.now());
        state.config.rootfs = RootFs {
            kind: "layers".to_owned(),
            diff_ids: state.layers.iter().map(|l| l.diff_id.clone()).collect(),
        };
        let layers: Vec<Descriptor> = state.layers.iter().map(|l| l.desc.clone()).collect();
        let manifest = self.store.put_image(&state.config, layers)?;
        let record = self.store.add_image(&manifest, &opts.tags)?;
        let steps = run.step.load(Ordering::SeqCst);
        let cached = run.cached.load(Ordering::SeqCst);
        progress.event(&Event::BuildDone {
            digest: manifest.digest.to_string(),
            id: record.id.to_string(),
            tags: opts.tags.iter().map(|t| t.to_string()).collect(),
            steps,
            cached,
            runs: run.runs.load(Ordering::SeqCst),
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        });
        Ok(BuildOutput {
            manifest,
            id: record.id,
            steps,
            cached,
            runs: run.runs.load(Ordering::SeqCst),
        })
    }

    /// The stages `target` needs, grouped in levels: every stage's dependencies are
    /// in earlier levels, so the stages of one level can run in parallel.
    fn plan(&self, run: &Run<'_>, target: usize) -> Result<Vec<Vec<usize>>, BuildError> {
        let mut deps: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if deps.contains_key(&i) {
                continue;
            }
            let d = run
                .df
                .stage_dependencies(i, &run.global)
                .map_err(|e| run.parse_error(e))?;
            todo.extend(d.iter().copied());
            deps.insert(i, d);
        }
        let mut level: BTreeMap<usize, usize> = BTreeMap::new();
        // Dependencies always have lower indexes, so ascending order works.
        for (&i, d) in &deps {
            let l = d
                .iter()
                .map(|j| level.get(j).map_or(0, |l| l + 1))
                .max()
                .unwrap_or(0);
            level.insert(i, l);
        }
        let depth = level.values().copied().max().unwrap_or(0);
        let mut levels = vec![Vec::new(); depth + 1];
        for (i, l) in level {
            levels[l].push(i);
        }
        Ok(levels)
    }

    fn run_stage(&self, run: &Run<'_>, index: usize) -> Result<State, BuildError> {
        let stage = &run.df.stages[index];
        let label = stage_label(&run.df, index);
        let total = stage.instructions.len() + 1;
        let from = &stage.from.location;
        let number = run.step.fetch_add(1, Ordering::SeqCst) + 1;
        let t0 = Instant::now();
        run.progress.event(&Event::StepStarted {
            step: number,
            stage: label.clone(),
            index: 1,
            total,
            instruction: from.original.clone(),
        });
        let base = run
            .df
            .resolve_base(index, &run.global)
            .map_err(|e| run.parse_error(e))?;
        let lower = base.to_lowercase();
        let earlier = run.df.stages[..index]
            .iter()
            .find(|s| s.name() == Some(lower.as_str()))
            .map(|s| s.index);
        let mut state = match earlier {
            Some(j) => {
                let mut s = run
                    .results
                    .lock()
                    .ok()
                    .and_then(|r| r.get(&j).cloned())
                    .ok_or(BuildError::Cancelled)?;
                s.args.clear();
                s.cmd_set = false;
                s
            }
            None if lower == "scratch" => scratch_state(),
            None => self
                .image_state(&base, run.opts.puller.as_ref())
                .map_err(|m| run.located(from.start_line, &from.original, m))?,
        };
        if !state
            .container_ref()
            .env
            .iter()
            .any(|e| e.starts_with("PATH="))
        {
            metadata::set_env(state.container(), "PATH", DEFAULT_PATH);
        }
        run.progress.event(&Event::StepDone {
            step: number,
            duration_ms: ms(t0),
            layer: None,
        });
        // ONBUILD triggers of the base run first, and are not inherited.
        let triggers = state.container().on_build.take().unwrap_or_default();
        for trigger in triggers {
            let ast = hoist_dockerfile::parse(&trigger).map_err(|e| {
                run.located(
                    from.start_line,
                    &from.original,
                    format!("ONBUILD {trigger}: {e}"),
                )
            })?;
            for node in &ast.nodes {
                let ins = Instruction::from_node(node, ast.escape).map_err(|e| {
                    run.located(
                        from.start_line,
                        &from.original,
                        format!("ONBUILD {trigger}: {e}"),
                    )
                })?;
                self.step(run, &mut state, &ins, &label, 1, total, from.start_line)?;
            }
        }
        for (k, ins) in stage.instructions.iter().enumerate() {
            if run.opts.cancel.load(Ordering::SeqCst) {
                return Err(BuildError::Cancelled);
            }
            let line = ins.location().start_line;
            self.step(run, &mut state, ins, &label, k + 2, total, line)?;
        }
        Ok(state)
    }

    /// The state of a stage built `FROM` an image of the store.
    fn image_state(&self, base: &str, puller: Option<&Puller>) -> Result<State, String> {
        let record = match self.store.resolve(base) {
            Ok(r) => r,
            Err(hoist_oci::StoreError::NotFound(_)) => {
                let pulled = match puller {
                    Some(p) => (p.0)(base),
                    None => Err("no registry to pull from".to_owned()),
                };
                match pulled.and_then(|()| self.store.resolve(base).map_err(|e| e.to_string())) {
                    Ok(r) => r,
                    Err(why) => {
                        return Err(format!(
                            "base image {base:?} is not in hoist's store and could not be pulled \
                             ({why}); pull it with `hoist pull`, or add it with `hoist image \
                             import` (a rootfs, a tarball, an OCI layout or a docker archive), \
                             and build again"
                        ))
                    }
                }
            }
            Err(other) => return Err(format!("base image {base:?}: {other}")),
        };
        let manifest = hoist_oci::transfer::platform_manifest(&self.store, &record)
            .map_err(|e| format!("base image {base:?}: {e}"))?;
        let config = self
            .store
            .config(&manifest.config.digest)
            .map_err(|e| format!("base image {base:?}: {e}"))?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(format!(
                "base image {base:?}: its config lists {} diff_ids for {} layers",
                config.rootfs.diff_ids.len(),
                manifest.layers.len()
            ));
        }
        let layers = manifest
            .layers
            .iter()
            .zip(&config.rootfs.diff_ids)
            .map(|(d, id)| Layer {
                desc: d.clone(),
                diff_id: id.clone(),
            })
            .collect();
        Ok(State {
            layers,
            key: CacheKey::root(&format!("image {}", record.digest)),
            config,
            args: Vec::new(),
            cmd_set: false,
        })
    }

    /// Lowerdirs of a state, top-most first, unpacking layers met for the first time.
    fn lowers(&self, layers: &[Layer]) -> Result<Vec<PathBuf>, BuildError> {
        let mut dirs = Vec::with_capacity(layers.len());
        for l in layers.iter().rev() {
            dirs.push(
                self.snapshots
                    .layer_dir(self.store.blobs(), &l.desc, &l.diff_id)?,
            );
        }
        Ok(dirs)
    }

    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        run: &Run<'_>,
        state: &mut State,
        ins: &Instruction,
        label: &str,
        index: usize,
        total: usize,
        line: usize,
    ) -> Result<(), BuildError> {
        let loc = ins.location();
        let number = run.step.fetch_add(1, Ordering::SeqCst) + 1;
        let t0 = Instant::now();
        run.progress.event(&Event::StepStarted {
            step: number,
            stage: label.to_owned(),
            index,
            total,
            instruction: loc.original.clone(),
        });
        let ctx = StepCtx {
            number,
            line,
            text: &loc.original,
        };
        let result = self.dispatch(run, state, ins, &ctx);
        match result {
            Ok(Some(r)) => {
                if r.cached {
                    run.cached.fetch_add(1, Ordering::SeqCst);
                    run.progress.event(&Event::StepCached { step: number });
                }
                state.key = r.key;
                let empty = r.layer.is_none();
                if let Some(layer) = &r.layer {
                    state.layers.push(Layer {
                        desc: layer.descriptor.clone(),
                        diff_id: layer.diff_id.clone(),
                    });
                }
                state.config.history.push(History {
                    created: Some(r.created),
                    created_by: Some(r.created_by),
                    author: None,
                    comment: Some("buildkit.dockerfile.v0".to_owned()),
                    empty_layer: empty,
                });
                run.progress.event(&Event::StepDone {
                    step: number,
                    duration_ms: ms(t0),
                    layer: r.layer.map(|l| l.descriptor.digest.to_string()),
                });
                Ok(())
            }
            Ok(None) => {
                run.progress.event(&Event::StepDone {
                    step: number,
                    duration_ms: ms(t0),
                    layer: None,
                });
                Ok(())
            }
            Err(e) => {
                run.progress.event(&Event::StepFailed {
                    step: number,
                    error: e.to_string(),
                });
                Err(e)
            }
        }
    }

    /// Run one instruction. `None` for steps that leave no history (`ARG`).
    fn dispatch(
        &self,
        run: &Run<'_>,
        state: &mut State,
        ins: &Instruction,
        ctx: &StepCtx<'_>,
    ) -> Result<Option<StepResult>, BuildError> {
        let lexer = run.df.lexer();
        let fail = |m: String| run.located(ctx.line, ctx.text, m);
        match ins {
            Instruction::From(_) => Err(fail("FROM inside a stage".to_owned())),
            Instruction::Arg(a) => {
                for def in &a.args {
                    let vars = state.vars();
                    let value = if let Some(v) = run.opts.build_args.get(&def.name) {
                        Some(v.clone())
                    } else if let Some(d) = &def.default {
                        Some(
                            lexer
                                .process_word(d, &vars)
                                .map_err(|e| fail(e.to_string()))?,
                        )
                    } else {
                        run.global
                            .iter()
                            .rev()
                            .find(|(k, _)| *k == def.name)
                            .map(|(_, v)| v.clone())
                    };
                    if let Some(v) = value {
                        state.key = state.key.child(&["ARG", &def.name, &v]);
                        state.args.retain(|(k, _)| *k != def.name);
                        state.args.push((def.name.clone(), v));
                    }
                }
                Ok(None)
            }
            Instruction::Maintainer(m) => {
                state.config.author = Some(m.name.clone());
                Ok(Some(self.meta_result(run, state, ctx)))
            }
            Instruction::Run(r) => self.run_step(run, state, r, ctx).map(Some),
            Instruction::Copy(c) => self.copy_step(run, state, CopyLike::Copy(c), ctx).map(Some),
            Instruction::Add(a) => self.copy_step(run, state, CopyLike::Add(a), ctx).map(Some),
            Instruction::Workdir(_) => {
                let vars = state.vars();
                let mut cmd_set = state.cmd_set;
                metadata::apply_metadata(ins, &lexer, &vars, state.container(), &mut cmd_set)
                    .map_err(fail)?;
                self.workdir_step(run, state, ctx).map(Some)
            }
            other => {
                let vars = state.vars();
                let mut cmd_set = state.cmd_set;
                let handled =
                    metadata::apply_metadata(other, &lexer, &vars, state.container(), &mut cmd_set)
                        .map_err(fail)?;
                if !handled {
                    return Err(fail(format!("{} is not supported here", other.keyword())));
                }
                if matches!(other, Instruction::Cmd(_)) {
                    cmd_set = true;
                }
                state.cmd_set = cmd_set;
                Ok(Some(self.meta_result(run, state, ctx)))
            }
        }
    }

    /// A config-only step: its key covers the whole container config after it.
    fn meta_result(&self, run: &Run<'_>, state: &State, ctx: &StepCtx<'_>) -> StepResult {
        let config = serde_json::to_string(&state.config.config).unwrap_or_default();
        StepResult {
            key: state.key.child(&["META", &config]),
            layer: None,
            created: run.now(),
            created_by: ctx.text.to_owned(),
            cached: false,
        }
    }

    /// Look the key up, or compute the layer with `make` and record it.
    fn cached_or(
        &self,
        run: &Run<'_>,
        key: CacheKey,
        created_by: String,
        make: impl FnOnce() -> Result<Option<CachedLayer>, BuildError>,
    ) -> Result<StepResult, BuildError> {
        if !run.opts.no_cache {
            if let Some(rec) = self.cache.get(&key) {
                let present = rec
                    .layer
                    .as_ref()
                    .is_none_or(|l| self.store.blobs().contains(&l.descriptor.digest));
                if present {
                    return Ok(StepResult {
                        key,
                        layer: rec.layer,
                        created: if run.epoch.is_some() {
                            run.now()
                        } else {
                            rec.created
                        },
                        created_by,
                        cached: true,
                    });
                }
            }
        }
        let layer = make()?;
        let created = run.now();
        self.cache.put(
            &key,
            &CacheRecord {
                layer: layer.clone(),
                created: created.clone(),
            },
        )?;
        Ok(StepResult {
            key,
            layer,
            created,
            created_by,
            cached: false,
        })
    }

    /// Archive `dir` (overlay form, as `changes` or whole) into a layer blob and
    /// adopt it as that layer's snapshot.
    fn commit_dir(
        &self,
        run: &Run<'_>,
        dir: &Path,
        changes: Option<&[hoist_layer::Change]>,
        adopt: bool,
    ) -> Result<CachedLayer, BuildError> {
        let opts = WriteOptions {
            compression: run.opts.compression,
            source_date_epoch: run.epoch,
            ..Default::default()
        };
        let mut w = self.store.blobs().writer()?;
        let info = match changes {
            Some(c) => hoist_layer::write_changes(dir, c, &mut w, &opts)?,
            None => hoist_layer::write_dir(dir, &mut w, &opts)?,
        };
        w.commit(Some(&info.digest))?;
        if adopt {
            self.snapshots.adopt(dir, &info.diff_id)?;
        }
        Ok(CachedLayer {
            descriptor: Descriptor::new(info.media_type, info.digest, info.size),
            diff_id: info.diff_id,
        })
    }

    fn run_step(
        &self,
        run: &Run<'_>,
        state: &mut State,
        r: &RunInstruction,
        ctx: &StepCtx<'_>,
    ) -> Result<StepResult, BuildError> {
        let fail = |m: String| run.located(ctx.line, ctx.text, m);
        let lexer = run.df.lexer();
        let vars = state.vars();
        let config = state.container_ref();
        if r.security == Some(SecurityMode::Insecure) {
            return Err(fail("RUN --security=insecure is not supported".to_owned()));
        }
        let network = match r.network {
            None | Some(NetworkMode::Default) => run.opts.network,
            Some(NetworkMode::None) => Network::None,
            Some(NetworkMode::Host) => Network::Host,
        };
        let shell = config
            .shell
            .clone()
            .unwrap_or_else(|| vec!["/bin/sh".to_owned(), "-c".to_owned()]);
        let argv = match &r.command {
            CommandLine::Exec(a) => a.clone(),
            CommandLine::Shell(s) => {
                let mut argv = shell.clone();
                argv.push(shell_script(s, &r.heredocs));
                argv
            }
        };
        // The container's environment: ARGs, then ENV over them.
        let mut env: Vec<(String, String)> = Vec::new();
        for (k, v) in state.args.iter().chain(env_pairs(&config).iter()) {
            env.retain(|(x, _)| x != k);
            env.push((k.clone(), v.clone()));
        }
        let mut mounts = Vec::new();
        for m in &r.mounts {
            mounts.push(m.resolve(&lexer, &vars).map_err(|e| fail(e.to_string()))?);
        }
        let mut key_mounts = Vec::new();
        for m in &mounts {
            let mut part = format!(
                "{}:{}:{}:{}:{:?}",
                m.kind.as_str(),
                m.target.as_deref().unwrap_or(""),
                m.id.as_deref().unwrap_or(""),
                m.env.as_deref().unwrap_or(""),
                m.readonly
            );
            if m.kind == MountType::Bind {
                part.push_str(&self.bind_source_key(run, m).map_err(fail)?);
            }
            key_mounts.push(part);
        }
        let user = config.user.clone();
        let cwd = if config.working_dir.is_empty() {
            "/".to_owned()
        } else {
            config.working_dir.clone()
        };
        let env_text: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let key = state.key.child(&[
            "RUN",
            &serde_json::to_string(&argv).unwrap_or_default(),
            &serde_json::to_string(&env_text).unwrap_or_default(),
            &user,
            &cwd,
            match network {
                Network::None => "none",
                Network::Host => "host",
                Network::Outbound => "outbound",
            },
            &key_mounts.join("\n"),
        ]);
        let created_by = if state.args.is_empty() {
            format!("RUN {} # buildkit", argv.join(" "))
        } else {
            let args: Vec<String> = state.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "RUN |{} {} {} # buildkit",
                args.len(),
                args.join(" "),
                argv.join(" ")
            )
        };
        let layers = state.layers.clone();
        self.cached_or(run, key, created_by, || {
            run.runs.fetch_add(1, Ordering::SeqCst);
            let lowers = self.lowers(&layers)?;
            let view = MergedView::new(lowers.clone());
            let scratch = self.snapshots.scratch()?;
            let mut bind = Vec::new();
            let mut extra_env = Vec::new();
            let mut locks = Vec::new();
            for (n, m) in mounts.iter().enumerate() {
                self.prepare_mount(
                    run,
                    m,
                    n,
                    scratch.path(),
                    &mut bind,
                    &mut extra_env,
                    &mut locks,
                )
                .map_err(fail)?;
            }
            let mut stubs: Vec<PathBuf> = STANDARD_MOUNTPOINTS.iter().map(PathBuf::from).collect();
            stubs.extend(
                bind.iter()
                    .map(|b: &BindMount| PathBuf::from(&b.destination)),
            );
            let absent: Vec<PathBuf> = stubs
                .into_iter()
                .filter(|p| matches!(view.lstat(p), Ok(None)))
                .collect();
            let mut full_env = env_text.clone();
            full_env.extend(extra_env);
            let (rootfs, walk) = match self.snapshotter {
                Snapshotter::Overlay => (
                    hoist_runtime::Rootfs::Overlay {
                        lowers,
                        upper: scratch.upper().to_owned(),
                        work: scratch.work().to_owned(),
                    },
                    None,
                ),
                Snapshotter::Walk => {
                    let dir = scratch.upper().to_owned();
                    self.materialize(&layers, &dir)?;
                    let before = hoist_snapshot::WalkSnapshot::capture(&dir)?;
                    (hoist_runtime::Rootfs::Dir(dir), Some(before))
                }
            };
            let spec = ContainerSpec {
                rootfs,
                args: argv.clone(),
                env: full_env,
                cwd: cwd.clone(),
                user: user.clone(),
                hostname: "buildkitsandbox".to_owned(),
                network,
                mounts: bind,
                limits: Default::default(),
                readonly_rootfs: false,
            };
            let mut lines = OutputLines::new(run.progress, ctx.number);
            let outcome = self.runtime.run(
                &spec,
                &RunOptions {
                    timeout: None,
                    cancel: Some(run.opts.cancel.clone()),
                },
                &mut |stream, bytes| lines.push(stream, bytes),
            )?;
            lines.flush();
            drop(locks);
            if outcome.cancelled {
                return Err(BuildError::Cancelled);
            }
            if !outcome.status.success() {
                let status = if outcome.timed_out {
                    "timed out".to_owned()
                } else {
                    match outcome.status {
                        hoist_runtime::ExitStatus::Code(c) => format!("exit code: {c}"),
                        hoist_runtime::ExitStatus::Signal(s) => format!("killed by signal {s}"),
                    }
                };
                return Err(BuildError::RunFailed(Box::new(crate::error::RunFailure {
                    file: run.file.clone(),
                    line: ctx.line,
                    instruction: ctx.text.to_owned(),
                    command: argv.join(" "),
                    status,
                    tail: lines.tail(),
                })));
            }
            remove_stubs(scratch.upper(), &absent, walk.is_none())
                .map_err(|e| fail(e.to_string()))?;
            let changes = match &walk {
                None => hoist_snapshot::diff_upper(scratch.upper())?,
                Some(before) => before.diff(scratch.upper())?,
            };
            if changes.is_empty() {
                return Ok(None);
            }
            // A walked rootfs holds every layer: not a snapshot of this one alone.
            self.commit_dir(run, scratch.upper(), Some(&changes), walk.is_none())
                .map(Some)
        })
    }

    /// Apply `layers` in order onto the empty directory `dir`.
    fn materialize(&self, layers: &[Layer], dir: &Path) -> Result<(), BuildError> {
        for l in layers {
            let blob = self
                .store
                .blobs()
                .open_blob(&l.desc.digest, Some(l.desc.size))?;
            let report =
                hoist_layer::apply_layer(std::io::BufReader::new(blob), dir, &Default::default())
                    .map_err(|e| BuildError::Step {
                    file: dir.to_owned(),
                    line: 0,
                    instruction: format!("apply layer {}", l.desc.digest),
                    message: e.to_string(),
                })?;
            if report.diff_id != l.diff_id {
                return Err(BuildError::Step {
                    file: dir.to_owned(),
                    line: 0,
                    instruction: format!("apply layer {}", l.desc.digest),
                    message: format!(
                        "diff_id {} where the config says {}",
                        report.diff_id, l.diff_id
                    ),
                });
            }
        }
        Ok(())
    }

    /// What identifies a bind mount's content in the cache key.
    fn bind_source_key(
        &self,
        run: &Run<'_>,
        m: &hoist_dockerfile::instruction::Mount,
    ) -> Result<String, String> {
        match &m.from {
            None => {
                let source = m.source.clone().unwrap_or_else(|| "/".to_owned());
                let op = CopyOp {
                    sources: std::slice::from_ref(&source),
                    dest: "/",
                    workdir: "/",
                    from: CopyFrom::Context(&run.context),
                    exclude: &[],
                    chown: None,
                    chmod: None,
                    link: true,
                    dest_view: &PlainDir::new(run.empty.clone()),
                    add: None,
                    source_date_epoch: None,
                };
                copy::source_digest(&op, run.work.path())
                    .map(|d| d.to_string())
                    .map_err(|e| format!("--mount=type=bind,source={source}: {e}"))
            }
            Some(from) => Ok(format!("from={from}:{}", self.source_key(run, from)?)),
        }
    }

    /// The key of a stage (by name or index) or image named by `--from`.
    fn source_key(&self, run: &Run<'_>, from: &str) -> Result<String, String> {
        let (state, _) = self.source_state(run, from)?;
        Ok(state.key.0.to_string())
    }

    /// The state of a stage or image named by `--from`/`from=`.
    fn source_state(&self, run: &Run<'_>, from: &str) -> Result<(State, String), String> {
        if let Some(stage) = run.df.stage(from) {
            return run
                .results
                .lock()
                .ok()
                .and_then(|r| r.get(&stage.index).cloned())
                .map(|s| (s, stage_label(&run.df, stage.index)))
                .ok_or_else(|| format!("stage {from:?} has not been built"));
        }
        self.image_state(from, run.opts.puller.as_ref())
            .map(|s| (s, from.to_owned()))
    }

    #[allow(clippy::too_many_arguments)]
    fn prepare_mount(
        &self,
        run: &Run<'_>,
        m: &hoist_dockerfile::instruction::Mount,
        n: usize,
        scratch: &Path,
        bind: &mut Vec<BindMount>,
        env: &mut Vec<String>,
        locks: &mut Vec<fs::File>,
    ) -> Result<(), String> {
        match m.kind {
            MountType::Cache => {
                let target = m.target.clone().ok_or("--mount=type=cache needs target=")?;
                let id = m.id.clone().unwrap_or_else(|| target.clone());
                let dir = self
                    .cache
                    .mount_dir(
                        &id,
                        m.mode.unwrap_or(0o755),
                        m.uid.unwrap_or(0),
                        m.gid.unwrap_or(0),
                    )
                    .map_err(|e| e.to_string())?;
                if matches!(m.sharing, Some(Sharing::Locked) | Some(Sharing::Private)) {
                    let lock = self.cache.mount_lock(&id).map_err(|e| e.to_string())?;
                    lock.lock()
                        .map_err(|e| format!("cache mount {id}: lock: {e}"))?;
                    locks.push(lock);
                }
                bind.push(BindMount {
                    source: dir,
                    destination: target,
                    readonly: m.readonly,
                });
            }
            MountType::Secret => {
                let id =
                    m.id.clone()
                        .or_else(|| {
                            m.target
                                .as_deref()
                                .and_then(|t| Path::new(t).file_name())
                                .map(|f| f.to_string_lossy().into_owned())
                        })
                        .ok_or("--mount=type=secret needs id= or target=")?;
                let Some(source) = run.opts.secrets.get(&id) else {
                    if m.required {
                        return Err(format!(
                            "secret {id:?} is required but was not given (pass --secret id={id},src=PATH)"
                        ));
                    }
                    return Ok(());
                };
                let value = match source {
                    SecretSource::File(p) => {
                        fs::read(p).map_err(|e| format!("secret {id}: {}: {e}", p.display()))?
                    }
                    SecretSource::Value(v) => v.clone(),
                };
                if let Some(var) = &m.env {
                    env.push(format!("{var}={}", String::from_utf8_lossy(&value)));
                    if m.target.is_none() {
                        return Ok(());
                    }
                }
                let file = scratch.join(format!("secret-{n}"));
                fs::write(&file, &value).map_err(|e| format!("secret {id}: {e}"))?;
                fs::set_permissions(&file, fs::Permissions::from_mode(m.mode.unwrap_or(0o400)))
                    .map_err(|e| format!("secret {id}: {e}"))?;
                std::os::unix::fs::chown(&file, Some(m.uid.unwrap_or(0)), Some(m.gid.unwrap_or(0)))
                    .map_err(|e| format!("secret {id}: {e}"))?;
                bind.push(BindMount {
                    source: file,
                    destination: m
                        .target
                        .clone()
                        .unwrap_or_else(|| format!("/run/secrets/{id}")),
                    readonly: true,
                });
            }
            MountType::Bind => {
                let target = m.target.clone().ok_or("--mount=type=bind needs target=")?;
                let source = m.source.clone().unwrap_or_else(|| "/".to_owned());
                let direct = m.from.is_none() && m.readonly;
                if direct {
                    let rel = clean_relative(&source)?;
                    let path = run.context.root().join(&rel);
                    if !path.exists() {
                        return Err(format!(
                            "--mount=type=bind,source={source}: not found in the build context"
                        ));
                    }
                    bind.push(BindMount {
                        source: path,
                        destination: target,
                        readonly: true,
                    });
                    return Ok(());
                }
                // From a stage or image, or writable: a private copy (writes are discarded).
                let dir = scratch.join(format!("bind-{n}"));
                fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                let held;
                let from_tree: CopyFrom<'_> = match &m.from {
                    None => CopyFrom::Context(&run.context),
                    Some(from) => {
                        let (state, _) = self.source_state(run, from)?;
                        let lowers = self.lowers(&state.layers).map_err(|e| e.to_string())?;
                        held = MergedView::new(lowers);
                        CopyFrom::Tree(&held)
                    }
                };
                let sources = [source.clone()];
                let empty = PlainDir::new(run.empty.clone());
                let op = CopyOp {
                    sources: &sources,
                    dest: "/",
                    workdir: "/",
                    from: from_tree,
                    exclude: &[],
                    chown: None,
                    chmod: None,
                    link: true,
                    dest_view: &empty,
                    add: None,
                    source_date_epoch: None,
                };
                copy::execute(&op, &dir, run.work.path())
                    .map_err(|e| format!("--mount=type=bind,source={source}: {e}"))?;
                bind.push(BindMount {
                    source: dir,
                    destination: target,
                    readonly: m.readonly,
                });
            }
            MountType::Tmpfs => {
                // A private empty directory: writable and discarded, as tmpfs would be.
                let target = m.target.clone().ok_or("--mount=type=tmpfs needs target=")?;
                let dir = scratch.join(format!("tmpfs-{n}"));
                fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                bind.push(BindMount {
                    source: dir,
                    destination: target,
                    readonly: false,
                });
            }
            MountType::Ssh => {
                return Err(
                    "--mount=type=ssh is not supported (no SSH agent forwarding yet)".to_owned(),
                )
            }
        }
        Ok(())
    }

    fn copy_step(
        &self,
        run: &Run<'_>,
        state: &mut State,
        ins: CopyLike<'_>,
        ctx: &StepCtx<'_>,
    ) -> Result<StepResult, BuildError> {
        let fail = |m: String| run.located(ctx.line, ctx.text, m);
        let lexer = run.df.lexer();
        let vars = state.vars();
        let word = |w: &str| {
            lexer
                .process_word(w, &vars)
                .map_err(|e| fail(e.to_string()))
        };
        let (sources, dest, from, chown, chmod, link, excludes, keyword) = match ins {
            CopyLike::Copy(c) => {
                if c.parents {
                    return Err(fail("COPY --parents is not supported yet".to_owned()));
                }
                (
                    &c.sources,
                    &c.dest,
                    c.from.as_ref(),
                    &c.chown,
                    &c.chmod,
                    c.link,
                    &c.excludes,
                    "COPY",
                )
            }
            CopyLike::Add(a) => (
                &a.sources,
                &a.dest,
                None,
                &a.chown,
                &a.chmod,
                a.link,
                &a.excludes,
                "ADD",
            ),
        };
        let add = match ins {
            CopyLike::Add(a) => Some(AddOptions {
                checksum: match &a.checksum {
                    Some(c) => Some(
                        word(c)?
                            .parse::<Digest>()
                            .map_err(|e| fail(format!("--checksum: {e}")))?,
                    ),
                    None => None,
                },
                unpack: a.unpack.unwrap_or(true),
            }),
            CopyLike::Copy(_) => None,
        };
        let dest = word(dest)?;
        let chown_spec = match chown {
            Some(c) => Some(word(c)?),
            None => None,
        };
        let chmod = match chmod {
            Some(c) => Some(copy::parse_chmod(&word(c)?).map_err(|e| fail(e.to_string()))?),
            None => None,
        };
        let excludes: Vec<String> = excludes.iter().map(|e| word(e)).collect::<Result<_, _>>()?;
        let workdir = {
            let w = state.container_ref().working_dir;
            if w.is_empty() {
                "/".to_owned()
            } else {
                w
            }
        };
        // Sources: paths, or heredoc files written to a private directory.
        let mut paths = Vec::new();
        let inline_dir = run.work.path().join(format!("inline-{}", ctx.number));
        let mut inline = false;
        for s in sources {
            match s {
                Source::Path(p) => paths.push(word(p)?),
                Source::Inline(f) => {
                    inline = true;
                    fs::create_dir_all(&inline_dir).map_err(BuildError::io(&inline_dir))?;
                    let content = if f.expand {
                        word(&f.content)?
                    } else {
                        f.content.clone()
                    };
                    let path = inline_dir.join(&f.name);
                    fs::write(&path, content).map_err(BuildError::io(&path))?;
                    paths.push(f.name.clone());
                }
            }
        }
        if inline
            && paths.len()
                != sources
                    .iter()
                    .filter(|s| matches!(s, Source::Inline(_)))
                    .count()
        {
            return Err(fail(
                "mixing heredoc and path sources is not supported".to_owned(),
            ));
        }
        let from_name = match from {
            Some(f) => Some(
                lexer
                    .process_word(f, &run.global)
                    .map_err(|e| fail(e.to_string()))?,
            ),
            None => None,
        };
        let inline_tree = PlainDir::new(inline_dir.clone());
        let empty = PlainDir::new(run.empty.clone());
        let from_state = match &from_name {
            Some(f) => Some(self.source_state(run, f).map_err(fail)?),
            None => None,
        };
        // What the sources are: the source stage's key, or the content digest.
        let source_id = match &from_state {
            Some((s, _)) => s.key.0.to_string(),
            None => {
                let from_tree = if inline {
                    CopyFrom::Tree(&inline_tree)
                } else {
                    CopyFrom::Context(&run.context)
                };
                let op = CopyOp {
                    sources: &paths,
                    dest: &dest,
                    workdir: &workdir,
                    from: from_tree,
                    exclude: &excludes,
                    chown: None,
                    chmod,
                    link,
                    dest_view: &empty,
                    add: add.clone(),
                    source_date_epoch: run.epoch,
                };
                copy::source_digest(&op, run.work.path())
                    .map_err(|e| fail(e.to_string()))?
                    .to_string()
            }
        };
        let key = state.key.child(&[
            keyword,
            &serde_json::to_string(&paths).unwrap_or_default(),
            &dest,
            &workdir,
            chown_spec.as_deref().unwrap_or(""),
            &format!("{chmod:?}"),
            &format!("{link}"),
            &excludes.join("\n"),
            &format!("{:?}", add),
            &source_id,
        ]);
        let created_by = format!("{} # buildkit", ctx.text);
        let layers = state.layers.clone();
        self.cached_or(run, key, created_by, || {
            let view = MergedView::new(self.lowers(&layers)?);
            let chown = match &chown_spec {
                Some(c) => Some(copy::resolve_chown(c, &view).map_err(|e| fail(e.to_string()))?),
                None => None,
            };
            let held;
            let from_tree = match &from_state {
                Some((s, _)) => {
                    held = MergedView::new(self.lowers(&s.layers)?);
                    CopyFrom::Tree(&held)
                }
                None if inline => CopyFrom::Tree(&inline_tree),
                None => CopyFrom::Context(&run.context),
            };
            let dest_view: &dyn Tree = if link { &empty } else { &view };
            let op = CopyOp {
                sources: &paths,
                dest: &dest,
                workdir: &workdir,
                from: from_tree,
                exclude: &excludes,
                chown,
                chmod,
                link,
                dest_view,
                add: add.clone(),
                source_date_epoch: run.epoch,
            };
            let scratch = self.snapshots.scratch()?;
            copy::execute(&op, scratch.upper(), run.work.path())
                .map_err(|e| fail(e.to_string()))?;
            self.commit_dir(run, scratch.upper(), None, true).map(Some)
        })
    }

    fn workdir_step(
        &self,
        run: &Run<'_>,
        state: &mut State,
        ctx: &StepCtx<'_>,
    ) -> Result<StepResult, BuildError> {
        let fail = |m: String| run.located(ctx.line, ctx.text, m);
        let config = state.container_ref();
        let dir = config.working_dir.clone();
        let user = config.user.clone();
        let key = state.key.child(&["WORKDIR", &dir, &user]);
        let layers = state.layers.clone();
        self.cached_or(run, key, ctx.text.to_owned(), || {
            let view = MergedView::new(self.lowers(&layers)?);
            if let Ok(Some(p)) = view.resolve(Path::new(&dir)) {
                if let Ok(Some(node)) = view.lstat(&p) {
                    if node.metadata.is_dir() {
                        return Ok(None);
                    }
                }
            }
            let owner = if user.is_empty() {
                (0, 0)
            } else {
                copy::resolve_chown(&user, &view).map_err(|e| fail(e.to_string()))?
            };
            let scratch = self.snapshots.scratch()?;
            copy::make_dir(&dir, owner, &view, scratch.upper()).map_err(|e| fail(e.to_string()))?;
            self.commit_dir(run, scratch.upper(), None, true).map(Some)
        })
    }

    /// `hoist prune`: forget the step cache and cache mounts, drop snapshots no image
    /// uses, and collect every blob no image reaches.
    pub fn prune(&self) -> Result<PruneReport, BuildError> {
        let mut report = PruneReport::default();
        let mut inner: Result<(), BuildError> = Ok(());
        // Everything happens under GC's exclusive lock, which builds hold shared for
        // their whole run: no build is using a snapshot or a cache record meanwhile.
        let gc = self.store.gc_keeping(|| {
            inner = (|| {
                report.cache_records = self.cache.clear()?;
                let mut keep = BTreeSet::new();
                for rec in self.store.list()? {
                    if let Ok(m) = hoist_oci::transfer::platform_manifest(&self.store, &rec) {
                        if let Ok(c) = self.store.config(&m.config.digest) {
                            keep.extend(c.rootfs.diff_ids);
                        }
                    }
                }
                report.snapshots = self.snapshots.prune(&keep)?.removed;
                Ok(())
            })();
            Ok(BTreeSet::new())
        })?;
        inner?;
        report.blobs = gc.blobs_removed as u64;
        report.bytes = gc.bytes_freed;
        Ok(report)
    }
}

/// `COPY` or `ADD`.
#[derive(Clone, Copy)]
enum CopyLike<'a> {
    Copy(&'a CopyInstruction),
    Add(&'a AddInstruction),
}

fn stage_label(df: &Dockerfile, index: usize) -> String {
    df.stages[index]
        .name()
        .map_or_else(|| format!("stage-{index}"), str::to_owned)
}

fn ms(t0: Instant) -> u64 {
    u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn scratch_state() -> State {
    let host = Platform::host();
    State {
        layers: Vec::new(),
        config: ImageConfig {
            architecture: host.architecture,
            os: host.os,
            config: Some(ContainerConfig::default()),
            rootfs: RootFs {
                kind: "layers".to_owned(),
                diff_ids: Vec::new(),
            },
            ..Default::default()
        },
        key: CacheKey::root("scratch"),
        args: Vec::new(),
        cmd_set: false,
    }
}

/// The script a shell-form `RUN` hands to the shell. A lone heredoc (`RUN <<EOF`)
/// is the script itself; otherwise the heredoc bodies follow the command, as a
/// shell reads them.
fn shell_script(command: &str, heredocs: &[hoist_dockerfile::parser::Heredoc]) -> String {
    if heredocs.is_empty() {
        return command.to_owned();
    }
    if heredocs.len() == 1 {
        if let Some(h) = hoist_dockerfile::parser::heredoc_marker(command.trim()) {
            if h.name == heredocs[0].name && heredocs[0].fd == 0 {
                return heredocs[0].chomped_content().into_owned();
            }
        }
    }
    let mut s = command.to_owned();
    s.push('\n');
    for h in heredocs {
        s.push_str(&h.content);
        if !h.content.is_empty() && !h.content.ends_with('\n') {
            s.push('\n');
        }
        s.push_str(&h.name);
        s.push('\n');
    }
    s
}

/// Paths the runtime mounts over; a stub it had to create is not the step's output.
const STANDARD_MOUNTPOINTS: &[&str] = &[
    "/proc",
    "/sys",
    "/dev",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
];

/// Remove mountpoint stubs (empty files and dirs the runtime created where the
/// image had nothing) from an upper dir, with parents left empty by that when
/// `parents` (an overlay upper holds only what changed; a whole rootfs does not).
fn remove_stubs(upper: &Path, absent: &[PathBuf], parents: bool) -> std::io::Result<()> {
    for p in absent {
        let rel = p.strip_prefix("/").unwrap_or(p);
        let path = upper.join(rel);
        let Ok(md) = fs::symlink_metadata(&path) else {
            continue;
        };
        let removed = if md.is_dir() {
            fs::remove_dir(&path).is_ok()
        } else if md.is_file() && md.len() == 0 {
            fs::remove_file(&path).is_ok()
        } else {
            false
        };
        if !removed || !parents {
            continue;
        }
        let mut parent = rel.parent();
        while let Some(dir) = parent {
            if dir.as_os_str().is_empty() {
                break;
            }
            let full = upper.join(dir);
            let opaque =
                rustix::fs::lgetxattr(&full, "trusted.overlay.opaque", &mut [0u8; 8]).is_ok();
            if opaque || fs::remove_dir(&full).is_err() {
                break;
            }
            parent = dir.parent();
        }
    }
    Ok(())
}

/// A relative path inside the context; `..` that leaves it is an error.
fn clean_relative(source: &str) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for c in Path::new(source).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir if !out.pop() => {
                return Err(format!("{source}: outside the build context"));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Splits `RUN` output into lines for progress, keeping the last few.
struct OutputLines<'a> {
    progress: &'a dyn Progress,
    step: usize,
    partial: [Vec<u8>; 2],
    tail: std::collections::VecDeque<String>,
}

impl<'a> OutputLines<'a> {
    fn new(progress: &'a dyn Progress, step: usize) -> Self {
        OutputLines {
            progress,
            step,
            partial: [Vec::new(), Vec::new()],
            tail: std::collections::VecDeque::new(),
        }
    }

    fn push(&mut self, stream: Stream, bytes: &[u8]) {
        let i = usize::from(matches!(stream, Stream::Stderr));
        self.partial[i].extend_from_slice(bytes);
        while let Some(pos) = self.partial[i].iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial[i].drain(..=pos).collect();
            self.emit(i, &line[..line.len() - 1]);
        }
    }

    fn emit(&mut self, i: usize, line: &[u8]) {
        let line = String::from_utf8_lossy(line).into_owned();
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.clone());
        self.progress.event(&Event::StepOutput {
            step: self.step,
            stream: if i == 0 {
                OutputStream::Stdout
            } else {
                OutputStream::Stderr
            },
            line,
        });
    }

    fn flush(&mut self) {
        for i in 0..2 {
            if !self.partial[i].is_empty() {
                let line = std::mem::take(&mut self.partial[i]);
                self.emit(i, &line);
            }
        }
    }

    fn tail(&self) -> Vec<String> {
        self.tail.iter().cloned().collect()
    }
}

/// `SOURCE_DATE_EPOCH` for a context: the commit time of `HEAD` when the context is
/// in a git repository (read with the `git` command), else `None`.
pub fn git_commit_time(dir: &Path) -> Option<i64> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["log", "-1", "--format=%ct"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Parse `--secret id=ID[,src=PATH|,env=VAR]` (buildx syntax); `env` is read from
/// `lookup_env`.
pub fn parse_secret(
    spec: &str,
    lookup_env: impl Fn(&str) -> Option<String>,
) -> Result<(String, SecretSource), String> {
    let mut id = None;
    let mut src = None;
    let mut env = None;
    for field in spec.split(',') {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| format!("--secret {spec:?}: {field:?} is not key=value"))?;
        match k.trim().to_ascii_lowercase().as_str() {
            "id" => id = Some(v.to_owned()),
            "src" | "source" => src = Some(PathBuf::from(v)),
            "env" => env = Some(v.to_owned()),
            "type" if v == "file" || v == "env" => {}
            other => {
                return Err(format!(
                    "--secret {spec:?}: unknown key {other:?} (id, src, env)"
                ))
            }
        }
    }
    let id = id.ok_or_else(|| format!("--secret {spec:?}: id= is required"))?;
    let source = match (src, env) {
        (Some(p), None) => SecretSource::File(p),
        (None, Some(var)) => SecretSource::Value(
            lookup_env(&var)
                .ok_or_else(|| format!("--secret {spec:?}: environment variable {var} is not set"))?
                .into_bytes(),
        ),
        (None, None) => match lookup_env(&id) {
            Some(v) => SecretSource::Value(v.into_bytes()),
            None => return Err(format!("--secret {spec:?}: give src=PATH or env=VAR")),
        },
        (Some(_), Some(_)) => {
            return Err(format!("--secret {spec:?}: give src= or env=, not both"))
        }
    };
    Ok((id, source))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_dockerfile::parser::Heredoc;

    fn heredoc(name: &str, content: &str) -> Heredoc {
        Heredoc {
            name: name.to_owned(),
            expand: true,
            content: content.to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn a_lone_heredoc_is_the_script() {
        let h = heredoc("EOF", "echo one\necho two\n");
        assert_eq!(shell_script("<<EOF", &[h]), "echo one\necho two\n");
    }

    #[test]
    fn heredocs_after_a_command_follow_it_as_a_shell_reads_them() {
        let h = heredoc("EOF", "print('hi')\n");
        assert_eq!(
            shell_script("python3 <<EOF", &[h]),
            "python3 <<EOF\nprint('hi')\nEOF\n"
        );
        assert_eq!(shell_script("echo plain", &[]), "echo plain");
    }

    #[test]
    fn secrets_parse_as_buildx_does() {
        let env = |k: &str| (k == "TOKEN").then(|| "from-env".to_owned());
        assert_eq!(
            parse_secret("id=a,src=/run/a", env).unwrap(),
            ("a".to_owned(), SecretSource::File("/run/a".into()))
        );
        assert_eq!(
            parse_secret("id=t,env=TOKEN", env).unwrap().1,
            SecretSource::Value(b"from-env".to_vec())
        );
        assert!(parse_secret("src=/x", env).unwrap_err().contains("id="));
        assert!(parse_secret("id=x,env=MISSING", env)
            .unwrap_err()
            .contains("MISSING"));
        assert!(parse_secret("id=x,bogus=1", env)
            .unwrap_err()
            .contains("bogus"));
    }

    #[test]
    fn bind_sources_stay_in_the_context() {
        assert_eq!(
            clean_relative("./src/../lib").unwrap(),
            PathBuf::from("lib")
        );
        assert_eq!(clean_relative("/abs/x").unwrap(), PathBuf::from("abs/x"));
        assert!(clean_relative("../outside").is_err());
    }

    #[test]
    fn cache_keys_chain_and_separate_their_parts() {
        let root = CacheKey::root("scratch");
        assert_ne!(root.child(&["ab", "c"]), root.child(&["a", "bc"]));
        assert_eq!(root.child(&["x"]), CacheKey::root("scratch").child(&["x"]));
        assert_ne!(
            root.child(&["x"]).child(&["y"]),
            root.child(&["y"]).child(&["x"])
        );
    }
}
