//! A CodeBuild `buildspec.yml` (version 0.2) run on the host, in a workspace, with
//! CodeBuild's semantics, so that a repository built by CodeBuild builds the same
//! way under hoist: [`run`] runs the phases, [`collect_artifacts`] gathers
//! `artifacts.files`, [`image_from_outputs`] reads the `imagedefinitions.json` the
//! build wrote.
//!
//! # One shell session
//!
//! Since buildspec 0.2 every command of a build runs in the same shell session: a
//! `cd`, a variable set (exported or not) or a function defined by one command is
//! seen by the next ones, across phases. hoist keeps that session in a state file
//! rather than in one long-lived shell process, as CodeBuild's own agent does:
//! each command runs as its own `bash <wrapper>` process (stdin `/dev/null`, in a
//! process group of its own) whose wrapper
//!
//! 1. sources the state the previous command left (its variables with their
//!    attributes as `declare -p` prints them, its functions, its directory; the
//!    exported variables it had unset are unset again),
//! 2. sets `CODEBUILD_BUILD_SUCCEEDING`,
//! 3. sources the command (a file of its own, so that its syntax errors stay its
//!    own), and
//! 4. on exit (an `EXIT` trap, so that a command's `exit 3` or `set -e` still
//!    saves) writes the new state, ending it with a marker line; a state without
//!    the marker (the command was killed while saving, or replaced the trap) is
//!    ignored and the previous one stays in force.
//!
//! This is robust where a single shell fed through its stdin is not: a command
//! reading stdin cannot swallow the next commands, `exit` in a command fails that
//! command only, and a command past its time is killed with its process group
//! without losing the session. Shell options (`set -e`), traps, aliases and bash's
//! own dynamic variables (`PWD` aside, `BASH_*`, `RANDOM`, `IFS`...) do not carry
//! over. With `env.shell: sh`, or when `bash` is not on the `PATH`, commands run
//! in `sh` and only the exported variables and the directory carry over (POSIX
//! `sh` cannot list its unexported variables).
//!
//! A command's background processes (`nohup dockerd &`) outlive it, as they would
//! in CodeBuild's container: their process groups are killed when the build ends.
//!
//! # Phases, as AWS documents them
//!
//! Phases run in the order install, pre_build, build, post_build. From the
//! CodeBuild User Guide, "Build phase transitions"
//! (<https://docs.aws.amazon.com/codebuild/latest/userguide/view-build-details-phases.html>):
//! a failed INSTALL or PRE_BUILD goes to FINALIZING (the later phases and the
//! artifacts upload are skipped); a failed BUILD goes on to POST_BUILD; a failed
//! POST_BUILD goes on to UPLOAD_ARTIFACTS, and "the UPLOAD_ARTIFACTS phase is
//! always attempted, even if the BUILD phase fails". From the "Build specification
//! reference" (`build-spec-ref.html`): in a phase, the commands run one by one and
//! the first that fails skips the rest of `commands`; `finally` commands run after
//! `commands` whether they failed or not; a phase succeeds when all its commands
//! and `finally` commands do; `on-failure: ABORT` (the default) aborts the build,
//! `on-failure: CONTINUE` goes on with the next phase. `CODEBUILD_BUILD_SUCCEEDING`
//! is `1`, and `0` from the first failed command on (so `post_build` and `finally`
//! can tell).
//!
//! hoist's reading of those rules: ABORT stops the build after a failed install or
//! pre_build; after a failed build, ABORT still runs post_build (the documented
//! transition, and the only phase left); CONTINUE runs the next phases as if the
//! phase had succeeded, the build being failed all the same. A command past the
//! per-command timeout is killed and fails its phase (state `TIMED_OUT`) like any
//! failed command. A cancelled build stops at once (state `STOPPED`): no `finally`,
//! no further phase, no artifacts.
//!
//! # What cannot run here
//!
//! `env.parameter-store` and `env.secrets-manager` need AWS: [`run`] refuses them
//! before running anything ([`check_offline`]). `run-as` and
//! `install.runtime-versions` are noted in the log and otherwise ignored (commands
//! run as hoist's user, with the host's tools); `reports`, `cache`, `proxy` and
//! `batch` are not acted on.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hoist_pipeline_spec::buildspec::{Artifacts, OnFailure, Phase, Shell};
use hoist_pipeline_spec::imagedefs::{ImageDefinitions, ImageDefsError};
use hoist_pipeline_spec::Buildspec;

use crate::shell::Exit;

/// Why a buildspec could not be run (a failed build is not an error: see
/// [`BuildspecOutcome`]).
#[derive(Debug, thiserror::Error)]
pub enum CodebuildError {
    /// A variable from an AWS service hoist does not reach.
    #[error(
        "{kind} variable {variable} needs {service}, which hoist's local runner does not reach"
    )]
    Unavailable {
        /// `parameter-store` or `secrets-manager`.
        kind: &'static str,
        /// The variable.
        variable: String,
        /// The AWS service.
        service: &'static str,
    },
    /// An `exported-variables` entry that cannot be a variable.
    #[error("exported-variables: {0:?} is not a shell variable name")]
    BadExportedName(String),
    /// A file or process of the run.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The artifacts could not be gathered.
    #[error("artifacts: {0}")]
    Artifacts(String),
    /// A malformed `imagedefinitions.json`, or one without the container.
    #[error(transparent)]
    ImageDefs(#[from] ImageDefsError),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CodebuildError {
    let what = what.into();
    move |source| CodebuildError::Io { what, source }
}

/// A phase of a build, as CodeBuild names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PhaseName {
    /// `install`.
    Install,
    /// `pre_build`.
    PreBuild,
    /// `build`.
    Build,
    /// `post_build`.
    PostBuild,
    /// The artifacts copied to the output directory.
    UploadArtifacts,
}

impl PhaseName {
    /// CodeBuild's name: `INSTALL`, `PRE_BUILD`, `BUILD`, `POST_BUILD`,
    /// `UPLOAD_ARTIFACTS`.
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseName::Install => "INSTALL",
            PhaseName::PreBuild => "PRE_BUILD",
            PhaseName::Build => "BUILD",
            PhaseName::PostBuild => "POST_BUILD",
            PhaseName::UploadArtifacts => "UPLOAD_ARTIFACTS",
        }
    }

    /// The key under `phases:` in the buildspec.
    fn key(self) -> &'static str {
        match self {
            PhaseName::Install => "install",
            PhaseName::PreBuild => "pre_build",
            PhaseName::Build => "build",
            PhaseName::PostBuild => "post_build",
            PhaseName::UploadArtifacts => "artifacts",
        }
    }
}

impl std::fmt::Display for PhaseName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a phase ended, as CodeBuild reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhaseStatus {
    /// All its commands succeeded.
    Succeeded,
    /// A command failed.
    Failed,
    /// A command ran past its time and was killed.
    TimedOut,
    /// The build was cancelled during the phase.
    Stopped,
}

