//! Scan on push for `hoist registry serve`: the [`PushHook`] that scans each image
//! manifest stored in a `scan_on_push` repository and attaches what it found to
//! the image, where the referrers API lists it, as ECR's scan on push keeps its
//! findings beside the image.
//!
//! For each pushed image manifest (not an index: its platform manifests are scanned
//! as they are pushed; not an artifact such as a signature or a report), one
//! `hoist-scan` pass reads the layers straight from the registry's blob store,
//! matches packages against the local vulnerability database and looks for secrets;
//! then `Registry::attach` stores two artifacts whose subject is the image: the JSON
//! report ([`REPORT_TYPE`], annotated with counts per severity) and a CycloneDX 1.5
//! SBOM ([`SBOM_TYPE`]). An image that already has a report is not scanned again.
//! Scans run one at a time on the registry's blocking pool; the push itself never
//! waits for them. Composition only: scanning is `hoist-scan`'s, storing is
//! `hoist-registry`'s.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use hoist_oci::media_type as mt;
use hoist_oci::Manifest;
use hoist_registry::{Attachment, PushHook, PushedManifest, Registry};
use hoist_scan::format::{self, DocumentInfo};
use hoist_scan::scan::{Options, Source};
use hoist_scan::Severity;

/// The `artifactType` of an attached scan report (hoist's JSON report format).
pub const REPORT_TYPE: &str = "application/vnd.hoist.scan.report.v1+json";
/// The `artifactType` of an attached SBOM (CycloneDX 1.5 JSON).
pub const SBOM_TYPE: &str = "application/vnd.cyclonedx+json";
/// Annotation prefix of the report's counts: `dev.hoist.scan.critical` and so on
/// per severity, and `dev.hoist.scan.secrets`.
const COUNT_PREFIX: &str = "dev.hoist.scan.";
/// A scan warns when the vulnerability database is older than this.
const MAX_DB_AGE: Duration = Duration::from_secs(7 * 86_400);

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The hook for `registry` (a handle on the same storage the server uses), with
/// the vulnerability database in `db_dir`.
pub fn hook(registry: Registry, db_dir: PathBuf) -> PushHook {
    let one_at_a_time = Arc::new(Mutex::new(()));
    Arc::new(move |pushed: &PushedManifest| {
        let _turn = one_at_a_time
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let what = format!("{}@{}", pushed.repository, pushed.digest);
        match scan_and_attach(&registry, &db_dir, pushed) {
            Ok(Some(line)) => eprintln!("scan on push: {what}: {line}"),
            Ok(None) => {}
            Err(e) => eprintln!("scan on push: {what}: {e:#}"),
        }
    })
}

/// Scan the pushed manifest and attach the report and SBOM; `None` when there is
/// nothing to scan, else a one-line summary.
fn scan_and_attach(
    registry: &Registry,
    db_dir: &std::path::Path,
    pushed: &PushedManifest,
) -> Result<Option<String>> {
    let name = &pushed.repository;
    let Some((bytes, media_type)) = registry.manifest(name, &pushed.digest)? else {
        return Ok(None); // deleted meanwhile
    };
    let (manifest, _) = Manifest::parse(&bytes, Some(&media_type))?;
    let Manifest::Image(manifest) = manifest else {
        return Ok(None);
    };
    let is_image = manifest.subject.is_none()
        && manifest.artifact_type.is_none()
        && matches!(
            manifest.config.media_type.as_str(),
            mt::OCI_CONFIG | mt::DOCKER_CONFIG
        );
    if !is_image {
        return Ok(None);
    }
    let scanned = registry
        .referrers(name, &pushed.digest)?
        .iter()
        .any(|d| d.get("artifactType").and_then(|a| a.as_str()) == Some(REPORT_TYPE));
    if scanned {
        return Ok(Some("already scanned".into()));
    }

    let db = hoist_vulndb::Db::open(db_dir)?;
    let secrets = hoist_secretscan::Scanner::with_config(&hoist_secretscan::Config::default())?;
    let shown_name = match &pushed.tag {
        Some(tag) => format!("{name}:{tag}"),
        None => format!("{name}@{}", pushed.digest),
    };
    let report = hoist_scan::scan::scan(
        Source::Manifest {
            blobs: registry.blobs(),
            manifest: &manifest,
            digest: &pushed.digest,
            name: shown_name,
        },
        &Options {
            vulnerabilities: Some(&db),
            secrets: Some(&secrets),
            max_db_age: Some(MAX_DB_AGE),
            misconfig: false,
        },
    )?;

    let info = DocumentInfo::now(VERSION);
    let mut json = Vec::new();
    format::json(&report, &mut json)?;
    let mut sbom = Vec::new();
    format::cyclonedx::write(&report, &info, &mut sbom)?;

    let created = info.timestamp();
    let mut counts = BTreeMap::new();
    for v in &report.vulnerabilities {
        *counts.entry(v.severity).or_insert(0usize) += 1;
    }
    let mut annotations = BTreeMap::from([(
        "org.opencontainers.image.created".to_owned(),
        created.clone(),
    )]);
    for level in Severity::ALL {
        annotations.insert(
            format!("{COUNT_PREFIX}{}", level.as_str().to_ascii_lowercase()),
            counts.get(&level).copied().unwrap_or(0).to_string(),
        );
    }
    annotations.insert(
        format!("{COUNT_PREFIX}secrets"),
        report.secrets.len().to_string(),
    );
    let report_digest = registry
        .attach(
            name,
            &pushed.digest,
            &Attachment {
                artifact_type: REPORT_TYPE,
                files: vec![(REPORT_TYPE, &json)],
                annotations,
            },
        )
        .context("attaching the scan report")?;
    registry
        .attach(
            name,
            &pushed.digest,
            &Attachment {
                artifact_type: SBOM_TYPE,
                files: vec![(SBOM_TYPE, &sbom)],
                annotations: BTreeMap::from([(
                    "org.opencontainers.image.created".to_owned(),
                    created,
                )]),
            },
        )
        .context("attaching the SBOM")?;

    let by_level: Vec<String> = Severity::ALL
        .iter()
        .filter_map(|l| {
            counts
                .get(l)
                .map(|n| format!("{n} {}", l.as_str().to_ascii_lowercase()))
        })
        .collect();
    Ok(Some(format!(
        "{} packages, {} vulnerabilities{}, {} secrets; report {report_digest}",
        report.packages.len(),
        report.vulnerabilities.len(),
        if by_level.is_empty() {
            String::new()
        } else {
            format!(" ({})", by_level.join(", "))
        },
        report.secrets.len(),
    )))
}
