//! A whole scan: collect (one pass), match packages against the vulnerability
//! database, and assemble the [`Report`].

use std::path::Path;
use std::time::Duration;

use hoist_inventory::{Inventory, InventoryError};
use hoist_oci::store::{ImageRecord, Store};
use hoist_oci::{BlobStore, Digest, ImageManifest};
use hoist_secretscan::Scanner;
use hoist_vulndb::{Db, DbError};

use crate::collect::{self, Collected};
use crate::ecosystem;
use crate::model::{Misconfig, Report, ScanTarget, Vulnerability};

/// What to scan.
pub enum Source<'a> {
    /// An image in the local store.
    Image {
        /// The store.
        store: &'a Store,
        /// The image.
        image: &'a ImageRecord,
        /// The name it was asked by.
        name: String,
    },
    /// An image manifest whose config and layers are in a blob store (a registry's).
    Manifest {
        /// The blobs.
        blobs: &'a BlobStore,
        /// The image manifest (one platform's).
        manifest: &'a ImageManifest,
        /// The manifest's digest.
        digest: &'a Digest,
        /// The name it was pushed as (`repository:tag` or `repository@digest`).
        name: String,
    },
    /// An OCI layout directory or `docker save` archive holding one image.
    Archive(&'a Path),
    /// A directory (a root file system or a source tree).
    Directory(&'a Path),
}

/// Which scanners run.
#[derive(Default)]
pub struct Options<'a> {
    /// Match packages against this database.
    pub vulnerabilities: Option<&'a Db>,
    /// Look for secrets with this scanner.
    pub secrets: Option<&'a Scanner>,
    /// Warn when the database's last import is older than this.
    pub max_db_age: Option<Duration>,
    /// Run the misconfiguration rules (`hoist-lint`): on a directory's Dockerfiles,
    /// Terraform and ECS task definitions, or on an image's config (not for an
    /// archive, whose config is read into a temporary store only).
    pub misconfig: bool,
}

/// A scan that could not produce a report at all.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Nothing to scan (image or directory unreadable).
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    /// The vulnerability database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Runs the scan.
pub fn scan(source: Source<'_>, options: &Options<'_>) -> Result<Report, ScanError> {
    // The image config, for the misconfiguration rules that read it.
    let mut config = None;
    // The directory whose files the misconfiguration rules read.
    let mut lint_dir = None;
    let mut warnings = Vec::new();
    let (target, collected) = match source {
        Source::Image { store, image, name } => {
            if options.misconfig {
                let manifest = hoist_oci::transfer::platform_manifest(store, image)
                    .map_err(InventoryError::from)?;
                config = Some(
                    store
                        .config(&manifest.config.digest)
                        .map_err(InventoryError::from)?,
                );
            }
            (
                ScanTarget::Image {
                    name,
                    digest: image.digest.to_string(),
                },
                collect::collect_image(store, image, options.secrets)?,
            )
        }
        Source::Manifest {
            blobs,
            manifest,
            digest,
            name,
        } => {
            if options.misconfig {
                config = Some(
                    hoist_oci::store::read_config(blobs, &manifest.config.digest)
                        .map_err(InventoryError::from)?,
                );
            }
            (
                ScanTarget::Image {
                    name,
                    digest: digest.to_string(),
                },
                collect::collect_manifest(blobs, manifest, digest, options.secrets)?,
            )
        }
        Source::Archive(path) => (
            {
                if options.misconfig {
                    warnings.push(
                        "misconfiguration rules do not run on an archive's image config: load it (`hoist image load`) and scan the image"
                            .to_owned(),
                    );
                }
                ScanTarget::Directory {
                    path: path.to_owned(),
                }
            },
            collect::collect_archive(path, options.secrets)?,
        ),
        Source::Directory(path) => (
            {
                lint_dir = options.misconfig.then(|| path.to_owned());
                ScanTarget::Directory {
                    path: path.to_owned(),
                }
            },
            collect::collect_dir(path, options.secrets)?,
        ),
    };
    let Collected { inventory, secrets } = collected;
    let mut report = Report::new(target);
    report.warnings = warnings;
    report
        .warnings
        .extend(inventory.problems.iter().map(|p| p.to_string()));
    if let Some(db) = options.vulnerabilities {
        match (db.age()?, options.max_db_age) {
            (None, _) => report.warnings.push(
                "the vulnerability database is empty; run `hoist db update` or `hoist db import PATH`"
                    .into(),
            ),
            (Some(age), Some(max)) if age > max => report.warnings.push(format!(
                "the vulnerability database was last updated {} days ago (more than {}); run `hoist db update` or `hoist db import`",
                age.as_secs() / 86_400,
                humanize(max)
            )),
            _ => {}
        }
        let (vulns, unmatched) = match_vulnerabilities(&inventory, db)?;
        report.vulnerabilities = vulns;
        if unmatched > 0 {
            report.warnings.push(format!(
                "{unmatched} packages have no advisory ecosystem (e.g. an rpm distribution OSV does not cover) and were not matched"
            ));
        }
    }
    if let Some(path) = lint_dir {
        let outcome = hoist_lint::lint_paths(&[path]);
        for e in &outcome.errors {
            report.warnings.push(e.to_string());
        }
        report.misconfigurations = outcome
            .findings()
            .map(|f| Misconfig {
                rule_id: f.rule.id.to_owned(),
                severity: f.rule.severity.into(),
                title: f.rule.title.to_owned(),
                message: f.message.clone(),
                fix: f.rule.fix.to_owned(),
                path: f.file.clone(),
                line: f.line,
            })
            .collect();
    }
    if let Some(config) = &config {
        report
            .misconfigurations
            .extend(image_misconfigurations(config));
    }
    report.os = inventory.os;
    report.packages = inventory.packages;
    report.secrets = secrets;
    report.sort();
    Ok(report)
}

