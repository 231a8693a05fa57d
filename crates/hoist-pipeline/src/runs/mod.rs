//! The run history: runs and their stages in SQLite (`<home>/pipeline/runs.db`,
//! WAL, synchronous FULL), every change one transaction, and each stage's log in a
//! file of its own under the run's directory.
//!
//! A run is created with all its stages `pending`, so the record always says how
//! far a run got: a process killed mid-stage leaves that stage `running`, and
//! [`Runs::abandon_dead`] marks such runs failed (the run records the process that
//! owns it) when the next engine starts.
//!
//! It is also the run queue of `hoist server`: a run of a repository is
//! [`Runs::enqueue`]d (superseding older queued runs of its branch), a worker
//! [`Runs::claim`]s it, and a run the server was killed in is put back in the queue
//! to resume where it stopped ([`Runs::requeue_dead`]). The schema moves forward
//! through numbered migrations (`PRAGMA user_version`), one transaction each.

pub mod db;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use db::{params, Conn, DbError, Dialect, Row, Tx};

/// A run-history error.
#[derive(Debug, thiserror::Error)]
pub enum RunsError {
    /// The database failed.
    #[error("{at}: {source}")]
    Database {
        /// The database: its file, or its URL without the password.
        at: String,
        /// The cause.
        source: DbError,
    },
    /// The directory of the database or of a run could not be made.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// No such run or stage.
    #[error("no run #{0}")]
    NoRun(i64),
    /// An approval that does not fit the run.
    #[error("{0}")]
    Approval(String),
}

/// Where a run or a stage stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// In the server's queue, not claimed by a worker yet.
    Queued,
    /// Not started.
    Pending,
    /// Under way.
    Running,
    /// Waiting for a manual approval.
    Waiting,
    /// Done and good.
    Succeeded,
    /// Done and failed (the message says why).
    Failed,
    /// Not run because an earlier stage failed or the run stopped before it.
    Skipped,
    /// Stopped on request.
    Cancelled,
}

impl Status {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Waiting => "waiting",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Status {
        match s {
            "queued" => Status::Queued,
            "pending" => Status::Pending,
            "running" => Status::Running,
            "waiting" => Status::Waiting,
            "succeeded" => Status::Succeeded,
            "skipped" => Status::Skipped,
            "cancelled" => Status::Cancelled,
            _ => Status::Failed,
        }
    }

    /// Whether nothing more happens to it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Status::Succeeded | Status::Failed | Status::Skipped | Status::Cancelled
        )
    }
}

/// What a run builds: the source's commit, as far as it is known.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// Full commit id (empty outside a git repository).
    pub sha: String,
    /// Branch name, when on one.
    pub branch: Option<String>,
    /// Author, `Name <email>`.
    pub author: Option<String>,
    /// First line of the message.
    pub message: Option<String>,
    /// The working tree had changes on top of `sha`.
    pub dirty: bool,
}

/// A run as recorded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Run {
    /// Run number.
    pub id: i64,
    /// The app of hoist.yml.
    pub app: String,
    /// What started it (`hoist up`, `webhook`, ...).
    pub trigger: String,
    /// The server's repository it builds; `None` for a working tree (`hoist up`).
    pub repo: Option<String>,
    /// The source.
    pub commit: Commit,
    /// Where it stands.
    pub status: Status,
    /// The image built, `name:tag@digest`, once built.
    pub image: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Unix milliseconds.
    pub created: i64,
    /// Unix milliseconds, once final.
    pub finished: Option<i64>,
    /// Its stages, in order.
    pub stages: Vec<Stage>,
}

/// A stage of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stage {
    /// Position in the run, from 0.
    pub seq: i64,
    /// `source`, `test`, `build`, `scan`, `push`, `deploy:<env>`, `verify:<env>`.
    pub name: String,
    /// Where it stands.
    pub status: Status,
    /// A one-line summary (the error when failed).
    pub message: Option<String>,
    /// Unix milliseconds.
    pub started: Option<i64>,
    /// Unix milliseconds.
    pub finished: Option<i64>,
}

/// The run history of one hoist home.
pub struct Runs {
    dir: PathBuf,
    /// The database as shown in errors.
    at: String,
    conn: Mutex<Conn>,
    /// This machine's name: a run's owner is a process of this host.
    host: String,
}

impl std::fmt::Debug for Runs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runs").field("at", &self.at).finish()
    }
}

impl From<DbError> for RunsError {
    fn from(source: DbError) -> RunsError {
        RunsError::Database {
            at: String::new(),
            source,
        }
    }
}

/// The schema in SQLite, one migration per step; a database at `user_version` N
/// has had the first N applied. Never edit a published step: add one, here and in
/// [`POSTGRES_MIGRATIONS`] (the same step in PostgreSQL's words).
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    app TEXT NOT NULL,
    trigger TEXT NOT NULL,
    sha TEXT NOT NULL,
    branch TEXT,
    author TEXT,
    message TEXT,
    dirty INTEGER NOT NULL,
    owner INTEGER NOT NULL,
    status TEXT NOT NULL,
    image TEXT,
    error TEXT,
    created INTEGER NOT NULL,
    finished INTEGER
);
CREATE TABLE IF NOT EXISTS stages (
    run INTEGER NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT,
    started INTEGER,
    finished INTEGER,
    PRIMARY KEY (run, seq)
);
CREATE TABLE IF NOT EXISTS approvals (
    run INTEGER NOT NULL REFERENCES runs(id),
    environment TEXT NOT NULL,
    approved INTEGER NOT NULL,
    by TEXT NOT NULL,
    time INTEGER NOT NULL,
    PRIMARY KEY (run, environment)
);
"#,
    // The server's queue: the repository a run builds, what it handed on from stage
    // to stage (to resume), a cancel request, and how often a worker took it.
    r#"