impl PhaseStatus {
    /// CodeBuild's name: `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `STOPPED`.
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseStatus::Succeeded => "SUCCEEDED",
            PhaseStatus::Failed => "FAILED",
            PhaseStatus::TimedOut => "TIMED_OUT",
            PhaseStatus::Stopped => "STOPPED",
        }
    }
}

impl std::fmt::Display for PhaseStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a build gives back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildspecOutcome {
    /// Every phase that ran succeeded, and the artifacts were gathered.
    pub succeeded: bool,
    /// The phases reached, in order, with how they ended (a phase the buildspec
    /// leaves out is reached and succeeds, as in CodeBuild).
    pub phases: Vec<(PhaseName, PhaseStatus)>,
    /// `env.exported-variables` that are set at the end of the build, with their
    /// final values.
    pub exported: BTreeMap<String, String>,
    /// The first failure, for the run's summary.
    pub failure: Option<String>,
    /// The artifact files copied, relative to the output directory.
    pub artifacts: Vec<PathBuf>,
}

/// Where and how a buildspec runs.
#[derive(Clone, Copy, Debug)]
pub struct BuildspecRun<'a> {
    /// The source checkout the commands start in (`CODEBUILD_SRC_DIR`).
    pub workspace: &'a Path,
    /// The project's environment (see [`codebuild_env`]); the buildspec's
    /// `env.variables` are laid over it. Added to hoist's own environment.
    pub env: &'a BTreeMap<String, String>,
    /// Each command is killed after this long.
    pub command_timeout: Duration,
    /// Where `artifacts.files` are copied; `None` skips the artifacts.
    pub artifacts_dir: Option<&'a Path>,
}

/// What [`codebuild_env`] describes of a build.
#[derive(Clone, Copy, Debug)]
pub struct BuildInfo<'a> {
    /// The project (the app), first half of `CODEBUILD_BUILD_ID`.
    pub project: &'a str,
    /// The build's number (hoist's run number).
    pub build_number: u64,
    /// The commit built.
    pub source_version: &'a str,
}

/// CodeBuild's own variables for a build of `info` in `workspace`:
/// `CODEBUILD_SRC_DIR`, `CODEBUILD_RESOLVED_SOURCE_VERSION`,
/// `CODEBUILD_SOURCE_VERSION`, `CODEBUILD_BUILD_NUMBER`, `CODEBUILD_BUILD_ID`
/// (`project:number`), `CODEBUILD_INITIATOR` (`hoist`), `CODEBUILD_CI`
/// (`true`) and `CODEBUILD_BUILD_SUCCEEDING` (`1`; [`run`] updates it).
pub fn codebuild_env(workspace: &Path, info: &BuildInfo<'_>) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        env.insert(k.to_owned(), v);
    };
    set(
        "CODEBUILD_SRC_DIR",
        workspace.to_string_lossy().into_owned(),
    );
    set(
        "CODEBUILD_RESOLVED_SOURCE_VERSION",
        info.source_version.to_owned(),
    );
    set("CODEBUILD_SOURCE_VERSION", info.source_version.to_owned());
    set("CODEBUILD_BUILD_NUMBER", info.build_number.to_string());
    set(
        "CODEBUILD_BUILD_ID",
        format!("{}:{}", info.project, info.build_number),
    );
    set("CODEBUILD_INITIATOR", "hoist".to_owned());
    set("CODEBUILD_CI", "true".to_owned());
    set("CODEBUILD_BUILD_SUCCEEDING", "1".to_owned());
    env
}

/// Refuses what needs AWS (`parameter-store`, `secrets-manager`) and
/// `exported-variables` that cannot be variables; [`run`] calls it first.
pub fn check_offline(spec: &Buildspec) -> Result<(), CodebuildError> {
    if let Some(variable) = spec.env.parameter_store.keys().next() {
        return Err(CodebuildError::Unavailable {
            kind: "parameter-store",
            variable: variable.clone(),
            service: "AWS Systems Manager",
        });
    }
    if let Some(variable) = spec.env.secrets_manager.keys().next() {
        return Err(CodebuildError::Unavailable {
            kind: "secrets-manager",
            variable: variable.clone(),
            service: "AWS Secrets Manager",
        });
    }
    if let Some(bad) = spec.env.exported_variables.iter().find(|n| !is_name(n)) {
        return Err(CodebuildError::BadExportedName(bad.clone()));
    }
    Ok(())
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Where lines go: the log and the caller.
struct Out<'a> {
    log: &'a mut dyn Write,
    on_line: &'a mut dyn FnMut(&str),
}

impl Out<'_> {
    fn line(&mut self, line: &str) -> Result<(), CodebuildError> {
        writeln!(self.log, "{line}").map_err(io_err("writing the build log"))?;
        (self.on_line)(line);
        Ok(())
    }

    fn container(&mut self, line: &str) -> Result<(), CodebuildError> {
        self.line(&format!("[Container] {line}"))
    }
}

