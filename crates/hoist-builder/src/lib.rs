//! The image builder: turns a Dockerfile and a build context into an image in the
//! store, stage by stage, with a content-addressed step cache.
//!
//! # Flow
//!
//! [`Builder::build`] parses the Dockerfile (hoist-dockerfile), plans the stages the
//! target needs in dependency levels (independent stages run on parallel threads),
//! and runs each instruction:
//!
//! * config-only instructions (`ENV`, `CMD`, `LABEL`...) change the image config
//!   ([`metadata`]); their cache key covers the whole config after them;
//! * `RUN` runs a container (hoist-runtime) on an overlay of the stage's layer
//!   snapshots (hoist-snapshot); the overlay's upper dir, minus mountpoint stubs,
//!   becomes the layer and, renamed, the next step's lowerdir;
//! * `COPY`/`ADD` copy into a staging dir ([`copy`]) that becomes the layer;
//! * `WORKDIR` makes its directory when the image lacks it.
//!
//! Every layer-making step first asks the [`cache::StepCache`]: its key hashes the
//! parent's key and everything that decides the result (the command, the
//! environment, user, working dir, mounts, and the content digest of the context
//! files a `COPY` reads; never a secret's value). A hit reuses the layer blob
//! without unpacking anything.
//!
//! # What it must not do
//!
//! It must not parse Dockerfiles (hoist-dockerfile does), run containers itself
//! (hoist-runtime does), mount anything, or write tar bytes (hoist-layer does).
//! Progress is emitted as [`progress::Event`]s; rendering is the caller's.

pub mod cache;
pub mod context;
pub mod copy;
mod engine;
pub mod error;
pub mod metadata;
pub mod progress;

pub use engine::{
    git_commit_time, parse_secret, BuildOptions, BuildOutput, Builder, PruneReport, PullFn, Puller,
    SecretSource, Snapshotter, DEFAULT_PATH,
};
pub use error::BuildError;
pub use progress::{Event, OutputStream, Progress, Quiet};
