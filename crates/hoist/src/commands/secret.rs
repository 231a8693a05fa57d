//! `hoist secret`: set, list and remove secrets in `<home>/secrets`. Values come in
//! through stdin or a file, never argv, and nothing here prints one.

use std::io::{IsTerminal, Read};

use anyhow::{bail, Context, Result};
use hoist_secrets::{SecretMeta, SecretStore};
use zeroize::Zeroizing;

use crate::cli::{SecretCommand, SecretSetArgs};
use crate::settings::Settings;

/// Run a `hoist secret` command.
pub fn run(settings: &Settings, cmd: SecretCommand) -> Result<()> {
    let store = SecretStore::open(&settings.home.join("secrets"))?;
    match cmd {
        SecretCommand::Set(args) => set(settings, &store, args),
        SecretCommand::Ls => ls(settings, &store),
        SecretCommand::Rm { name } => {
            if !store.remove(&name)? {
                bail!("no secret named {name:?}");
            }
            if settings.json {
                println!("{}", serde_json::json!({ "name": name, "removed": true }));
            } else {
                eprintln!("removed secret {name}");
            }
            Ok(())
        }
    }
}

fn set(settings: &Settings, store: &SecretStore, args: SecretSetArgs) -> Result<()> {
    // Check the name before asking for a value.
    hoist_secrets::validate_name(&args.name)?;
    let mut value = Zeroizing::new(Vec::new());
    match &args.from_file {
        Some(path) => {
            std::fs::File::open(path)
                .and_then(|mut f| f.read_to_end(&mut value))
                .with_context(|| {
                    format!("reading the value of {} from {}", args.name, path.display())
                })?;
        }
        None => {
            let mut stdin = std::io::stdin().lock();
            if stdin.is_terminal() {
                eprintln!("Enter the value of {}, then Ctrl-D:", args.name);
            }
            stdin
                .read_to_end(&mut value)
                .context("reading the value from stdin")?;
        }
    }
    if args.trim {
        while value.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
            value.pop();
        }
    }
    let replaced = store.set(&args.name, &value)?;
    if settings.json {
        println!(
            "{}",
            serde_json::json!({ "name": args.name, "size": value.len(), "replaced": replaced })
        );
    } else {
        let verb = if replaced { "replaced" } else { "created" };
        eprintln!("{verb} secret {} ({} bytes)", args.name, value.len());
    }
    Ok(())
}

fn ls(settings: &Settings, store: &SecretStore) -> Result<()> {
    let secrets = store.list()?;
    if settings.json {
        let list: Vec<_> = secrets.iter().map(meta_json).collect();
        println!("{}", serde_json::Value::Array(list));
        return Ok(());
    }
    let width = secrets
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(0)
        .max(4);
    println!("{:<width$}  {:>8}  UPDATED", "NAME", "SIZE");
    for s in &secrets {
        println!(
            "{:<width$}  {:>8}  {}",
            s.name,
            s.size,
            humantime::format_rfc3339_seconds(s.updated)
        );
    }
    Ok(())
}

fn meta_json(s: &SecretMeta) -> serde_json::Value {
    serde_json::json!({
        "name": s.name,
        "size": s.size,
        "created": humantime::format_rfc3339_seconds(s.created).to_string(),
        "updated": humantime::format_rfc3339_seconds(s.updated).to_string(),
    })
}
