//! `hoist.yml`: a full file's values, defaults, the services it makes, and
//! errors at their lines.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use hoist_deploy::spec::{NetworkMode, Percent, Port, ServiceSpec, Strategy};
use hoist_pipeline_spec::hoistfile::{Approval, Event, Scanner, Severity, Target};
use hoist_pipeline_spec::PipelineSpec;

const FULL: &str = r#"app: shop
build:
  dockerfile: docker/Dockerfile
  args: {VERSION: 1.2}
  target: runtime
test:
  - name: unit
    run: make test
  - name: lint
    run: ["make lint", "make vet"]
    image: golang:1.22
    timeout: 2m
    env: {CI: "true"}
scan:
  fail_on: critical
  ignore_file: .hoistignore
  scanners: [vuln, secret]
environments:
  - name: dev
    strategy: rolling
    env: {LOG: debug}
    service:
      listener: {addr: "127.0.0.1:8080"}
  - name: staging
    strategy: {type: blue-green, bake: 30s}
    service:
      count: 2
      listener: {addr: "127.0.0.1:8080", host: staging.local}
  - name: prod
    approval: manual
    strategy: canary:10%:30s
    secrets: {DB_PASSWORD: prod-db}
    service:
      count: 4
      port: 3000
      network: outbound
      env: {LOG: info, MODE: prod}
      health_check: {path: /health}
      listener: {addr: "127.0.0.1:8081"}
    smoke: curl -fsS "$HOIST_URL/health"
    timeout: 15m
notifications:
  webhooks:
    - url: https://hooks.example.com/hoist
      secret: hook-key
    - url: http://127.0.0.1:9000/
      events: [deployment]
"#;

#[test]
fn a_full_file_reads_into_its_values() {
    let p = PipelineSpec::parse("hoist.yml", FULL).unwrap();
    assert_eq!(p.app.as_str(), "shop");
    assert_eq!(p.build.dockerfile, PathBuf::from("docker/Dockerfile"));
    assert_eq!(p.build.context, PathBuf::from("."));
    assert_eq!(p.build.args["VERSION"], "1.2");
    assert_eq!(p.build.target.as_deref(), Some("runtime"));

    assert_eq!(p.test.len(), 2);
    assert_eq!(p.test[0].run, vec!["make test"]);
    assert_eq!(p.test[0].image, None);
    assert_eq!(p.test[0].timeout, Duration::from_secs(600));
    assert_eq!(p.test[1].run, vec!["make lint", "make vet"]);
    assert_eq!(p.test[1].image.as_deref(), Some("golang:1.22"));
    assert_eq!(p.test[1].timeout, Duration::from_secs(120));
    assert_eq!(p.test[1].env["CI"], "true");

    assert_eq!(p.scan.fail_on, Severity::Critical);
    assert_eq!(p.scan.ignore_file, Some(PathBuf::from(".hoistignore")));
    assert_eq!(
        p.scan.scanners,
        BTreeSet::from([Scanner::Vuln, Scanner::Secret])
    );

    let names: Vec<&str> = p.environments.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["dev", "staging", "prod"]);
    let [dev, staging, prod] = &p.environments[..] else {
        panic!("three environments")
    };
    assert_eq!(dev.target, Target::Local);
    assert_eq!(dev.approval, Approval::None);
    assert_eq!(dev.strategy, Some(Strategy::default()));
    assert_eq!(dev.service.count, 1);
    assert_eq!(dev.service.stop_timeout, Duration::from_secs(30));
    assert_eq!(dev.smoke, None);
    assert_eq!(dev.timeout, None);
    assert_eq!(
        staging.strategy,
        Some(Strategy::BlueGreen {
            bake: Duration::from_secs(30),
            test_listener: None
        })
    );
    assert_eq!(
        staging.service.listener.as_ref().unwrap().host.as_deref(),
        Some("staging.local")
    );
    assert_eq!(prod.approval, Approval::Manual);
    assert_eq!(
        prod.strategy,
        Some(Strategy::Canary {
            percent: Percent(10),
            bake: Duration::from_secs(30)
        })
    );
    assert_eq!(prod.service.port, Some(Port(3000)));
    assert_eq!(prod.service.network, NetworkMode::Outbound);
    assert_eq!(prod.secrets["DB_PASSWORD"], "prod-db");
    assert_eq!(
        prod.smoke.as_deref(),
        Some("curl -fsS \"$HOIST_URL/health\"")
    );
    assert_eq!(prod.timeout, Some(Duration::from_secs(900)));

    let hooks = &p.notifications.webhooks;
    assert_eq!(
        hooks[0].events,
        BTreeSet::from([Event::Run, Event::Deployment])
    );
    assert_eq!(hooks[0].secret.as_deref(), Some("hook-key"));
    assert_eq!(hooks[1].events, BTreeSet::from([Event::Deployment]));
}