/// Runs `spec` in `build.workspace` with CodeBuild's semantics (see the module
/// doc), each line of output to `log` and `on_line`; `cancel` stops it. Refuses
/// what needs AWS before running anything.
pub fn run(
    spec: &Buildspec,
    build: &BuildspecRun<'_>,
    log: &mut dyn Write,
    on_line: &mut dyn FnMut(&str),
    cancel: &AtomicBool,
) -> Result<BuildspecOutcome, CodebuildError> {
    check_offline(spec)?;
    let mut out = Out { log, on_line };
    let mut env = build.env.clone();
    env.extend(spec.env.variables.clone());
    env.insert("CODEBUILD_BUILD_SUCCEEDING".to_owned(), "1".to_owned());
    let mut session = Session::new(spec.env.shell, build.workspace, env)?;
    if spec.env.shell == Shell::Bash && session.kind == Shell::Sh {
        out.container("bash is not on the PATH: commands run in sh")?;
    }
    if let Some(user) = &spec.run_as {
        out.container(&format!(
            "run-as {user} is not applied: commands run as hoist's user"
        ))?;
    }
    if let Some(install) = &spec.phases.install {
        if !install.runtime_versions.is_empty() {
            let versions: Vec<String> = install
                .runtime_versions
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            out.container(&format!(
                "runtime-versions ({}) are not installed: commands use the host's tools",
                versions.join(", ")
            ))?;
        }
    }

    let defined = spec.phases();
    let mut outcome = BuildspecOutcome {
        succeeded: true,
        phases: Vec::new(),
        exported: BTreeMap::new(),
        failure: None,
        artifacts: Vec::new(),
    };
    let mut upload = true;
    for name in [
        PhaseName::Install,
        PhaseName::PreBuild,
        PhaseName::Build,
        PhaseName::PostBuild,
    ] {
        let phase = defined
            .iter()
            .find(|(key, _)| *key == name.key())
            .map(|(_, p)| p.clone())
            .unwrap_or_default();
        let status = run_phase(
            &mut session,
            name,
            &phase,
            build.command_timeout,
            &mut out,
            cancel,
            &mut outcome,
        )?;
        outcome.phases.push((name, status));
        match status {
            PhaseStatus::Succeeded => {}
            PhaseStatus::Stopped => {
                upload = false;
                break;
            }
            PhaseStatus::Failed | PhaseStatus::TimedOut => {
                if phase.on_failure == OnFailure::Abort
                    && matches!(name, PhaseName::Install | PhaseName::PreBuild)
                {
                    out.container(&format!(
                        "Phase {name} failed with on-failure ABORT: the build stops"
                    ))?;
                    upload = false;
                    break;
                }
            }
        }
    }
    let stopped = outcome
        .phases
        .last()
        .is_some_and(|(_, s)| *s == PhaseStatus::Stopped);
    if !stopped {
        outcome.exported = session.exported(&spec.env.exported_variables)?;
    }
    session.finish(&mut out)?;

    if upload {
        if let (Some(artifacts), Some(dir)) = (&spec.artifacts, build.artifacts_dir) {
            out.container("Entering phase UPLOAD_ARTIFACTS")?;
            let status = match collect_artifacts(artifacts, build.workspace, dir) {
                Ok(files) => {
                    for f in &files {
                        out.container(&format!("Artifact {}", f.display()))?;
                    }
                    outcome.artifacts = files;
                    PhaseStatus::Succeeded
                }
                Err(e) => {
                    out.container(&format!(
                        "Phase context status code: CLIENT_ERROR Message: {e}"
                    ))?;
                    fail(&mut outcome, format!("{}: {e}", PhaseName::UploadArtifacts));
                    PhaseStatus::Failed
                }
            };
            out.container(&format!("Phase complete: UPLOAD_ARTIFACTS State: {status}"))?;
            outcome.phases.push((PhaseName::UploadArtifacts, status));
        }
    }
    out.log.flush().map_err(io_err("writing the build log"))?;
    Ok(outcome)
}

fn fail(outcome: &mut BuildspecOutcome, why: String) {
    outcome.succeeded = false;
    if outcome.failure.is_none() {
        outcome.failure = Some(why);
    }
}

/// Runs one phase: `commands` up to the first failure, then `finally`.
fn run_phase(
    session: &mut Session,
    name: PhaseName,
    phase: &Phase,
    timeout: Duration,
    out: &mut Out<'_>,
    cancel: &AtomicBool,
    outcome: &mut BuildspecOutcome,
) -> Result<PhaseStatus, CodebuildError> {
    out.container(&format!("Entering phase {name}"))?;
    if let Some(user) = &phase.run_as {
        out.container(&format!(
            "run-as {user} is not applied: commands run as hoist's user"
        ))?;
    }
    let mut status = PhaseStatus::Succeeded;
    for (block, commands) in [("", &phase.commands), ("finally ", &phase.finally)] {
        for cmd in commands {
            if cancel.load(Ordering::SeqCst) {
                status = PhaseStatus::Stopped;
                break;
            }
            let mut lines = cmd.lines();
            let first = cmd.lines().next().unwrap_or_default();
            let shown = if cmd.trim_end().contains('\n') {
                format!("{first} ...")
            } else {
                first.to_owned()
            };
            out.container(&format!(
                "Running {block}command {}",
                lines.next().unwrap_or_default()
            ))?;
            for more in lines {
                out.line(more)?;
            }
            let exit = session.command(cmd, outcome.succeeded, timeout, out, cancel)?;
            let (st, reason) = match exit {
                Exit::Success => continue,
                Exit::Cancelled => (PhaseStatus::Stopped, "cancelled".to_owned()),
                Exit::TimedOut => (
                    PhaseStatus::TimedOut,
                    format!("timed out after {}s and was killed", timeout.as_secs()),
                ),
                Exit::Failed(Some(code)) => (PhaseStatus::Failed, format!("exit status {code}")),
                Exit::Failed(None) => (PhaseStatus::Failed, "killed by a signal".to_owned()),
            };
            if st == PhaseStatus::Stopped {
                status = st;
                break;
            }
            out.container(&format!(
                "Command did not exit successfully {shown} {reason}"
            ))?;
            out.container(&format!(
                "Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while executing command: {shown}. Reason: {reason}"
            ))?;
            fail(outcome, format!("{name}: command `{shown}`: {reason}"));
            if status == PhaseStatus::Succeeded {
                status = st;
            }
            // The rest of this block is skipped; `finally` still runs.
            break;
        }
        if status == PhaseStatus::Stopped {
            break;
        }
    }
    if status == PhaseStatus::Stopped {
        out.container(&format!("Phase {name} stopped: the build was cancelled"))?;
        fail(outcome, format!("{name}: the build was cancelled"));
    }
    out.container(&format!("Phase complete: {name} State: {status}"))?;
    Ok(status)
}

/// A message from a command's output readers.
enum Msg {
    Line(String),
    /// One of the two streams of command `n` is closed.
    Closed(u64),
}

/// The build's shell session: the state file the commands hand on, the process
/// groups still alive, the output of all commands.
struct Session {
    ctl: tempfile::TempDir,
    kind: Shell,
    shell: PathBuf,
    workspace: PathBuf,
    env: BTreeMap<String, String>,
    /// The state the next command starts from.
    state: Option<PathBuf>,
    count: u64,
    /// Process groups left running by finished commands.
    groups: Vec<i32>,
    tx: mpsc::Sender<Msg>,
    rx: mpsc::Receiver<Msg>,
    /// Streams opened and closed, over all commands.
    opened: u64,
    closed: u64,
}

const STATE_END: &str = "# hoist: end of state\n";

/// Variables bash manages itself, or that must not carry over.
const BASH_SKIP: &str = "BASH|BASH_*|BASHOPTS|BASHPID|COMP_WORDBREAKS|DIRSTACK|EPOCHREALTIME|EPOCHSECONDS|EUID|FUNCNAME|GROUPS|HISTCMD|IFS|LINENO|OLDPWD|OPTARG|OPTIND|PIPESTATUS|PPID|PWD|RANDOM|SECONDS|SHELLOPTS|SHLVL|SRANDOM|UID|_|__hoist_*";

