//! `hoist image ...`: the local image store.

use anyhow::{bail, Context, Result};
use hoist_oci::reference::Reference;
use hoist_oci::store::{ImageRecord, Store};
use hoist_oci::transfer::{self, SourceKind};
use hoist_oci::Manifest;
use serde_json::json;

use crate::cli::{ExportArgs, ExportFormat, ImageCommand, LoadArgs};
use crate::settings::Settings;

/// Run an image command.
pub fn run(settings: &Settings, cmd: ImageCommand) -> Result<()> {
    let store = settings
        .store()
        .with_context(|| format!("opening the image store in {}", settings.home.display()))?;
    match cmd {
        ImageCommand::Import(args) => super::import::run(settings, &store, args),
        ImageCommand::Ls => list(settings, &store),
        ImageCommand::Inspect { reference } => inspect(&store, &reference),
        ImageCommand::Rm { references, force } => remove(settings, &store, &references, force),
        ImageCommand::Export(args) => export(&store, args),
        ImageCommand::Load(args) => load(settings, &store, args),
        ImageCommand::Tag { source, target } => tag(&store, &source, &target),
        ImageCommand::Prune => prune(settings, &store),
    }
}

/// Split a familiar `name:tag` into its two parts.
fn split_familiar(familiar: &str) -> (&str, &str) {
    match familiar.rfind(':') {
        Some(i) if !familiar[i..].contains('/') => (&familiar[..i], &familiar[i + 1..]),
        _ => (familiar, ""),
    }
}

fn familiar(name: &str) -> String {
    name.parse::<Reference>()
        .map(|r| r.familiar())
        .unwrap_or_else(|_| name.to_owned())
}

struct Summary {
    record: ImageRecord,
    created: Option<String>,
    size: u64,
}

fn summarize(store: &Store, record: ImageRecord) -> Summary {
    let created = match store.manifest(&record.descriptor()) {
        Ok(Manifest::Image(m)) => store.config(&m.config.digest).ok().and_then(|c| c.created),
        _ => None,
    };
    let size = store.image_size(&record);
    Summary {
        record,
        created,
        size,
    }
}

fn list(settings: &Settings, store: &Store) -> Result<()> {
    let images: Vec<Summary> = store
        .list()?
        .into_iter()
        .map(|r| summarize(store, r))
        .collect();
    if settings.json {
        let rows: Vec<_> = images
            .iter()
            .map(|s| {
                json!({
                    "Id": s.record.id,
                    "Digest": s.record.digest,
                    "Names": s.record.names,
                    "Created": s.created,
                    "Size": s.size,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let mut rows = vec![[
        "REPOSITORY".to_owned(),
        "TAG".to_owned(),
        "IMAGE ID".to_owned(),
        "CREATED".to_owned(),
        "SIZE".to_owned(),
    ]];
    for s in &images {
        let id = s.record.id.hex()[..12].to_owned();
        let created = s.created.as_deref().map_or_else(|| "-".to_owned(), ago);
        let size = human_size(s.size);
        let names: Vec<String> = if s.record.names.is_empty() {
            vec!["<none>:<none>".to_owned()]
        } else {
            s.record.names.iter().map(|n| familiar(n)).collect()
        };
        for n in names {
            let (repo, tag) = split_familiar(&n);
            rows.push([
                repo.to_owned(),
                tag.to_owned(),
                id.clone(),
                created.clone(),
                size.clone(),
            ]);
        }
    }
    print_table(&rows);
    Ok(())
}

fn print_table<const N: usize>(rows: &[[String; N]]) {
    let mut widths = [0usize; N];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}   ", w = widths[i]));
            }
        }
        println!("{}", line.trim_end());
    }
}

/// `3 minutes ago`-style ages, as `docker images` prints them.
fn ago(rfc3339: &str) -> String {
    let Ok(then) = humantime::parse_rfc3339_weak(rfc3339) else {
        return rfc3339.to_owned();
    };
    let Ok(elapsed) = std::time::SystemTime::now().duration_since(then) else {
        return rfc3339.to_owned(); // in the future: show it as it is
    };
    let secs = elapsed.as_secs();
    let (n, unit) = match secs {
        0..=59 => return "Less than a minute ago".to_owned(),
        60..=3599 => (secs / 60, "minute"),
        3600..=86_399 => (secs / 3600, "hour"),
        86_400..=1_209_599 => (secs / 86_400, "day"),
        1_209_600..=5_183_999 => (secs / 604_800, "week"),
        5_184_000..=63_071_999 => (secs / 2_592_000, "month"),
        _ => (secs / 31_536_000, "year"),
    };
    if n == 1 {
        format!("1 {unit} ago")
    } else {
        format!("{n} {unit}s ago")
    }
}

/// `1.2MB`-style sizes, decimal as Docker prints them.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
            + UNITS[u]
    }
}

