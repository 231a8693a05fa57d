//! The local database: one SQLite file, `vulndb.sqlite`, in the directory given
//! to [`Db::open`] (`<home>/vulndb/`).

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hoist_version::Scheme;
use rusqlite::{params, Connection, OptionalExtension};

use crate::ecosystem;
use crate::matching::{self, Entry, Verdict};
use crate::osv::Advisory;
use crate::Severity;

/// The file name of the database inside its directory.
pub const DB_FILE: &str = "vulndb.sqlite";

/// What went wrong, naming the file, URL or database involved.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// An advisory file is not valid OSV JSON; nothing of the import was kept.
    #[error("{file}: invalid OSV JSON at line {line}, column {column}: {source}")]
    Json {
        /// The file (a path, or `archive.zip!/entry.json`).
        file: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's message.
        source: serde_json::Error,
    },
    /// A zip archive could not be read.
    #[error("{file}: {source}")]
    Zip {
        /// The archive (or archive entry).
        file: String,
        /// The error.
        source: zip::result::ZipError,
    },
    /// A download failed.
    #[error("download {url}: {source}")]
    Http {
        /// The URL.
        url: String,
        /// The error.
        source: Box<ureq::Error>,
    },
    /// The database could not be opened, read or written.
    #[error("vulnerability database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The error.
        source: rusqlite::Error,
    },
    /// A stored entry could not be decoded (a database written by another version).
    #[error("vulnerability database {path}: corrupt entry for {id}: {source}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// The advisory id.
        id: String,
        /// The decoder's message.
        source: serde_json::Error,
    },
}

/// One imported source, for `db status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceStatus {
    /// The source: a directory, a zip file or a URL.
    pub source: String,
    /// Advisories imported from it (withdrawn ones included).
    pub count: u64,
    /// When it was last imported.
    pub imported_at: SystemTime,
}

/// The result of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// The source name recorded in `sources`.
    pub source: String,
    /// Advisory files read.
    pub advisories: u64,
    /// Of those, withdrawn (stored nowhere, so they match nothing).
    pub withdrawn: u64,
    /// Package entries stored (one per affected package with evaluable ranges or versions).
    pub entries: u64,
}

/// One advisory affecting a queried package version.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// The advisory id.
    pub id: String,
    /// Its aliases (CVE ids...).
    pub aliases: Vec<String>,
    /// Its one-line summary.
    pub summary: Option<String>,
    /// Qualitative severity (see [`crate::matching::assess`]).
    pub severity: Severity,
    /// The CVSS score it was derived from, if any.
    pub score: Option<f32>,
    /// The version that fixes the range the queried version is in, if known.
    pub fixed: Option<String>,
    /// The advisory's ecosystem string for the package.
    pub ecosystem: String,
    /// The advisory's package name.
    pub package: String,
    /// When the advisory last changed (RFC 3339).
    pub modified: Option<String>,
}

