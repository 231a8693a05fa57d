//! `hoist push` and `hoist pull`: move images between the store and a registry.
//!
//! Progress goes to stderr as one bar per blob when stderr is a terminal; otherwise
//! text mode prints one line per blob and manifest on stdout (and retries and resumed
//! downloads on stderr). A summary line ends text mode; with `--json` the per-blob
//! lines go to stderr and stdout holds one JSON summary.
//!
//! ECR hosts get their credentials from hoist-aws (cached under
//! `<HOIST_HOME>/aws/ecr-tokens`), through the client's credential provider, and
//! monolithic uploads. Before a push to ECR, `--create-repository` creates a missing
//! repository (tags immutable, scan on push, AES256 or `--kms-key`) and warns about
//! an existing one with mutable tags or no scan on push; without it, the push checks
//! that the repository exists and names the flag if not. After it, `--ecr-scan`
//! waits for ECR's own scan of the image, prints the findings and puts them through
//! `hoist scan`'s gate (`--fail-on`): ECR's severities become hoist-scan's, the
//! verdict is `hoist_scan::gate::evaluate_severities`, and a failure is reported and
//! exits as `hoist scan`'s does.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use hoist_aws::ecr::repository::{
    describe_repository, ensure_repository, Encryption, Ensured, RepositorySettings,
};
use hoist_aws::ecr::scan::{scan_findings, EcrFinding, EcrScan};
use hoist_aws::ecr::{EcrCredentials, EcrRegistry};
use hoist_oci::reference::Reference;
use hoist_oci::Digest;
use hoist_registry_client::{
    Client, ClientOptions, CredentialProvider, Credentials, Event, UploadMode,
};
use hoist_scan::format::table;
use hoist_scan::gate::{evaluate_severities, Verdict};
use hoist_scan::Severity;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::cli::{PullArgs, PushArgs, UploadArg};
use crate::commands::scan::{gate, parse_fail_on};
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

fn rate(bytes: u64, took: Duration) -> String {
    let secs = took.as_secs_f64();
    if secs <= 0.0 {
        return "-".to_owned();
    }
    format!("{}/s", hoist_oci::human_bytes((bytes as f64 / secs) as u64))
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
                        hoist_oci::human_bytes(*transferred),
                        hoist_oci::human_bytes(*size)
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
                None => self.line(&format!(
                    "{}: exists ({})",
                    digest.short(),
                    hoist_oci::human_bytes(*size)
                )),
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
                    hoist_oci::human_bytes(*size)
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
    let fail_on = parse_fail_on(args.fail_on.as_deref())?;
    let ecr = EcrRegistry::parse(dest.domain());
    if ecr.is_none() && (args.create_repository || args.ecr_scan) {
        let flag = if args.create_repository {
            "--create-repository"
        } else {
            "--ecr-scan"
        };
        bail!(
            "{flag}: {} is not an Amazon ECR registry (<account>.dkr.ecr.<region>.amazonaws.com)",
            dest.domain()
        );
    }
    let repository = match &ecr {
        Some(registry) => prepare_ecr_repository(registry, dest.repository(), &args)?,
        None => None,
    };
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
    let scan = match &ecr {
        Some(registry) if args.ecr_scan => Some(
            scan_findings(
                registry,
                dest.repository(),
                &report.digest.to_string(),
                args.ecr_scan_timeout,
            )
            .with_context(|| format!("waiting for ECR's scan of {dest}")),
        ),
        _ => None,
    };
    let verdict = match &scan {
        Some(Ok(scan)) => Some(ecr_verdict(scan, fail_on)),
        _ => None,
    };
    if settings.json {
        let mut summary = json!({
            "Target": report.target,
            "Digest": report.digest,
            "MediaType": report.media_type,
            "BlobsPushed": report.blobs_copied,
            "BlobsSkipped": report.blobs_skipped,
            "BytesPushed": report.bytes_copied,
            "BytesSkipped": report.bytes_skipped,
            "DurationSeconds": report.duration.as_secs_f64(),
        });
        if let Some(r) = &repository {
            summary["EcrRepository"] = r.clone();
        }
        match (&scan, &verdict) {
            (Some(Ok(scan)), Some(verdict)) => summary["EcrScan"] = ecr_scan_json(scan, verdict),
            (Some(Err(e)), _) => summary["EcrScan"] = json!({ "Error": format!("{e:#}") }),
            _ => {}
        }
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "pushed {} ({}): {} blobs uploaded ({}), {} skipped ({}) in {:.1}s ({})",
            report.target,
            report.digest,
            report.blobs_copied,
            hoist_oci::human_bytes(report.bytes_copied),
            report.blobs_skipped,
            hoist_oci::human_bytes(report.bytes_skipped),
            report.duration.as_secs_f64(),
            rate(report.bytes_copied, report.duration),
        );
        if let (Some(Ok(scan)), Some(verdict)) = (&scan, &verdict) {
            let stdout = std::io::stdout();
            write_ecr_scan(scan, verdict, stdout.is_terminal(), &mut stdout.lock())
                .context("writing ECR's findings")?;
        }
    }
    if let Some(scan) = scan {
        scan?;
    }
    match &verdict {
        Some(verdict) => gate(verdict),
        None => Ok(()),
    }
}

