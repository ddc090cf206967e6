//! `GET /v1/changes?since=CURSOR[&owner=CODE][&kind=K][&limit=N][&wait=S]`: the change
//! feed. NDJSON, one line per record version, `{"cursor", "record"}`, then one last line
//! `{"cursor", "more"}`; see `docs/reference/api.md` for the contract.
//!
//! Each owner's records come from its change log in seq order, read through
//! [`Store::changes`] (which skips a version superseded since, the newer one being
//! further on in the same log), and only up to [`Store::complete_through`]: on a replica
//! records can arrive above a gap (anti-entropy repairs ahead of the upload), and a
//! position past a gap would skip what fills it later. The [`Cursor`] holds each owner's
//! position.
//!
//! The body is produced by a task a few chunks ahead of the client, through a bounded
//! channel: a slow client slows the reads, one that goes away ends them. A response ends
//! after `limit` lines; when nothing is left to read it waits for the next commit of
//! records ([`CommitSignal::subscribe`]) up to `wait`, and ends when the node stops.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use super::cursor::{Cursor, CursorError, TAG};
use super::error::ApiError;
use super::extract::{Query, off_thread};
use super::records::record_json;
use super::serve::Stopping;
use super::{ApiStats, AppState};
use crate::core::model::{Kind, NodeCode};
use crate::core::store::{Store, StoreError};
#[cfg(doc)]
use crate::node::write::CommitSignal;

/// Lines per response when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 1_000;
/// Most lines per response.
pub const MAX_LIMIT: usize = 10_000;
/// Seconds a caught-up request waits for a commit when `wait` is not given.
pub const DEFAULT_WAIT_SECS: u64 = 25;
/// Most seconds a request may wait.
pub const MAX_WAIT_SECS: u64 = 60;
/// Records examined per response at most (the versions of other kinds a `kind` filter
/// passes over count too), so that a filtered request ends in bounded time even over a
/// long log with nothing for it; it ends with `"more": true`.
const MAX_EXAMINED: usize = 50_000;
/// Records read from a change log at a time.
const STEP: usize = 128;
/// A chunk of the body is sent once it holds this many bytes.
const CHUNK_BYTES: usize = 256 * 1024;
/// Chunks produced ahead of the client.
const CHUNKS_AHEAD: usize = 4;

/// The media type of the feed.
const NDJSON: &str = "application/x-ndjson";

/// Query of `GET /v1/changes`: all text, so that each parameter's error names it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ChangesQuery {
    since: Option<String>,
    owner: Option<String>,
    kind: Option<String>,
    limit: Option<String>,
    wait: Option<String>,
}

/// `GET /v1/changes`.
pub(super) async fn changes(
    State(app): State<AppState>,
    stopping: Option<Extension<Stopping>>,
    Query(q): Query<ChangesQuery>,
) -> Result<Response, ApiError> {
    let owner = q.owner.as_deref().map(owner_filter).transpose()?;
    let kind = q.kind.as_deref().map(kind_filter).transpose()?;
    let limit = number(
        q.limit.as_deref(),
        "limit",
        DEFAULT_LIMIT as u64,
        1,
        MAX_LIMIT as u64,
    )?;
    let wait = number(
        q.wait.as_deref(),
        "wait",
        DEFAULT_WAIT_SECS,
        0,
        MAX_WAIT_SECS,
    )?;
    let identity = app.store.identity();
    let tag = store_tag(&identity.store_id);
    let cursor = match q.since.as_deref() {
        None | Some("" | "0") => Cursor::start(app.node, tag, owner, kind),
        Some(text) => {
            let cursor = Cursor::decode(text).map_err(bad_cursor)?;
            check_issuer(&cursor, app.node, tag)?;
            check_filters(&cursor, owner, kind)?;
            cursor
        }
    };
    let cursor = {
        let store = app.store.clone();
        off_thread(move || check_positions(store.as_ref(), cursor)).await??
    };
    let feed = Feed {
        store: app.store.clone(),
        cursor,
        limit: usize::try_from(limit).unwrap_or(MAX_LIMIT),
        delivered: 0,
        examined: 0,
    };
    let (chunks, body) = mpsc::channel::<Bytes>(CHUNKS_AHEAD);
    let signal = app.commits.subscribe();
    let stopping = stopping.map(|Extension(s)| s);
    tokio::spawn(produce(
        feed,
        Wakes {
            signal,
            stopping,
            wait: Duration::from_secs(wait),
        },
        app.stats.clone(),
        chunks,
    ));
    let mut response = super::stream::streamed(body, NDJSON);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The store tag a cursor carries: the first bytes of the store's random id.
fn store_tag(store_id: &[u8; 16]) -> [u8; TAG] {
    let mut tag = [0u8; TAG];
    tag.copy_from_slice(&store_id[..TAG]);
    tag
}

fn owner_filter(text: &str) -> Result<NodeCode, ApiError> {
    text.parse()
        .map_err(|e| ApiError::bad_request("bad_owner", format!("owner: {e}")))
}

fn kind_filter(text: &str) -> Result<Kind, ApiError> {
    Kind::parse(text).ok_or_else(|| {
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        ApiError::bad_request(
            "unknown_kind",
            format!(
                "kind: {text:?} is no record kind; one of {}",
                names.join(", ")
            ),
        )
    })
}

/// A whole-number parameter within `min..=max`, `default` when absent.
fn number(
    text: Option<&str>,
    name: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ApiError> {
    let Some(text) = text else {
        return Ok(default);
    };
    text.parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            ApiError::bad_request(
                "bad_query",
                format!("{name} must be a whole number from {min} to {max}, got {text:?}"),
            )
        })
}

