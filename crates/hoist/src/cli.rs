//! The command line, as data: clap definitions only. Handlers live in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// hoist: from git push to a running, zero-downtime container deployment.
#[derive(Debug, Parser)]
#[command(name = "hoist", version, about, propagate_version = true)]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Where hoist keeps its data [default: $XDG_DATA_HOME/hoist].
    #[arg(long, global = true, env = "HOIST_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Talk to this `hoist server` (`http://host:port`) for `hoist runs`, `approve`
    /// and `reject`, instead of this home's run history.
    #[arg(long, global = true, env = "HOIST_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// The server's API token (`hoist server token create NAME`).
    #[arg(
        long,
        global = true,
        env = "HOIST_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Keep the pipeline's run history and queue in this PostgreSQL database
    /// (`postgres://user:password@host/db`) instead of SQLite under the home.
    #[arg(
        long,
        global = true,
        env = "HOIST_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database: Option<String>,
    /// More logging (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage images in the local store.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Check Dockerfiles, Terraform and ECS task definitions: syntax errors and
    /// misconfigurations (running as root, secrets in ENV, open admin ports...),
    /// each with file:line.
    Lint(LintArgs),
    /// Build an image from a Dockerfile, with no daemon (as `docker buildx build`).
    Build(BuildArgs),
    /// Scan an image or a directory: vulnerable packages, secrets; with a gate
    /// (`--fail-on`) and reports (table, JSON, SARIF, CycloneDX, SPDX).
    Scan(ScanArgs),
    /// Write the SBOM of an image or a directory (CycloneDX 1.5 or SPDX 2.3 JSON).
    Sbom(SbomArgs),
    /// Manage the vulnerability database (OSV advisories).
    #[command(subcommand)]
    Db(DbCommand),
    /// Remove the build cache, unused layer snapshots and every blob no image uses.
    Prune,
    /// Push an image from the store to a registry (plain HTTP for loopback registries).
    Push(PushArgs),
    /// Pull an image from a registry into the store.
    Pull(PullArgs),
    /// Add a name to an image (the same as `hoist image tag`).
    Tag {
        /// The image.
        source: String,
        /// The new name.
        target: String,
    },
    /// Run hoist's embedded OCI registry.
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Run the reverse proxy in the foreground, serving what its JSON configuration
    /// file says and following the file as the controller rewrites it.
    Proxy(ProxyArgs),
    /// Manage secrets for deployments (values are sealed at rest and never printed).
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Deploy a service, from its service file (YAML) or an image and flags, and
    /// follow the deployment.
    Deploy(DeployArgs),
    /// Roll a service back to its previous good deployment, at once.
    Rollback(RollbackArgs),
    /// Change a service's desired task count, keeping its version.
    Scale(ScaleArgs),
    /// Stop a service's tasks (desired count 0); `hoist scale` starts them again.
    Stop(StopArgs),
    /// List tasks: a service's, or every service's.
    Ps(PsArgs),
    /// Show a service's deployments and their events.
    Events(EventsArgs),
    /// Inspect and remove services (`hoist services ls` works too).
    #[command(subcommand, visible_alias = "services")]
    Service(ServiceCommand),
    /// Show a service's task logs.
    Logs(LogsArgs),
    /// Run the deployment controller in the foreground (started on demand by
    /// `hoist deploy`).
    Daemon(DaemonArgs),
    /// Run the pipeline of hoist.yml on the working tree (uncommitted changes
    /// included): test, build, scan, then deploy to the first environment, and print
    /// its URL.
    Up(UpArgs),
    /// Write a commented starter hoist.yml from what the repository holds
    /// (Dockerfile, its port, test commands).
    Init(InitArgs),
    /// Let a run waiting at an environment's approval gate go on.
    Approve(DecideArgs),
    /// Stop a run waiting at an environment's approval gate (nothing more deploys).
    Reject(DecideArgs),
    /// The pipeline's run history: runs, their stages and logs.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Run hoist as a CI/CD server: push webhooks (GitHub, GitLab) and polling
    /// queue runs of its repositories, workers run them through every environment,
    /// and a REST API (OpenAPI at /api/v1/openapi.json) shows and steers them.
    Server(ServerArgs),
}

