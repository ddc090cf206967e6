//! `lmsync changes`: follows a node's change feed (`GET /v1/changes`), printing its record
//! lines to stdout and keeping the cursor of the last line written in a file, so that a
//! consumer restarted from that file misses nothing.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;

use super::http;
use crate::node::api::{DEFAULT_LIMIT, DEFAULT_WAIT_SECS, MAX_LIMIT, MAX_WAIT_SECS};
use crate::node::config::Config;

/// Longest line accepted from the feed (a record is at most 60 KiB encoded; its JSON and
/// a cursor fit many times over).
const MAX_LINE: usize = 8 << 20;
/// Longest pause between attempts while following a node that does not answer.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// `lmsync changes` (see [`CHANGES_ABOUT`]).
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    lmsync changes --config 440100.toml --cursor-file changes.cursor --follow >> changes.jsonl\n  \
    lmsync changes --api http://127.0.0.1:7401 --owner 440100 --kind vacancy")]
pub(crate) struct ChangesArgs {
    /// The node's config file (to find its API and token).
    #[arg(
        long,
        short = 'c',
        value_name = "FILE",
        default_value = "lmsync.toml",
        conflicts_with = "api"
    )]
    config: PathBuf,
    /// The node's API base URL, instead of a config file (reads are open on loopback).
    #[arg(long, value_name = "URL")]
    api: Option<String>,
    /// Start after this cursor (default 0: from the beginning). A cursor file that holds a
    /// cursor wins.
    #[arg(long, value_name = "CURSOR")]
    since: Option<String>,
    /// Read the cursor to start from here, if the file exists, and keep the cursor of the
    /// last line written here.
    #[arg(long, value_name = "FILE")]
    cursor_file: Option<PathBuf>,
    /// Keep following: wait for new commits instead of stopping once caught up, and try
    /// again when the node does not answer. Stop with Ctrl-C.
    #[arg(long)]
    follow: bool,
    /// Only the records of this owner (a node code).
    #[arg(long, value_name = "CODE")]
    owner: Option<String>,
    /// Only records of this kind.
    #[arg(long, value_name = "KIND")]
    kind: Option<String>,
    /// Lines per request, at most 10000.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_LIMIT as u64)]
    limit: u64,
    /// With --follow, how long one request waits for a commit, in seconds (at most 60).
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_WAIT_SECS)]
    wait: u64,
}

/// The verb's long help.
pub(crate) const CHANGES_ABOUT: &str = "\
Print a node's record changes as JSON Lines, resumable from a cursor.

