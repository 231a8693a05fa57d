//! hoist's deployment controller: services (as in ECS), their tasks on the embedded
//! runtime, deployments (rolling, blue/green, canary) with automatic rollback, and
//! the state they live in (SQLite).
//!
//! It drives the proxy only through the proxy's configuration file and admin
//! listener, and the runtime only through `hoist_runtime::Runtime`; it must not
//! serve traffic itself.

pub mod controller;
pub mod launch;
pub mod plan;
pub mod proxyconf;
pub mod spec;
pub mod state;