/// A shell word for `s`.
fn sq(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn path_str(p: &Path) -> Result<&str, CodebuildError> {
    p.to_str().ok_or_else(|| CodebuildError::Io {
        what: format!("{}", p.display()),
        source: std::io::Error::other("the path is not UTF-8"),
    })
}

fn find_in_path(name: &str, path: Option<&str>) -> Option<PathBuf> {
    let path = match path {
        Some(p) => p.to_owned(),
        None => std::env::var("PATH").ok()?,
    };
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

impl Session {
    fn new(
        wanted: Shell,
        workspace: &Path,
        env: BTreeMap<String, String>,
    ) -> Result<Session, CodebuildError> {
        let ctl = tempfile::Builder::new()
            .prefix("hoist-buildspec-")
            .tempdir()
            .map_err(io_err("creating the build's scratch directory"))?;
        let path = env.get("PATH").map(String::as_str);
        let (kind, shell) = match wanted {
            Shell::Bash => match find_in_path("bash", path) {
                Some(bash) => (Shell::Bash, bash),
                None => (Shell::Sh, PathBuf::from("sh")),
            },
            Shell::Sh => (Shell::Sh, PathBuf::from("sh")),
        };
        let (tx, rx) = mpsc::channel();
        Ok(Session {
            ctl,
            kind,
            shell,
            workspace: workspace.to_owned(),
            env,
            state: None,
            count: 0,
            groups: Vec::new(),
            tx,
            rx,
            opened: 0,
            closed: 0,
        })
    }

    /// The wrapper of command `n`: restore, run, save.
    fn wrapper(&self, n: u64, cmd_file: &Path, succeeding: bool) -> Result<String, CodebuildError> {
        let state_out = self.ctl.path().join(format!("state-{n}.sh"));
        let state_out = sq(path_str(&state_out)?);
        let mut s = String::new();
        if let Some(state) = &self.state {
            s.push_str(&format!(". {}\n", sq(path_str(state)?)));
        }
        s.push_str(&format!(
            "export CODEBUILD_BUILD_SUCCEEDING={}\n",
            u8::from(succeeding)
        ));
        match self.kind {
            Shell::Bash => {
                s.push_str(&format!(
                    r#"__hoist_save() {{
  local IFS=$' \t\n' __hoist_n __hoist_k=' '
  {{
    for __hoist_n in $(builtin compgen -e); do __hoist_k+="$__hoist_n "; done
    builtin printf '__hoist_keep=%q\n' "$__hoist_k"
    builtin printf '%s\n' 'for __hoist_n in $(builtin compgen -e); do case "$__hoist_keep" in *" $__hoist_n "*) ;; *) builtin unset "$__hoist_n" ;; esac; done' 'builtin unset __hoist_n __hoist_keep'
    for __hoist_n in $(builtin compgen -v); do
      case "$__hoist_n" in {skip}) continue ;; esac
      builtin declare -p "$__hoist_n"
    done
    for __hoist_n in $(builtin compgen -A function); do
      case "$__hoist_n" in __hoist_*) continue ;; esac
      builtin declare -f "$__hoist_n"
    done
    builtin printf 'builtin cd -- %q\n' "$PWD"
    builtin printf '%s' {end}
  }} >{state_out} 2>/dev/null
}}
trap '{{ builtin set +xeu; }} 2>/dev/null; __hoist_save' EXIT
"#,
                    skip = BASH_SKIP,
                    end = sq(STATE_END),
                ));
            }
            Shell::Sh => {
                s.push_str(&format!(
                    r#"__hoist_save() {{
  __hoist_dir=$PWD
  export __hoist_dir
  {{
    export -p
    printf '%s\n' 'cd -- "$__hoist_dir"' 'unset __hoist_dir'
    printf '%s' {end}
  }} >{state_out} 2>/dev/null
}}
trap '{{ set +xeu; }} 2>/dev/null; __hoist_save' EXIT
"#,
                    end = sq(STATE_END),
                ));
            }
        }
        s.push_str(&format!(". {}\n", sq(path_str(cmd_file)?)));
        Ok(s)
    }

    /// Runs one command in the session.
    fn command(
        &mut self,
        cmd: &str,
        succeeding: bool,
        timeout: Duration,
        out: &mut Out<'_>,
        cancel: &AtomicBool,
    ) -> Result<Exit, CodebuildError> {
        use std::os::unix::process::CommandExt;
        self.count += 1;
        let n = self.count;
        let cmd_file = self.ctl.path().join(format!("command-{n}.sh"));
        std::fs::write(&cmd_file, format!("{cmd}\n"))
            .map_err(io_err(format!("writing {}", cmd_file.display())))?;
        let wrapper_file = self.ctl.path().join(format!("run-{n}.sh"));
        std::fs::write(&wrapper_file, self.wrapper(n, &cmd_file, succeeding)?)
            .map_err(io_err(format!("writing {}", wrapper_file.display())))?;
        let mut child = Command::new(&self.shell)
            .arg(&wrapper_file)
            .current_dir(&self.workspace)
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(io_err(format!("starting {}", self.shell.display())))?;
        let pgid = child.id() as i32;
        self.read_output(&mut child, n);
        let deadline = Instant::now() + timeout;
        let mut verdict = None;
        let mut exited: Option<(std::process::ExitStatus, Instant)> = None;
        let mut closed_here = 0;
        loop {
            match self.rx.recv_timeout(Duration::from_millis(50)) {
                Ok(Msg::Line(line)) => {
                    if let Err(e) = out.line(&line) {
                        kill_group(pgid);
                        let _ = child.wait();
                        return Err(e);
                    }
                }
                Ok(Msg::Closed(id)) => {
                    self.closed += 1;
                    if id == n {
                        closed_here += 1;
                    }
                }
                Err(_) => {}
            }
            match exited {
                None => {
                    if let Some(status) =
                        child.try_wait().map_err(io_err("waiting for a command"))?
                    {
                        exited = Some((status, Instant::now()));
                    } else if verdict.is_none() {
                        if cancel.load(Ordering::SeqCst) {
                            verdict = Some(Exit::Cancelled);
                        } else if Instant::now() > deadline {
                            verdict = Some(Exit::TimedOut);
                        }
                        if verdict.is_some() {
                            kill_group(pgid);
                        }
                    }
                }
                // Done once both streams are closed; a background process
                // holding them open gets a short grace for the command's last
                // lines, its own lines come later.
                Some((_, at)) => {
                    if closed_here == 2 || at.elapsed() > Duration::from_millis(250) {
                        break;
                    }
                }
            }
        }
        let status = exited.map(|(s, _)| s);
        if verdict.is_some() {
            kill_group(pgid);
        } else if group_alive(pgid) {
            self.groups.push(pgid);
        }
        let state = self.ctl.path().join(format!("state-{n}.sh"));
        if std::fs::read_to_string(&state).is_ok_and(|t| t.ends_with(STATE_END)) {
            self.state = Some(state);
        }
        Ok(match (verdict, status) {
            (Some(v), _) => v,
            (None, Some(s)) if s.success() => Exit::Success,
            (None, s) => Exit::Failed(s.and_then(|s| s.code())),
        })
    }

    fn read_output(&mut self, child: &mut Child, n: u64) {
        let stdout = child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>);
        let stderr = child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>);
        for stream in [stdout, stderr].into_iter().flatten() {
            let tx = self.tx.clone();
            self.opened += 1;
            std::thread::spawn(move || {
                let ended = crate::shell::read_lines(stream, |line| {
                    let line = line.trim_end_matches('\r');
                    tx.send(Msg::Line(line.to_owned())).is_ok()
                });
                if !ended {
                    return;
                }
                let _ = tx.send(Msg::Closed(n));
            });
        }
    }

    /// The values of `names` in the session's final state.
    fn exported(&self, names: &[String]) -> Result<BTreeMap<String, String>, CodebuildError> {
        let mut found = BTreeMap::new();
        if names.is_empty() {
            return Ok(found);
        }
        let mut script = String::new();
        if let Some(state) = &self.state {
            script.push_str(&format!(". {} >/dev/null 2>&1\n", sq(path_str(state)?)));
        }
        for name in names.iter().filter(|n| is_name(n)) {
            script.push_str(&format!(
                "if [ \"${{{name}+set}}\" = set ]; then printf '%s\\0%s\\0' {name} \"${name}\"; fi\n"
            ));
        }
        let file = self.ctl.path().join("exported.sh");
        std::fs::write(&file, script).map_err(io_err(format!("writing {}", file.display())))?;
        let output = Command::new(&self.shell)
            .arg(&file)
            .current_dir(&self.workspace)
            .envs(&self.env)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map_err(io_err("reading the exported variables"))?;
        let text = String::from_utf8_lossy(&output.stdout);
        let mut parts = text.split('\0');
        while let (Some(k), Some(v)) = (parts.next(), parts.next()) {
            found.insert(k.to_owned(), v.to_owned());
        }
        Ok(found)
    }

    /// Ends the session: the background processes are killed, their last lines
    /// forwarded.
    fn finish(&mut self, out: &mut Out<'_>) -> Result<(), CodebuildError> {
        for pgid in self.groups.drain(..) {
            kill_group(pgid);
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        while self.closed < self.opened && Instant::now() < deadline {
            match self.rx.recv_timeout(Duration::from_millis(50)) {
                Ok(Msg::Line(line)) => out.line(&line)?,
                Ok(Msg::Closed(_)) => self.closed += 1,
                Err(_) => {}
            }
        }
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for pgid in self.groups.drain(..) {
            kill_group(pgid);
        }
    }
}

