//! The public information service (`[public] listen`): a read-only, tokenless site and
//! JSON API on its own listener, safe to expose to the internet — the vacancy board, the
//! quarterly market report, the offices and their channels, and a display-screen mode.
//!
//! The board ([`crate::reporting::public::Board`]) is built once from the store when the
//! node starts and then kept by following each owner's change log as records commit
//! (`keeper`), so a search never scans the store; `answers` keeps each search's answer
//! for a second, computed once however many ask. `server` holds the routes (and the
//! OpenAPI document of the JSON, `/api/openapi.json`), the per-client rate limit and the
//! caching headers; `pages` the templates.

mod answers;
mod keeper;
mod pages;
mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::core::model::NodeCode;
use crate::core::model::standards::StandardsCell;
use crate::core::store::Store;
use crate::node::api::ApiStats;
use crate::node::clock::Clock;
use crate::node::config::{ApiLimits, PublicConfig};
use crate::node::write::CommitSignal;
use crate::reporting::public::Board;

/// What the public handlers share.
#[derive(Clone)]
pub(crate) struct Public {
    node: NodeCode,
    name: String,
    store: Arc<dyn Store>,
    standards: Arc<StandardsCell>,
    clock: Arc<dyn Clock>,
    board: Arc<std::sync::RwLock<Board>>,
    ready: Arc<AtomicBool>,
    limiter: Arc<server::Limiter>,
    answers: Arc<answers::Answers>,
}

impl Public {
    fn board(&self) -> std::sync::RwLockReadGuard<'_, Board> {
        self.board.read().unwrap_or_else(|p| p.into_inner())
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Today, by the node's clock.
    fn today(&self) -> chrono::NaiveDate {
        chrono::DateTime::from_timestamp_millis(self.clock.now_ms())
            .map_or_else(crate::node::clock::today, |t| t.date_naive())
    }
}

/// Method and path of every endpoint of the public listener (pages and `/api/` JSON).
pub fn routes() -> Vec<(crate::node::api::Verb, &'static str)> {
    crate::node::api::routes_of(&server::endpoints())
}

/// A running public service: its address and the tasks to stop.
pub struct PublicService {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    keeper: tokio::task::JoinHandle<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    shutdown: tokio::sync::oneshot::Sender<()>,
}

/// What the public service needs of the node.
pub struct PublicParts {
    /// This node.
    pub node: NodeCode,
    /// Its display name.
    pub name: String,
    /// The store.
    pub store: Arc<dyn Store>,
    /// Rings when records commit.
    pub commits: CommitSignal,
    /// The classifications in force (occupation names for search).
    pub standards: Arc<StandardsCell>,
    /// The clock (the board's date).
    pub clock: Arc<dyn Clock>,
    /// The HTTP limits (connections, deadlines) the API uses too.
    pub limits: ApiLimits,
}

impl PublicService {
    /// Binds `config.listen`, starts the keeper (which builds the board, then follows
    /// commits) and serves.
    pub async fn start(config: &PublicConfig, parts: PublicParts) -> std::io::Result<Self> {
        let listener = crate::node::api::bind(config.listen)?;
        let addr = listener.local_addr()?;
        let public = Public {
            node: parts.node,
            name: parts.name,
            store: parts.store.clone(),
            standards: parts.standards,
            clock: parts.clock,
            board: Arc::default(),
            ready: Arc::default(),
            limiter: Arc::new(server::Limiter::new(
                config.requests_per_second,
                config.burst,
            )),
            answers: Arc::default(),
        };
        let keeper = tokio::spawn(keeper::keep(
            parts.store,
            parts.commits,
            public.board.clone(),
            public.ready.clone(),
        ));
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let router = server::router(public);
        let server = tokio::spawn(crate::node::api::serve_router(
            listener,
            router,
            parts.limits,
            Arc::new(ApiStats::default()),
            async move {
                let _ = stop.await;
            },
        ));
        tracing::info!(%addr, "Public information service listening");
        Ok(PublicService {
            addr,
            keeper,
            server,
            shutdown,
        })
    }

    /// Stops serving (requests in flight finish) and stops following commits.
    pub async fn stop(self) {
        self.keeper.abort();
        let _ = self.shutdown.send(());
        let _ = self.server.await;
    }
}
