//! `hoist scan`, `hoist sbom` and `hoist db`: thin handlers over `hoist-scan` and
//! `hoist-vulndb`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use hoist_scan::format::{self, DocumentInfo};
use hoist_scan::ignore::IgnoreFile;
use hoist_scan::scan::{Options, Source};
use hoist_scan::Severity;
use hoist_vulndb::Db;

use crate::cli::{DbCommand, SbomArgs, SbomFormat, ScanArgs, ScanFormat, Scanner};
use crate::settings::Settings;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The vulnerability database's directory: `<HOIST_HOME>/vulndb`.
pub(crate) fn db_dir(settings: &Settings) -> PathBuf {
    settings.home.join("vulndb")
}

/// Where a report goes: a file written whole or not at all
/// (`hoist_oci::write_atomic`), or standard output.
fn emit(
    output: Option<&Path>,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    match output {
        None => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            write(&mut lock).context("writing the report")?;
        }
        Some(path) => hoist_oci::write_atomic(path, |file| write(file))?,
    }
    Ok(())
}

fn run_scan(
    settings: &Settings,
    target: &Path,
    dir: bool,
    input: bool,
    options: &Options<'_>,
) -> Result<hoist_scan::Report> {
    let report = if dir {
        hoist_scan::scan::scan(Source::Directory(target), options)
    } else if input {
        hoist_scan::scan::scan(Source::Archive(target), options)
    } else {
        let name = target.to_string_lossy().into_owned();
        let store = settings.store()?;
        let image = store
            .resolve(&name)
            .with_context(|| format!("{name}: no such image in the store (use --dir for a directory, --input for an OCI layout or archive)"))?;
        hoist_scan::scan::scan(
            Source::Image {
                store: &store,
                image: &image,
                name: name.clone(),
            },
            options,
        )
    };
    Ok(report?)
}

/// `hoist scan`
pub fn scan(settings: &Settings, args: ScanArgs) -> Result<()> {
    let fail_on = parse_fail_on(args.fail_on.as_deref())?;
    let ignore = match &args.ignore_file {
        Some(path) => Some(IgnoreFile::read(path)?),
        None if Path::new(".hoistignore").is_file() => {
            Some(IgnoreFile::read(Path::new(".hoistignore"))?)
        }
        None => None,
    };
    let secret_scanner = if args.scanners.contains(&Scanner::Secret) {
        let config = match &args.secret_config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("{}: cannot read", path.display()))?;
                toml::from_str(&text).with_context(|| format!("{}", path.display()))?
            }
            None => hoist_secretscan::Config::default(),
        };
        Some(hoist_secretscan::Scanner::with_config(&config)?)
    } else {
        None
    };
    let db = if args.scanners.contains(&Scanner::Vuln) {
        Some(Db::open(&db_dir(settings))?)
    } else {
        None
    };
    let options = Options {
        vulnerabilities: db.as_ref(),
        secrets: secret_scanner.as_ref(),
        max_db_age: Some(args.max_db_age),
        misconfig: args.scanners.contains(&Scanner::Misconfig),
    };
    let mut report = run_scan(settings, &args.target, args.dir, args.input, &options)?;
    if let Some(ignore) = &ignore {
        let today = time::OffsetDateTime::now_utc().date();
        ignore.apply(&mut report, today);
    }
    let verdict = hoist_scan::gate::evaluate(&report, fail_on);
    let format = args.format.unwrap_or(if settings.json {
        ScanFormat::Json
    } else {
        ScanFormat::Table
    });
    if format != ScanFormat::Table {
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
    }
    let color = args.output.is_none() && std::io::stdout().is_terminal();
    emit(args.output.as_deref(), |out| match format {
        ScanFormat::Table => format::table::write(&report, &verdict, color, out),
        ScanFormat::Json => format::json(&report, out),
        ScanFormat::Sarif => format::sarif::write(&report, VERSION, out),
        ScanFormat::Cyclonedx => {
            format::cyclonedx::write(&report, &DocumentInfo::now(VERSION), out)
        }
        ScanFormat::Spdx => format::spdx::write(&report, &DocumentInfo::now(VERSION), out),
    })?;
    gate(&verdict)
}

