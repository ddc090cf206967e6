//! `lmsync export`: a running node's records of a scope as partitioned Parquet for
//! analytics engines (`docs/ANALYTICS.md`), read through its API (`GET /v1/export`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use super::{ConfigArg, http};
use crate::core::model::{Kind, NodeCode};
use crate::node::clock::{Clock, SystemClock};
use crate::node::config::Config;
use crate::node::daemon::read_token;
use crate::reporting::analysis::Period;
use crate::reporting::export::line::{Line, MAX_LINE_BYTES, parse_line};
use crate::tooling::export::{Exporter, MANIFEST_FILE, Manifest, Plan, check_out_dir};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Apache Parquet, hive-style partitions per kind, quarter and city.
    Parquet,
}

/// `lmsync export --help`.
pub(crate) const EXPORT_ABOUT: &str = "\
Export a running node's records as partitioned Parquet for analytics engines.

The node streams the records of the scope through its API (GET /v1/export, with the \
token); they are written to DIR/kind=K/quarter=YYYYQn/city=CODE/part-N.parquet, one \
schema per kind: the envelope (owner, id, version, seq, status, recorded_at, hash, \
code_refs) and the kind's fields, typed (dates, integers, money as DECIMAL(18,2) yuan, \
booleans, lists). A record's quarter is that of the date the quarterly report places it \
by (a vacancy's valid_from, a job seeker's registered_on, an event's date); offices and \
employers belong to every quarter and go under quarter=all. Persons appear only as \
their pseudonym (pid). DIR gets _README.md and, written last, _manifest.json (node, \
scope, period, kinds, rows per file); a DIR without _manifest.json is unfinished. \
docs/ANALYTICS.md shows how to query it with DuckDB, Spark or Trino.";

/// `lmsync export` (see [`EXPORT_ABOUT`]).
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
lmsync export --config 100000.toml --format parquet --out /data/lmsync/1999Q3 --period 1999Q3\n  \
lmsync export --config 100000.toml --format parquet --out v440100 --kind vacancy,job_seeker --scope 440100")]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The file format.
    #[arg(long, value_enum, default_value = "parquet")]
    format: Format,
    /// Directory to write into: created, and refused unless missing or empty.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Only these record kinds (comma-separated). Default: all twelve.
    #[arg(long, value_name = "K[,K…]", value_delimiter = ',')]
    kind: Vec<String>,
    /// Only the records placed in this quarter (YYYYQn), and the offices and employers.
    #[arg(long, value_name = "YYYYQn")]
    period: Option<Period>,
    /// Only this city or province within the node's subtree (default: the node's own).
    #[arg(long, value_name = "CODE")]
    scope: Option<NodeCode>,
    /// Print the manifest as JSON instead of a summary.
    #[arg(long)]
    json: bool,
    /// No progress line.
    #[arg(long, short)]
    quiet: bool,
}

fn kinds(names: &[String]) -> anyhow::Result<Vec<Kind>> {
    if names.is_empty() {
        return Ok(Kind::ALL.to_vec());
    }
    let mut out = Vec::new();
    for name in names {
        let kind = Kind::parse(name.trim()).with_context(|| {
            let all: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            format!("--kind {name:?} names no record kind ({})", all.join(", "))
        })?;
        if !out.contains(&kind) {
            out.push(kind);
        }
    }
    Ok(out)
}

fn progress(quiet: bool) -> indicatif::ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {pos} records {msg}") {
        bar.set_style(style);
    }
    bar
}

pub(crate) fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let Format::Parquet = args.format;
    let config = Config::load(&args.config.config).context("invalid config")?;
    let kinds = kinds(&args.kind)?;
    check_out_dir(&args.out)?;
    let token = read_token(&config.token_file)?;
    let scope = args.scope.unwrap_or(config.node);
    let mut url = format!("{}/v1/export?scope={scope}", http::api_url(&config));
    if kinds.len() < Kind::ALL.len() {
        let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        url.push_str(&format!("&kind={}", names.join(",")));
    }
    if let Some(p) = args.period {
        url.push_str(&format!("&period={p}"));
    }
    let plan = Plan {
        node: config.node,
        scope,
        period: args.period,
        kinds,
        started_at_ms: SystemClock.now_ms(),
    };
    let bar = progress(args.quiet);
    let manifest = super::runtime()?.block_on(fetch(&url, &token, &args.out, plan, &bar))?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&manifest)?);
    } else {
        print_summary(&manifest, &args.out);
    }
    Ok(ExitCode::SUCCESS)
}

/// Streams the export from `url` into `out`.
async fn fetch(
    url: &str,
    token: &str,
    out: &std::path::Path,
    plan: Plan,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<Manifest> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(120))
        .build()?;
    let mut response = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("cannot reach the node at {url}; is `lmsync run` running?"))?;
    if !response.status().is_success() {
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        bail!(
            "{url} answered {status}: {}",
            body["message"].as_str().unwrap_or("the export was refused")
        );
    }
    let mut exporter = Exporter::create(out, plan)?;
    let mut pending: Vec<u8> = Vec::new();
    let mut end = None;
    while let Some(chunk) = response
        .chunk()
        .await
        .with_context(|| format!("reading the export from {url}"))?
    {
        pending.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(at) = pending[start..].iter().position(|b| *b == b'\n') {
            let line = &pending[start..start + at];
            start += at + 1;
            if end.is_some() {
                bail!("the node sent more after the end of the export");
            }
            match parse_line(line).context("the export stream")? {
                Line::Record(record) => exporter.push(&record)?,
                Line::End { records } => end = Some(records),
            }
        }
        pending.drain(..start);
        if pending.len() > MAX_LINE_BYTES {
            bail!("the node sent a line over {MAX_LINE_BYTES} bytes");
        }
        bar.set_position(exporter.records());
    }
    let Some(said) = end else {
        bail!(
            "the export stream ended before its end line, after {} records: {} is unfinished \
             (it has no {MANIFEST_FILE})",
            exporter.records(),
            out.display()
        );
    };
    Ok(exporter.finish_all(said, SystemClock.now_ms())?)
}

fn print_summary(m: &Manifest, out: &std::path::Path) {
    println!(
        "Exported {} records of {} ({}) from node {} into {}: {} files.",
        m.records,
        m.scope,
        m.period.as_deref().unwrap_or("every quarter"),
        m.node,
        out.display(),
        m.files.len()
    );
    let width = m
        .rows_by_kind
        .keys()
        .map(|k| k.as_str().len())
        .max()
        .unwrap_or(4);
    for (kind, rows) in &m.rows_by_kind {
        let files = m.files.iter().filter(|f| f.kind == *kind).count();
        println!(
            "  {:<width$}  {rows:>10} rows  {files:>5} files",
            kind.as_str()
        );
    }
}