/// Before a push to ECR: with `--create-repository`, make sure the repository
/// exists (JSON for the summary); without, fail if it is missing, so the message
/// names the flag rather than being a registry 404. A check that cannot be made
/// (say, no `ecr:DescribeRepositories` permission) does not stop the push.
fn prepare_ecr_repository(
    registry: &EcrRegistry,
    name: &str,
    args: &PushArgs,
) -> Result<Option<serde_json::Value>> {
    if !args.create_repository {
        match describe_repository(registry, name) {
            Ok(Some(_)) => {}
            Ok(None) => bail!(
                "ECR repository {name} does not exist in {}: pass --create-repository to create it (tags immutable, scan on push)",
                registry.host
            ),
            Err(e) => {
                tracing::warn!(error = %e, "could not check that the ECR repository exists; pushing anyway")
            }
        }
        return Ok(None);
    }
    let settings = RepositorySettings {
        encryption: match args.kms_key.as_deref() {
            None => Encryption::Aes256,
            Some("") => Encryption::Kms { key: None },
            Some(key) => Encryption::Kms {
                key: Some(key.to_owned()),
            },
        },
    };
    let ensured = ensure_repository(registry, name, &settings)
        .with_context(|| format!("creating ECR repository {name} in {}", registry.host))?;
    let repo = ensured.repository();
    let concerns: Vec<String> = repo.concerns().iter().map(|c| c.to_string()).collect();
    match &ensured {
        Ensured::Created(r) => eprintln!(
            "created ECR repository {} (tags {}, scan on push, {} encryption)",
            r.uri, r.tag_mutability, r.encryption
        ),
        Ensured::Existed(r) => {
            for c in &concerns {
                eprintln!(
                    "warning: ECR repository {} exists and {c}; hoist leaves it as it is",
                    r.name
                );
            }
        }
    }
    Ok(Some(json!({
        "Name": repo.name,
        "Uri": repo.uri,
        "Created": matches!(ensured, Ensured::Created(_)),
        "TagMutability": repo.tag_mutability,
        "ScanOnPush": repo.scan_on_push,
        "Encryption": repo.encryption,
        "Warnings": concerns,
    })))
}

/// hoist-scan's severity for one of ECR's: `INFORMATIONAL`, `UNDEFINED` and
/// `UNTRIAGED` are `Unknown`, below every threshold.
fn ecr_severity(finding: &EcrFinding) -> Severity {
    Severity::parse(&finding.severity).unwrap_or(Severity::Unknown)
}

/// `hoist scan`'s gate over ECR's findings.
fn ecr_verdict(scan: &EcrScan, fail_on: Option<Severity>) -> Verdict {
    evaluate_severities(scan.findings.iter().map(ecr_severity), fail_on)
}

/// The findings, most severe first.
fn sorted_findings(scan: &EcrScan) -> Vec<&EcrFinding> {
    let mut findings: Vec<&EcrFinding> = scan.findings.iter().collect();
    findings.sort_by(|a, b| {
        ecr_severity(b)
            .cmp(&ecr_severity(a))
            .then_with(|| a.package.cmp(&b.package))
            .then_with(|| a.name.cmp(&b.name))
    });
    findings
}

/// ECR's findings as a table, then `hoist scan`'s gate summary.
fn write_ecr_scan(
    scan: &EcrScan,
    verdict: &Verdict,
    color: bool,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    writeln!(out, "\nECR scan ({}):", scan.status)?;
    let findings = sorted_findings(scan);
    if !findings.is_empty() {
        let cell = |s: &str| (s.to_owned(), s.to_owned());
        let rows: Vec<Vec<(String, String)>> = findings
            .iter()
            .map(|f| {
                let severity = ecr_severity(f);
                vec![
                    cell(f.package.as_deref().unwrap_or("-")),
                    cell(f.version.as_deref().unwrap_or("-")),
                    cell(&f.name),
                    (severity.as_str().to_owned(), table::paint(severity, color)),
                    cell(f.fixed_in.as_deref().unwrap_or("-")),
                    cell(f.uri.as_deref().unwrap_or("")),
                ]
            })
            .collect();
        table::table(
            out,
            &[
                "PACKAGE",
                "INSTALLED",
                "VULNERABILITY",
                "SEVERITY",
                "FIXED",
                "URI",
            ],
            &rows,
        )?;
    }
    table::write_summary(verdict, out)
}

