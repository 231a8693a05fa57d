//! ECS and CodeDeploy deployments through the real AWS SDK against moto in server
//! mode. moto records revisions, services and CodeDeploy deployments faithfully but
//! never moves a rollout forward, so what is checked here is what hoist asks of AWS
//! (read back through the AWS API); following rollouts to their end is tested on
//! AWS's response sequences in the crate's unit tests.
#![allow(clippy::unwrap_used)]

mod moto;

use std::time::Duration;

use aws_sdk_codedeploy::types::{
    DeploymentOption, DeploymentStyle, DeploymentType, EcsService as CdEcsService,
};
use aws_sdk_ecs::types::{
    ContainerDefinition, DeploymentController, DeploymentControllerType, KeyValuePair, LaunchType,
    PortMapping, Tag, TaskDefinitionField,
};
use hoist_aws::codedeploy::{CodeDeployTarget, Traffic};
use hoist_aws::ecs::{self, Deploy, EcsError, EcsService, PREVIOUS_TAG};
use moto::Moto;

const REGION: &str = "eu-west-1";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn sdk() -> aws_config::SdkConfig {
    moto::sdk_config(None).await
}

/// A cluster `web` with service `name` on revision 1 of family `hello` (container
/// `hello` from `reg/hello:v1` beside a `log-router` sidecar), under `controller`.
async fn service(
    ecs: &aws_sdk_ecs::Client,
    name: &str,
    controller: DeploymentControllerType,
) -> String {
    let _ = ecs
        .create_cluster()
        .cluster_name("web")
        .send()
        .await
        .unwrap();
    let hello = ContainerDefinition::builder()
        .name("hello")
        .image("reg/hello:v1")
        .memory(128)
        .cpu(64)
        .user("10001")
        .readonly_root_filesystem(true)
        .port_mappings(PortMapping::builder().container_port(8080).build())
        .environment(KeyValuePair::builder().name("GREETING").value("hi").build())
        .build();
    let sidecar = ContainerDefinition::builder()
        .name("log-router")
        .image("reg/fluent-bit:3")
        .memory(64)
        .build();
    let td = ecs
        .register_task_definition()
        .family(name)
        .task_role_arn("arn:aws:iam::123456789012:role/hello-task")
        .container_definitions(hello)
        .container_definitions(sidecar)
        .tags(Tag::builder().key("team").value("web").build())
        .send()
        .await
        .unwrap()
        .task_definition
        .unwrap()
        .task_definition_arn
        .unwrap();
    ecs.create_service()
        .cluster("web")
        .service_name(name)
        .task_definition(&td)
        .desired_count(1)
        .launch_type(LaunchType::Ec2)
        .deployment_controller(
            DeploymentController::builder()
                .r#type(controller)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    td
}

fn target(service: &str) -> EcsService {
    EcsService {
        region: Some(REGION.into()),
        cluster: "web".into(),
        service: service.into(),
    }
}

fn deploy(service: &str, image: &str) -> Result<ecs::Deployed, EcsError> {
    ecs::deploy(
        &target(service),
        &Deploy {
            image: image.into(),
            container: Some("hello".into()),
            ..Deploy::default()
        },
        &|_| {},
    )
}

/// The service's revision, read from AWS.
async fn current(ecs: &aws_sdk_ecs::Client, service: &str) -> String {
    let out = ecs
        .describe_services()
        .cluster("web")
        .services(service)
        .send()
        .await
        .unwrap();
    out.services()[0].task_definition.clone().unwrap()
}

#[test]
fn deploys_register_a_revision_with_only_the_image_changed_and_rollback_returns() {
    let moto = Moto::start();
    moto.point_all_here(REGION);
    let rt = rt();
    let ecs = rt.block_on(async { aws_sdk_ecs::Client::new(&sdk().await) });
    let rev1 = rt.block_on(service(&ecs, "hello", DeploymentControllerType::Ecs));

    let v2 = "reg/hello@sha256:2222222222222222222222222222222222222222222222222222222222222222";
    let lines = std::sync::Mutex::new(Vec::new());
    let d = ecs::deploy(
        &target("hello"),
        &Deploy {
            image: v2.into(),
            container: Some("hello".into()),
            ..Deploy::default()
        },
        &|l| lines.lock().unwrap().push(l.to_owned()),
    )
    .unwrap();
    assert!(d.registered && !d.steady);
    assert_eq!(d.previous, rev1);
    assert_eq!(d.container, "hello");
    assert!(
        d.task_definition.ends_with("task-definition/hello:2"),
        "{d:?}"
    );
    assert!(lines
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("registered")));

    // What AWS holds: the service on revision 2; revision 2 is revision 1 with
    // the one image changed, everything else (other container, role, settings,
    // tags) kept, and tagged with the revision it replaced.
    rt.block_on(async {
        assert_eq!(current(&ecs, "hello").await, d.task_definition);
        let out = ecs
            .describe_task_definition()
            .task_definition(&d.task_definition)
            .include(TaskDefinitionField::Tags)
            .send()
            .await
            .unwrap();
        let td = out.task_definition().unwrap();
        let c = &td.container_definitions()[0];
        assert_eq!(c.image(), Some(v2));
        assert_eq!(c.user(), Some("10001"));
        assert_eq!(c.readonly_root_filesystem(), Some(true));
        assert_eq!((c.memory(), c.cpu), (Some(128), 64));
        assert_eq!(c.port_mappings()[0].container_port(), Some(8080));
        assert_eq!(c.environment()[0].value(), Some("hi"));
        let sidecar = &td.container_definitions()[1];
        assert_eq!(
            sidecar.image(),
            Some("reg/fluent-bit:3"),
            "other containers kept"
        );
        assert_eq!(
            td.task_role_arn(),
            Some("arn:aws:iam::123456789012:role/hello-task")
        );
        let tag = |k: &str| {
            out.tags()
                .iter()
                .find(|t| t.key() == Some(k))
                .and_then(|t| t.value())
                .map(str::to_owned)
        };
        assert_eq!(tag("team").as_deref(), Some("web"));
        assert_eq!(tag(PREVIOUS_TAG), Some(rev1.clone()));
    });

    // A second deploy, then rollback: back on revision 2, the one it replaced.
    let d3 = deploy("hello", "reg/hello:v3").unwrap();
    assert!(d3.task_definition.ends_with(":3"));
    assert_eq!(rt.block_on(current(&ecs, "hello")), d3.task_definition);
    let back = ecs::rollback(&target("hello"), None, None, None, &|_| {}).unwrap();
    assert_eq!(back.task_definition, d.task_definition);
    assert_eq!(back.previous, d3.task_definition);
    assert_eq!(rt.block_on(current(&ecs, "hello")), d.task_definition);

    // Deploying the image the service already runs registers nothing.
    let again = deploy("hello", v2).unwrap();
    assert!(!again.registered);
    assert_eq!(again.task_definition, d.task_definition);

    // Followed, a rollout moto never finishes runs out of time, and says where it was.
    let err = ecs::deploy(
        &target("hello"),
        &Deploy {
            image: "reg/hello:v4".into(),
            container: Some("hello".into()),
            follow: Some(Duration::from_secs(2)),
            poll: Some(Duration::from_millis(300)),
            ..Deploy::default()
        },
        &|_| {},
    )
    .unwrap_err();
    assert!(matches!(err, EcsError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("not steady after 2s"), "{err}");

    // Requests that do not fit the service are refused before anything changes.
    let before = rt.block_on(current(&ecs, "hello"));
    let err = ecs::deploy(
        &target("hello"),
        &Deploy {
            image: "reg/hello:v5".into(),
            container: Some("nope".into()),
            ..Deploy::default()
        },
        &|_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("no container \"nope\""), "{err}");
    assert!(err.to_string().contains("hello, log-router"), "{err}");
    let two = ecs::deploy(
        &target("hello"),
        &Deploy {
            image: "reg/hello:v5".into(),
            ..Deploy::default()
        },
        &|_| {},
    )
    .unwrap_err();
    assert!(two.to_string().contains("2 containers"), "{two}");
    let canary = ecs::deploy(
        &target("hello"),
        &Deploy {
            image: "reg/hello:v5".into(),
            container: Some("hello".into()),
            traffic: Some(Traffic::Canary {
                percent: 10,
                interval: Duration::from_secs(300),
            }),
            ..Deploy::default()
        },
        &|_| {},
    )
    .unwrap_err();
    assert!(canary.to_string().contains("CODE_DEPLOY"), "{canary}");
    let missing = deploy("nowhere", "reg/hello:v5").unwrap_err();
    assert!(
        missing.to_string().contains("no active service"),
        "{missing}"
    );
    assert_eq!(before, rt.block_on(current(&ecs, "hello")));
}

#[test]
fn a_codedeploy_service_gets_a_blue_green_deployment_with_its_app_spec() {
    let moto = Moto::start();
    moto.point_all_here(REGION);
    let rt = rt();
    let (ecs, cd) = rt.block_on(async {
        let config = sdk().await;
        (
            aws_sdk_ecs::Client::new(&config),
            aws_sdk_codedeploy::Client::new(&config),
        )
    });
    let rev1 = rt.block_on(service(
        &ecs,
        "hello-bg",
        DeploymentControllerType::CodeDeploy,
    ));
    rt.block_on(async {
        cd.create_application()
            .application_name("hello")
            .compute_platform(aws_sdk_codedeploy::types::ComputePlatform::Ecs)
            .send()
            .await
            .unwrap();
        cd.create_deployment_group()
            .application_name("hello")
            .deployment_group_name("hello-bg")
            .service_role_arn("arn:aws:iam::123456789012:role/codedeploy")
            .deployment_style(
                DeploymentStyle::builder()
                    .deployment_type(DeploymentType::BlueGreen)
                    .deployment_option(DeploymentOption::WithTrafficControl)
                    .build(),
            )
            .ecs_services(
                CdEcsService::builder()
                    .cluster_name("web")
                    .service_name("hello-bg")
                    .build(),
            )
            .send()
            .await
            .unwrap();
    });
    let group = CodeDeployTarget {
        application: "hello".into(),
        deployment_group: "hello-bg".into(),
        hooks: vec![("AfterAllowTestTraffic".into(), "hello-smoke".into())],
        container_port: None,
    };

    // Without the deployment group, a CODE_DEPLOY service is refused.
    let err = deploy("hello-bg", "reg/hello:v2").unwrap_err();
    assert!(err.to_string().contains("CodeDeploy application"), "{err}");

    let d = ecs::deploy(
        &target("hello-bg"),
        &Deploy {
            image: "reg/hello:v2".into(),
            container: Some("hello".into()),
            codedeploy: Some(group.clone()),
            traffic: Some(Traffic::Canary {
                percent: 10,
                interval: Duration::from_secs(300),
            }),
            ..Deploy::default()
        },
        &|_| {},
    )
    .unwrap();
    let id = d.codedeploy_id.clone().unwrap();
    assert_eq!(d.previous, rev1);
    // The refused deploy above registered nothing: this revision follows rev1.
    let (family, number) = rev1.rsplit_once(':').unwrap();
    let next = number.parse::<u32>().unwrap() + 1;
    assert_eq!(d.task_definition, format!("{family}:{next}"));

    // What CodeDeploy holds, read through its API.
    let info = rt.block_on(async {
        cd.get_deployment()
            .deployment_id(&id)
            .send()
            .await
            .unwrap()
            .deployment_info
            .unwrap()
    });
    assert_eq!(info.application_name(), Some("hello"));
    assert_eq!(info.deployment_group_name(), Some("hello-bg"));
    assert_eq!(
        info.deployment_config_name(),
        Some("CodeDeployDefault.ECSCanary10Percent5Minutes")
    );
    let content = info
        .revision()
        .and_then(|r| r.app_spec_content())
        .and_then(|a| a.content())
        .unwrap();
    let spec: serde_json::Value = serde_json::from_str(content).unwrap();
    let props = &spec["Resources"][0]["TargetService"]["Properties"];
    assert_eq!(props["TaskDefinition"], d.task_definition.as_str());
    assert_eq!(props["LoadBalancerInfo"]["ContainerName"], "hello");
    assert_eq!(props["LoadBalancerInfo"]["ContainerPort"], 8080);
    assert_eq!(spec["Hooks"][0]["AfterAllowTestTraffic"], "hello-smoke");
    // The new revision exists with the new image.
    let image = rt.block_on(async {
        ecs.describe_task_definition()
            .task_definition(&d.task_definition)
            .send()
            .await
            .unwrap()
            .task_definition
            .unwrap()
            .container_definitions()[0]
            .image()
            .map(str::to_owned)
    });
    assert_eq!(image.as_deref(), Some("reg/hello:v2"));
}
