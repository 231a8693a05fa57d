//! Misconfiguration rules for Dockerfiles, Terraform (HCL) and ECS task
//! definitions: `hoist lint`.
//!
//! It owns the rules (each with an ID, a severity, a one-line reason and a fix),
//! reading Terraform as HCL and task definitions as JSON, and inline suppression
//! with `# hoist:ignore=ID`. It must not run anything or touch the network; the
//! Dockerfile parser is `hoist-dockerfile`'s.
