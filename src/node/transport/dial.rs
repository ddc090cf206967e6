//! The child's side: dialling the parent (cities sit behind firewalls, so children always
//! dial), checking that the server is the parent named in the config, and reconnecting
//! with backoff after a session ends.

use std::net::SocketAddr;

use quinn::{Endpoint, RecvStream, SendStream};

use super::actions::{Driven, carry_out};
use super::frames::FrameReader;
use super::refusal::{Backoff, Outcome};
use super::{
    SyncContext, TransportError, close_code, connection_error, peer_code, revoked_peer, with_cause,
};
use crate::core::model::NodeCode;
use crate::core::protocol::ChildSession;
use crate::core::wire::RefusalCode;
use crate::node::pki;

/// Keeps a session with the parent alive: dial, run, wait, dial again. A link that broke
/// is retried at once; an unreachable parent less and less often, up to 30 s; a refusal
/// (a rejected certificate, a node the parent does not admit) up to
/// [`REFUSED_BACKOFF_MAX`](super::REFUSED_BACKOFF_MAX), with one ERROR saying why and what
/// to do, and the refusal in the link's status until a session is established. Any other
/// failure is logged at WARN with the address and the reason when it is news (the first
/// after a session, or a different reason), and at DEBUG when it repeats.
pub(super) async fn dial_parent(
    endpoint: Endpoint,
    parent: NodeCode,
    address: String,
    ctx: SyncContext,
) {
    let mut backoff = Backoff::default();
    let mut told: Option<String> = None;
    // The failure last logged at WARN: the same one again is a retry, not news.
    let mut failing: Option<String> = None;
    loop {
        let result = run_as_child(&endpoint, parent, &address, &ctx).await;
        let outcome = outcome_of(&result);
        let wait = backoff.next(outcome);
        if ctx.links.is_connected(parent) {
            failing = None;
        }
        if let Err(e) = &result {
            ctx.links.disconnected(parent, Some(e.to_string()));
            if outcome == Outcome::Refused {
                let (reason, advice) = (e.to_string(), advice_of(e));
                // Once per kind of refusal: its details (a verification time) change on
                // every attempt, what the operator must do does not.
                if told.as_deref() != Some(advice.as_str()) {
                    tracing::error!(%parent, %reason, %advice, retry_in = ?wait, "The parent refused this node");
                    told = Some(advice.clone());
                } else {
                    tracing::debug!(%parent, %reason, retry_in = ?wait, "Still refused");
                }
                ctx.links
                    .refused(parent, reason, advice, wait, ctx.clock.now_ms());
            } else {
                told = None;
                let reason = e.to_string();
                if failing.as_deref() == Some(reason.as_str()) {
                    tracing::debug!(%parent, %address, error = %reason, retry_in = ?wait, "Still no session with the parent");
                } else {
                    tracing::warn!(%parent, %address, error = %reason, retry_in = ?wait, "No session with the parent; retrying");
                    failing = Some(reason);
                }
            }
        }
        // A reload of this node's TLS files (a renewed certificate after a refusal)
        // is worth an attempt at once.
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = ctx.client_tls.changed() => {}
        }
    }
}

/// How an attempt ended, as far as waiting for the next goes.
fn outcome_of(result: &Result<(), TransportError>) -> Outcome {
    match result {
        Ok(()) => Outcome::Broke,
        Err(TransportError::Rejected(_) | TransportError::Tls(_) | TransportError::Revoked(_)) => {
            Outcome::Refused
        }
        Err(TransportError::Closed { code, .. }) if close_code::is_refusal(*code) => {
            Outcome::Refused
        }
        Err(TransportError::Refused { code, .. }) if lasting(*code) => Outcome::Refused,
        Err(TransportError::Connect(_) | TransportError::Io(_)) => Outcome::Unreachable,
        Err(_) => Outcome::Broke,
    }
}

/// Refusals that a retry will not pass: an operator must act.
fn lasting(code: RefusalCode) -> bool {
    matches!(
        code,
        RefusalCode::Identity | RefusalCode::Unauthorised | RefusalCode::Version
    )
}