/// Where an image config finding is reported: the config has no file or lines.
pub const IMAGE_CONFIG_PATH: &str = "(image config)";

/// The `hoist-lint` image rules on an image config; findings have line 0.
fn image_misconfigurations(config: &hoist_oci::ImageConfig) -> Vec<Misconfig> {
    let Some(c) = &config.config else {
        return hoist_lint::lint_image(&hoist_lint::ImageSettings::default())
            .into_iter()
            .map(image_misconfig)
            .collect();
    };
    let ports: Vec<&str> = c.exposed_ports.keys().map(String::as_str).collect();
    hoist_lint::lint_image(&hoist_lint::ImageSettings {
        user: &c.user,
        env: &c.env,
        exposed_ports: &ports,
        healthcheck: c.healthcheck.as_ref().map(|h| h.test.as_slice()),
    })
    .into_iter()
    .map(image_misconfig)
    .collect()
}

fn image_misconfig(f: hoist_lint::ImageFinding) -> Misconfig {
    Misconfig {
        rule_id: f.rule.id.to_owned(),
        severity: f.rule.severity.into(),
        title: f.rule.title.to_owned(),
        message: f.message,
        fix: f.rule.fix.to_owned(),
        path: IMAGE_CONFIG_PATH.into(),
        line: 0,
    }
}

fn humanize(d: Duration) -> String {
    let days = d.as_secs() / 86_400;
    if days >= 1 {
        format!("{days} days")
    } else {
        format!("{} hours", d.as_secs() / 3600)
    }
}

/// Matches every package of `inventory` against `db`, in one batch. Returns the
/// vulnerabilities and how many packages had no ecosystem to match in.
pub fn match_vulnerabilities(
    inventory: &Inventory,
    db: &Db,
) -> Result<(Vec<Vulnerability>, usize), DbError> {
    let mut queries: Vec<(String, String, String)> = Vec::new();
    let mut owners: Vec<&hoist_inventory::Package> = Vec::new();
    for p in &inventory.packages {
        if let Some(query) = ecosystem::query(p, inventory.os.as_ref()) {
            queries.push(query);
            owners.push(p);
        }
    }
    let unmatched = inventory.packages.len() - owners.len();
    let borrowed: Vec<(&str, &str, &str)> = queries
        .iter()
        .map(|(e, n, v)| (e.as_str(), n.as_str(), v.as_str()))
        .collect();
    let results = db.matches_many(&borrowed)?;
    let mut out: Vec<Vulnerability> = Vec::new();
    for (matches, p) in results.into_iter().zip(owners) {
        for m in matches {
            out.push(Vulnerability {
                id: m.id,
                aliases: m.aliases,
                kind: p.kind,
                package: p.name.clone(),
                installed: p.version.clone(),
                fixed: m.fixed,
                severity: m.severity.into(),
                score: m.score,
                title: m.summary.unwrap_or_default(),
                path: p.path.clone(),
                layer: p.layer.clone(),
            });
        }
    }
    Ok((out, unmatched))
}
