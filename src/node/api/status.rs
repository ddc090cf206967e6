//! `GET /v1/status`, `GET /v1/digest` and `GET /v1/documents`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;

use super::extract::{Query, kind_param, off_thread, optional_owner};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use crate::core::model::Kind;
use crate::core::store::{Store, StoreError};
use crate::node::clock::rfc3339;

/// Query of `GET /v1/digest`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DigestQuery {
    owner: Option<String>,
    kind: Option<String>,
}

/// `GET /v1/digest[?owner=CODE][&kind=K]`.
pub(super) async fn digest(
    State(app): State<AppState>,
    Query(q): Query<DigestQuery>,
) -> Result<Json<Value>, ApiError> {
    let owner = optional_owner(q.owner.as_deref())?;
    let kind = q.kind.as_deref().map(kind_param).transpose()?;
    let d = app.store.digest(owner, kind);
    Ok(Json(json!({
        "owner": owner,
        "kind": kind,
        "records": d.records,
        "root": d.root().to_string(),
    })))
}

/// Query of `GET /v1/documents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DocumentsQuery {
    kind: Option<String>,
}

/// `GET /v1/documents[?kind=K]`.
pub(super) async fn documents(
    State(app): State<AppState>,
    Query(q): Query<DocumentsQuery>,
) -> Result<Json<Value>, ApiError> {
    let store = app.store.clone();
    let docs = off_thread(move || store.documents()).await?;
    let list: Vec<Value> = docs
        .iter()
        .filter(|d| q.kind.as_ref().is_none_or(|k| *k == d.kind))
        .map(super::documents::document_json)
        .collect();
    Ok(Json(json!({"documents": list})))
}

/// `GET /v1/status`: what `lmsync status --json` prints.
pub(super) async fn status(State(app): State<AppState>) -> Json<Value> {
    Json(status_json(&app))
}

/// A figure read from the store for the status document, or null when the store cannot
/// be read: after an IO error (a full disk) sled refuses reads too, and status must still
/// answer, saying why in `store.fault`.
fn figure<T: serde::Serialize>(read: Result<T, StoreError>) -> Value {
    read.map_or(Value::Null, |v| json!(v))
}

fn owners_json(store: &dyn Store) -> (Value, Value, u64) {
    let mut by_kind: BTreeMap<Kind, u64> = BTreeMap::new();
    let mut owners = Vec::new();
    let mut total = 0;
    for (owner, counts) in store.owner_counts() {
        let n: u64 = counts.by_kind.values().sum();
        total += n;
        for (k, c) in &counts.by_kind {
            *by_kind.entry(*k).or_default() += c;
        }
        owners.push(json!({"owner": owner, "last_seq": counts.last_seq, "records": n}));
    }
    let by_kind: serde_json::Map<String, Value> = by_kind
        .into_iter()
        .map(|(k, n)| (k.to_string(), json!(n)))
        .collect();
    (Value::Object(by_kind), Value::Array(owners), total)
}

fn link_json(info: Option<&crate::node::links::LinkInfo>) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    let info = info.cloned().unwrap_or_default();
    m.insert("connected".into(), json!(info.connected));
    m.insert("last_sync".into(), json!(info.last_sync_ms.map(rfc3339)));
    m.insert("last_error".into(), json!(info.last_error));
    m.insert("sessions_broken".into(), json!(info.sessions_broken));
    m.insert("last_break".into(), json!(info.last_break));
    m.insert("records_received".into(), json!(info.records_received));
    m.insert("records_repaired".into(), json!(info.records_repaired));
    m.insert("quarantined".into(), json!(info.quarantined));
    m.insert("alerts".into(), json!(info.alerts));
    m.insert("refused".into(), refusal_json(info.refusal.as_ref()));
    m.insert("protocol".into(), json!(info.protocol));
    m.insert(
        "certificate".into(),
        info.peer_certificate.as_ref().map_or(
            Value::Null,
            |c| json!({"serial": c.serial, "expires_at": rfc3339(c.not_after * 1000)}),
        ),
    );
    m
}

/// The parent's refusal of this node, if it refuses it: why, what to do, since when and
/// when the next attempt is.
fn refusal_json(refusal: Option<&crate::node::links::LinkRefusal>) -> Value {
    refusal.map_or(Value::Null, |r| {
        json!({
            "reason": r.reason,
            "advice": r.advice,
            "since": rfc3339(r.since_ms),
            "attempts": r.attempts,
            "next_attempt": rfc3339(r.next_attempt_ms),
        })
    })
}

/// How far the ministry holds `owner`'s records, as this node knows it (acks from the
/// ministry itself, or receipts passed down by the province).
fn at_ministry(app: &AppState, owner: crate::core::model::NodeCode) -> Value {
    figure(app.store.watermark(crate::core::model::MINISTRY, owner))
}

