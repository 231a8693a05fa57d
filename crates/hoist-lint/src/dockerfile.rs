//! Dockerfile rules (`HL-DF-*`), over `hoist-dockerfile`'s typed model.
//!
//! Per-stage rules look at every stage; "runs as root" and "no HEALTHCHECK" look
//! at the final stage (the image that ships), following `FROM <earlier stage>`
//! for what it inherits. Words are not expanded, except base image names, which
//! are expanded with the global ARG defaults; a name still using an unset
//! variable is not judged. ONBUILD triggers are not checked.

use std::collections::BTreeMap;
use std::path::Path;

use hoist_dockerfile::instruction::{
    AddInstruction, CommandLine, Dockerfile, ExposedPort, Instruction, Location, RunInstruction,
    Source, Stage,
};
use hoist_dockerfile::parser::Warning;
use hoist_dockerfile::Lexer;

use crate::rules::*;
use crate::shell::{self, Command};
use crate::{LintError, Raw};

/// Checks a Dockerfile; syntax errors come back as [`LintError::Dockerfile`].
pub(crate) fn check(path: &Path, text: &str) -> Result<(Vec<Raw>, Vec<Warning>), LintError> {
    let df = Dockerfile::parse(text).map_err(|e| LintError::Dockerfile {
        path: path.to_path_buf(),
        errors: e.with_file(&path.display().to_string()),
    })?;
    let lines: Vec<&str> = text.lines().collect();
    let mut c = Checker {
        lines,
        out: Vec::new(),
    };
    c.file(&df);
    Ok((c.out, df.warnings))
}

struct Checker<'a> {
    lines: Vec<&'a str>,
    out: Vec<Raw>,
}

