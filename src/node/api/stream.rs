//! Streamed answers (a backup, the change feed, an export): a response body fed chunk by
//! chunk from a bounded channel, so that the task producing it runs at most the channel's
//! depth ahead of the client and ends when the client goes away.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Frame;
use tokio::sync::mpsc;

/// A 200 answer of `media_type` whose body is what `chunks` receives, until its sender
/// is dropped.
pub(super) fn streamed(chunks: mpsc::Receiver<Bytes>, media_type: &'static str) -> Response {
    let mut response = Body::new(Chunks(chunks)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    response
}

/// The chunks of a channel as a response body.
struct Chunks(mpsc::Receiver<Bytes>);

impl HttpBody for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .0
            .poll_recv(cx)
            .map(|bytes| bytes.map(|b| Ok(Frame::data(b))))
    }
}