/// What an operator should do about a refusal.
fn advice_of(error: &TransportError) -> String {
    match error {
        TransportError::Rejected(refusal) => refusal.advice().to_string(),
        TransportError::Refused {
            code: RefusalCode::Version,
            ..
        } => "this node and its parent share no protocol version: upgrade the older one".into(),
        TransportError::Tls(_) => {
            "this node's TLS files are missing or invalid: check tls.cert, tls.key and tls.ca"
                .into()
        }
        TransportError::Closed { code, .. } if *code == u64::from(close_code::REVOKED) => {
            "this node's certificate was revoked: renew it at the network CA (`lmsync pki \
             renew`) and send the node SIGHUP"
                .into()
        }
        TransportError::Revoked(_) => "the parent's certificate was revoked: this node refuses \
             it until the parent presents a new one"
            .into(),
        _ => "the parent does not accept this node as it is: check [network] parent, the \
              parent's network.children, and that this node's certificate names its code"
            .into(),
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
    let config = ctx
        .client_tls
        .current()
        .ok_or_else(|| TransportError::Tls("no client configuration".into()))?;
    let conn = endpoint
        .connect_with(config, addr, &pki::dns_name(parent))
        .map_err(|e| TransportError::Connect(e.to_string()))?
        .await
        .map_err(|e| match connection_error(&e) {
            rejected @ TransportError::Rejected(_) => rejected,
            _ => TransportError::Connect(e.to_string()),
        })?;
    if peer_code(&conn) != Some(parent) {
        return Err(TransportError::Connect(format!(
            "the server at {address} is not node {parent}"
        )));
    }
    if let Some(revoked) = revoked_peer(&conn, ctx) {
        conn.close(
            quinn::VarInt::from_u32(close_code::REVOKED),
            revoked.as_bytes(),
        );
        return Err(TransportError::Revoked(format!("the parent's {revoked}")));
    }
    super::note_certificate(&conn, ctx, parent);
    let (mut send, recv) = conn.open_bi().await.map_err(|e| connection_error(&e))?;
    let session = Driven::new(
        ChildSession::new(
            ctx.me,
            parent,
            ctx.batch_records,
            ctx.verifier.clone(),
            ctx.standards.clone(),
        )
        .speaking_up_to(ctx.max_protocol),
    );
    let result = child_session_loop(ctx, parent, &conn, &session, &mut send, recv).await;
    // A refusal arrives as the connection's close reason: report it, not "connection lost".
    match (result, conn.close_reason()) {
        (Err(_), Some(quinn::ConnectionError::ApplicationClosed(close))) => {
            Err(TransportError::Closed {
                code: close.error_code.into_inner(),
                reason: format!(
                    "closed by {parent}: {}",
                    String::from_utf8_lossy(&close.reason)
                ),
            })
        }
        (result, _) => with_cause(result, &conn),
    }
}

/// Drives the child session: frames from the parent, records and documents committed
/// here, the sync timer (backing off while the link is idle, as the session says) and the
/// anti-entropy timer, in a fixed order of readiness.
async fn child_session_loop(
    ctx: &SyncContext,
    parent: NodeCode,
    conn: &quinn::Connection,
    session: &Driven<ChildSession>,
    send: &mut SendStream,
    recv: RecvStream,
) -> Result<(), TransportError> {
    // Subscribed before the first offer, so that nothing committed after it goes unnoticed.
    let mut commits = ctx.commits.subscribe();
    let mut documents = ctx.commits.subscribe_documents();
    let opening = session.step(ctx, |s, store| Ok(s.start(store))).await?;
    carry_out(ctx, parent, send, opening).await?;
    let mut frames = FrameReader::spawn(recv);
    let mut last_tick = tokio::time::Instant::now();
    let mut anti_entropy = tokio::time::interval(ctx.anti_entropy);
    // The first tick of an interval fires at once; the handshake already compared digests.
    anti_entropy.tick().await;
    loop {
        let next_tick = last_tick + session.read(|s| s.tick_delay(ctx.interval));
        // Biased: a fixed order of readiness checks keeps a simulation deterministic.
        let actions = tokio::select! {
            biased;
            frame = frames.next() => {
                let Some(message) = frame? else { return Ok(()) };
                session.step(ctx, move |s, store| s.handle(store, message)).await?
            }
            Ok(()) = commits.changed() => {
                session.step(ctx, ChildSession::on_commit).await?
            }
            Ok(()) = documents.changed() => {
                if let Some(revoked) = revoked_peer(conn, ctx) {
                    return Err(TransportError::Revoked(format!("the parent's {revoked}")));
                }
                session.step(ctx, ChildSession::on_documents_committed).await?
            }
            () = tokio::time::sleep_until(next_tick) => {
                last_tick = tokio::time::Instant::now();
                session.step(ctx, ChildSession::on_tick).await?
            }
            _ = anti_entropy.tick() => session.step(ctx, ChildSession::on_anti_entropy).await?,
        };
        carry_out(ctx, parent, send, actions).await?;
    }
}