fn parent_json(app: &AppState) -> Value {
    let Some(parent) = &app.config.parent else {
        return Value::Null;
    };
    let links = app.links.snapshot();
    let mut m = link_json(links.get(&parent.code));
    // Records held here and not yet at the parent, over every owner this node forwards
    // (unknown if the store cannot be read).
    let (mut pending, mut owners) = (Some(0u64), Vec::new());
    for owner in app.store.owner_counts().into_keys() {
        let here = app.store.complete_through(owner);
        let at_parent = app.store.watermark(parent.code, owner);
        pending = match (pending, &here, &at_parent) {
            (Some(p), Ok(h), Ok(a)) => Some(p + h.saturating_sub(*a)),
            _ => None,
        };
        owners.push(json!({
            "owner": owner,
            "complete": figure(here),
            "acked_by_parent": figure(at_parent),
            "acked_by_ministry": at_ministry(app, owner),
        }));
    }
    m.insert("code".into(), json!(parent.code));
    m.insert("address".into(), json!(parent.address));
    m.insert("pending".into(), json!(pending));
    m.insert("lag_records".into(), json!(pending));
    m.insert(
        "lag_seconds".into(),
        json!(lag_seconds(links.get(&parent.code), app.clock.now_ms())),
    );
    m.insert("own_last_seq".into(), json!(app.store.last_seq(app.node)));
    m.insert(
        "acked_by_parent".into(),
        figure(app.store.watermark(parent.code, app.node)),
    );
    m.insert("acked_by_ministry".into(), at_ministry(app, app.node));
    m.insert("owners".into(), json!(owners));
    Value::Object(m)
}

/// Records a child holds (by its last offer) that this node does not yet hold, per owner.
pub(crate) fn child_lag(
    store: &dyn Store,
    info: &crate::node::links::LinkInfo,
) -> Result<BTreeMap<crate::core::model::NodeCode, u64>, ApiError> {
    let mut lag = BTreeMap::new();
    for (owner, offered) in &info.offered {
        lag.insert(
            *owner,
            offered.saturating_sub(store.complete_through(*owner)?),
        );
    }
    Ok(lag)
}

/// Seconds since the link last moved records or acks.
fn lag_seconds(info: Option<&crate::node::links::LinkInfo>, now_ms: i64) -> Option<i64> {
    info?.last_sync_ms.map(|t| (now_ms - t).max(0) / 1000)
}

fn children_json(app: &AppState) -> Value {
    let parent = app.config.parent.as_ref().map(|p| p.code);
    let retired = app.retired_nodes();
    let now = app.clock.now_ms();
    let mut list = Vec::new();
    for (code, info) in app.links.snapshot() {
        if Some(code) == parent {
            continue;
        }
        let lag = child_lag(app.store.as_ref(), &info).ok();
        let mut m = link_json(Some(&info));
        m.insert("code".into(), json!(code));
        m.insert("name".into(), json!(code.builtin_name()));
        m.insert(
            "lag_records".into(),
            json!(lag.as_ref().map(|l| l.values().sum::<u64>())),
        );
        m.insert("lag_seconds".into(), json!(lag_seconds(Some(&info), now)));
        m.insert("lag_by_owner".into(), json!(lag));
        m.insert(
            "retired".into(),
            json!(retired.get(&code).map(|r| r.on.to_string())),
        );
        list.push(Value::Object(m));
    }
    Value::Array(list)
}

fn certificate_json(app: &AppState, now_ms: i64) -> Value {
    match app.certificate.get() {
        Some(c) => json!({
            "node": c.node,
            "serial": c.serial,
            "expires_at": rfc3339(c.not_after * 1000),
            "days_left": (c.not_after - now_ms / 1000) / 86_400,
            "warning": c.validity_warning(now_ms / 1000),
        }),
        None => Value::Null,
    }
}

/// The certificates revoked in this node's view of the network.
fn revocations_json(app: &AppState) -> Value {
    json!(app.trust.revocations())
}

/// Builds the status document; it answers whatever state the store is in.
pub(crate) fn status_json(app: &AppState) -> Value {
    use std::sync::atomic::Ordering::Relaxed;
    let now = app.clock.now_ms();
    let (by_kind, owners, total) = owners_json(app.store.as_ref());
    let identity = app.store.identity();
    let w = app.writer.stats();
    let fault = app.store.fault();
    let documents = figure(app.store.documents().map(|d| d.len()));
    json!({
        "node": app.node,
        "name": app.config.name,
        "tier": app.node.tier(),
        "version": env!("CARGO_PKG_VERSION"),
        "now": rfc3339(now),
        "started_at": rfc3339(app.started_at_ms),
        "uptime_seconds": (now - app.started_at_ms) / 1000,
        "parent": parent_json(app),
        "children": children_json(app),
        "records": {"total": total, "by_kind": by_kind},
        "owners": owners,
        "documents": documents,
        "restoring": figure(app.store.restore_pending()),
        "standards": app.standards.current().code_refs().iter().map(|c| format!("{}@{}", c.scheme, c.version)).collect::<Vec<_>>(),
        "store": {
            "path": app.config.data_dir.display().to_string(),
            "store_id": hex::encode(identity.store_id),
            "bytes": app.store.size_on_disk(),
            "healthy": fault.is_none(),
            "fault": fault,
            "set_aside": crate::node::storage::set_aside_copies(&app.config.data_dir),
        },
        "certificate": certificate_json(app, now),
        "revoked_certificates": revocations_json(app),
        "ingest": {
            "requests": w.requests.load(Relaxed),
            "commits": w.commits.load(Relaxed),
            "records_written": w.records_written.load(Relaxed),
            "records_unchanged": w.records_unchanged.load(Relaxed),
            "records_rejected": app.stats.rejected.load(Relaxed),
        },
    })
}
