//! The run queue as the server drives it: which repository a push is for, its
//! mirror, queueing runs (from webhooks, the API and the poller), and the workers
//! that claim queued runs and hand them to the engine.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use hoist_pipeline::runs::{Commit, Run, Runs, RunsError, Status};
use hoist_pipeline::source::Mirror;
use hoist_pipeline::{Engine, Progress};

use crate::webhook::Push;
use crate::{Config, Repo};

/// What became of a push.
#[derive(Debug, PartialEq, Eq)]
pub enum Queued {
    /// A run was queued; older queued runs of its branch were superseded.
    Run {
        /// The new run.
        id: i64,
        /// The runs it superseded.
        superseded: Vec<i64>,
    },
    /// Nothing to build, and why (a deleted branch, a tag, a branch not built).
    Ignored(String),
}

/// The server's queue: its configuration, the engine, and a bell for idle workers.
pub struct Queue {
    /// How the server runs.
    pub config: Config,
    /// The pipeline engine.
    pub engine: Engine,
    bell: (Mutex<u64>, Condvar),
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("config", &self.config)
            .finish()
    }
}

impl Queue {
    /// The queue of `engine`'s run history, for the repositories of `config`.
    pub fn new(config: Config, engine: Engine) -> Queue {
        Queue {
            config,
            engine,
            bell: (Mutex::new(0), Condvar::new()),
        }
    }

    /// The newest `limit` runs, those of `status` and `app` only when given.
    pub fn runs_matching(
        &self,
        limit: usize,
        status: Option<&str>,
        app: Option<&str>,
    ) -> Result<Vec<Run>, RunsError> {
        let mut out = Vec::new();
        for id in self.runs().list(limit)? {
            let Some(run) = self.runs().get(id)? else {
                continue;
            };
            if status.is_some_and(|s| s != run.status.as_str()) || app.is_some_and(|a| a != run.app)
            {
                continue;
            }
            out.push(run);
        }
        Ok(out)
    }

    /// The run history.
    pub fn runs(&self) -> &Runs {
        self.engine.runs()
    }

    /// The repository named `name`.
    pub fn repo(&self, name: &str) -> Option<&Repo> {
        self.config.repos.iter().find(|r| r.name == name)
    }

    /// The repository a push is for: by name (`hello`, `acme/hello`) or clone URL.
    pub fn repo_of(&self, push: &Push) -> Option<&Repo> {
        self.config
            .repos
            .iter()
            .find(|r| push.names.contains(&r.name) || push.urls.contains(&r.url))
    }

    /// The mirror of `repo` under the server's directory.
    pub fn mirror(&self, repo: &Repo) -> Mirror {
        let dir = self
            .config
            .home
            .join("server")
            .join("repos")
            .join(format!("{}.git", repo.name));
        Mirror::new(&dir, &repo.url)
    }

    /// Queues a run of `repo` at `commit`, and wakes a worker.
    pub fn enqueue(&self, repo: &Repo, commit: &Commit, trigger: &str) -> Result<Queued, String> {
        let (id, superseded) = self
            .runs()
            .enqueue(&repo.name, &repo.name, trigger, commit)
            .map_err(|e| e.to_string())?;
        for old in &superseded {
            tracing::info!("run #{old} was superseded by run #{id} before it started");
        }
        tracing::info!(
            "run #{id} of {} queued: {} {} ({trigger})",
            repo.name,
            commit.branch.as_deref().unwrap_or("-"),
            commit.sha
        );
        self.wake();
        Ok(Queued::Run { id, superseded })
    }

    /// Queues a run for a webhook's push. `Err` is for a repository the server
    /// does not build.
    pub fn push(&self, push: &Push, trigger: &str) -> Result<Queued, String> {
        let repo = self.repo_of(push).ok_or_else(|| {
            format!(
                "no repository of this server is {} (start it with --repo NAME=URL)",
                push.names.join(" or ")
            )
        })?;
        let Some(branch) = &push.branch else {
            return Ok(Queued::Ignored("not a branch: nothing to build".into()));
        };
        if push.deleted {
            return Ok(Queued::Ignored(format!("branch {branch} was deleted")));
        }
        if !repo.builds(branch) {
            return Ok(Queued::Ignored(format!(
                "{} builds {}, not {branch}",
                repo.name,
                repo.branches.join(", ")
            )));
        }
        let commit = Commit {
            sha: push.after.clone(),
            branch: Some(branch.clone()),
            author: push.author.clone(),
            message: push.message.clone(),
            dirty: false,
        };
        self.enqueue(repo, &commit, trigger)
    }

