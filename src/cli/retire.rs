//! `lmsync retire`: a province retires one of its cities (the ministry any city or
//! province), or brings it back.

use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::ConfigArg;
use crate::core::model::NodeCode;
use crate::core::model::document::RETIREMENT;

/// Retire a node from service, or reinstate it.
///
/// Publishes a signed node_retirement document through the running node of --config (the
/// node's province, or the ministry). It flows down the tree and up to the ministry. From
/// the date on, the retired node's records stay everywhere, but coverage stops expecting
/// it: it is no pilot, never stale, and its parent no longer counts its silent link as a
/// fault. Stop the retired node afterwards (and revoke its certificate if it will not
/// return).
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  lmsync retire --config province.toml --node 440300 --reason \"merged into 440100\"\n  lmsync retire --config province.toml --node 440300 --reinstate"
)]
pub(crate) struct RetireArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The node to retire.
    #[arg(long, value_name = "CODE")]
    node: NodeCode,
    /// From when (default: today).
    #[arg(long, value_name = "YYYY-MM-DD")]
    on: Option<chrono::NaiveDate>,
    /// Why, for the operators who will read it.
    #[arg(long, value_name = "TEXT", default_value = "")]
    reason: String,
    /// Bring a retired node back into service from --on.
    #[arg(long)]
    reinstate: bool,
}

pub(crate) fn run(args: RetireArgs) -> anyhow::Result<ExitCode> {
    let on = args.on.unwrap_or_else(crate::node::clock::today);
    let status = if args.reinstate {
        "reinstated"
    } else {
        "retired"
    };
    let body = json!({
        "kind": RETIREMENT,
        "id": args.node.to_string(),
        "body": {"node": args.node, "status": status, "on": on, "reason": args.reason},
    });
    let answer = super::http::post_to_node(&args.config.config, "/v1/documents", &body)?;
    println!(
        "Node {} {status} from {on} (version {}); coverage everywhere follows as the document arrives",
        args.node, answer["version"]
    );
    Ok(ExitCode::SUCCESS)
}
