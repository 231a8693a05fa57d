//! The run history: runs and their stages in SQLite (`<home>/pipeline/runs.db`,
//! WAL, synchronous FULL), every change one transaction, and each stage's log in a
//! file of its own under the run's directory.
//!
//! A run is created with all its stages `pending`, so the record always says how
//! far a run got: a process killed mid-stage leaves that stage `running`, and
//! [`Runs::abandon_dead`] marks such runs failed (the run records the process that
//! owns it) when the next engine starts.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

/// A run-history error.
#[derive(Debug, thiserror::Error)]
pub enum RunsError {
    /// SQLite failed.
    #[error("{path}: {source}")]
    Sqlite {
        /// The database.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
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
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    /// Run number.
    pub id: i64,
    /// The app of hoist.yml.
    pub app: String,
    /// What started it (`hoist up`, `webhook`, ...).
    pub trigger: String,
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
#[derive(Clone, Debug, Serialize)]
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
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for Runs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runs").field("path", &self.path).finish()
    }
}

const SCHEMA: &str = r#"
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
"#;

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

impl Runs {
    /// Opens (creating) the run history under `dir` (`<home>/pipeline`).
    pub fn open(dir: &Path) -> Result<Runs, RunsError> {
        std::fs::create_dir_all(dir).map_err(|source| RunsError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join("runs.db");
        let err = |source| RunsError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(Runs {
            dir: dir.to_owned(),
            path,
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sql<T>(&self, r: rusqlite::Result<T>) -> Result<T, RunsError> {
        r.map_err(|source| RunsError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }

    /// The directory of run `id`: its workspace (`src`), logs and artifacts.
    pub fn run_dir(&self, id: i64) -> PathBuf {
        self.dir.join("runs").join(id.to_string())
    }

    /// The log file of stage `seq` of run `id`.
    pub fn log_path(&self, id: i64, seq: i64) -> PathBuf {
        self.run_dir(id).join("logs").join(format!("{seq}.log"))
    }

    /// Records a new run with `stages`, all pending, in one transaction.
    pub fn create(
        &self,
        app: &str,
        trigger: &str,
        commit: &Commit,
        stages: &[String],
    ) -> Result<i64, RunsError> {
        let mut conn = self.lock();
        let tx = self.sql(conn.transaction())?;
        self.sql(tx.execute(
            "INSERT INTO runs (app, trigger, sha, branch, author, message, dirty, owner, status, created)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'running', ?9)",
            params![
                app,
                trigger,
                commit.sha,
                commit.branch,
                commit.author,
                commit.message,
                commit.dirty,
                std::process::id(),
                now_ms()
            ],
        ))?;
        let id = tx.last_insert_rowid();
        for (seq, name) in stages.iter().enumerate() {
            self.sql(tx.execute(
                "INSERT INTO stages (run, seq, name, status) VALUES (?1, ?2, ?3, 'pending')",
                params![id, seq as i64, name],
            ))?;
        }
        self.sql(tx.commit())?;
        drop(conn);
        let logs = self.run_dir(id).join("logs");
        std::fs::create_dir_all(&logs).map_err(|source| RunsError::Io { path: logs, source })?;
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
        let now = now_ms();
        let conn = self.lock();
        let changed = self.sql(conn.execute(
            "UPDATE stages SET status = ?3, message = COALESCE(?4, message),
                 started = CASE WHEN ?3 = 'running' AND started IS NULL THEN ?5 ELSE started END,
                 finished = CASE WHEN ?6 THEN ?5 ELSE NULL END
             WHERE run = ?1 AND seq = ?2",
            params![id, seq, status.as_str(), message, now, status.is_final()],
        ))?;
        if changed == 0 {
            return Err(RunsError::NoRun(id));
        }
        Ok(())
    }

    /// Records the image a run built.
    pub fn set_image(&self, id: i64, image: &str) -> Result<(), RunsError> {
        let conn = self.lock();
        self.sql(conn.execute(
            "UPDATE runs SET image = ?2 WHERE id = ?1",
            params![id, image],
        ))?;
        Ok(())
    }

    /// Ends run `id` with `status`: stages not reached become skipped, in the same
    /// transaction.
    pub fn finish(&self, id: i64, status: Status, error: Option<&str>) -> Result<(), RunsError> {
        let mut conn = self.lock();
        let tx = self.sql(conn.transaction())?;
        let now = now_ms();
        self.sql(tx.execute(
            "UPDATE stages SET status = 'skipped', finished = ?2
             WHERE run = ?1 AND status IN ('pending', 'waiting')",
            params![id, now],
        ))?;
        self.sql(tx.execute(
            "UPDATE runs SET status = ?2, error = ?3, finished = ?4 WHERE id = ?1",
            params![id, status.as_str(), error, now],
        ))?;
        self.sql(tx.commit())
    }

    /// Marks every run still `running` whose owning process is gone failed, with
    /// its running stage: `why` says so. Returns their ids.
    pub fn abandon_dead(&self, why: &str) -> Result<Vec<i64>, RunsError> {
        self.abandon(why, |pid| !process_alive(pid))
    }

    fn abandon(&self, why: &str, dead: impl Fn(i64) -> bool) -> Result<Vec<i64>, RunsError> {
        let mut conn = self.lock();
        let tx = self.sql(conn.transaction())?;
        let ids: Vec<i64> = {
            let mut stmt =
                self.sql(tx.prepare("SELECT id, owner FROM runs WHERE status = 'running'"))?;
            let rows = self.sql(stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))))?;
            let rows: Vec<(i64, i64)> = self.sql(rows.collect::<rusqlite::Result<_>>())?;
            rows.into_iter()
                .filter(|(_, owner)| dead(*owner))
                .map(|(id, _)| id)
                .collect()
        };
        let now = now_ms();
        for id in &ids {
            self.sql(tx.execute(
                "UPDATE stages SET status = 'failed', message = ?2, finished = ?3
                 WHERE run = ?1 AND status = 'running'",
                params![id, why, now],
            ))?;
            self.sql(tx.execute(
                "UPDATE stages SET status = 'skipped', finished = ?2
                 WHERE run = ?1 AND status IN ('pending', 'waiting')",
                params![id, now],
            ))?;
            self.sql(tx.execute(
                "UPDATE runs SET status = 'failed', error = ?2, finished = ?3 WHERE id = ?1",
                params![id, why, now],
            ))?;
        }
        self.sql(tx.commit())?;
        Ok(ids)
    }

    /// Run `id` with its stages.
    pub fn get(&self, id: i64) -> Result<Option<Run>, RunsError> {
        let conn = self.lock();
        let run = self.sql(
            conn.query_row(
                "SELECT id, app, trigger, sha, branch, author, message, dirty, status, image, error, created, finished
                 FROM runs WHERE id = ?1",
                [id],
                |r| {
                    Ok(Run {
                        id: r.get(0)?,
                        app: r.get(1)?,
                        trigger: r.get(2)?,
                        commit: Commit {
                            sha: r.get(3)?,
                            branch: r.get(4)?,
                            author: r.get(5)?,
                            message: r.get(6)?,
                            dirty: r.get(7)?,
                        },
                        status: Status::parse(&r.get::<_, String>(8)?),
                        image: r.get(9)?,
                        error: r.get(10)?,
                        created: r.get(11)?,
                        finished: r.get(12)?,
                        stages: Vec::new(),
                    })
                },
            )
            .optional(),
        )?;
        let Some(mut run) = run else {
            return Ok(None);
        };
        let mut stmt = self.sql(conn.prepare(
            "SELECT seq, name, status, message, started, finished FROM stages WHERE run = ?1 ORDER BY seq",
        ))?;
        let rows = self.sql(stmt.query_map([id], |r| {
            Ok(Stage {
                seq: r.get(0)?,
                name: r.get(1)?,
                status: Status::parse(&r.get::<_, String>(2)?),
                message: r.get(3)?,
                started: r.get(4)?,
                finished: r.get(5)?,
            })
        }))?;
        run.stages = self.sql(rows.collect::<rusqlite::Result<_>>())?;
        Ok(Some(run))
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
        let mut conn = self.lock();
        let tx = self.sql(conn.transaction())?;
        let run: Option<String> = self.sql(
            tx.query_row("SELECT status FROM runs WHERE id = ?1", [id], |r| r.get(0))
                .optional(),
        )?;
        let Some(run_status) = run else {
            return Err(RunsError::NoRun(id));
        };
        if Status::parse(&run_status).is_final() {
            return Err(RunsError::Approval(format!(
                "run #{id} has ended ({run_status})"
            )));
        }
        let stage: Option<String> = self.sql(
            tx.query_row(
                "SELECT status FROM stages WHERE run = ?1 AND name = ?2",
                params![id, gate],
                |r| r.get(0),
            )
            .optional(),
        )?;
        match stage.as_deref().map(Status::parse) {
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
        let done = self.sql(tx.execute(
            "INSERT OR IGNORE INTO approvals (run, environment, approved, by, time) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, environment, approved, by, now_ms()],
        ))?;
        if done == 0 {
            return Err(RunsError::Approval(format!(
                "the approval of {environment:?} in run #{id} was decided already"
            )));
        }
        self.sql(tx.commit())
    }

    /// The decision on run `id`'s gate before `environment`: approved or not, and by whom.
    pub fn decision(
        &self,
        id: i64,
        environment: &str,
    ) -> Result<Option<(bool, String)>, RunsError> {
        let conn = self.lock();
        self.sql(
            conn.query_row(
                "SELECT approved, by FROM approvals WHERE run = ?1 AND environment = ?2",
                params![id, environment],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional(),
        )
    }

    /// Run ids, newest first, at most `limit`.
    pub fn list(&self, limit: usize) -> Result<Vec<i64>, RunsError> {
        let conn = self.lock();
        let mut stmt = self.sql(conn.prepare("SELECT id FROM runs ORDER BY id DESC LIMIT ?1"))?;
        let rows = self.sql(stmt.query_map([limit as i64], |r| r.get(0)))?;
        self.sql(rows.collect::<rusqlite::Result<_>>())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn stages() -> Vec<String> {
        ["source", "test", "build"].map(String::from).to_vec()
    }

    #[test]
    fn a_run_records_its_stages_and_skips_what_it_did_not_reach() {
        let dir = tempfile::tempdir().unwrap();
        let runs = Runs::open(dir.path()).unwrap();
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
    }

    #[test]
    fn an_approval_gate_takes_one_decision_while_the_run_goes() {
        let dir = tempfile::tempdir().unwrap();
        let runs = Runs::open(dir.path()).unwrap();
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
}
