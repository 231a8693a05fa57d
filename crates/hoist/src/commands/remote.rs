//! `hoist push` and `hoist pull`: move images between the store and a registry.
//!
//! Text mode prints one line per blob and manifest and a summary on stdout; with
//! `--json` the per-blob lines go to stderr and stdout holds one JSON summary.

use anyhow::{Context, Result};
use hoist_oci::reference::Reference;
use hoist_registry_client::{Client, ClientOptions, Event};
use serde_json::json;

use crate::cli::{PullArgs, PushArgs};
use crate::settings::Settings;

fn client(insecure: bool) -> Client {
    Client::new(ClientOptions {
        insecure,
        ..ClientOptions::default()
    })
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A progress printer: stdout in text mode, stderr under `--json`.
fn printer(json: bool, copied: &'static str) -> impl Fn(&Event) + Sync {
    move |event: &Event| {
        let line = match event {
            Event::BlobSkipped { digest, size } => {
                format!("{}: exists ({})", digest.short(), human(*size))
            }
            Event::BlobCopied { digest, size } => {
                format!("{}: {copied} ({})", digest.short(), human(*size))
            }
            Event::Manifest { digest, media_type } => {
                format!("{}: manifest {media_type}", digest.short())
            }
        };
        if json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
}

/// Run `hoist push REF [DEST]`.
pub fn push(settings: &Settings, args: PushArgs) -> Result<()> {
    let store = settings.store()?;
    let dest_text = args.dest.as_deref().unwrap_or(&args.reference);
    let dest: Reference = dest_text
        .parse()
        .with_context(|| format!("push destination {dest_text:?}"))?;
    let report = client(args.insecure)
        .push(
            &store,
            &args.reference,
            &dest,
            &printer(settings.json, "pushed"),
        )
        .with_context(|| format!("pushing {} to {dest}", args.reference))?;
    if settings.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "Target": report.target,
                "Digest": report.digest,
                "MediaType": report.media_type,
                "BlobsPushed": report.blobs_copied,
                "BlobsSkipped": report.blobs_skipped,
                "BytesPushed": report.bytes_copied,
                "BytesSkipped": report.bytes_skipped,
                "DurationSeconds": report.duration.as_secs_f64(),
            }))?
        );
    } else {
        println!(
            "pushed {} ({}): {} blobs uploaded ({}), {} skipped ({}) in {:.1}s",
            report.target,
            report.digest,
            report.blobs_copied,
            human(report.bytes_copied),
            report.blobs_skipped,
            human(report.bytes_skipped),
            report.duration.as_secs_f64()
        );
    }
    Ok(())
}

/// Run `hoist pull REF`.
pub fn pull(settings: &Settings, args: PullArgs) -> Result<()> {
    let store = settings.store()?;
    let src: Reference = args
        .reference
        .parse()
        .with_context(|| format!("image reference {:?}", args.reference))?;
    let report = client(args.insecure)
        .pull(&store, &src, &printer(settings.json, "pulled"))
        .with_context(|| format!("pulling {src}"))?;
    if settings.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "Digest": report.record.digest,
                "Id": report.record.id,
                "Names": report.record.names,
                "BlobsPulled": report.blobs_copied,
                "BlobsSkipped": report.blobs_skipped,
                "BytesPulled": report.bytes_copied,
                "DurationSeconds": report.duration.as_secs_f64(),
            }))?
        );
    } else {
        println!(
            "pulled {src} ({}): {} blobs downloaded ({}), {} already present in {:.1}s",
            report.record.digest,
            report.blobs_copied,
            human(report.bytes_copied),
            report.blobs_skipped,
            report.duration.as_secs_f64()
        );
    }
    Ok(())
}

/// Pull `reference` (as a Dockerfile names it) into `store` for `hoist build`,
/// reporting blobs on stderr.
pub fn pull_for_build(store: &hoist_oci::Store, reference: &str) -> Result<(), String> {
    let r: Reference = reference.parse().map_err(|e| format!("{e}"))?;
    eprintln!("pulling {r}");
    client(false)
        .pull(store, &r, &printer(true, "pulled"))
        .map(|_| ())
        .map_err(|e| e.to_string())
}
