//! The AWS target offline: `deploy/terraform/examples/hello` applied by the real
//! terraform to moto, and what it made read back through the AWS API (the Rust
//! SDK), not from terraform's own record.
//!
//! One apply per test binary: it takes about a minute and a half.
#![allow(clippy::unwrap_used)]

mod util;

use aws_sdk_codedeploy::types::DeploymentType;
use aws_sdk_ecr::types::{EncryptionType, ImageTagMutability};
use aws_sdk_ecs::types::{DeploymentControllerType, NetworkMode};
use util::aws::{apply_example, Applied, Moto};

/// The image the example's first task definitions are made with.
const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/hello:0.1.0-apply-test";

/// SDK configuration for moto: its endpoint, the example's region, dummy keys,
/// rustls with ring.
async fn sdk_config(applied: &Applied) -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(applied.endpoint())
        .region(aws_config::Region::new(applied.region().to_owned()))
        .credentials_provider(aws_sdk_ecs::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .http_client(http)
        .load()
        .await
}

#[test]
fn example_module_applies_and_hoist_deploys_to_it() {
    let moto = Moto::start();
    let applied = apply_example(&moto, IMAGE);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(check_applied(&applied));
    hoist_deploys_to_the_applied_services(&applied, &rt);
}

/// `hoist` run with moto's environment; panics with its output unless it succeeds.
fn hoist(env: &util::Env, applied: &Applied, args: &[&str]) -> String {
    let out = env
        .hoist()
        .envs(applied.env())
        .env_remove("AWS_PROFILE")
        .args(args)
        .output()
        .unwrap();
    util::assert_success(&out, &format!("hoist {}", args.join(" ")));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The service's task definition and that revision's first image, from AWS.
async fn running(ecs: &aws_sdk_ecs::Client, cluster: &str, service: &str) -> (String, String) {
    let out = ecs
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await
        .unwrap();
    let td = out.services()[0].task_definition().unwrap().to_owned();
    (td.clone(), image_of(ecs, &td).await)
}

async fn image_of(ecs: &aws_sdk_ecs::Client, td: &str) -> String {
    let out = ecs
        .describe_task_definition()
        .task_definition(td)
        .send()
        .await
        .unwrap();
    out.task_definition().unwrap().container_definitions()[0]
        .image()
        .unwrap()
        .to_owned()
}

/// A busybox app whose hoist.yml deploys staging (the ECS controller) and prod
/// (CodeDeploy blue/green) of the applied example: `hoist up` builds, scans, pushes
/// to hoist's registry (moto serves no registry) and deploys both; then `hoist
/// deploy --ecs` and `hoist rollback --ecs` move staging forward and back.
fn hoist_deploys_to_the_applied_services(applied: &Applied, rt: &tokio::runtime::Runtime) {
    let env = util::Env::new();
    env.import_busybox("busybox");
    let dir = env.path("app");
    util::busybox_site(&dir, "hello from ECS");
    let cluster = applied.output_str("cluster_name");
    let staging = applied.output_str("staging_service_name");
    let prod = applied.output_str("prod_service_name");
    let app = applied.output_str("codedeploy_app_name");
    let group = applied.output_str("codedeploy_deployment_group_name");
    let region = applied.region();
    // The registry ECS pulls from: ECR in real life, a hoist registry of its own here.
    let registry_home = util::Env::new();
    let registry = util::RegistryServer::start(&registry_home);
    std::fs::write(
        dir.join("hoist.yml"),
        format!(
            "app: hello\n\
             scan:\n  fail_on: high\n  scanners: [secret]\n\
             push:\n  registry: {addr}/team\n\
             environments:\n\
             \x20 - name: staging\n\
             \x20   target: ecs\n\
             \x20   ecs: {{region: {region}, cluster: {cluster}, service: {staging}, container: hello, wait: false}}\n\
             \x20 - name: prod\n\
             \x20   target: ecs\n\
             \x20   strategy: blue-green\n\
             \x20   ecs:\n\
             \x20     region: {region}\n\
             \x20     cluster: {cluster}\n\
             \x20     service: {prod}\n\
             \x20     wait: false\n\
             \x20     codedeploy: {{application: {app}, deployment_group: {group}}}\n",
            addr = registry.addr,
        ),
    )
    .unwrap();
    util::git_init(&dir);
    util::sh(&dir, "git add -A && git commit -q -m first");

    let config = rt.block_on(sdk_config(applied));
    let ecs = aws_sdk_ecs::Client::new(&config);
    let cd = aws_sdk_codedeploy::Client::new(&config);
    let (staging_before, _) = rt.block_on(running(&ecs, cluster, staging));
    let (prod_before, _) = rt.block_on(running(&ecs, cluster, prod));

    hoist(&env, applied, &["up", "--all", dir.to_str().unwrap()]);
    let runs: serde_json::Value =
        serde_json::from_str(&hoist(&env, applied, &["--json", "runs", "ls"])).unwrap();
    let run = &runs[0];
    assert_eq!(run["status"], "succeeded", "{run}");
    // The image as pushed to push.registry, deployed by digest.
    let built = run["image"].as_str().unwrap();
    assert!(built.starts_with("hello@sha256:"), "{built}");
    let image = format!("{}/team/{built}", registry.addr);
    let other = util::Env::new();
    other.ok(&["pull", &image]);
    assert_eq!(
        format!(
            "hello@{}",
            other.inspect(&image)["Digest"].as_str().unwrap()
        ),
        built,
        "the registry holds the run's image"
    );

    // Staging: a new revision with the run's image, the service pointing at it.
    let (staging_td, staging_image) = rt.block_on(running(&ecs, cluster, staging));
    assert_ne!(staging_td, staging_before);
    assert_eq!(staging_image, image);

    // Prod: a CodeDeploy deployment of a new revision with the run's image, with
    // the AppSpec CodeDeploy needs, and ECSAllAtOnce for blue-green.
    let ids = rt.block_on(async {
        cd.list_deployments()
            .application_name(app)
            .deployment_group_name(group)
            .send()
            .await
            .unwrap()
            .deployments
            .unwrap_or_default()
    });
    let [id] = ids.as_slice() else {
        panic!("one deployment of {app}/{group}: {ids:?}")
    };
    let info = rt.block_on(async {
        cd.get_deployment()
            .deployment_id(id)
            .send()
            .await
            .unwrap()
            .deployment_info
            .unwrap()
    });
    assert_eq!(
        info.deployment_config_name(),
        Some("CodeDeployDefault.ECSAllAtOnce")
    );
    let spec: serde_json::Value = serde_json::from_str(
        info.revision()
            .and_then(|r| r.app_spec_content())
            .and_then(|a| a.content())
            .unwrap(),
    )
    .unwrap();
    let props = &spec["Resources"][0]["TargetService"]["Properties"];
    assert_eq!(
        spec["Resources"][0]["TargetService"]["Type"],
        "AWS::ECS::Service"
    );
    assert_eq!(props["LoadBalancerInfo"]["ContainerName"], "hello");
    assert_eq!(props["LoadBalancerInfo"]["ContainerPort"], 8080);
    let green = props["TaskDefinition"].as_str().unwrap();
    assert_ne!(green, prod_before);
    assert_eq!(rt.block_on(image_of(&ecs, green)), image);

    // A second deploy by hand, then rollback: staging is back on the run's revision.
    let v2 = "123456789012.dkr.ecr.us-east-1.amazonaws.com/hello:0.2.0";
    let out = hoist(
        &env,
        applied,
        &[
            "--json",
            "deploy",
            v2,
            "--service",
            staging,
            "--ecs",
            cluster,
            "--region",
            region,
            "--container",
            "hello",
            "--detach",
        ],
    );
    let deployed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(deployed["previous"], staging_td.as_str());
    let (second, second_image) = rt.block_on(running(&ecs, cluster, staging));
    assert_eq!(second_image, v2);
    assert_eq!(deployed["task_definition"], second.as_str());
    hoist(
        &env,
        applied,
        &[
            "rollback", staging, "--ecs", cluster, "--region", region, "--detach",
        ],
    );
    let (back, back_image) = rt.block_on(running(&ecs, cluster, staging));
    assert_eq!(back, staging_td, "rolled back to the revision before");
    assert_eq!(back_image, image);
}

/// What the example promises, as AWS reports it.
async fn check_applied(applied: &Applied) {
    let config = sdk_config(applied).await;
    assert_eq!(applied.output_str("container_name"), "hello");
    assert_eq!(applied.output("container_port"), 8080);
    assert!(
        applied
            .output_str("alb_dns_name")
            .ends_with(".elb.amazonaws.com"),
        "{:?}",
        applied.outputs
    );

    // ECR: immutable tags, scan on push, a customer managed KMS key.
    let ecr = aws_sdk_ecr::Client::new(&config);
    let repo_name = applied.output_str("ecr_repository_name");
    let repos = ecr
        .describe_repositories()
        .repository_names(repo_name)
        .send()
        .await
        .unwrap();
    let [repo] = repos.repositories() else {
        panic!("one repository {repo_name}: {repos:?}")
    };
    assert_eq!(
        repo.repository_uri(),
        Some(applied.output_str("ecr_repository_url"))
    );
    assert_eq!(
        repo.image_tag_mutability(),
        Some(&ImageTagMutability::Immutable)
    );
    assert!(
        repo.image_scanning_configuration()
            .is_some_and(|s| s.scan_on_push()),
        "{repo:?}"
    );
    let enc = repo.encryption_configuration().unwrap();
    assert_eq!(enc.encryption_type(), &EncryptionType::Kms);
    assert!(
        enc.kms_key().is_some_and(|k| k.contains(":key/")),
        "{enc:?}"
    );
    let lifecycle = ecr
        .get_lifecycle_policy()
        .repository_name(repo_name)
        .send()
        .await
        .unwrap();
    let rules: serde_json::Value =
        serde_json::from_str(lifecycle.lifecycle_policy_text().unwrap()).unwrap();
    let statuses: Vec<&str> = rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["selection"]["tagStatus"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["untagged", "any"], "{rules}");

    // ECS: the cluster with Container Insights, and the two services.
    let ecs = aws_sdk_ecs::Client::new(&config);
    let cluster = applied.output_str("cluster_name");
    let clusters = ecs
        .describe_clusters()
        .clusters(cluster)
        .include(aws_sdk_ecs::types::ClusterField::Settings)
        .send()
        .await
        .unwrap();
    let [c] = clusters.clusters() else {
        panic!("one cluster {cluster}: {clusters:?}")
    };
    assert_eq!(c.status(), Some("ACTIVE"));
    assert!(
        c.settings().iter().any(|s| s.value() == Some("enabled")
            && s.name().is_some_and(|n| n.as_str() == "containerInsights")),
        "{c:?}"
    );

    let staging_name = applied.output_str("staging_service_name");
    let prod_name = applied.output_str("prod_service_name");
    let services = ecs
        .describe_services()
        .cluster(cluster)
        .services(staging_name)
        .services(prod_name)
        .send()
        .await
        .unwrap();
    assert!(services.failures().is_empty(), "{services:?}");
    let service = |name: &str| {
        services
            .services()
            .iter()
            .find(|s| s.service_name() == Some(name))
            .unwrap_or_else(|| panic!("service {name}: {services:?}"))
    };
    let staging = service(staging_name);
    let prod = service(prod_name);
    assert_eq!(
        staging.deployment_controller().map(|d| d.r#type()),
        Some(&DeploymentControllerType::Ecs),
        "{staging:?}"
    );
    assert_eq!(
        prod.deployment_controller().map(|d| d.r#type()),
        Some(&DeploymentControllerType::CodeDeploy),
        "{prod:?}"
    );
    for s in [staging, prod] {
        let vpc = s
            .network_configuration()
            .and_then(|n| n.awsvpc_configuration())
            .unwrap_or_else(|| panic!("awsvpc: {s:?}"));
        assert_eq!(vpc.subnets().len(), 2, "{s:?}");
        assert_eq!(vpc.security_groups().len(), 1, "{s:?}");
        assert_eq!(
            vpc.assign_public_ip(),
            Some(&aws_sdk_ecs::types::AssignPublicIp::Disabled),
            "no public IPs: {s:?}"
        );
        let [lb] = s.load_balancers() else {
            panic!("one load balancer: {s:?}")
        };
        assert_eq!(lb.container_name(), Some("hello"));
        assert_eq!(lb.container_port(), Some(8080));

        let td = ecs
            .describe_task_definition()
            .task_definition(s.task_definition().unwrap())
            .send()
            .await
            .unwrap();
        let td = td.task_definition().unwrap();
        assert_eq!(td.network_mode(), Some(&NetworkMode::Awsvpc), "{td:?}");
        let [container] = td.container_definitions() else {
            panic!("one container: {td:?}")
        };
        assert_eq!(container.name(), Some("hello"));
        assert_eq!(container.image(), Some(IMAGE));
        assert_eq!(container.readonly_root_filesystem(), Some(true));
        assert_ne!(container.privileged(), Some(true));
        let user = container.user().unwrap_or_else(|| panic!("{container:?}"));
        let uid = user.split(':').next().unwrap();
        assert!(uid != "0" && uid != "root", "{user}");
        assert!(
            container
                .port_mappings()
                .iter()
                .any(|p| p.container_port() == Some(8080)),
            "{container:?}"
        );
        let log = container.log_configuration().unwrap();
        assert_eq!(log.log_driver().as_str(), "awslogs");
        assert!(
            container
                .environment()
                .iter()
                .all(|e| !e.name().unwrap_or("").contains("SECRET")),
            "{container:?}"
        );
    }
    let prod_target_group = prod.load_balancers()[0].target_group_arn().unwrap();
    assert!(
        prod_target_group.contains(":targetgroup/hello-prod-blue/"),
        "prod starts on blue: {prod_target_group}"
    );

    // CodeDeploy: blue/green over the two target groups, prod and test listeners.
    let codedeploy = aws_sdk_codedeploy::Client::new(&config);
    let group = codedeploy
        .get_deployment_group()
        .application_name(applied.output_str("codedeploy_app_name"))
        .deployment_group_name(applied.output_str("codedeploy_deployment_group_name"))
        .send()
        .await
        .unwrap();
    let group = group.deployment_group_info().unwrap();
    assert_eq!(
        group.deployment_style().and_then(|s| s.deployment_type()),
        Some(&DeploymentType::BlueGreen),
        "{group:?}"
    );
    let ecs_services: Vec<_> = group
        .ecs_services()
        .iter()
        .map(|s| (s.cluster_name(), s.service_name()))
        .collect();
    assert_eq!(ecs_services, [(Some(cluster), Some(prod_name))]);
    let rollback = group.auto_rollback_configuration().unwrap();
    assert!(rollback.enabled(), "{rollback:?}");
    assert!(
        rollback
            .events()
            .contains(&aws_sdk_codedeploy::types::AutoRollbackEvent::DeploymentFailure),
        "{rollback:?}"
    );
    let [pair] = group
        .load_balancer_info()
        .unwrap()
        .target_group_pair_info_list()
    else {
        panic!("one target group pair: {group:?}")
    };
    let mut target_groups: Vec<_> = pair
        .target_groups()
        .iter()
        .filter_map(|t| t.name())
        .collect();
    target_groups.sort();
    assert_eq!(target_groups, ["hello-prod-blue", "hello-prod-green"]);
    let prod_listeners = pair.prod_traffic_route().unwrap().listener_arns();
    let test_listeners = pair.test_traffic_route().unwrap().listener_arns();
    assert_eq!(prod_listeners.len(), 1, "{pair:?}");
    assert_eq!(test_listeners.len(), 1, "{pair:?}");
    assert_ne!(prod_listeners, test_listeners);

    // IAM: every role of the example has inline policies only, none allowing `*`.
    let iam = aws_sdk_iam::Client::new(&config);
    let roles = iam.list_roles().send().await.unwrap();
    let mut names: Vec<&str> = roles
        .roles()
        .iter()
        .map(|r| r.role_name())
        .filter(|n| n.starts_with("hello-"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "hello-prod-codedeploy",
            "hello-prod-execution",
            "hello-prod-task",
            "hello-staging-execution",
            "hello-staging-task",
        ]
    );
    for role in names {
        let attached = iam
            .list_attached_role_policies()
            .role_name(role)
            .send()
            .await
            .unwrap();
        assert!(
            attached.attached_policies().is_empty(),
            "{role} has managed policies: {attached:?}"
        );
        let inline = iam
            .list_role_policies()
            .role_name(role)
            .send()
            .await
            .unwrap();
        if !role.ends_with("-task") {
            assert!(!inline.policy_names().is_empty(), "{role} has a policy");
        }
        for policy in inline.policy_names() {
            let doc = iam
                .get_role_policy()
                .role_name(role)
                .policy_name(policy)
                .send()
                .await
                .unwrap();
            let doc: serde_json::Value =
                serde_json::from_str(&percent_decode(doc.policy_document())).unwrap();
            let actions = allowed_actions(&doc);
            assert!(!actions.is_empty(), "{role}/{policy}: {doc}");
            for a in &actions {
                assert!(
                    a != "*" && !a.ends_with(":*"),
                    "{role}/{policy} allows {a}: {doc}"
                );
            }
            if role.ends_with("-execution") {
                assert!(
                    actions.iter().any(|a| a == "ecr:BatchGetImage"),
                    "{role} can pull: {doc}"
                );
            }
        }
    }
}

/// The actions of a policy document's Allow statements.
fn allowed_actions(doc: &serde_json::Value) -> Vec<String> {
    let statements = match &doc["Statement"] {
        serde_json::Value::Array(v) => v.clone(),
        s => vec![s.clone()],
    };
    statements
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(|s| match &s["Action"] {
            serde_json::Value::String(a) => vec![a.clone()],
            serde_json::Value::Array(v) => {
                v.iter().map(|a| a.as_str().unwrap().to_owned()).collect()
            }
            other => panic!("Action {other} in {doc}"),
        })
        .collect()
}

/// IAM returns policy documents URL-encoded.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}
