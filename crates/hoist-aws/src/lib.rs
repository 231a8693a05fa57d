//! hoist's AWS target: the calls hoist makes to AWS through the official SDK: ECR
//! registry credentials, repositories and scan findings; ECS deployments; CodeDeploy
//! blue/green deployments.
//!
//! It must not speak the registry protocol (hoist-registry-client does) nor decide
//! deployment strategy; it turns hoist's requests into AWS API calls and AWS answers
//! into hoist's types. It depends on no other hoist crate: the binary wires it in
//! (for ECR, as the registry client's credential provider).
//!
//! # ECR credentials ([`ecr`])
//!
//! [`ecr::EcrRegistry::parse`] recognises ECR registry hosts
//! (`<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]`) and takes the account and
//! region from the name. [`ecr::EcrCredentials::token`] answers with the user `AWS`
//! and a password from `GetAuthorizationToken` (through `aws-config`'s standard
//! credential chain: environment, shared config and credentials files, web identity,
//! ECS and EC2 instance roles; SSO profiles with the `sso` feature), cached until a few
//! minutes before the token expires: in memory, and on disk (one 0600 file per
//! account and host) so consecutive `hoist` runs make one AWS call per twelve hours.
//!
//! # ECR repositories ([`ecr::repository`])
//!
//! [`ecr::repository::ensure_repository`] creates a missing repository on first
//! push (`DescribeRepositories`, then `CreateRepository`) with tags `IMMUTABLE`, scan
//! on push, and `AES256` or `KMS` encryption; a concurrent creator's
//! `RepositoryAlreadyExistsException` counts as "existed". It never modifies an
//! existing repository: [`ecr::repository::Repository::concerns`] says where one
//! differs (mutable tags, no scan on push) and the caller decides whether to warn.
//!
//! # ECR scan findings ([`ecr::scan`])
//!
//! [`ecr::scan::scan_findings`] polls `DescribeImageScanFindings` until ECR's scan
//! of an image is `COMPLETE` (or `ACTIVE`, for enhanced scanning), waiting through
//! `IN_PROGRESS` / `PENDING` and, for a short grace period, a scan that does not
//! exist yet; it fails on `FAILED`, `UNSUPPORTED_IMAGE` and the other terminal states
//! and on its timeout. The decisions are pure functions of ECR's answers and the
//! elapsed time ([`ecr::scan::observe`], [`ecr::scan::wait_for`]), tested without
//! AWS. Basic and enhanced findings come back as [`ecr::scan::EcrFinding`]s with
//! ECR's severity names: this crate has no severity policy (the binary feeds them to
//! hoist-scan's gate).
//!
//! The SDK is async; this crate keeps its API blocking, like the rest of hoist's
//! clients, by running each call on a small current-thread tokio runtime of its own
//! thread (so it also works when called from inside another runtime). HTTPS goes
//! through the SDK's hyper client on rustls with ring (the provider ureq already
//! uses), not the default aws-lc, to keep the build small.
//!
//! # ECS deployments ([`ecs`], [`codedeploy`])
//!
//! [`ecs::deploy`] reads the service's task definition, registers a revision with
//! only one container's image changed (every writable field kept, tagged
//! [`ecs::PREVIOUS_TAG`] with the revision it replaces), then points the service at
//! it (ECS deployment controller) or creates a CodeDeploy deployment with an ECS
//! AppSpec (CODE_DEPLOY controller; predefined or custom traffic-shifting
//! configurations). With a follow limit it polls until steady state, streaming the
//! service's events; a circuit-breaker rollback (`rolloutState` FAILED, the service
//! back on the old revision) or a CodeDeploy failure is an error that carries the
//! events explaining it. [`ecs::rollback`] points the service back at the previous
//! revision. The judgement of each poll is pure ([`ecs::Watch`],
//! [`codedeploy::judge`]) and tested on the response sequences AWS documents.
//!
//! Endpoints follow the SDK's rules, so `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_ECR`
//! point it at a stand-in such as moto (the tests do).

pub mod codedeploy;
pub mod ecr;
pub mod ecs;
mod sdk;
