//! `lmsync coverage`: a scope's coverage for a quarter, fetched from a running node —
//! the cities counted, each metric with a target and its status, and the target
//! trends (value, numerator, denominator and met or not over the last four quarters,
//! and the direction); `--json` prints the node's whole answer.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde_json::Value;

use super::http;
use crate::node::config::Config;

/// A scope's coverage and target trends for a quarter.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lmsync coverage --config 100000.toml --period 2000Q1\n  lmsync coverage --config 320000.toml --period 2000Q1 --scope 320500 --json"
)]
pub(crate) struct CoverageArgs {
    #[command(flatten)]
    config: super::ConfigArg,
    /// The quarter, YYYYQn (default: the current one by the node's clock).
    #[arg(long, value_name = "YYYYQn")]
    period: Option<String>,
    /// A city or province within this node's subtree (default: the node's own).
    #[arg(long, value_name = "CODE")]
    scope: Option<String>,
    /// Print the node's answer (`GET /v1/coverage`) as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: CoverageArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config.config).context("invalid config")?;
    let base = http::api_url(&config);
    let query: Vec<String> = [("period", &args.period), ("scope", &args.scope)]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect();
    let url = format!("{base}/v1/coverage?{}", query.join("&"));
    let coverage = super::runtime()?.block_on(async {
        let client = http::client()?;
        http::get_json(&client, &url).await
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&coverage)?);
        return Ok(ExitCode::SUCCESS);
    }
    let cities = coverage["cities"].as_array().map_or(0, Vec::len);
    print!(
        "Coverage of {} for {}: {cities} cities\n\n{}",
        text(&coverage["scope"]),
        text(&coverage["period"]),
        trends_table(&coverage)
    );
    Ok(ExitCode::SUCCESS)
}

fn text(x: &Value) -> String {
    match x {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One quarter of a trend: `value (numerator/denominator) met|missed|-`.
fn point_text(p: &Value) -> String {
    let value = p["value"]
        .as_f64()
        .map_or_else(|| "-".to_string(), |x| format!("{x:.4}"));
    let met = match p["met"].as_bool() {
        Some(true) => "met",
        Some(false) => "missed",
        None => "-",
    };
    format!(
        "{value} ({}/{}) {met}",
        text(&p["numerator"]),
        text(&p["denominator"])
    )
}

/// The target trends of a coverage answer as a text table: one line per metric with a
/// target, its target, one column per quarter (oldest first) and the direction.
pub(crate) fn trends_table(coverage: &Value) -> String {
    let trends = coverage["target_trends"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut out = String::from("Target trends\n");
    let periods: Vec<String> = trends
        .first()
        .and_then(|t| t["quarters"].as_array())
        .map(|q| q.iter().map(|p| text(&p["period"])).collect())
        .unwrap_or_default();
    let _ = write!(out, "{:<6} {:<28} {:<20}", "metric", "variant", "target");
    for p in &periods {
        let _ = write!(out, " {p:<28}");
    }
    let _ = writeln!(out, " direction");
    for t in &trends {
        let _ = write!(
            out,
            "{:<6} {:<28} {:<20}",
            text(&t["id"]),
            text(&t["variant"]),
            super::report::target_text(&t["target"])
        );
        for p in t["quarters"].as_array().into_iter().flatten() {
            let _ = write!(out, " {:<28}", point_text(p));
        }
        let _ = writeln!(out, " {}", text(&t["direction"]));
    }
    out
}
