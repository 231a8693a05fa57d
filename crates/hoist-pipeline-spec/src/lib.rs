//! The pipeline's input files: `hoist.yml` (the app, its build, tests, scan policy,
//! environments and notifications) and CodeBuild's `buildspec.yml` (version 0.2),
//! read into typed values and validated, every error naming the file, the field path
//! and the line. It also writes the commented starter `hoist.yml` of `hoist init`.
//!
//! It only reads and checks files: it must not run anything, touch the network,
//! the store or the state database; the pipeline engine does that with what it
//! returns.
//!
//! - [`hoistfile`]: [`PipelineSpec`], whose environments build
//!   `hoist_deploy::spec::ServiceSpec`s ([`hoistfile::Environment::service_spec`]);
//!   the service settings, strategies and durations are `hoist_deploy`'s own types.
//! - [`buildspec`]: [`Buildspec`], CodeBuild's format as CodeBuild reads it.
//! - [`imagedefs`]: CodePipeline's `imagedefinitions.json` and `imageDetail.json`.
//! - [`init`]: what a repository looks like, and the starter file made from it.
//! - [`load`]: which pipeline a repository runs (its hoist.yml, or its buildspec.yml
//!   in the starter pipeline).
//! - [`error`]: [`SpecError`] (`file:line:col: field.path: message`) and
//!   [`SpecErrors`]: serde stops at a file's first syntax or type error, but the
//!   checks after parsing report every problem, each at its field's line.

pub mod buildspec;
pub mod error;
pub mod hoistfile;
pub mod imagedefs;
pub mod init;
pub mod load;

pub use buildspec::Buildspec;
pub use error::{SpecError, SpecErrors};
pub use hoistfile::PipelineSpec;
