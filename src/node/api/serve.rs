//! Serving the API over TCP: the accept loop and its connection cap, one hyper HTTP/1.1
//! connection per task under the head and idle deadlines of [`super::deadline`], and the
//! graceful shutdown (stop accepting, let every open connection finish the request it is
//! on, wait for all of them to close).
//!
//! axum's own `serve` has no header or idle timeout and no cap; this loop is what it does
//! plus those, with hyper's connection builder used directly.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::deadline::{HeadTimer, Requests, Tracked};
use super::limits::HEAD_BUFFER_BYTES;
use super::{ApiStats, AppState};
use crate::node::config::ApiLimits;

/// Pause after an accept error that is not the client's (out of file descriptors, say),
/// so the loop does not spin while the condition lasts.
const ACCEPT_RETRY: Duration = Duration::from_secs(1);

/// Connections the kernel queues for the accept loop. A public board is opened by many
/// phones and screens at once: with the platform's usual 128 a burst of connects
/// overflows the queue, and each dropped connect waits a second for its SYN to be sent
/// again.
const ACCEPT_BACKLOG: u32 = 1024;

/// Binds a listener for an HTTP service at `addr` with room for a burst of connects (in
/// a runtime: the socket is registered with it).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As the standard library's bind does on Unix: a restarted node rebinds its port at
    // once, without waiting for its old connections' TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// What every connection task shares.
#[derive(Clone)]
struct Served {
    app: Router,
    http: http1::Builder,
    limits: ApiLimits,
    stats: Arc<ApiStats>,
}

/// Serves the API on `listener` until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.config.api_limits;
    let stats = state.stats.clone();
    serve_router(listener, super::router(state), limits, stats, shutdown).await
}

/// Serves `app` on `listener` under the same connection cap and deadlines as the API
/// (the public information service uses it too), until `shutdown` resolves.
pub async fn serve_router(
    listener: TcpListener,
    app: Router,
    limits: ApiLimits,
    stats: Arc<ApiStats>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let served = Served {
        stats,
        app,
        http: http1_builder(&limits),
        limits,
    };
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                tracing::error!(error = %e, "Cannot accept an API connection; retrying in 1 s");
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(ACCEPT_RETRY) => continue,
                }
            }
        };
        match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                let task = connection(stream, peer, served.clone(), stopping.clone(), slot);
                tokio::spawn(task);
            }
            Err(_) => refuse(stream, limits.max_connections, &served.stats),
        }
    }
    drop(listener);
    let _ = stop.send(true);
    // Each connection holds its slot until it closes: all slots back means all drained.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// hyper's timer and header timeout only back up [`HeadTimer`]: set past both of its
/// deadlines, it fires first only for a head hyper already holds in its buffer, which
/// the socket never sees being read. With it set, hyper also polls the socket as soon as
/// a connection falls idle, which starts the idle deadline.
fn http1_builder(limits: &ApiLimits) -> http1::Builder {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.keep_alive_timeout + limits.header_read_timeout)
        .max_buf_size(HEAD_BUFFER_BYTES)
        .keep_alive(true);
    http
}

/// Errors of one connection attempt (the client gave up), not of the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// Answers a connection over the cap with 503 `overloaded` and closes it: waiting in the
/// listen queue instead would leave the client hanging with no word of why.
fn refuse(stream: TcpStream, max: usize, stats: &ApiStats) {
    stats.refused_connections.fetch_add(1, Relaxed);
    let body = serde_json::json!({
        "error": "overloaded",
        "message": format!(
            "this node has {max} connections open already (api.max_connections); retry in a moment"
        ),
    })
    .to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    // A fresh socket's send buffer takes the answer whole without blocking; a client that
    // does not read it cannot hold up the accept loop.
    if let Ok(stream) = stream.into_std() {
        let _ = (&stream).write_all(answer.as_bytes());
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
}

/// Tells a handler whose answer may last (the change feed's long poll, an export's stream)
/// that the server is stopping, so that it ends its answer instead of holding the shutdown
/// up. Every request carries it as an extension.
#[derive(Debug, Clone)]
pub(super) struct Stopping(watch::Receiver<bool>);

impl Stopping {
    /// True once shutdown has begun.
    pub(super) fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once shutdown begins (or the accept loop is gone).
    pub(super) async fn wait(&mut self) {
        stopped(&mut self.0).await;
    }
}

/// Resolves once shutdown begins (or the accept loop is gone).
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns must not live on: it is not `Send`.
    let _ = stopping.wait_for(|stop| *stop).await.map(|_| ());
}

/// Serves one connection until it closes, or until shutdown lets it finish its request.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    served: Served,
    mut stopping: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    // Answers are small and written whole; waiting to coalesce them only adds latency.
    let _ = stream.set_nodelay(true);
    let requests = Arc::new(Requests::default());
    let socket = HeadTimer::new(stream, requests.clone(), &served.limits, served.stats);
    let router = TowerToHyperService::new(served.app);
    let stop_signal = Stopping(stopping.clone());
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(stop_signal.clone());
        let in_progress = requests.begin();
        let answer = router.call(request);
        async move {
            let response = answer.await?;
            Ok::<_, Infallible>(response.map(|body| Body::new(Tracked::new(body, in_progress))))
        }
    });
    let conn = served.http.serve_connection(TokioIo::new(socket), service);
    let mut conn = std::pin::pin!(conn);
    let ended = tokio::select! {
        ended = conn.as_mut() => ended,
        () = stopped(&mut stopping) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(%peer, error = %e, "API connection closed");
    }
}
