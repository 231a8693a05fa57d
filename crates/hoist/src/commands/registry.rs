//! `hoist registry serve` and `hoist registry gc`: run the embedded OCI registry
//! (hoist-registry) on an address, and collect its garbage.

use anyhow::{Context, Result};

use crate::cli::{RegistryCommand, RegistryGcArgs, RegistryServeArgs};
use crate::settings::Settings;

/// Run a `hoist registry` subcommand.
pub fn run(settings: &Settings, cmd: RegistryCommand) -> Result<()> {
    match cmd {
        RegistryCommand::Serve(args) => serve(settings, args),
        RegistryCommand::Gc(args) => gc(settings, args),
    }
}

/// The configuration file's contents, or the defaults without one.
fn load_config(path: Option<&std::path::Path>) -> Result<hoist_registry::Config> {
    match path {
        Some(p) => Ok(hoist_registry::Config::load(p)?),
        None => Ok(hoist_registry::Config::default()),
    }
}

/// Open the registry at `root` with the configuration's repository policies.
fn open(
    root: &std::path::Path,
    config: &hoist_registry::Config,
) -> Result<hoist_registry::Registry> {
    let registry = hoist_registry::Registry::open(root)
        .with_context(|| format!("opening the registry at {}", root.display()))?;
    Ok(registry.with_policies(config.repositories.clone())?)
}

/// Open the registry, bind the address, print `listening on http://ADDR` to stderr
/// once bound, and serve until the process is stopped; with a `[gc] interval`,
/// collect garbage that often.
fn serve(settings: &Settings, args: RegistryServeArgs) -> Result<()> {
    let root = args.root.unwrap_or_else(|| settings.home.join("registry"));
    let config = load_config(args.config.as_deref())?;
    let registry = open(&root, &config)?;
    for p in registry.policies().filter(|p| p.scan_on_push) {
        eprintln!(
            "warning: repositories matching {:?} ask for scan_on_push, but no scanner is installed yet; images will not be scanned",
            p.pattern
        );
    }
    if let Some(every) = config.gc.interval {
        hoist_registry::gc::schedule(registry.clone(), config.gc.clone());
        eprintln!(
            "garbage collection every {}",
            humantime::format_duration(every)
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.addr)
            .await
            .with_context(|| format!("binding {}", args.addr))?;
        let local = listener.local_addr().context("reading the bound address")?;
        eprintln!("listening on http://{local}");
        hoist_registry::serve(listener, registry)
            .await
            .context("serving the registry")
    })
}

/// Collect garbage once and print the report (text, or JSON with `--json`).
fn gc(settings: &Settings, args: RegistryGcArgs) -> Result<()> {
    let root = args.root.unwrap_or_else(|| settings.home.join("registry"));
    let config = load_config(args.config.as_deref())?;
    let registry = open(&root, &config)?;
    let report = registry
        .gc(&config.gc, args.dry_run)
        .with_context(|| format!("collecting garbage in {}", root.display()))?;
    if settings.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let verb = |done: &str, would: &str| {
        if report.dry_run {
            would.to_owned()
        } else {
            done.to_owned()
        }
    };
    for e in &report.expired {
        let tags = if e.tags.is_empty() {
            "untagged".to_owned()
        } else {
            e.tags.join(", ")
        };
        println!(
            "{} {}@{} ({tags}): {}",
            verb("expired", "would expire"),
            e.repository,
            e.digest,
            e.reason
        );
    }
    for u in &report.unlinked {
        println!(
            "{} {}@{}",
            verb("unlinked", "would unlink"),
            u.repository,
            u.digest
        );
    }
    for b in &report.blobs_removed {
        println!(
            "{} blob {} ({} bytes)",
            verb("removed", "would remove"),
            b.digest,
            b.size
        );
    }
    for u in &report.uploads_removed {
        println!("{} upload {u}", verb("removed", "would remove"));
    }
    for s in &report.skipped {
        println!("skipped: {s}");
    }
    println!(
        "{}: {} images expired, {} links dropped, {} blobs removed, {} bytes freed, {} uploads removed",
        if report.dry_run { "dry run" } else { "done" },
        report.expired.len(),
        report.unlinked.len(),
        report.blobs_removed.len(),
        report.bytes_freed,
        report.uploads_removed.len()
    );
    Ok(())
}
