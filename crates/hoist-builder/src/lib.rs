//! The image builder: turns a Dockerfile and a build context into an image in the
//! store, stage by stage, with a content-addressed step cache.
//!
//! It must not parse Dockerfiles (hoist-dockerfile does), run containers itself
//! (hoist-runtime does) or touch layer tar formats (hoist-layer does).
