//! `hoist proxy`: the reverse proxy as its own long-lived process, following the JSON
//! configuration file the controller writes (hoist-proxy's `watch` module), until
//! SIGTERM or SIGINT.

use anyhow::{Context, Result};
use tokio::signal::unix::{signal, SignalKind};

use crate::cli::ProxyArgs;
use crate::settings::Settings;

/// Run the proxy in the foreground; returns after SIGTERM/SIGINT once in-flight
/// requests have finished (or the drain timeout passed).
pub fn run(settings: &Settings, args: ProxyArgs) -> Result<()> {
    if args.detached {
        let _ = rustix::process::setsid();
    }
    let config = args.config.unwrap_or_else(|| settings.proxy_config());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let mut term = signal(SignalKind::terminate()).context("handling SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("handling SIGINT")?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = int.recv() => tracing::info!("SIGINT: stopping"),
            }
        };
        eprintln!(
            "starting the proxy for {} (admin address in {})",
            config.display(),
            config
                .with_file_name(hoist_proxy::watch::ADMIN_ADDR_FILE)
                .display()
        );
        hoist_proxy::watch::run_from_file(&config, args.admin, args.workers, shutdown)
            .await
            .with_context(|| format!("running the proxy for {}", config.display()))
    })
}
