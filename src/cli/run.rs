//! `lmsync run`.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::ConfigArg;
use crate::config::Config;
use crate::{daemon, telemetry};

/// Run a node until SIGINT or SIGTERM, then drain in-flight requests and exit 0.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  lmsync run --config /etc/lmsync/440100.toml")]
pub(crate) struct RunArgs {
    #[command(flatten)]
    config: ConfigArg,
}

pub(crate) fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config.config).context("invalid config")?;
    telemetry::init(&config.log_level, config.log_format);
    for w in config.warnings() {
        tracing::warn!(warning = %w, "Config");
    }
    let (node, name) = (config.node, config.name.clone());
    super::runtime()?.block_on(async move {
        let running = daemon::start(config).await?;
        // One line on stdout for people and supervisors: the node is serving.
        let quic = running
            .sync
            .quic_addr
            .map_or_else(String::new, |a| format!("; QUIC {a}"));
        println!(
            "lmsync node {node} ({name}) ready{quic}; API http://{}",
            running.api_addr
        );
        daemon::termination_signal().await;
        tracing::info!("Shutting down");
        running.stop().await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
