//! QUIC between tiers: endpoints, connection management and the loops that drive the
//! sans-IO [`protocol`](crate::core::protocol) sessions over one bidirectional stream.
//!
//! The child dials its parent (cities sit behind firewalls) and reconnects with backoff;
//! the parent accepts only authenticated children that the tree and its config allow.
//! A peer's node code is read from its certificate, never taken from what it says.

pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::{AsyncUdpSocket, Connection, Endpoint, EndpointConfig, RecvStream, SendStream, VarInt};

use crate::core::model::signature::DocumentVerifier;
use crate::core::model::standards::StandardsCell;
use crate::core::model::{NodeCode, Tier};
use crate::core::protocol::{Action, ChildSession, Event, ParentSession};
use crate::core::store::{Store, StoreError};
use crate::core::wire::{self, FrameError, Message, RefusalCode};
use crate::node::clock::Clock;
use crate::node::links::Links;
use crate::node::pki;

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
    /// The peer closed the connection on purpose, with this reason.
    #[error("{0}")]
    Closed(String),
    /// The peer started a frame or a session and did not finish it in time.
    #[error("the peer took longer than {0:?} to finish a frame or say Hello")]
    Stalled(Duration),
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
    /// Checks documents from above against the network CA.
    pub verifier: DocumentVerifier,
    /// Children allowed (`None`: every node one tier below in the subtree).
    pub children: Option<Vec<NodeCode>>,
    /// Where store calls run.
    pub storage_calls: StorageCalls,
}

/// Where a session runs its store calls (commits, re-reading the standards).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageCalls {
    /// On tokio's blocking pool, so that a commit's fsync never stalls other sessions.
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

/// How long a peer may take to finish a frame once its first byte arrived: an 8 MiB
/// frame at about 600 kbit/s. A peer trickling bytes (a slowloris) is cut off here.
const FRAME_DEADLINE: Duration = Duration::from_secs(120);
/// How long a new connection may take to open its stream and say `Hello`.
const HELLO_DEADLINE: Duration = Duration::from_secs(10);

/// Reads one frame: a checked length prefix, then exactly that many bytes. Waiting for
/// the next frame has no limit (QUIC keep-alives and the idle timeout watch the link);
/// finishing one does ([`FRAME_DEADLINE`]).
async fn read_frame(recv: &mut RecvStream) -> Result<Option<Message>, TransportError> {
    let mut prefix = [0u8; 4];
    match recv.read_exact(&mut prefix[..1]).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(e) => return Err(TransportError::Connection(e.to_string())),
    }
    let rest = async {
        recv.read_exact(&mut prefix[1..])
            .await
            .map_err(|e| TransportError::Connection(e.to_string()))?;
        let len = wire::frame_len(prefix)?;
        let mut body = vec![0u8; len];
        recv.read_exact(&mut body)
            .await
            .map_err(|e| TransportError::Connection(e.to_string()))?;
        Ok::<_, TransportError>(body)
    };
    let body = tokio::time::timeout(FRAME_DEADLINE, rest)
        .await
        .map_err(|_| TransportError::Stalled(FRAME_DEADLINE))??;
    Ok(Some(wire::decode_body(&body)?))
}

async fn write_frame(send: &mut SendStream, message: &Message) -> Result<(), TransportError> {
    let frame = wire::encode_frame(message).map_err(|e| TransportError::Frame(e.into()))?;
    send.write_all(&frame)
        .await
        .map_err(|e| TransportError::Connection(e.to_string()))
}

/// Carries out a session's actions. Returns Err when the session must end.
async fn perform(
    ctx: &SyncContext,
    peer: NodeCode,
    send: &mut SendStream,
    actions: Vec<Action>,
) -> Result<(), TransportError> {
    for action in actions {
        match action {
            Action::Send(m) => write_frame(send, &m).await?,
            Action::Commit { mut batch, then } => {
                let now_ms = ctx.clock.now_ms();
                batch
                    .quarantine
                    .iter_mut()
                    .for_each(|q| q.received_at_ms = now_ms);
                if !batch.records.is_empty() {
                    batch.received_at_ms = Some(now_ms);
                    ctx.links.record_lags(&batch.records, now_ms);
                }
                let store = ctx.store.clone();
                ctx.storage_calls.run(move || store.commit(batch)).await??;
                for m in &then {
                    write_frame(send, m).await?;
                }
            }
            Action::Close { code, reason } => {
                tracing::warn!(%peer, ?code, %reason, "Closing sync session");
                let _ = write_frame(
                    send,
                    &Message::Refuse {
                        code,
                        reason: reason.clone(),
                    },
                )
                .await;
                let _ = send.finish();
                return Err(TransportError::Refused { code, reason });
            }
            Action::Event(e) => {
                if let Event::DocumentStored { kind, .. } = &e
                    && kind == crate::core::model::document::CLASSIFICATION
                {
                    let store = ctx.store.clone();
                    let standards = ctx
                        .storage_calls
                        .run(move || crate::node::write::standards_in_force(store.as_ref()))
                        .await?;
                    tracing::info!(standards = ?standards.code_refs(), "New classification in force");
                    ctx.standards.replace(standards);
                }
                ctx.links.record(peer, &e, ctx.clock.now_ms());
            }
        }
    }
    Ok(())
}