fn ecr_scan_json(scan: &EcrScan, verdict: &Verdict) -> serde_json::Value {
    let findings: Vec<_> = sorted_findings(scan)
        .into_iter()
        .map(|f| {
            json!({
                "Name": f.name,
                "Severity": ecr_severity(f),
                "EcrSeverity": f.severity,
                "Package": f.package,
                "Version": f.version,
                "FixedIn": f.fixed_in,
                "Uri": f.uri,
            })
        })
        .collect();
    json!({
        "Status": scan.status,
        "Findings": findings,
        "Gate": verdict,
    })
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
            format!(
                ", {} of them resumed",
                hoist_oci::human_bytes(report.bytes_resumed)
            )
        } else {
            String::new()
        };
        println!(
            "pulled {src} ({}): {} blobs downloaded ({}{resumed}), {} already present in {:.1}s ({})",
            report.record.digest,
            report.blobs_copied,
            hoist_oci::human_bytes(report.bytes_copied),
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

    fn finding(name: &str, severity: &str, package: &str) -> EcrFinding {
        EcrFinding {
            name: name.into(),
            severity: severity.into(),
            package: Some(package.into()),
            version: Some("1.0".into()),
            fixed_in: None,
            uri: None,
            description: None,
        }
    }

    #[test]
    fn ecr_findings_meet_hoist_scans_gate() {
        let scan = EcrScan {
            status: "COMPLETE".into(),
            completed_at: None,
            severity_counts: Default::default(),
            findings: vec![
                finding("CVE-1", "INFORMATIONAL", "a"),
                finding("CVE-2", "HIGH", "b"),
                finding("CVE-3", "UNTRIAGED", "c"),
                finding("CVE-4", "CRITICAL", "d"),
                finding("CVE-5", "MEDIUM", "e"),
            ],
        };
        let verdict = ecr_verdict(&scan, parse_fail_on(Some("high")).unwrap());
        assert_eq!(verdict.failing, 2);
        assert_eq!(verdict.counts[&Severity::Unknown], 2);
        // The same error, hence message and exit code, as `hoist scan`'s gate.
        assert_eq!(
            gate(&verdict).unwrap_err().to_string(),
            "scan gate failed: 2 findings at HIGH or above"
        );
        assert!(gate(&ecr_verdict(&scan, Some(Severity::Critical))).is_err());
        assert!(gate(&ecr_verdict(&scan, parse_fail_on(Some("none")).unwrap())).is_ok());
        assert!(gate(&ecr_verdict(&scan, None)).is_ok());
        assert!(parse_fail_on(Some("severe")).is_err());

        let mut out = Vec::new();
        write_ecr_scan(&scan, &verdict, false, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let rows: Vec<&str> = text.lines().filter(|l| l.contains("CVE-")).collect();
        assert!(
            rows[0].starts_with("d ") && rows[0].contains("CRITICAL"),
            "{text}"
        );
        assert!(
            rows[1].starts_with("b ") && rows[1].contains("HIGH"),
            "{text}"
        );
        assert!(
            text.contains("Total: 5 (CRITICAL: 1, HIGH: 1, MEDIUM: 1, LOW: 0, UNKNOWN: 2)"),
            "{text}"
        );
        assert!(
            text.contains("gate: FAILED (2 findings at HIGH or above)"),
            "{text}"
        );
        let json = ecr_scan_json(&scan, &verdict);
        assert_eq!(json["Findings"][0]["Name"], "CVE-4");
        // Unknowns last, by package: "a" (INFORMATIONAL), then "c" (UNTRIAGED).
        assert_eq!(json["Findings"][3]["Severity"], "UNKNOWN");
        assert_eq!(json["Findings"][3]["EcrSeverity"], "INFORMATIONAL");
        assert_eq!(json["Findings"][4]["EcrSeverity"], "UNTRIAGED");
        assert_eq!(json["Gate"]["failing"], 2);
    }

    #[test]
    fn ecr_push_flags_go_together() {
        use clap::Parser as _;
        let parse = |args: &[&str]| {
            crate::cli::Cli::try_parse_from(
                ["hoist", "push", "app:v1", "ecr/app:v1"].iter().chain(args),
            )
        };
        let push = |args: &[&str]| match parse(args).unwrap().command {
            crate::cli::Command::Push(p) => p,
            other => panic!("{other:?}"),
        };
        let p = push(&[]);
        assert!(!p.create_repository && !p.ecr_scan && p.kms_key.is_none());
        assert_eq!(p.ecr_scan_timeout, Duration::from_secs(600));
        assert_eq!(
            push(&["--create-repository", "--kms-key"])
                .kms_key
                .as_deref(),
            Some("")
        );
        assert_eq!(
            push(&["--create-repository", "--kms-key", "alias/ecr"])
                .kms_key
                .as_deref(),
            Some("alias/ecr")
        );
        let p = push(&[
            "--ecr-scan",
            "--fail-on",
            "high",
            "--ecr-scan-timeout",
            "90s",
        ]);
        assert_eq!(
            (p.fail_on.as_deref(), p.ecr_scan_timeout),
            (Some("high"), Duration::from_secs(90))
        );
        assert!(parse(&["--kms-key", "alias/ecr"]).is_err());
        assert!(parse(&["--fail-on", "high"]).is_err());
    }

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
