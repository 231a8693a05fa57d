//! `hoist deploy IMAGE --service S --ecs CLUSTER` and `hoist rollback S --ecs
//! CLUSTER`: thin handlers over hoist-aws, with the same mapping of strategies and
//! CodeDeploy settings as a hoist.yml environment with `target: ecs`
//! (`hoist_pipeline::ecs`). Progress (the service's events among it) goes to stderr;
//! the outcome to stdout.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use hoist_aws::codedeploy::CodeDeployTarget;
use hoist_aws::ecs::{self, Deployed, EcsService};
use hoist_deploy::spec::Strategy;
use hoist_pipeline_spec::hoistfile::CODEDEPLOY_HOOKS;
use hoist_pipeline_spec::imagedefs::{ImageDefinition, ImageDefinitions};
use serde_json::json;

use crate::cli::{DeployArgs, EcsArgs, RollbackArgs};
use crate::settings::Settings;

fn target(ecs: &EcsArgs, service: &str) -> Result<EcsService> {
    let cluster = ecs.ecs.clone().context("--ecs CLUSTER")?;
    Ok(EcsService {
        region: ecs.region.clone(),
        cluster,
        service: service.to_owned(),
    })
}

fn codedeploy(ecs: &EcsArgs) -> Result<Option<CodeDeployTarget>> {
    let Some(pair) = &ecs.codedeploy else {
        return Ok(None);
    };
    let Some((application, group)) = pair
        .split_once('/')
        .filter(|(a, g)| !a.is_empty() && !g.is_empty())
    else {
        bail!("--codedeploy {pair:?}: expected APPLICATION/DEPLOYMENT_GROUP");
    };
    let mut hooks = Vec::new();
    for h in &ecs.codedeploy_hooks {
        let Some((hook, function)) = h.split_once('=').filter(|(_, f)| !f.is_empty()) else {
            bail!("--codedeploy-hook {h:?}: expected HOOK=LAMBDA");
        };
        if !CODEDEPLOY_HOOKS.contains(&hook) {
            bail!(
                "--codedeploy-hook {hook:?}: ECS deployments have {}",
                CODEDEPLOY_HOOKS.join(", ")
            );
        }
        hooks.push((hook.to_owned(), function.to_owned()));
    }
    Ok(Some(CodeDeployTarget {
        application: application.to_owned(),
        deployment_group: group.to_owned(),
        hooks,
        container_port: None,
    }))
}

fn progress(line: &str) {
    eprintln!("{line}");
}

fn report(settings: &Settings, what: &str, target: &EcsService, done: &Deployed) {
    if settings.json {
        println!(
            "{}",
            json!({
                "cluster": target.cluster,
                "service": target.service,
                "task_definition": done.task_definition,
                "previous": done.previous,
                "container": done.container,
                "registered": done.registered,
                "codedeploy_deployment": done.codedeploy_id,
                "steady": done.steady,
            })
        );
    } else if done.steady {
        println!("{what}: {target} is steady on {}", done.task_definition);
    } else {
        println!(
            "{what}: {target} moves to {} (not followed)",
            done.task_definition
        );
    }
}

/// `hoist deploy IMAGE --service S --ecs CLUSTER`
pub fn deploy(settings: &Settings, args: &DeployArgs) -> Result<()> {
    let service = args
        .service
        .as_deref()
        .context("--ecs needs --service: the ECS service to deploy to")?;
    if Path::new(&args.target).is_file() || args.image.is_some() {
        bail!(
            "--ecs deploys an image to a service whose settings live in its task definition: give the image, not a service file"
        );
    }
    for (flag, set) in [
        ("--replicas", args.replicas.is_some()),
        ("--port", args.port.is_some()),
        ("--listen", args.listen.is_some()),
        ("--health-path", args.health_path.is_some()),
        ("--env", !args.env.is_empty()),
    ] {
        if set {
            bail!("{flag} does not apply with --ecs: the service's task definition and service (Terraform) hold it; hoist sets only the image");
        }
    }
    let image = args.target.clone();
    if hoist_oci::Reference::parse_normalized(&image).is_ok_and(|r| r.domain() == "docker.io") {
        eprintln!("note: {image} names no registry; ECS pulls it from Docker Hub");
    }
    let strategy: Option<Strategy> = args
        .strategy
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--strategy: {e}"))?;
    let (rolling, traffic) = hoist_pipeline::ecs::strategy(strategy.as_ref());
    let target = target(&args.ecs, service)?;
    let request = ecs::Deploy {
        image: image.clone(),
        container: args.ecs.container.clone(),
        codedeploy: codedeploy(&args.ecs)?,
        traffic,
        rolling,
        follow: (!args.detach).then_some(args.ecs.timeout),
        poll: None,
    };
    let done = ecs::deploy(&target, &request, &progress)?;
    if let Some(path) = &args.imagedefinitions {
        let defs = ImageDefinitions(vec![ImageDefinition {
            name: done.container.clone(),
            image_uri: image,
        }]);
        hoist_oci::write_atomic(path, |f| f.write_all(defs.to_json().as_bytes()))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    report(settings, "deploy", &target, &done);
    Ok(())
}

/// `hoist rollback S --ecs CLUSTER`
pub fn rollback(settings: &Settings, args: &RollbackArgs) -> Result<()> {
    let target = target(&args.ecs, &args.service)?;
    let done = ecs::rollback(
        &target,
        args.ecs.container.as_deref(),
        codedeploy(&args.ecs)?.as_ref(),
        (!args.detach).then_some(args.ecs.timeout),
        &progress,
    )?;
    report(settings, "rollback", &target, &done);
    Ok(())
}