fn kill_group(pgid: i32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pgid) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

fn group_alive(pgid: i32) -> bool {
    rustix::process::Pid::from_raw(pgid)
        .is_some_and(|pid| rustix::process::test_kill_process_group(pid).is_ok())
}

/// `rel` under `root`, refusing absolute paths and `..`.
fn under(root: &Path, rel: &str, what: &str) -> Result<PathBuf, CodebuildError> {
    let p = Path::new(rel);
    if p.components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(CodebuildError::Artifacts(format!(
            "{what} {rel:?} must be a relative path inside the source"
        )));
    }
    Ok(root.join(p))
}

fn glob_set(patterns: &[String], what: &str) -> Result<globset::GlobSet, CodebuildError> {
    let mut set = globset::GlobSetBuilder::new();
    for p in patterns {
        let trimmed = p.trim().trim_start_matches("./");
        let glob = globset::GlobBuilder::new(trimmed)
            .literal_separator(true)
            .build()
            .map_err(|e| CodebuildError::Artifacts(format!("{what} {p:?}: {e}")))?;
        set.add(glob);
    }
    set.build()
        .map_err(|e| CodebuildError::Artifacts(format!("{what}: {e}")))
}

/// Copies the files of `artifacts.files` (globs, `**` crossing directories,
/// from `base-directory`, less `exclude-paths`) from `workspace` into `out_dir`,
/// keeping their paths under the base directory, or only their names with
/// `discard-paths`. Symbolic links are copied as links with `enable-symlinks`,
/// else as the files they point to. Returns the files copied, relative to
/// `out_dir`, in path order; no file matching is an error, as in CodeBuild.
pub fn collect_artifacts(
    artifacts: &Artifacts,
    workspace: &Path,
    out_dir: &Path,
) -> Result<Vec<PathBuf>, CodebuildError> {
    let root = workspace
        .canonicalize()
        .map_err(io_err(format!("{}", workspace.display())))?;
    let base = match &artifacts.base_directory {
        Some(b) => {
            let base = under(&root, b, "base-directory")?;
            let base = base.canonicalize().map_err(|_| {
                CodebuildError::Artifacts(format!("base-directory {b:?}: no such directory"))
            })?;
            if !base.starts_with(&root) || !base.is_dir() {
                return Err(CodebuildError::Artifacts(format!(
                    "base-directory {b:?} is not a directory inside the source"
                )));
            }
            base
        }
        None => root,
    };
    let files = glob_set(&artifacts.files, "files")?;
    let excluded = glob_set(&artifacts.exclude_paths, "exclude-paths")?;
    std::fs::create_dir_all(out_dir).map_err(io_err(format!("creating {}", out_dir.display())))?;
    let out = out_dir
        .canonicalize()
        .map_err(io_err(format!("{}", out_dir.display())))?;
    let mut copied = Vec::new();
    let mut seen = BTreeSet::new();
    let walk = walkdir::WalkDir::new(&base)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.path() != out);
    for entry in walk {
        let entry = entry.map_err(|e| CodebuildError::Artifacts(e.to_string()))?;
        if entry.file_type().is_dir() {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(&base) else {
            continue;
        };
        if !files.is_match(rel) || excluded.is_match(rel) {
            continue;
        }
        let symlink = entry.file_type().is_symlink();
        if symlink && !artifacts.enable_symlinks && !entry.path().is_file() {
            // A link to a directory, or dangling: nothing to copy.
            continue;
        }
        let dest_rel = if artifacts.discard_paths {
            PathBuf::from(entry.file_name())
        } else {
            rel.to_owned()
        };
        if !seen.insert(dest_rel.clone()) {
            return Err(CodebuildError::Artifacts(format!(
                "two files would be stored as {} (discard-paths)",
                dest_rel.display()
            )));
        }
        let dest = out.join(&dest_rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .map_err(io_err(format!("creating {}", parent.display())))?;
        }
        if symlink && artifacts.enable_symlinks {
            let target = std::fs::read_link(entry.path())
                .map_err(io_err(format!("reading {}", entry.path().display())))?;
            let _ = std::fs::remove_file(&dest);
            std::os::unix::fs::symlink(&target, &dest)
                .map_err(io_err(format!("creating {}", dest.display())))?;
        } else {
            std::fs::copy(entry.path(), &dest)
                .map_err(io_err(format!("copying {}", entry.path().display())))?;
        }
        copied.push(dest_rel);
    }
    if copied.is_empty() {
        return Err(CodebuildError::Artifacts(format!(
            "no file matches {:?} in {}",
            artifacts.files,
            base.display()
        )));
    }
    Ok(copied)
}

