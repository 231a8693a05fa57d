//! The `hoist` binary: parses the command line, resolves settings, runs one command
//! and maps its outcome to an exit code (0 success, 1 failure, 2 usage error).
//!
//! This crate holds no logic of its own beyond rendering: every command is a thin
//! handler over the library crates, which the pipeline and the server call too.

mod cli;
mod commands;
mod scan_on_push;
mod settings;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command};
use crate::settings::Settings;

fn main() -> ExitCode {
    // The container helper (`hoist __container <dir>`), re-executed by
    // hoist-runtime: single-threaded, before clap and tracing.
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() == Some(std::ffi::OsStr::new("__container")) {
        let code = hoist_runtime::helper_main(args.collect());
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let cli = Cli::parse();
    let level = match cli.global.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("HOIST_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::resolve(&cli.global)?;
    match cli.command {
        Command::Image(cmd) => commands::image::run(&settings, cmd),
        Command::Lint(args) => commands::lint::run(&settings, args),
        Command::Build(args) => commands::build::run(&settings, args),
        Command::Scan(args) => commands::scan::scan(&settings, args),
        Command::Sbom(args) => commands::scan::sbom(&settings, args),
        Command::Db(cmd) => commands::scan::db(&settings, cmd),
        Command::Prune => commands::build::prune(&settings),
        Command::Push(args) => commands::remote::push(&settings, args),
        Command::Pull(args) => commands::remote::pull(&settings, args),
        Command::Tag { source, target } => {
            commands::image::run(&settings, cli::ImageCommand::Tag { source, target })
        }
        Command::Registry(cmd) => commands::registry::run(&settings, cmd),
        Command::Deploy(args) => commands::deploy::deploy(&settings, args),
        Command::Rollback(args) => commands::deploy::rollback(&settings, args),
        Command::Scale(args) => {
            commands::deploy::scale(&settings, &args.service, args.count, args.detach)
        }
        Command::Stop(args) => commands::deploy::scale(&settings, &args.service, 0, args.detach),
        Command::Ps(args) => commands::deploy::ps(&settings, args),
        Command::Events(args) => commands::deploy::events(&settings, args),
        Command::Service(cmd) => commands::deploy::service(&settings, cmd),
        Command::Logs(args) => commands::deploy::logs(&settings, args),
        Command::Daemon(args) => commands::deploy::daemon(&settings, args),
        Command::Secret(cmd) => commands::secret::run(&settings, cmd),
        Command::Proxy(args) => commands::proxy::run(&settings, args),
        Command::Up(args) => commands::pipeline::up(&settings, args),
        Command::Runs(cmd) => commands::pipeline::runs(&settings, cmd),
        Command::Server(args) => commands::server::run(&settings, args),
        Command::Init(args) => commands::pipeline::init(args),
        Command::Approve(args) => commands::pipeline::decide(&settings, args, true),
        Command::Reject(args) => commands::pipeline::decide(&settings, args, false),
    }
}