/// The one live connection per child: a newer one replaces it, so a child (or a stolen
/// key) cannot hold many sessions and their buffers at once.
type Sessions = Arc<std::sync::Mutex<std::collections::BTreeMap<NodeCode, Connection>>>;

/// Listens for children until the endpoint closes. `parentless`: this node has no parent,
/// so a store marked for restore is rebuilt from its children.
pub async fn serve_children(endpoint: Endpoint, ctx: SyncContext, parentless: bool) {
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
            VarInt::from_u32(3),
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

/// The node code in the peer's certificate.
fn peer_code(conn: &Connection) -> Option<NodeCode> {
    let identity = conn.peer_identity()?;
    let certs = identity.downcast_ref::<Vec<rustls_pki_types::CertificateDer<'static>>>()?;
    pki::node_of_der(certs.first()?)
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
        conn.close(VarInt::from_u32(1), b"certificate names no lmsync node");
        return;
    };
    if let Err(reason) = allowed_child(&ctx, child) {
        tracing::warn!(%child, %reason, "Refusing connection");
        conn.close(VarInt::from_u32(1), reason.as_bytes());
        return;
    }
    replace_session(&sessions, child, &conn);
    let result = with_cause(
        run_child_session(&conn, &ctx, child, parentless).await,
        &conn,
    );
    end_session(&sessions, child, &conn);
    ctx.links
        .disconnected(child, result.as_ref().err().map(ToString::to_string));
    match result {
        Ok(()) => {}
        // A lost connection has nobody left to tell.
        Err(e @ TransportError::Connection(_)) => {
            tracing::info!(%child, error = %e, "Child session ended");
        }
        // Anything else closes with the reason, so the child's operator can read why.
        Err(e) => {
            tracing::warn!(%child, error = %e, "Closing the child's session");
            let reason = match e {
                TransportError::Refused { code, reason } => format!("{code:?}: {reason}"),
                other => other.to_string(),
            };
            conn.close(VarInt::from_u32(2), reason.as_bytes());
        }
    }
}

/// One child session: its stream, `Hello` within [`HELLO_DEADLINE`], then messages.
async fn run_child_session(
    conn: &Connection,
    ctx: &SyncContext,
    child: NodeCode,
    parentless: bool,
) -> Result<(), TransportError> {
    let opened = async {
        let (send, mut recv) = conn
            .accept_bi()
            .await
            .map_err(|e| TransportError::Connection(e.to_string()))?;
        let hello = read_frame(&mut recv).await?;
        Ok::<_, TransportError>((send, recv, hello))
    };
    let (mut send, mut recv, hello) = tokio::time::timeout(HELLO_DEADLINE, opened)
        .await
        .map_err(|_| TransportError::Stalled(HELLO_DEADLINE))??;
    let mut session =
        ParentSession::new(ctx.me, child, ctx.standards.clone(), ctx.verifier.clone());
    let mut next = hello;
    while let Some(message) = next {
        let actions = session.handle(ctx.store.as_ref(), message)?;
        let returned = actions
            .iter()
            .any(|a| matches!(a, Action::Event(Event::DocumentsReturned { .. })));
        perform(ctx, child, &mut send, actions).await?;
        if returned && parentless {
            finish_rebuild_from_children(ctx, child).await?;
        }
        next = read_frame(&mut recv).await?;
    }
    Ok(())
}

