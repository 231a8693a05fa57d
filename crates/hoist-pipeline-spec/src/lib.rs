//! The pipeline's input files: `hoist.yml` (the app, its build, tests, scan policy,
//! environments and notifications) and CodeBuild's `buildspec.yml` (version 0.2),
//! read into typed values and validated, every error naming the file, the field path
//! and the line. It also writes the commented starter `hoist.yml` of `hoist init`.
//!
//! It only reads and checks files: it must not run anything, touch the network,
//! the store or the state database; the pipeline engine does that with what it
//! returns.