fn bad_cursor(e: CursorError) -> ApiError {
    ApiError::bad_request(
        "bad_cursor",
        format!("since: {e}; pass a cursor this feed gave, or 0 to start from the beginning"),
    )
}

/// Refuses a cursor of another node (400) or of an earlier store of this one (410).
fn check_issuer(cursor: &Cursor, node: NodeCode, tag: [u8; TAG]) -> Result<(), ApiError> {
    if cursor.node != node {
        return Err(ApiError::bad_request(
            "foreign_cursor",
            format!(
                "since: this cursor was issued by node {}, not by this node ({node}); a cursor is good only on the node that issued it",
                cursor.node
            ),
        ));
    }
    if cursor.store != tag {
        return Err(expired(
            "this node's store has been restored or rebuilt since the cursor was issued",
        ));
    }
    Ok(())
}

/// Refuses a cursor issued for other filters: it passed over what they would include.
fn check_filters(
    cursor: &Cursor,
    owner: Option<NodeCode>,
    kind: Option<Kind>,
) -> Result<(), ApiError> {
    if cursor.owner == owner && cursor.kind == kind {
        return Ok(());
    }
    let show = |o: Option<NodeCode>, k: Option<Kind>| {
        let mut parts = Vec::new();
        if let Some(o) = o {
            parts.push(format!("owner={o}"));
        }
        if let Some(k) = k {
            parts.push(format!("kind={k}"));
        }
        if parts.is_empty() {
            "no filter".to_string()
        } else {
            parts.join("&")
        }
    };
    Err(ApiError::bad_request(
        "cursor_mismatch",
        format!(
            "since: this cursor was issued for {}, and this request asks for {}; ask with the cursor's filters, or start from 0",
            show(cursor.owner, cursor.kind),
            show(owner, kind)
        ),
    ))
}

fn expired(why: &str) -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "cursor_expired",
        format!("since: {why}; start again from since=0 (records already seen come again)"),
    )
}

/// Refuses (410) a cursor past what the store holds without gaps: it was issued by a
/// store that held more than this one does. While the store is being rebuilt (503), an
/// owner's records may arrive out of order, so no cursor is issued.
fn check_positions(
    store: &dyn Store,
    cursor: Cursor,
) -> Result<Result<Cursor, ApiError>, StoreError> {
    if store.restore_pending()? {
        return Ok(Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "restoring",
            "this node is rebuilding its store from its parent or children; the change feed resumes when it is done",
        )));
    }
    for (owner, at) in &cursor.positions {
        let held = store.complete_through(*owner)?;
        if *at > held {
            return Ok(Err(expired(&format!(
                "the cursor stands at seq {at} of {owner}, and this store holds that owner's records only through {held}"
            ))));
        }
    }
    Ok(Ok(cursor))
}

/// One response's reading: where it stands and what it has given.
struct Feed {
    store: Arc<dyn Store>,
    cursor: Cursor,
    limit: usize,
    delivered: usize,
    examined: usize,
}

/// How a read left the feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// Every owner is read through what it holds without gaps.
    CaughtUp,
    /// The chunk is full; more can be read now.
    ChunkFull,
    /// The response has given `limit` lines or examined its most.
    Spent,
}

impl Feed {
    fn spent(&self) -> bool {
        self.delivered >= self.limit || self.examined >= MAX_EXAMINED
    }

