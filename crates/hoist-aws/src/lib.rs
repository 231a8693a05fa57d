//! hoist's AWS target: the calls hoist makes to AWS through the official SDK (ECR
//! registry credentials now; ECS and CodeDeploy deployments with the AWS issue).
//!
//! It must not speak the registry protocol (hoist-registry-client does) nor decide
//! deployment strategy; it turns hoist's requests into AWS API calls and AWS answers
//! into hoist's types.