/// `hoist server`
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServerArgs {
    /// API tokens.
    #[command(subcommand)]
    pub command: Option<ServerCommand>,
    /// Where the API and the webhooks listen.
    #[arg(long, default_value = "127.0.0.1:8470")]
    pub listen: std::net::SocketAddr,
    /// A repository to build: its name, then what `git clone` takes, then
    /// optionally the branches that start runs [default: every branch]. Repeat
    /// for more.
    #[arg(long = "repo", value_name = "NAME=URL[#BRANCH,...]")]
    pub repos: Vec<String>,
    /// Also ask each remote for its branches this often (`30s`, `5m`) and run new heads.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub poll: Option<std::time::Duration>,
    /// How many runs go at once.
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// The secret in hoist's store (`hoist secret set NAME`) that webhooks prove
    /// they know; webhooks are refused while it is not set.
    #[arg(long, value_name = "NAME", default_value = "webhook")]
    pub webhook_secret: String,
}

/// `hoist server ...`
#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

/// `hoist server token ...`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token and print it (the only time it is shown; only its hash is kept).
    Create {
        /// Who or what holds it.
        name: String,
    },
    /// List tokens (names and dates, never secrets).
    Ls,
    /// Remove a token.
    Revoke {
        /// Its name.
        name: String,
    },
}

/// `hoist up`
#[derive(Debug, Args)]
pub struct UpArgs {
    /// The repository (the directory holding hoist.yml).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The pipeline file [default: DIR/hoist.yml; without one, DIR/buildspec.yml
    /// as the build in the pipeline `hoist init` would write].
    #[arg(long, short = 'f')]
    pub file: Option<PathBuf>,
    /// Serve the first environment on this address instead of its listener's.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// Go on through every environment in order, waiting at each `approval:
    /// manual` until `hoist approve` (or `hoist reject`) decides.
    #[arg(long)]
    pub all: bool,
}

/// `hoist approve` and `hoist reject`
#[derive(Debug, Args)]
pub struct DecideArgs {
    /// The run number.
    pub run: i64,
    /// The environment whose gate it is.
    #[arg(long = "env", value_name = "ENV")]
    pub environment: String,
    /// Who decides, as recorded [default: the user id].
    #[arg(long)]
    pub by: Option<String>,
}

/// `hoist init`
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The repository.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Replace an existing hoist.yml.
    #[arg(long)]
    pub force: bool,
}

/// `hoist runs ...`
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List runs, newest first.
    Ls {
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// A run and its stages.
    Show {
        /// The run number.
        run: i64,
    },
    /// The logs of a run's stages.
    Logs {
        /// The run number.
        run: i64,
        /// Only this stage (`build`, `deploy:dev`, ...).
        #[arg(long)]
        stage: Option<String>,
        /// Keep printing as the run goes, until it ends.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Stop a run: a queued one at once, a going one at its next check.
    Cancel {
        /// The run number.
        run: i64,
    },
    /// Queue a failed or cancelled run of `hoist server` again, from its first
    /// stage that did not succeed.
    Retry {
        /// The run number.
        run: i64,
    },
}

/// `hoist deploy`
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// A service file (`*.yml`, `*.yaml`, or any existing file), or an image to
    /// deploy: a new version of the service, or a new service with defaults.
    pub target: String,
    /// The service [default: the file's `name`, else the image's repository name].
    #[arg(long)]
    pub service: Option<String>,
    /// Deploy this image instead of the service file's `image`.
    #[arg(long)]
    pub image: Option<String>,
    /// Desired number of tasks.
    #[arg(long)]
    pub replicas: Option<u32>,
    /// The port the container listens on [default: the image's single EXPOSE].
    #[arg(long)]
    pub port: Option<u16>,
    /// `rolling`, `rolling:MIN%:MAX%`, `blue-green`, `blue-green:BAKE`,
    /// `canary:PERCENT%:BAKE` or `linear:PERCENT%:INTERVAL`.
    #[arg(long)]
    pub strategy: Option<String>,
    /// The listener address, e.g. `0.0.0.0:80` (needed for a new service given by
    /// image).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Health-check tasks with `GET PATH` (2 s interval, 1 s timeout, healthy 2,
    /// unhealthy 3) [default: the file's check, else the image's HEALTHCHECK, else
    /// healthy once running].
    #[arg(long, value_name = "PATH")]
    pub health_path: Option<String>,
    /// Set an environment variable, `KEY=VALUE` (repeatable).
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Return once the deployment is recorded instead of following it.
    #[arg(long)]
    pub detach: bool,
    /// Allow plain HTTP to the registry when the image must be pulled.
    #[arg(long)]
    pub insecure: bool,
    /// Deploy to Amazon ECS instead of hoist's runtime.
    #[command(flatten)]
    pub ecs: EcsArgs,
    /// With --ecs: also write CodePipeline's imagedefinitions.json here.
    #[arg(long, value_name = "PATH", requires = "ecs")]
    pub imagedefinitions: Option<std::path::PathBuf>,
}

