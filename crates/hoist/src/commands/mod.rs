//! Command handlers: each takes resolved settings and parsed arguments, calls the
//! library crates and renders the result. No business logic lives here.

pub mod build;
pub mod deploy;
pub mod ecs;
pub mod image;
pub mod import;
pub mod lint;
pub mod pipeline;
pub mod proxy;
pub mod registry;
pub mod remote;
pub mod scan;
pub mod secret;
pub mod server;
