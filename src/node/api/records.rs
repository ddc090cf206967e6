//! `POST /v1/records` (ingest) and `GET /v1/records/{owner}/{kind}/{id}` (read).

use axum::Json;
use axum::body::Body;
use axum::extract::State;

use super::extract::{Path, Query, kind_param, off_thread, optional_owner, owner_param};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::{AppState, require_token};
use crate::core::codec;
use crate::core::model::ingest::{Draft, IngestContext};
use crate::core::model::validate::{ErrorCode, FieldError};
use crate::core::model::{Record, RecordKey};
use crate::core::store::MAX_RECORD_BYTES;
use crate::node::clock::rfc3339;

/// Most records one request may carry.
pub const MAX_RECORDS_PER_REQUEST: usize = 10_000;

/// Reads the whole body, answering 413 past the limit.
pub(super) async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body exceeds the {limit}-byte limit (api.body_limit)"),
        )
    })
}

fn parse_array(bytes: &[u8]) -> Result<Vec<Value>, ApiError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
    })?;
    let Value::Array(items) = value else {
        return Err(ApiError::bad_request(
            "malformed",
            "the body must be a JSON array of records",
        ));
    };
    if items.len() > MAX_RECORDS_PER_REQUEST {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_records",
            format!(
                "{} records in one request; the limit is {MAX_RECORDS_PER_REQUEST}",
                items.len()
            ),
        ));
    }
    Ok(items)
}

fn size_check(draft: &Draft) -> Result<(), FieldError> {
    let bytes = codec::encode(&draft.data)
        .map_err(|e| FieldError::new("data", ErrorCode::Malformed, e.to_string()))?
        .len();
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

/// `POST /v1/records`.
pub(super) async fn post_records(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    require_token(&app, &headers)?;
    super::extract::require_json(&headers)?;
    refuse_while_rebuilding(&app)?;
    let items = parse_array(&read_body(body, app.body_limit).await?)?;
    let standards = app.standards.current();
    let ctx = IngestContext::new(app.node, &standards, app.pseudonymiser.as_deref());
    let mut drafts = Vec::with_capacity(items.len());
    let mut rejected = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match ctx.draft(item).and_then(|d| size_check(&d).map(|()| d)) {
            Ok(d) => drafts.push(d),
            Err(e) => rejected.push(rejection(index, &e)),
        }
    }
    app.stats
        .rejected
        .fetch_add(rejected.len() as u64, std::sync::atomic::Ordering::Relaxed);
    let outcomes = if drafts.is_empty() {
        Vec::new()
    } else {
        app.writer.submit(drafts, standards.code_refs()).await?
    };
    let accepted: Vec<Value> = outcomes
        .iter()
        .map(|o| json!({"kind": o.kind, "id": o.id, "version": o.version, "seq": o.seq, "changed": o.changed}))
        .collect();
    let status = if rejected.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((
        status,
        Json(json!({"accepted": accepted, "rejected": rejected})),
    )
        .into_response())
}

fn rejection(index: usize, e: &FieldError) -> Value {
    json!({"index": index, "field": e.field, "error": e.code.as_str(), "message": e.message})
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
