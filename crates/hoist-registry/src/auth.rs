//! Authentication and authorization for the registry's API.

use serde::Deserialize;

/// The `[auth]` section of the configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {}
