//! Which pipeline a repository runs: its `hoist.yml`, or, for a CodeBuild
//! repository (a `buildspec.yml` and no `hoist.yml`), the starter pipeline of
//! [`crate::init`] with the buildspec as its build.

use std::path::{Path, PathBuf};

use crate::buildspec::Buildspec;
use crate::error::SpecErrors;
use crate::hoistfile::PipelineSpec;
use crate::init;

/// Why a repository's pipeline could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("reading {path}: {source}{hint}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
        /// What to do about it.
        hint: &'static str,
    },
    /// The file is not a valid pipeline.
    #[error("{0}")]
    Spec(#[from] SpecErrors),
}

/// The pipeline of the repository at `dir`: `file` when given, else
/// `dir/hoist.yml`; without one but with `dir/buildspec.yml`, the starter pipeline
/// `hoist init` would write with that buildspec as the build (and its guessed test
/// commands left to the buildspec). Errors name the file.
pub fn pipeline_in(
    dir: &Path,
    file: Option<&Path>,
) -> Result<(PipelineSpec, Option<Buildspec>), LoadError> {
    let hoist_yml = file
        .map(Path::to_owned)
        .unwrap_or_else(|| dir.join("hoist.yml"));
    let buildspec_yml = dir.join("buildspec.yml");
    let read = |path: &Path, hint| {
        std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
            hint,
        })
    };
    if file.is_some() || hoist_yml.is_file() || !buildspec_yml.is_file() {
        let text = read(
            &hoist_yml,
            " (write one with `hoist init`, or name it with --file)",
        )?;
        let spec = PipelineSpec::parse(&hoist_yml.display().to_string(), &text)?;
        return Ok((spec, None));
    }
    let text = read(&buildspec_yml, "")?;
    let buildspec = Buildspec::parse(&buildspec_yml.display().to_string(), &text)?;
    let facts = init::RepoFacts::detect(dir).map_err(|source| LoadError::Read {
        path: dir.to_owned(),
        source,
        hint: "",
    })?;
    let starter = init::starter(&facts);
    let mut spec = PipelineSpec::parse("(the starter hoist.yml of `hoist init`)", &starter)?;
    spec.test.clear();
    Ok((spec, Some(buildspec)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hoist_yml_wins_and_a_buildspec_alone_gets_the_starter_pipeline() {
        let dir = tempfile::tempdir().unwrap();
        let err = pipeline_in(dir.path(), None).unwrap_err().to_string();
        assert!(
            err.contains("hoist.yml") && err.contains("hoist init"),
            "{err}"
        );

        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(
            dir.path().join("buildspec.yml"),
            "version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi\n",
        )
        .unwrap();
        let (spec, buildspec) = pipeline_in(dir.path(), None).unwrap();
        assert!(buildspec.is_some());
        assert!(spec.test.is_empty());
        assert!(!spec.environments.is_empty());

        std::fs::write(dir.path().join("hoist.yml"), "app: web\nbogus: 1\n").unwrap();
        let err = pipeline_in(dir.path(), None).unwrap_err().to_string();
        assert!(err.contains("hoist.yml:2"), "{err}");
    }
}