impl Checker<'_> {
    fn flag(&mut self, rule: &'static Rule, line: usize, message: impl Into<String>) {
        self.out.push(Raw::new(rule, line, message));
    }

    /// The first line of `loc` at or after `from` that contains `needle`.
    fn find(&self, loc: &Location, from: usize, needle: &str) -> Option<usize> {
        (from.max(loc.start_line)..=loc.end_line)
            .find(|l| self.lines.get(l - 1).is_some_and(|t| t.contains(needle)))
    }

    fn file(&mut self, df: &Dockerfile) {
        let mut globals = BTreeMap::new();
        for arg in &df.meta_args {
            for def in &arg.args {
                if let Some(d) = &def.default {
                    globals.insert(def.name.clone(), d.clone());
                }
            }
            self.args(
                arg.args.iter().map(|d| (&d.name, &d.default)),
                &arg.location,
            );
        }
        let lexer = Lexer::new(df.escape);
        for stage in &df.stages {
            self.base(df, stage, &lexer, &globals);
            self.stage(stage);
        }
        if let Some(last) = df.stages.last() {
            self.final_stage(df, last);
        }
    }

    /// The stages `stage` builds on, itself first (`FROM <earlier stage>`).
    fn chain<'d>(df: &'d Dockerfile, stage: &'d Stage) -> Vec<&'d Stage> {
        let mut chain = vec![stage];
        let mut cur = stage;
        while let Some(parent) = parent_stage(df, cur) {
            chain.push(parent);
            cur = parent;
        }
        chain
    }

    fn final_stage(&mut self, df: &Dockerfile, last: &Stage) {
        let chain = Self::chain(df, last);
        let from_line = last.from.location.start_line;
        // The effective user: the last USER in this stage or the stages it builds on.
        let user = chain.iter().find_map(|s| {
            s.instructions.iter().rev().find_map(|i| match i {
                Instruction::User(u) => Some(u),
                _ => None,
            })
        });
        match user {
            Some(u) if is_root_user(&u.user) => self.flag(
                &DF_ROOT,
                u.location.start_line,
                format!(
                    "the final stage's last USER is {:?}: the container runs as root",
                    u.user
                ),
            ),
            Some(_) => {}
            None => {
                let root_base = chain.last().map_or("", |s| s.base());
                // Images built to run unprivileged say so in their tag.
                if !root_base.to_ascii_lowercase().contains("nonroot") {
                    self.flag(
                        &DF_ROOT,
                        from_line,
                        "the final stage sets no USER: the container runs as the base image's user, root unless it says otherwise",
                    );
                }
            }
        }
        let has_healthcheck = chain.iter().any(|s| {
            s.instructions
                .iter()
                .any(|i| matches!(i, Instruction::Healthcheck(_)))
        });
        if !has_healthcheck {
            self.flag(
                &DF_NO_HEALTHCHECK,
                from_line,
                "the final stage has no HEALTHCHECK",
            );
        }
    }

    fn base(
        &mut self,
        df: &Dockerfile,
        stage: &Stage,
        lexer: &Lexer,
        globals: &BTreeMap<String, String>,
    ) {
        let written = stage.base();
        let Ok((base, used)) = lexer.process_word_tracked(written, globals) else {
            return;
        };
        if used.iter().any(|v| !globals.contains_key(v)) || base.is_empty() {
            return;
        }
        let lower = base.to_ascii_lowercase();
        if lower == "scratch" || parent_stage(df, stage).is_some() || base.contains('@') {
            return;
        }
        let last = base.rsplit('/').next().unwrap_or(&base);
        let line = stage.from.location.start_line;
        match last.split_once(':') {
            Some((_, "latest")) => self.flag(
                &DF_LATEST,
                line,
                format!("base image {base:?} uses the `latest` tag"),
            ),
            Some(_) => {}
            None => self.flag(&DF_LATEST, line, format!("base image {base:?} has no tag")),
        }
    }

    fn stage(&mut self, stage: &Stage) {
        let mut cmds = Vec::new();
        let mut entrypoints = Vec::new();
        let pip_env = stage.instructions.iter().any(|i| match i {
            Instruction::Env(e) => e
                .vars
                .iter()
                .any(|kv| kv.key.eq_ignore_ascii_case("PIP_NO_CACHE_DIR")),
            _ => false,
        });
        for ins in &stage.instructions {
            let loc = ins.location();
            match ins {
                Instruction::Run(run) => self.run(run, pip_env),
                Instruction::Add(add) => self.add(add),
                Instruction::Copy(copy) => {
                    if let Some(mode) = &copy.chmod {
                        if world_writable(mode) {
                            self.flag(
                                &DF_CHMOD_777,
                                loc.start_line,
                                format!("COPY --chmod={mode} makes the files world-writable"),
                            );
                        }
                    }
                }
                Instruction::Arg(a) => {
                    self.args(a.args.iter().map(|d| (&d.name, &d.default)), loc);
                }
                Instruction::Env(e) => {
                    for kv in &e.vars {
                        if !crate::is_secret_name(&kv.key) {
                            continue;
                        }
                        let line = self.find(loc, 0, &kv.key).unwrap_or(loc.start_line);
                        let value = kv.value.trim_matches(['"', '\'']);
                        if value.is_empty() {
                            continue;
                        }
                        if value.contains('$') {
                            self.flag(
                                &DF_SECRET_ARG,
                                line,
                                format!(
                                    "ENV {} copies a build-time value into the image config",
                                    kv.key
                                ),
                            );
                        } else {
                            self.flag(
                                &DF_SECRET_LITERAL,
                                line,
                                format!("ENV {} sets a secret in clear", kv.key),
                            );
                        }
                    }
                }
                Instruction::Workdir(w) => {
                    let p = w.path.trim_matches(['"', '\'']);
                    let windows = p.as_bytes().get(1) == Some(&b':');
                    if !p.starts_with('/') && !p.starts_with('$') && !windows {
                        self.flag(
                            &DF_RELATIVE_WORKDIR,
                            loc.start_line,
                            format!("WORKDIR {p:?} is relative"),
                        );
                    }
                }
                Instruction::Expose(e) => {
                    for p in &e.ports {
                        if let Ok(port) = ExposedPort::parse(p) {
                            if port.start <= 22
                                && 22 <= port.end
                                && !p.to_ascii_lowercase().ends_with("/udp")
                            {
                                self.flag(
                                    &DF_EXPOSE_SSH,
                                    loc.start_line,
                                    format!("EXPOSE {p} exposes SSH"),
                                );
                            }
                        }
                    }
                }
                Instruction::Cmd(_) => cmds.push(loc.start_line),
                Instruction::Entrypoint(_) => entrypoints.push(loc.start_line),
                Instruction::Maintainer(_) => {
                    self.flag(&DF_MAINTAINER, loc.start_line, "MAINTAINER is deprecated")
                }
                _ => {}
            }
        }
        for (lines, rule, kw) in [
            (cmds, &DF_MULTI_CMD, "CMD"),
            (entrypoints, &DF_MULTI_ENTRYPOINT, "ENTRYPOINT"),
        ] {
            if let Some((last, earlier)) = lines.split_last() {
                for line in earlier {
                    self.flag(
                        rule,
                        *line,
                        format!("this {kw} is overridden by the {kw} at line {last}"),
                    );
                }
            }
        }
    }

    fn args<'a>(
        &mut self,
        defs: impl Iterator<Item = (&'a String, &'a Option<String>)>,
        loc: &Location,
    ) {
        for (name, default) in defs {
            if !crate::is_secret_name(name) {
                continue;
            }
            let line = self.find(loc, 0, name).unwrap_or(loc.start_line);
            let value = default.as_deref().unwrap_or("").trim_matches(['"', '\'']);
            if value.is_empty() || value.starts_with('$') {
                self.flag(
                    &DF_SECRET_ARG,
                    line,
                    format!("ARG {name}: build arguments are recorded in the image history"),
                );
            } else {
                self.flag(
                    &DF_SECRET_LITERAL,
                    line,
                    format!("ARG {name} has a secret default value"),
                );
            }
        }
    }

    fn add(&mut self, add: &AddInstruction) {
        let line = add.location.start_line;
        let mut local = false;
        for src in &add.sources {
            match src {
                Source::Path(p) if is_url(p) => {
                    if add.checksum.is_none() {
                        self.flag(
                            &DF_ADD_URL,
                            line,
                            format!("ADD {p} fetches a URL without --checksum"),
                        );
                    }
                }
                Source::Path(p) if p.contains('$') || is_archive(p) => {}
                Source::Path(_) | Source::Inline(_) => local = true,
            }
        }
        if local {
            self.flag(
                &DF_ADD_LOCAL,
                line,
                "ADD copies local files that are not archives: COPY does that",
            );
        }
    }

    fn run(&mut self, run: &RunInstruction, pip_env: bool) {
        let loc = &run.location;
        let mut script = match &run.command {
            CommandLine::Shell(s) => s.clone(),
            CommandLine::Exec(v) => match v.as_slice() {
                [sh, c, script, ..] if is_shell(sh) && c == "-c" => script.clone(),
                _ => v
                    .iter()
                    .map(|a| format!("'{}'", a.replace('\'', "")))
                    .collect::<Vec<_>>()
                    .join(" "),
            },
        };
        // Heredoc bodies are the script when RUN starts with one or feeds a shell.
        let first = shell::commands(&script);
        let feeds_shell = script.trim_start().starts_with("<<")
            || first.first().is_some_and(|c| is_shell(c.name()));
        if feeds_shell {
            for h in &run.heredocs {
                script.push('\n');
                script.push_str(&h.content);
            }
        }
        let commands = shell::commands(&script);
        let cache_mount = |needle: &str| {
            run.mounts.iter().any(|m| m.spec.contains(needle)) || script.contains(needle)
        };
        // Each command's line: the next line (from the previous command's) naming it.
        let mut cursor = loc.start_line;
        let mut located: Vec<(Command, Command, usize)> = Vec::new();
        for cmd in commands {
            let line = cmd
                .argv
                .first()
                .and_then(|a| self.find(loc, cursor, a))
                .unwrap_or(cursor);
            cursor = line;
            let inner = cmd.unwrapped();
            located.push((cmd, inner, line));
        }
        let mut apt_update = None;
        let mut apt_install = false;
        for (i, (cmd, inner, line)) in located.iter().enumerate() {
            let line = *line;
            let args = &inner.argv;
            if i == 0 && inner.name() == "cd" {
                self.flag(
                    &DF_RUN_CD,
                    line,
                    "RUN starts with cd: use WORKDIR to set the directory",
                );
            }
            if cmd.name() == "sudo" {
                self.flag(&DF_SUDO, line, "RUN uses sudo");
            }
            match inner.name() {
                "apt-get" => {
                    let sub = args.iter().skip(1).find(|a| !a.starts_with('-'));
                    match sub.map(String::as_str) {
                        Some("update") => apt_update = apt_update.or(Some(line)),
                        Some("install") => {
                            apt_install = true;
                            if !args.iter().any(|a| apt_yes(a)) {
                                self.flag(&DF_APT_NO_YES, line, "apt-get install without -y");
                            }
                            if !args.iter().any(|a| {
                                a == "--no-install-recommends"
                                    || a.contains("Install-Recommends=false")
                                    || a.contains("Install-Recommends=0")
                            }) {
                                self.flag(
                                    &DF_APT_RECOMMENDS,
                                    line,
                                    "apt-get install without --no-install-recommends",
                                );
                            }
                        }
                        Some("upgrade" | "dist-upgrade" | "full-upgrade" | "build-dep") => {
                            apt_install = true
                        }
                        _ => {}
                    }
                }
                "apk" => {
                    let sub = args.iter().skip(1).find(|a| !a.starts_with('-'));
                    if sub.is_some_and(|s| s == "add")
                        && !args.iter().any(|a| a == "--no-cache")
                        && !cache_mount("/var/cache/apk")
                    {
                        self.flag(&DF_APK_CACHE, line, "apk add without --no-cache");
                    }
                }
                "chmod" => {
                    if let Some(mode) = args
                        .iter()
                        .skip(1)
                        .find(|a| !a.starts_with('-') || a.starts_with("-0"))
                    {
                        if world_writable(mode) {
                            self.flag(
                                &DF_CHMOD_777,
                                line,
                                format!("chmod {mode} makes files world-writable"),
                            );
                        }
                    }
                }
                _ => {}
            }
            if is_pip_install(args)
                && !pip_env
                && !args.iter().any(|a| a == "--no-cache-dir")
                && !cache_mount(".cache/pip")
            {
                self.flag(&DF_PIP_CACHE, line, "pip install without --no-cache-dir");
            }
            // `curl ... | sh` and `sh -c "$(curl ...)"`.
            if is_shell(inner.name()) {
                let prev_downloads = i > 0
                    && cmd.piped
                    && located
                        .get(i - 1)
                        .is_some_and(|(_, p, _)| matches!(p.name(), "curl" | "wget"));
                let substituted = args.iter().any(|a| {
                    ["$(curl", "$(wget", "<(curl", "<(wget", "`curl", "`wget"]
                        .iter()
                        .any(|p| a.contains(p))
                });
                if prev_downloads || substituted {
                    self.flag(
                        &DF_PIPE_SHELL,
                        line,
                        format!("a download is run by {} unverified", inner.name()),
                    );
                }
            }
        }
        if let (Some(line), false) = (apt_update, apt_install) {
            self.flag(
                &DF_APT_UPDATE_ALONE,
                line,
                "apt-get update without apt-get install in the same RUN",
            );
        }
    }
}

