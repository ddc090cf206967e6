//! `GET /v1/export`: the records of a scope, optionally of some kinds and placed in one
//! quarter, streamed as NDJSON for `lmsync export` (`docs/reference/api.md`). Needs the
//! token: it hands out every pseudonymous record of the scope.
//!
//! The records are read one owner at a time, each owner's in key order, on a thread of
//! the export's own, and sent in chunks a few ahead of the client: a client that reads
//! slowly slows the reading, one that goes away ends it, and a node that stops ends it
//! with an error line. Not a cut: records committed while it streams may or may not be
//! in it, each at the version read. At most [`MAX_EXPORTS`] stream at once.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Extensions, HeaderMap};
use axum::response::Response;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::error::ApiError;
use super::extract::{Query, kind_param};
use super::serve::Stopping;
use super::{ApiStats, AppState, require_token};
use crate::core::model::{Kind, NodeCode};
use crate::core::store::Store;
use crate::reporting::analysis::Period;
use crate::reporting::export::in_period;
use crate::reporting::export::line::{end_line, error_line};

/// Exports streaming at once; another gets 503 `overloaded`.
pub(super) const MAX_EXPORTS: u64 = 2;
/// Bytes gathered before a chunk is sent.
const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks an export may run ahead of its client.
const CHUNKS_AHEAD: usize = 4;

/// The media type of the stream.
const NDJSON: &str = "application/x-ndjson";

/// Query of `GET /v1/export`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExportQuery {
    scope: Option<String>,
    kind: Option<String>,
    period: Option<String>,
}

/// What one export streams.
struct Asked {
    owners: Vec<NodeCode>,
    kinds: Vec<Kind>,
    period: Option<Period>,
}

fn asked(app: &AppState, q: &ExportQuery) -> Result<Asked, ApiError> {
    let scope = super::coverage::scope_of(app, q.scope.as_deref())?.code();
    let kinds = match q.kind.as_deref() {
        None => Kind::ALL.to_vec(),
        Some(list) => list
            .split(',')
            .map(kind_param)
            .collect::<Result<Vec<_>, _>>()?,
    };
    let period = q
        .period
        .as_deref()
        .map(|p| {
            p.parse::<Period>()
                .map_err(|e| ApiError::bad_request("bad_period", format!("{e}")))
        })
        .transpose()?;
    let owners = app
        .store
        .owner_counts()
        .into_iter()
        .filter(|(owner, counts)| {
            (*owner == scope || owner.is_within(scope))
                && kinds
                    .iter()
                    .any(|k| counts.by_kind.get(k).is_some_and(|n| *n > 0))
        })
        .map(|(owner, _)| owner)
        .collect();
    Ok(Asked {
        owners,
        kinds,
        period,
    })
}

/// Counts an export as streaming until dropped.
struct Slot(Arc<ApiStats>);

impl Slot {
    fn take(stats: &Arc<ApiStats>) -> Option<Slot> {
        let before = stats.exports.fetch_add(1, Relaxed);
        if before >= MAX_EXPORTS {
            stats.exports.fetch_sub(1, Relaxed);
            return None;
        }
        Some(Slot(stats.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.exports.fetch_sub(1, Relaxed);
    }
}

/// `GET /v1/export[?scope=CODE][&kind=K[,K…]][&period=YYYYQn]`.
pub(super) async fn export(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    require_token(&app, &headers)?;
    let asked = asked(&app, &q)?;
    let Some(slot) = Slot::take(&app.stats) else {
        return Ok(super::limits::overloaded(&format!(
            "{MAX_EXPORTS} exports are streaming from this node already; retry when one ends"
        )));
    };
    let stopping = extensions.get::<Stopping>().cloned();
    let store = app.store.clone();
    let runtime = tokio::runtime::Handle::current();
    let (chunks, body) = mpsc::channel::<Bytes>(CHUNKS_AHEAD);
    std::thread::Builder::new()
        .name("export".into())
        .spawn(move || {
            let _slot = slot;
            let stopped = stopping.clone();
            let stopped = move || stopped.as_ref().is_some_and(Stopping::is_set);
            let mut out = Chunker {
                buf: Vec::with_capacity(CHUNK_BYTES + 4096),
                chunks,
                stopping,
                runtime,
            };
            match stream(store.as_ref(), &asked, &mut out, stopped) {
                Ok(sent) => {
                    tracing::info!(records = sent, "Export streamed");
                    let _ = out.line(&end_line(sent)).and_then(|()| out.send());
                }
                Err(Ended::Gone) => {}
                Err(Ended::Failed(kind, message)) => {
                    tracing::warn!(%message, "Export not finished");
                    let _ = out
                        .line(&error_line(kind, &message))
                        .and_then(|()| out.send());
                }
            }
        })
        .map_err(ApiError::internal)?;
    Ok(super::stream::streamed(body, NDJSON))
}

/// How a stream ended early.
enum Ended {
    /// The client went away: nobody to tell.
    Gone,
    /// The node could not go on: the error line's kind and message.
    Failed(&'static str, String),
}

/// Gathers lines into chunks for the client.
struct Chunker {
    buf: Vec<u8>,
    chunks: mpsc::Sender<Bytes>,
    /// The server's stopping flag: a chunk waiting for a client that does not read is
    /// given up once the node stops.
    stopping: Option<Stopping>,
    runtime: tokio::runtime::Handle,
}

impl Chunker {
    fn line(&mut self, value: &serde_json::Value) -> Result<(), Ended> {
        serde_json::to_writer(&mut self.buf, value)
            .map_err(|e| Ended::Failed("internal", e.to_string()))?;
        self.buf.push(b'\n');
        if self.buf.len() >= CHUNK_BYTES {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> Result<(), Ended> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(CHUNK_BYTES + 4096),
        ));
        let chunks = &self.chunks;
        let sent = match &mut self.stopping {
            Some(stop) => self.runtime.block_on(async {
                tokio::select! {
                    biased;
                    sent = chunks.send(chunk) => sent.is_ok(),
                    () = stop.wait() => false,
                }
            }),
            None => chunks.blocking_send(chunk).is_ok(),
        };
        if sent { Ok(()) } else { Err(Ended::Gone) }
    }
}

/// Sends every record asked for; returns how many.
fn stream(
    store: &dyn Store,
    asked: &Asked,
    out: &mut Chunker,
    stopped: impl Fn() -> bool,
) -> Result<u64, Ended> {
    let mut sent = 0;
    for owner in &asked.owners {
        for record in store.records_of(*owner) {
            if stopped() {
                return Err(Ended::Failed(
                    "shutting_down",
                    "the node is stopping; export again once it runs".into(),
                ));
            }
            let record = record.map_err(|e| Ended::Failed("storage_unavailable", e.to_string()))?;
            if asked.kinds.contains(&record.envelope.kind) && in_period(&record, asked.period) {
                out.line(&super::record_json(&record))?;
                sent += 1;
            }
        }
    }
    Ok(sent)
}