/// The vulnerability database.
pub struct Db {
    path: PathBuf,
    conn: Connection,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sources(
    source TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    imported_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS entries(
    eco TEXT NOT NULL,
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    id TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_pkg ON entries(eco, name);
";

/// The osv.dev export of one ecosystem.
pub fn osv_url(ecosystem: &str) -> String {
    format!("https://osv-vulnerabilities.storage.googleapis.com/{ecosystem}/all.zip")
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DbError + '_ {
    move |source| DbError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn parse(file: &str, bytes: &[u8]) -> Result<Advisory, DbError> {
    serde_json::from_slice(bytes).map_err(|source| DbError::Json {
        file: file.to_string(),
        line: source.line(),
        column: source.column(),
        source,
    })
}

impl Db {
    /// Opens (creating if needed) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Db, DbError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let path = dir.join(DB_FILE);
        let sql = |source| DbError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;
        conn.execute_batch(SCHEMA).map_err(sql)?;
        Ok(Db { path, conn })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> DbError + '_ {
        |source| DbError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Imports every `*.json` file under `dir` (recursively), replacing what an
    /// earlier import of the same directory stored. One bad file fails the
    /// import, naming the file, and leaves the database as it was.
    pub fn import_dir(&mut self, dir: &Path) -> Result<ImportReport, DbError> {
        let source = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let source = source.display().to_string();
        let mut files = Vec::new();
        for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
            let e = e.map_err(|e| {
                let path = e.path().unwrap_or(dir).to_path_buf();
                DbError::Io {
                    path,
                    source: e.into(),
                }
            })?;
            if e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "json") {
                files.push(e.into_path());
            }
        }
        self.import(
            &source,
            files.into_iter().map(|p| {
                let bytes = std::fs::read(&p).map_err(io_err(&p))?;
                Ok((p.display().to_string(), bytes))
            }),
        )
    }

    /// Imports the `*.json` entries of a zip archive in osv.dev's `all.zip`
    /// layout, replacing an earlier import of the same file.
    pub fn import_zip(&mut self, path: &Path) -> Result<ImportReport, DbError> {
        let source = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        self.import_zip_as(path, &source.display().to_string())
    }

    fn import_zip_as(&mut self, path: &Path, source: &str) -> Result<ImportReport, DbError> {
        let file = std::fs::File::open(path).map_err(io_err(path))?;
        let zip_err = |file: String| move |source| DbError::Zip { file, source };
        let shown = path.display().to_string();
        let mut archive =
            zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(zip_err(shown.clone()))?;
        let mut i = 0;
        let files = std::iter::from_fn(move || {
            while i < archive.len() {
                let idx = i;
                i += 1;
                let mut entry = match archive.by_index(idx) {
                    Ok(e) => e,
                    Err(e) => return Some(Err(zip_err(format!("{shown}!#{idx}"))(e))),
                };
                let inner = match entry.name() {
                    Ok(n) => n.into_owned(),
                    Err(e) => return Some(Err(zip_err(format!("{shown}!#{idx}"))(e))),
                };
                let name = format!("{shown}!/{inner}");
                if !entry.is_file() || !inner.ends_with(".json") {
                    continue;
                }
                let mut bytes = Vec::with_capacity(entry.size() as usize);
                if let Err(e) = entry.read_to_end(&mut bytes) {
                    return Some(Err(DbError::Io {
                        path: PathBuf::from(name),
                        source: e,
                    }));
                }
                return Some(Ok((name, bytes)));
            }
            None
        });
        self.import(source, files)
    }

    /// Downloads a zip (e.g. [`osv_url`]) into the database directory and
    /// imports it under the URL's name.
    pub fn import_url(&mut self, url: &str) -> Result<ImportReport, DbError> {
        let dir = self.path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let http = |source| DbError::Http {
            url: url.to_string(),
            source: Box::new(source),
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(".download-")
            .suffix(".zip")
            .tempfile_in(&dir)
            .map_err(io_err(&dir))?;
        let resp = ureq::get(url).call().map_err(http)?;
        let mut body = resp.into_body().into_reader();
        std::io::copy(&mut body, tmp.as_file_mut()).map_err(|e| DbError::Http {
            url: url.to_string(),
            source: Box::new(ureq::Error::Io(e)),
        })?;
        let path = tmp.path().to_path_buf();
        self.import_zip_as(&path, url)
    }

    /// The import proper: all in one transaction, committed only when every
    /// file parsed.
    fn import(
        &mut self,
        source: &str,
        files: impl Iterator<Item = Result<(String, Vec<u8>), DbError>>,
    ) -> Result<ImportReport, DbError> {
        let path = self.path.clone();
        let sql = |source| DbError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        tx.execute("DELETE FROM entries WHERE source = ?1", [source])
            .map_err(sql)?;
        let mut report = ImportReport {
            source: source.to_string(),
            advisories: 0,
            withdrawn: 0,
            entries: 0,
        };
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO entries(eco, name, source, id, data) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(sql)?;
            for file in files {
                let (name, bytes) = file?;
                let adv = parse(&name, &bytes)?;
                report.advisories += 1;
                if adv.withdrawn.is_some() {
                    report.withdrawn += 1;
                }
                for entry in matching::entries(&adv) {
                    let (eco, pkg) = ecosystem::key(&entry.ecosystem, &entry.name);
                    let data = serde_json::to_vec(&entry).map_err(|source| DbError::Corrupt {
                        path: path.clone(),
                        id: entry.id.clone(),
                        source,
                    })?;
                    insert
                        .execute(params![eco, pkg, source, entry.id, data])
                        .map_err(sql)?;
                    report.entries += 1;
                }
            }
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        tx.execute(
            "INSERT OR REPLACE INTO sources(source, count, imported_at) VALUES (?1, ?2, ?3)",
            params![source, report.advisories as i64, now as i64],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(report)
    }

    /// The imported sources, by name.
    pub fn status(&self) -> Result<Vec<SourceStatus>, DbError> {
        let mut stmt = self
            .conn
            .prepare("SELECT source, count, imported_at FROM sources ORDER BY source")
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(SourceStatus {
                    source: r.get(0)?,
                    count: r.get::<_, i64>(1)?.max(0) as u64,
                    imported_at: UNIX_EPOCH
                        + Duration::from_secs(r.get::<_, i64>(2)?.max(0) as u64),
                })
            })
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }

    /// When the most recent import finished; `None` for an empty database.
    pub fn last_import(&self) -> Result<Option<SystemTime>, DbError> {
        let secs: Option<i64> = self
            .conn
            .query_row("SELECT max(imported_at) FROM sources", [], |r| r.get(0))
            .optional()
            .map_err(self.sql())?
            .flatten();
        Ok(secs.map(|s| UNIX_EPOCH + Duration::from_secs(s.max(0) as u64)))
    }

    /// Time since the most recent import (a scan warns when it is old);
    /// `None` for an empty database.
    pub fn age(&self) -> Result<Option<Duration>, DbError> {
        Ok(self
            .last_import()?
            .map(|t| SystemTime::now().duration_since(t).unwrap_or_default()))
    }

    /// Advisories affecting `name` at `version` in `ecosystem` (the exact
    /// ecosystem string, e.g. `Debian:12`, `PyPI`), one per advisory id.
    pub fn matches(
        &self,
        ecosystem: &str,
        name: &str,
        version: &str,
    ) -> Result<Vec<Match>, DbError> {
        let mut all = self.matches_many(&[(ecosystem, name, version)])?;
        Ok(all.pop().unwrap_or_default())
    }

    /// [`Db::matches`] for many packages with one prepared statement; the
    /// result is aligned with `queries`.
    pub fn matches_many(&self, queries: &[(&str, &str, &str)]) -> Result<Vec<Vec<Match>>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, data FROM entries WHERE eco = ?1 AND name = ?2")
            .map_err(self.sql())?;
        let mut out = Vec::with_capacity(queries.len());
        for &(eco, name, version) in queries {
            let (fam, key) = ecosystem::key(eco, name);
            let scheme = scheme_for(eco);
            let rows = stmt
                .query_map(params![fam, key], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
                })
                .map_err(self.sql())?;
            let mut found: Vec<Match> = Vec::new();
            let mut seen = HashSet::new();
            for row in rows {
                let (id, data) = row.map_err(self.sql())?;
                let entry: Entry =
                    serde_json::from_slice(&data).map_err(|source| DbError::Corrupt {
                        path: self.path.clone(),
                        id: id.clone(),
                        source,
                    })?;
                if let Verdict::Affected { fixed } = matching::evaluate(&entry, scheme, version) {
                    if seen.insert(entry.id.clone()) {
                        found.push(to_match(entry, fixed));
                    } else if let Some(m) = found.iter_mut().find(|m| m.id == entry.id) {
                        if m.fixed.is_none() {
                            m.fixed = fixed;
                        }
                    }
                }
            }
            found.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.id.cmp(&b.id)));
            out.push(found);
        }
        Ok(out)
    }
}

/// The version scheme of an ecosystem string (trying its base before the `:`).
fn scheme_for(ecosystem: &str) -> Option<Scheme> {
    Scheme::for_ecosystem(ecosystem).or_else(|| {
        let base = ecosystem.split(':').next().unwrap_or(ecosystem);
        Scheme::for_ecosystem(base)
    })
}

fn to_match(e: Entry, fixed: Option<String>) -> Match {
    Match {
        id: e.id,
        aliases: e.aliases,
        summary: e.summary,
        severity: e.severity,
        score: e.score,
        fixed,
        ecosystem: e.ecosystem,
        package: e.name,
        modified: e.modified,
    }
}