/// The earlier stage `stage` builds on, if its FROM names one.
fn parent_stage<'d>(df: &'d Dockerfile, stage: &Stage) -> Option<&'d Stage> {
    let base = stage.base().to_ascii_lowercase();
    df.stages[..stage.index]
        .iter()
        .rev()
        .find(|s| s.name() == Some(base.as_str()))
        .or_else(|| {
            base.parse::<usize>()
                .ok()
                .filter(|i| *i < stage.index)
                .and_then(|i| df.stages.get(i))
        })
}

pub(crate) fn is_root_user(user: &str) -> bool {
    let name = user.split(':').next().unwrap_or("").trim();
    name == "root" || name == "0"
}

fn is_shell(name: &str) -> bool {
    let name = name.rsplit('/').next().unwrap_or(name);
    matches!(name, "sh" | "bash" | "zsh" | "ash" | "dash" | "ksh")
}

fn is_url(p: &str) -> bool {
    let l = p.to_ascii_lowercase();
    l.starts_with("http://") || l.starts_with("https://") || l.starts_with("git@")
}

fn is_archive(p: &str) -> bool {
    let l = p.to_ascii_lowercase();
    [
        ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz", ".tar.zst",
        ".tzst",
    ]
    .iter()
    .any(|e| l.ends_with(e))
}