Each line is {\"cursor\": \"...\", \"record\": {...}}, the record as GET \
/v1/records/{owner}/{kind}/{id} shows it, each owner's records in the order they were \
committed (GET /v1/changes). With --cursor-file, the cursor of the last line written \
(stdout flushed first) is kept in that file, replaced whole, and a run started with the \
same file goes on from there: nothing is missed, and at most the lines after the last \
saved cursor come again. Without --follow the command stops once it has caught up.";

/// How one request ended.
enum Ended {
    /// The last line came; `more` says whether more can be read at once.
    Whole { more: bool },
    /// The node refused the request (4xx): asking again will not help.
    Refused(anyhow::Error),
    /// The node could not be reached, failed (5xx) or broke the answer off.
    Broken(anyhow::Error),
}

pub(crate) fn run(args: ChangesArgs) -> anyhow::Result<ExitCode> {
    if args.limit == 0 || args.limit > MAX_LIMIT as u64 {
        bail!("--limit must be from 1 to {MAX_LIMIT}");
    }
    if args.wait > MAX_WAIT_SECS {
        bail!("--wait must be at most {MAX_WAIT_SECS} seconds");
    }
    let (base, token) = match &args.api {
        Some(url) => (url.trim_end_matches('/').to_string(), None),
        None => {
            let config = Config::load(&args.config).context("invalid config")?;
            let token = crate::node::daemon::read_token(&config.token_file).ok();
            (http::api_url(&config), token)
        }
    };
    let saved = match &args.cursor_file {
        Some(f) => read_cursor(f)?,
        None => None,
    };
    let mut cursor = saved.or(args.since.clone()).unwrap_or_else(|| "0".into());
    let wait = if args.follow { args.wait } else { 0 };
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(wait + 60))
        .build()?;
    super::runtime()?.block_on(async {
        let mut backoff = Duration::from_millis(250);
        loop {
            let mut request = client
                .get(format!("{base}/v1/changes"))
                .query(&[("since", cursor.as_str())])
                .query(&[("limit", args.limit), ("wait", wait)]);
            for (name, value) in [("owner", &args.owner), ("kind", &args.kind)] {
                if let Some(v) = value {
                    request = request.query(&[(name, v)]);
                }
            }
            if let Some(t) = &token {
                request = request.bearer_auth(t);
            }
            match one_answer(request, &mut cursor, args.cursor_file.as_deref()).await {
                Ended::Whole { more } => {
                    backoff = Duration::from_millis(250);
                    if !more && !args.follow {
                        return Ok(ExitCode::SUCCESS);
                    }
                }
                Ended::Refused(e) => return Err(e),
                Ended::Broken(e) if !args.follow => return Err(e),
                Ended::Broken(e) => {
                    eprintln!("warning: {e:#}; trying again in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    })
}

/// Sends one request and writes its record lines, saving the cursor after each batch of
/// lines written.
async fn one_answer(
    request: reqwest::RequestBuilder,
    cursor: &mut String,
    cursor_file: Option<&Path>,
) -> Ended {
    let mut response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            return Ended::Broken(
                anyhow::Error::new(e).context("cannot reach the node; is `lmsync run` running?"),
            );
        }
    };
    let status = response.status();
    if !status.is_success() {
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let error = anyhow::anyhow!(
            "the node answered {status}: {}",
            body["message"].as_str().unwrap_or("no reason given")
        );
        return if status.is_client_error() {
            Ended::Refused(error)
        } else {
            Ended::Broken(error)
        };
    }
    let mut pending: Vec<u8> = Vec::new();
    let mut stdout = std::io::stdout().lock();
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => {
                return Ended::Broken(anyhow::anyhow!(
                    "the answer broke off before its last line; resuming from the last line written"
                ));
            }
            Err(e) => return Ended::Broken(anyhow::Error::new(e).context("reading the feed")),
        };
        pending.extend_from_slice(&chunk);
        let mut ended = None;
        let mut consumed = 0;
        while let Some(end) = pending[consumed..].iter().position(|b| *b == b'\n') {
            let text = &pending[consumed..consumed + end];
            consumed += end + 1;
            let line: Value = match serde_json::from_slice(text) {
                Ok(v) => v,
                Err(e) => {
                    return Ended::Refused(anyhow::anyhow!(
                        "the feed sent a line that is not JSON: {e}"
                    ));
                }
            };
            let Some(next) = line["cursor"].as_str() else {
                return Ended::Refused(anyhow::anyhow!("the feed sent a line without a cursor"));
            };
            if line.get("record").is_some() {
                let written = stdout
                    .write_all(text)
                    .and_then(|()| stdout.write_all(b"\n"));
                if let Err(e) = written {
                    return Ended::Refused(anyhow::Error::new(e).context("writing to stdout"));
                }
            } else {
                ended = Some(line["more"].as_bool().unwrap_or(true));
            }
            *cursor = next.to_string();
        }
        pending.drain(..consumed);
        if consumed > 0 {
            // The cursor is saved only once the lines it covers have left the process.
            if let Err(e) = stdout.flush() {
                return Ended::Refused(anyhow::Error::new(e).context("writing to stdout"));
            }
            if let Some(file) = cursor_file
                && let Err(e) = save_cursor(file, cursor)
            {
                return Ended::Refused(e);
            }
        }
        if let Some(more) = ended {
            return Ended::Whole { more };
        }
        if pending.len() > MAX_LINE {
            return Ended::Refused(anyhow::anyhow!(
                "the feed sent a line over {MAX_LINE} bytes"
            ));
        }
    }
}

/// The cursor kept in `file`, if it exists and holds one.
fn read_cursor(file: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(file) {
        Ok(text) if !text.trim().is_empty() => Ok(Some(text.trim().to_string())),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::Error::new(e).context(format!("reading {}", file.display()))),
    }
}

/// Replaces `file` with `cursor` whole: written and synced beside it, then renamed over it,
/// so that a crash leaves the old cursor or the new one, never a part.
fn save_cursor(file: &Path, cursor: &str) -> anyhow::Result<()> {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let temp = file.with_file_name(name);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&temp)?;
        f.write_all(cursor.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_data()?;
        std::fs::rename(&temp, file)
    };
    write().with_context(|| format!("saving the cursor to {}", file.display()))
}