#[test]
fn a_minimal_file_gets_the_defaults() {
    let p = PipelineSpec::parse(
        "hoist.yml",
        "app: web\nenvironments:\n  - name: dev\n    service: {listener: {addr: 127.0.0.1:8080}}\n",
    )
    .unwrap();
    assert_eq!(p.build.dockerfile, PathBuf::from("Dockerfile"));
    assert_eq!(p.build.context, PathBuf::from("."));
    assert!(p.test.is_empty());
    assert_eq!(p.scan.fail_on, Severity::High);
    assert_eq!(p.scan.ignore_file, None);
    assert_eq!(p.scan.scanners.len(), 3);
    assert_eq!(p.environments[0].strategy, None);
    assert!(p.notifications.webhooks.is_empty());
    // No strategy anywhere: the service's default (rolling 100/200).
    let spec = p.environments[0].service_spec("web", "web:1").unwrap();
    assert_eq!(spec.deployment.strategy, Strategy::default());
    assert_eq!(spec.name.as_str(), "web-dev");
}

#[test]
fn an_environment_makes_the_service_its_service_file_would() {
    let p = PipelineSpec::parse("hoist.yml", FULL).unwrap();
    let prod = p
        .environments
        .iter()
        .find(|e| e.name.as_str() == "prod")
        .unwrap();
    let made = prod.service_spec("shop", "shop:1.2").unwrap();
    let file = ServiceSpec::parse(
        "shop-prod.yml",
        r#"
name: shop-prod
image: shop:1.2
count: 4
port: 3000
network: outbound
env: {LOG: info, MODE: prod}
secrets: {DB_PASSWORD: prod-db}
health_check: {path: /health}
listener: {addr: "127.0.0.1:8081"}
deployment:
  strategy: {type: canary, percent: 10, bake: 30s}
"#,
    )
    .unwrap();
    assert_eq!(made, file);

    // The environment's variables win over the service's, whichever map they are in.
    let dev = &p.environments[0];
    let mut dev = dev.clone();
    dev.service.env.insert("TOKEN".into(), "plain".into());
    dev.secrets.insert("TOKEN".into(), "token-secret".into());
    let made = dev.service_spec("shop", "shop:1").unwrap();
    assert_eq!(made.env.get("TOKEN"), None);
    assert_eq!(made.secrets["TOKEN"], "token-secret");
    assert_eq!(made.env["LOG"], "debug");
}

#[test]
fn the_example_hello_pipeline_parses() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/hello/hoist.yml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let p = PipelineSpec::parse("examples/hello/hoist.yml", &text).unwrap();
    assert_eq!(p.app.as_str(), "hello");
    let names: Vec<&str> = p.environments.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["dev", "prod"]);
    assert_eq!(p.environments[1].approval, Approval::Manual);
    let dev = p.environments[0]
        .service_spec("hello", "hello:dev")
        .unwrap();
    let prod = p.environments[1]
        .service_spec("hello", "hello:dev")
        .unwrap();
    assert_eq!(dev.listener.addr.to_string(), "127.0.0.1:8080");
    assert_eq!(prod.listener.addr.to_string(), "127.0.0.1:8081");
    assert_eq!(prod.port, Some(Port(8080)));
    assert!(matches!(prod.deployment.strategy, Strategy::Canary { .. }));
}

/// The text of every error of `text`.
fn errors(text: &str) -> Vec<String> {
    let e = PipelineSpec::parse("hoist.yml", text).unwrap_err();
    // One error a line, in the order of the file.
    assert_eq!(e.to_string().lines().count(), e.errors().len());
    e.errors().iter().map(|e| e.to_string()).collect()
}

const HEAD: &str = "app: web\nenvironments:\n";

