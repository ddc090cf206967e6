//! The node's HTTP API (`docs/reference/api.md`): ingest, reads, digest, the change feed,
//! status, metrics, submitted reports, backups and exports.
//!
//! A thin shell: handlers parse, call the model, the write path or the store, and render
//! JSON. Writes need the bearer token; reads are open to loopback callers and need the
//! token from anywhere else. Every error is `{"error", "message"}` JSON. The server
//! bounds what one client can hold: connections, requests in flight, how long a head or a
//! body may take, and the JSON elements a body may carry (`serve.rs`, `limits.rs`,
//! `deadline.rs`, `body.rs`, `scan.rs`). Every endpoint is listed once, in `routes.rs`,
//! and described in the OpenAPI document it serves (`openapi.rs`).

mod backup;
mod body;
mod changes;
mod coverage;
mod cursor;
mod dashboard;
mod dashboard_alerts;
mod dashboard_charts;
mod dashboard_coverage;
mod dashboard_reports;
mod deadline;
mod documents;
mod error;
mod export;
mod extract;
mod limits;
mod metrics;
mod openapi;
mod records;
mod routes;
mod scan;
mod serve;
mod status;
mod stream;
mod submitted;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::Response;

use crate::core::model::NodeCode;
use crate::core::model::person::Pseudonymiser;
use crate::core::model::standards::StandardsCell;
use crate::core::store::Store;
use crate::node::clock::Clock;
use crate::node::config::Config;
use crate::node::pki::CurrentCertificate;
use crate::node::write::{CommitSignal, Writer};

pub use changes::{DEFAULT_LIMIT, DEFAULT_WAIT_SECS, MAX_LIMIT, MAX_WAIT_SECS};
pub use coverage::CoverageCache;
pub use error::ApiError;
pub use limits::{MAX_HEADER_BYTES, MAX_HEADERS, MAX_URI_BYTES};
pub use records::{MAX_RECORD_ELEMENTS, MAX_RECORDS_PER_REQUEST, record_json};
pub use routes::{Endpoint, Verb, router_of, routes_of};
pub use serve::{bind, serve, serve_router};

/// Counters kept by the API itself.
#[derive(Debug, Default)]
pub struct ApiStats {
    /// Records rejected by validation.
    pub rejected: AtomicU64,
    /// Connections answered 503 because `[api] max_connections` were open.
    pub refused_connections: AtomicU64,
    /// Requests answered 503 because `[api] max_in_flight` were being handled.
    pub overloaded: AtomicU64,
    /// Connections closed because a request head was not complete in time.
    pub head_timeouts: AtomicU64,
    /// Change-feed answers being sent.
    pub changes_streams: AtomicU64,
    /// Change-feed answers caught up and waiting for a commit.
    pub changes_waiting: AtomicU64,
    /// Record lines the change feed has sent.
    pub changes_records: AtomicU64,
    /// Exports streaming now (`GET /v1/export`).
    pub exports: AtomicU64,
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// This node.
    pub node: NodeCode,
    /// The validated config.
    pub config: Arc<Config>,
    /// The store (reads).
    pub store: Arc<dyn Store>,
    /// The write path.
    pub writer: Writer,
    /// Rings the sync sessions when a document is published here.
    pub commits: CommitSignal,
    /// Standards in force.
    pub standards: Arc<StandardsCell>,
    /// Sync link state.
    pub links: Arc<crate::node::links::Links>,
    /// The city's pseudonym keys in force, if any (replaced on a reload).
    pub keys: Arc<PidKeys>,
    /// The API bearer tokens in force.
    pub tokens: Arc<ApiTokens>,
    /// Largest body accepted.
    pub body_limit: usize,
    /// Wall clock for display.
    pub clock: Arc<dyn Clock>,
    /// When the node started, ms.
    pub started_at_ms: i64,
    /// The node certificate in force (replaced when the node reloads its TLS files).
    pub certificate: Arc<CurrentCertificate>,
    /// The CA certificates and revocations in force.
    pub trust: crate::core::model::signature::DocumentVerifier,
    /// API counters.
    pub stats: Arc<ApiStats>,
    /// The dashboard's last coverage computation, reused for a while.
    pub coverage_cache: Arc<coverage::CoverageCache>,
    /// The store itself, for backups (a backup's cut is kept by its commits).
    pub backups: Arc<crate::node::storage::SledStore>,
}