/// An image found in a build's `imagedefinitions.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundImage {
    /// The file it came from.
    pub file: PathBuf,
    /// The image URI for the container.
    pub image: String,
}

/// The image the build named for `container` in `imagedefinitions.json`, looked
/// for in the artifacts output (`artifacts_dir`), else at the root of
/// `workspace`, else in `base_directory` (the buildspec's
/// `artifacts.base-directory`) under it. `Ok(None)` when there is no such file;
/// an error when the file is malformed or names no image for the container (a
/// file of one entry serves any container, as CodePipeline reads it).
pub fn image_from_outputs(
    workspace: &Path,
    artifacts_dir: &Path,
    base_directory: Option<&str>,
    container: &str,
) -> Result<Option<FoundImage>, CodebuildError> {
    const NAME: &str = "imagedefinitions.json";
    let mut candidates = vec![artifacts_dir.join(NAME), workspace.join(NAME)];
    if let Some(base) = base_directory {
        candidates.push(under(workspace, base, "base-directory")?.join(NAME));
    }
    let Some(file) = candidates.into_iter().find(|p| p.is_file()) else {
        return Ok(None);
    };
    let shown = file.display().to_string();
    let text = std::fs::read_to_string(&file).map_err(io_err(format!("reading {shown}")))?;
    let defs = ImageDefinitions::parse(&shown, &text)?;
    match defs.image_for(container) {
        Some(image) => Ok(Some(FoundImage {
            image: image.to_owned(),
            file,
        })),
        None => {
            let names: Vec<&str> = defs.0.iter().map(|d| d.name.as_str()).collect();
            Err(ImageDefsError {
                file: shown,
                reason: format!(
                    "no image for container {container:?} (the file names {})",
                    names.join(", ")
                ),
            }
            .into())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    struct Ran {
        outcome: Result<BuildspecOutcome, CodebuildError>,
        lines: Vec<String>,
        log: String,
    }

    fn go_with(
        yaml: &str,
        ws: &Path,
        artifacts_dir: Option<&Path>,
        timeout: Duration,
        cancel: bool,
    ) -> Ran {
        let spec = Buildspec::parse("buildspec.yml", yaml).unwrap();
        let env = codebuild_env(
            ws,
            &BuildInfo {
                project: "shop",
                build_number: 7,
                source_version: "0123456789abcdef",
            },
        );
        let build = BuildspecRun {
            workspace: ws,
            env: &env,
            command_timeout: timeout,
            artifacts_dir,
        };
        let mut log = Vec::new();
        let mut lines = Vec::new();
        let outcome = run(
            &spec,
            &build,
            &mut log,
            &mut |l| lines.push(l.to_owned()),
            &AtomicBool::new(cancel),
        );
        Ran {
            outcome,
            lines,
            log: String::from_utf8(log).unwrap(),
        }
    }

    fn go(yaml: &str, ws: &Path) -> (BuildspecOutcome, Vec<String>) {
        let ran = go_with(yaml, ws, None, Duration::from_secs(60), false);
        (ran.outcome.unwrap(), ran.lines)
    }

    fn has(lines: &[String], want: &str) -> bool {
        lines.iter().any(|l| l == want)
    }

    fn pos(lines: &[String], want: &str) -> usize {
        lines
            .iter()
            .position(|l| l == want)
            .unwrap_or_else(|| panic!("no line {want:?} in {lines:#?}"))
    }

    use PhaseName::*;
    use PhaseStatus::*;

    #[test]
    fn phases_run_in_order_in_one_session() {
        let ws = tempfile::tempdir().unwrap();
        std::fs::create_dir(ws.path().join("sub")).unwrap();
        let (outcome, lines) = go(
            r#"
version: 0.2
phases:
  install:
    commands:
      - echo in-install
      - read line || echo stdin is empty
  pre_build:
    commands:
      - cd sub
      - export EXPORTED=one
      - PLAIN="two words"
      - greet() { echo "hello $1"; }
      - unset HOME
  build:
    commands:
      - echo "dir=$(basename "$PWD") exported=$EXPORTED plain=$PLAIN home=${HOME-unset}"
      - greet build
      - |
        for i in 1 2; do
          echo "loop $i"
        done
  post_build:
    commands:
      - echo "post in $(basename "$PWD")"
"#,
            ws.path(),
        );
        assert!(outcome.succeeded, "{outcome:?}");
        assert_eq!(
            outcome.phases,
            [
                (Install, Succeeded),
                (PreBuild, Succeeded),
                (Build, Succeeded),
                (PostBuild, Succeeded)
            ]
        );
        assert!(has(&lines, "stdin is empty"), "{lines:#?}");
        assert!(
            has(&lines, "dir=sub exported=one plain=two words home=unset"),
            "{lines:#?}"
        );
        assert!(has(&lines, "hello build"));
        let order = [
            "[Container] Entering phase INSTALL",
            "in-install",
            "[Container] Phase complete: INSTALL State: SUCCEEDED",
            "[Container] Entering phase PRE_BUILD",
            "[Container] Entering phase BUILD",
            "loop 1",
            "loop 2",
            "[Container] Phase complete: BUILD State: SUCCEEDED",
            "[Container] Entering phase POST_BUILD",
            "post in sub",
            "[Container] Phase complete: POST_BUILD State: SUCCEEDED",
        ];
        let at: Vec<usize> = order.iter().map(|l| pos(&lines, l)).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{lines:#?}");
    }

    #[test]
    fn lines_reach_the_log_too() {
        let ws = tempfile::tempdir().unwrap();
        let ran = go_with(
            "version: 0.2\nphases:\n  build:\n    commands:\n      - echo out; echo err >&2\n",
            ws.path(),
            None,
            Duration::from_secs(60),
            false,
        );
        ran.outcome.unwrap();
        for l in [
            "out",
            "err",
            "[Container] Running command echo out; echo err >&2",
        ] {
            assert!(has(&ran.lines, l), "{:#?}", ran.lines);
            assert!(ran.log.lines().any(|x| x == l), "{}", ran.log);
        }
    }

    #[test]
    fn a_failing_pre_build_stops_the_build_after_its_finally() {
        let ws = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let ran = go_with(
            r#"
version: 0.2
phases:
  pre_build:
    commands:
      - echo before
      - "false"
      - echo not-after
    finally:
      - echo "finally succeeding=$CODEBUILD_BUILD_SUCCEEDING"
  build:
    commands:
      - echo in-build
  post_build:
    commands:
      - echo in-post-build
artifacts:
  files: ['**/*']
"#,
            ws.path(),
            Some(out.path()),
            Duration::from_secs(60),
            false,
        );
        let outcome = ran.outcome.unwrap();
        let lines = ran.lines;
        assert!(!outcome.succeeded);
        assert_eq!(
            outcome.phases,
            [(Install, Succeeded), (PreBuild, Failed)],
            "{lines:#?}"
        );
        assert!(has(&lines, "before"));
        assert!(has(&lines, "finally succeeding=0"), "{lines:#?}");
        for never in ["not-after", "in-build", "in-post-build"] {
            assert!(!has(&lines, never), "{never} ran: {lines:#?}");
        }
        assert!(outcome.artifacts.is_empty());
        assert_eq!(
            outcome.failure.as_deref(),
            Some("PRE_BUILD: command `false`: exit status 1")
        );
    }

    #[test]
    fn a_failing_build_still_runs_post_build_and_the_artifacts() {
        let ws = tempfile::tempdir().unwrap();
        std::fs::write(ws.path().join("app.txt"), "app").unwrap();
        let out = tempfile::tempdir().unwrap();
        let ran = go_with(
            r#"
version: 0.2
phases:
  build:
    commands:
      - echo "building succeeding=$CODEBUILD_BUILD_SUCCEEDING"
      - exit 3
      - echo not-after
    finally:
      - echo build-finally
  post_build:
    commands:
      - echo "post succeeding=$CODEBUILD_BUILD_SUCCEEDING"
artifacts:
  files: [app.txt]
"#,
            ws.path(),
            Some(out.path()),
            Duration::from_secs(60),
            false,
        );
        let outcome = ran.outcome.unwrap();
        let lines = ran.lines;
        assert!(!outcome.succeeded);
        assert_eq!(
            outcome.phases,
            [
                (Install, Succeeded),
                (PreBuild, Succeeded),
                (Build, Failed),
                (PostBuild, Succeeded),
                (UploadArtifacts, Succeeded)
            ]
        );
        assert!(has(&lines, "building succeeding=1"));
        assert!(!has(&lines, "not-after"));
        assert!(pos(&lines, "build-finally") < pos(&lines, "post succeeding=0"));
        assert!(has(
            &lines,
            "[Container] Command did not exit successfully exit 3 exit status 3"
        ));
        assert_eq!(
            outcome.failure.as_deref(),
            Some("BUILD: command `exit 3`: exit status 3")
        );
        assert_eq!(outcome.artifacts, [PathBuf::from("app.txt")]);
        assert_eq!(
            std::fs::read_to_string(out.path().join("app.txt")).unwrap(),
            "app"
        );
    }

    #[test]
    fn a_failing_finally_fails_its_phase() {
        let ws = tempfile::tempdir().unwrap();
        let (outcome, _) = go(
            "version: 0.2\nphases:\n  build:\n    commands: [echo ok]\n    finally: ['false', echo not-after]\n",
            ws.path(),
        );
        assert!(!outcome.succeeded);
        assert!(outcome.phases.contains(&(Build, Failed)));
    }

    #[test]
    fn on_failure_continue_goes_on_with_the_next_phase() {
        let ws = tempfile::tempdir().unwrap();
        let (outcome, lines) = go(
            r#"
version: 0.2
phases:
  install:
    on-failure: CONTINUE
    commands:
      - |
        echo in-install
        false
  build:
    commands:
      - echo in-build
"#,
            ws.path(),
        );
        assert!(!outcome.succeeded);
        assert_eq!(
            outcome.phases,
            [
                (Install, Failed),
                (PreBuild, Succeeded),
                (Build, Succeeded),
                (PostBuild, Succeeded)
            ]
        );
        assert!(has(&lines, "in-build"));
        assert_eq!(
            outcome.failure.as_deref(),
            Some("INSTALL: command `echo in-install ...`: exit status 1")
        );
    }

    #[test]
    fn variables_come_in_and_exported_variables_come_back() {
        let ws = tempfile::tempdir().unwrap();
        let (outcome, lines) = go(
            r#"
version: 0.2
env:
  variables:
    PORT: 8080
    GREETING: "hi there"
  exported-variables:
    - IMAGE_TAG
    - PORT
    - NEVER_SET
phases:
  pre_build:
    commands:
      - echo "port=$PORT greeting=$GREETING commit=$CODEBUILD_RESOLVED_SOURCE_VERSION id=$CODEBUILD_BUILD_ID"
      - IMAGE_TAG=$(echo $CODEBUILD_RESOLVED_SOURCE_VERSION | cut -c 1-7)
  build:
    commands:
      - PORT=9090
"#,
            ws.path(),
        );
        assert!(outcome.succeeded, "{lines:#?}");
        assert!(
            has(
                &lines,
                "port=8080 greeting=hi there commit=0123456789abcdef id=shop:7"
            ),
            "{lines:#?}"
        );
        let want: BTreeMap<String, String> = [("IMAGE_TAG", "0123456"), ("PORT", "9090")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(outcome.exported, want);
    }

    #[test]
    fn parameter_store_and_secrets_are_refused_before_anything_runs() {
        let ws = tempfile::tempdir().unwrap();
        let ran = go_with(
            r#"
version: 0.2
env:
  parameter-store:
    DB_PASSWORD: /shop/db-password
phases:
  install:
    commands:
      - touch ran
"#,
            ws.path(),
            None,
            Duration::from_secs(60),
            false,
        );
        let err = ran.outcome.unwrap_err();
        assert_eq!(
            err.to_string(),
            "parameter-store variable DB_PASSWORD needs AWS Systems Manager, which hoist's local runner does not reach"
        );
        assert!(ran.lines.is_empty());
        assert!(!ws.path().join("ran").exists());

        let spec = Buildspec::parse(
            "buildspec.yml",
            "version: 0.2\nenv:\n  secrets-manager:\n    TOKEN: shop/token:token\nphases:\n  build:\n    commands: [echo]\n",
        )
        .unwrap();
        assert_eq!(
            check_offline(&spec).unwrap_err().to_string(),
            "secrets-manager variable TOKEN needs AWS Secrets Manager, which hoist's local runner does not reach"
        );
    }

    #[test]
    fn a_command_past_its_timeout_is_killed_and_fails_its_phase() {
        let ws = tempfile::tempdir().unwrap();
        let ran = go_with(
            r#"
version: 0.2
phases:
  build:
    commands:
      - echo started; sleep 600
      - echo not-after
  post_build:
    commands:
      - echo in-post-build
"#,
            ws.path(),
            None,
            Duration::from_millis(300),
            false,
        );
        let outcome = ran.outcome.unwrap();
        assert!(!outcome.succeeded);
        assert!(outcome.phases.contains(&(Build, TimedOut)));
        assert!(outcome.phases.contains(&(PostBuild, Succeeded)));
        assert!(has(&ran.lines, "started"));
        assert!(!has(&ran.lines, "not-after"));
        assert!(has(&ran.lines, "in-post-build"));
    }

    #[test]
    fn a_cancelled_build_stops() {
        let ws = tempfile::tempdir().unwrap();
        let ran = go_with(
            "version: 0.2\nphases:\n  install:\n    commands: [touch ran]\n    finally: [touch finally]\n",
            ws.path(),
            None,
            Duration::from_secs(60),
            true,
        );
        let outcome = ran.outcome.unwrap();
        assert!(!outcome.succeeded);
        assert_eq!(outcome.phases, [(Install, Stopped)]);
        assert!(!ws.path().join("ran").exists());
        assert!(!ws.path().join("finally").exists());
    }

    #[test]
    fn a_background_process_outlives_its_command_until_the_build_ends() {
        let ws = tempfile::tempdir().unwrap();
        let (outcome, lines) = go(
            r#"
version: 0.2
phases:
  install:
    commands:
      - sleep 600 >/dev/null 2>&1 & echo $! > daemon.pid
  build:
    commands:
      - kill -0 "$(cat daemon.pid)" && echo daemon-alive
"#,
            ws.path(),
        );
        assert!(outcome.succeeded, "{lines:#?}");
        assert!(has(&lines, "daemon-alive"));
        let pid: i32 = std::fs::read_to_string(ws.path().join("daemon.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let pid = rustix::process::Pid::from_raw(pid).unwrap();
        // Killed at the end of the build; reaped by init soon after.
        let gone = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            rustix::process::test_kill_process(pid).is_err()
                || std::fs::read_to_string(format!("/proc/{}/stat", pid.as_raw_nonzero()))
                    .is_ok_and(|s| s.contains(") Z "))
        });
        assert!(gone, "the background process survived the build");
    }

    #[test]
    fn sh_keeps_the_directory_and_exported_variables() {
        let ws = tempfile::tempdir().unwrap();
        std::fs::create_dir(ws.path().join("sub")).unwrap();
        let (outcome, lines) = go(
            r#"
version: 0.2
env:
  shell: sh
phases:
  pre_build:
    commands:
      - cd sub
      - export NAME="it's here"
  build:
    commands:
      - echo "$(basename "$PWD") $NAME"
"#,
            ws.path(),
        );
        assert!(outcome.succeeded, "{lines:#?}");
        assert!(has(&lines, "sub it's here"), "{lines:#?}");
    }

    fn write(root: &Path, rel: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, rel).unwrap();
    }

    fn artifacts(yaml: &str) -> Artifacts {
        let spec = Buildspec::parse(
            "buildspec.yml",
            &format!("version: 0.2\nphases:\n  build:\n    commands: [echo]\nartifacts:\n{yaml}"),
        )
        .unwrap();
        spec.artifacts.unwrap()
    }

    #[test]
    fn artifacts_follow_base_directory_and_exclude_paths() {
        let ws = tempfile::tempdir().unwrap();
        for f in [
            "dist/index.html",
            "dist/js/app.js",
            "dist/js/app.js.map",
            "dist/.hidden",
            "src/main.rs",
        ] {
            write(ws.path(), f);
        }
        let out = tempfile::tempdir().unwrap();
        let a =
            artifacts("  base-directory: dist\n  files: ['**/*']\n  exclude-paths: ['**/*.map']\n");
        let copied = collect_artifacts(&a, ws.path(), out.path()).unwrap();
        let want: Vec<PathBuf> = [".hidden", "index.html", "js/app.js"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(copied, want);
        assert_eq!(
            std::fs::read_to_string(out.path().join("js/app.js")).unwrap(),
            "dist/js/app.js"
        );
        assert!(!out.path().join("js/app.js.map").exists());
        assert!(!out.path().join("src").exists());
    }

    #[test]
    fn artifacts_can_discard_paths() {
        let ws = tempfile::tempdir().unwrap();
        for f in ["target/a/app.jar", "target/b/lib.jar", "target/notes.txt"] {
            write(ws.path(), f);
        }
        let out = tempfile::tempdir().unwrap();
        let a =
            artifacts("  files: ['target/**/*.jar', ./target/notes.txt]\n  discard-paths: yes\n");
        let copied = collect_artifacts(&a, ws.path(), out.path()).unwrap();
        let want: Vec<PathBuf> = ["app.jar", "lib.jar", "notes.txt"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(copied, want);
        assert_eq!(
            std::fs::read_to_string(out.path().join("lib.jar")).unwrap(),
            "target/b/lib.jar"
        );

        // `*` stays within a directory; nothing matching is an error.
        let a = artifacts("  files: ['target/*.jar']\n");
        let err = collect_artifacts(&a, ws.path(), out.path()).unwrap_err();
        assert!(err.to_string().contains("no file matches"), "{err}");
        let a = artifacts("  files: ['**/*']\n  base-directory: ../elsewhere\n");
        assert!(collect_artifacts(&a, ws.path(), out.path()).is_err());
    }

    #[test]
    fn the_build_writes_imagedefinitions_and_the_image_is_found() {
        let ws = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let ran = go_with(
            r#"
version: 0.2
phases:
  post_build:
    commands:
      - mkdir -p out
      - printf '[{"name":"web","imageUri":"%s"}]' "registry.local/shop:${CODEBUILD_RESOLVED_SOURCE_VERSION}" > out/imagedefinitions.json
artifacts:
  base-directory: out
  files: [imagedefinitions.json]
"#,
            ws.path(),
            Some(out.path()),
            Duration::from_secs(60),
            false,
        );
        let outcome = ran.outcome.unwrap();
        assert!(outcome.succeeded, "{:#?}", ran.lines);
        let found = image_from_outputs(ws.path(), out.path(), Some("out"), "web")
            .unwrap()
            .unwrap();
        assert_eq!(found.image, "registry.local/shop:0123456789abcdef");
        assert_eq!(found.file, out.path().join("imagedefinitions.json"));

        // Not in the artifacts: under base-directory.
        let empty = tempfile::tempdir().unwrap();
        let found = image_from_outputs(ws.path(), empty.path(), Some("out"), "web")
            .unwrap()
            .unwrap();
        assert_eq!(found.file, ws.path().join("out/imagedefinitions.json"));

        // The workspace root comes before base-directory.
        std::fs::write(
            ws.path().join("imagedefinitions.json"),
            r#"[{"name":"web","imageUri":"r/web:1"},{"name":"worker","imageUri":"r/worker:1"}]"#,
        )
        .unwrap();
        let found = image_from_outputs(ws.path(), empty.path(), Some("out"), "worker")
            .unwrap()
            .unwrap();
        assert_eq!(found.image, "r/worker:1");
        let err = image_from_outputs(ws.path(), empty.path(), None, "api").unwrap_err();
        assert!(
            err.to_string().contains("no image for container \"api\""),
            "{err}"
        );

        let none = tempfile::tempdir().unwrap();
        assert_eq!(
            image_from_outputs(none.path(), empty.path(), None, "web").unwrap(),
            None
        );
        std::fs::write(none.path().join("imagedefinitions.json"), "{}").unwrap();
        assert!(image_from_outputs(none.path(), empty.path(), None, "web").is_err());
    }
}
