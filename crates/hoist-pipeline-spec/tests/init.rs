//! The starter `hoist.yml`: what a directory tells, and that the file made from it
//! parses.
#![allow(clippy::unwrap_used)]

use std::fs;

use hoist_pipeline_spec::init::{app_name, starter, RepoFacts};
use hoist_pipeline_spec::PipelineSpec;

#[test]
fn facts_come_from_the_top_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("My_Shop.v2");
    fs::create_dir(&dir).unwrap();
    fs::write(
        dir.join("Dockerfile"),
        "FROM golang AS build\nEXPOSE 9999\nHEALTHCHECK CMD true\nFROM scratch\n# EXPOSE 1\nEXPOSE 8080/tcp \\\n  9090\nHEALTHCHECK --interval=5s \\\n  CMD [\"/app\", \"-health\"]\n",
    )
    .unwrap();
    fs::write(
        dir.join("Makefile"),
        "build:\n\tgo build\ntest:\n\tgo test ./...\n",
    )
    .unwrap();
    fs::write(dir.join("package.json"), r#"{"scripts": {"test": "jest"}}"#).unwrap();
    fs::write(dir.join("go.mod"), "module shop\n").unwrap();
    fs::write(dir.join("pyproject.toml"), "[tool.pytest.ini_options]\n").unwrap();
    fs::write(dir.join("buildspec.yml"), "version: 0.2\n").unwrap();
    // Below the top: not looked at.
    fs::create_dir(dir.join("sub")).unwrap();
    fs::write(dir.join("sub/Cargo.toml"), "").unwrap();

    let f = RepoFacts::detect(&dir).unwrap();
    assert_eq!(f.app, "my-shop-v2");
    assert!(f.dockerfile);
    assert_eq!(f.exposed_port, Some(8080));
    assert!(f.healthcheck);
    assert!(f.buildspec);
    assert_eq!(
        f.test_commands,
        [
            "make test",
            "npm test",
            "python3 -m pytest",
            "go test ./..."
        ]
    );

    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let f = RepoFacts::detect(&empty).unwrap();
    assert!(!f.dockerfile && !f.buildspec && !f.healthcheck);
    assert_eq!(f.exposed_port, None);
    assert!(f.test_commands.is_empty());

    let none = tmp.path().join("healthless");
    fs::create_dir(&none).unwrap();
    fs::write(none.join("Dockerfile"), "FROM x\nHEALTHCHECK NONE\n").unwrap();
    fs::write(none.join("Cargo.toml"), "[package]\n").unwrap();
    let f = RepoFacts::detect(&none).unwrap();
    assert!(!f.healthcheck);
    assert_eq!(f.test_commands, ["cargo test"]);
}

#[test]
fn app_names_are_made_valid() {
    assert_eq!(app_name("hello"), "hello");
    assert_eq!(app_name("My App!"), "my-app");
    assert_eq!(app_name("--x--"), "x");
    assert_eq!(app_name("日本"), "app");
    assert_eq!(app_name(&"a".repeat(80)).len(), 40);
}

#[test]
fn the_starter_file_parses_for_every_kind_of_repository() {
    let base = RepoFacts {
        app: "shop".into(),
        dockerfile: true,
        exposed_port: Some(8080),
        healthcheck: true,
        buildspec: false,
        test_commands: vec!["make test".into()],
    };
    let variants = [
        base.clone(),
        RepoFacts {
            dockerfile: false,
            exposed_port: None,
            healthcheck: false,
            test_commands: vec![],
            ..base.clone()
        },
        RepoFacts {
            buildspec: true,
            test_commands: vec![
                "npm test".into(),
                "python3 -m pytest".into(),
                "go test ./...".into(),
                "echo \"quoted: #not a comment\"".into(),
            ],
            ..base.clone()
        },
        RepoFacts {
            app: app_name(&"x".repeat(70)),
            ..base.clone()
        },
    ];
    for facts in &variants {
        let text = starter(facts);
        let p = PipelineSpec::parse("hoist.yml", &text)
            .unwrap_or_else(|e| panic!("{e}\n--- starter:\n{text}"));
        assert_eq!(p.app.as_str(), facts.app);
        let names: Vec<&str> = p.environments.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["dev", "prod"]);
        let commands: Vec<&str> = p.test.iter().map(|s| s.run[0].as_str()).collect();
        assert_eq!(commands, facts.test_commands);
        let dev = p.environments[0].service_spec(&facts.app, "img:1").unwrap();
        let prod = p.environments[1].service_spec(&facts.app, "img:1").unwrap();
        assert_eq!(dev.listener.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(prod.listener.addr.to_string(), "127.0.0.1:8081");
        assert_eq!(
            p.environments[1].approval,
            hoist_pipeline_spec::hoistfile::Approval::Manual
        );
        assert_eq!(
            p.environments[1].strategy,
            Some("canary:10%:30s".parse().unwrap())
        );
        assert_eq!(dev.port.map(|p| p.0), facts.exposed_port);
    }
}
