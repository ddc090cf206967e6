//! `POST /v1/documents` (publish, ministry and provinces) and document reads.

use axum::Json;
use axum::body::Body;
use axum::extract::State;

use super::extract::{Path, Query, off_thread};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::body::read_json;
use super::error::ApiError;
use super::scan::Caps;
use super::{AppState, require_token};
use crate::core::model::document::StoredDocument;
use crate::core::model::document::{self, CLASSIFICATION};
use crate::core::model::key_epoch::{self, KeyEpochBody};
use crate::core::model::retirement::{self, RetirementBody};
use crate::core::model::revocation::{self, RevocationBody};
use crate::core::model::signature::sign;
use crate::core::model::standards::ClassificationBody;
use crate::core::store::WriteBatch;

/// Most JSON elements (values and keys) in a publish body. The largest document is a
/// classification version listing every code as `[code, name]`, 3 elements a code: the
/// occupation classification has about 1,600 codes and the industry one about 1,400.
/// 100,000 leaves room for a list of 30,000 codes and keeps the parsed body under about
/// 10 MiB.
const MAX_DOCUMENT_ELEMENTS: u64 = 100_000;

/// What a `POST /v1/documents` body may hold.
const DOCUMENT_CAPS: Caps = Caps {
    total: MAX_DOCUMENT_ELEMENTS,
    items: None,
};

/// What a publisher posts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Publish {
    kind: String,
    id: String,
    body: Value,
}

/// The JSON form of a document (signature status: verified before it was stored).
pub(super) fn document_json(d: &StoredDocument) -> Value {
    json!({
        "kind": d.kind,
        "id": d.id,
        "issuer": d.issuer,
        "version": d.version,
        "signature": "verified",
        "body": serde_json::from_str::<Value>(&d.body).unwrap_or(Value::Null),
    })
}

fn check(app: &AppState, p: &Publish) -> Result<(), ApiError> {
    if !document::may_publish(app.node) && p.kind != document::KEY_EPOCH {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "{} is a city; only the ministry and provinces publish documents (a city \
                 issues only its own key_epoch_notice)",
                app.node
            ),
        ));
    }
    if !document::KINDS.contains(&p.kind.as_str()) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_kind",
            format!(
                "unknown document kind {:?}; expected one of {}",
                p.kind,
                document::KINDS.join(", ")
            ),
        ));
    }
    if let Err(reason) = document::authority(&p.kind, app.node) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_the_issuer",
            reason,
        ));
    }
    crate::core::model::record::validate_id(&p.id).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_id",
            e.to_string(),
        )
    })?;
    let text = p.body.to_string();
    let invalid = |e: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", e);
    if p.kind == document::TARGET {
        crate::reporting::analysis::parse_target(&p.id, app.node, &text)
            .map_err(|e| invalid(e.to_string()))?;
    }
    if p.kind == document::PILOT {
        crate::reporting::analysis::parse_pilot(app.node, &text)
            .map_err(|e| invalid(e.to_string()))?;
    }
    if p.kind == document::SCHEDULE {
        crate::reporting::analysis::parse_schedule(app.node, &p.id, &text)
            .map_err(|e| invalid(e.to_string()))?;
    }
    if p.kind == document::EVALUATION {
        crate::reporting::analysis::evaluations::parse_evaluation(app.node, &text)
            .map_err(|e| invalid(e.to_string()))?;
    }
    if p.kind == document::KEY_EPOCH {
        check_key_epoch(app, p)?;
    }
    if p.kind == document::RETIREMENT {
        let body: RetirementBody = serde_json::from_value(p.body.clone())
            .map_err(|e| invalid(format!("a node_retirement body: {e}")))?;
        retirement::check_body(app.node, &p.id, &body).map_err(invalid)?;
    }
    if p.kind == document::REVOCATION {
        let body: RevocationBody = serde_json::from_value(p.body.clone())
            .map_err(|e| invalid(format!("a revocation body: {e}")))?;
        revocation::check_body(app.node, &p.id, &body).map_err(invalid)?;
    }
    if p.kind == document::CROSSWALK {
        crate::core::model::crosswalk::parse_crosswalk(&text)
            .map_err(|e| invalid(e.to_string()))?;
    }
    if p.kind == CLASSIFICATION {
        let body: ClassificationBody = serde_json::from_value(p.body.clone()).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!("a classification_version body: {e}"),
            )
        })?;
        app.standards.current().apply(&body).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                e.to_string(),
            )
        })?;
    }
    Ok(())
}

/// A city's notice: for itself, of the epoch it pseudonymises with, never below the
/// newest it announced.
fn check_key_epoch(app: &AppState, p: &Publish) -> Result<(), ApiError> {
    let invalid = |e: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", e);
    let body: KeyEpochBody = serde_json::from_value(p.body.clone())
        .map_err(|e| invalid(format!("a key_epoch_notice body: {e}")))?;
    key_epoch::check_body(app.node, &p.id, &body)
        .map_err(|reason| ApiError::new(StatusCode::FORBIDDEN, "not_the_issuer", reason))?;
    let configured = app.keys.get().0.map(|k| k.epoch());
    if configured != Some(body.epoch) {
        return Err(invalid(match configured {
            Some(e) => format!(
                "this city pseudonymises under key epoch {e}; it announces that epoch, not {}",
                body.epoch
            ),
            None => "this city has no pseudonym key ([privacy]) to announce".to_string(),
        }));
    }
    let newest = key_epoch::newest(&app.store.documents()?, app.node);
    if let Some(n) = newest.filter(|n| n.epoch > body.epoch) {
        return Err(invalid(format!(
            "this city announced key epoch {}; epochs only go up",
            n.epoch
        )));
    }
    Ok(())
}