/// `--fail-on LEVEL` of `hoist scan` and `hoist push --ecr-scan`: the least
/// severity that fails, or `None` (absent, or `none`: report only).
pub(crate) fn parse_fail_on(arg: Option<&str>) -> Result<Option<Severity>> {
    match arg {
        None => Ok(None),
        Some(s) if s.eq_ignore_ascii_case("none") => Ok(None),
        Some(s) => match Severity::parse(s) {
            Some(Severity::Unknown) | None => {
                bail!("--fail-on {s:?}: expected critical, high, medium, low or none")
            }
            Some(level) => Ok(Some(level)),
        },
    }
}

/// The gate's outcome as the command's: an error (exit 1) when it failed.
pub(crate) fn gate(verdict: &hoist_scan::gate::Verdict) -> Result<()> {
    if verdict.failed() {
        let level = verdict.fail_on.map_or("", Severity::as_str);
        bail!(
            "scan gate failed: {} findings at {level} or above",
            verdict.failing
        );
    }
    Ok(())
}

/// `hoist sbom`
pub fn sbom(settings: &Settings, args: SbomArgs) -> Result<()> {
    let report = run_scan(
        settings,
        &args.target,
        args.dir,
        args.input,
        &Options::default(),
    )?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    let info = DocumentInfo::now(VERSION);
    emit(args.output.as_deref(), |out| match args.format {
        SbomFormat::Cyclonedx => format::cyclonedx::write(&report, &info, out),
        SbomFormat::Spdx => format::spdx::write(&report, &info, out),
    })
}

/// `hoist db ...`
pub fn db(settings: &Settings, cmd: DbCommand) -> Result<()> {
    let dir = db_dir(settings);
    match cmd {
        DbCommand::Import { path } => {
            let mut db = Db::open(&dir)?;
            let report = if path.is_dir() {
                db.import_dir(&path)?
            } else if path.is_file() {
                db.import_zip(&path)?
            } else {
                bail!("{}: no such file or directory", path.display());
            };
            print_import(settings, &report)
        }
        DbCommand::Update {
            ecosystems,
            base_url,
        } => {
            let mut db = Db::open(&dir)?;
            for eco in ecosystems {
                let url = match &base_url {
                    Some(base) => format!("{}/{eco}/all.zip", base.trim_end_matches('/')),
                    None => hoist_vulndb::osv_url(&eco),
                };
                let report = db.import_url(&url).with_context(|| {
                    format!("updating {eco} (offline? `hoist db import PATH` reads a local export)")
                })?;
                print_import(settings, &report)?;
            }
            Ok(())
        }
        DbCommand::Status => {
            let db = Db::open(&dir)?;
            let sources = db.status()?;
            let now = std::time::SystemTime::now();
            if settings.json {
                let rows: Vec<_> = sources
                    .iter()
                    .map(|s| {
                        let at = s
                            .imported_at
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_secs());
                        serde_json::json!({"source": s.source, "advisories": s.count, "imported_at": at})
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"path": db.path(), "sources": rows})
                    )?
                );
                return Ok(());
            }
            println!("database: {}", db.path().display());
            if sources.is_empty() {
                println!("no advisories imported yet: `hoist db update` (online) or `hoist db import PATH`");
            }
            for s in &sources {
                let age = now
                    .duration_since(s.imported_at)
                    .map(|d| {
                        humantime::format_duration(std::time::Duration::from_secs(d.as_secs()))
                            .to_string()
                    })
                    .unwrap_or_else(|_| "just now".into());
                println!(
                    "{:>9} advisories  {}  (imported {age} ago)",
                    s.count, s.source
                );
            }
            Ok(())
        }
    }
}

fn print_import(settings: &Settings, r: &hoist_vulndb::ImportReport) -> Result<()> {
    if settings.json {
        println!(
            "{}",
            serde_json::json!({"source": r.source, "advisories": r.advisories, "withdrawn": r.withdrawn, "entries": r.entries})
        );
    } else {
        println!(
            "imported {} advisories ({} withdrawn, {} package entries) from {}",
            r.advisories, r.withdrawn, r.entries, r.source
        );
    }
    Ok(())
}
