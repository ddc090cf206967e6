//! `POST /v1/records` (ingest, or with `dry_run` validation alone) and `GET /v1/records/{owner}/{kind}/{id}` (read).

use axum::Json;
use axum::body::Body;
use axum::extract::State;

use super::extract::{Path, Query, kind_param, off_thread, optional_owner, owner_param};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::{Deserializer as _, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::error::Category;
use serde_json::{Value, json};

use super::body::read_json;
use super::error::ApiError;
use super::scan::Caps;
use super::{AppState, require_token};
use crate::core::codec;
use crate::core::model::ingest::{Draft, IngestContext};
use crate::core::model::kinds::IngestTally;
use crate::core::model::validate::{ErrorCode, FieldError};
use crate::core::model::{Kind, Record, RecordKey};
use crate::core::store::MAX_RECORD_BYTES;
use crate::node::clock::rfc3339;
use crate::node::write::preview;

/// Most records one request may carry.
pub const MAX_RECORDS_PER_REQUEST: usize = 10_000;

/// Most JSON elements (values and keys, see `scan.rs`) in one record of a request. The
/// richest valid record is an office with 64 public channels: 9 for the record and its
/// members, 26 for the office's 13 fields, 448 for the channels (7 each), plus a list of
/// services and the identifying fields ingest drops, about 560 in all. Twice that leaves
/// room, and keeps one parsed record under about 100 KiB.
pub const MAX_RECORD_ELEMENTS: u64 = 1024;

/// What a `POST /v1/records` body may hold: [`MAX_RECORDS_PER_REQUEST`] records of at
/// most [`MAX_RECORD_ELEMENTS`] each. Records are parsed one at a time, so a request never
/// holds more than one record as a `serde_json::Value`.
const RECORD_CAPS: Caps = Caps {
    total: MAX_RECORDS_PER_REQUEST as u64 * MAX_RECORD_ELEMENTS + 1,
    items: Some((MAX_RECORDS_PER_REQUEST as u64, MAX_RECORD_ELEMENTS)),
};

/// A refused element of a request.
#[derive(Debug, Serialize)]
struct Rejection {
    index: usize,
    field: String,
    error: &'static str,
    message: String,
    /// The kind the record named, for the ingest tally (not in the answer).
    #[serde(skip)]
    kind: Option<Kind>,
}

/// The records of one body, sorted into drafts to store and rejections to report.
#[derive(Default)]
struct Sorted {
    drafts: Vec<Draft>,
    rejected: Vec<Rejection>,
}

/// Drafts each record of the top-level array as soon as it is parsed, so that only one
/// record at a time exists as a `serde_json::Value`.
struct EachRecord<'c, 'a>(&'c IngestContext<'a>);

impl<'de> Visitor<'de> for EachRecord<'_, '_> {
    type Value = Sorted;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Sorted, A::Error> {
        let mut sorted = Sorted::default();
        let mut index = 0;
        while let Some(item) = seq.next_element::<Value>()? {
            let kind = item
                .get("kind")
                .and_then(Value::as_str)
                .and_then(Kind::parse);
            match self
                .0
                .drafts(item)
                .and_then(|d| size_check(&d.0).map(|()| d))
            {
                Ok((d, link)) => {
                    sorted.drafts.push(d);
                    // The person's link between key epochs goes in the same commit.
                    sorted.drafts.extend(link);
                }
                Err(e) => sorted.rejected.push(rejection(index, e, kind)),
            }
            index += 1;
        }
        Ok(sorted)
    }
}

/// Parses and drafts every record of `bytes`, a body the scan has let through.
fn sort_records(bytes: &[u8], ctx: &IngestContext<'_>) -> Result<Sorted, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let sorted = (&mut de)
        .deserialize_seq(EachRecord(ctx))
        .map_err(|e| parse_error(&e, bytes))?;
    de.end().map_err(|e| parse_error(&e, bytes))?;
    Ok(sorted)
}

/// `malformed` for valid JSON that is no array, `malformed_json` for anything else.
fn parse_error(e: &serde_json::Error, bytes: &[u8]) -> ApiError {
    let not_json = |e: &dyn std::fmt::Display| {
        ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
    };
    if e.classify() != Category::Data {
        return not_json(e);
    }
    // A wrong type at the top: tell valid JSON (checked without building anything) from
    // invalid.
    match serde_json::from_slice::<IgnoredAny>(bytes) {
        Ok(_) => ApiError::bad_request("malformed", "the body must be a JSON array of records"),
        Err(syntax) => not_json(&syntax),
    }
}

fn size_check(draft: &Draft) -> Result<(), FieldError> {
    let bytes = codec::encoded_len(&draft.data)
        .map_err(|e| FieldError::new("data", ErrorCode::Malformed, e.to_string()))?;
    // Leave room for the envelope within the store's per-record limit.
    if bytes > MAX_RECORD_BYTES - 4096 {
        return Err(FieldError::new(
            "data",
            ErrorCode::TooLarge,
            format!(
                "the record encodes to {bytes} bytes; the limit is {}",
                MAX_RECORD_BYTES - 4096
            ),
        ));
    }
    Ok(())
}

/// Refuses a write while the store is being rebuilt: records would take seqs the restored
/// ones still need, and a document could reuse a version its children hold.
pub(super) fn refuse_while_rebuilding(app: &AppState) -> Result<(), ApiError> {
    if app.store.restore_pending()? {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "restoring",
            "this node is rebuilding its store from its parent or children; writes resume when it is done",
        ));
    }
    Ok(())
}

