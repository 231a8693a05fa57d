//! `--change` instructions (`docker import --change`, `docker commit --change`):
//! Dockerfile instructions applied to an image's container config.
//!
//! Only the instructions that change the config without running anything are
//! accepted, as in Docker: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL,
//! USER, VOLUME, WORKDIR (plus SHELL and HEALTHCHECK). Words are expanded with the
//! config's environment as a Dockerfile step would. When the builder lands, this
//! logic moves to it and is shared with its config-only steps.

use anyhow::{anyhow, bail, Result};
use hoist_dockerfile::instruction::{CommandLine, Healthcheck, Instruction};
use hoist_dockerfile::{parser, Lexer};
use hoist_oci::config::{ContainerConfig, Empty, HealthConfig};

/// Apply each `--change` instruction to `config`, in order.
pub fn apply_all(changes: &[String], config: &mut ContainerConfig) -> Result<()> {
    let mut cmd_set = false;
    for (i, change) in changes.iter().enumerate() {
        apply(change, config, &mut cmd_set)
            .map_err(|e| anyhow!("--change #{} {change:?}: {e}", i + 1))?;
    }
    Ok(())
}

fn env_pairs(config: &ContainerConfig) -> Vec<(String, String)> {
    config
        .env
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (kv.clone(), String::new()),
        })
        .collect()
}

fn set_env(config: &mut ContainerConfig, key: &str, value: &str) {
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
fn command(config: &ContainerConfig, c: &CommandLine) -> Vec<String> {
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

fn apply(change: &str, config: &mut ContainerConfig, cmd_set: &mut bool) -> Result<()> {
    let ast = parser::parse(change).map_err(|e| anyhow!("{e}"))?;
    let [node] = ast.nodes.as_slice() else {
        bail!("give exactly one instruction");
    };
    let instruction = Instruction::from_node(node, ast.escape).map_err(|e| anyhow!("{e}"))?;
    let lexer = Lexer::new(ast.escape);
    let env = env_pairs(config);
    let word = |w: &str| lexer.process_word(w, &env).map_err(|e| anyhow!("{e}"));
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
                for spec in lexer.process_words(p, &env).map_err(|e| anyhow!("{e}"))? {
                    let port = hoist_dockerfile::instruction::ExposedPort::parse(&spec)
                        .map_err(|e| anyhow!("{e}"))?;
                    let proto = format!("{:?}", port.protocol).to_ascii_lowercase();
                    for n in port.start..=port.end {
                        config.exposed_ports.insert(format!("{n}/{proto}"), Empty {});
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
            config.healthcheck = Some(match h.check {
                Healthcheck::None => HealthConfig {
                    test: vec!["NONE".to_owned()],
                    ..Default::default()
                },
                Healthcheck::Cmd(c) => HealthConfig {
                    test: match &c.test {
                        CommandLine::Exec(args) => std::iter::once("CMD".to_owned()).chain(args.iter().cloned()).collect(),
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
        other => bail!(
            "{} cannot be applied to an existing image (allowed: CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, SHELL, STOPSIGNAL, USER, VOLUME, WORKDIR)",
            other.keyword()
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(changes: &[&str]) -> ContainerConfig {
        let mut c = ContainerConfig::default();
        let changes: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
        apply_all(&changes, &mut c).unwrap();
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
        apply_all(&["ENTRYPOINT [\"/bin/app\"]".to_owned()], &mut inherited).unwrap();
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
            let err = apply_all(&[bad.to_owned()], &mut c)
                .unwrap_err()
                .to_string();
            assert!(err.contains("--change #1"), "{bad}: {err}");
        }
    }
}
