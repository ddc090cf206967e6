//! `lmsync import`: a JSON Lines file, or an office's CSV or .xlsx export through a
//! mapping (`import_office.rs`), into a running node through its API; with `--dry-run`
//! the node validates every record and stores none.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;
use tokio::task::JoinSet;

use super::{ConfigArg, http};
use crate::node::config::Config;
use crate::node::daemon::read_token;

/// Ingest a JSON Lines file of records (one `{"kind","id","data"}` per line), or an
/// office's .csv (UTF-8 or GB18030) or .xlsx export through a mapping file, through a
/// running node's API. Prints accepted and rejected counts, and each rejected line or row
/// with its number (and for office files its column) and reason. Exits 1 if any was
/// rejected (the others are still stored).
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lmsync gen --node 440100 --records 50000 --seed 1 > r.jsonl\n  lmsync import --config 440100.toml r.jsonl\n  lmsync import --config 440100.toml --mapping config/mappings/vacancy.toml --dry-run 空岗登记.csv\n  lmsync import --config 440100.toml --mapping config/mappings/job_seeker.toml 求职登记.xlsx"
)]
pub(crate) struct ImportArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The file: JSON Lines, or with --mapping a .csv (.txt, .tsv) or .xlsx office export.
    #[arg(value_name = "PATH")]
    pub(super) path: PathBuf,
    /// The mapping file (TOML) that turns an office export's rows into records
    /// (examples in config/mappings/).
    #[arg(long, value_name = "MAP")]
    pub(super) mapping: Option<PathBuf>,
    /// Parse, map and have the node validate every record (its own checks, against the
    /// classifications in force there) without storing anything.
    #[arg(long)]
    pub(super) dry_run: bool,
    /// Records per request.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(super) batch: u32,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=32))]
    pub(super) parallel: u32,
    /// No progress bar.
    #[arg(long, short)]
    pub(super) quiet: bool,
}

/// One rejected line or row: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Rejected {
    /// The line (JSON Lines, CSV) or sheet row.
    pub(super) line: usize,
    /// The column as the office finds it (`F 人数`), empty when unknown.
    pub(super) column: String,
    /// The record field at fault (`data.occupation`), empty for the whole record.
    pub(super) field: String,
    /// The error code.
    pub(super) error: String,
    /// What is wrong.
    pub(super) message: String,
}

impl Rejected {
    fn new(line: usize, error: &str, message: String) -> Self {
        Rejected {
            line,
            column: String::new(),
            field: String::new(),
            error: error.to_string(),
            message,
        }
    }
}

/// One line or row of the input, ready to send or refused before sending.
pub(super) enum Entry {
    /// A record and the line or row it came from.
    Record {
        /// Line or row number.
        line: usize,
        /// The record JSON.
        record: Value,
        /// Its size as sent, bytes.
        size: usize,
    },
    /// Refused before sending (one entry per column at fault).
    Rejected(Vec<Rejected>),
    /// Nothing to send (a blank line).
    Skip,
}

#[derive(Debug, Default)]
pub(super) struct Tally {
    pub(super) accepted: u64,
    pub(super) unchanged: u64,
    pub(super) rejected: Vec<Rejected>,
}

struct Batch {
    lines: Vec<usize>,
    records: Vec<Value>,
}

/// The `(kind, id)` a line writes, to keep updates of one record in file order.
fn record_key(v: &Value) -> (String, String) {
    (v["kind"].to_string(), v["id"].to_string())
}

pub(super) struct Sender {
    client: reqwest::Client,
    url: String,
    token: String,
}

impl Sender {
    /// A sender to the node of `config`, storing or (`dry_run`) only validating.
    pub(super) fn new(config: &Config, dry_run: bool) -> anyhow::Result<Sender> {
        Ok(Sender {
            client: http::client()?,
            url: format!(
                "{}/v1/records{}",
                http::api_url(config),
                if dry_run { "?dry_run=true" } else { "" }
            ),
            token: read_token(&config.token_file)?,
        })
    }

    async fn send(&self, batch: Batch) -> anyhow::Result<Tally> {
        let first = batch.lines.first().copied().unwrap_or(0);
        let response = self
            .client
            .post(&self.url)
            .bearer_auth(&self.token)
            .json(&batch.records)
            .send()
            .await
            .with_context(|| format!("sending the batch starting at line {first}"))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .context("the node did not answer JSON")?;
        if status != reqwest::StatusCode::OK && status != reqwest::StatusCode::UNPROCESSABLE_ENTITY
        {
            bail!(
                "the batch starting at line {first} was refused ({status}): {}",
                body["message"].as_str().unwrap_or("no message")
            );
        }
        Ok(tally(&batch.lines, &body))
    }
}

