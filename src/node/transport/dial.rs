//! The child's side: dialling the parent (cities sit behind firewalls, so children always
//! dial), checking that the server is the parent named in the config, and reconnecting
//! with backoff after a session ends.

use std::net::SocketAddr;
use std::time::Duration;

use quinn::{Endpoint, RecvStream, SendStream};

use super::actions::carry_out;
use super::frames::FrameReader;
use super::{SyncContext, TransportError, peer_code, with_cause};
use crate::core::model::NodeCode;
use crate::core::protocol::ChildSession;
use crate::node::pki;

/// Keeps a session with the parent alive: dial, run, back off, dial again.
pub(super) async fn dial_parent(
    endpoint: Endpoint,
    parent: NodeCode,
    address: String,
    ctx: SyncContext,
) {
    let mut backoff = Duration::from_millis(250);
    loop {
        match run_as_child(&endpoint, parent, &address, &ctx).await {
            Ok(()) => backoff = Duration::from_millis(250),
            Err(e) => {
                // A session that worked and then broke (the parent restarted, the link
                // dropped) is retried promptly; failing to connect, or being refused,
                // backs off further each time.
                if matches!(
                    e,
                    TransportError::Connection(_) | TransportError::Stalled(_)
                ) {
                    backoff = Duration::from_millis(250);
                }
                tracing::info!(%parent, error = %e, retry_in = ?backoff, "Parent session ended");
                ctx.links.disconnected(parent, Some(e.to_string()));
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

async fn resolve(address: &str) -> Result<SocketAddr, TransportError> {
    tokio::net::lookup_host(address)
        .await?
        .next()
        .ok_or_else(|| TransportError::Connect(format!("{address} resolves to no address")))
}

/// The child's side of one session with `parent`: connect, check the server is that
/// node, open the stream and run the core's child session until it ends.
async fn run_as_child(
    endpoint: &Endpoint,
    parent: NodeCode,
    address: &str,
    ctx: &SyncContext,
) -> Result<(), TransportError> {
    let addr = resolve(address).await?;
    let conn = endpoint
        .connect(addr, &pki::dns_name(parent))
        .map_err(|e| TransportError::Connect(e.to_string()))?
        .await
        .map_err(|e| TransportError::Connect(e.to_string()))?;
    if peer_code(&conn) != Some(parent) {
        return Err(TransportError::Connect(format!(
            "the server at {address} is not node {parent}"
        )));
    }
    let (mut send, recv) = conn
        .open_bi()
        .await
        .map_err(|e| TransportError::Connection(e.to_string()))?;
    let mut session = ChildSession::new(
        ctx.me,
        parent,
        ctx.batch_records,
        ctx.verifier.clone(),
        ctx.standards.clone(),
    );
    let result = child_session_loop(ctx, parent, &mut session, &mut send, recv).await;
    // A refusal arrives as the connection's close reason: report it, not "connection lost".
    match (result, conn.close_reason()) {
        (Err(_), Some(quinn::ConnectionError::ApplicationClosed(close))) => {
            Err(TransportError::Closed(format!(
                "closed by {parent}: {}",
                String::from_utf8_lossy(&close.reason)
            )))
        }
        (result, _) => with_cause(result, &conn),
    }
}

/// Drives the child session: frames from the parent, the sync timer and the
/// anti-entropy timer, in a fixed order of readiness.
async fn child_session_loop(
    ctx: &SyncContext,
    parent: NodeCode,
    session: &mut ChildSession,
    send: &mut SendStream,
    recv: RecvStream,
) -> Result<(), TransportError> {
    carry_out(ctx, parent, send, session.start(ctx.store.as_ref())).await?;
    let mut frames = FrameReader::spawn(recv);
    let mut tick = tokio::time::interval(ctx.interval);
    let mut anti_entropy = tokio::time::interval(ctx.anti_entropy);
    // The first tick of an interval fires at once; the handshake already compared digests.
    anti_entropy.tick().await;
    loop {
        // Biased: a fixed order of readiness checks keeps a simulation deterministic.
        tokio::select! {
            biased;
            frame = frames.next() => {
                let Some(message) = frame? else { return Ok(()) };
                let actions = session.handle(ctx.store.as_ref(), message)?;
                carry_out(ctx, parent, send, actions).await?;
            }
            _ = tick.tick() => {
                let actions = session.on_tick(ctx.store.as_ref())?;
                carry_out(ctx, parent, send, actions).await?;
            }
            _ = anti_entropy.tick() => {
                let actions = session.on_anti_entropy(ctx.store.as_ref())?;
                carry_out(ctx, parent, send, actions).await?;
            }
        }
    }
}
