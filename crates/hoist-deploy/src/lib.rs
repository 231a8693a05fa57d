//! hoist's deployment controller: services (as in ECS), their tasks on the embedded
//! runtime, deployments (rolling, blue/green, canary) with automatic rollback, and
//! the state they live in (SQLite).
//!
//! It drives the proxy only through the proxy's configuration file and admin
//! listener, and the runtime only through `hoist_runtime::Runtime`; it must not
//! serve traffic itself.
//!
//! A task's health comes from one of three places ([`launch::TaskHealth`]): the
//! service file's `health_check:` (HTTP probes sent by the proxy); else the
//! image's `HEALTHCHECK` (run inside the task by the task's own runtime helper,
//! which writes Docker's `State.Health` to the task's state dir; the proxy reads
//! that file through a `reported` health check); else none, and a task is healthy
//! once it runs (`HEALTHCHECK NONE` included). Either way the proxy's `/targets`
//! is what the controller reads, so the circuit breaker and events do not care
//! which; and neither the probes nor the proxy need the controller running.

pub mod client;
pub mod controller;
pub mod launch;
pub mod plan;
pub mod proxyconf;
pub mod spec;
pub mod state;
