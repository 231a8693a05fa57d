//! `hoist registry serve`: run the embedded OCI registry (hoist-registry) on an address;
//! `hoist registry gc`: collect its garbage; `hoist registry token create|ls|revoke`:
//! manage its access tokens.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use hoist_registry::auth::{NewToken, RepoPattern, TokenInfo, TokenStore};
use hoist_registry::{Auth, Config, Tls};

use crate::cli::{RegistryCommand, RegistryGcArgs, RegistryServeArgs, RegistryTokenCommand};
use crate::settings::Settings;

/// Run a `hoist registry` subcommand.
pub fn run(settings: &Settings, cmd: RegistryCommand) -> Result<()> {
    match cmd {
        RegistryCommand::Serve(args) => serve(settings, args),
        RegistryCommand::Gc(args) => gc(settings, args),
        RegistryCommand::Token(cmd) => token(settings, cmd),
    }
}

/// The registry's storage directory: `--root`, else `<HOIST_HOME>/registry`.
fn registry_root(settings: &Settings, root: Option<PathBuf>) -> PathBuf {
    root.unwrap_or_else(|| settings.home.join("registry"))
}

/// The configuration file's contents, or the defaults without one.
fn load_config(path: Option<&Path>) -> Result<Config> {
    match path {
        Some(p) => Ok(Config::load(p)?),
        None => Ok(Config::default()),
    }
}

/// Open the registry at `root` with the configuration's repository policies.
fn open(root: &Path, config: &Config) -> Result<hoist_registry::Registry> {
    let registry = hoist_registry::Registry::open(root)
        .with_context(|| format!("opening the registry at {}", root.display()))?;
    Ok(registry.with_policies(config.repositories.clone())?)
}

/// Authentication from the config's `[auth]` and the tokens under `root`.
fn load_auth(root: &Path, config: &Config) -> Result<Auth> {
    Auth::new(root, config.auth.clone()).context("setting up registry authentication")
}

/// The config's `[tls]` certificate and key, if any.
fn load_tls(config: &Config) -> Result<Option<Tls>> {
    match &config.tls {
        Some(tls) => Ok(Some(Tls::load(tls).context("loading the TLS certificate")?)),
        None => Ok(None),
    }
}

/// Open the registry, bind the address, print `listening on http(s)://ADDR` to stderr
/// once bound, and serve until the process is stopped; with a `[gc] interval`,
/// collect garbage that often.
fn serve(settings: &Settings, args: RegistryServeArgs) -> Result<()> {
    if args.detached {
        let _ = rustix::process::setsid();
    }
    let root = registry_root(settings, args.root);
    let config = load_config(args.config.as_deref())?;
    let mut registry = open(&root, &config)?;
    let scanned: Vec<String> = registry
        .policies()
        .filter(|p| p.scan_on_push)
        .map(|p| format!("{:?}", p.pattern))
        .collect();
    if !scanned.is_empty() {
        let db_dir = crate::commands::scan::db_dir(settings);
        registry = registry
            .clone()
            .on_push(crate::scan_on_push::hook(registry, db_dir.clone()));
        eprintln!(
            "scan on push for repositories matching {} (vulnerability database: {})",
            scanned.join(", "),
            db_dir.display()
        );
    }
    let auth = load_auth(&root, &config)?;
    let tls = load_tls(&config)?;
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
        let scheme = if tls.is_some() { "https" } else { "http" };
        eprintln!("listening on {scheme}://{local}");
        // Local clients (`hoist up`) find the first server of a root by its address file.
        let _announced = hoist_registry::announce::announce(&root, local)?;
        match tls {
            Some(tls) => hoist_registry::serve_tls(listener, registry, auth, tls).await,
            None => hoist_registry::serve(listener, registry, auth).await,
        }
        .context("serving the registry")
    })
}

/// `hoist registry token ...`
fn token(settings: &Settings, cmd: RegistryTokenCommand) -> Result<()> {
    match cmd {
        RegistryTokenCommand::Create(args) => {
            let store = TokenStore::new(&registry_root(settings, args.root.root));
            let repos = args
                .repos
                .iter()
                .map(|r| RepoPattern::new(r))
                .collect::<Result<Vec<_>, _>>()?;
            let (info, secret) = store.create(&NewToken {
                name: args.name,
                repos,
                push: args.push,
                delete: args.delete,
                expires: args.expires.map(Into::into),
            })?;
            if settings.json {
                let mut v = token_json(&info);
                v["secret"] = secret.into();
                println!("{v}");
            } else {
                eprintln!(
                    "created token {} ({} on {}); the secret is shown only this once:",
                    info.id,
                    actions(&info),
                    repos_text(&info)
                );
                println!("{secret}");
            }
            Ok(())
        }
        RegistryTokenCommand::Ls(args) => {
            let store = TokenStore::new(&registry_root(settings, args.root));
            let tokens = store.list()?;
            if settings.json {
                let list: Vec<_> = tokens.iter().map(token_json).collect();
                println!("{}", serde_json::Value::Array(list));
                return Ok(());
            }
            println!(
                "{:<12}  {:<16}  {:<18}  {:<20}  {:<20}  REPOSITORIES",
                "ID", "NAME", "ACTIONS", "CREATED", "EXPIRES"
            );
            let now = std::time::SystemTime::now();
            for t in &tokens {
                let expires = match t.expires {
                    None => "never".to_owned(),
                    Some(e) if unix(e) <= now => format!("expired {}", time(e)),
                    Some(e) => time(e),
                };
                println!(
                    "{:<12}  {:<16}  {:<18}  {:<20}  {:<20}  {}",
                    t.id,
                    t.name.as_deref().unwrap_or("-"),
                    actions(t),
                    time(t.created),
                    expires,
                    repos_text(t)
                );
            }
            Ok(())
        }
        RegistryTokenCommand::Revoke(args) => {
            let store = TokenStore::new(&registry_root(settings, args.root.root));
            let info = store.revoke(&args.id)?;
            eprintln!("revoked token {}", info.id);
            Ok(())
        }
    }
}

fn unix(secs: u64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)
}

fn time(secs: u64) -> String {
    humantime::format_rfc3339_seconds(unix(secs)).to_string()
}

fn actions(t: &TokenInfo) -> String {
    t.actions
        .iter()
        .map(|a| a.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn repos_text(t: &TokenInfo) -> String {
    t.repos
        .iter()
        .map(RepoPattern::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

fn token_json(t: &TokenInfo) -> serde_json::Value {
    serde_json::json!({
        "id": t.id,
        "name": t.name,
        "repos": t.repos.iter().map(RepoPattern::as_str).collect::<Vec<_>>(),
        "actions": t.actions,
        "created": time(t.created),
        "expires": t.expires.map(time),
    })
}

/// Collect garbage once and print the report (text, or JSON with `--json`).
fn gc(settings: &Settings, args: RegistryGcArgs) -> Result<()> {
    let root = registry_root(settings, args.root);
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