#[test]
fn an_unknown_field_suggests_the_close_one() {
    let text = format!(
        "{HEAD}  - name: dev\n    service: {{listener: {{addr: 127.0.0.1:1}}}}\n  - name: prod\n    aproval: manual\n"
    );
    assert_eq!(
        errors(&text),
        ["hoist.yml:6:5: environments[1].aproval: unknown field, did you mean `approval`?"]
    );
    let text = "app: web\nenviroments: []\n";
    assert_eq!(
        errors(text),
        ["hoist.yml:2:1: enviroments: unknown field, did you mean `environments`?"]
    );
    // Nothing close: the known fields are listed.
    let e = errors("app: web\ncolour: blue\n");
    assert!(
        e[0].starts_with("hoist.yml:2:1: colour: unknown field, expected one of `app`, `build`"),
        "{e:?}"
    );
    // Values too.
    let e = errors(&format!("{HEAD}  - name: dev\n    approval: manul\n"));
    assert_eq!(
        e,
        ["hoist.yml:4:5: environments[0].approval: unknown value `manul`, did you mean `manual`?"]
    );
}

#[test]
fn a_bad_strategy_or_duration_is_reported_at_its_value() {
    let listener = "    service: {listener: {addr: 127.0.0.1:1}}\n";
    let e = errors(&format!(
        "{HEAD}  - name: dev\n{listener}    strategy: canary:10%\n"
    ));
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with(
            "hoist.yml:5:5: environments[0].strategy: strategy \"canary:10%\": wrong number of parts"
        ),
        "{e:?}"
    );
    let e = errors(&format!(
        "{HEAD}  - name: dev\n{listener}    strategy:\n      type: canary\n      percent: 10\n      bake: soon\n"
    ));
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("hoist.yml:8:7: environments[0].strategy.bake: invalid duration \"soon\""),
        "{e:?}"
    );
    let e = errors(&format!(
        "{HEAD}  - name: dev\n{listener}    timeout: 5 parsecs\n"
    ));
    assert!(
        e[0].starts_with("hoist.yml:5:5: environments[0].timeout: invalid duration \"5 parsecs\""),
        "{e:?}"
    );
    let e = errors(&format!(
        "{HEAD}  - name: dev\n    service:\n      listener:\n        addr: localhost\n"
    ));
    assert_eq!(
        e,
        ["hoist.yml:6:9: environments[0].service.listener.addr: invalid socket address syntax"]
    );
    let e = errors(&format!(
        "{HEAD}  - name: dev\n    service:\n      cuont: 2\n"
    ));
    assert_eq!(
        e,
        ["hoist.yml:5:7: environments[0].service.cuont: unknown field, did you mean `count`?"]
    );
    let e = errors(
        "app: web\ntest:\n  - name: unit\n    run: make\n    timeout: forever\nenvironments: []\n",
    );
    assert!(
        e[0].starts_with("hoist.yml:5:5: test[0].timeout: invalid duration \"forever\""),
        "{e:?}"
    );
}

#[test]
fn duplicate_environment_names_are_both_reported() {
    let text = format!(
        "{HEAD}  - name: dev\n    service: {{listener: {{addr: 127.0.0.1:1}}}}\n  - name: dev\n    service: {{listener: {{addr: 127.0.0.1:2}}}}\n"
    );
    assert_eq!(
        errors(&text),
        [
            "hoist.yml:3:5: environments[0].name: environment name `dev` is also used by environments[1].name (line 5)",
            "hoist.yml:5:5: environments[1].name: environment name `dev` is also used by environments[0].name (line 3)",
        ]
    );
}

#[test]
fn environments_are_required() {
    assert_eq!(
        errors("app: web\n"),
        ["hoist.yml:1:1: environments: at least one environment is required"]
    );
    assert_eq!(
        errors("app: web\nenvironments: []\n"),
        ["hoist.yml:2:1: environments: at least one environment is required"]
    );
}

#[test]
fn two_environments_may_not_share_a_listener() {
    let text = format!(
        "{HEAD}  - name: dev\n    service:\n      listener: {{addr: 127.0.0.1:8080, path: /api}}\n  - name: prod\n    service:\n      listener:\n        addr: 127.0.0.1:8080\n        path: /api\n"
    );
    assert_eq!(
        errors(&text),
        ["hoist.yml:8:7: environments[1].service.listener: the same listener as environment dev (127.0.0.1:8080, host any, path /api): both would serve the same requests"]
    );
    // Another host or path is another route on the same address: fine.
    let ok = text.replace("path: /api\n", "path: /v2\n");
    PipelineSpec::parse("hoist.yml", &ok).unwrap();
}