/// `POST /v1/documents`: sign with this node's key, store, and let it flow down (or, a
/// city's key epoch notice, up).
pub(super) async fn publish(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    require_token(&app, &headers)?;
    super::extract::require_json(&headers)?;
    let bytes = read_json(body, &app, DOCUMENT_CAPS).await?;
    let p: Publish = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(
            "malformed_json",
            format!("expected {{\"kind\", \"id\", \"body\"}}: {e}"),
        )
    })?;
    check(&app, &p)?;
    super::records::refuse_while_rebuilding(&app)?;
    let text = serde_json::to_string(&p.body).map_err(ApiError::internal)?;
    // Documents are identified by issuer too: another issuer's document with this id is
    // another document, never this one's previous version.
    let held = app.store.get_document(&p.kind, app.node, &p.id)?;
    if let Some(h) = held.as_ref().filter(|h| h.body == text) {
        return Ok(Json(
            json!({"kind": h.kind, "id": h.id, "version": h.version, "issuer": h.issuer, "changed": false}),
        ));
    }
    let mut doc = StoredDocument {
        kind: p.kind,
        id: p.id,
        issuer: app.node,
        version: held.map_or(1, |h| h.version + 1),
        body: text,
        certificate: Vec::new(),
        signature: Vec::new(),
    };
    let cert = std::fs::read_to_string(&app.config.tls_cert).map_err(ApiError::internal)?;
    let key = std::fs::read_to_string(&app.config.tls_key).map_err(ApiError::internal)?;
    sign(&mut doc, &cert, &key).map_err(ApiError::internal)?;
    let answer = json!({"kind": doc.kind, "id": doc.id, "version": doc.version, "issuer": doc.issuer, "changed": true});
    let classification = doc.kind == CLASSIFICATION;
    let revokes = doc.kind == document::REVOCATION;
    let (store, trust) = (app.store.clone(), app.trust.clone());
    tokio::task::spawn_blocking(move || {
        store.commit(WriteBatch {
            documents: vec![doc],
            ..WriteBatch::default()
        })?;
        if revokes {
            // In force here before the sessions with the children hear of it.
            crate::node::write::put_revocations_in_force(store.as_ref(), &trust);
        }
        Ok::<_, crate::core::store::StoreError>(
            classification.then(|| crate::node::write::standards_in_force(store.as_ref())),
        )
    })
    .await
    .map_err(ApiError::internal)??
    .into_iter()
    .for_each(|s| app.standards.replace(s));
    // The children hear of it now, not on their next sync tick.
    app.commits.notify_documents();
    Ok(Json(answer))
}

/// `POST /v1/documents/resign`: signs every document this node issued again with its
/// current certificate, each as a new version with the same body, so that they verify
/// against a new CA once the old one is no longer trusted (the last steps of a CA
/// rotation).
pub(super) async fn resign(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    require_token(&app, &headers)?;
    if !document::may_publish(app.node) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("{} is a city; it issues no documents", app.node),
        ));
    }
    super::records::refuse_while_rebuilding(&app)?;
    let cert = std::fs::read_to_string(&app.config.tls_cert).map_err(ApiError::internal)?;
    let key = std::fs::read_to_string(&app.config.tls_key).map_err(ApiError::internal)?;
    let serial = crate::node::pki::cert_info(&app.config.tls_cert)
        .map_err(ApiError::internal)?
        .serial;
    let (store, trust, me) = (app.store.clone(), app.trust.clone(), app.node);
    let resigned = tokio::task::spawn_blocking(move || {
        let mut documents = store.documents()?;
        documents.retain(|d| d.issuer == me);
        for doc in &mut documents {
            doc.version += 1;
            sign(doc, &cert, &key).map_err(ApiError::internal)?;
        }
        let count = documents.len();
        store.commit(WriteBatch {
            documents,
            ..WriteBatch::default()
        })?;
        crate::node::write::put_revocations_in_force(store.as_ref(), &trust);
        Ok::<_, ApiError>(count)
    })
    .await
    .map_err(ApiError::internal)??;
    app.commits.notify_documents();
    tracing::info!(documents = resigned, %serial, "Documents re-signed with the current certificate");
    Ok(Json(json!({"resigned": resigned, "serial": serial})))
}

/// Query of `GET /v1/documents/{kind}/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IssuerQuery {
    issuer: Option<String>,
}

/// `GET /v1/documents/{kind}/{id}[?issuer=CODE]`: a document is identified by kind,
/// issuer and id; without `issuer` the answer is the one document of that kind and id,
/// or 409 naming the issuers when there are several.
pub(super) async fn get_document(
    State(app): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
    Query(q): Query<IssuerQuery>,
) -> Result<Json<Value>, ApiError> {
    let issuer = q
        .issuer
        .as_deref()
        .map(|t| {
            t.parse()
                .map_err(|e| ApiError::bad_request("bad_issuer", format!("{e}")))
        })
        .transpose()?;
    let store = app.store.clone();
    let mut found: Vec<StoredDocument> = off_thread(move || store.documents())
        .await?
        .into_iter()
        .filter(|d| d.kind == kind && d.id == id && issuer.is_none_or(|i| d.issuer == i))
        .collect();
    match found.len() {
        0 => Err(ApiError::not_found(format!(
            "no {kind} document {id:?} here"
        ))),
        1 => Ok(Json(document_json(&found.remove(0)))),
        _ => {
            let issuers: Vec<String> = found.iter().map(|d| d.issuer.to_string()).collect();
            Err(ApiError::new(
                StatusCode::CONFLICT,
                "ambiguous_document",
                format!(
                    "{kind} {id:?} is issued by {}; name one with ?issuer=CODE",
                    issuers.join(" and ")
                ),
            ))
        }
    }
}
