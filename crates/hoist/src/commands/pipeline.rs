//! `hoist up` and `hoist runs ...`: thin handlers over hoist-pipeline. `up` reads
//! hoist.yml, hands it to the engine and draws the stages as they move.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use hoist_pipeline::runs::{Run, Runs, Status};
use hoist_pipeline::{Engine, Progress, Through};
use hoist_pipeline_spec::buildspec::Buildspec;
use hoist_pipeline_spec::hoistfile::PipelineSpec;

use crate::cli::{DecideArgs, InitArgs, RunsCommand, UpArgs};
use crate::settings::Settings;

/// `hoist up [DIR]`
pub fn up(settings: &Settings, args: UpArgs) -> Result<()> {
    let dir = args
        .dir
        .canonicalize()
        .with_context(|| format!("{}: no such directory", args.dir.display()))?;
    let (mut spec, buildspec) = pipeline_of(&dir, args.file.as_deref())?;
    if let Some(addr) = args.listen {
        if let Some(listener) = spec
            .environments
            .first_mut()
            .and_then(|e| e.service.listener.as_mut())
        {
            listener.addr = addr;
        }
    }
    let store = settings.store()?;
    let builder = super::build::builder(settings)?;
    let exe = hoist_deploy::client::current_exe()?;
    let engine = Engine::new(&settings.home, &exe, store, builder)?;
    let json = settings.json;
    let observer = move |p: &Progress<'_>| draw(json, p);
    let result = engine.run_working_tree(
        &dir,
        &spec,
        buildspec.as_ref(),
        "hoist up",
        if args.all {
            Through::All
        } else {
            Through::First
        },
        &observer,
    )?;
    if json {
        let urls: serde_json::Map<String, serde_json::Value> = result
            .urls
            .iter()
            .map(|(e, u)| (e.clone(), serde_json::Value::from(u.as_str())))
            .collect();
        println!(
            "{}",
            serde_json::json!({"run": result.run, "image": result.image, "digest": result.digest, "urls": urls})
        );
    } else {
        for (env, url) in &result.urls {
            println!("{env}: {url}");
        }
    }
    Ok(())
}

