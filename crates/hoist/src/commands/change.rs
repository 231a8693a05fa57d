//! `--change` instructions (`docker import --change`, `docker commit --change`):
//! Dockerfile instructions applied to an image's container config.

use anyhow::Result;
use hoist_oci::config::ContainerConfig;

/// Apply each `--change` instruction to `config`, in order.
pub fn apply_all(changes: &[String], config: &mut ContainerConfig) -> Result<()> {
    for c in changes {
        apply(c, config)?;
    }
    Ok(())
}

fn apply(_change: &str, _config: &mut ContainerConfig) -> Result<()> {
    anyhow::bail!("--change is not available yet")
}
