//! Garbage collection of the registry's storage.

use serde::Deserialize;

/// The `[gc]` section of the configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcConfig {}
