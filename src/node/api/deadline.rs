//! The deadlines of one API connection while no request is in progress on it: its first
//! request head must be complete `[api] header_read_timeout` after the connection was
//! accepted; later, the connection may sit idle for `[api] keep_alive_timeout`, and once
//! the next head's first byte arrives, that head must be complete within
//! `header_read_timeout`. Trickling bytes does not extend either.
//!
//! hyper's own header timeout runs from the moment it starts waiting for a head, so it
//! cannot tell an idle kept-alive connection from a slow head; the deadlines live here,
//! in the socket's read side, instead. The connection's service tells them when a request
//! is in progress ([`Requests`]): from its head until its answer has been sent whole.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use hyper::body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::ApiStats;
use crate::node::config::ApiLimits;

/// Requests begun and ended on one connection. Both change on the connection's own task
/// (hyper polls the service and the answer there), so relaxed counts are exact.
#[derive(Debug, Default)]
pub(super) struct Requests {
    begun: AtomicU64,
    ended: AtomicU64,
}

impl Requests {
    /// A request's head has been read; it is in progress until the guard drops.
    pub(super) fn begin(self: &Arc<Self>) -> InProgress {
        self.begun.fetch_add(1, Relaxed);
        InProgress(self.clone())
    }

    fn counts(&self) -> (u64, u64) {
        (self.begun.load(Relaxed), self.ended.load(Relaxed))
    }
}

/// A request in progress: dropped once its answer is sent (or abandoned).
#[derive(Debug)]
pub(super) struct InProgress(Arc<Requests>);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.ended.fetch_add(1, Relaxed);
    }
}

/// An answer's body that keeps its request in progress until hyper has sent it whole.
pub(super) struct Tracked {
    body: Body,
    _request: InProgress,
}

impl Tracked {
    /// `body`, ending `request` when it is dropped.
    pub(super) fn new(body: Body, request: InProgress) -> Self {
        Tracked {
            body,
            _request: request,
        }
    }
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A head awaited: the number of the request it will start (from 0), and whether its
/// first byte has come.
#[derive(Debug, Clone, Copy)]
struct Awaited {
    request: u64,
    begun: bool,
}

/// A connection's socket, failing its reads with `TimedOut` once a deadline passes while
/// no request is in progress; hyper then closes the connection without an answer.
pub(super) struct HeadTimer {
    stream: TcpStream,
    requests: Arc<Requests>,
    header: Duration,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    awaited: Option<Awaited>,
    stats: Arc<ApiStats>,
}

impl HeadTimer {
    /// `stream`, just accepted, under `limits`.
    pub(super) fn new(
        stream: TcpStream,
        requests: Arc<Requests>,
        limits: &ApiLimits,
        stats: Arc<ApiStats>,
    ) -> Self {
        HeadTimer {
            stream,
            requests,
            header: limits.header_read_timeout,
            idle: limits.keep_alive_timeout,
            deadline: Box::pin(tokio::time::sleep(limits.header_read_timeout)),
            awaited: None,
            stats,
        }
    }

    /// Starts the wait for request `request`'s head, unless it is already running: the
    /// first head has `header` from accept, every later one `idle` until its first byte.
    fn await_head(&mut self, request: u64) {
        if self.awaited.is_some_and(|a| a.request == request) {
            return;
        }
        let first = request == 0;
        let budget = if first { self.header } else { self.idle };
        self.deadline.as_mut().reset(Instant::now() + budget);
        self.awaited = Some(Awaited {
            request,
            begun: first,
        });
    }

    /// Bytes of the awaited head arrived: the first ones start its `header` budget.
    fn head_bytes(&mut self) {
        if let Some(a) = self.awaited.as_mut().filter(|a| !a.begun) {
            a.begun = true;
            self.deadline.as_mut().reset(Instant::now() + self.header);
        }
    }

    fn expired(&mut self) -> io::Error {
        if self.awaited.is_some_and(|a| a.begun) {
            self.stats.head_timeouts.fetch_add(1, Relaxed);
            io::Error::new(io::ErrorKind::TimedOut, "request head not complete in time")
        } else {
            io::Error::new(io::ErrorKind::TimedOut, "kept-alive connection idle")
        }
    }
}

impl AsyncRead for HeadTimer {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let (begun, ended) = this.requests.counts();
        if begun > ended {
            // A request body, or a peek while an answer is written: the handler's body
            // timeout governs those.
            return Pin::new(&mut this.stream).poll_read(cx, buf);
        }
        this.await_head(begun);
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.head_bytes();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.deadline.as_mut().poll(cx).is_ready() => {
                Poll::Ready(Err(this.expired()))
            }
            other => other,
        }
    }
}

impl AsyncWrite for HeadTimer {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