/// What `hoist up DIR` runs: DIR's hoist.yml (or `file`); without one, a
/// CodeBuild repository's buildspec.yml as the build, in the pipeline `hoist init`
/// would write (its guessed test commands left to the buildspec).
fn pipeline_of(dir: &Path, file: Option<&Path>) -> Result<(PipelineSpec, Option<Buildspec>)> {
    let hoist_yml = file
        .map(Path::to_owned)
        .unwrap_or_else(|| dir.join("hoist.yml"));
    let buildspec_yml = dir.join("buildspec.yml");
    if file.is_some() || hoist_yml.is_file() || !buildspec_yml.is_file() {
        let text = std::fs::read_to_string(&hoist_yml).with_context(|| {
            format!(
                "reading {} (write one with `hoist init`, or name it with --file)",
                hoist_yml.display()
            )
        })?;
        let shown = hoist_yml.display().to_string();
        let spec = PipelineSpec::parse(&shown, &text).map_err(|e| anyhow::anyhow!("{e}"))?;
        return Ok((spec, None));
    }
    let text = std::fs::read_to_string(&buildspec_yml)
        .with_context(|| format!("reading {}", buildspec_yml.display()))?;
    let shown = buildspec_yml.display().to_string();
    let buildspec = Buildspec::parse(&shown, &text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let facts = hoist_pipeline_spec::init::RepoFacts::detect(dir)
        .with_context(|| format!("reading {}", dir.display()))?;
    let starter = hoist_pipeline_spec::init::starter(&facts);
    let mut spec = PipelineSpec::parse("(the starter hoist.yml of `hoist init`)", &starter)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    spec.test.clear();
    Ok((spec, Some(buildspec)))
}

/// `hoist approve RUN --env ENV` (`approve`) and `hoist reject` (not).
pub fn decide(settings: &Settings, args: DecideArgs, approve: bool) -> Result<()> {
    let runs = Runs::open(&settings.home.join("pipeline"))?;
    let by = args
        .by
        .unwrap_or_else(|| format!("uid {}", rustix::process::getuid().as_raw()));
    runs.decide(args.run, &args.environment, approve, &by)?;
    eprintln!(
        "run #{}: {} {} by {by}",
        args.run,
        args.environment,
        if approve { "approved" } else { "rejected" }
    );
    Ok(())
}

/// `hoist init [DIR]`
pub fn init(args: InitArgs) -> Result<()> {
    let path = args.dir.join("hoist.yml");
    if path.exists() && !args.force {
        bail!("{} exists; pass --force to replace it", path.display());
    }
    let facts = hoist_pipeline_spec::init::RepoFacts::detect(&args.dir)
        .with_context(|| format!("reading {}", args.dir.display()))?;
    let text = hoist_pipeline_spec::init::starter(&facts);
    hoist_oci::write_atomic(&path, |f| f.write_all(text.as_bytes()))?;
    eprintln!(
        "wrote {}; run it with `hoist up {}`",
        path.display(),
        args.dir.display()
    );
    Ok(())
}

fn draw(json: bool, p: &Progress<'_>) {
    let mut err = std::io::stderr().lock();
    if json {
        let v = match p {
            Progress::RunStarted { run, commit } => {
                serde_json::json!({"run": run, "commit": commit})
            }
            Progress::Stage {
                name,
                status,
                message,
            } => serde_json::json!({"stage": name, "status": status, "message": message}),
            Progress::Line { stage, line } => serde_json::json!({"stage": stage, "log": line}),
        };
        let _ = writeln!(err, "{v}");
        return;
    }
    let _ = match p {
        Progress::RunStarted { run, commit } => {
            let what = if commit.sha.is_empty() {
                "the working tree (not a git commit)".to_owned()
            } else {
                format!(
                    "{}{}{}",
                    &commit.sha[..commit.sha.len().min(12)],
                    if commit.dirty {
                        " + uncommitted changes"
                    } else {
                        ""
                    },
                    commit
                        .branch
                        .as_ref()
                        .map(|b| format!(" on {b}"))
                        .unwrap_or_default()
                )
            };
            writeln!(err, "run #{run}: {what}")
        }
        Progress::Stage {
            name,
            status: Status::Running,
            ..
        } => writeln!(err, "==> {name}"),
        Progress::Stage {
            name,
            status,
            message,
        } => writeln!(
            err,
            "<== {name} {}: {}",
            status.as_str(),
            message.unwrap_or_default()
        ),
        Progress::Line { line, .. } => writeln!(err, "    {line}"),
    };
}

/// `hoist runs ...`
pub fn runs(settings: &Settings, cmd: RunsCommand) -> Result<()> {
    let runs = Runs::open(&settings.home.join("pipeline"))?;
    let get = |id: i64| -> Result<Run> {
        runs.get(id)?
            .with_context(|| format!("no run #{id} (see `hoist runs ls`)"))
    };
    match cmd {
        RunsCommand::Ls { limit } => {
            let all: Vec<Run> = runs
                .list(limit)?
                .into_iter()
                .map(get)
                .collect::<Result<_>>()?;
            if settings.json {
                println!("{}", serde_json::to_string_pretty(&all)?);
                return Ok(());
            }
            println!(
                "{:<6} {:<16} {:<10} {:<14} {:<20} IMAGE",
                "RUN", "APP", "STATUS", "COMMIT", "STAGE"
            );
            for r in all {
                let at = r
                    .stages
                    .iter()
                    .rev()
                    .find(|s| s.status != Status::Pending && s.status != Status::Skipped)
                    .map(|s| s.name.clone())
                    .unwrap_or_default();
                let sha = &r.commit.sha[..r.commit.sha.len().min(12)];
                let commit = format!("{sha}{}", if r.commit.dirty { "+" } else { "" });
                println!(
                    "{:<6} {:<16} {:<10} {:<14} {:<20} {}",
                    format!("#{}", r.id),
                    r.app,
                    r.status.as_str(),
                    commit,
                    at,
                    r.image.unwrap_or_default()
                );
            }
        }
        RunsCommand::Show { run } => {
            let r = get(run)?;
            if settings.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
                return Ok(());
            }
            println!(
                "run #{} of {} ({}): {}",
                r.id,
                r.app,
                r.trigger,
                r.status.as_str()
            );
            if let Some(e) = &r.error {
                println!("error: {e}");
            }
            for s in &r.stages {
                println!(
                    "  {:<20} {:<10} {}",
                    s.name,
                    s.status.as_str(),
                    s.message.clone().unwrap_or_default()
                );
            }
        }
        RunsCommand::Logs { run, stage, follow } => {
            let r = get(run)?;
            if let Some(want) = &stage {
                if !r.stages.iter().any(|s| &s.name == want) {
                    bail!("run #{run} has no stage {want:?}");
                }
            }
            let mut out = std::io::stdout().lock();
            // Per stage: bytes of its log printed so far, and whether its header was.
            let mut printed: Vec<(u64, bool)> = vec![(0, false); r.stages.len()];
            loop {
                // Read the run before the logs: what it says ended has all its lines.
                let r = get(run)?;
                for (s, (offset, header)) in r
                    .stages
                    .iter()
                    .zip(printed.iter_mut())
                    .filter(|(s, _)| stage.as_ref().is_none_or(|w| *w == s.name))
                {
                    let path = runs.log_path(run, s.seq);
                    let Ok(mut file) = std::fs::File::open(&path) else {
                        continue;
                    };
                    let mut text = Vec::new();
                    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(*offset))?;
                    std::io::Read::read_to_end(&mut file, &mut text)?;
                    // Only whole lines: a writer may be halfway through one.
                    let whole = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
                    let whole = if s.status.is_final() {
                        text.len()
                    } else {
                        whole
                    };
                    if whole == 0 {
                        continue;
                    }
                    if stage.is_none() && !*header {
                        writeln!(out, "==> {}", s.name)?;
                        *header = true;
                    }
                    out.write_all(&text[..whole])?;
                    *offset += whole as u64;
                }
                out.flush()?;
                if !follow || r.status.is_final() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
        }
    }
    Ok(())
}
