//! The repository's example pipeline files parse and say what their comments say:
//! `examples/flask-app/hoist.yml` and `examples/flask-app/buildspec.yml`, whose
//! post_build commands write an `imagedefinitions.json` CodePipeline reads.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use hoist_deploy::spec::{Port, Strategy};
use hoist_pipeline_spec::hoistfile::{Approval, Scanner, Severity};
use hoist_pipeline_spec::imagedefs::ImageDefinitions;
use hoist_pipeline_spec::{Buildspec, PipelineSpec};

fn example(path: &str) -> (PathBuf, String) {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(path);
    let text = std::fs::read_to_string(&file).unwrap();
    (file, text)
}

#[test]
fn flask_app_hoist_yml_tests_scans_and_deploys_dev_then_prod_behind_an_approval() {
    let (_, text) = example("flask-app/hoist.yml");
    let spec = match PipelineSpec::parse("examples/flask-app/hoist.yml", &text) {
        Ok(spec) => spec,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(spec.app.as_str(), "flask-app");
    assert_eq!(spec.build.dockerfile, Path::new("Dockerfile"));
    assert_eq!(spec.test.len(), 1);
    assert!(spec.test[0]
        .run
        .iter()
        .any(|c| c.contains("py_compile app.py")));
    assert_eq!(spec.scan.fail_on, Severity::High);
    assert_eq!(
        spec.scan.scanners,
        BTreeSet::from([Scanner::Secret, Scanner::Misconfig])
    );

    let names: Vec<&str> = spec.environments.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["dev", "prod"]);
    let (dev, prod) = (&spec.environments[0], &spec.environments[1]);
    assert_eq!(dev.approval, Approval::None);
    assert_eq!(prod.approval, Approval::Manual);
    assert!(dev.smoke.as_deref().unwrap().contains("/health"));

    let svc = dev.service_spec("flask-app", "flask-app:1").unwrap();
    assert_eq!(svc.name.as_str(), "flask-app-dev");
    assert_eq!(svc.port, Some(Port(5000)));
    assert_eq!(svc.env["APP_VERSION"], "1.0.0-dev");
    assert_eq!(svc.health_check.as_ref().unwrap().path, "/health");
    assert_eq!(svc.listener.addr.to_string(), "127.0.0.1:5080");
    assert!(matches!(svc.deployment.strategy, Strategy::Rolling { .. }));

    let svc = prod.service_spec("flask-app", "flask-app:1").unwrap();
    assert_eq!(svc.name.as_str(), "flask-app-prod");
    assert_eq!(svc.count, 2);
    assert_eq!(svc.env["APP_VERSION"], "1.0.0");
    assert_ne!(svc.listener.addr.to_string(), "127.0.0.1:5080");
}

#[test]
fn flask_app_buildspec_checks_the_app_and_names_the_image_in_imagedefinitions_json() {
    let (_, text) = example("flask-app/buildspec.yml");
    let spec = match Buildspec::parse("examples/flask-app/buildspec.yml", &text) {
        Ok(spec) => spec,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(spec.version, "0.2");
    let pre = spec.phases.pre_build.as_ref().unwrap();
    assert!(pre.commands.iter().any(|c| c.contains("py_compile app.py")));
    assert!(spec.phases.build.is_some());
    assert_eq!(
        spec.artifacts.as_ref().unwrap().files,
        ["imagedefinitions.json"]
    );
    // Nothing in it runs hoist: the pipeline's own build stage builds the image.
    assert!(!text.contains("hoist "), "{text}");

    // post_build's commands, run as CodeBuild would after a good build (bash, the
    // file's variables, the commit), write a file CodePipeline reads.
    let post = spec.phases.post_build.as_ref().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -e\n{}", post.commands.join("\n")))
        .current_dir(dir.path())
        .envs(&spec.env.variables)
        .env("CODEBUILD_RESOLVED_SOURCE_VERSION", "0123abc")
        .env("CODEBUILD_BUILD_SUCCEEDING", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::read_to_string(dir.path().join("imagedefinitions.json")).unwrap();
    let defs = ImageDefinitions::parse("imagedefinitions.json", &written).unwrap();
    assert_eq!(defs.0.len(), 1);
    assert_eq!(defs.0[0].name, "flask-app");
    assert_eq!(defs.0[0].image_uri, "flask-app:0123abc");

    // After a failed build, post_build fails instead of naming an image.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -e\n{}", post.commands.join("\n")))
        .current_dir(dir.path())
        .envs(&spec.env.variables)
        .env("CODEBUILD_BUILD_SUCCEEDING", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!dir.path().join("imagedefinitions.json").exists());
}
