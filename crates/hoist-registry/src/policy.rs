//! Per-repository policies.

use serde::Deserialize;

/// One `[[repository]]` entry of the configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryPolicy {
    /// Repository names this entry applies to (`*` matches within a path component,
    /// `**` across components).
    pub pattern: String,
}
