//! The parent's side: accepting children. Only an authenticated child that the tree and
//! the config allow gets a session; one live connection per child (a newer one replaces
//! it); `Hello` within a deadline; then the core's parent session, driven message by
//! message.

use std::sync::Arc;
use std::time::Duration;

use quinn::{Connection, Endpoint, VarInt};

use super::actions::{Driven, carry_out};
use super::frames::{FrameReader, read_frame};
use super::{SyncContext, TransportError, close_code, peer_code, revoked_peer, with_cause};
use crate::core::model::NodeCode;
use crate::core::protocol::ParentSession;
use crate::core::wire::RefusalCode;

/// How long a new connection may take to open its stream and say `Hello`.
const HELLO_DEADLINE: Duration = Duration::from_secs(10);

/// The one live connection per child: a newer one replaces it, so a child (or a stolen
/// key) cannot hold many sessions and their buffers at once.
type Sessions = Arc<std::sync::Mutex<std::collections::BTreeMap<NodeCode, Connection>>>;

/// Listens for children until the endpoint closes. `parentless`: this node has no parent,
/// so a store marked for restore is rebuilt from its children.
pub(super) async fn serve_children(endpoint: Endpoint, ctx: SyncContext, parentless: bool) {
    let sessions = Sessions::default();
    while let Some(incoming) = endpoint.accept().await {
        if !incoming.remote_address_validated() {
            // Address validation (retry) before any handshake work.
            let _ = incoming.retry();
            continue;
        }
        let (ctx, sessions) = (ctx.clone(), sessions.clone());
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            match incoming.await {
                Ok(conn) => serve_child(conn, ctx, sessions, parentless).await,
                Err(e) => tracing::warn!(%remote, error = %e, "Child handshake failed"),
            }
        });
    }
}

/// Registers `conn` as `child`'s session, closing the one it replaces.
fn replace_session(sessions: &Sessions, child: NodeCode, conn: &Connection) {
    let mut live = sessions.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(old) = live.insert(child, conn.clone()) {
        tracing::info!(%child, "A new connection replaces the child's previous one");
        old.close(
            VarInt::from_u32(close_code::REPLACED),
            b"replaced by a newer connection from the same node",
        );
    }
}

/// Forgets `conn` as `child`'s session unless a newer one already replaced it.
fn end_session(sessions: &Sessions, child: NodeCode, conn: &Connection) {
    let mut live = sessions.lock().unwrap_or_else(|p| p.into_inner());
    if live
        .get(&child)
        .is_some_and(|c| c.stable_id() == conn.stable_id())
    {
        live.remove(&child);
    }
}

fn allowed_child(ctx: &SyncContext, child: NodeCode) -> Result<(), String> {
    if child.parent() != Some(ctx.me) {
        return Err(format!(
            "{child} ({}) is not a child of {}",
            child.tier(),
            ctx.me
        ));
    }
    match &ctx.children {
        Some(list) if !list.contains(&child) => Err(format!("{child} is not in network.children")),
        _ => Ok(()),
    }
}

