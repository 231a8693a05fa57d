//! CodeBuild `buildspec.yml` 0.2: a realistic file, and errors at their lines.
#![allow(clippy::unwrap_used)]

use hoist_pipeline_spec::buildspec::{OnFailure, Shell};
use hoist_pipeline_spec::Buildspec;

const REAL: &str = r#"version: 0.2

run-as: builder
env:
  shell: bash
  variables:
    AWS_DEFAULT_REGION: eu-west-1
    RETRIES: 3
    RATIO: 0.50
    VERBOSE: true
    IMAGE_REPO_NAME: shop
  parameter-store:
    DOCKERHUB_TOKEN: /ci/dockerhub-token
  secrets-manager:
    DB_PASSWORD: prod/db:password
  exported-variables:
    - IMAGE_TAG
  git-credential-helper: yes
phases:
  install:
    runtime-versions:
      python: 3.12
      nodejs: latest
    commands:
      - pip install -r requirements.txt
  pre_build:
    on-failure: ABORT
    commands:
      - echo Logging in
      - IMAGE_TAG=$(echo $CODEBUILD_RESOLVED_SOURCE_VERSION | cut -c 1-7)
  build:
    on-failure: CONTINUE
    commands:
      - docker build -t $IMAGE_REPO_NAME:$IMAGE_TAG .
      - |
        if [ "$RETRIES" -gt 0 ]; then
          echo retrying
        fi
    finally:
      - echo build done
  post_build:
    run-as: root
    commands:
      - printf '[{"name":"web","imageUri":"%s"}]' $IMAGE_REPO_NAME:$IMAGE_TAG > imagedefinitions.json
reports:
  pytest:
    files: [report.xml]
    file-format: JUNITXML
artifacts:
  files:
    - imagedefinitions.json
    - 'dist/**/*'
  name: shop-$(date +%Y-%m-%d)
  discard-paths: no
  base-directory: .
  exclude-paths: ['**/*.map']
cache:
  paths:
    - '/root/.cache/pip/**/*'
"#;

#[test]
fn a_realistic_file_reads_as_codebuild_reads_it() {
    let b = Buildspec::parse("buildspec.yml", REAL).unwrap();
    assert_eq!(b.version, "0.2");
    assert_eq!(b.run_as.as_deref(), Some("builder"));
    assert_eq!(b.env.shell, Shell::Bash);
    // Numbers and booleans are taken as written.
    assert_eq!(b.env.variables["RETRIES"], "3");
    assert_eq!(b.env.variables["RATIO"], "0.50");
    assert_eq!(b.env.variables["VERBOSE"], "true");
    assert_eq!(
        b.env.parameter_store["DOCKERHUB_TOKEN"],
        "/ci/dockerhub-token"
    );
    assert_eq!(b.env.secrets_manager["DB_PASSWORD"], "prod/db:password");
    assert_eq!(b.env.exported_variables, ["IMAGE_TAG"]);
    assert!(b.env.git_credential_helper);

    let install = b.phases.install.as_ref().unwrap();
    assert_eq!(install.runtime_versions["python"], "3.12");
    assert_eq!(install.runtime_versions["nodejs"], "latest");
    let pre = b.phases.pre_build.as_ref().unwrap();
    assert_eq!(pre.on_failure, OnFailure::Abort);
    assert_eq!(pre.commands.len(), 2);
    let build = b.phases.build.as_ref().unwrap();
    assert_eq!(build.on_failure, OnFailure::Continue);
    assert!(build.commands[1].starts_with("if [ \"$RETRIES\" -gt 0 ]; then\n"));
    assert_eq!(build.finally, ["echo build done"]);
    let post = b.phases.post_build.as_ref().unwrap();
    assert_eq!(post.run_as.as_deref(), Some("root"));
    assert_eq!(post.on_failure, OnFailure::Abort);

    let order: Vec<&str> = b.phases().iter().map(|(n, _)| *n).collect();
    assert_eq!(order, ["install", "pre_build", "build", "post_build"]);
    assert!(b.reports.is_some());

    let a = b.artifacts.as_ref().unwrap();
    assert_eq!(a.files, ["imagedefinitions.json", "dist/**/*"]);
    assert!(!a.discard_paths);
    assert_eq!(a.base_directory.as_deref(), Some("."));
    assert_eq!(a.exclude_paths, ["**/*.map"]);
    assert_eq!(b.cache.as_ref().unwrap().paths, ["/root/.cache/pip/**/*"]);
}

#[test]
fn version_0_1_is_refused_with_a_reason() {
    let e = Buildspec::parse(
        "buildspec.yml",
        "version: 0.1\nphases:\n  build:\n    commands: [make]\n",
    )
    .unwrap_err();
    assert_eq!(e.errors().len(), 1);
    let s = e.to_string();
    assert!(
        s.starts_with("buildspec.yml:1:1: version: version 0.1 is not supported"),
        "{s}"
    );
    let e = Buildspec::parse("buildspec.yml", "version: 1\nphases: {}\n").unwrap_err();
    assert!(
        e.to_string().contains("unknown buildspec version \"1\""),
        "{e}"
    );
}

#[test]
fn unknown_keys_are_located_with_a_suggestion() {
    let text = "version: 0.2\nphases:\n  install:\n    commands: [true]\n  prebuild:\n    commands: [make]\n";
    let e = Buildspec::parse("buildspec.yml", text).unwrap_err();
    assert_eq!(
        e.to_string(),
        "buildspec.yml:5:3: phases.prebuild: unknown field, did you mean `pre_build`?"
    );
    let text = "version: 0.2\nphases:\n  build:\n    on-failure: ABORT\n    comands: [make]\n";
    let e = Buildspec::parse("buildspec.yml", text).unwrap_err();
    assert_eq!(
        e.to_string(),
        "buildspec.yml:5:5: phases.build.comands: unknown field, did you mean `commands`?"
    );
    let text = "version: 0.2\nphases:\n  build:\n    on-failure: RETRY\n    commands: [make]\n";
    let e = Buildspec::parse("buildspec.yml", text).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("buildspec.yml:4:5: phases.build.on-failure: unknown variant `RETRY`"),
        "{e}"
    );
    let text = "version: 0.2\nphases: {build: {commands: [make]}}\nartifacts:\n  files: [a]\n  discard-paths: maybe\n";
    let e = Buildspec::parse("buildspec.yml", text).unwrap_err();
    assert_eq!(
        e.to_string(),
        "buildspec.yml:5:3: artifacts.discard-paths: \"maybe\" is not yes or no"
    );
}
