//! `hoist server`: the long-running side of the pipeline. It owns the REST API
//! (runs, stages, logs, approvals, environments, deployments, images, scan
//! reports; its OpenAPI document at `/api/v1/openapi.json`), API tokens, the push
//! webhooks of GitHub and GitLab, the polling of git remotes, and the workers that
//! take runs from the queue and hand them to the pipeline engine.
//!
//! The run queue and history are hoist-pipeline's (`runs.db`); the runs are the
//! engine's ([`hoist_pipeline::Engine::run_queued`]); deployments are the deployment
//! daemon's. This crate must not run a stage itself, nor write the deployment
//! state: it queues, it serves what is recorded, and it relays decisions
//! (approve, reject, cancel, retry) to the run history, where the engine reads them.
//!
//! - [`tokens`]: API tokens, stored hashed.
//! - [`webhook`]: signature checks and push payloads.
//! - [`queue`]: repositories, mirrors, queueing pushes, workers and the poller.
//! - [`api`]: the HTTP routes.

pub mod api;
pub mod dashboard;
pub mod queue;
pub mod tokens;
mod views;
pub mod webhook;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hoist_pipeline::Engine;

/// A repository the server builds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repo {
    /// Its name: runs are recorded under it, and a webhook's repository name
    /// (`hello` or `acme/hello`) must match it or the URL.
    pub name: String,
    /// What `git clone` takes: the only place its code is fetched from (never a
    /// URL a webhook names).
    pub url: String,
    /// The branches that start runs; empty: every branch.
    pub branches: Vec<String>,
}

impl Repo {
    /// Parses `NAME=URL` or `NAME=URL#branch1,branch2`.
    pub fn parse(s: &str) -> Result<Repo, String> {
        let (name, rest) = s
            .split_once('=')
            .ok_or_else(|| format!("--repo {s:?}: expected NAME=URL[#BRANCH,...]"))?;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(format!(
                "--repo {s:?}: the name {name:?} may hold letters, digits and - _ ."
            ));
        }
        let (url, branches) = match rest.rsplit_once('#') {
            Some((u, b)) => (
                u,
                b.split(',')
                    .map(str::trim)
                    .filter(|b| !b.is_empty())
                    .map(String::from)
                    .collect(),
            ),
            None => (rest, Vec::new()),
        };
        if url.is_empty() || url.starts_with('-') {
            return Err(format!("--repo {s:?}: no URL"));
        }
        Ok(Repo {
            name: name.to_owned(),
            url: url.to_owned(),
            branches,
        })
    }

    /// Whether a push to `branch` starts a run.
    pub fn builds(&self, branch: &str) -> bool {
        self.branches.is_empty() || self.branches.iter().any(|b| b == branch)
    }
}

/// How the server runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// hoist's home: the run history, mirrors, tokens.
    pub home: PathBuf,
    /// Where the API listens.
    pub listen: SocketAddr,
    /// The repositories it builds.
    pub repos: Vec<Repo>,
    /// How often to ask each remote for its branches; `None`: webhooks only.
    pub poll: Option<Duration>,
    /// Runs that go at once.
    pub jobs: usize,
    /// The webhooks' shared secret; `None`: webhooks are refused.
    pub webhook_secret: Option<Vec<u8>>,
}

/// A server problem.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Binding, serving or the runtime failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The run history.
    #[error(transparent)]
    Runs(#[from] hoist_pipeline::runs::RunsError),
    /// Another server serves this home.
    #[error("{0}")]
    Busy(String),
}

/// How many times a worker takes up a run the server was killed in before it is
/// marked failed instead (a run that kills its server must not do so forever).
pub const MAX_ATTEMPTS: i64 = 3;

/// Serves until SIGINT or SIGTERM. `ready` is told the address once the API
/// listens (it is also written to `<home>/server/serve.addr`).
pub fn serve(
    config: Config,
    engine: Engine,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServerError> {
    let io = |what: &str| {
        let what = what.to_owned();
        move |source| ServerError::Io { what, source }
    };
    let dir = config.home.join("server");
    std::fs::create_dir_all(&dir).map_err(io("making the server's directory"))?;
    let lock_path = dir.join("serve.lock");
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io("opening serve.lock"))?;
    rustix_lock(&lock).map_err(|_| {
        ServerError::Busy(format!(
            "another hoist server serves {} (it holds {})",
            config.home.display(),
            lock_path.display()
        ))
    })?;

    let (requeued, failed) = engine.runs().requeue_dead(
        "the server stopped during this stage; it runs again",
        MAX_ATTEMPTS,
    )?;
    for id in requeued {
        tracing::warn!("run #{id} was going when the server stopped: queued to resume");
    }
    for id in failed {
        tracing::warn!("run #{id} stopped its server {MAX_ATTEMPTS} times: marked failed");
    }

    let queue = Arc::new(queue::Queue::new(config.clone(), engine));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for n in 0..config.jobs.max(1) {
        let (q, stop) = (queue.clone(), stop.clone());
        threads.push(
            std::thread::Builder::new()
                .name(format!("hoist-worker-{n}"))
                .spawn(move || q.work(&stop))
                .map_err(io("starting a worker"))?,
        );
    }
    if let Some(every) = config.poll {
        let (q, stop) = (queue.clone(), stop.clone());
        threads.push(
            std::thread::Builder::new()
                .name("hoist-poller".into())
                .spawn(move || q.poll(every, &stop))
                .map_err(io("starting the poller"))?,
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(io("starting the runtime"))?;
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(io(&format!("binding {}", config.listen)))?;
        let addr = listener.local_addr().map_err(io("reading the address"))?;
        hoist_oci::write_atomic(&dir.join("serve.addr"), |f| {
            std::io::Write::write_all(f, format!("{addr}\n").as_bytes())
        })
        .map_err(|e| io("writing serve.addr")(std::io::Error::other(e.to_string())))?;
        ready(addr);
        let app = api::router(queue.clone()).merge(dashboard::router(queue.clone()));
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown())
            .await
            .map_err(io("serving"))
    });
    stop.store(true, Ordering::SeqCst);
    queue.wake();
    let _ = std::fs::remove_file(dir.join("serve.addr"));
    drop(lock);
    // Workers in the middle of a run are not waited for: the run stays `running`
    // under this process, and the next server resumes it.
    served
}

fn rustix_lock(file: &std::fs::File) -> std::io::Result<()> {
    rustix::fs::flock(file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
        .map_err(std::io::Error::from)
}

async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn repos_are_name_equals_url_with_optional_branches() {
        let r = Repo::parse("hello=/srv/git/hello.git").unwrap();
        assert_eq!(r.url, "/srv/git/hello.git");
        assert!(r.builds("anything"));
        let r = Repo::parse("web=https://example.com/acme/web.git#main, release").unwrap();
        assert_eq!(r.branches, ["main", "release"]);
        assert!(r.builds("release") && !r.builds("feature"));
        for bad in ["hello", "=x", "a b=x", "hello=", "hello=--upload-pack=evil"] {
            assert!(Repo::parse(bad).is_err(), "{bad}");
        }
    }
}
