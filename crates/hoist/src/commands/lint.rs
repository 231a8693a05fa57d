//! `hoist lint`: parse a Dockerfile and report every problem.

use anyhow::Result;

use crate::cli::LintArgs;
use crate::settings::Settings;

/// Run `hoist lint`.
pub fn run(_settings: &Settings, _args: LintArgs) -> Result<()> {
    anyhow::bail!("hoist lint needs the Dockerfile parser, which is not wired in yet")
}
