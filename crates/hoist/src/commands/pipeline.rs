//! `hoist up` and `hoist runs ...`: thin handlers over hoist-pipeline. `up` reads
//! hoist.yml, hands it to the engine and draws the stages as they move.

use std::io::Write;

use anyhow::{bail, Context, Result};
use hoist_pipeline::runs::{Run, Runs, Status};
use hoist_pipeline::{Engine, Progress, Through};

use crate::cli::{DecideArgs, InitArgs, RunsCommand, UpArgs};
use crate::settings::Settings;

/// `hoist up [DIR]`
pub fn up(settings: &Settings, args: UpArgs) -> Result<()> {
    let dir = args
        .dir
        .canonicalize()
        .with_context(|| format!("{}: no such directory", args.dir.display()))?;
    let (mut spec, buildspec) = hoist_pipeline_spec::load::pipeline_in(&dir, args.file.as_deref())?;
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
    let engine = Engine::open(
        &settings.home,
        &exe,
        store,
        builder,
        settings.database.as_deref(),
    )?
    .with_containers(settings.pipeline_runtime()?)
    .with_registry_options(super::remote::options(&settings.home, false));
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

/// `hoist approve RUN --env ENV` (`approve`) and `hoist reject` (not).
pub fn decide(settings: &Settings, args: DecideArgs, approve: bool) -> Result<()> {
    let by = match &settings.server {
        // The server records the token's name.
        Some(_) => String::new(),
        None => args
            .by
            .unwrap_or_else(|| format!("uid {}", rustix::process::getuid().as_raw())),
    };
    History::open(settings)?.decide(args.run, &args.environment, approve, &by)?;
    eprintln!(
        "run #{}: {} {}",
        args.run,
        args.environment,
        if approve { "approved" } else { "rejected" }
    );
    Ok(())
}

/// The run history: this home's database, or a `hoist server`'s API.
enum History {
    Local(Runs),
    Remote(super::server::Client),
}

impl History {
    fn open(settings: &Settings) -> Result<History> {
        Ok(match &settings.server {
            Some(remote) => History::Remote(super::server::Client::new(remote)),
            None => History::Local(settings.runs()?),
        })
    }

    fn get(&self, id: i64) -> Result<Run> {
        match self {
            History::Local(runs) => runs
                .get(id)?
                .with_context(|| format!("no run #{id} (see `hoist runs ls`)")),
            History::Remote(c) => c.get(&format!("/api/v1/runs/{id}")),
        }
    }

    fn list(&self, limit: usize) -> Result<Vec<Run>> {
        match self {
            History::Local(runs) => runs
                .list(limit)?
                .into_iter()
                .map(|id| self.get(id))
                .collect(),
            History::Remote(c) => c.get(&format!("/api/v1/runs?limit={limit}")),
        }
    }

    /// Stage `seq`'s log from byte `offset`: whole lines unless the stage ended.
    fn log(&self, id: i64, seq: i64, offset: u64, ended: bool) -> Result<Vec<u8>> {
        match self {
            History::Local(runs) => Ok(runs.read_log(id, seq, offset, ended)?),
            History::Remote(c) => c.text(&format!(
                "/api/v1/runs/{id}/stages/{seq}/log?offset={offset}"
            )),
        }
    }

    fn decide(&self, id: i64, env: &str, approve: bool, by: &str) -> Result<()> {
        match self {
            History::Local(runs) => Ok(runs.decide(id, env, approve, by)?),
            History::Remote(c) => {
                let verb = if approve { "approve" } else { "reject" };
                c.post::<serde_json::Value>(
                    &format!("/api/v1/runs/{id}/{verb}"),
                    &serde_json::json!({ "environment": env }),
                )?;
                Ok(())
            }
        }
    }

    fn cancel(&self, id: i64) -> Result<Status> {
        match self {
            History::Local(runs) => Ok(runs.request_cancel(id)?),
            History::Remote(c) => {
                let v: serde_json::Value =
                    c.post(&format!("/api/v1/runs/{id}/cancel"), &serde_json::json!({}))?;
                Ok(serde_json::from_value(v["status"].clone())?)
            }
        }
    }

    fn retry(&self, id: i64) -> Result<()> {
        match self {
            History::Local(runs) => Ok(runs.retry(id)?),
            History::Remote(c) => {
                c.post::<serde_json::Value>(
                    &format!("/api/v1/runs/{id}/retry"),
                    &serde_json::json!({}),
                )?;
                Ok(())
            }
        }
    }
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
    let history = History::open(settings)?;
    match cmd {
        RunsCommand::Ls { limit } => {
            let all = history.list(limit)?;
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
            let r = history.get(run)?;
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
            let r = history.get(run)?;
            if let Some(want) = &stage {
                if !r.stages.iter().any(|s| &s.name == want) && r.status.is_final() {
                    bail!("run #{run} has no stage {want:?}");
                }
            }
            let mut out = std::io::stdout().lock();
            // Per stage: bytes of its log printed so far, and whether its header was.
            let mut printed: Vec<(u64, bool)> = Vec::new();
            loop {
                // Read the run before the logs: what it says ended has all its lines.
                let r = history.get(run)?;
                // A server's run learns its stages from the commit it checks out.
                printed.resize(r.stages.len(), (0, false));
                for (s, (offset, header)) in r
                    .stages
                    .iter()
                    .zip(printed.iter_mut())
                    .filter(|(s, _)| stage.as_ref().is_none_or(|w| *w == s.name))
                {
                    let text = history.log(run, s.seq, *offset, s.status.is_final())?;
                    if text.is_empty() {
                        continue;
                    }
                    if stage.is_none() && !*header {
                        writeln!(out, "==> {}", s.name)?;
                        *header = true;
                    }
                    out.write_all(&text)?;
                    *offset += text.len() as u64;
                }
                out.flush()?;
                if !follow || r.status.is_final() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
        }
        RunsCommand::Cancel { run } => {
            let now = history.cancel(run)?;
            eprintln!(
                "run #{run}: {}",
                if now == Status::Cancelled {
                    "cancelled"
                } else {
                    "cancel requested; it stops at its next check"
                }
            );
        }
        RunsCommand::Retry { run } => {
            history.retry(run)?;
            eprintln!("run #{run}: queued again; `hoist server` takes it up");
        }
    }
    Ok(())
}
