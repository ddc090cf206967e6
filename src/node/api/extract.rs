//! Extractors whose rejections answer like every other error of the API: a JSON
//! `{"error", "message"}` with a 4xx status, not axum's plain-text bodies.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::core::model::{Kind, NodeCode};

/// A query string, refused as `400 bad_query` when it does not parse.
pub(super) struct Query<T>(pub(super) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::bad_request("bad_query", e.body_text()))
    }
}

/// Path parameters, refused as `400 bad_path` when they do not parse.
pub(super) struct Path<T>(pub(super) T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| ApiError::bad_request("bad_path", e.body_text()))
    }
}

/// An owner named in a path or a query, refused as `400 bad_owner` when it is no node code.
pub(super) fn owner_param(text: &str) -> Result<NodeCode, ApiError> {
    text.parse()
        .map_err(|e| ApiError::bad_request("bad_owner", format!("{e}")))
}

/// An optional `owner` query parameter; see [`owner_param`].
pub(super) fn optional_owner(text: Option<&str>) -> Result<Option<NodeCode>, ApiError> {
    text.map(owner_param).transpose()
}

/// A record kind named in a path or a query, refused as `400 unknown_kind`.
pub(super) fn kind_param(text: &str) -> Result<Kind, ApiError> {
    Kind::parse(text)
        .ok_or_else(|| ApiError::bad_request("unknown_kind", format!("unknown kind {text:?}")))
}

/// Runs a blocking store call on tokio's blocking pool, so that a read or a commit never
/// stalls the async threads; a task that panicked answers 500.
pub(super) async fn off_thread<T, E>(
    call: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: Send + 'static,
    ApiError: From<E>,
{
    tokio::task::spawn_blocking(call)
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)
}

/// Refuses a body that does not say it is JSON (`415`), before reading it.
pub(super) fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let value = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut parts = value.split(';').map(str::trim);
    let json = parts
        .next()
        .is_some_and(|t| t.eq_ignore_ascii_case("application/json"));
    // JSON is UTF-8 (RFC 8259); a body declared in another charset is refused.
    let utf8 = parts.all(|p| match p.split_once('=') {
        Some((k, v)) if k.trim().eq_ignore_ascii_case("charset") => {
            v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        }
        _ => true,
    });
    if json && utf8 {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as Content-Type: application/json (UTF-8)",
        ))
    }
}

/// Any path no endpoint serves.
pub(super) async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see docs/OPERATIONS.md for the API")
}

/// A known path with a method it does not serve.
pub(super) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not serve that method",
    )
}