/// A node without a parent whose store was rebuilt (marked for restore) takes its records
/// from its children's uploads and the documents it issued from their returns: once a child
/// has returned every one of those it holds newer, the rebuild is done and publishing
/// resumes. Every child returns them on each connection, so a child that
/// holds a newer version later still brings it back (and that is reported as a conflict
/// if this node published meanwhile).
async fn finish_rebuild_from_children(
    ctx: &SyncContext,
    child: NodeCode,
) -> Result<(), TransportError> {
    let store = ctx.store.clone();
    let finished = ctx
        .storage_calls
        .run(move || {
            if !store.restore_pending()? {
                return Ok(false);
            }
            store.commit(crate::core::store::WriteBatch {
                restore_pending: Some(false),
                ..crate::core::store::WriteBatch::default()
            })?;
            Ok::<_, StoreError>(true)
        })
        .await??;
    if finished {
        tracing::info!(%child, "Rebuilt from the children: own documents returned; publishing resumes");
    }
    Ok(())
}

/// Keeps a session with the parent alive: dial, run, back off, dial again.
pub async fn dial_parent(endpoint: Endpoint, parent: NodeCode, address: String, ctx: SyncContext) {
    let mut backoff = Duration::from_millis(250);
    loop {
        match run_parent_session(&endpoint, parent, &address, &ctx).await {
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

async fn run_parent_session(
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
    let result = child_loop(ctx, parent, &mut session, &mut send, recv).await;
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

/// A stream error says only "connection lost"; the connection knows why (reset by the
/// peer, timed out), and that is what status and logs should say.
fn with_cause(result: Result<(), TransportError>, conn: &Connection) -> Result<(), TransportError> {
    match (result, conn.close_reason()) {
        (Err(TransportError::Connection(_)), Some(reason)) => {
            Err(TransportError::Connection(reason.to_string()))
        }
        (result, _) => result,
    }
}

async fn child_loop(
    ctx: &SyncContext,
    parent: NodeCode,
    session: &mut ChildSession,
    send: &mut SendStream,
    recv: RecvStream,
) -> Result<(), TransportError> {
    perform(ctx, parent, send, session.start(ctx.store.as_ref())).await?;
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
                perform(ctx, parent, send, actions).await?;
            }
            _ = tick.tick() => {
                let actions = session.on_tick(ctx.store.as_ref())?;
                perform(ctx, parent, send, actions).await?;
            }
            _ = anti_entropy.tick() => {
                let actions = session.on_anti_entropy(ctx.store.as_ref())?;
                perform(ctx, parent, send, actions).await?;
            }
        }
    }
}

/// Frames read by a task of their own. Reading a frame takes several awaits; inside a
/// `select!` a timer firing half-way would drop the bytes already read and break the
/// framing, so the read runs to completion elsewhere and hands over whole messages.
struct FrameReader {
    frames: tokio::sync::mpsc::Receiver<Result<Option<Message>, TransportError>>,
    task: tokio::task::JoinHandle<()>,
}

impl FrameReader {
    fn spawn(mut recv: RecvStream) -> FrameReader {
        // Two frames in hand at most: the stream's flow control does the rest.
        let (tx, frames) = tokio::sync::mpsc::channel(2);
        let task = tokio::spawn(async move {
            loop {
                let frame = read_frame(&mut recv).await;
                let last = !matches!(frame, Ok(Some(_)));
                if tx.send(frame).await.is_err() || last {
                    return;
                }
            }
        });
        FrameReader { frames, task }
    }

    /// The next frame; `Ok(None)` when the peer finished the stream. Cancel-safe.
    async fn next(&mut self) -> Result<Option<Message>, TransportError> {
        self.frames.recv().await.unwrap_or(Ok(None))
    }
}

impl Drop for FrameReader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A node's running sync: its QUIC endpoint and session tasks.
pub struct SyncHandle {
    endpoint: Endpoint,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Where QUIC listens for children (provinces and the ministry).
    pub quic_addr: Option<SocketAddr>,
}

impl SyncHandle {
    /// Ends every session. Nothing unacknowledged is lost: peers resume from their acks.
    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
        self.endpoint
            .close(VarInt::from_u32(0), b"node shutting down");
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
    let mut endpoint = match (socket, server) {
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
        endpoint.set_default_client_config(tls::client_config(tls)?);
    }
    let mut tasks = Vec::new();
    let mut quic_addr = None;
    if tier != Tier::City {
        quic_addr = endpoint.local_addr().ok();
        let parentless = parent.is_none();
        tasks.push(tokio::spawn(serve_children(
            endpoint.clone(),
            ctx.clone(),
            parentless,
        )));
    }
    if let Some((code, address)) = parent {
        tasks.push(tokio::spawn(dial_parent(
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
    })
}

/// Notes an event in the link state (exposed for the shell's own events).
pub fn note(links: &Links, peer: NodeCode, event: &Event, now_ms: i64) {
    links.record(peer, event, now_ms);
}
