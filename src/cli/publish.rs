//! `lmsync publish`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde_json::Value;

use super::{ConfigArg, http};
use crate::node::config::Config;
use crate::node::daemon::read_token;

/// Publish a document from a JSON file: a classification version, a policy, a
/// service-standard target or a pilot designation. Only the ministry (national) and
/// provinces (their subtree) publish; the node signs the document with its key and it
/// flows down to every node below, each verifying the signature.
///
/// The file holds `{"kind": K, "id": ID, "body": {...}}`. A classification version's
/// body is `{"scheme": "CN-OCC", "version": NEW, "supersedes": IN_FORCE, "add": [[code,
/// name], ...]}` (or `"codes"` for a complete list).
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  echo '{\"kind\":\"classification_version\",\"id\":\"CN-OCC@1999+2005\",\"body\":{\"scheme\":\"CN-OCC\",\"version\":\"1999+2005\",\"supersedes\":\"1999\",\"add\":[[\"4-07-99\",\"养老护理员\"]]}}' > occ.json\n  lmsync publish --config ministry.toml occ.json"
)]
pub(crate) struct PublishArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The document file.
    #[arg(value_name = "PATH")]
    path: PathBuf,
}

pub(crate) fn run(args: PublishArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config.config).context("invalid config")?;
    let text = std::fs::read_to_string(&args.path)
        .with_context(|| format!("reading {}", args.path.display()))?;
    let doc: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", args.path.display()))?;
    let url = format!("{}/v1/documents", http::api_url(&config));
    let token = read_token(&config.token_file)?;
    let answer = super::runtime()?
        .block_on(http::post_json(&url, &token, &doc))
        .context("publishing failed")?;
    let verb = if answer["changed"] == Value::Bool(false) {
        "already published"
    } else {
        "published"
    };
    let kind = answer["kind"].as_str().unwrap_or("");
    let issuer = answer["issuer"].as_str().unwrap_or("");
    let by_province = issuer
        .parse::<crate::core::model::NodeCode>()
        .is_ok_and(|n| n.tier() == crate::core::model::Tier::Province);
    let up = if by_province && crate::core::model::document::reported_up(kind) {
        " and up to the ministry"
    } else {
        ""
    };
    println!(
        "{kind} {} version {} {verb} by {issuer}; it flows down to every node below{up}",
        answer["id"].as_str().unwrap_or(""),
        answer["version"],
    );
    Ok(ExitCode::SUCCESS)
}
