//! `lmsync status`.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde_json::Value;

use super::http;
use crate::node::config::Config;

/// Show one node's state on one screen: parent link, counts, store, certificate.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lmsync status --config 440100.toml\n  lmsync status --api http://127.0.0.1:7401 --json"
)]
pub(crate) struct StatusArgs {
    /// The node's config file (to find its API).
    #[arg(
        long,
        short = 'c',
        value_name = "FILE",
        default_value = "lmsync.toml",
        conflicts_with = "api"
    )]
    config: std::path::PathBuf,
    /// The node's API base URL, instead of a config file.
    #[arg(long, value_name = "URL")]
    api: Option<String>,
    /// Print the status JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let base = match &args.api {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => http::api_url(&Config::load(&args.config).context("invalid config")?),
    };
    let status = super::runtime()?.block_on(async {
        let client = http::client()?;
        http::get_json(&client, &format!("{base}/v1/status")).await
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", render(&status));
    }
    Ok(ExitCode::SUCCESS)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// The human form of a status document.
pub(crate) fn render(s: &Value) -> String {
    let mut out = String::new();
    let line = |out: &mut String, k: &str, v: String| out.push_str(&format!("{k:<14}{v}\n"));
    line(
        &mut out,
        "node",
        format!(
            "{} {} ({})",
            text(&s["node"]),
            text(&s["name"]),
            text(&s["tier"])
        ),
    );
    line(
        &mut out,
        "uptime",
        format!(
            "{}s since {}",
            text(&s["uptime_seconds"]),
            text(&s["started_at"])
        ),
    );
    let p = &s["parent"];
    if p.is_null() {
        line(&mut out, "parent", "none".into());
    } else {
        line(
            &mut out,
            "parent",
            format!(
                "{} at {}: {}, last sync {}, pending {}, acked by parent up to seq {}, by ministry up to seq {}",
                text(&p["code"]),
                text(&p["address"]),
                if p["connected"].as_bool() == Some(true) {
                    "connected"
                } else {
                    "not connected"
                },
                text(&p["last_sync"]),
                text(&p["pending"]),
                text(&p["acked_by_parent"]),
                text(&p["acked_by_ministry"])
            ),
        );
    }
    let children = s["children"].as_array().map_or(0, Vec::len);
    line(&mut out, "children", children.to_string());
    line(&mut out, "records", text(&s["records"]["total"]));
    if let Some(kinds) = s["records"]["by_kind"].as_object() {
        for (k, n) in kinds {
            line(&mut out, "", format!("{k:<28}{n}"));
        }
    }
    line(&mut out, "documents", text(&s["documents"]));
    let standards: Vec<String> = s["standards"]
        .as_array()
        .map_or_else(Vec::new, |a| a.iter().map(text).collect());
    line(&mut out, "standards", standards.join(", "));
    let st = &s["store"];
    let health = if st["healthy"].as_bool() == Some(true) {
        "healthy".to_string()
    } else {
        format!("FAULT: {}", text(&st["fault"]))
    };
    line(
        &mut out,
        "store",
        format!(
            "{} bytes at {} ({health})",
            text(&st["bytes"]),
            text(&st["path"])
        ),
    );
    if s["restoring"].as_bool() == Some(true) {
        let from = if p.is_null() {
            "its children"
        } else {
            "its parent"
        };
        line(
            &mut out,
            "",
            format!("REBUILDING from {from}: writes and publishing refused until it is done"),
        );
    }
    if let Some(aside) = st["set_aside"].as_array().filter(|a| !a.is_empty()) {
        let names: Vec<String> = aside.iter().map(text).collect();
        line(
            &mut out,
            "",
            format!("damaged stores kept for inspection: {}", names.join(", ")),
        );
    }
    let c = &s["certificate"];
    line(
        &mut out,
        "certificate",
        format!(
            "expires {} ({} days left)",
            text(&c["expires_at"]),
            text(&c["days_left"])
        ),
    );
    let i = &s["ingest"];
    line(
        &mut out,
        "ingest",
        format!(
            "{} requests, {} written, {} unchanged, {} rejected, {} commits",
            text(&i["requests"]),
            text(&i["records_written"]),
            text(&i["records_unchanged"]),
            text(&i["records_rejected"]),
            text(&i["commits"])
        ),
    );
    out
}