/// Where an ECS service is, for `hoist deploy` and `hoist rollback`.
#[derive(Debug, Args, Default)]
pub struct EcsArgs {
    /// The Amazon ECS cluster of the service (--service): deploy there instead of
    /// hoist's runtime. The image is set in a new revision of the service's task
    /// definition, everything else kept.
    #[arg(long, value_name = "CLUSTER")]
    pub ecs: Option<String>,
    /// With --ecs: the AWS region [default: AWS_REGION, else the profile's].
    #[arg(long, requires = "ecs")]
    pub region: Option<String>,
    /// With --ecs: the container to update [default: the task definition's only
    /// one].
    #[arg(long, requires = "ecs")]
    pub container: Option<String>,
    /// With --ecs, for a service under the CODE_DEPLOY controller: its CodeDeploy
    /// APPLICATION/DEPLOYMENT_GROUP.
    #[arg(long, value_name = "APP/GROUP", requires = "ecs")]
    pub codedeploy: Option<String>,
    /// With --codedeploy: a lifecycle hook, HOOK=LAMBDA (repeatable).
    #[arg(
        long = "codedeploy-hook",
        value_name = "HOOK=LAMBDA",
        requires = "codedeploy"
    )]
    pub codedeploy_hooks: Vec<String>,
    /// With --ecs: how long to follow the rollout before giving up (a CodeDeploy
    /// deployment is then stopped and rolled back).
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration, requires = "ecs")]
    pub timeout: std::time::Duration,
}

/// `hoist rollback`
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The service.
    pub service: String,
    /// Return once the rollback is requested instead of following it.
    #[arg(long)]
    pub detach: bool,
    /// Roll back an Amazon ECS service to its previous task definition revision.
    #[command(flatten)]
    pub ecs: EcsArgs,
}

/// `hoist service`
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// List services with their version, task counts and deployment state.
    Ls,
    /// List tasks (the same as `hoist ps`).
    Ps(PsArgs),
    /// Show a service's deployments and their events (as `hoist events`).
    Events(EventsArgs),
    /// Stop a service's tasks and forget it.
    Rm {
        /// The service.
        service: String,
    },
}

/// `hoist ps`
#[derive(Debug, Args)]
pub struct PsArgs {
    /// The service [default: every service].
    pub service: Option<String>,
    /// Include stopped and failed tasks.
    #[arg(short, long)]
    pub all: bool,
}

/// `hoist events`
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// The service.
    pub service: String,
    /// Keep printing new events.
    #[arg(short, long)]
    pub follow: bool,
}

/// `hoist scale`
#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// The service.
    pub service: String,
    /// The desired number of tasks.
    pub count: u32,
    /// Return once the count is recorded instead of waiting for the tasks.
    #[arg(long)]
    pub detach: bool,
}

/// `hoist stop`
#[derive(Debug, Args)]
pub struct StopArgs {
    /// The service.
    pub service: String,
    /// Return once the stop is recorded instead of waiting for the tasks.
    #[arg(long)]
    pub detach: bool,
}

/// `hoist logs`
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The service.
    pub service: String,
    /// Only this task.
    #[arg(long)]
    pub task: Option<String>,
    /// Keep printing new lines.
    #[arg(short, long)]
    pub follow: bool,
    /// Print only the last N lines (per task).
    #[arg(long)]
    pub tail: Option<usize>,
}

/// `hoist daemon`
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// The proxy's admin address [default: read from the proxy's admin.addr file].
    #[arg(long)]
    pub proxy_admin: Option<std::net::SocketAddr>,
    /// Do not start `hoist proxy` when none is running.
    #[arg(long)]
    pub no_proxy: bool,
    /// Detach from the terminal's session (used when hoist starts the daemon).
    #[arg(long, hide = true)]
    pub detached: bool,
}

