//! CodeBuild's `buildspec.yml`, version 0.2: read as CodeBuild reads it, so that a
//! repository built by CodeBuild builds the same way under hoist.
//!
//! What cannot work offline (Parameter Store, Secrets Manager, reports) is kept as
//! written, so that the engine can say so instead of the file being refused.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{parse_yaml, SpecErrors};

/// A whole `buildspec.yml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Buildspec {
    /// Always `0.2`: 0.1 is refused.
    #[serde(deserialize_with = "version_02")]
    pub version: String,
    /// The user every command runs as (default the image's).
    #[serde(default)]
    pub run_as: Option<String>,
    /// The build's environment.
    #[serde(default)]
    pub env: BuildEnv,
    /// CodeBuild's proxy settings, kept as written.
    #[serde(default)]
    pub proxy: Option<serde_yaml_ng::Value>,
    /// A batch build's settings, kept as written.
    #[serde(default)]
    pub batch: Option<serde_yaml_ng::Value>,
    /// The commands.
    pub phases: Phases,
    /// Test and coverage reports, kept as written.
    #[serde(default)]
    pub reports: Option<serde_yaml_ng::Value>,
    /// What the build leaves behind.
    #[serde(default)]
    pub artifacts: Option<Artifacts>,
    /// Paths kept between builds.
    #[serde(default)]
    pub cache: Option<Cache>,
}

/// `env:`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BuildEnv {
    /// The shell commands run in (default bash, as on CodeBuild's Linux images).
    #[serde(default)]
    pub shell: Shell,
    /// Plain variables; numbers and booleans are taken as written, as CodeBuild does.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// `VAR: parameter-name` from SSM Parameter Store (unavailable offline).
    #[serde(default)]
    pub parameter_store: BTreeMap<String, String>,
    /// `VAR: secret-id:json-key:version-stage:version-id` from Secrets Manager
    /// (unavailable offline).
    #[serde(default)]
    pub secrets_manager: BTreeMap<String, String>,
    /// Variables whose final values the build exports.
    #[serde(default)]
    pub exported_variables: Vec<String>,
    /// Whether git uses CodeBuild's credential helper.
    #[serde(default, deserialize_with = "yes_no")]
    pub git_credential_helper: bool,
}

/// `env.shell`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shell {
    /// `/bin/bash`.
    #[default]
    Bash,
    /// `/bin/sh`.
    Sh,
}

/// `phases:`, run in this order; `post_build` runs even when `build` fails.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phases {
    /// Installs packages and picks runtime versions.
    #[serde(default)]
    pub install: Option<InstallPhase>,
    /// Before the build (logins, dependency fetches).
    #[serde(default)]
    pub pre_build: Option<Phase>,
    /// The build.
    #[serde(default)]
    pub build: Option<Phase>,
    /// After the build (pushes, packaging).
    #[serde(default)]
    pub post_build: Option<Phase>,
}

/// `phases.install`: a phase with runtime versions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct InstallPhase {
    /// `runtime: version` (`python: 3.12`, `nodejs: latest`), as written.
    #[serde(default)]
    pub runtime_versions: BTreeMap<String, String>,
    /// The user the phase's commands run as.
    #[serde(default)]
    pub run_as: Option<String>,
    /// What happens to the build when the phase fails (default abort).
    #[serde(default)]
    pub on_failure: OnFailure,
    /// The commands, in order.
    #[serde(default)]
    pub commands: Vec<String>,
    /// Commands run after `commands`, whether they failed or not.
    #[serde(default)]
    pub finally: Vec<String>,
}

/// `phases.pre_build`, `phases.build`, `phases.post_build`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Phase {
    /// The user the phase's commands run as.
    #[serde(default)]
    pub run_as: Option<String>,
    /// What happens to the build when the phase fails (default abort).
    #[serde(default)]
    pub on_failure: OnFailure,
    /// The commands, in order.
    #[serde(default)]
    pub commands: Vec<String>,
    /// Commands run after `commands`, whether they failed or not.
    #[serde(default)]
    pub finally: Vec<String>,
}

/// A phase's `on-failure`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum OnFailure {
    /// Stop the build: after a failed `install` or `pre_build` every later phase
    /// is skipped; after a failed `build`, `post_build` still runs (AWS's build
    /// phase transitions).
    #[default]
    Abort,
    /// Go on with the next phase.
    Continue,
}

/// `artifacts:`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Artifacts {
    /// Glob patterns of the files, from `base-directory`.
    pub files: Vec<String>,
    /// The artifact's name.
    #[serde(default)]
    pub name: Option<String>,
    /// Store the files without their directories.
    #[serde(default, deserialize_with = "yes_no")]
    pub discard_paths: bool,
    /// Where `files` are taken from (default the source root).
    #[serde(default)]
    pub base_directory: Option<String>,
    /// Glob patterns left out.
    #[serde(default)]
    pub exclude_paths: Vec<String>,
    /// Keep symbolic links as links.
    #[serde(default, deserialize_with = "yes_no")]
    pub enable_symlinks: bool,
    /// CodeBuild's S3 prefix, kept as written.
    #[serde(default)]
    pub s3_prefix: Option<String>,
    /// Secondary artifacts, kept as written.
    #[serde(default)]
    pub secondary_artifacts: Option<serde_yaml_ng::Value>,
}

/// `cache:`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Cache {
    /// Paths kept between builds.
    #[serde(default)]
    pub paths: Vec<String>,
    /// The cache key, kept as written.
    #[serde(default)]
    pub key: Option<String>,
    /// Keys tried when `key` misses, kept as written.
    #[serde(default)]
    pub fallback_keys: Vec<String>,
    /// Restore or save only, kept as written.
    #[serde(default)]
    pub action: Option<String>,
}

impl Buildspec {
    /// Reads a `buildspec.yml`; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Buildspec, SpecErrors> {
        Ok(parse_yaml(file, text)?)
    }

    /// The phases present, in the order they run, with their names.
    pub fn phases(&self) -> Vec<(&'static str, Phase)> {
        let p = &self.phases;
        let mut out = Vec::new();
        if let Some(i) = &p.install {
            out.push((
                "install",
                Phase {
                    run_as: i.run_as.clone(),
                    on_failure: i.on_failure,
                    commands: i.commands.clone(),
                    finally: i.finally.clone(),
                },
            ));
        }
        for (name, phase) in [
            ("pre_build", &p.pre_build),
            ("build", &p.build),
            ("post_build", &p.post_build),
        ] {
            if let Some(phase) = phase {
                out.push((name, phase.clone()));
            }
        }
        out
    }
}

/// `version`: 0.2 only.
fn version_02<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = String::deserialize(d)?;
    match v.trim() {
        "0.2" => Ok(v),
        "0.1" => Err(serde::de::Error::custom(
            "version 0.1 is not supported: it runs every command in a shell of its own; write version: 0.2 (and check commands that relied on that)",
        )),
        other => Err(serde::de::Error::custom(format!(
            "unknown buildspec version {other:?}: write version: 0.2"
        ))),
    }
}

/// CodeBuild's booleans: `yes`/`no`, and `true`/`false`.
fn yes_no<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let v = String::deserialize(d)?;
    match v.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(serde::de::Error::custom(format!("{v:?} is not yes or no"))),
    }
}
