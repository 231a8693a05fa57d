//! Resolved settings: flags, environment and defaults merged once, here, so command
//! handlers never read the environment themselves.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::cli::GlobalArgs;

/// Settings every command needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// hoist's data directory.
    pub home: PathBuf,
    /// JSON output.
    pub json: bool,
    /// A `hoist server` to ask instead of this home's run history.
    pub server: Option<Remote>,
    /// The PostgreSQL database of the run history (else SQLite under the home).
    pub database: Option<String>,
}

/// A `hoist server` and its token.
#[derive(Clone)]
pub struct Remote {
    /// `http://host:port`, no trailing slash.
    pub url: String,
    /// The API token.
    pub token: String,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").field("url", &self.url).finish()
    }
}

impl Settings {
    /// Resolve from the global flags (which already folded in `HOIST_HOME`).
    pub fn resolve(global: &GlobalArgs) -> Result<Settings> {
        let home = match &global.home {
            Some(h) => h.clone(),
            None => default_home()?,
        };
        let server = match (&global.server, &global.token) {
            (None, _) => None,
            (Some(url), Some(token)) => Some(Remote {
                url: url.trim_end_matches('/').to_owned(),
                token: token.clone(),
            }),
            (Some(url), None) => {
                bail!("--server {url}: give its API token with --token or HOIST_TOKEN")
            }
        };
        Ok(Settings {
            home,
            json: global.json,
            server,
            database: global.database.clone(),
        })
    }
}

impl Settings {
    /// The image store, with the build cache's layers kept through every GC.
    pub fn store(&self) -> Result<hoist_oci::Store> {
        let cache = hoist_builder::cache::StepCache::open(&self.home.join("build-cache"))?;
        let roots: hoist_oci::store::GcRoots =
            std::sync::Arc::new(move || cache.live().map(|(blobs, _)| blobs));
        Ok(hoist_oci::Store::open(&self.home)?.with_gc_roots(roots))
    }

    /// The container runtime: the embedded one, or an OCI runtime binary named by
    /// `HOIST_RUNTIME` (`runc`, or a path).
    pub fn runtime(&self) -> Result<hoist_runtime::Runtime> {
        self.runtime_at(self.home.join("containers"))
    }

    /// The runtime for services' tasks, which keep their state apart from build
    /// and `run` containers so the controller owns everything in it.
    pub fn task_runtime(&self) -> Result<hoist_runtime::Runtime> {
        self.runtime_at(hoist_deploy::controller::tasks_dir(&self.home))
    }

    /// The run history: SQLite under the home, or the `--database` PostgreSQL.
    pub fn runs(&self) -> Result<hoist_pipeline::runs::Runs> {
        Ok(hoist_pipeline::runs::Runs::open_with(
            &self.home.join("pipeline"),
            self.database.as_deref(),
        )?)
    }

    /// The runtime of the pipeline's test containers (test steps with `image:`).
    pub fn pipeline_runtime(&self) -> Result<hoist_runtime::Runtime> {
        self.runtime_at(self.home.join("pipeline").join("containers"))
    }

    /// The proxy's configuration file, written by the controller.
    pub fn proxy_config(&self) -> PathBuf {
        self.home.join("proxy").join("config.json")
    }

    fn runtime_at(&self, state_dir: PathBuf) -> Result<hoist_runtime::Runtime> {
        let backend = match std::env::var("HOIST_RUNTIME")
            .ok()
            .filter(|v| !v.is_empty())
        {
            None => hoist_runtime::Backend::Embedded,
            Some(v) if v == "embedded" => hoist_runtime::Backend::Embedded,
            Some(v) => hoist_runtime::Backend::Oci(PathBuf::from(v)),
        };
        let program = std::env::current_exe()
            .map_err(|e| anyhow::anyhow!("cannot find the hoist binary to run containers: {e}"))?;
        Ok(hoist_runtime::Runtime::new(hoist_runtime::RuntimeConfig {
            state_dir,
            backend,
            helper: hoist_runtime::HelperCommand {
                program,
                args: vec!["__container".into()],
            },
        })?)
    }
}

/// `$XDG_DATA_HOME/hoist`, else `$HOME/.local/share/hoist`.
fn default_home() -> Result<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        let p = PathBuf::from(x);
        if p.is_absolute() {
            return Ok(p.join("hoist"));
        }
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".local/share/hoist")),
        None => bail!("cannot find a data directory: set HOIST_HOME, XDG_DATA_HOME or HOME"),
    }
}
