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

/// What went wrong on a link, when something did: its last error or break, a refusal,
/// and its alerts, each on a line of its own under the link.
fn link_details(out: &mut String, link: &Value) {
    let mut detail = |what: &str, v: &Value| {
        if !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()) {
            out.push_str(&format!("{:<14}  {what}: {}\n", "", text(v)));
        }
    };
    detail("last error", &link["last_error"]);
    if link["sessions_broken"].as_u64().is_some_and(|n| n > 0) {
        detail("last break", &link["last_break"]);
    }
    detail("refused", &link["refused"]["reason"]);
    if let Some(alerts) = link["alerts"].as_array() {
        for a in alerts {
            detail("alert", a);
        }
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
    if !p.is_null() {
        link_details(&mut out, p);
    }
    let children = s["children"].as_array().cloned().unwrap_or_default();
    line(&mut out, "children", children.len().to_string());
    for c in &children {
        line(
            &mut out,
            "",
            format!(
                "{} {}: {}, last sync {}, lag {} records ({} s)",
                text(&c["code"]),
                c["name"].as_str().unwrap_or(""),
                match (c["connected"].as_bool(), c["retired"].as_str()) {
                    (Some(true), _) => "connected".to_string(),
                    (_, Some(on)) => format!("retired since {on}"),
                    _ => "not connected".to_string(),
                },
                text(&c["last_sync"]),
                text(&c["lag_records"]),
                text(&c["lag_seconds"])
            ),
        );
        link_details(&mut out, c);
    }
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
            "serial {}, expires {} ({} days left)",
            text(&c["serial"]),
            text(&c["expires_at"]),
            text(&c["days_left"])
        ),
    );
    if let Some(warning) = c["warning"].as_str() {
        line(&mut out, "", format!("! {warning}"));
    }
    for r in s["revoked_certificates"].as_array().into_iter().flatten() {
        line(
            &mut out,
            "revoked",
            format!(
                "certificate {} of {} (by {}: {})",
                text(&r["serial"]),
                text(&r["node"]),
                text(&r["issuer"]),
                text(&r["reason"])
            ),
        );
    }
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::render;

    #[test]
    fn text_status_shows_each_link_its_state_lag_and_what_went_wrong() {
        let status = json!({
            "node": "440000", "name": "广东省", "tier": "province",
            "parent": {"code": "100000", "address": "10.0.0.1:7400", "connected": false,
                       "last_sync": null, "pending": 3, "last_error": "timed out",
                       "sessions_broken": 2, "last_break": "connection lost",
                       "refused": null, "alerts": []},
            "children": [
                {"code": "440100", "name": "广州市", "connected": true,
                 "last_sync": "1999-10-01T00:00:00Z", "lag_records": 12, "lag_seconds": 4,
                 "last_error": null, "sessions_broken": 0, "refused": null,
                 "alerts": ["regression: 440100 offered 5, held 9"]}
            ],
        });
        let text = render(&status);
        for expected in [
            "last error: timed out",
            "last break: connection lost",
            "440100 广州市: connected, last sync 1999-10-01T00:00:00Z, lag 12 records (4 s)",
            "alert: regression: 440100 offered 5, held 9",
        ] {
            assert!(text.contains(expected), "{expected:?} not in:\n{text}");
        }
    }
}
