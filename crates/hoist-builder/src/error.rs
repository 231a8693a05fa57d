//! Why a build failed, with the Dockerfile position when one is to blame.

use std::path::PathBuf;

use hoist_dockerfile::ParseErrors;

/// A build error. Step errors carry `file:line` and the instruction as written.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile does not parse.
    #[error("{file}: {errors}")]
    Parse {
        /// The Dockerfile.
        file: PathBuf,
        /// Every problem found.
        errors: ParseErrors,
    },
    /// A file the build needs could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `--target` names no stage.
    #[error("target stage {target:?} could not be found in {file} (stages: {stages})")]
    NoSuchTarget {
        /// The Dockerfile.
        file: PathBuf,
        /// What was asked for.
        target: String,
        /// The stage names there are.
        stages: String,
    },
    /// A step failed: the position, the instruction and why.
    #[error("{file}:{line}: {instruction}\n  {message}")]
    Step {
        /// The Dockerfile.
        file: PathBuf,
        /// First line of the instruction.
        line: usize,
        /// The instruction as written.
        instruction: String,
        /// What went wrong.
        message: String,
    },
    /// A `RUN` exited non-zero.
    #[error("{0}")]
    RunFailed(Box<RunFailure>),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] hoist_oci::StoreError),
    /// The blob store failed.
    #[error(transparent)]
    Blob(#[from] hoist_oci::BlobError),
    /// The snapshot store failed.
    #[error(transparent)]
    Snapshot(#[from] hoist_snapshot::SnapshotError),
    /// The container runtime failed.
    #[error(transparent)]
    Runtime(#[from] hoist_runtime::RuntimeError),
    /// Writing a layer failed.
    #[error(transparent)]
    Layer(#[from] hoist_layer::WriteError),
    /// The build was cancelled.
    #[error("build cancelled")]
    Cancelled,
}

/// A `RUN` that exited non-zero: where, what, how, and its last words.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {instruction}\n  process {command:?} did not complete successfully: {status}{}", tail_text(.tail))]
pub struct RunFailure {
    /// The Dockerfile.
    pub file: PathBuf,
    /// First line of the instruction.
    pub line: usize,
    /// The instruction as written.
    pub instruction: String,
    /// The command as run.
    pub command: String,
    /// `exit code: N`, `killed by signal N` or `timed out`.
    pub status: String,
    /// Its last output lines.
    pub tail: Vec<String>,
}

fn tail_text(tail: &[String]) -> String {
    if tail.is_empty() {
        return String::new();
    }
    let mut s = String::from("\n  last output:");
    for line in tail {
        s.push_str("\n    ");
        s.push_str(line);
    }
    s
}

impl BuildError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BuildError {
        let path = path.into();
        move |source| BuildError::Io { path, source }
    }
}