fn tally(lines: &[usize], body: &Value) -> Tally {
    let mut t = Tally::default();
    for a in body["accepted"].as_array().into_iter().flatten() {
        t.accepted += 1;
        if a["changed"] == Value::Bool(false) {
            t.unchanged += 1;
        }
    }
    for r in body["rejected"].as_array().into_iter().flatten() {
        let index = r["index"]
            .as_u64()
            .and_then(|i| usize::try_from(i).ok())
            .unwrap_or(0);
        t.rejected.push(Rejected {
            line: lines.get(index).copied().unwrap_or(0),
            column: String::new(),
            field: r["field"].as_str().unwrap_or("").to_string(),
            error: r["error"].as_str().unwrap_or("rejected").to_string(),
            message: r["message"].as_str().unwrap_or("").to_string(),
        });
    }
    t
}

/// A progress bar on a terminal's stderr: `template` over `total` units.
pub(super) fn progress(total: u64, template: &str, quiet: bool) -> indicatif::ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

pub(crate) fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config.config).context("invalid config")?;
    // A .csv or .xlsx file is an office export (and needs a mapping); a .txt or .tsv one
    // is only with --mapping, else it is JSON Lines as before.
    let spreadsheet = args
        .path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["csv", "xlsx", "xlsm"].contains(&e.to_ascii_lowercase().as_str()));
    if args.mapping.is_some() || spreadsheet {
        return super::import_office::run(&args, &config);
    }
    let sender = Sender::new(&config, args.dry_run)?;
    let file = std::fs::File::open(&args.path)
        .with_context(|| format!("opening {}", args.path.display()))?;
    let bar = progress(
        file.metadata().map(|m| m.len()).unwrap_or(0),
        "{bar:40} {bytes}/{total_bytes} {msg} ({eta})",
        args.quiet,
    );
    let limit = config.body_limit;
    let entries =
        BufReader::new(file)
            .split(b'\n')
            .enumerate()
            .map(|(i, line)| -> anyhow::Result<Entry> {
                let line_no = i + 1;
                let bytes = line.with_context(|| format!("reading line {line_no}"))?;
                bar.inc(bytes.len() as u64 + 1);
                Ok(jsonl_entry(line_no, &bytes, limit))
            });
    let tally = super::runtime()?.block_on(import(sender, entries, &args, limit))?;
    bar.finish_and_clear();
    Ok(report(&args.path, &tally, &Style::jsonl(args.dry_run)))
}

/// One JSON Lines line as an entry: a line alone over the node's request limit is
/// refused unparsed.
fn jsonl_entry(line: usize, bytes: &[u8], body_limit: usize) -> Entry {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Entry::Skip;
    }
    if bytes.len() + 2 > body_limit {
        return Entry::Rejected(vec![too_large(line, bytes.len(), body_limit)]);
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(record) => Entry::Record {
            line,
            record,
            size: bytes.len(),
        },
        Err(e) => Entry::Rejected(vec![Rejected::new(line, "malformed_json", e.to_string())]),
    }
}

fn too_large(line: usize, size: usize, body_limit: usize) -> Rejected {
    Rejected::new(
        line,
        "too_large",
        format!(
            "{size} bytes, over the node's request limit of {body_limit} bytes (api.body_limit)"
        ),
    )
}

