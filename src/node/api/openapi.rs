//! `GET /v1/openapi.json`: the OpenAPI 3.1 document of this API. It is kept by hand in
//! `docs/reference/openapi.json` and compiled in, so a node serves the description of
//! the very build it runs; `tests/openapi.rs` holds it to the routes (`routes.rs`) and
//! the answers of a running node.

use axum::http::header;
use axum::response::IntoResponse;

/// The document, as `docs/reference/openapi.json` holds it.
pub(super) const DOCUMENT: &str = include_str!("../../../docs/reference/openapi.json");

/// The media type of an OpenAPI document in JSON.
const MEDIA_TYPE: &str = "application/json";

/// `GET /v1/openapi.json`.
pub(super) async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, MEDIA_TYPE)], DOCUMENT)
}
