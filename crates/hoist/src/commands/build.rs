//! `hoist build` and `hoist prune`: options into a `BuildOptions`, events into
//! buildx-like lines or JSON.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use anyhow::{anyhow, Context, Result};
use hoist_builder::{BuildOptions, Builder, Event, OutputStream, Progress};
use hoist_oci::Reference;

use crate::cli::{BuildArgs, CompressionArg, NetworkArg, ProgressArg};
use crate::settings::Settings;

/// A builder over the settings' store and runtime.
pub fn builder(settings: &Settings) -> Result<Builder> {
    let store = settings.store()?;
    let runtime = settings.runtime()?;
    let builder = Builder::new(store, runtime)?;
    // HOIST_SNAPSHOTTER=walk forces the fallback used where overlayfs is missing.
    Ok(match std::env::var("HOIST_SNAPSHOTTER").as_deref() {
        Ok("walk") => builder.with_snapshotter(hoist_builder::Snapshotter::Walk),
        Ok("overlay") => builder.with_snapshotter(hoist_builder::Snapshotter::Overlay),
        Ok(other) if !other.is_empty() => {
            return Err(anyhow!("HOIST_SNAPSHOTTER={other:?}: use overlay or walk"))
        }
        _ => builder,
    })
}

/// `hoist build`.
pub fn run(settings: &Settings, args: BuildArgs) -> Result<()> {
    let context = args
        .context
        .canonicalize()
        .with_context(|| format!("build context {}", args.context.display()))?;
    if !context.is_dir() {
        return Err(anyhow!(
            "build context {} is not a directory",
            args.context.display()
        ));
    }
    let mut opts = BuildOptions::new(&context);
    opts.dockerfile = args.file.clone();
    for t in &args.tags {
        let r: Reference = t.parse().map_err(|e| anyhow!("--tag {t:?}: {e}"))?;
        opts.tags.push(r);
    }
    let mut build_args = BTreeMap::new();
    for a in &args.build_args {
        match a.split_once('=') {
            Some((k, v)) => {
                build_args.insert(k.to_owned(), v.to_owned());
            }
            // `--build-arg KEY` takes the value from the environment, as docker does.
            None => {
                if let Ok(v) = std::env::var(a) {
                    build_args.insert(a.clone(), v);
                }
            }
        }
    }
    opts.build_args = build_args;
    opts.target = args.target.clone();
    opts.no_cache = args.no_cache;
    opts.network = match args.network {
        NetworkArg::Host => hoist_runtime::Network::Host,
        NetworkArg::None => hoist_runtime::Network::None,
    };
    for s in &args.secret {
        let (id, source) =
            hoist_builder::parse_secret(s, |v| std::env::var(v).ok()).map_err(|e| anyhow!(e))?;
        opts.secrets.insert(id, source);
    }
    opts.compression = match args.compression {
        CompressionArg::None => hoist_layer::Compression::None,
        CompressionArg::Gzip => hoist_layer::Compression::Gzip,
        CompressionArg::Zstd => hoist_layer::Compression::Zstd,
    };
    opts.source_date_epoch = args
        .source_date_epoch
        .or_else(|| hoist_builder::git_commit_time(&context));
    // Base images the store lacks are pulled from their registry.
    let store = settings.store()?;
    opts.puller = Some(hoist_builder::Puller(std::sync::Arc::new(
        move |r: &str| super::remote::pull_for_build(&store, r),
    )));
    let cancel = opts.cancel.clone();
    // Ctrl-C stops the build cleanly: containers are killed, nothing half-written stays.
    let _ = signal_hook::flag::register(signal_hook::consts::SIGINT, cancel.clone());
    let _ = signal_hook::flag::register(signal_hook::consts::SIGTERM, cancel);
    let builder = builder(settings)?;
    let style = match args.progress {
        ProgressArg::Json => Style::Json,
        ProgressArg::Quiet => Style::Quiet,
        ProgressArg::Plain => Style::Plain { output: true },
        ProgressArg::Auto if args.quiet => Style::Quiet,
        ProgressArg::Auto => Style::Plain {
            output: !std::io::stderr().is_terminal(),
        },
    };
    let renderer = Renderer {
        style,
        steps: Mutex::new(BTreeMap::new()),
    };
    let out = builder.build(&opts, &renderer)?;
    // The digest on stdout, for scripts (JSON mode has it in build_done).
    if style != Style::Json {
        println!("{}", out.manifest.digest);
    }
    Ok(())
}

/// `hoist prune`.
pub fn prune(settings: &Settings) -> Result<()> {
    let builder = builder(settings)?;
    let r = builder.prune()?;
    if settings.json {
        println!(
            "{}",
            serde_json::json!({
                "cache_records": r.cache_records,
                "snapshots": r.snapshots,
                "blobs": r.blobs,
                "bytes": r.bytes,
            })
        );
    } else {
        println!(
            "removed {} cache records, {} snapshots, {} blobs ({} bytes)",
            r.cache_records, r.snapshots, r.blobs, r.bytes
        );
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain { output: bool },
    Json,
    Quiet,
}

/// Renders events; the instruction text of each step is kept for its later lines.
struct Renderer {
    style: Style,
    steps: Mutex<BTreeMap<usize, String>>,
}

impl Progress for Renderer {
    fn event(&self, e: &Event) {
        match self.style {
            Style::Quiet => {}
            Style::Json => {
                let line = serde_json::to_string(e).unwrap_or_default();
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            Style::Plain { output } => {
                let mut err = std::io::stderr().lock();
                let _ = match e {
                    Event::BuildStarted { dockerfile, stages } => {
                        writeln!(err, "building {dockerfile} (stages: {})", stages.join(", "))
                    }
                    Event::StepStarted {
                        step,
                        stage,
                        index,
                        total,
                        instruction,
                    } => {
                        if let Ok(mut s) = self.steps.lock() {
                            s.insert(*step, instruction.clone());
                        }
                        writeln!(err, "#{step} [{stage} {index}/{total}] {instruction}")
                    }
                    Event::StepOutput { step, stream, line } if output => {
                        let tag = match stream {
                            OutputStream::Stdout => "",
                            OutputStream::Stderr => " (stderr)",
                        };
                        writeln!(err, "#{step}{tag} {line}")
                    }
                    Event::StepOutput { .. } => Ok(()),
                    Event::StepCached { step } => writeln!(err, "#{step} CACHED"),
                    Event::StepDone {
                        step, duration_ms, ..
                    } => writeln!(err, "#{step} DONE {:.1}s", *duration_ms as f64 / 1000.0),
                    Event::StepFailed { step, .. } => writeln!(err, "#{step} ERROR"),
                    Event::BuildDone {
                        digest,
                        tags,
                        steps,
                        cached,
                        duration_ms,
                        ..
                    } => {
                        let names = if tags.is_empty() {
                            String::new()
                        } else {
                            format!(" as {}", tags.join(", "))
                        };
                        writeln!(
                            err,
                            "built {digest}{names} in {:.1}s ({steps} steps, {cached} cached)",
                            *duration_ms as f64 / 1000.0
                        )
                    }
                };
            }
        }
    }
}