ALTER TABLE runs ADD COLUMN repo TEXT;
ALTER TABLE runs ADD COLUMN state TEXT;
ALTER TABLE runs ADD COLUMN cancel INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
CREATE INDEX runs_by_status ON runs (status, id);
"#,
    // The host of the owning process: a shared database sees several machines.
    "ALTER TABLE runs ADD COLUMN host TEXT;",
];

/// [`MIGRATIONS`] in PostgreSQL; `hoist_schema` holds how many were applied.
const POSTGRES_MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE runs (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    app TEXT NOT NULL,
    trigger TEXT NOT NULL,
    sha TEXT NOT NULL,
    branch TEXT,
    author TEXT,
    message TEXT,
    dirty BIGINT NOT NULL,
    owner BIGINT NOT NULL,
    status TEXT NOT NULL,
    image TEXT,
    error TEXT,
    created BIGINT NOT NULL,
    finished BIGINT
);
CREATE TABLE stages (
    run BIGINT NOT NULL REFERENCES runs(id),
    seq BIGINT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT,
    started BIGINT,
    finished BIGINT,
    PRIMARY KEY (run, seq)
);
CREATE TABLE approvals (
    run BIGINT NOT NULL REFERENCES runs(id),
    environment TEXT NOT NULL,
    approved BIGINT NOT NULL,
    by TEXT NOT NULL,
    time BIGINT NOT NULL,
    PRIMARY KEY (run, environment)
);
"#,
    r#"
ALTER TABLE runs ADD COLUMN repo TEXT;
ALTER TABLE runs ADD COLUMN state TEXT;
ALTER TABLE runs ADD COLUMN cancel BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
CREATE INDEX runs_by_status ON runs (status, id);
"#,
    "ALTER TABLE runs ADD COLUMN host TEXT;",
];

/// Applies the migrations `conn` has not had yet, each in its own transaction
/// (which holds the schema's lock, so two processes never apply one twice).
fn migrate(conn: &mut Conn) -> Result<(), DbError> {
    if conn.dialect() == Dialect::Postgres {
        let mut tx = conn.tx()?;
        tx.batch("CREATE TABLE IF NOT EXISTS hoist_schema (version BIGINT NOT NULL)")?;
        tx.commit()?;
    }
    loop {
        let mut tx = conn.tx()?;
        let (steps, version) = match tx.dialect() {
            Dialect::Sqlite => (
                MIGRATIONS,
                tx.row("PRAGMA user_version", params![])?
                    .map_or(Ok(0), |r| r.int(0))?,
            ),
            Dialect::Postgres => {
                tx.batch("LOCK TABLE hoist_schema IN ACCESS EXCLUSIVE MODE")?;
                let v = match tx.row("SELECT version FROM hoist_schema", params![])? {
                    Some(r) => r.int(0)?,
                    None => {
                        tx.execute("INSERT INTO hoist_schema (version) VALUES (0)", params![])?;
                        0
                    }
                };
                (POSTGRES_MIGRATIONS, v)
            }
        };
        let Some(step) = usize::try_from(version).ok().and_then(|v| steps.get(v)) else {
            return tx.commit();
        };
        tx.batch(step)?;
        match tx.dialect() {
            // PRAGMA takes no parameters.
            Dialect::Sqlite => tx.batch(&format!("PRAGMA user_version = {}", version + 1))?,
            Dialect::Postgres => {
                tx.execute("UPDATE hoist_schema SET version = ?1", params![version + 1])?;
            }
        }
        tx.commit()?;
    }
}