    /// Queues a run of `repo`'s `branch` at `sha`, or at the branch's head as the
    /// remote has it now (fetching first; blocking).
    pub fn trigger(
        &self,
        repo: &Repo,
        branch: &str,
        sha: Option<&str>,
        by: &str,
    ) -> Result<Queued, String> {
        let mirror = self.mirror(repo);
        let sha = match sha {
            Some(s) => s.to_owned(),
            None => mirror
                .heads()
                .map_err(|e| e.to_string())?
                .into_iter()
                .find(|(b, _)| b == branch)
                .map(|(_, s)| s)
                .ok_or_else(|| format!("{} has no branch {branch:?}", repo.url))?,
        };
        let commit = mirror
            .commit(&sha, Some(branch))
            .map_err(|e| e.to_string())?;
        self.enqueue(repo, &commit, by)
    }

    /// Rings the bell: an idle worker looks at the queue now.
    pub fn wake(&self) {
        let (lock, bell) = &self.bell;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        bell.notify_all();
    }

    fn wait(&self, most: Duration) {
        let (lock, bell) = &self.bell;
        let seen = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let start = *seen;
        let _ = bell
            .wait_timeout_while(seen, most, |n| *n == start)
            .unwrap_or_else(PoisonError::into_inner);
    }

    /// A worker: claims queued runs one at a time and runs them, until `stop`.
    /// Runs queued by another process (`hoist runs retry`) are seen within a second.
    pub fn work(&self, stop: &AtomicBool) {
        while !stop.load(Ordering::SeqCst) {
            match self.runs().claim() {
                Ok(Some(run)) => self.run(run),
                Ok(None) => self.wait(Duration::from_secs(1)),
                Err(e) => {
                    tracing::error!("taking a run from the queue: {e}");
                    self.wait(Duration::from_secs(1));
                }
            }
        }
    }

    fn run(&self, run: Run) {
        let id = run.id;
        let repo = run.repo.as_deref().and_then(|r| self.repo(r));
        let Some(repo) = repo else {
            let why = format!(
                "repository {:?} is not one this server builds (--repo)",
                run.repo.as_deref().unwrap_or_default()
            );
            tracing::error!("run #{id}: {why}");
            if let Err(e) = self.runs().finish(id, Status::Failed, Some(&why)) {
                tracing::error!("run #{id}: {e}");
            }
            return;
        };
        let mirror = self.mirror(repo);
        let observer = move |p: &Progress<'_>| {
            if let Progress::Stage {
                name,
                status,
                message,
            } = p
            {
                tracing::info!(
                    "run #{id}: {name} {}{}",
                    status.as_str(),
                    message.map(|m| format!(": {m}")).unwrap_or_default()
                );
            }
        };
        match self.engine.run_queued(&run, &mirror, &observer) {
            Ok(r) => tracing::info!("run #{id} succeeded: {}", r.image),
            Err(e) => tracing::warn!("{e}"),
        }
    }

    /// The poller: every `every`, asks each remote for its branches and queues a
    /// run for each head no run has built yet, until `stop`.
    pub fn poll(&self, every: Duration, stop: &AtomicBool) {
        while !stop.load(Ordering::SeqCst) {
            for repo in &self.config.repos {
                if let Err(e) = self.poll_repo(repo) {
                    tracing::warn!("polling {}: {e}", repo.url);
                }
            }
            let end = std::time::Instant::now() + every;
            while !stop.load(Ordering::SeqCst) && std::time::Instant::now() < end {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }

    fn poll_repo(&self, repo: &Repo) -> Result<(), String> {
        let mirror = self.mirror(repo);
        for (branch, sha) in mirror.heads().map_err(|e| e.to_string())? {
            if !repo.builds(&branch) {
                continue;
            }
            let last = self
                .runs()
                .last_sha(&repo.name, &branch)
                .map_err(|e| e.to_string())?;
            if last.as_deref() == Some(sha.as_str()) {
                continue;
            }
            let commit = mirror
                .commit(&sha, Some(&branch))
                .map_err(|e| e.to_string())?;
            self.enqueue(repo, &commit, "poll")?;
        }
        Ok(())
    }
}
