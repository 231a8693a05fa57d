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
}

impl Settings {
    /// Resolve from the global flags (which already folded in `HOIST_HOME`).
    pub fn resolve(global: &GlobalArgs) -> Result<Settings> {
        let home = match &global.home {
            Some(h) => h.clone(),
            None => default_home()?,
        };
        Ok(Settings {
            home,
            json: global.json,
        })
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
