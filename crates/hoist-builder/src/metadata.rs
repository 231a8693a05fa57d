//! Config-only instructions: what `ENV`, `CMD`, `LABEL` and the like do to an
//! image's container config. The builder applies them as Dockerfile steps, and
//! `hoist image import --change` (as `docker import --change`) applies them to an
//! imported image.
//!
//! Words are expanded with the variables the caller passes (the stage's `ARG`s and
//! `ENV`, or the config's environment for `--change`).

use hoist_dockerfile::instruction::{CommandLine, Healthcheck, Instruction};
use hoist_dockerfile::{parser, Lexer, VarLookup};
use hoist_oci::config::{ContainerConfig, Empty, HealthConfig};

/// A `--change` that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--change #{number} {change:?}: {message}")]
pub struct ChangeError {
    /// 1-based position among the changes.
    pub number: usize,
    /// The change as given.
    pub change: String,
    /// What is wrong.
    pub message: String,
}

/// Apply each `--change` instruction to `config`, in order.
pub fn apply_changes(changes: &[String], config: &mut ContainerConfig) -> Result<(), ChangeError> {
    let mut cmd_set = false;
    for (i, change) in changes.iter().enumerate() {
        apply_change(change, config, &mut cmd_set).map_err(|message| ChangeError {
            number: i + 1,
            change: change.clone(),
            message,
        })?;
    }
    Ok(())
}

/// The config's environment as variables for expansion.
pub fn env_pairs(config: &ContainerConfig) -> Vec<(String, String)> {
    config
        .env
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (kv.clone(), String::new()),
        })
        .collect()
}

/// Set `key` in the config's environment, replacing an earlier value in place.
pub fn set_env(config: &mut ContainerConfig, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match config
        .env
        .iter_mut()
        .find(|kv| kv.split_once('=').map_or(kv.as_str(), |(k, _)| k) == key)
    {
        Some(existing) => *existing = entry,
        None => config.env.push(entry),
    }
}

/// A command as the config stores it: exec form as is, shell form through the
/// image's shell (`/bin/sh -c` by default).
pub(crate) fn command(config: &ContainerConfig, c: &CommandLine) -> Vec<String> {
    match c {
        CommandLine::Exec(args) => args.clone(),
        CommandLine::Shell(s) => {
            let mut argv = config
                .shell
                .clone()
                .unwrap_or_else(|| vec!["/bin/sh".to_owned(), "-c".to_owned()]);
            argv.push(s.clone());
            argv
        }
    }
}

