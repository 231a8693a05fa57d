//! Splitting a Dockerfile into global ARGs and stages, resolving FROM lines with
//! meta-ARGs, and stage dependencies.

use std::collections::{BTreeMap, BTreeSet};

use hoist_dockerfile::instruction::{
    Dependency, DependencyKind, DependencyTarget, Dockerfile, Instruction,
};

const MULTI: &str = r#"# syntax=docker/dockerfile:1
ARG GO_VERSION=1.22
ARG BASE=alpine:${ALPINE:-3.19}
ARG ALPINE
ARG UNUSED

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS Build
ARG TARGETOS
RUN go build -o /out/app ./cmd/app

FROM build AS test
RUN go test ./...

FROM $BASE AS runtime
COPY --from=build /out/app /usr/local/bin/app
COPY --from=0 /etc/ssl /etc/ssl
COPY --from=nginx:1.25 /etc/nginx /etc/nginx
RUN --mount=type=bind,from=test,target=/t \
    --mount=type=cache,target=/c,id=$CACHE_ID true
ENTRYPOINT ["app"]
"#;

fn df() -> Dockerfile {
    Dockerfile::parse(MULTI).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn split_into_meta_args_and_stages() {
    let df = df();
    assert_eq!(
        df.directives.syntax.as_ref().map(|d| d.value.as_str()),
        Some("docker/dockerfile:1")
    );
    let meta: Vec<&str> = df
        .meta_args
        .iter()
        .flat_map(|a| a.args.iter().map(|d| d.name.as_str()))
        .collect();
    assert_eq!(meta, vec!["GO_VERSION", "BASE", "ALPINE", "UNUSED"]);
    let stages: Vec<(usize, Option<&str>, &str, usize)> = df
        .stages
        .iter()
        .map(|s| (s.index, s.name(), s.base(), s.instructions.len()))
        .collect();
    assert_eq!(
        stages,
        vec![
            (0, Some("build"), "golang:${GO_VERSION}", 2),
            (1, Some("test"), "build", 1),
            (2, Some("runtime"), "$BASE", 5),
        ]
    );
    assert_eq!(df.stages[0].platform(), Some("$BUILDPLATFORM"));
    // An ARG inside a stage belongs to the stage.
    assert!(matches!(df.stages[0].instructions[0], Instruction::Arg(_)));
    assert_eq!(df.stage("BUILD").map(|s| s.index), Some(0));
    assert_eq!(df.stage("2").map(|s| s.index), Some(2));
    assert!(df.stage("nope").is_none());
    // Line ranges survive the split.
    let run = df.stages[2].instructions[3].location();
    assert_eq!((run.start_line, run.end_line), (18, 19));
}

#[test]
fn global_args_and_from_resolution() {
    let df = df();
    let predefined = vec![("BUILDPLATFORM".to_string(), "linux/amd64".to_string())];

    // Defaults only.
    let none: BTreeMap<String, String> = BTreeMap::new();
    let scope = df.global_args(&none, &predefined).expect("scope");
    assert_eq!(df.resolve_base(0, &scope).expect("base"), "golang:1.22");
    assert_eq!(df.resolve_base(2, &scope).expect("base"), "alpine:3.19");
    assert_eq!(
        df.resolve_platform(0, &scope).expect("platform").as_deref(),
        Some("linux/amd64")
    );
    assert_eq!(df.resolve_platform(1, &scope).expect("platform"), None);

    // Build args override defaults; a later default sees earlier values only.
    let mut args = BTreeMap::new();
    args.insert("GO_VERSION".to_string(), "1.23".to_string());
    args.insert("ALPINE".to_string(), "3.20".to_string());
    args.insert("NOT_DECLARED".to_string(), "x".to_string());
    let scope = df.global_args(&args, &predefined).expect("scope");
    assert_eq!(df.resolve_base(0, &scope).expect("base"), "golang:1.23");
    // BASE's default was expanded before ALPINE was declared.
    assert_eq!(df.resolve_base(2, &scope).expect("base"), "alpine:3.19");
    assert!(!scope
        .iter()
        .any(|(k, _)| k == "NOT_DECLARED" || k == "UNUSED"));

    let mut args = BTreeMap::new();
    args.insert("BASE".to_string(), "debian:12".to_string());
    let scope = df.global_args(&args, &[]).expect("scope");
    assert_eq!(df.resolve_base(2, &scope).expect("base"), "debian:12");
}

#[test]
fn blank_base_is_an_error() {
    let df = Dockerfile::parse("ARG IMG\nFROM $IMG\n").expect("parse");
    let scope = df.global_args(&BTreeMap::new(), &[]).expect("scope");
    let e = df.resolve_base(0, &scope).expect_err("blank");
    assert_eq!(e.message, "base name ($IMG) should not be blank");
    assert_eq!(e.line, 2);
}

#[test]
fn dependencies_of_each_stage() {
    let df = df();
    let scope = df.global_args(&BTreeMap::new(), &[]).expect("scope");
    let d0 = df.dependencies(0, &scope).expect("deps");
    assert_eq!(
        d0,
        vec![Dependency {
            target: DependencyTarget::Image("golang:1.22".into()),
            kind: DependencyKind::From,
            line: 7
        }]
    );
    let d1 = df.dependencies(1, &scope).expect("deps");
    assert_eq!(d1[0].target, DependencyTarget::Stage(0));
    assert_eq!(d1[0].kind, DependencyKind::From);

    let d2 = df.dependencies(2, &scope).expect("deps");
    let got: Vec<(DependencyTarget, DependencyKind, usize)> =
        d2.into_iter().map(|d| (d.target, d.kind, d.line)).collect();
    assert_eq!(
        got,
        vec![
            (
                DependencyTarget::Image("alpine:3.19".into()),
                DependencyKind::From,
                14
            ),
            (DependencyTarget::Stage(0), DependencyKind::CopyFrom, 15),
            (DependencyTarget::Stage(0), DependencyKind::CopyFrom, 16),
            (
                DependencyTarget::Image("nginx:1.25".into()),
                DependencyKind::CopyFrom,
                17
            ),
            (DependencyTarget::Stage(1), DependencyKind::MountFrom, 18),
        ]
    );
    assert_eq!(
        df.stage_dependencies(2, &scope).expect("deps"),
        BTreeSet::from([0, 1])
    );
}

#[test]
fn references_to_later_stages_are_errors() {
    let df =
        Dockerfile::parse("FROM a AS one\nCOPY --from=two /x /y\nFROM b AS two\n").expect("parse");
    let e = df
        .dependencies(0, &BTreeMap::new())
        .expect_err("forward reference");
    assert_eq!(
        e.message,
        "cannot copy from stage \"two\", it needs to be defined before current stage \"one\""
    );
    assert_eq!(e.line, 2);
    let df = Dockerfile::parse("FROM a\nCOPY --from=0 /x /y\n").expect("parse");
    assert!(df.dependencies(0, &BTreeMap::new()).is_err());
    // FROM a later stage's name is an image, as in BuildKit.
    let df = Dockerfile::parse("FROM later\nFROM b AS later\n").expect("parse");
    assert_eq!(
        df.dependencies(0, &BTreeMap::new()).expect("deps")[0].target,
        DependencyTarget::Image("later".into())
    );
}

#[test]
fn structure_errors_and_warnings() {
    let e = Dockerfile::parse("ARG A\nRUN echo\nFROM a\n")
        .expect_err("no stage")
        .errors;
    assert_eq!(e.len(), 1);
    assert_eq!(
        e[0].message,
        "no build stage in current context: RUN before the first FROM"
    );
    assert_eq!((e[0].line, e[0].column), (2, 1));
    let e = Dockerfile::parse("ARG A=1\n")
        .expect_err("only args")
        .errors;
    assert!(e[0].message.starts_with("no FROM instruction"));
    let e = Dockerfile::parse("# only a comment\n")
        .expect_err("empty")
        .errors;
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].message, "file with no instructions");

    let df = Dockerfile::parse("FROM a AS x\nFROM b AS X\n").expect("parse");
    assert!(df
        .warnings
        .iter()
        .any(|w| w.message.contains("duplicate stage name")));

    // Syntax and typed problems are reported together, in line order.
    let e = Dockerfile::parse("FROM a\nENV X\nCOPY --bogus a b\nCMD [1]\n")
        .expect_err("bad")
        .with_file("Dockerfile");
    let lines: Vec<usize> = e.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![2, 3, 4]);
    assert!(e
        .to_string()
        .starts_with("Dockerfile:2:5: ENV must have two arguments"));
}

#[test]
fn escape_directive_carries_into_the_model() {
    let df =
        Dockerfile::parse("# escape=`\nFROM mcr.microsoft.com/windows `\n  AS win\nRUN dir c:\\\n")
            .expect("parse");
    assert_eq!(df.escape, '`');
    assert_eq!(df.lexer().escape(), '`');
    assert_eq!(df.stages[0].name(), Some("win"));
    let Instruction::Run(r) = &df.stages[0].instructions[0] else {
        panic!()
    };
    assert_eq!(
        r.command,
        hoist_dockerfile::instruction::CommandLine::Shell("dir c:\\".into())
    );
}