#[test]
fn an_ecs_environment_names_its_service_and_keeps_to_what_ecs_takes() {
    let text = format!(
        "{HEAD}  - name: staging\n    target: ecs\n    ecs:\n      region: eu-west-1\n      cluster: hello\n      service: hello-staging\n      container: hello\n  - name: prod\n    target: ecs\n    strategy: canary:10%:5m\n    timeout: 20m\n    ecs:\n      cluster: hello\n      service: hello-prod\n      wait: false\n      codedeploy:\n        application: hello\n        deployment_group: hello-prod\n        hooks: {{AfterAllowTestTraffic: hello-smoke}}\n"
    );
    let p = PipelineSpec::parse("hoist.yml", &text).unwrap();
    let staging = p.environments[0].ecs.as_ref().unwrap();
    assert_eq!(
        (
            staging.region.as_deref(),
            staging.cluster.as_str(),
            staging.service.as_str()
        ),
        (Some("eu-west-1"), "hello", "hello-staging")
    );
    assert!(staging.wait && staging.codedeploy.is_none());
    let prod = p.environments[1].ecs.as_ref().unwrap();
    assert!(!prod.wait);
    let cd = prod.codedeploy.as_ref().unwrap();
    assert_eq!(cd.deployment_group, "hello-prod");
    assert_eq!(cd.hooks["AfterAllowTestTraffic"], "hello-smoke");

    assert_eq!(
        errors(&format!("{HEAD}  - name: prod\n    target: ecs\n")),
        ["hoist.yml:3:5: environments[0].ecs: required for target ecs: cluster and service (and region, container, codedeploy)"]
    );
    // What belongs to the task definition, a shift ECS alone cannot do, a hook
    // CodeDeploy does not have, and ECS settings on a local environment.
    let bad = format!(
        "{HEAD}  - name: staging\n    target: ecs\n    strategy: canary:10%:5m\n    env: {{A: b}}\n    service:\n      count: 3\n    ecs:\n      cluster: hello\n      service: hello-staging\n  - name: prod\n    target: ecs\n    ecs:\n      cluster: hello\n      service: hello-prod\n      codedeploy:\n        application: hello\n        deployment_group: hello-prod\n        hooks: {{BeforeTraffic: f}}\n  - name: dev\n    service:\n      listener: {{addr: 127.0.0.1:8080}}\n    ecs: {{cluster: c, service: s}}\n"
    );
    assert_eq!(
        errors(&bad),
        [
            "hoist.yml:5:5: environments[0].strategy: blue-green, canary and linear on ECS go through CodeDeploy: add ecs.codedeploy (application, deployment_group)",
            "hoist.yml:6:5: environments[0].env: not used by an ECS environment: set it in the task definition",
            "hoist.yml:7:5: environments[0].service: an ECS service's settings live in its task definition and service (see deploy/terraform); hoist sets only the image",
            "hoist.yml:20:17: environments[1].ecs.codedeploy.hooks.BeforeTraffic: not an ECS lifecycle hook (BeforeInstall, AfterInstall, AfterAllowTestTraffic, BeforeAllowTraffic, AfterAllowTraffic)",
            "hoist.yml:24:5: environments[2].ecs: ECS settings need `target: ecs` (this environment runs on hoist's runtime)",
        ]
    );
}

#[test]
fn a_local_environment_needs_a_listener() {
    assert_eq!(
        errors(&format!("{HEAD}  - name: dev\n    service:\n      count: 2\n")),
        ["hoist.yml:4:5: environments[0].service.listener: required: where the environment is served (addr, and optionally host and path)"]
    );
}