fn nanos(d: Option<std::time::Duration>) -> u64 {
    d.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn apply_change(
    change: &str,
    config: &mut ContainerConfig,
    cmd_set: &mut bool,
) -> Result<(), String> {
    let ast = parser::parse(change).map_err(|e| e.to_string())?;
    let [node] = ast.nodes.as_slice() else {
        return Err("give exactly one instruction".to_owned());
    };
    let instruction = Instruction::from_node(node, ast.escape).map_err(|e| e.to_string())?;
    let lexer = Lexer::new(ast.escape);
    let env = env_pairs(config);
    if apply_metadata(&instruction, &lexer, &env, config, cmd_set)? {
        Ok(())
    } else {
        Err(format!(
            "{} cannot be applied to an existing image (allowed: CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, SHELL, STOPSIGNAL, USER, VOLUME, WORKDIR)",
            instruction.keyword()
        ))
    }
}

/// Apply `instruction` to `config` if it only changes the config; `Ok(false)` for
/// anything else (`RUN`, `COPY`, `ARG`, `FROM`, `MAINTAINER`...). `vars` expands
/// words. `cmd_set` says whether a `CMD` came earlier in the same stage: an
/// `ENTRYPOINT` drops only an inherited `CMD`, as in Docker.
pub fn apply_metadata(
    instruction: &Instruction,
    lexer: &Lexer,
    vars: &dyn VarLookup,
    config: &mut ContainerConfig,
    cmd_set: &mut bool,
) -> Result<bool, String> {
    let word = |w: &str| lexer.process_word(w, vars).map_err(|e| e.to_string());
    match instruction {
        Instruction::Cmd(c) => {
            config.cmd = Some(command(config, &c.command));
            *cmd_set = true;
        }
        Instruction::Entrypoint(e) => {
            config.entrypoint = Some(command(config, &e.command));
            // As in Docker: ENTRYPOINT drops a CMD inherited from before, not one set
            // earlier in the same sequence.
            if !*cmd_set {
                config.cmd = None;
            }
        }
        Instruction::Env(e) => {
            for kv in &e.vars {
                let value = word(&kv.value)?;
                let key = word(&kv.key)?;
                set_env(config, &key, &value);
            }
        }
        Instruction::Label(l) => {
            for kv in &l.labels {
                config.labels.insert(word(&kv.key)?, word(&kv.value)?);
            }
        }
        Instruction::Expose(e) => {
            for p in &e.ports {
                for spec in lexer.process_words(p, vars).map_err(|e| e.to_string())? {
                    let port = hoist_dockerfile::instruction::ExposedPort::parse(&spec)?;
                    let proto = format!("{:?}", port.protocol).to_ascii_lowercase();
                    for n in port.start..=port.end {
                        config
                            .exposed_ports
                            .insert(format!("{n}/{proto}"), Empty {});
                    }
                }
            }
        }
        Instruction::User(u) => config.user = word(&u.user)?,
        Instruction::Workdir(w) => {
            let dir = word(&w.path)?;
            config.working_dir = if dir.starts_with('/') || config.working_dir.is_empty() {
                if dir.starts_with('/') {
                    dir
                } else {
                    format!("/{dir}")
                }
            } else {
                format!("{}/{dir}", config.working_dir.trim_end_matches('/'))
            };
        }
        Instruction::Volume(v) => {
            for p in &v.paths {
                config.volumes.insert(word(p)?, Empty {});
            }
        }
        Instruction::StopSignal(s) => config.stop_signal = word(&s.signal)?,
        Instruction::Shell(s) => config.shell = Some(s.shell.clone()),
        Instruction::Onbuild(o) => config
            .on_build
            .get_or_insert_with(Vec::new)
            .push(o.expression.clone()),
        Instruction::Healthcheck(h) => {
            config.healthcheck = Some(match &h.check {
                Healthcheck::None => HealthConfig {
                    test: vec!["NONE".to_owned()],
                    ..Default::default()
                },
                Healthcheck::Cmd(c) => HealthConfig {
                    test: match &c.test {
                        CommandLine::Exec(args) => std::iter::once("CMD".to_owned())
                            .chain(args.iter().cloned())
                            .collect(),
                        CommandLine::Shell(s) => vec!["CMD-SHELL".to_owned(), s.clone()],
                    },
                    interval: nanos(c.interval),
                    timeout: nanos(c.timeout),
                    start_period: nanos(c.start_period),
                    start_interval: nanos(c.start_interval),
                    retries: c.retries.map_or(0, u64::from),
                },
            })
        }
        _ => return Ok(false),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(changes: &[&str]) -> ContainerConfig {
        let mut c = ContainerConfig::default();
        let changes: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
        apply_changes(&changes, &mut c).unwrap();
        c
    }

    #[test]
    fn docker_import_changes() {
        let c = applied(&[
            "ENV PATH=/usr/bin:/bin HOME=/root",
            "ENV GREETING=\"hello $HOME\"",
            "CMD echo $GREETING",
            "EXPOSE 8080 53/udp 9000-9001",
            "LABEL org.example.team=platform",
            "WORKDIR /srv",
            "WORKDIR app",
            "USER 1000:1000",
            "VOLUME [\"/data\"]",
            "STOPSIGNAL SIGTERM",
            "HEALTHCHECK --interval=5s --retries=2 CMD wget -q localhost:8080/health",
        ]);
        assert_eq!(
            c.env,
            ["PATH=/usr/bin:/bin", "HOME=/root", "GREETING=hello /root"]
        );
        assert_eq!(
            c.cmd.as_deref().unwrap(),
            ["/bin/sh", "-c", "echo $GREETING"]
        );
        let ports: Vec<&str> = c.exposed_ports.keys().map(String::as_str).collect();
        assert_eq!(ports, ["53/udp", "8080/tcp", "9000/tcp", "9001/tcp"]);
        assert_eq!(c.labels["org.example.team"], "platform");
        assert_eq!(c.working_dir, "/srv/app");
        assert_eq!(c.user, "1000:1000");
        assert!(c.volumes.contains_key("/data"));
        assert_eq!(c.stop_signal, "SIGTERM");
        let h = c.healthcheck.unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "wget -q localhost:8080/health"]);
        assert_eq!((h.interval, h.retries), (5_000_000_000, 2));
    }

    #[test]
    fn entrypoint_drops_only_an_inherited_cmd() {
        let c = applied(&["CMD [\"sh\"]", "ENTRYPOINT [\"/bin/app\", \"--serve\"]"]);
        assert_eq!(c.entrypoint.as_deref().unwrap(), ["/bin/app", "--serve"]);
        assert_eq!(c.cmd.as_deref().unwrap(), ["sh"]);
        let mut inherited = ContainerConfig {
            cmd: Some(vec!["old".to_owned()]),
            ..Default::default()
        };
        apply_changes(&["ENTRYPOINT [\"/bin/app\"]".to_owned()], &mut inherited).unwrap();
        assert!(inherited.cmd.is_none());
    }

    #[test]
    fn refuses_what_needs_a_build() {
        let mut c = ContainerConfig::default();
        for bad in [
            "RUN echo",
            "COPY a b",
            "FROM x",
            "CMD [\"a\"]\nCMD [\"b\"]",
            "BOGUS x",
        ] {
            let err = apply_changes(&[bad.to_owned()], &mut c)
                .unwrap_err()
                .to_string();
            assert!(err.contains("--change #1"), "{bad}: {err}");
        }
    }
}
