//! Build progress as a stream of events. The builder only emits them; the binary
//! renders them (buildx-like lines, or one JSON object per line for the pipeline
//! and the dashboard).

use serde::Serialize;

/// Which stream a line of `RUN` output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One thing that happened during a build.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The build began.
    BuildStarted {
        /// The Dockerfile.
        dockerfile: String,
        /// Stages that will be built, in order.
        stages: Vec<String>,
    },
    /// A step began (numbered across the build, from 1).
    StepStarted {
        /// Step number.
        step: usize,
        /// Stage name (or `stage-N`).
        stage: String,
        /// Position in the stage, from 1 (the `FROM` is 1).
        index: usize,
        /// Steps in the stage.
        total: usize,
        /// The instruction as written.
        instruction: String,
    },
    /// A line of `RUN` output.
    StepOutput {
        /// Step number.
        step: usize,
        /// Where it came from.
        stream: OutputStream,
        /// The line, without its newline (invalid UTF-8 replaced).
        line: String,
    },
    /// A step was answered from the cache.
    StepCached {
        /// Step number.
        step: usize,
    },
    /// A step finished.
    StepDone {
        /// Step number.
        step: usize,
        /// How long it took.
        duration_ms: u64,
        /// The layer it made, if any.
        layer: Option<String>,
    },
    /// A step failed; the build stops.
    StepFailed {
        /// Step number.
        step: usize,
        /// Why.
        error: String,
    },
    /// The image is in the store.
    BuildDone {
        /// Manifest digest.
        digest: String,
        /// Image ID (config digest).
        id: String,
        /// Names given with `-t`.
        tags: Vec<String>,
        /// Steps run or answered from the cache.
        steps: usize,
        /// Steps answered from the cache.
        cached: usize,
        /// `RUN` steps that ran a container.
        runs: usize,
        /// Wall time.
        duration_ms: u64,
    },
}

/// Where events go. Called from several threads when stages run in parallel.
pub trait Progress: Send + Sync {
    /// Handle one event.
    fn event(&self, event: &Event);
}

/// Drops every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl Progress for Quiet {
    fn event(&self, _: &Event) {}
}
