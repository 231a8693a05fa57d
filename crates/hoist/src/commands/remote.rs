//! `hoist push` and `hoist pull`: move images between the store and a registry.
//!
//! Progress goes to stderr as one bar per blob when stderr is a terminal; otherwise
//! text mode prints one line per blob and manifest on stdout (and retries and resumed
//! downloads on stderr). A summary line ends text mode; with `--json` the per-blob
//! lines go to stderr and stdout holds one JSON summary.
//!
//! ECR hosts get their credentials from hoist-aws (cached under
//! `<HOIST_HOME>/aws/ecr-tokens`), through the client's credential provider.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use hoist_aws::ecr::{EcrCredentials, EcrRegistry};
use hoist_oci::reference::Reference;
use hoist_oci::Digest;
use hoist_registry_client::{
    Client, ClientOptions, CredentialProvider, Credentials, Event, UploadMode,
};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::cli::{PullArgs, PushArgs, UploadArg};
use crate::settings::Settings;

/// ECR credentials for ECR hosts (`Ok(None)` for every other host), cached in
/// `home/aws/ecr-tokens`.
pub fn ecr_provider(home: &Path) -> CredentialProvider {
    let creds = Arc::new(EcrCredentials::new(Some(
        home.join("aws").join("ecr-tokens"),
    )));
    Arc::new(
        move |host: &str| -> Result<Option<Credentials>, Box<dyn std::error::Error + Send + Sync>> {
            let Some(registry) = EcrRegistry::parse(host) else {
                return Ok(None);
            };
            let token = creds.token_for(&registry)?;
            Ok(Some(Credentials {
                username: token.username,
                password: token.password,
            }))
        },
    )
}

/// Client options for a store under `home`: ECR credentials wired in.
pub fn options(home: &Path, insecure: bool) -> ClientOptions {
    ClientOptions {
        insecure,
        credential_provider: Some(ecr_provider(home)),
        ..ClientOptions::default()
    }
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

fn rate(bytes: u64, took: Duration) -> String {
    let secs = took.as_secs_f64();
    if secs <= 0.0 {
        return "-".to_owned();
    }
    format!("{}/s", human((bytes as f64 / secs) as u64))
}

/// Renders client events: bars on a terminal, lines otherwise.
struct Progress {
    /// Lines go to stderr (JSON mode) instead of stdout.
    json: bool,
    /// `pushed` or `pulled`.
    verb: &'static str,
    bars: Option<MultiProgress>,
    by_blob: Mutex<HashMap<Digest, ProgressBar>>,
    /// Blobs whose next progress says where the transfer (re)starts: new ones and
    /// retried ones.
    announce: Mutex<HashMap<Digest, bool>>,
}

impl Progress {
    fn new(json: bool, verb: &'static str) -> Progress {
        let bars = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Progress {
            json,
            verb,
            bars,
            by_blob: Mutex::new(HashMap::new()),
            announce: Mutex::new(HashMap::new()),
        }
    }

    fn line(&self, text: &str) {
        let print = || {
            if self.json {
                eprintln!("{text}");
            } else {
                println!("{text}");
            }
        };
        match &self.bars {
            Some(m) => m.suspend(print),
            None => print(),
        }
    }

    fn note(&self, text: &str) {
        match &self.bars {
            Some(m) => {
                let _ = m.println(text);
            }
            None => eprintln!("{text}"),
        }
    }

    /// The bar of `digest`, made on first use; `None` without a terminal.
    fn bar(&self, digest: &Digest, size: u64) -> Option<ProgressBar> {
        let multi = self.bars.as_ref()?;
        let mut bars = self.by_blob.lock().unwrap_or_else(|e| e.into_inner());
        Some(
            bars.entry(digest.clone())
                .or_insert_with(|| {
                    let bar = multi.add(ProgressBar::new(size));
                    if let Ok(style) = ProgressStyle::with_template(
                        "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
                    ) {
                        bar.set_style(style.progress_chars("=> "));
                    }
                    bar.set_prefix(digest.short());
                    bar
                })
                .clone(),
        )
    }

    fn event(&self, event: &Event) {
        match event {
            Event::BlobProgress {
                digest,
                size,
                transferred,
            } => {
                let announce = {
                    let mut a = self.announce.lock().unwrap_or_else(|e| e.into_inner());
                    std::mem::replace(a.entry(digest.clone()).or_insert(true), false)
                };
                if announce && *transferred > 0 {
                    self.note(&format!(
                        "{}: resuming at {} of {}",
                        digest.short(),
                        human(*transferred),
                        human(*size)
                    ));
                }
                if let Some(bar) = self.bar(digest, *size) {
                    bar.set_position(*transferred);
                }
            }
            Event::Retry {
                digest,
                attempt,
                error,
            } => {
                self.announce
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(digest.clone(), true);
                self.note(&format!("{}: retry {attempt}: {error}", digest.short()))
            }
            Event::BlobSkipped { digest, size } => match self.bar(digest, *size) {
                Some(bar) => {
                    bar.set_position(*size);
                    bar.finish_with_message("exists");
                }
                None => self.line(&format!("{}: exists ({})", digest.short(), human(*size))),
            },
            Event::BlobCopied { digest, size } => match self.bar(digest, *size) {
                Some(bar) => {
                    bar.set_position(*size);
                    bar.finish_with_message(self.verb);
                }
                None => self.line(&format!(
                    "{}: {} ({})",
                    digest.short(),
                    self.verb,
                    human(*size)
                )),
            },
            Event::Manifest { digest, media_type } => {
                self.line(&format!("{}: manifest {media_type}", digest.short()))
            }
        }
    }
}

/// The upload mode for a push to `host`: `auto` means monolithic for ECR, which
/// drops every chunk after the first.
fn upload_mode(arg: UploadArg, host: &str) -> UploadMode {
    match arg {
        UploadArg::Auto if EcrRegistry::parse(host).is_some() => UploadMode::Monolithic,
        UploadArg::Auto => UploadMode::Auto,
        UploadArg::Monolithic => UploadMode::Monolithic,
        UploadArg::Chunked => UploadMode::Chunked,
    }
}

/// Run `hoist push REF [DEST]`.
pub fn push(settings: &Settings, args: PushArgs) -> Result<()> {
    let store = settings.store()?;
    let dest_text = args.dest.as_deref().unwrap_or(&args.reference);
    let dest: Reference = dest_text
        .parse()
        .with_context(|| format!("push destination {dest_text:?}"))?;
    let client = Client::new(ClientOptions {
        upload: upload_mode(args.upload, dest.domain()),
        chunk_size: args.chunk_size.max(1),
        retries: args.retries,
        ..options(&settings.home, args.insecure)
    });
    let progress = Progress::new(settings.json, "pushed");
    let report = client
        .push(&store, &args.reference, &dest, &|e| progress.event(e))
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
            "pushed {} ({}): {} blobs uploaded ({}), {} skipped ({}) in {:.1}s ({})",
            report.target,
            report.digest,
            report.blobs_copied,
            human(report.bytes_copied),
            report.blobs_skipped,
            human(report.bytes_skipped),
            report.duration.as_secs_f64(),
            rate(report.bytes_copied, report.duration),
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
    let client = Client::new(ClientOptions {
        retries: args.retries,
        ..options(&settings.home, args.insecure)
    });
    let progress = Progress::new(settings.json, "pulled");
    let report = client
        .pull(&store, &src, &|e| progress.event(e))
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
                "BytesResumed": report.bytes_resumed,
                "DurationSeconds": report.duration.as_secs_f64(),
            }))?
        );
    } else {
        let resumed = if report.bytes_resumed > 0 {
            format!(", {} of them resumed", human(report.bytes_resumed))
        } else {
            String::new()
        };
        println!(
            "pulled {src} ({}): {} blobs downloaded ({}{resumed}), {} already present in {:.1}s ({})",
            report.record.digest,
            report.blobs_copied,
            human(report.bytes_copied),
            report.blobs_skipped,
            report.duration.as_secs_f64(),
            rate(report.bytes_copied - report.bytes_resumed, report.duration),
        );
    }
    Ok(())
}