/// Sends batches with up to `--parallel` requests in flight. Requests in flight may commit
/// in any order, so a batch that writes a record an in-flight batch also writes waits for
/// them all: updates of one record are applied in input order. A batch also stays under
/// the node's request limit (`body_limit` bytes): a record that alone exceeds it is
/// rejected by its line, and the records after it go on.
pub(super) async fn import(
    sender: Sender,
    entries: impl Iterator<Item = anyhow::Result<Entry>>,
    args: &ImportArgs,
    body_limit: usize,
) -> anyhow::Result<Tally> {
    let sender = std::sync::Arc::new(sender);
    let mut total = Tally::default();
    let mut tasks: JoinSet<anyhow::Result<Tally>> = JoinSet::new();
    let mut in_flight: HashSet<(String, String)> = HashSet::new();
    let mut batch = Batch {
        lines: Vec::new(),
        records: Vec::new(),
    };
    let size = args.batch as usize;
    // The JSON array's brackets and commas, on top of the records themselves.
    let mut batch_bytes = 2;
    for entry in entries {
        let (line, record, bytes) = match entry? {
            Entry::Skip => continue,
            Entry::Rejected(r) => {
                total.rejected.extend(r);
                continue;
            }
            Entry::Record { line, record, size } => (line, record, size),
        };
        if bytes + 2 > body_limit {
            total.rejected.push(too_large(line, bytes, body_limit));
            continue;
        }
        // A batch goes once it is full, in records or in bytes with this record.
        let full = batch.records.len() == size || batch_bytes + bytes + 1 > body_limit;
        if full && !batch.records.is_empty() {
            dispatch(
                take(&mut batch, &mut batch_bytes),
                &sender,
                &mut tasks,
                &mut in_flight,
                &mut total,
                args.parallel as usize,
            )
            .await?;
        }
        batch_bytes += bytes + 1;
        batch.lines.push(line);
        batch.records.push(record);
    }
    if !batch.records.is_empty() {
        dispatch(batch, &sender, &mut tasks, &mut in_flight, &mut total, 1).await?;
    }
    while let Some(done) = tasks.join_next().await {
        merge(&mut total, Some(done))?;
    }
    Ok(total)
}

/// The batch gathered so far, leaving an empty one.
fn take(batch: &mut Batch, bytes: &mut usize) -> Batch {
    *bytes = 2;
    std::mem::replace(
        batch,
        Batch {
            lines: Vec::new(),
            records: Vec::new(),
        },
    )
}

async fn dispatch(
    batch: Batch,
    sender: &std::sync::Arc<Sender>,
    tasks: &mut JoinSet<anyhow::Result<Tally>>,
    in_flight: &mut HashSet<(String, String)>,
    total: &mut Tally,
    parallel: usize,
) -> anyhow::Result<()> {
    let keys: Vec<_> = batch.records.iter().map(record_key).collect();
    if keys.iter().any(|k| in_flight.contains(k)) {
        while let Some(done) = tasks.join_next().await {
            merge(total, Some(done))?;
        }
    }
    while tasks.len() >= parallel {
        merge(total, tasks.join_next().await)?;
    }
    if tasks.is_empty() {
        in_flight.clear();
    }
    in_flight.extend(keys);
    let s = sender.clone();
    tasks.spawn(async move { s.send(batch).await });
    Ok(())
}

fn merge(
    total: &mut Tally,
    done: Option<Result<anyhow::Result<Tally>, tokio::task::JoinError>>,
) -> anyhow::Result<()> {
    if let Some(done) = done {
        let t = done??;
        total.accepted += t.accepted;
        total.unchanged += t.unchanged;
        total.rejected.extend(t.rejected);
    }
    Ok(())
}

/// How a report names things.
pub(super) struct Style {
    /// What one input item is: `line` or `row`.
    pub(super) unit: &'static str,
    /// Nothing was stored: the node only validated.
    pub(super) dry_run: bool,
}

impl Style {
    fn jsonl(dry_run: bool) -> Style {
        Style {
            unit: "line",
            dry_run,
        }
    }
}

/// Prints each rejection (sorted by line) and the counts; the exit code: 1 if any line
/// or row was rejected.
pub(super) fn report(path: &std::path::Path, tally: &Tally, style: &Style) -> ExitCode {
    let mut rejected = tally.rejected.clone();
    rejected.sort();
    for r in &rejected {
        let column = if r.column.is_empty() {
            String::new()
        } else {
            format!(", column {}", r.column)
        };
        let field = if r.field.is_empty() {
            String::new()
        } else {
            format!("{} ", r.field)
        };
        println!(
            "{} {}{column}: {field}{}: {}",
            style.unit, r.line, r.error, r.message
        );
    }
    let count = rejected
        .iter()
        .map(|r| r.line)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    if style.dry_run {
        println!(
            "{} (dry run, nothing stored): {} would be accepted ({} unchanged), {count} rejected",
            path.display(),
            tally.accepted,
            tally.unchanged,
        );
    } else {
        println!(
            "{}: {} accepted ({} unchanged), {count} rejected",
            path.display(),
            tally.accepted,
            tally.unchanged,
        );
    }
    if count == 0 {
        return ExitCode::SUCCESS;
    }
    if style.dry_run {
        eprintln!(
            "error: {count} {}s would be rejected; nothing was stored",
            style.unit
        );
    } else {
        eprintln!(
            "error: {count} {}s rejected; the other {}s are stored",
            style.unit, style.unit
        );
    }
    ExitCode::FAILURE
}