/// `hoist secret ...`
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Create or replace a secret, reading its value from stdin (or --from-file),
    /// never from the command line.
    Set(SecretSetArgs),
    /// List secrets: name, size and last update (never values).
    #[command(alias = "list")]
    Ls,
    /// Remove a secret.
    #[command(alias = "remove")]
    Rm {
        /// The secret's name.
        name: String,
    },
}

/// `hoist secret set`
#[derive(Debug, Args)]
pub struct SecretSetArgs {
    /// The secret's name (`[A-Za-z0-9_.-]`, up to 128 characters).
    pub name: String,
    /// Read the value from this file instead of stdin.
    #[arg(long, value_name = "PATH")]
    pub from_file: Option<PathBuf>,
    /// Strip trailing newlines (`\n`, `\r\n`) from the value; by default the bytes
    /// are kept as they are.
    #[arg(long)]
    pub trim: bool,
}

/// `hoist proxy`
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// The configuration file (JSON), replaced atomically by its writer
    /// [default: <HOIST_HOME>/proxy/config.json].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address of the admin API (`/status`, `/targets`, `/draining`, `/counts`,
    /// `/metrics`, `/health`); port 0 picks one, written to `admin.addr` next to the
    /// configuration file.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7947")]
    pub admin: std::net::SocketAddr,
    /// Threads serving client connections, each with its own runtime and
    /// `SO_REUSEPORT` sockets; 0 serves on the main runtime.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub workers: usize,
    /// Detach from the terminal's session (used when hoist starts the proxy).
    #[arg(long, hide = true)]
    pub detached: bool,
}

/// `hoist build`
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The build context directory.
    #[arg(default_value = ".")]
    pub context: PathBuf,
    /// The Dockerfile [default: CONTEXT/Dockerfile].
    #[arg(short, long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Name the image (`NAME[:TAG]`); repeatable.
    #[arg(short, long = "tag", value_name = "NAME:TAG")]
    pub tags: Vec<String>,
    /// Set a build argument (`KEY=VALUE`, or `KEY` to take it from the environment).
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// Build up to this stage.
    #[arg(long)]
    pub target: Option<String>,
    /// Run every step, ignoring the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Network for RUN steps without --network.
    #[arg(long, value_enum, default_value_t = NetworkArg::Host)]
    pub network: NetworkArg,
    /// A secret for `RUN --mount=type=secret` (`id=ID,src=PATH` or `id=ID,env=VAR`).
    #[arg(long, value_name = "id=ID,src=PATH")]
    pub secret: Vec<String>,
    /// Progress output.
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,
    /// Layer compression.
    #[arg(long, value_enum, default_value_t = CompressionArg::Gzip)]
    pub compression: CompressionArg,
    /// Clamp file times and set every timestamp to this Unix time
    /// [default: the commit time of HEAD when the context is a git repository].
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "UNIX_SECONDS")]
    pub source_date_epoch: Option<i64>,
    /// Print only the image digest on stdout.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Networks a RUN step can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetworkArg {
    /// The host's network (what `docker build` gives by default, outbound works).
    Host,
    /// Loopback only.
    None,
}

/// Progress styles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressArg {
    /// Step lines; RUN output too when stderr is not a terminal.
    Auto,
    /// Step lines and all RUN output.
    Plain,
    /// One JSON event per line on stdout.
    Json,
    /// Nothing but errors.
    Quiet,
}

/// `hoist image ...`
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Make a one-layer image from a root file system (a directory or a tarball).
    Import(ImportArgs),
    /// List images.
    #[command(alias = "list")]
    Ls,
    /// Show an image's manifest, config and names as JSON.
    Inspect {
        /// Image name, ID or digest.
        reference: String,
    },
    /// Remove an image name, or an image by ID, and free unreferenced blobs.
    #[command(alias = "remove")]
    Rm {
        /// Image names, IDs or digests.
        #[arg(required = true)]
        references: Vec<String>,
        /// Remove an image by ID even when several names point at it.
        #[arg(short, long)]
        force: bool,
    },
    /// Export an image as an OCI layout directory or a docker-archive tarball.
    Export(ExportArgs),
    /// Load images from an OCI layout directory, an OCI archive or a docker-archive tarball.
    Load(LoadArgs),
    /// Add a name to an image.
    Tag {
        /// The image.
        source: String,
        /// The new name.
        target: String,
    },
    /// Delete blobs that no image references and temp files of killed writers.
    Prune,
}