fn apt_yes(a: &str) -> bool {
    matches!(a, "--yes" | "--assume-yes")
        || a.contains("Assume-Yes=true")
        || (a.starts_with('-') && !a.starts_with("--") && a.contains('y'))
}

fn is_pip_install(args: &[String]) -> bool {
    let name = |a: &String| a.rsplit('/').next().unwrap_or(a).to_string();
    let Some(first) = args.first().map(name) else {
        return false;
    };
    let rest: &[String] = if first == "pip" || first.starts_with("pip3") || first == "pip2" {
        &args[1..]
    } else if first.starts_with("python") {
        match args.iter().position(|a| a == "-m") {
            Some(i) if args.get(i + 1).is_some_and(|m| m == "pip") => &args[i + 2..],
            _ => return false,
        }
    } else {
        return false;
    };
    rest.iter()
        .find(|a| !a.starts_with('-'))
        .map(String::as_str)
        == Some("install")
}

/// Whether an octal or symbolic chmod mode gives others write permission
/// (sticky directories such as `1777` for /tmp are fine).
fn world_writable(mode: &str) -> bool {
    if !mode.is_empty() && mode.chars().all(|c| c.is_ascii_digit()) {
        let Ok(bits) = u32::from_str_radix(mode, 8) else {
            return false;
        };
        return bits & 0o002 != 0 && bits & 0o1000 == 0;
    }
    mode.split(',').any(|clause| {
        let Some(op) = clause.find(['+', '=']) else {
            return false;
        };
        let who = &clause[..op];
        (who.contains('o') || who.contains('a')) && clause[op..].contains('w')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(text: &str) -> Vec<(&'static str, usize)> {
        let (raw, _) = check(Path::new("Dockerfile"), text).unwrap();
        let mut v: Vec<_> = raw.iter().map(|r| (r.rule.id, r.line)).collect();
        v.sort();
        v
    }

    #[test]
    fn modes() {
        assert!(world_writable("777"));
        assert!(world_writable("0666"));
        assert!(world_writable("a+rwx"));
        assert!(world_writable("u+x,o+w"));
        assert!(!world_writable("1777"));
        assert!(!world_writable("755"));
        assert!(!world_writable("u+w"));
    }

    #[test]
    fn pip_forms() {
        let v = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert!(is_pip_install(&v("pip install x")));
        assert!(is_pip_install(&v("/usr/bin/pip3.12 install -U x")));
        assert!(is_pip_install(&v("python3 -m pip install x")));
        assert!(!is_pip_install(&v("pip download x")));
        assert!(!is_pip_install(&v("uv pip install x")));
    }

    #[test]
    fn stage_inheritance_for_user_and_healthcheck() {
        let t = "FROM debian:12 AS base\nUSER 1000\nHEALTHCHECK NONE\nFROM base\nRUN true\n";
        assert_eq!(ids(t), vec![]);
        let t = "FROM debian:12 AS base\nUSER 1000\nFROM base\nUSER root\nHEALTHCHECK NONE\n";
        assert_eq!(ids(t), vec![("HL-DF-001", 4)]);
    }

    #[test]
    fn base_images_through_global_args() {
        let t = "ARG V=3.20\nARG IMG=alpine\nFROM alpine:${V}\nFROM $IMG\nFROM ${UNSET}:1\nFROM $IMG:latest\nFROM scratch\nUSER 1\nHEALTHCHECK NONE\n";
        assert_eq!(ids(t), vec![("HL-DF-002", 4), ("HL-DF-002", 6)]);
    }

    #[test]
    fn exec_form_and_heredoc_runs() {
        let t = "FROM a:1\nUSER 1\nHEALTHCHECK NONE\nRUN [\"sh\", \"-c\", \"sudo true\"]\nRUN <<EOF\nset -e\ncurl -fsSL https://x | bash\nEOF\nRUN cat <<EOF > /etc/motd\nsudo is not run here\nEOF\n";
        assert_eq!(ids(t), vec![("HL-DF-011", 4), ("HL-DF-019", 7)]);
    }
}
