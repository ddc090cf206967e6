//! Reading a JSON request body under the API's limits: at most `[api] body_limit` bytes
//! (413), whole within `[api] body_read_timeout` (408), and no more JSON elements than
//! the endpoint's [`Caps`] allow (413), counted chunk by chunk as the bytes arrive so that
//! a body is refused before it is ever parsed.

use std::pin::Pin;

use axum::body::{Body, Bytes, HttpBody};
use axum::http::StatusCode;

use super::AppState;
use super::error::ApiError;
use super::scan::{Caps, Excess, MAX_DEPTH, Scan};

/// Reads a whole JSON body held to `caps`, or says why not.
pub(super) async fn read_json(body: Body, app: &AppState, caps: Caps) -> Result<Bytes, ApiError> {
    let mut body = body;
    let timeout = app.config.api_limits.body_read_timeout;
    let deadline = tokio::time::Instant::now() + timeout;
    match tokio::time::timeout_at(deadline, collect(&mut body, app.body_limit, caps)).await {
        Err(_) => Err(too_slow(timeout)),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(Refusal { error, room })) => {
            // Read the rest (discarding it, within the byte limit and the deadline), so
            // that the client, still sending, is not cut off before it reads the answer.
            if let Some(room) = room {
                let _ = tokio::time::timeout_at(deadline, drain(&mut body, room)).await;
            }
            Err(error)
        }
    }
}

/// A body refused while it was read; `room` is how many more bytes may be drained
/// before the answer (none when the body is over the byte limit or unreadable).
struct Refusal {
    error: ApiError,
    room: Option<usize>,
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Refusal { error, room: None }
    }
}

async fn collect(body: &mut Body, limit: usize, caps: Caps) -> Result<Bytes, Refusal> {
    // A declared length over the limit is refused before anything is read.
    if body.size_hint().lower() > u64::try_from(limit).unwrap_or(u64::MAX) {
        return Err(too_large(limit).into());
    }
    let mut scan = Scan::new(caps);
    let mut chunks = Vec::new();
    let mut len = 0usize;
    while let Some(data) = next_data(body).await? {
        len = len.saturating_add(data.len());
        if len > limit {
            return Err(too_large(limit).into());
        }
        if let Err(excess) = scan.feed(&data) {
            return Err(Refusal {
                error: refused(excess),
                room: Some(limit - len),
            });
        }
        chunks.push(data);
    }
    Ok(concat(chunks, len))
}

/// The next piece of data of `body`; trailers are skipped.
async fn next_data(body: &mut Body) -> Result<Option<Bytes>, ApiError> {
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await;
        match frame {
            None => return Ok(None),
            Some(Err(e)) => {
                return Err(ApiError::bad_request(
                    "bad_body",
                    format!("the request body could not be read: {e}"),
                ));
            }
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            }
        }
    }
}

/// Reads and drops up to `room` bytes of what is left of `body`.
async fn drain(body: &mut Body, mut room: usize) {
    while let Ok(Some(data)) = next_data(body).await {
        let Some(left) = room.checked_sub(data.len()) else {
            return;
        };
        room = left;
    }
}

fn concat(mut chunks: Vec<Bytes>, len: usize) -> Bytes {
    if chunks.len() == 1 {
        return chunks.pop().unwrap_or_default();
    }
    let mut all = Vec::with_capacity(len);
    for chunk in &chunks {
        all.extend_from_slice(chunk);
    }
    Bytes::from(all)
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the request body exceeds the {limit}-byte limit (api.body_limit)"),
    )
}

fn too_slow(timeout: std::time::Duration) -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "body_timeout",
        format!(
            "the request body did not arrive within {} (api.body_read_timeout)",
            humantime::format_duration(timeout)
        ),
    )
}

fn refused(excess: Excess) -> ApiError {
    let too_many = |kind, message| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, kind, message);
    match excess {
        Excess::Items(max) => too_many(
            "too_many_records",
            format!("more than {max} records in one request; the limit is {max}"),
        ),
        Excess::ItemElements(index, max) => too_many(
            "too_many_elements",
            format!(
                "record {index} holds more than {max} JSON values and keys; the limit is {max} per record"
            ),
        ),
        Excess::Elements(max) => too_many(
            "too_many_elements",
            format!("the body holds more than {max} JSON values and keys; the limit is {max}"),
        ),
        Excess::Depth => ApiError::bad_request(
            "malformed_json",
            format!("the body nests arrays and objects deeper than {MAX_DEPTH} levels"),
        ),
    }
}