/// `hoist image import`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A root file system: a directory or a tar (optionally gzip/zstd compressed).
    pub source: PathBuf,
    /// The name to give the image (`NAME[:TAG]`).
    pub name: String,
    /// Layer compression.
    #[arg(long, value_enum, default_value_t = CompressionArg::Gzip)]
    pub compression: CompressionArg,
    /// Clamp file times and set the creation time to this Unix time (for reproducible
    /// images).
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "UNIX_SECONDS")]
    pub source_date_epoch: Option<u64>,
    /// Apply a Dockerfile instruction to the image config (CMD, ENTRYPOINT, ENV,
    /// WORKDIR, USER, EXPOSE, LABEL, VOLUME, STOPSIGNAL), as `docker import --change`.
    #[arg(short, long, value_name = "INSTRUCTION")]
    pub change: Vec<String>,
    /// Commit message recorded in the history.
    #[arg(short, long)]
    pub message: Option<String>,
}

/// Layer compression choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    /// Uncompressed tar.
    None,
    /// gzip (what every registry and runtime reads).
    Gzip,
    /// zstd (smaller and faster; needs a recent runtime).
    Zstd,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// An OCI image layout directory.
    Oci,
    /// A `docker save` tarball.
    DockerArchive,
}

/// `hoist image export`
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Image name, ID or digest.
    pub reference: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Oci)]
    pub format: ExportFormat,
    /// Where to write it (a directory for oci, a file for docker-archive).
    pub path: PathBuf,
}

/// `hoist image load`
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// An OCI layout directory, an OCI archive tarball or a docker-archive tarball.
    pub path: PathBuf,
    /// Name the loaded image (when the input holds one image).
    #[arg(short, long)]
    pub tag: Option<String>,
}

/// `hoist lint`
#[derive(Debug, Args)]
pub struct LintArgs {
    /// Files or directories. A directory is walked for `Dockerfile`, `*.Dockerfile`,
    /// `Dockerfile.*`, `Containerfile`, `*.tf` and task definition `*.json`; a file
    /// whose name says nothing is read as a Dockerfile.
    #[arg(default_value = "Dockerfile")]
    pub paths: Vec<PathBuf>,
    /// Exit 1 when a finding is at least this severe (`never`: report only).
    /// Syntax errors always exit 1.
    #[arg(long, value_enum, default_value_t = FailOnArg::Low)]
    pub fail_on: FailOnArg,
    /// Print every rule (ID, severity, title, why, fix) and exit.
    #[arg(long)]
    pub rules: bool,
}

/// `hoist lint --fail-on`
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOnArg {
    /// Only critical findings fail.
    Critical,
    /// High or critical.
    High,
    /// Medium and above.
    Medium,
    /// Any finding.
    Low,
    /// Findings never fail (syntax errors still do).
    Never,
}

impl FailOnArg {
    /// The least severity that fails, if any does.
    pub fn threshold(self) -> Option<hoist_lint::Severity> {
        use hoist_lint::Severity;
        match self {
            FailOnArg::Critical => Some(Severity::Critical),
            FailOnArg::High => Some(Severity::High),
            FailOnArg::Medium => Some(Severity::Medium),
            FailOnArg::Low => Some(Severity::Low),
            FailOnArg::Never => None,
        }
    }
}

/// `hoist registry`
#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Serve the OCI distribution API (v1.1) over plain HTTP until interrupted.
    Serve(RegistryServeArgs),
    /// Collect garbage: apply lifecycle policies, drop unreferenced blobs and
    /// abandoned uploads (safe while `hoist registry serve` runs).
    Gc(RegistryGcArgs),
    /// Manage the registry's access tokens.
    #[command(subcommand)]
    Token(RegistryTokenCommand),
}

/// `hoist registry token`
#[derive(Debug, Subcommand)]
pub enum RegistryTokenCommand {
    /// Make a token (always pull) and print its secret once; clients send it as the
    /// password with any user name.
    Create(TokenCreateArgs),
    /// List the tokens (never their secrets).
    Ls(TokenRootArgs),
    /// Delete a token; a running registry refuses it from its next request on.
    Revoke(TokenRevokeArgs),
}

