//! The typed instruction model: every instruction, RUN mounts, flags and the
//! errors a person sees.

use std::time::Duration;

use hoist_dockerfile::instruction::{
    CommandLine, Dockerfile, Healthcheck, InlineFile, Instruction, KeyValue, Mount, MountType,
    NetworkMode, SecurityMode, Sharing, Source,
};
use hoist_dockerfile::parser::ParseError;
use hoist_dockerfile::Lexer;

/// The instructions of the only stage of `FROM scratch\n<body>`.
fn body(src: &str) -> Vec<Instruction> {
    let df = Dockerfile::parse(&format!("FROM scratch\n{src}"))
        .unwrap_or_else(|e| panic!("parse failed:\n{e}"));
    df.stages.into_iter().next().expect("stage").instructions
}

fn one(src: &str) -> Instruction {
    body(src).into_iter().next().expect("instruction")
}

/// The errors for `FROM scratch\n<body>` (so the body starts on line 2).
fn errors(src: &str) -> Vec<ParseError> {
    match Dockerfile::parse(&format!("FROM scratch\n{src}")) {
        Ok(df) => panic!("expected an error, got {df:#?}"),
        Err(e) => e.errors,
    }
}

fn error(src: &str) -> ParseError {
    errors(src).into_iter().next().expect("one error")
}