#[test]
fn every_problem_after_parsing_is_reported_together() {
    let text = "\
app: web
test:
  - name: unit
    run: []
environments:
  - name: dev
    service:
      listener: {addr: 127.0.0.1:8080}
      health_check: {path: health}
  - name: prod
    target: ecs
    ecs: {cluster: web, service: web}
    service: {count: 2}
  - name: dev
    strategy: linear:0%:10s
    service:
      listener: {addr: 127.0.0.1:8080}
notifications:
  webhooks:
    - url: ftp://example.com/
";
    assert_eq!(
        errors(text),
        [
            "hoist.yml:4:5: test[0].run: an empty command",
            "hoist.yml:6:5: environments[0].name: environment name `dev` is also used by environments[2].name (line 14)",
            "hoist.yml:9:22: environments[0].service.health_check.path: \"health\" must start with '/'",
            "hoist.yml:13:5: environments[1].service: an ECS service's settings live in its task definition and service (see deploy/terraform); hoist sets only the image",
            "hoist.yml:14:5: environments[2].name: environment name `dev` is also used by environments[0].name (line 6)",
            "hoist.yml:15:5: environments[2].strategy.percent: a linear step of 0% never finishes",
            "hoist.yml:17:7: environments[2].service.listener: the same listener as environment dev (127.0.0.1:8080, host any, path /): both would serve the same requests",
            "hoist.yml:20:7: notifications.webhooks[0].url: \"ftp://example.com/\" is not an http:// or https:// URL",
        ]
    );
}

#[test]
fn a_service_name_too_long_for_the_app_is_reported_at_the_environment_name() {
    let app = "a".repeat(60);
    let text = format!(
        "app: {app}\nenvironments:\n  - name: production\n    service: {{listener: {{addr: 127.0.0.1:1}}}}\n"
    );
    let e = errors(&text);
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with(
            "hoist.yml:3:5: environments[0].name: the service name invalid service name"
        ),
        "{e:?}"
    );
}

#[test]
fn a_cache_is_keyed_by_files_inside_the_repository() {
    let ok = "app: web\ncache:\n  key: [Cargo.lock, web/package-lock.json]\n  keep: 2\nenvironments:\n  - name: dev\n    service: {listener: {addr: 127.0.0.1:1}}\n";
    let spec = PipelineSpec::parse("hoist.yml", ok).unwrap();
    assert_eq!(
        spec.cache.key,
        [
            PathBuf::from("Cargo.lock"),
            PathBuf::from("web/package-lock.json")
        ]
    );
    assert_eq!(spec.cache.keep, 2);
    let plain = PipelineSpec::parse(
        "hoist.yml",
        "app: web\nenvironments:\n  - name: dev\n    service: {listener: {addr: 127.0.0.1:1}}\n",
    )
    .unwrap();
    assert!(plain.cache.key.is_empty());
    assert_eq!(plain.cache.keep, 3);

    let bad = "app: web\ncache:\n  key: [/etc/passwd, ../x]\n  keep: 0\nenvironments:\n  - name: dev\n    service: {listener: {addr: 127.0.0.1:1}}\n";
    let errs = errors(bad);
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(
        errs[0].starts_with("hoist.yml:3:") && errs[0].contains("cache.key[0]"),
        "{errs:?}"
    );
    assert!(errs[1].contains("cache.key[1]"), "{errs:?}");
    assert!(
        errs[2].starts_with("hoist.yml:4:") && errs[2].contains("cache.keep"),
        "{errs:?}"
    );
}

#[test]
fn push_names_a_registry_host_and_namespace() {
    let ok = format!(
        "app: web\npush:\n  registry: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/team\n  create_repository: true\n{}",
        &HEAD["app: web\n".len()..]
    );
    let ok = format!("{ok}  - name: dev\n    service:\n      listener: {{addr: 127.0.0.1:8080}}\n");
    let p = PipelineSpec::parse("hoist.yml", &ok).unwrap();
    assert_eq!(
        p.push.registry.as_deref(),
        Some("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team")
    );
    assert!(p.push.create_repository);
    let bad = ok.replace(
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team",
        "https://registry.example.com",
    );
    assert_eq!(
        errors(&bad),
        ["hoist.yml:3:3: push.registry: \"https://registry.example.com\": expected host[:port][/namespace], such as 123456789012.dkr.ecr.eu-west-1.amazonaws.com"]
    );
}

#[test]
fn the_aws_example_is_valid_and_goes_to_ecr_and_ecs() {
    let path = "../../examples/hello/hoist.aws.yml";
    let text = std::fs::read_to_string(path).unwrap();
    let p = PipelineSpec::parse(path, &text).unwrap();
    assert!(p.push.registry.as_deref().unwrap().contains(".dkr.ecr."));
    assert!(p
        .environments
        .iter()
        .all(|e| e.target == hoist_pipeline_spec::hoistfile::Target::Ecs));
    let prod = p.environments[1].ecs.as_ref().unwrap();
    assert_eq!(
        prod.codedeploy.as_ref().unwrap().deployment_group,
        "hello-prod"
    );
}