/// The pseudonym keys in force: the current one and, during a rotation's overlap, the
/// previous one. Read per request, replaced whole when the node reloads its config.
#[derive(Debug, Default)]
pub struct PidKeys(std::sync::RwLock<KeyPair>);

/// The current and the previous pseudonym key, either absent.
pub type KeyPair = (Option<Arc<Pseudonymiser>>, Option<Arc<Pseudonymiser>>);

impl PidKeys {
    /// The keys `current` and `previous`.
    pub fn new(current: Option<Arc<Pseudonymiser>>, previous: Option<Arc<Pseudonymiser>>) -> Self {
        PidKeys(std::sync::RwLock::new((current, previous)))
    }

    /// The current and the previous key.
    pub fn get(&self) -> KeyPair {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts `current` and `previous` in force.
    pub fn replace(
        &self,
        current: Option<Arc<Pseudonymiser>>,
        previous: Option<Arc<Pseudonymiser>>,
    ) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = (current, previous);
    }
}

impl AppState {
    /// The nodes retired today, by the retirement documents held here (none when the
    /// documents cannot be read: a link then shows as it is).
    pub(crate) fn retired_nodes(
        &self,
    ) -> std::collections::BTreeMap<NodeCode, crate::core::model::retirement::Retirement> {
        let today = chrono::DateTime::from_timestamp_millis(self.clock.now_ms())
            .map_or_else(crate::node::clock::today, |t| t.date_naive());
        self.store
            .documents()
            .map(|docs| crate::core::model::retirement::retired_on(&docs, today))
            .unwrap_or_default()
    }
}

/// Method and path of every endpoint the router serves (`routes.rs`).
pub fn routes() -> Vec<(Verb, &'static str)> {
    routes_of(&routes::endpoints())
}

/// The router with every endpoint (`routes.rs`), behind the limits on a request as a
/// whole (outermost first: URI and header size, then requests in flight, then the token
/// rule for reads).
pub fn router(state: AppState) -> Router {
    let in_flight =
        limits::InFlight::new(state.config.api_limits.max_in_flight, state.stats.clone());
    routes::router_of(routes::endpoints())
        .fallback(extract::not_found)
        .method_not_allowed_fallback(extract::method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), guard_reads))
        .layer(middleware::from_fn_with_state(in_flight, limits::admit))
        .layer(middleware::from_fn(limits::check_head))
        .with_state(state)
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
/// The bearer tokens the API accepts: the token file's lines, replaced when the node
/// reloads the file (SIGHUP), so that a token is rotated with both valid meanwhile.
#[derive(Debug)]
pub struct ApiTokens(std::sync::RwLock<Vec<String>>);

impl ApiTokens {
    /// The tokens read from the token file.
    pub fn new(tokens: Vec<String>) -> Self {
        ApiTokens(std::sync::RwLock::new(tokens))
    }

    /// Puts `tokens` in force instead.
    pub fn replace(&self, tokens: Vec<String>) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = tokens;
    }

    /// True when `given` is one of them (compared in constant time, all of them).
    fn accepts(&self, given: &str) -> bool {
        let tokens = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tokens
            .iter()
            .fold(false, |ok, t| token_matches(t, given) | ok)
    }
}

fn token_matches(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// Fails with 401 unless the request carries the node's token.
pub(crate) fn require_token(app: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    match bearer(headers) {
        Some(t) if app.tokens.accepts(t) => Ok(()),
        _ => Err(ApiError::unauthorised()),
    }
}

/// Reads are open to loopback; any other caller must present the token.
async fn guard_reads(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if !peer.ip().is_loopback() {
        require_token(&app, request.headers())?;
    }
    Ok(next.run(request).await)
}
