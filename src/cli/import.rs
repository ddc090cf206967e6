//! `lmsync import`: a JSON Lines file into a running node, through its API.

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

/// Ingest a JSON Lines file of records (one `{"kind","id","data"}` per line) through a
/// running node's API. Prints accepted and rejected counts, and each rejected line with its
/// number and reason. Exits 1 if any line was rejected (the others are still stored).
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  lmsync gen --node 440100 --records 50000 --seed 1 > r.jsonl\n  lmsync import --config 440100.toml r.jsonl"
)]
pub(crate) struct ImportArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The JSON Lines file.
    #[arg(value_name = "PATH")]
    path: PathBuf,
    /// Records per request.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    batch: u32,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=32))]
    parallel: u32,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

/// One rejected line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Rejected {
    line: usize,
    reason: String,
}

#[derive(Debug, Default)]
struct Tally {
    accepted: u64,
    unchanged: u64,
    rejected: Vec<Rejected>,
}

struct Batch {
    lines: Vec<usize>,
    records: Vec<Value>,
}

/// The `(kind, id)` a line writes, to keep updates of one record in file order.
fn record_key(v: &Value) -> (String, String) {
    (v["kind"].to_string(), v["id"].to_string())
}

struct Sender {
    client: reqwest::Client,
    url: String,
    token: String,
}

impl Sender {
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
        let field = r["field"].as_str().unwrap_or("");
        let reason = format!(
            "{}{}: {}",
            if field.is_empty() {
                String::new()
            } else {
                format!("{field} ")
            },
            r["error"].as_str().unwrap_or("rejected"),
            r["message"].as_str().unwrap_or("")
        );
        t.rejected.push(Rejected {
            line: lines.get(index).copied().unwrap_or(0),
            reason,
        });
    }
    t
}

fn progress(total: u64, quiet: bool) -> indicatif::ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ({eta})")
    {
        bar.set_style(style);
    }
    bar
}

pub(crate) fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config.config).context("invalid config")?;
    let sender = Sender {
        client: http::client()?,
        url: format!("{}/v1/records", http::api_url(&config)),
        token: read_token(&config.token_file)?,
    };
    let file = std::fs::File::open(&args.path)
        .with_context(|| format!("opening {}", args.path.display()))?;
    let bar = progress(file.metadata().map(|m| m.len()).unwrap_or(0), args.quiet);
    let limit = config.body_limit;
    let tally =
        super::runtime()?.block_on(import(sender, BufReader::new(file), &args, limit, &bar))?;
    bar.finish_and_clear();
    Ok(report(&args.path, &tally))
}

/// Sends batches with up to `--parallel` requests in flight. Requests in flight may commit
/// in any order, so a batch that writes a record an in-flight batch also writes waits for
/// them all: updates of one record are applied in file order. A batch also stays under
/// the node's request limit (`body_limit` bytes): a line that alone exceeds it is
/// rejected by its number, and the lines after it go on.
async fn import(
    sender: Sender,
    reader: impl BufRead,
    args: &ImportArgs,
    body_limit: usize,
    bar: &indicatif::ProgressBar,
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
    // The JSON array's brackets and commas, on top of the lines themselves.
    let mut batch_bytes = 2;
    for (i, line) in reader.split(b'\n').enumerate() {
        let line_no = i + 1;
        let bytes = line.with_context(|| format!("reading line {line_no}"))?;
        bar.inc(bytes.len() as u64 + 1);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if bytes.len() + 2 > body_limit {
            total.rejected.push(Rejected {
                line: line_no,
                reason: format!(
                    "too_large: {} bytes, over the node's request limit of {body_limit} bytes \
                     (api.body_limit)",
                    bytes.len()
                ),
            });
            continue;
        }
        // A batch goes once it is full, in records or in bytes with this line.
        let full = batch.records.len() == size || batch_bytes + bytes.len() + 1 > body_limit;
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
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) => {
                batch_bytes += bytes.len() + 1;
                batch.lines.push(line_no);
                batch.records.push(v);
            }
            Err(e) => total.rejected.push(Rejected {
                line: line_no,
                reason: format!("malformed_json: {e}"),
            }),
        }
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

fn report(path: &std::path::Path, tally: &Tally) -> ExitCode {
    let mut rejected = tally.rejected.clone();
    rejected.sort();
    for r in &rejected {
        println!("line {}: {}", r.line, r.reason);
    }
    println!(
        "{}: {} accepted ({} unchanged), {} rejected",
        path.display(),
        tally.accepted,
        tally.unchanged,
        rejected.len()
    );
    if rejected.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "error: {} lines rejected; the other lines are stored",
            rejected.len()
        );
        ExitCode::FAILURE
    }
}