/// Query of `POST /v1/records`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PostQuery {
    /// Validate and answer as for a write, but store nothing.
    #[serde(default)]
    dry_run: bool,
}

/// `POST /v1/records[?dry_run=true]`. A dry run takes the same checks and the same
/// validation (the classification in force, the city's pseudonym key), and answers the
/// same shape with `"dry_run": true`, each accepted record with the version and seq it
/// would get now; nothing reaches the writer, and no counter moves.
pub(super) async fn post_records(
    State(app): State<AppState>,
    Query(query): Query<PostQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    require_token(&app, &headers)?;
    super::extract::require_json(&headers)?;
    refuse_while_rebuilding(&app)?;
    let bytes = read_json(body, &app, RECORD_CAPS).await?;
    let standards = app.standards.current();
    let (key, previous) = app.keys.get();
    let ctx =
        IngestContext::new(app.node, &standards, key.as_deref()).with_previous(previous.as_deref());
    let Sorted { drafts, rejected } = sort_records(&bytes, &ctx)?;
    drop(bytes);
    let outcomes = if query.dry_run {
        let (store, node) = (app.store.clone(), app.node);
        off_thread(move || preview(store.as_ref(), node, drafts)).await?
    } else {
        app.stats
            .rejected
            .fetch_add(rejected.len() as u64, std::sync::atomic::Ordering::Relaxed);
        // Refusals are counted with the accepted records, in the same commit.
        let counted = refusals(&rejected);
        let outcomes = if drafts.is_empty() && counted.is_empty() {
            Vec::new()
        } else {
            app.writer
                .submit_offered(drafts, standards.code_refs(), counted)
                .await?
        };
        let written = outcomes.iter().filter(|o| o.changed).count() as u64;
        if written > 0 {
            app.links
                .record_written(app.node, written, app.clock.now_ms());
        }
        outcomes
    };
    // The answer lists the records posted; the pid links written beside them are the
    // node's own.
    let accepted: Vec<Value> = outcomes
        .iter()
        .filter(|o| o.kind.posted())
        .map(|o| json!({"kind": o.kind, "id": o.id, "version": o.version, "seq": o.seq, "changed": o.changed}))
        .collect();
    let status = if rejected.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let mut answer = json!({"accepted": accepted, "rejected": rejected});
    if query.dry_run {
        answer["dry_run"] = Value::Bool(true);
    }
    Ok((status, Json(answer)).into_response())
}

fn rejection(index: usize, e: FieldError, kind: Option<Kind>) -> Rejection {
    Rejection {
        index,
        field: e.field,
        error: e.code.as_str(),
        message: e.message,
        kind,
    }
}

/// The refusals of a request, as the ingest tally counts them.
fn refusals(rejected: &[Rejection]) -> IngestTally {
    let mut t = IngestTally::default();
    for r in rejected {
        t.refused += 1;
        let kind = r.kind.map_or("unknown", Kind::as_str);
        *t.refused_by_kind.entry(kind.to_string()).or_default() += 1;
        *t.refused_by_error.entry(r.error.to_string()).or_default() += 1;
    }
    t
}

/// The JSON form of a stored record.
pub fn record_json(r: &Record) -> Value {
    let e = &r.envelope;
    json!({
        "owner": e.owner,
        "kind": e.kind,
        "id": e.id,
        "version": e.version,
        "seq": e.seq,
        "status": e.status,
        "hash": e.hash.to_string(),
        "recorded_at": rfc3339(e.recorded_at_ms),
        "code_refs": e.code_refs.iter().map(|c| format!("{}@{}", c.scheme, c.version)).collect::<Vec<_>>(),
        "data": r.data.to_json(),
    })
}

/// `GET /v1/records/{owner}/{kind}/{id}`.
pub(super) async fn get_record(
    State(app): State<AppState>,
    Path((owner, kind, id)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let owner = owner_param(&owner)?;
    let kind = kind_param(&kind)?;
    let store = app.store.clone();
    let key = RecordKey::of(kind, &id);
    let found = off_thread(move || store.get_record(owner, key)).await?;
    match found {
        Some(r) if r.envelope.kind == kind && r.envelope.id == id => Ok(Json(record_json(&r))),
        _ => Err(ApiError::not_found(format!(
            "no {kind} record {id:?} from owner {owner} here"
        ))),
    }
}

/// Query of `GET /v1/quarantine`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct QuarantineQuery {
    owner: Option<String>,
    limit: Option<usize>,
}

/// Entries listed at most per request.
const QUARANTINE_PAGE: usize = 1000;

/// `GET /v1/quarantine[?owner=CODE][&limit=N]`: received records refused here, with why.
pub(super) async fn quarantine(
    State(app): State<AppState>,
    Query(q): Query<QuarantineQuery>,
) -> Result<Json<Value>, ApiError> {
    let owner = optional_owner(q.owner.as_deref())?;
    let limit = q.limit.unwrap_or(100).min(QUARANTINE_PAGE);
    let store = app.store.clone();
    let entries = off_thread(move || store.quarantined(owner, limit)).await?;
    let counts = app.store.quarantine_counts();
    let listed: Vec<Value> = entries
        .iter()
        .map(|q| {
            let mut v = record_json(&q.record);
            v["reason"] = json!(q.reason);
            v["from"] = json!(q.from);
            v["received_at"] = json!(rfc3339(q.received_at_ms));
            v
        })
        .collect();
    Ok(Json(json!({
        "total": counts.values().sum::<u64>(),
        "by_owner": counts,
        "records": listed,
    })))
}
