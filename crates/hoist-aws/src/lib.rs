//! hoist's AWS target: the calls hoist makes to AWS through the official SDK (ECR
//! registry credentials now; ECS and CodeDeploy deployments with the AWS issue).
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
//! The SDK is async; this crate keeps its API blocking, like the rest of hoist's
//! clients, by running each call on a small current-thread tokio runtime of its own
//! thread (so it also works when called from inside another runtime). HTTPS goes
//! through the SDK's hyper client on rustls with ring (the provider ureq already
//! uses), not the default aws-lc, to keep the build small.
//!
//! Endpoints follow the SDK's rules, so `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_ECR`
//! point it at a stand-in such as moto (the tests do).

pub mod ecr;
