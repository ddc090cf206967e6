//! QUIC between tiers: endpoints, connection management and the loops that drive the
//! sans-IO [`protocol`](crate::core::protocol) sessions over one bidirectional stream.
//!
//! The child dials its parent (cities sit behind firewalls) and reconnects with backoff;
//! the parent accepts only authenticated children that the tree and its config allow.
//! A peer's node code is read from its certificate, never taken from what it says.
//!
//! This file binds the endpoint ([`start`]) and holds what both sides share; `accept`
//! runs the parent's side, `dial` the child's, `frames` reads and writes frames, and
//! `actions` carries out what a session asks for. Decisions belong to the core's
//! sessions; nothing here interprets a message.

mod accept;
mod actions;
mod dial;
mod frames;
mod refusal;
pub mod tls;

pub use refusal::{Alert, REFUSED_BACKOFF_MAX, Refusal};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::{AsyncUdpSocket, Connection, Endpoint, EndpointConfig, VarInt};

use crate::core::model::signature::DocumentVerifier;
use crate::core::model::standards::StandardsCell;
use crate::core::model::{NodeCode, Tier};
use crate::core::protocol::Event;
use crate::core::store::{Store, StoreError};
use crate::core::wire::{FrameError, RefusalCode};
use crate::node::clock::Clock;
use crate::node::links::Links;
use crate::node::pki;
use crate::node::write::CommitSignal;

/// Why a connection or session failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// TLS material is missing or invalid.
    #[error("TLS: {0}")]
    Tls(String),
    /// A socket could not be bound or used.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Connecting failed.
    #[error("connecting: {0}")]
    Connect(String),
    /// The connection broke.
    #[error("connection: {0}")]
    Connection(String),
    /// The peer sent an undecodable or oversized frame.
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    /// The peer presented a certificate that was revoked.
    #[error("{0}")]
    Revoked(String),
    /// The session was refused or closed with a reason.
    #[error("session closed ({code:?}): {reason}")]
    Refused {
        /// Category.
        code: RefusalCode,
        /// Reason.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The peer closed the connection on purpose, with this code ([`close_code`]) and
    /// reason.
    #[error("{reason}")]
    Closed {
        /// The application close code.
        code: u64,
        /// Why, as the peer said it.
        reason: String,
    },
    /// The TLS handshake was refused by an alert (an expired, revoked or foreign
    /// certificate): retrying soon cannot help.
    #[error("{0}")]
    Rejected(Refusal),
    /// The peer started a frame or a session and did not finish it in time.
    #[error("the peer took longer than {0:?} to finish a frame or say Hello")]
    Stalled(Duration),
}

/// The application close codes a parent sends, so that a child can tell a refusal (wait
/// long, tell the operator) from a restart or a replaced connection (come back soon).
pub mod close_code {
    /// The node is shutting down.
    pub const SHUTDOWN: u32 = 0;
    /// The certificate names no node, or a node that is not a child here.
    pub const NOT_ADMITTED: u32 = 1;
    /// The session ended on an error (a bad frame, a stalled peer, a protocol error).
    pub const SESSION_ENDED: u32 = 2;
    /// A newer connection of the same node replaced this one.
    pub const REPLACED: u32 = 3;
    /// The session was refused: identity, authorisation or protocol version.
    pub const REFUSED: u32 = 4;
    /// The certificate presented was revoked.
    pub const REVOKED: u32 = 5;

    /// True when a connection closed with `code` was refused rather than ended.
    pub fn is_refusal(code: u64) -> bool {
        [NOT_ADMITTED, REFUSED, REVOKED]
            .iter()
            .any(|c| code == u64::from(*c))
    }
}

/// `error` as a [`TransportError`]: a refused handshake is [`TransportError::Rejected`],
/// anything else a broken connection.
pub(super) fn connection_error(error: &quinn::ConnectionError) -> TransportError {
    match Refusal::of(error) {
        Some(refusal) => TransportError::Rejected(refusal),
        None => TransportError::Connection(error.to_string()),
    }
}

/// Everything a session loop needs from the node.
#[derive(Clone)]
pub struct SyncContext {
    /// This node.
    pub me: NodeCode,
    /// The store.
    pub store: Arc<dyn Store>,
    /// Standards in force.
    pub standards: Arc<StandardsCell>,
    /// Link state for status.
    pub links: Arc<Links>,
    /// Wall clock, for "last sync" only.
    pub clock: Arc<dyn Clock>,
    /// Fast-path interval.
    pub interval: Duration,
    /// Anti-entropy interval.
    pub anti_entropy: Duration,
    /// Records per batch.
    pub batch_records: usize,
    /// Checks documents from above against the network CA; holds the revoked
    /// certificates that peers may no longer present.
    pub verifier: DocumentVerifier,
    /// Children allowed (`None`: every node one tier below in the subtree).
    pub children: Option<Vec<NodeCode>>,
    /// Where store calls run.
    pub storage_calls: StorageCalls,
    /// Rings when records are committed here (by the API's writer or a session storing
    /// replicas): the session with the parent sends them at once.
    pub commits: CommitSignal,
    /// The client TLS config dials use (set by [`start`], replaced on a reload).
    pub client_tls: Arc<tls::ClientTls>,
    /// The highest sync protocol version this node speaks.
    pub max_protocol: u16,
}

/// Where a session runs its store calls: every step of the session (its store reads and
/// the decoding of records), commits, re-reading the standards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageCalls {
    /// On tokio's blocking pool, so that a long anti-entropy read or a commit's fsync never
    /// stalls the async workers that drive the other sessions.
    BlockingPool,
    /// On the session's own task. Only for a single-threaded deterministic simulation,
    /// where a thread pool would let real time decide the order of events.
    Inline,
}

