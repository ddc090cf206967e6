//! Limits on a request as a whole, checked before any handler runs: the length of its URI
//! (414) and the size of its headers (431), answered in JSON and set below hyper's own
//! limits so that hyper's bare answers are reached only by heads too large to parse; and
//! the number of requests in flight (503 `overloaded`, never a queue).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::ApiStats;
use super::error::ApiError;

/// Longest request URI (path and query, and scheme and authority when sent), bytes.
pub const MAX_URI_BYTES: usize = 16 * 1024;
/// Most bytes of headers in one request (each counted as name, value and 4 bytes of
/// separators, as on the wire).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Most header lines in one request (hyper refuses more than 100 itself).
pub const MAX_HEADERS: usize = 64;
/// hyper's read buffer per connection, so the largest request head it parses: it answers
/// a larger head itself, with a bare 431, and closes. The limits above and a request line
/// fit well inside it, so every head hyper parses is judged by them first.
pub(super) const HEAD_BUFFER_BYTES: usize = 64 * 1024;

const _: () = assert!(MAX_URI_BYTES + MAX_HEADER_BYTES + 1024 < HEAD_BUFFER_BYTES);

/// Refuses a request whose URI or headers are over the limits above.
pub(super) async fn check_head(request: Request, next: Next) -> Result<Response, ApiError> {
    uri_fits(request.uri())?;
    headers_fit(request.headers())?;
    Ok(next.run(request).await)
}

fn uri_fits(uri: &Uri) -> Result<(), ApiError> {
    let len = uri.path_and_query().map_or(0, |p| p.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.scheme_str().map_or(0, str::len);
    if len > MAX_URI_BYTES {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the request URI is {len} bytes; the limit is {MAX_URI_BYTES}"),
        ));
    }
    Ok(())
}

fn headers_fit(headers: &HeaderMap) -> Result<(), ApiError> {
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return Err(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "{} headers of {bytes} bytes; the limits are {MAX_HEADERS} headers and {MAX_HEADER_BYTES} bytes",
                headers.len()
            ),
        ));
    }
    Ok(())
}

/// The requests a node handles at once (`[api] max_in_flight`).
#[derive(Clone)]
pub(super) struct InFlight {
    permits: Arc<Semaphore>,
    max: usize,
    stats: Arc<ApiStats>,
}

impl InFlight {
    /// Room for `max` requests at once.
    pub(super) fn new(max: usize, stats: Arc<ApiStats>) -> Self {
        InFlight {
            permits: Arc::new(Semaphore::new(max)),
            max,
            stats,
        }
    }
}

/// Runs the request if there is room, else answers 503 at once: a queue would only make
/// every caller wait longer, and hold their memory meanwhile.
pub(super) async fn admit(State(gate): State<InFlight>, request: Request, next: Next) -> Response {
    let Ok(_permit) = gate.permits.clone().try_acquire_owned() else {
        gate.stats.overloaded.fetch_add(1, Relaxed);
        return overloaded(&format!(
            "this node is handling {} requests already (api.max_in_flight); retry in a moment",
            gate.max
        ));
    };
    next.run(request).await
}

/// The 503 `overloaded` answer, with `Retry-After: 1`.
pub(super) fn overloaded(message: &str) -> Response {
    let error = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message);
    ([(header::RETRY_AFTER, "1")], error).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_and_headers_over_the_limits_are_refused() {
        let long: Uri = format!("/v1/{}", "a".repeat(MAX_URI_BYTES))
            .parse()
            .unwrap();
        assert_eq!(
            uri_fits(&long).unwrap_err().status,
            StatusCode::URI_TOO_LONG
        );
        let fine: Uri = format!("/v1/{}", "a".repeat(MAX_URI_BYTES - 4))
            .parse()
            .unwrap();
        assert!(uri_fits(&fine).is_ok());
        let mut headers = HeaderMap::new();
        for i in 0..MAX_HEADERS {
            headers.insert(
                axum::http::HeaderName::try_from(format!("x-{i}")).unwrap(),
                "v".parse().unwrap(),
            );
        }
        assert!(headers_fit(&headers).is_ok());
        headers.insert("x-one-more", "v".parse().unwrap());
        let err = headers_fit(&headers).unwrap_err();
        assert_eq!(err.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        let mut big = HeaderMap::new();
        big.insert("x-big", "v".repeat(MAX_HEADER_BYTES).parse().unwrap());
        assert!(headers_fit(&big).is_err());
    }
}