/// Where the registry keeps its tokens.
#[derive(Debug, Args)]
pub struct TokenRootArgs {
    /// Registry storage directory (default: `<HOIST_HOME>/registry`).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

/// `hoist registry token create`
#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// Repositories the token may act on (`*` within a path component, `**` across);
    /// repeatable.
    #[arg(long = "repo", value_name = "PATTERN", required = true)]
    pub repos: Vec<String>,
    /// Also allow pushing.
    #[arg(long)]
    pub push: bool,
    /// Also allow deleting.
    #[arg(long)]
    pub delete: bool,
    /// A name to recognize it by.
    #[arg(long)]
    pub name: Option<String>,
    /// Lifetime, e.g. `90d` or `12h` [default: never expires].
    #[arg(long, value_name = "DURATION")]
    pub expires: Option<humantime::Duration>,
    #[command(flatten)]
    pub root: TokenRootArgs,
}

/// `hoist registry token revoke`
#[derive(Debug, Args)]
pub struct TokenRevokeArgs {
    /// The token's ID (from `hoist registry token ls`).
    pub id: String,
    #[command(flatten)]
    pub root: TokenRootArgs,
}

/// `hoist registry serve`
#[derive(Debug, Args)]
pub struct RegistryServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:5000")]
    pub addr: String,
    /// Registry storage directory (default: `<HOIST_HOME>/registry`).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Configuration file (TOML: `[tls]`, `[auth]`, `[gc]`, `[[repository]]` policies).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Leave the caller's session (as `hoist up` starts it in the background).
    #[arg(long, hide = true)]
    pub detached: bool,
}

/// `hoist registry gc`
#[derive(Debug, Args)]
pub struct RegistryGcArgs {
    /// Registry storage directory (default: `<HOIST_HOME>/registry`).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Configuration file (TOML) with the repository policies and `[gc]` settings.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Report what would be removed without removing anything.
    #[arg(long)]
    pub dry_run: bool,
}

/// `hoist push`
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The image in the store (name, ID or digest).
    pub reference: String,
    /// Where to push it (`registry/repo[:tag]`) [default: REFERENCE, which must then
    /// be a name].
    pub dest: Option<String>,
    /// Plain HTTP even for a registry that is not on loopback.
    #[arg(long)]
    pub insecure: bool,
    /// How blobs are uploaded: `auto` is monolithic for ECR and small blobs and
    /// chunked (resumable) for large blobs elsewhere.
    #[arg(long, value_enum, default_value_t = UploadArg::Auto)]
    pub upload: UploadArg,
    /// Bytes per chunk of a chunked upload.
    #[arg(long, value_name = "BYTES", default_value_t = 8 << 20)]
    pub chunk_size: u64,
    /// Retries of a blob transfer after a connection error or a 5xx.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub retries: u32,
    /// ECR: create the repository if it does not exist (tags immutable, scan on
    /// push, AES256 encryption or --kms-key). An existing repository is left as it
    /// is. Without it, a push to a missing ECR repository fails.
    #[arg(long)]
    pub create_repository: bool,
    /// ECR, with --create-repository: encrypt a new repository with AWS KMS, with
    /// this key (ARN, ID or alias) or, given no value, ECR's AWS-managed key.
    #[arg(
        long,
        value_name = "ARN",
        num_args = 0..=1,
        default_missing_value = "",
        requires = "create_repository"
    )]
    pub kms_key: Option<String>,
    /// ECR: after the push, wait for ECR's scan of the image, print its findings and
    /// apply `hoist scan`'s gate to them (--fail-on).
    #[arg(long)]
    pub ecr_scan: bool,
    /// With --ecr-scan: exit 1 when a finding is at this severity or above (`none`
    /// or absent: report only).
    #[arg(
        long,
        value_name = "critical|high|medium|low|none",
        requires = "ecr_scan"
    )]
    pub fail_on: Option<String>,
    /// With --ecr-scan: how long to wait for the scan to finish.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    pub ecr_scan_timeout: std::time::Duration,
}

/// Blob upload modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UploadArg {
    /// Monolithic for ECR hosts and blobs under 16 MiB, chunked otherwise.
    Auto,
    /// One PUT per blob.
    Monolithic,
    /// PATCH chunks, resumed after a failure.
    Chunked,
}