/// Whether process `pid` exists (signal 0 reaches it, or it belongs to another user).
fn process_alive(pid: i64) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// This machine's host name.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// `url` without its password, for messages.
fn shown_url(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(at)) if at > scheme.len() + 3 => {
            let auth = &rest[..at - scheme.len() - 3];
            let user = auth.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{}", &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

fn run_of(r: &Row) -> Result<Run, DbError> {
    Ok(Run {
        id: r.int(0)?,
        app: r.text(1)?,
        trigger: r.text(2)?,
        commit: Commit {
            sha: r.text(3)?,
            branch: r.opt_text(4)?,
            author: r.opt_text(5)?,
            message: r.opt_text(6)?,
            dirty: r.bool(7)?,
        },
        status: Status::parse(&r.text(8)?),
        image: r.opt_text(9)?,
        error: r.opt_text(10)?,
        created: r.int(11)?,
        finished: r.opt_int(12)?,
        repo: r.opt_text(13)?,
        stages: Vec::new(),
    })
}

impl Runs {
    /// Opens (creating) the run history under `dir` (`<home>/pipeline`), in SQLite.
    pub fn open(dir: &Path) -> Result<Runs, RunsError> {
        Runs::open_with(dir, None)
    }

    /// Opens the run history: in the PostgreSQL database at `url` when given
    /// (`postgres://user:password@host/db`), else in SQLite under `dir`. Run
    /// directories (workspaces, logs, artifacts) are under `dir` either way.
    pub fn open_with(dir: &Path, url: Option<&str>) -> Result<Runs, RunsError> {
        std::fs::create_dir_all(dir).map_err(|source| RunsError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let (at, conn) = match url {
            Some(url) => {
                let at = shown_url(url);
                let err = |e: postgres::Error| RunsError::Database {
                    at: at.clone(),
                    source: e.into(),
                };
                let client = postgres::Client::connect(url, postgres::NoTls).map_err(err)?;
                (at.clone(), Conn::Postgres(Box::new(client)))
            }
            None => {
                let path = dir.join("runs.db");
                let at = path.display().to_string();
                let err = |e: rusqlite::Error| RunsError::Database {
                    at: at.clone(),
                    source: e.into(),
                };
                let conn = rusqlite::Connection::open(&path).map_err(err)?;
                conn.busy_timeout(std::time::Duration::from_secs(10))
                    .map_err(err)?;
                conn.pragma_update(None, "journal_mode", "WAL")
                    .map_err(err)?;
                conn.pragma_update(None, "synchronous", "FULL")
                    .map_err(err)?;
                (at.clone(), Conn::Sqlite(conn))
            }
        };
        let runs = Runs {
            dir: dir.to_owned(),
            at,
            conn: Mutex::new(conn),
            host: host_name(),
        };
        {
            let mut conn = runs.conn.lock().unwrap_or_else(PoisonError::into_inner);
            migrate(&mut conn).map_err(|e| runs.located(e.into()))?;
        }
        Ok(runs)
    }

    /// Which database holds the history.
    pub fn dialect(&self) -> Dialect {
        self.conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .dialect()
    }

    fn located(&self, e: RunsError) -> RunsError {
        match e {
            RunsError::Database { at, source } if at.is_empty() => RunsError::Database {
                at: self.at.clone(),
                source,
            },
            other => other,
        }
    }

    /// Runs `f` in one transaction, committed when it returns `Ok`.
    fn with<T>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T, RunsError>) -> Result<T, RunsError> {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let run = || -> Result<T, RunsError> {
            let mut tx = conn.tx()?;
            let out = f(&mut tx)?;
            tx.commit()?;
            Ok(out)
        };
        run().map_err(|e| self.located(e))
    }

    /// The directory of run `id`: its workspace (`src`), logs and artifacts.
    pub fn run_dir(&self, id: i64) -> PathBuf {
        self.dir.join("runs").join(id.to_string())
    }

    /// The log file of stage `seq` of run `id`.
    pub fn log_path(&self, id: i64, seq: i64) -> PathBuf {
        self.run_dir(id).join("logs").join(format!("{seq}.log"))
    }

    /// Stage `seq` of run `id`'s log from byte `offset` on (empty when there is
    /// none yet). Unless the stage has `ended`, only whole lines: a writer may be
    /// halfway through the last one.
    pub fn read_log(
        &self,
        id: i64,
        seq: i64,
        offset: u64,
        ended: bool,
    ) -> std::io::Result<Vec<u8>> {
        use std::io::{Read, Seek};
        let mut text = Vec::new();
        let mut file = match std::fs::File::open(self.log_path(id, seq)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(text),
            Err(e) => return Err(e),
        };
        file.seek(std::io::SeekFrom::Start(offset))?;
        file.read_to_end(&mut text)?;
        if !ended {
            let whole = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            text.truncate(whole);
        }
        Ok(text)
    }

    fn make_logs_dir(&self, id: i64) -> Result<(), RunsError> {
        let logs = self.run_dir(id).join("logs");
        std::fs::create_dir_all(&logs).map_err(|source| RunsError::Io { path: logs, source })
    }

    /// Records a new run with `stages`, all pending, in one transaction.
    pub fn create(
        &self,
        app: &str,
        trigger: &str,
        commit: &Commit,
        stages: &[String],
    ) -> Result<i64, RunsError> {
        let id = self.with(|tx| {
            let id = tx
                .row(
                    "INSERT INTO runs (app, trigger, sha, branch, author, message, dirty, owner, host, status, created)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'running', ?10) RETURNING id",
                    params![
                        app,
                        trigger,
                        &commit.sha,
                        &commit.branch,
                        &commit.author,
                        &commit.message,
                        i64::from(commit.dirty),
                        i64::from(std::process::id()),
                        &self.host,
                        now_ms()
                    ],
                )?
                .ok_or(DbError::Type(0))?
                .int(0)?;
            insert_stages(tx, id, 0, stages)?;
            Ok(id)
        })?;
        self.make_logs_dir(id)?;
        Ok(id)
    }

    /// Moves stage `seq` of run `id` to `status`, with a summary line; a stage's
    /// start and end times follow from the moves.
    pub fn set_stage(
        &self,
        id: i64,
        seq: i64,
        status: Status,
        message: Option<&str>,
    ) -> Result<(), RunsError> {
        let changed = self.with(|tx| {
            Ok(tx.execute(
                "UPDATE stages SET status = ?3, message = COALESCE(?4, message),
                     started = CASE WHEN ?3 = 'running' AND started IS NULL THEN ?5 ELSE started END,
                     finished = CASE WHEN ?6 THEN ?5 ELSE NULL END
                 WHERE run = ?1 AND seq = ?2",
                params![id, seq, status.as_str(), message, now_ms(), status.is_final()],
            )?)
        })?;
        if changed == 0 {
            return Err(RunsError::NoRun(id));
        }
        Ok(())
    }

    /// Records the app a run builds (a server's run learns it from the pipeline it
    /// checks out).
    pub fn set_app(&self, id: i64, app: &str) -> Result<(), RunsError> {
        self.with(|tx| {
            tx.execute("UPDATE runs SET app = ?2 WHERE id = ?1", params![id, app])?;
            Ok(())
        })
    }

    /// Records the image a run built.
    pub fn set_image(&self, id: i64, image: &str) -> Result<(), RunsError> {
        self.with(|tx| {
            tx.execute(
                "UPDATE runs SET image = ?2 WHERE id = ?1",
                params![id, image],
            )?;
            Ok(())
        })
    }

    /// Ends run `id` with `status`: stages not reached become skipped, in the same
    /// transaction.
    pub fn finish(&self, id: i64, status: Status, error: Option<&str>) -> Result<(), RunsError> {
        self.with(|tx| {
            let now = now_ms();
            tx.execute(
                "UPDATE stages SET status = 'skipped', finished = ?2
                 WHERE run = ?1 AND status IN ('pending', 'waiting')",
                params![id, now],
            )?;
            tx.execute(
                "UPDATE runs SET status = ?2, error = ?3, finished = ?4 WHERE id = ?1",
                params![id, status.as_str(), error, now],
            )?;
            Ok(())
        })
    }

    /// Marks every run of a working tree (`hoist up`; the server resumes its own
    /// with [`Runs::requeue_dead`]) still `running` whose owning process is gone
    /// failed, with its running stage: `why` says so. Returns their ids.
    pub fn abandon_dead(&self, why: &str) -> Result<Vec<i64>, RunsError> {
        self.abandon(why, |pid| !process_alive(pid))
    }

    fn abandon(&self, why: &str, dead: impl Fn(i64) -> bool) -> Result<Vec<i64>, RunsError> {
        self.abandon_where(why, "repo IS NULL", dead)
    }

    /// The runs of this host still `running` and matching `filter` (SQL over
    /// `runs`) whose owner is `dead`.
    fn dead_runs(
        &self,
        tx: &mut Tx<'_>,
        filter: &str,
        dead: &impl Fn(i64) -> bool,
    ) -> Result<Vec<i64>, RunsError> {
        let rows = tx.query(
            &format!(
                "SELECT id, owner FROM runs
                 WHERE status = 'running' AND (host IS NULL OR host = ?1) AND {filter}"
            ),
            params![&self.host],
        )?;
        let mut out = Vec::new();
        for r in rows {
            if dead(r.int(1)?) {
                out.push(r.int(0)?);
            }
        }
        Ok(out)
    }

    /// Marks failed the runs [`Runs::dead_runs`] finds.
    fn abandon_where(
        &self,
        why: &str,
        filter: &str,
        dead: impl Fn(i64) -> bool,
    ) -> Result<Vec<i64>, RunsError> {
        self.with(|tx| {
            let ids = self.dead_runs(tx, filter, &dead)?;
            let now = now_ms();
            for id in &ids {
                tx.execute(
                    "UPDATE stages SET status = 'failed', message = ?2, finished = ?3
                     WHERE run = ?1 AND status = 'running'",
                    params![*id, why, now],
                )?;
                tx.execute(
                    "UPDATE stages SET status = 'skipped', finished = ?2
                     WHERE run = ?1 AND status IN ('pending', 'waiting')",
                    params![*id, now],
                )?;
                tx.execute(
                    "UPDATE runs SET status = 'failed', error = ?2, finished = ?3 WHERE id = ?1",
                    params![*id, why, now],
                )?;
            }
            Ok(ids)
        })
    }

    /// Run `id` with its stages.
    pub fn get(&self, id: i64) -> Result<Option<Run>, RunsError> {
        self.with(|tx| {
            let Some(row) = tx.row(
                "SELECT id, app, trigger, sha, branch, author, message, dirty, status, image, error, created, finished, repo
                 FROM runs WHERE id = ?1",
                params![id],
            )?
            else {
                return Ok(None);
            };
            let mut run = run_of(&row)?;
            for r in tx.query(
                "SELECT seq, name, status, message, started, finished FROM stages WHERE run = ?1 ORDER BY seq",
                params![id],
            )? {
                run.stages.push(Stage {
                    seq: r.int(0)?,
                    name: r.text(1)?,
                    status: Status::parse(&r.text(2)?),
                    message: r.opt_text(3)?,
                    started: r.opt_int(4)?,
                    finished: r.opt_int(5)?,
                });
            }
            Ok(Some(run))
        })
    }

    /// Records `by`'s decision on run `id`'s approval gate before `environment`, once:
    /// the run must be going and have that gate not yet passed.
    pub fn decide(
        &self,
        id: i64,
        environment: &str,
        approved: bool,
        by: &str,
    ) -> Result<(), RunsError> {
        let gate = format!("approval:{environment}");
        self.with(|tx| {
            let Some(run) = tx.row("SELECT status FROM runs WHERE id = ?1", params![id])? else {
                return Err(RunsError::NoRun(id));
            };
            let run_status = run.text(0)?;
            if Status::parse(&run_status).is_final() {
                return Err(RunsError::Approval(format!(
                    "run #{id} has ended ({run_status})"
                )));
            }
            let stage = tx.row(
                "SELECT status FROM stages WHERE run = ?1 AND name = ?2",
                params![id, gate.as_str()],
            )?;
            match stage.map(|r| r.text(0)).transpose()?.as_deref().map(Status::parse) {
                None => {
                    return Err(RunsError::Approval(format!(
                        "run #{id} has no approval gate before {environment:?}"
                    )))
                }
                Some(Status::Pending | Status::Waiting) => {}
                Some(other) => {
                    return Err(RunsError::Approval(format!(
                        "the approval of {environment:?} in run #{id} is {} already",
                        other.as_str()
                    )))
                }
            }
            let done = tx.execute(
                "INSERT INTO approvals (run, environment, approved, by, time) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT DO NOTHING",
                params![id, environment, i64::from(approved), by, now_ms()],
            )?;
            if done == 0 {
                return Err(RunsError::Approval(format!(
                    "the approval of {environment:?} in run #{id} was decided already"
                )));
            }
            Ok(())
        })
    }

    /// The decision on run `id`'s gate before `environment`: approved or not, and by whom.
    pub fn decision(
        &self,
        id: i64,
        environment: &str,
    ) -> Result<Option<(bool, String)>, RunsError> {
        self.with(|tx| {
            tx.row(
                "SELECT approved, by FROM approvals WHERE run = ?1 AND environment = ?2",
                params![id, environment],
            )?
            .map(|r| Ok((r.bool(0)?, r.text(1)?)))
            .transpose()
        })
    }

    /// Queues a run of `repo` at `commit` (stages recorded when a worker reads its
    /// pipeline). Older runs of the same repository and branch still queued are
    /// cancelled as superseded, in the same transaction. Returns the new run and
    /// the superseded ones.
    pub fn enqueue(
        &self,
        app: &str,
        repo: &str,
        trigger: &str,
        commit: &Commit,
    ) -> Result<(i64, Vec<i64>), RunsError> {
        let (id, older) = self.with(|tx| {
            let now = now_ms();
            let id = tx
                .row(
                    "INSERT INTO runs (app, trigger, sha, branch, author, message, dirty, owner, status, created, repo)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, 'queued', ?8, ?9) RETURNING id",
                    params![
                        app,
                        trigger,
                        &commit.sha,
                        &commit.branch,
                        &commit.author,
                        &commit.message,
                        i64::from(commit.dirty),
                        now,
                        repo
                    ],
                )?
                .ok_or(DbError::Type(0))?
                .int(0)?;
            let older = tx
                .query(
                    "SELECT id FROM runs WHERE status = 'queued' AND repo = ?1
                     AND branch IS NOT DISTINCT FROM ?2 AND id < ?3",
                    params![repo, &commit.branch, id],
                )?
                .iter()
                .map(|r| r.int(0))
                .collect::<Result<Vec<i64>, _>>()?;
            for old in &older {
                tx.execute(
                    "UPDATE runs SET status = 'cancelled', error = ?2, finished = ?3 WHERE id = ?1",
                    params![*old, format!("superseded by run #{id}"), now],
                )?;
                tx.execute(
                    "UPDATE stages SET status = 'skipped', finished = ?2 WHERE run = ?1",
                    params![*old, now],
                )?;
            }
            Ok((id, older))
        })?;
        self.make_logs_dir(id)?;
        Ok((id, older))
    }

    /// Takes the oldest queued run for this process: it becomes `running`, owned
    /// by this process. `None` when the queue is empty. Two workers never take the
    /// same run (SQLite: the write lock; PostgreSQL: `FOR UPDATE SKIP LOCKED`).
    pub fn claim(&self) -> Result<Option<Run>, RunsError> {
        let id = self.with(|tx| {
            let pick = match tx.dialect() {
                Dialect::Sqlite => "SELECT id FROM runs WHERE status = 'queued' ORDER BY id LIMIT 1",
                Dialect::Postgres => {
                    "SELECT id FROM runs WHERE status = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
                }
            };
            let Some(row) = tx.row(pick, params![])? else {
                return Ok(None);
            };
            let id = row.int(0)?;
            tx.execute(
                "UPDATE runs SET status = 'running', owner = ?2, host = ?3, attempts = attempts + 1
                 WHERE id = ?1",
                params![id, i64::from(std::process::id()), &self.host],
            )?;
            Ok(Some(id))
        })?;
        match id {
            Some(id) => self.get(id),
            None => Ok(None),
        }
    }

    /// Records the stages of run `id` from stage `from` on (the stages before it
    /// stay), all pending.
    pub fn set_stages(&self, id: i64, from: i64, stages: &[String]) -> Result<(), RunsError> {
        self.with(|tx| {
            tx.execute(
                "DELETE FROM stages WHERE run = ?1 AND seq >= ?2",
                params![id, from],
            )?;
            insert_stages(tx, id, from, stages)
        })
    }

    /// Asks run `id` to stop: a queued run is cancelled at once; a going one at its
    /// next check (between stages, in a command, at a gate). Returns where the run
    /// stands now.
    pub fn request_cancel(&self, id: i64) -> Result<Status, RunsError> {
        self.with(|tx| {
            let row = tx
                .row("SELECT status FROM runs WHERE id = ?1", params![id])?
                .ok_or(RunsError::NoRun(id))?;
            let status = Status::parse(&row.text(0)?);
            let now = now_ms();
            match status {
                Status::Queued => {
                    tx.execute(
                        "UPDATE runs SET status = 'cancelled', error = 'cancelled', finished = ?2 WHERE id = ?1",
                        params![id, now],
                    )?;
                    tx.execute(
                        "UPDATE stages SET status = 'skipped', finished = ?2 WHERE run = ?1 AND status = 'pending'",
                        params![id, now],
                    )?;
                    Ok(Status::Cancelled)
                }
                s if s.is_final() => Err(RunsError::Approval(format!(
                    "run #{id} has ended ({})",
                    s.as_str()
                ))),
                s => {
                    tx.execute("UPDATE runs SET cancel = 1 WHERE id = ?1", params![id])?;
                    Ok(s)
                }
            }
        })
    }

    /// Whether someone asked run `id` to stop.
    pub fn cancel_requested(&self, id: i64) -> Result<bool, RunsError> {
        self.with(|tx| {
            tx.row("SELECT cancel FROM runs WHERE id = ?1", params![id])?
                .ok_or(RunsError::NoRun(id))?
                .bool(0)
                .map_err(RunsError::from)
        })
    }

    /// Records what run `id`'s stages handed on so far (JSON), so a later worker
    /// can resume it.
    pub fn save_state(&self, id: i64, state: &str) -> Result<(), RunsError> {
        self.with(|tx| {
            tx.execute(
                "UPDATE runs SET state = ?2 WHERE id = ?1",
                params![id, state],
            )?;
            Ok(())
        })
    }

    /// What [`Runs::save_state`] recorded for run `id`.
    pub fn state(&self, id: i64) -> Result<Option<String>, RunsError> {
        self.with(|tx| {
            Ok(tx
                .row("SELECT state FROM runs WHERE id = ?1", params![id])?
                .map(|r| r.opt_text(0))
                .transpose()?
                .flatten())
        })
    }

    /// Puts a failed or cancelled run of the server back in the queue, to go on
    /// from its first stage that did not succeed (a rejected gate asks again).
    pub fn retry(&self, id: i64) -> Result<(), RunsError> {
        self.with(|tx| {
            let row = tx
                .row("SELECT status, repo FROM runs WHERE id = ?1", params![id])?
                .ok_or(RunsError::NoRun(id))?;
            let (status, repo) = (row.text(0)?, row.opt_text(1)?);
            if repo.is_none() {
                return Err(RunsError::Approval(format!(
                    "run #{id} ran a working tree (hoist up): run `hoist up` again"
                )));
            }
            if !matches!(Status::parse(&status), Status::Failed | Status::Cancelled) {
                return Err(RunsError::Approval(format!(
                    "run #{id} is {status}: only a failed or cancelled run can be retried"
                )));
            }
            tx.execute(
                "DELETE FROM approvals WHERE run = ?1 AND approved = 0",
                params![id],
            )?;
            tx.execute(
                "UPDATE stages SET status = 'pending', finished = NULL, started = NULL
                 WHERE run = ?1 AND status != 'succeeded'",
                params![id],
            )?;
            tx.execute(
                "UPDATE runs SET status = 'queued', error = NULL, finished = NULL, cancel = 0, attempts = 0
                 WHERE id = ?1",
                params![id],
            )?;
            Ok(())
        })
    }

    /// The server's side of [`Runs::abandon_dead`]: every run of a repository
    /// going on this host whose worker process is gone goes back to the queue, its
    /// interrupted stage to run again (`why` on it) — unless a worker took it
    /// `max_attempts` times already, when it is marked failed. Returns (requeued,
    /// failed).
    pub fn requeue_dead(
        &self,
        why: &str,
        max_attempts: i64,
    ) -> Result<(Vec<i64>, Vec<i64>), RunsError> {
        let alive = |pid| process_alive(pid);
        let failed = self.abandon_where(
            &format!("{why}; given up after {max_attempts} attempts"),
            &format!("repo IS NOT NULL AND attempts >= {max_attempts}"),
            |pid| !alive(pid),
        )?;
        let requeued = self.with(|tx| {
            let ids = self.dead_runs(tx, "repo IS NOT NULL", &|pid| !alive(pid))?;
            for id in &ids {
                tx.execute(
                    "UPDATE stages SET status = 'pending', message = ?2
                     WHERE run = ?1 AND status IN ('running', 'waiting')",
                    params![*id, why],
                )?;
                tx.execute(
                    "UPDATE runs SET status = 'queued' WHERE id = ?1",
                    params![*id],
                )?;
            }
            Ok(ids)
        })?;
        Ok((requeued, failed))
    }

    /// The commit of the newest run of `repo`'s `branch`, if any.
    pub fn last_sha(&self, repo: &str, branch: &str) -> Result<Option<String>, RunsError> {
        self.with(|tx| {
            Ok(tx
                .row(
                    "SELECT sha FROM runs WHERE repo = ?1 AND branch = ?2 ORDER BY id DESC LIMIT 1",
                    params![repo, branch],
                )?
                .map(|r| r.text(0))
                .transpose()?)
        })
    }

    /// Run ids, newest first, at most `limit`.
    pub fn list(&self, limit: usize) -> Result<Vec<i64>, RunsError> {
        self.with(|tx| {
            Ok(tx
                .query(
                    "SELECT id FROM runs ORDER BY id DESC LIMIT ?1",
                    params![limit as i64],
                )?
                .iter()
                .map(|r| r.int(0))
                .collect::<Result<_, _>>()?)
        })
    }
}

fn insert_stages(tx: &mut Tx<'_>, id: i64, from: i64, stages: &[String]) -> Result<(), RunsError> {
    for (i, name) in stages.iter().enumerate() {
        tx.execute(
            "INSERT INTO stages (run, seq, name, status) VALUES (?1, ?2, ?3, 'pending')",
            params![id, from + i as i64, name],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::testing::TestPostgres;
    use super::*;

    /// Runs `f` on a fresh history in SQLite, then in PostgreSQL.
    fn each_db(f: impl Fn(&Runs)) {
        let dir = tempfile::tempdir().unwrap();
        eprintln!("--- SQLite");
        f(&Runs::open(dir.path()).unwrap());
        let pg = TestPostgres::start();
        let dir = tempfile::tempdir().unwrap();
        eprintln!("--- PostgreSQL");
        let runs = Runs::open_with(dir.path(), Some(&pg.url())).unwrap();
        assert_eq!(runs.dialect(), Dialect::Postgres);
        f(&runs);
    }

    impl Runs {
        fn exec(&self, sql: &str) {
            self.with(|tx| Ok(tx.batch(sql)?)).unwrap();
        }
    }

    fn stages() -> Vec<String> {
        ["source", "test", "build"].map(String::from).to_vec()
    }

    #[test]
    fn a_run_records_its_stages_and_skips_what_it_did_not_reach() {
        each_db(|runs| {
            let commit = Commit {
                sha: "abc".into(),
                branch: Some("main".into()),
                dirty: true,
                ..Commit::default()
            };
            let id = runs
                .create("hello", "hoist up", &commit, &stages())
                .unwrap();
            runs.set_stage(id, 0, Status::Running, None).unwrap();
            runs.set_stage(id, 0, Status::Succeeded, Some("copied 3 files"))
                .unwrap();
            runs.set_stage(id, 1, Status::Running, None).unwrap();
            runs.set_stage(id, 1, Status::Failed, Some("exit status 1"))
                .unwrap();
            runs.finish(id, Status::Failed, Some("test failed"))
                .unwrap();

            let run = runs.get(id).unwrap().unwrap();
            assert_eq!(run.status, Status::Failed);
            assert_eq!(run.commit, commit);
            let got: Vec<_> = run
                .stages
                .iter()
                .map(|s| (s.name.as_str(), s.status))
                .collect();
            assert_eq!(
                got,
                [
                    ("source", Status::Succeeded),
                    ("test", Status::Failed),
                    ("build", Status::Skipped)
                ]
            );
            assert!(run.stages[0].started.is_some() && run.stages[0].finished.is_some());
            assert_eq!(run.stages[1].message.as_deref(), Some("exit status 1"));
            assert!(runs.log_path(id, 1).parent().unwrap().is_dir());
        });
    }

    #[test]
    fn an_approval_gate_takes_one_decision_while_the_run_goes() {
        each_db(|runs| {
            let names = ["source", "deploy:dev", "approval:prod", "deploy:prod"].map(String::from);
            let id = runs
                .create("web", "hoist up", &Commit::default(), &names)
                .unwrap();
            assert_eq!(runs.decision(id, "prod").unwrap(), None);
            let err = runs.decide(id, "dev", true, "ann").unwrap_err().to_string();
            assert_eq!(err, "run #1 has no approval gate before \"dev\"");
            runs.set_stage(id, 2, Status::Waiting, None).unwrap();
            runs.decide(id, "prod", true, "ann").unwrap();
            assert_eq!(
                runs.decision(id, "prod").unwrap(),
                Some((true, "ann".into()))
            );
            let err = runs
                .decide(id, "prod", false, "bob")
                .unwrap_err()
                .to_string();
            assert!(err.contains("decided already"), "{err}");
            runs.finish(id, Status::Succeeded, None).unwrap();
            let err = runs
                .decide(id, "prod", false, "bob")
                .unwrap_err()
                .to_string();
            assert_eq!(err, "run #1 has ended (succeeded)");
            assert!(matches!(
                runs.decide(9, "prod", true, "x"),
                Err(RunsError::NoRun(9))
            ));
        });
    }

    #[test]
    fn runs_left_running_by_a_dead_process_are_marked_failed() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let runs = Runs::open(dir.path()).unwrap();
            let id = runs
                .create("hello", "hoist up", &Commit::default(), &stages())
                .unwrap();
            runs.set_stage(id, 0, Status::Running, None).unwrap();
            id
        };
        let runs = Runs::open(dir.path()).unwrap();
        // This process owns the run: it is alive, so the run stays.
        assert!(runs.abandon_dead("the engine died").unwrap().is_empty());
        assert_eq!(runs.get(id).unwrap().unwrap().status, Status::Running);
        assert_eq!(runs.abandon("the engine died", |_| true).unwrap(), [id]);
        let run = runs.get(id).unwrap().unwrap();
        assert_eq!(run.status, Status::Failed);
        assert_eq!(run.stages[0].status, Status::Failed);
        assert_eq!(run.stages[0].message.as_deref(), Some("the engine died"));
        assert_eq!(run.stages[2].status, Status::Skipped);
        assert!(runs.abandon("again", |_| true).unwrap().is_empty());
        assert_eq!(runs.list(10).unwrap(), [id]);
    }

    fn on(branch: &str, sha: &str) -> Commit {
        Commit {
            sha: sha.into(),
            branch: Some(branch.into()),
            ..Commit::default()
        }
    }

    #[test]
    fn a_newer_push_supersedes_queued_runs_of_its_branch_only() {
        each_db(|runs| {
            let (a, none) = runs
                .enqueue("web", "web", "push", &on("main", "a"))
                .unwrap();
            assert!(none.is_empty());
            let (other, _) = runs.enqueue("web", "web", "push", &on("dev", "x")).unwrap();
            let (b, superseded) = runs
                .enqueue("web", "web", "push", &on("main", "b"))
                .unwrap();
            assert_eq!(superseded, [a]);
            let old = runs.get(a).unwrap().unwrap();
            assert_eq!(old.status, Status::Cancelled);
            assert_eq!(old.error, Some(format!("superseded by run #{b}")));
            assert_eq!(runs.get(other).unwrap().unwrap().status, Status::Queued);
            assert_eq!(runs.last_sha("web", "main").unwrap().as_deref(), Some("b"));
            assert_eq!(runs.last_sha("web", "nope").unwrap(), None);

            // Workers take the oldest queued run first; a claimed run is not superseded.
            let first = runs.claim().unwrap().unwrap();
            assert_eq!((first.id, first.status), (other, Status::Running));
            assert_eq!(first.repo.as_deref(), Some("web"));
            assert_eq!(runs.claim().unwrap().unwrap().id, b);
            assert!(runs.claim().unwrap().is_none());
            let (_, superseded) = runs
                .enqueue("web", "web", "push", &on("main", "c"))
                .unwrap();
            assert!(superseded.is_empty());
            assert_eq!(runs.get(b).unwrap().unwrap().status, Status::Running);
        });
    }

    #[test]
    fn cancel_stops_a_queued_run_at_once_and_flags_a_going_one() {
        each_db(|runs| {
            let (q, _) = runs
                .enqueue("web", "web", "push", &on("main", "a"))
                .unwrap();
            assert_eq!(runs.request_cancel(q).unwrap(), Status::Cancelled);
            assert!(runs.request_cancel(q).is_err(), "it has ended");
            let (r, _) = runs
                .enqueue("web", "web", "push", &on("main", "b"))
                .unwrap();
            runs.claim().unwrap().unwrap();
            assert!(!runs.cancel_requested(r).unwrap());
            assert_eq!(runs.request_cancel(r).unwrap(), Status::Running);
            assert!(runs.cancel_requested(r).unwrap());
            assert!(matches!(runs.request_cancel(99), Err(RunsError::NoRun(99))));
        });
    }

    #[test]
    fn a_retried_run_goes_back_to_the_queue_from_its_failed_stage() {
        each_db(|runs| {
            let (id, _) = runs
                .enqueue("web", "web", "push", &on("main", "a"))
                .unwrap();
            runs.claim().unwrap().unwrap();
            let names = ["source", "test", "approval:prod", "deploy:prod"].map(String::from);
            runs.set_stages(id, 0, &names).unwrap();
            runs.set_stage(id, 0, Status::Succeeded, Some("ok"))
                .unwrap();
            runs.set_stage(id, 1, Status::Succeeded, Some("ok"))
                .unwrap();
            runs.set_stage(id, 2, Status::Waiting, None).unwrap();
            runs.decide(id, "prod", false, "bob").unwrap();
            runs.set_stage(id, 2, Status::Failed, Some("rejected by bob"))
                .unwrap();
            assert!(runs.retry(id).is_err(), "a going run is not retried");
            runs.finish(id, Status::Failed, Some("rejected")).unwrap();
            runs.save_state(id, "{\"tags\":[]}").unwrap();

            runs.retry(id).unwrap();
            let run = runs.get(id).unwrap().unwrap();
            assert_eq!(run.status, Status::Queued);
            assert_eq!(run.error, None);
            let got: Vec<_> = run.stages.iter().map(|s| s.status).collect();
            assert_eq!(
                got,
                [
                    Status::Succeeded,
                    Status::Succeeded,
                    Status::Pending,
                    Status::Pending
                ]
            );
            // The rejection is forgotten: the gate asks again. The state stays.
            assert_eq!(runs.decision(id, "prod").unwrap(), None);
            assert_eq!(runs.state(id).unwrap().as_deref(), Some("{\"tags\":[]}"));

            // A working tree's run is not the server's to retry.
            let up = runs
                .create("web", "hoist up", &Commit::default(), &names)
                .unwrap();
            runs.finish(up, Status::Failed, Some("x")).unwrap();
            let err = runs.retry(up).unwrap_err().to_string();
            assert!(err.contains("hoist up"), "{err}");
        });
    }

    #[test]
    fn runs_of_a_dead_server_go_back_to_the_queue_until_they_used_their_attempts() {
        each_db(|runs| {
            let (id, _) = runs
                .enqueue("web", "web", "push", &on("main", "a"))
                .unwrap();
            runs.claim().unwrap().unwrap();
            runs.set_stages(id, 0, &stages()).unwrap();
            runs.set_stage(id, 0, Status::Succeeded, Some("ok"))
                .unwrap();
            runs.set_stage(id, 1, Status::Running, None).unwrap();
            // Its worker is this live process: nothing to do.
            assert_eq!(runs.requeue_dead("gone", 3).unwrap(), (vec![], vec![]));
            // A worker that died: mark the owner as a pid that cannot exist.
            let dead = |runs: &Runs| {
                runs.exec(&format!(
                    "UPDATE runs SET owner = 2147483600 WHERE id = {id}"
                ));
            };
            dead(runs);
            // `hoist up`'s cleanup leaves the server's runs alone.
            assert!(runs.abandon("x", |_| true).unwrap().is_empty());
            assert_eq!(runs.requeue_dead("gone", 3).unwrap(), (vec![id], vec![]));
            let run = runs.get(id).unwrap().unwrap();
            assert_eq!(run.status, Status::Queued);
            assert_eq!(run.stages[1].status, Status::Pending);
            assert_eq!(run.stages[1].message.as_deref(), Some("gone"));
            assert_eq!(run.stages[0].status, Status::Succeeded);
            // Taken twice more and died each time: given up after the third.
            runs.claim().unwrap().unwrap();
            dead(runs);
            assert_eq!(runs.requeue_dead("gone", 3).unwrap(), (vec![id], vec![]));
            runs.claim().unwrap().unwrap();
            dead(runs);
            assert_eq!(runs.requeue_dead("gone", 3).unwrap(), (vec![], vec![id]));
            let run = runs.get(id).unwrap().unwrap();
            assert_eq!(run.status, Status::Failed);
            assert!(run.error.unwrap().contains("3 attempts"));
        });
    }

    #[test]
    fn an_old_database_is_migrated_in_place() {
        let dir = tempfile::tempdir().unwrap();
        {
            // The first schema, as the previous release left it.
            let mut conn = rusqlite::Connection::open(dir.path().join("runs.db")).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            let tx = conn.transaction().unwrap();
            tx.execute(
                "INSERT INTO runs (app, trigger, sha, dirty, owner, status, created)
                 VALUES ('web', 'hoist up', 'abc', 0, 1, 'succeeded', 5)",
                [],
            )
            .unwrap();
            tx.commit().unwrap();
        }
        let runs = Runs::open(dir.path()).unwrap();
        let run = runs.get(1).unwrap().unwrap();
        assert_eq!((run.app.as_str(), run.repo), ("web", None));
        let version = runs
            .with(|tx| Ok(tx.row("PRAGMA user_version", params![])?.unwrap().int(0)?))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        // Opening again applies nothing twice.
        drop(runs);
        Runs::open(dir.path()).unwrap();
    }
}