    /// Reads on from the cursor into `out`, at most one chunk.
    fn read(&mut self, out: &mut Vec<u8>) -> Result<Read, StoreError> {
        let owners: Vec<NodeCode> = match self.cursor.owner {
            Some(o) => vec![o],
            None => self.store.owner_counts().into_keys().collect(),
        };
        for owner in owners {
            loop {
                if self.spent() {
                    return Ok(Read::Spent);
                }
                if out.len() >= CHUNK_BYTES {
                    return Ok(Read::ChunkFull);
                }
                let at = self.cursor.at(owner);
                let upto = self.store.complete_through(owner)?;
                if at >= upto {
                    break;
                }
                let want = match self.cursor.kind {
                    Some(_) => STEP,
                    None => STEP.min(self.limit - self.delivered),
                };
                let (covered, records) = self.store.changes(owner, at, upto, want)?;
                let mut whole = true;
                for r in &records {
                    if self.spent() || out.len() >= CHUNK_BYTES {
                        whole = false;
                        break;
                    }
                    self.examined += 1;
                    self.cursor.advance(owner, r.envelope.seq);
                    if self.cursor.kind.is_none_or(|k| k == r.envelope.kind) {
                        self.delivered += 1;
                        line(
                            out,
                            &json!({"cursor": self.cursor.encode(), "record": record_json(r)}),
                        );
                    }
                }
                if whole {
                    self.cursor.advance(owner, covered.max(at));
                }
                if self.cursor.at(owner) <= at {
                    // Nothing moved (cannot happen with a sound log): leave the owner.
                    break;
                }
            }
        }
        Ok(Read::CaughtUp)
    }

    /// The last line of a response.
    fn last_line(&self, more: bool) -> Bytes {
        let mut out = Vec::new();
        line(
            &mut out,
            &json!({"cursor": self.cursor.encode(), "more": more}),
        );
        Bytes::from(out)
    }
}

fn line(out: &mut Vec<u8>, value: &serde_json::Value) {
    // Writing a `Value` into a Vec cannot fail.
    if serde_json::to_writer(&mut *out, value).is_ok() {
        out.push(b'\n');
    }
}

/// What ends a caught-up response's wait: a commit of records, its `wait` gone by, or the
/// node stopping.
struct Wakes {
    signal: tokio::sync::watch::Receiver<u64>,
    stopping: Option<Stopping>,
    wait: Duration,
}

/// Counts one in a gauge of [`ApiStats`] while it lives.
struct Counted<'a>(&'a AtomicU64);

impl<'a> Counted<'a> {
    fn new(gauge: &'a AtomicU64) -> Self {
        gauge.fetch_add(1, Relaxed);
        Counted(gauge)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// Produces one response's body into `chunks` until it is spent, caught up after giving
/// something, waited in vain, the node stops or the client goes away.
async fn produce(mut feed: Feed, wakes: Wakes, stats: Arc<ApiStats>, chunks: mpsc::Sender<Bytes>) {
    let _open = Counted::new(&stats.changes_streams);
    let Wakes {
        mut signal,
        mut stopping,
        wait,
    } = wakes;
    let deadline = tokio::time::Instant::now() + wait;
    let caught_up = loop {
        let given = feed.delivered;
        // Seen before reading: a commit from here on wakes the wait below.
        signal.borrow_and_update();
        let read = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let read = feed.read(&mut out);
            (feed, out, read)
        })
        .await;
        let (back, out, read) = match read {
            Ok(done) => done,
            Err(e) => {
                tracing::error!(error = %e, "The change feed's read failed");
                return;
            }
        };
        feed = back;
        stats
            .changes_records
            .fetch_add((feed.delivered - given) as u64, Relaxed);
        if !out.is_empty() {
            // A chunk not sent whole ends the body without its last line: the client
            // resumes from the last line it has.
            tokio::select! {
                sent = chunks.send(Bytes::from(out)) => if sent.is_err() { return },
                () = stopped(&mut stopping) => return,
            }
        }
        let read = match read {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!(error = %e, "The change feed stopped on a store error");
                return;
            }
        };
        match read {
            Read::Spent => break false,
            Read::ChunkFull if stopping.as_ref().is_some_and(Stopping::is_set) => break false,
            Read::ChunkFull => continue,
            Read::CaughtUp if feed.delivered > 0 => break true,
            Read::CaughtUp => {}
        }
        let _waiting = Counted::new(&stats.changes_waiting);
        tokio::select! {
            changed = signal.changed() => if changed.is_err() { break true },
            () = tokio::time::sleep_until(deadline) => break true,
            () = stopped(&mut stopping) => break true,
            () = chunks.closed() => return,
        }
    };
    let _ = chunks.send(feed.last_line(!caught_up)).await;
}

/// Resolves once the node stops serving (never, without a stop signal).
async fn stopped(stopping: &mut Option<Stopping>) {
    match stopping {
        Some(s) => s.wait().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