/// `hoist pull`
#[derive(Debug, Args)]
pub struct PullArgs {
    /// The image (`registry/repo[:tag][@digest]`).
    pub reference: String,
    /// Plain HTTP even for a registry that is not on loopback.
    #[arg(long)]
    pub insecure: bool,
    /// Retries of a blob download after a connection error or a 5xx (each continues
    /// where the last stopped; so does a later `hoist pull`).
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub retries: u32,
}

/// Report formats of `hoist scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScanFormat {
    /// Tables grouped by kind of finding (colored on a terminal).
    Table,
    /// hoist's JSON report.
    Json,
    /// SARIF 2.1.0 (GitHub code scanning).
    Sarif,
    /// CycloneDX 1.5 JSON with the vulnerabilities.
    Cyclonedx,
    /// SPDX 2.3 JSON (packages only).
    Spdx,
}

/// Which scanners `hoist scan` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scanner {
    /// Vulnerable packages (needs the vulnerability database).
    Vuln,
    /// Secrets in files.
    Secret,
    /// Misconfigurations in a directory's Dockerfiles, Terraform and ECS task
    /// definitions (the `hoist lint` rules; `--dir` only).
    Misconfig,
}

/// `hoist scan`
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// An image in the store (name or digest), an OCI layout directory or
    /// `docker save` archive (with `--input`), or a directory (with `--dir`).
    pub target: PathBuf,
    /// The target is a directory on disk (a root file system or a source tree).
    #[arg(long, conflicts_with = "input")]
    pub dir: bool,
    /// The target is an OCI layout directory or a `docker save` tarball.
    #[arg(long)]
    pub input: bool,
    /// Scanners to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_values = ["vuln", "secret"])]
    pub scanners: Vec<Scanner>,
    /// Exit 1 when a finding is at this severity or above (`none`: report only).
    #[arg(long, value_name = "critical|high|medium|low|none")]
    pub fail_on: Option<String>,
    /// The ignore file [default: .hoistignore in the current directory, if any].
    #[arg(long, value_name = "FILE")]
    pub ignore_file: Option<PathBuf>,
    /// Secret-scanner configuration (TOML: `disable = [ids]`, `[[allow]]` with
    /// `id`, `path` and `value` regexes).
    #[arg(long, value_name = "FILE")]
    pub secret_config: Option<PathBuf>,
    /// Report format [default: table, or json with --json].
    #[arg(long, value_enum)]
    pub format: Option<ScanFormat>,
    /// Write the report to this file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Warn when the vulnerability database is older than this.
    #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
    pub max_db_age: std::time::Duration,
}

/// SBOM formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SbomFormat {
    /// CycloneDX 1.5 JSON.
    Cyclonedx,
    /// SPDX 2.3 JSON.
    Spdx,
}

/// `hoist sbom`
#[derive(Debug, Args)]
pub struct SbomArgs {
    /// An image in the store, an OCI layout or `docker save` archive (with
    /// `--input`), or a directory (with `--dir`).
    pub target: PathBuf,
    /// The target is a directory on disk.
    #[arg(long, conflicts_with = "input")]
    pub dir: bool,
    /// The target is an OCI layout directory or a `docker save` tarball.
    #[arg(long)]
    pub input: bool,
    /// The format.
    #[arg(long, value_enum, default_value = "cyclonedx")]
    pub format: SbomFormat,
    /// Write to this file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `hoist db`
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Import OSV advisories from a directory of JSON files or an osv.dev
    /// `all.zip` export (works offline).
    Import {
        /// The directory or zip file.
        path: PathBuf,
    },
    /// Download osv.dev's exports of these ecosystems and import them.
    Update {
        /// Ecosystems (as osv.dev names them).
        #[arg(default_values = ["Debian", "Alpine", "Ubuntu", "PyPI", "npm", "crates.io", "Go", "Maven", "RubyGems"])]
        ecosystems: Vec<String>,
        /// Download from this base URL instead of osv.dev's bucket
        /// (`BASE/<ECOSYSTEM>/all.zip`).
        #[arg(long)]
        base_url: Option<String>,
    },
    /// Show the imported sources, their advisory counts and their age.
    Status,
}