impl StorageCalls {
    async fn run<T: Send + 'static>(
        self,
        call: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, TransportError> {
        match self {
            StorageCalls::Inline => Ok(call()),
            StorageCalls::BlockingPool => tokio::task::spawn_blocking(call)
                .await
                .map_err(|e| TransportError::Connection(e.to_string())),
        }
    }
}

/// The UDP socket a node's QUIC endpoint uses.
pub enum Socket {
    /// A real UDP socket bound to this address.
    Udp(SocketAddr),
    /// A socket supplied by the caller (a simulated network, a fault-injecting wrapper),
    /// with the endpoint settings to use on it (e.g. a seeded random generator).
    Custom {
        /// The socket.
        socket: Arc<dyn AsyncUdpSocket>,
        /// Endpoint settings.
        config: EndpointConfig,
    },
}

/// The peer's certificate (DER), as TLS verified it.
fn peer_certificate(conn: &Connection) -> Option<rustls_pki_types::CertificateDer<'static>> {
    let identity = conn.peer_identity()?;
    let certs = identity.downcast_ref::<Vec<rustls_pki_types::CertificateDer<'static>>>()?;
    certs.first().cloned()
}

/// The node code in the peer's certificate.
pub(super) fn peer_code(conn: &Connection) -> Option<NodeCode> {
    pki::node_of_der(&peer_certificate(conn)?)
}

/// Notes in the link table which certificate the peer on `conn` presented.
pub(super) fn note_certificate(conn: &Connection, ctx: &SyncContext, peer: NodeCode) {
    if let Some(info) = peer_certificate(conn).and_then(|der| pki::info_of_der(&der)) {
        ctx.links.presented(peer, info);
    }
}

/// Why the peer on `conn` may no longer be talked to, when its certificate was revoked.
/// Checked at the handshake and again whenever documents arrive, so that a revocation
/// also ends a session already established.
pub(super) fn revoked_peer(conn: &Connection, ctx: &SyncContext) -> Option<String> {
    let r = ctx.verifier.revocation_of(&peer_certificate(conn)?)?;
    Some(format!(
        "certificate {} of {} was revoked by {}: {}",
        r.serial, r.node, r.issuer, r.reason
    ))
}

/// A stream error says only "connection lost"; the connection knows why (reset by the
/// peer, timed out), and that is what status and logs should say.
pub(super) fn with_cause(
    result: Result<(), TransportError>,
    conn: &Connection,
) -> Result<(), TransportError> {
    match (result, conn.close_reason()) {
        (Err(TransportError::Connection(_)), Some(reason)) => Err(connection_error(&reason)),
        (result, _) => result,
    }
}

/// A node's running sync: its QUIC endpoint and session tasks.
pub struct SyncHandle {
    endpoint: Endpoint,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Where QUIC listens for children (provinces and the ministry).
    pub quic_addr: Option<SocketAddr>,
    switch: tls::TlsSwitch,
}

impl SyncHandle {
    /// What puts new TLS material in force on this endpoint.
    pub fn tls_switch(&self) -> tls::TlsSwitch {
        self.switch.clone()
    }

    /// Ends every session. Nothing unacknowledged is lost: peers resume from their acks.
    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
        self.endpoint.close(
            VarInt::from_u32(close_code::SHUTDOWN),
            b"node shutting down",
        );
    }
}

/// Binds QUIC (a server for children unless this is a city; a client towards the parent
/// unless this is the ministry) and starts the sessions.
pub fn start(
    socket: Socket,
    tls: &tls::TlsMaterial,
    parent: Option<(NodeCode, String)>,
    ctx: SyncContext,
) -> Result<SyncHandle, TransportError> {
    let tier = ctx.me.tier();
    let server = match tier {
        Tier::City => None,
        _ => Some(tls::server_config(tls)?),
    };
    let endpoint = match (socket, server) {
        // A city only dials out: an ephemeral port on the configured address.
        (Socket::Udp(listen), None) => Endpoint::client(SocketAddr::new(listen.ip(), 0))?,
        (Socket::Udp(listen), Some(server)) => Endpoint::new(
            tls::endpoint_config(tls),
            Some(server),
            std::net::UdpSocket::bind(listen)?,
            Arc::new(quinn::TokioRuntime),
        )?,
        (Socket::Custom { socket, config }, server) => {
            let runtime = Arc::new(quinn::TokioRuntime);
            Endpoint::new_with_abstract_socket(config, server, socket, runtime)?
        }
    };
    if tier != Tier::Ministry {
        ctx.client_tls.replace(tls::client_config(tls)?);
    }
    let switch = tls::TlsSwitch {
        endpoint: endpoint.clone(),
        tier,
        client: ctx.client_tls.clone(),
    };
    let mut tasks = Vec::new();
    let mut quic_addr = None;
    if tier != Tier::City {
        quic_addr = endpoint.local_addr().ok();
        let parentless = parent.is_none();
        tasks.push(tokio::spawn(accept::serve_children(
            endpoint.clone(),
            ctx.clone(),
            parentless,
        )));
    }
    if let Some((code, address)) = parent {
        tasks.push(tokio::spawn(dial::dial_parent(
            endpoint.clone(),
            code,
            address,
            ctx,
        )));
    }
    Ok(SyncHandle {
        endpoint,
        tasks,
        quic_addr,
        switch,
    })
}

/// Notes an event in the link state (exposed for the shell's own events).
pub fn note(links: &Links, peer: NodeCode, event: &Event, now_ms: i64) {
    links.record(peer, event, now_ms);
}