fn inspect(store: &Store, reference: &str) -> Result<()> {
    let record = store.resolve(reference)?;
    let manifest_bytes = store.blobs().read(&record.digest)?;
    let manifest: serde_json::Value = serde_json::from_slice(&manifest_bytes)?;
    let repo_tags: Vec<String> = record.names.iter().map(|n| familiar(n)).collect();
    let mut repo_digests: Vec<String> = record
        .names
        .iter()
        .filter_map(|n| n.parse::<Reference>().ok())
        .map(|r| format!("{}@{}", r.without_tag().familiar(), record.digest))
        .collect();
    repo_digests.dedup();
    let mut out = json!({
        "Id": record.id,
        "Digest": record.digest,
        "MediaType": record.media_type,
        "RepoTags": repo_tags,
        "RepoDigests": repo_digests,
        "Added": record.added,
        "Manifest": manifest,
    });
    if let Ok(m) = transfer::platform_manifest(store, &record) {
        let config = store.config(&m.config.digest)?;
        out["Created"] = json!(config.created);
        out["Architecture"] = json!(config.architecture);
        out["Os"] = json!(config.os);
        out["Size"] = json!(m.config.size + m.layers.iter().map(|l| l.size).sum::<u64>());
        out["Config"] = json!(config.config);
        out["RootFS"] = json!({"Type": config.rootfs.kind, "Layers": config.rootfs.diff_ids});
        out["History"] = json!(config.history);
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn remove(settings: &Settings, store: &Store, references: &[String], force: bool) -> Result<()> {
    let mut failed = 0;
    let in_use = super::deploy::digests_in_use(settings)?;
    for r in references {
        // As `docker rmi` refuses an image a container uses, even with -f: a
        // service's image stays until the service no longer needs it.
        if let Ok(Some(rec)) = store.removal_target(r, force) {
            if let Some(services) = in_use.get(&rec.digest.to_string()) {
                let names: Vec<&str> = services.iter().map(String::as_str).collect();
                eprintln!(
                    "error: {r}: image {} is used by service {}; deploy another image or remove the service first (`hoist service rm`)",
                    rec.id.short(),
                    names.join(", ")
                );
                failed += 1;
                continue;
            }
        }
        match store.remove(r, force) {
            Ok(removed) => {
                if settings.json {
                    println!(
                        "{}",
                        json!({"Untagged": removed.untagged, "Deleted": removed.deleted, "BlobsRemoved": removed.blobs_removed})
                    );
                } else {
                    for n in &removed.untagged {
                        println!("Untagged: {}", familiar(n));
                    }
                    for d in &removed.deleted {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => {
                eprintln!("error: {r}: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!(
            "{failed} of {} images could not be removed",
            references.len()
        );
    }
    Ok(())
}

fn export(store: &Store, args: ExportArgs) -> Result<()> {
    let record = store.resolve(&args.reference)?;
    // Export under the name the user gave when it is one of the image's names.
    let given = args
        .reference
        .parse::<Reference>()
        .ok()
        .filter(|r| r.digest().is_none() && record.names.contains(&r.to_string()));
    let names: Vec<Reference> = match given {
        Some(r) => vec![r],
        None => record.names.iter().filter_map(|n| n.parse().ok()).collect(),
    };
    match args.format {
        ExportFormat::Oci => {
            transfer::export_oci_layout(store, &record, names.first(), &args.path)?;
        }
        ExportFormat::DockerArchive => {
            transfer::export_docker_archive(store, &record, &names, &args.path)?;
        }
    }
    eprintln!("Exported {} to {}", record.digest, args.path.display());
    Ok(())
}

fn load(settings: &Settings, store: &Store, args: LoadArgs) -> Result<()> {
    let name = args
        .tag
        .as_deref()
        .map(|t| {
            t.parse::<Reference>()
                .with_context(|| format!("--tag {t:?}"))
        })
        .transpose()?;
    let loaded = match transfer::detect(&args.path)? {
        SourceKind::OciLayout => transfer::import_oci_layout(store, &args.path, name.as_ref())?,
        SourceKind::DockerArchive => {
            transfer::import_docker_archive(store, &args.path, name.as_ref())?
        }
    };
    report_loaded(
        settings,
        &loaded.into_iter().map(|l| l.record).collect::<Vec<_>>(),
    );
    Ok(())
}

/// Print what was loaded, as `docker load` does.
pub fn report_loaded(settings: &Settings, records: &[ImageRecord]) {
    for r in records {
        if settings.json {
            println!(
                "{}",
                json!({"Id": r.id, "Digest": r.digest, "Names": r.names})
            );
        } else if r.names.is_empty() {
            println!("Loaded image: {}", r.digest);
        } else {
            for n in &r.names {
                println!("Loaded image: {} ({})", familiar(n), r.digest);
            }
        }
    }
}

fn tag(store: &Store, source: &str, target: &str) -> Result<()> {
    let record = store.resolve(source)?;
    let target: Reference = target
        .parse()
        .with_context(|| format!("target name {target:?}"))?;
    if target.digest().is_some() {
        bail!("target name {target}: give a tag, not a digest");
    }
    store.add_image(&record.descriptor(), &[target])?;
    Ok(())
}

fn prune(settings: &Settings, store: &Store) -> Result<()> {
    // Layers the build cache still names stay (the store's GC roots): `hoist prune`
    // drops those too.
    let report = store.gc()?;
    if settings.json {
        println!(
            "{}",
            json!({"BlobsRemoved": report.blobs_removed, "BytesFreed": report.bytes_freed, "TempFilesRemoved": report.temp_files_removed})
        );
    } else {
        println!(
            "Removed {} blobs and {} temp files; freed {}",
            report.blobs_removed,
            report.temp_files_removed,
            human_size(report.bytes_freed)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ages_read_like_docker() {
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_037_000), "1.037MB");
        assert_eq!(human_size(2_000_000_000), "2GB");
        assert_eq!(ago("1970-01-01T00:00:00Z").split(' ').nth(1), Some("years"));
        let hour_ago = humantime::format_rfc3339_seconds(
            std::time::SystemTime::now() - std::time::Duration::from_secs(3700),
        )
        .to_string();
        assert_eq!(ago(&hour_ago), "1 hour ago");
        assert_eq!(ago("not a time"), "not a time");
    }
}