/// Pull `reference` (as a Dockerfile names it) into `store` for `hoist build`,
/// reporting blobs on stderr.
pub fn pull_for_build(store: &hoist_oci::Store, reference: &str) -> Result<(), String> {
    let r: Reference = reference.parse().map_err(|e| format!("{e}"))?;
    eprintln!("pulling {r}");
    let progress = Progress::new(true, "pulled");
    Client::new(options(store.home(), false))
        .pull(store, &r, &|e| progress.event(e))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use hoist_registry_client::UploadKind;

    #[test]
    fn ecr_hosts_get_aws_credentials_and_monolithic_uploads() {
        let home = tempfile::tempdir().unwrap();
        let host = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
        // A fresh token in the disk cache: the provider answers without calling AWS.
        let dir = home.path().join("aws/ecr-tokens/123456789012");
        std::fs::create_dir_all(&dir).unwrap();
        let expires = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600;
        std::fs::write(
            dir.join(format!("{host}.json")),
            format!(
                r#"{{"username":"AWS","password":"cached-pw","expires_at":{expires},"proxy_endpoint":"https://{host}"}}"#
            ),
        )
        .unwrap();
        let opts = options(home.path(), false);
        let provider = opts.credential_provider.clone().unwrap();
        let c = provider(host).unwrap().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("AWS", "cached-pw")
        );
        // Other registries are left to Docker's config.
        assert!(provider("ghcr.io").unwrap().is_none());
        assert!(provider("127.0.0.1:5000").unwrap().is_none());
        // ECR gets monolithic uploads whatever the size; elsewhere big blobs are chunked.
        let to = |arg, host| ClientOptions {
            upload: upload_mode(arg, host),
            ..ClientOptions::default()
        };
        assert_eq!(
            to(UploadArg::Auto, host).upload_kind(1 << 30),
            UploadKind::Monolithic
        );
        assert!(matches!(
            to(UploadArg::Auto, "ghcr.io").upload_kind(1 << 30),
            UploadKind::Chunked { .. }
        ));
        assert!(matches!(
            to(UploadArg::Chunked, host).upload_kind(1 << 30),
            UploadKind::Chunked { .. }
        ));
    }
}
