//! `lmsync figures`: checks that the figures a node keeps (each city's coverage and
//! report counts per quarter) are what its records give now.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde_json::Value;

use super::{ConfigArg, http};
use crate::node::config::Config;
use crate::node::daemon::read_token;

/// Recompute every figure the node keeps from its records and report any that differ.
///
/// Coverage and reports are merges of per-city counts the node keeps, each stamped with
/// the records it was computed from and recomputed when they change. This recomputes
/// every current one from a scan of its city's records and compares; a figure that
/// differs is replaced. Exit status 1 when any differed.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  lmsync figures --config 100000.toml")]
pub(crate) struct FiguresArgs {
    #[command(flatten)]
    config: ConfigArg,
}

pub(crate) fn run(args: FiguresArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config.config).context("invalid config")?;
    let url = format!("{}/v1/figures/verify", http::api_url(&config));
    let token = read_token(&config.token_file)?;
    let found = super::runtime()?.block_on(http::post_json(&url, &token, &Value::Null))?;
    let differences = found["differences"].as_array().cloned().unwrap_or_default();
    println!(
        "{} figures recomputed from the records, {} differed; {} stale (recomputed when next asked)",
        found["checked"],
        differences.len(),
        found["stale"]
    );
    for d in &differences {
        println!(
            "differed and replaced: {} of {} for {}",
            d["computation"].as_str().unwrap_or("?"),
            d["city"].as_str().unwrap_or("?"),
            d["period"].as_str().unwrap_or("?")
        );
    }
    Ok(if differences.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
