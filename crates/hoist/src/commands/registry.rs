//! `hoist registry serve`: run the embedded OCI registry (hoist-registry) on an address.

use anyhow::{Context, Result};

use crate::cli::{RegistryCommand, RegistryServeArgs};
use crate::settings::Settings;

/// Run a `hoist registry` subcommand.
pub fn run(settings: &Settings, cmd: RegistryCommand) -> Result<()> {
    match cmd {
        RegistryCommand::Serve(args) => serve(settings, args),
    }
}

/// Open the registry, bind the address, print `listening on http://ADDR` to stderr
/// once bound, and serve until the process is stopped.
fn serve(settings: &Settings, args: RegistryServeArgs) -> Result<()> {
    let root = args.root.unwrap_or_else(|| settings.home.join("registry"));
    let registry = hoist_registry::Registry::open(&root)
        .with_context(|| format!("opening the registry at {}", root.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.addr)
            .await
            .with_context(|| format!("binding {}", args.addr))?;
        let local = listener.local_addr().context("reading the bound address")?;
        eprintln!("listening on http://{local}");
        hoist_registry::serve(listener, registry)
            .await
            .context("serving the registry")
    })
}