async fn serve_child(conn: Connection, ctx: SyncContext, sessions: Sessions, parentless: bool) {
    let Some(child) = peer_code(&conn) else {
        tracing::warn!(remote = %conn.remote_address(), "Refusing a certificate that names no lmsync node");
        conn.close(
            VarInt::from_u32(close_code::NOT_ADMITTED),
            b"certificate names no lmsync node",
        );
        return;
    };
    if let Err(reason) = allowed_child(&ctx, child) {
        tracing::warn!(%child, %reason, "Refusing connection");
        conn.close(
            VarInt::from_u32(close_code::NOT_ADMITTED),
            reason.as_bytes(),
        );
        return;
    }
    if let Some(reason) = revoked_peer(&conn, &ctx) {
        tracing::warn!(%child, remote = %conn.remote_address(), %reason, "Refusing a revoked certificate");
        ctx.links.handshake_failed(
            child,
            format!("refused {}: {reason}", conn.remote_address()),
        );
        conn.close(VarInt::from_u32(close_code::REVOKED), reason.as_bytes());
        return;
    }
    let mut admission = Admission {
        sessions: &sessions,
        admitted: false,
    };
    let result = with_cause(
        run_as_parent(&conn, &ctx, child, parentless, &mut admission).await,
        &conn,
    );
    if admission.admitted {
        end_session(&sessions, child, &conn);
        ctx.links
            .disconnected(child, result.as_ref().err().map(ToString::to_string));
    } else if let Err(e) = &result {
        // Not admitted: the link's session belongs to the node that proved who it is, not
        // to this connection; the failure is only noted.
        ctx.links.handshake_failed(child, e.to_string());
    }
    match result {
        Ok(()) => {}
        // A lost connection has nobody left to tell.
        Err(e @ TransportError::Connection(_)) => {
            tracing::info!(%child, error = %e, "Child session ended");
        }
        // Anything else closes with the reason, so the child's operator can read why.
        Err(e) => {
            tracing::warn!(%child, error = %e, "Closing the child's session");
            let (close, reason) = match e {
                TransportError::Refused { code, reason } => {
                    (close_code_of(code), format!("{code:?}: {reason}"))
                }
                TransportError::Revoked(reason) => (close_code::REVOKED, reason),
                other => (close_code::SESSION_ENDED, other.to_string()),
            };
            conn.close(VarInt::from_u32(close), reason.as_bytes());
        }
    }
}

/// Whether a connection has been admitted as its node's one live session.
struct Admission<'a> {
    sessions: &'a Sessions,
    admitted: bool,
}

/// The parent's side of a session with `child`: its stream, `Hello` within
/// [`HELLO_DEADLINE`], then messages until the child finishes the stream.
///
/// The connection becomes `child`'s live session, replacing an older one, only once the
/// handshake's identity check has passed: a peer whose `Hello` does not match its
/// certificate is refused without touching the session it claims.
async fn run_as_parent(
    conn: &Connection,
    ctx: &SyncContext,
    child: NodeCode,
    parentless: bool,
    admission: &mut Admission<'_>,
) -> Result<(), TransportError> {
    let opened = async {
        let (send, mut recv) = conn
            .accept_bi()
            .await
            .map_err(|e| TransportError::Connection(e.to_string()))?;
        let hello = read_frame(&mut recv).await?;
        Ok::<_, TransportError>((send, recv, hello))
    };
    let (mut send, recv, hello) = tokio::time::timeout(HELLO_DEADLINE, opened)
        .await
        .map_err(|_| TransportError::Stalled(HELLO_DEADLINE))??;
    let mut session =
        ParentSession::new(ctx.me, child, ctx.standards.clone(), ctx.verifier.clone())
            .speaking_up_to(ctx.max_protocol);
    if parentless {
        session = session.without_parent();
    }
    let session = Driven::new(session);
    // Subscribed before the child lists its documents, so none committed after goes unsent.
    let mut documents = ctx.commits.subscribe_documents();
    let Some(hello) = hello else { return Ok(()) };
    let actions = session
        .step(ctx, move |s, store| s.handle(store, hello))
        .await?;
    if session.read(ParentSession::greeted) {
        replace_session(admission.sessions, child, conn);
        admission.admitted = true;
        super::note_certificate(conn, ctx, child);
    }
    carry_out(ctx, child, &mut send, actions).await?;
    let mut frames = FrameReader::spawn(recv);
    loop {
        // Biased: the child's messages first, as they come.
        let actions = tokio::select! {
            biased;
            frame = frames.next() => {
                let Some(message) = frame? else { return Ok(()) };
                session.step(ctx, move |s, store| s.handle(store, message)).await?
            }
            Ok(()) = documents.changed() => {
                if let Some(revoked) = revoked_peer(conn, ctx) {
                    return Err(TransportError::Revoked(revoked));
                }
                session.step(ctx, ParentSession::on_documents_committed).await?
            }
        };
        carry_out(ctx, child, &mut send, actions).await?;
    }
}

/// The close code for a session the protocol refused: identity, authorisation and version
/// refusals will not pass on a retry; anything else may.
fn close_code_of(code: RefusalCode) -> u32 {
    match code {
        RefusalCode::Identity | RefusalCode::Unauthorised | RefusalCode::Version => {
            close_code::REFUSED
        }
        _ => close_code::SESSION_ENDED,
    }
}
