//! The pipeline engine: a run takes a source through test, build, scan and deploy
//! to each environment of `hoist.yml`, and records every stage (status, summary,
//! log) in the run history before and after it runs.
//!
//! [`engine::Engine`] composes the libraries of the earlier steps (hoist-builder,
//! hoist-scan, hoist-deploy's client side) and never re-implements them, nor shells
//! out to `hoist`: the only processes it starts itself are the commands that
//! `hoist.yml` gives (tests, smoke checks, in `sh`) or a `buildspec.yml` (in
//! bash), and through hoist-deploy the deployment daemon when none runs.
//! [`runs::Runs`] is the history (SQLite);
//! [`source`] prepares a run's workspace; [`shell`] runs a command with a timeout
//! and its output logged; [`codebuild`] runs a CodeBuild `buildspec.yml` with
//! CodeBuild's semantics (one shell session, phases, artifacts).
//!
//! It must not parse `hoist.yml` (hoist-pipeline-spec does), serve HTTP, or start
//! or stop tasks (the deployment daemon does).

pub mod codebuild;
pub mod ecs;
pub mod engine;
pub mod notify;
pub mod runs;
pub mod shell;
pub mod source;

pub use engine::{Engine, EngineError, Progress, RunResult, Source, Through};