#[test]
fn from_with_platform_and_name() {
    let df =
        Dockerfile::parse("FROM --platform=$BUILDPLATFORM golang:1.22 AS Build\nFROM scratch\n")
            .expect("parse");
    let f = &df.stages[0].from;
    assert_eq!(f.base, "golang:1.22");
    assert_eq!(f.name.as_deref(), Some("build"));
    assert_eq!(f.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!((f.location.start_line, f.location.end_line), (1, 1));
    assert_eq!(df.stages[1].from.name, None);

    let e = Dockerfile::parse("FROM a AS 1abc\n")
        .expect_err("bad name")
        .errors;
    assert_eq!(
        e[0].message,
        "invalid name for build stage: \"1abc\", name can't start with a number or contain symbols"
    );
    let e = Dockerfile::parse("FROM a b\n")
        .expect_err("two args")
        .errors;
    assert_eq!(e[0].message, "FROM requires either one or three arguments");
    assert_eq!((e[0].line, e[0].column), (1, 6));
}

#[test]
fn run_forms_network_security() {
    match one("RUN --network=none --security=insecure apt-get update") {
        Instruction::Run(r) => {
            assert_eq!(r.command, CommandLine::Shell("apt-get update".into()));
            assert_eq!(r.network, Some(NetworkMode::None));
            assert_eq!(r.security, Some(SecurityMode::Insecure));
            assert!(r.mounts.is_empty());
        }
        other => panic!("{other:?}"),
    }
    match one("RUN [\"/bin/echo\", \"hi\"]") {
        Instruction::Run(r) => {
            assert_eq!(
                r.command,
                CommandLine::Exec(vec!["/bin/echo".into(), "hi".into()])
            );
            assert_eq!((r.network, r.security), (None, None));
        }
        other => panic!("{other:?}"),
    }
    match one("RUN <<EOF\necho $HOME\nEOF") {
        Instruction::Run(r) => {
            assert_eq!(r.command, CommandLine::Shell("<<EOF".into()));
            assert_eq!(r.heredocs.len(), 1);
            assert_eq!(r.heredocs[0].content, "echo $HOME\n");
            assert_eq!((r.location.start_line, r.location.end_line), (2, 4));
        }
        other => panic!("{other:?}"),
    }
    let e = error("RUN --network=bridge true");
    assert_eq!(e.message, "invalid network mode \"bridge\"");
    assert_eq!(e.expected.as_deref(), Some("one of default, none, host"));
    assert_eq!((e.line, e.column), (2, 5));
    assert_eq!(
        error("RUN --security=root true").message,
        "security \"root\" is not valid"
    );
    assert_eq!(
        error("RUN --network=none").message,
        "RUN requires a command to run"
    );
}

#[test]
fn run_mounts_fully_parsed() {
    let ins = one(concat!(
        "RUN --mount=type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0755,uid=1000,gid=1000 \\\n",
        "    --mount=type=secret,id=npmrc,dst=/root/.npmrc,required \\\n",
        "    --mount=type=bind,from=build,source=/out,target=/in,rw \\\n",
        "    --mount=type=tmpfs,destination=/tmp,size=64m \\\n",
        "    --mount=type=ssh,required=true \\\n",
        "    --mount=target=/ctx,readonly=false \\\n",
        "    --mount=type=secret,id=tok,env=TOKEN \\\n",
        "    make"
    ));
    let Instruction::Run(r) = ins else {
        panic!("{ins:?}")
    };
    let m: Vec<Mount> = r
        .mounts
        .iter()
        .map(|m| m.mount.clone().expect("no variables"))
        .collect();
    assert_eq!(m.len(), 7);
    assert_eq!(m[0].kind, MountType::Cache);
    assert_eq!(m[0].target.as_deref(), Some("/root/.cache"));
    assert_eq!(m[0].id.as_deref(), Some("pip"));
    assert_eq!(m[0].sharing, Some(Sharing::Locked));
    assert_eq!(
        (m[0].mode, m[0].uid, m[0].gid),
        (Some(0o755), Some(1000), Some(1000))
    );
    assert!(!m[0].readonly, "cache mounts are writable by default");

    assert_eq!(m[1].kind, MountType::Secret);
    assert_eq!(m[1].target.as_deref(), Some("/root/.npmrc"));
    assert!(m[1].required && m[1].readonly);

    assert_eq!(m[2].kind, MountType::Bind);
    assert_eq!(m[2].from.as_deref(), Some("build"));
    assert_eq!(m[2].source.as_deref(), Some("/out"));
    assert!(!m[2].readonly);

    assert_eq!(m[3].kind, MountType::Tmpfs);
    assert_eq!(m[3].target.as_deref(), Some("/tmp"));
    assert_eq!(m[3].size, Some(64 << 20));

    assert_eq!(m[4].kind, MountType::Ssh);
    assert!(m[4].required);

    assert_eq!(m[5].kind, MountType::Bind);
    assert!(!m[5].readonly);

    assert_eq!(m[6].env.as_deref(), Some("TOKEN"));
    assert_eq!(r.command, CommandLine::Shell("make".into()));
    assert_eq!(
        r.mounts[1].spec,
        "type=secret,id=npmrc,dst=/root/.npmrc,required"
    );
}

#[test]
fn run_mount_with_variables_is_resolved_later() {
    let Instruction::Run(r) = one("RUN --mount=type=$KIND,target=${DIR:-/c},\"sharing=${S}\" true")
    else {
        panic!()
    };
    assert_eq!(r.mounts[0].mount, None);
    let env = vec![
        ("KIND".to_string(), "cache".to_string()),
        ("S".to_string(), "private".to_string()),
    ];
    let m = r.mounts[0]
        .resolve(&Lexer::new('\\'), &env)
        .expect("resolves");
    assert_eq!(m.kind, MountType::Cache);
    assert_eq!(m.target.as_deref(), Some("/c"));
    assert_eq!(m.sharing, Some(Sharing::Private));
    let bad = vec![("KIND".to_string(), "nfs".to_string())];
    let e = r.mounts[0]
        .resolve(&Lexer::new('\\'), &bad)
        .expect_err("bad type");
    assert_eq!(e.message, "unsupported mount type \"nfs\"");
}

#[test]
fn run_mount_errors() {
    let cases = [
        ("type=nfs,target=/x", "invalid --mount: unsupported mount type \"nfs\""),
        ("type=cach,target=/x", "invalid --mount: unsupported mount type \"cach\" (did you mean cache?)"),
        ("type=cache,target=/x,sharing=all", "invalid --mount: unsupported sharing value \"all\""),
        ("type=bind,target=/x,sharing=locked", "invalid --mount: invalid cache sharing set for bind mount"),
        ("type=bind,target=/x,mode=0600", "invalid --mount: mode not allowed for \"bind\" type mounts"),
        ("type=cache,target=/x,mode=9", "invalid --mount: invalid value 9 for mode"),
        ("type=cache,target=/x,uid=-1", "invalid --mount: invalid value -1 for uid"),
        ("type=tmpfs,target=/x,size=lots", "invalid --mount: invalid value for size: lots"),
        ("type=cache,target=/x,size=1m", "invalid --mount: unexpected key 'size' for mount type 'cache'"),
        ("type=cache,target=/x,required", "invalid --mount: unexpected key 'required' for mount type 'cache'"),
        ("type=bind,target=/x,ro=maybe", "invalid --mount: invalid value for ro: maybe"),
        ("type=bind,targt=/x", "invalid --mount: unexpected key 'targt' in 'targt=/x' (did you mean target?)"),
        ("type=bind,/x", "invalid --mount: invalid field '/x' must be a key=value pair"),
        ("type=secret", "invalid --mount: invalid secret mount. one of source, target required"),
        ("type=secret,id=a,src=b", "invalid --mount: both source and id can't be set"),
        ("type=secret,id=a,from=b", "invalid --mount: secret mount should not have a from"),
        ("from=$STAGE,target=/x", "invalid --mount: 'from' doesn't support variable expansion, define alias stage instead"),
        ("type=bind,targ\\\"et=/x", "invalid --mount: failed to parse csv mounts: bare \" in non-quoted-field"),
    ];
    for (spec, msg) in cases {
        let e = error(&format!("RUN --network=none --mount={spec} true"));
        assert_eq!(e.message, msg, "{spec}");
        assert_eq!((e.line, e.column), (2, 20), "{spec}");
    }
    assert_eq!(
        Mount::parse("type=cache,target=/x").map(|m| m.kind),
        Ok(MountType::Cache)
    );
}

#[test]
fn copy_and_add_flags_and_sources() {
    let Instruction::Copy(c) = one(
        "COPY --from=build --chown=app:app --chmod=0644 --link --exclude=*.md --exclude=.git --parents a b/ /dst/",
    ) else {
        panic!()
    };
    assert_eq!(c.from.as_deref(), Some("build"));
    assert_eq!(c.chown.as_deref(), Some("app:app"));
    assert_eq!(c.chmod.as_deref(), Some("0644"));
    assert!(c.link && c.parents);
    assert_eq!(c.excludes, vec!["*.md", ".git"]);
    assert_eq!(
        c.sources,
        vec![Source::Path("a".into()), Source::Path("b/".into())]
    );
    assert_eq!(c.dest, "/dst/");

    let Instruction::Copy(c) = one("COPY [\"a b\", \"/d\"]") else {
        panic!()
    };
    assert_eq!(c.sources, vec![Source::Path("a b".into())]);
    assert!(!c.link);

    let Instruction::Add(a) = one(
        "ADD --checksum=sha256:abc --keep-git-dir=true --unpack=false --link=false https://x/y.tgz /opt/",
    ) else {
        panic!()
    };
    assert_eq!(a.checksum.as_deref(), Some("sha256:abc"));
    assert_eq!(
        (a.keep_git_dir, a.unpack, a.link),
        (Some(true), Some(false), false)
    );
    assert_eq!(a.sources, vec![Source::Path("https://x/y.tgz".into())]);
    let Instruction::Add(a) = one("ADD a /b") else {
        panic!()
    };
    assert_eq!((a.keep_git_dir, a.unpack), (None, None));

    let e = error("COPY --from=$STAGE a /b");
    assert!(e
        .message
        .starts_with("variable expansion is not supported for --from"));
    let e = error("ADD --parents a /b");
    assert_eq!(e.message, "unknown flag: --parents");
    let e = error("COPY onlyone");
    assert_eq!(
        e.message,
        "COPY requires at least two arguments, but only one was provided. Destination could not be determined"
    );
}

#[test]
fn copy_heredoc_sources() {
    let Instruction::Copy(c) =
        one("COPY <<-EOF <<'RAW' notes.txt /dst/\n\thello $USER\nEOF\n$x\nRAW")
    else {
        panic!()
    };
    assert_eq!(
        c.sources,
        vec![
            Source::Inline(InlineFile {
                name: "EOF".into(),
                content: "hello $USER\n".into(),
                expand: true
            }),
            Source::Inline(InlineFile {
                name: "RAW".into(),
                content: "$x\n".into(),
                expand: false
            }),
            Source::Path("notes.txt".into()),
        ]
    );
    assert_eq!(c.location.end_line, 6);
    assert_eq!(
        error("COPY /foo <<EOF\nEOF").message,
        "COPY cannot accept a heredoc as a destination"
    );
}

#[test]
fn arg_env_label() {
    let Instruction::Arg(a) = one("ARG A B=2 C=\"x y\" D=") else {
        panic!()
    };
    let defs: Vec<(&str, Option<&str>)> = a
        .args
        .iter()
        .map(|d| (d.name.as_str(), d.default.as_deref()))
        .collect();
    assert_eq!(
        defs,
        vec![
            ("A", None),
            ("B", Some("2")),
            ("C", Some("\"x y\"")),
            ("D", Some(""))
        ]
    );
    assert_eq!(error("ARG =x").message, "ARG names can not be blank");

    let Instruction::Env(e) = one("ENV A=1 B=\"two words\"") else {
        panic!()
    };
    assert_eq!(
        e.vars,
        vec![
            KeyValue {
                key: "A".into(),
                value: "1".into(),
                legacy: false
            },
            KeyValue {
                key: "B".into(),
                value: "\"two words\"".into(),
                legacy: false
            },
        ]
    );
    let Instruction::Env(e) = one("ENV PATH /usr/bin:$PATH") else {
        panic!()
    };
    assert_eq!(
        e.vars,
        vec![KeyValue {
            key: "PATH".into(),
            value: "/usr/bin:$PATH".into(),
            legacy: true
        }]
    );
    let Instruction::Label(l) = one("LABEL org.opencontainers.image.title=hoist version=1") else {
        panic!()
    };
    assert_eq!(l.labels.len(), 2);
    assert_eq!(error("ENV").message, "ENV requires at least one argument");
    assert_eq!(error("LABEL =x").message, "LABEL names can not be blank");
}

#[test]
fn simple_instructions() {
    let ins = body(concat!(
        "EXPOSE 80 53/udp 8000-8010/tcp $PORT\n",
        "USER app:app\n",
        "WORKDIR /srv/$APP\n",
        "VOLUME [\"/data\", \"/logs\"]\n",
        "VOLUME /a /b\n",
        "CMD [\"serve\"]\n",
        "ENTRYPOINT exec app\n",
        "ENTRYPOINT []\n",
        "SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\n",
        "STOPSIGNAL SIGQUIT\n",
        "MAINTAINER someone <a@b.c>\n",
    ));
    let kw: Vec<&str> = ins.iter().map(Instruction::keyword).collect();
    assert_eq!(
        kw,
        [
            "EXPOSE",
            "USER",
            "WORKDIR",
            "VOLUME",
            "VOLUME",
            "CMD",
            "ENTRYPOINT",
            "ENTRYPOINT",
            "SHELL",
            "STOPSIGNAL",
            "MAINTAINER"
        ]
    );
    let Instruction::Expose(e) = &ins[0] else {
        panic!()
    };
    assert_eq!(e.ports, vec!["80", "53/udp", "8000-8010/tcp", "$PORT"]);
    let Instruction::User(u) = &ins[1] else {
        panic!()
    };
    assert_eq!(u.user, "app:app");
    let Instruction::Workdir(w) = &ins[2] else {
        panic!()
    };
    assert_eq!(w.path, "/srv/$APP");
    let Instruction::Volume(v) = &ins[3] else {
        panic!()
    };
    assert_eq!(v.paths, vec!["/data", "/logs"]);
    let Instruction::Volume(v) = &ins[4] else {
        panic!()
    };
    assert_eq!(v.paths, vec!["/a", "/b"]);
    let Instruction::Cmd(c) = &ins[5] else {
        panic!()
    };
    assert_eq!(c.command, CommandLine::Exec(vec!["serve".into()]));
    let Instruction::Entrypoint(e) = &ins[6] else {
        panic!()
    };
    assert_eq!(e.command, CommandLine::Shell("exec app".into()));
    let Instruction::Entrypoint(e) = &ins[7] else {
        panic!()
    };
    assert_eq!(e.command, CommandLine::Exec(vec![]));
    let Instruction::Shell(s) = &ins[8] else {
        panic!()
    };
    assert_eq!(s.shell, vec!["/bin/bash", "-o", "pipefail", "-c"]);
    let Instruction::StopSignal(s) = &ins[9] else {
        panic!()
    };
    assert_eq!(s.signal, "SIGQUIT");
    let Instruction::Maintainer(m) = &ins[10] else {
        panic!()
    };
    assert_eq!(m.name, "someone <a@b.c>");
    assert_eq!(ins[10].location().start_line, 12);

    assert_eq!(
        error("EXPOSE 80/http").message,
        "invalid protocol \"http\" in port \"80/http\""
    );
    assert_eq!(
        error("EXPOSE 99999").message,
        "invalid port \"99999\" in \"99999\""
    );
    assert_eq!(
        error("SHELL /bin/sh -c").message,
        "SHELL requires the arguments to be in JSON form"
    );
    assert_eq!(
        error("VOLUME [\"\"]").message,
        "VOLUME specified can not be an empty string"
    );
    for kw in ["USER", "WORKDIR", "STOPSIGNAL", "MAINTAINER"] {
        assert_eq!(
            error(kw).message,
            format!("{kw} requires exactly one argument")
        );
    }
    for kw in ["EXPOSE", "VOLUME", "ONBUILD", "HEALTHCHECK", "LABEL"] {
        assert_eq!(
            error(kw).message,
            format!("{kw} requires at least one argument")
        );
    }
}

#[test]
fn healthcheck_cmd_and_none() {
    let Instruction::Healthcheck(h) =
        one("HEALTHCHECK --interval=1m30s --timeout=3s --start-period=0s --start-interval=500ms --retries=3 \\\n  CMD curl -f http://localhost/ || exit 1")
    else {
        panic!()
    };
    let Healthcheck::Cmd(c) = h.check else {
        panic!()
    };
    assert_eq!(
        c.test,
        CommandLine::Shell("curl -f http://localhost/ || exit 1".into())
    );
    assert_eq!(c.interval, Some(Duration::from_secs(90)));
    assert_eq!(c.timeout, Some(Duration::from_secs(3)));
    assert_eq!(c.start_period, None);
    assert_eq!(c.start_interval, Some(Duration::from_millis(500)));
    assert_eq!(c.retries, Some(3));
    assert_eq!((h.location.start_line, h.location.end_line), (2, 3));

    let Instruction::Healthcheck(h) = one("HEALTHCHECK --timeout=1h CMD [\"/check\"]") else {
        panic!()
    };
    let Healthcheck::Cmd(c) = h.check else {
        panic!()
    };
    assert_eq!(c.test, CommandLine::Exec(vec!["/check".into()]));
    assert_eq!(c.timeout, Some(Duration::from_secs(3600)));

    let Instruction::Healthcheck(h) = one("HEALTHCHECK none") else {
        panic!()
    };
    assert_eq!(h.check, Healthcheck::None);

    assert_eq!(
        error("HEALTHCHECK NONE x").message,
        "HEALTHCHECK NONE takes no arguments"
    );
    assert_eq!(
        error("HEALTHCHECK CMD").message,
        "Missing command after HEALTHCHECK CMD"
    );
    assert_eq!(
        error("HEALTHCHECK CONNECT TCP 7000").message,
        "Unknown type \"CONNECT\" in HEALTHCHECK (try CMD)"
    );
    assert_eq!(
        error("HEALTHCHECK --interval=50ns CMD x").message,
        "Interval \"interval\" cannot be less than 1ms"
    );
    assert_eq!(
        error("HEALTHCHECK --interval=5 CMD x").message,
        "time: missing unit in duration \"5\""
    );
    assert_eq!(
        error("HEALTHCHECK --retries=-1 CMD x").message,
        "--retries cannot be negative (-1)"
    );
    let e = error("HEALTHCHECK --timeout=3s --intervl=5s CMD x");
    assert_eq!(
        e.message,
        "unknown flag: --intervl (did you mean --interval?)"
    );
    assert_eq!((e.line, e.column), (2, 26));
}

#[test]
fn onbuild_nesting() {
    let Instruction::Onbuild(o) = one("ONBUILD COPY --chown=app . /app") else {
        panic!()
    };
    let Instruction::Copy(c) = *o.trigger else {
        panic!()
    };
    assert_eq!(c.chown.as_deref(), Some("app"));
    assert_eq!(o.expression, "COPY --chown=app . /app");

    let Instruction::Onbuild(o) = one("ONBUILD RUN <<EOF\necho hi\nEOF") else {
        panic!()
    };
    assert_eq!(o.expression, "RUN <<EOF\necho hi\nEOF");
    assert!(matches!(*o.trigger, Instruction::Run(ref r) if r.heredocs.len() == 1));

    let e = error("ONBUILD ONBUILD RUN x");
    assert_eq!(
        e.message,
        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
    );
    assert_eq!((e.line, e.column), (2, 9));
    assert_eq!(
        error("ONBUILD FROM x").message,
        "FROM isn't allowed as an ONBUILD trigger"
    );
    assert_eq!(
        error("onbuild maintainer x").message,
        "MAINTAINER isn't allowed as an ONBUILD trigger"
    );
    let e = error("ONBUILD RUN --bogus x");
    assert_eq!(e.message, "unknown flag: --bogus");
    assert_eq!((e.line, e.column), (2, 13));
}

#[test]
fn flag_errors_point_at_the_flag() {
    let e = error("COPY --form=build a /b");
    assert_eq!((e.line, e.column), (2, 6));
    assert_eq!(e.message, "unknown flag: --form (did you mean --from?)");
    assert_eq!(
        e.expected.as_deref(),
        Some("one of --chown, --from, --chmod, --link, --exclude, --parents")
    );
    assert_eq!(
        e.clone().with_file("Dockerfile").to_string(),
        "Dockerfile:2:6: unknown flag: --form (did you mean --from?) (expected one of --chown, --from, --chmod, --link, --exclude, --parents)\nCOPY --form=build a /b\n     ^"
    );
    let e = error("COPY a \\\n  b \\\n  /c\nCOPY --link --link a /b");
    assert_eq!((e.line, e.column), (5, 13));
    assert_eq!(e.message, "duplicate flag specified: --link");
    assert_eq!(e.source_line, "COPY --link --link a /b");
    assert_eq!(
        error("COPY --from a /b").message,
        "missing a value on flag: --from"
    );
    assert_eq!(
        error("COPY --link= a /b").message,
        "missing a value on flag: --link"
    );
    assert_eq!(
        error("COPY --link=yes a /b").message,
        "expecting boolean value for flag --link, not: yes"
    );
    assert_eq!(error("WORKDIR --x /a").message, "unknown flag: --x");
    assert_eq!(
        error("WORKDIR --x /a").expected.as_deref(),
        Some("no flags on WORKDIR")
    );
    let e = error("RUN \\\n  --mount=type=cache,target=/a \\\n   --netwrk=none true");
    assert_eq!((e.line, e.column, e.end_line), (4, 4, 4));
    assert_eq!(e.source_line, "   --netwrk=none true");
}

#[test]
fn unknown_instruction_and_all_errors_reported() {
    let e = error("RUM make");
    assert_eq!(e.message, "unknown instruction: RUM (did you mean RUN?)");
    assert_eq!((e.line, e.column), (2, 1));
    let all = errors("RUM a\nCOPY x\nENV A\nWORKDIR\nRUN ok\nFOO");
    let got: Vec<(usize, &str)> = all.iter().map(|e| (e.line, e.message.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (2, "unknown instruction: RUM (did you mean RUN?)"),
            (3, "COPY requires at least two arguments, but only one was provided. Destination could not be determined"),
            (4, "ENV must have two arguments"),
            (5, "WORKDIR requires exactly one argument"),
            (7, "unknown instruction: FOO (did you mean FROM?)"),
        ]
    );
}
