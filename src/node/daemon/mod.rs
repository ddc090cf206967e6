//! The running node: opens the store, starts the write path and the HTTP API, and shuts
//! everything down in order on SIGINT/SIGTERM (stop accepting, finish in-flight requests,
//! let the writer commit what it holds, close the store).

mod epochs;
mod figures;
mod lifecycle;
mod recovery;
pub mod systemd;

pub use recovery::create_store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::core::model::signature::DocumentVerifier;
use crate::core::model::standards::StandardsCell;
use crate::core::store::{ScrubCursor, Store, StoreError, WriteBatch};
use crate::node::api::{self, ApiStats, AppState};
use crate::node::clock::{Clock, SystemClock};
use crate::node::config::Config;
use crate::node::links::Links;
use crate::node::pki;
use crate::node::storage::SledStore;
use crate::node::transport::tls::{TlsFiles, TlsMaterial};
use crate::node::transport::{self, Socket, StorageCalls, SyncContext, SyncHandle};
use crate::node::write::{CommitSignal, Writer};

/// Why the node could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The store could not be opened.
    #[error("cannot open the store in {path}: {source}")]
    Store {
        /// Data directory.
        path: PathBuf,
        /// Cause.
        source: StoreError,
    },
    /// A file the node needs is missing or malformed.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The configured pseudonym key epoch cannot be used (lower than announced).
    #[error("{0}")]
    KeyEpoch(String),
    /// A socket or thread could not be set up.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Cause.
        source: std::io::Error,
    },
}

fn file_error(path: &Path, message: impl Into<String>) -> DaemonError {
    DaemonError::File {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Reads the API token clients use: the first line of the token file.
pub fn read_token(path: &Path) -> Result<String, DaemonError> {
    let mut tokens = read_tokens(path)?;
    Ok(tokens.swap_remove(0))
}

/// Tokens a token file may hold at once: the one in use and the next (or the last).
const MAX_TOKENS: usize = 2;

/// Reads every token the API accepts: one per non-empty line (the first is the one
/// clients use; a second is accepted too while clients move to it), each at least 32
/// characters.
pub fn read_tokens(path: &Path) -> Result<Vec<String>, DaemonError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| file_error(path, format!("cannot read the API token: {e}")))?;
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if tokens.is_empty() || tokens.iter().any(|t| t.len() < 32) {
        return Err(file_error(
            path,
            "the API token must be at least 32 characters",
        ));
    }
    if tokens.len() > MAX_TOKENS {
        return Err(file_error(
            path,
            format!("at most {MAX_TOKENS} tokens, one per line: the one in use and the next"),
        ));
    }
    Ok(tokens)
}

/// Reads a pseudonym key file: 64 hex digits.
pub fn read_pid_key(path: &Path) -> Result<[u8; 32], DaemonError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| file_error(path, format!("cannot read the pseudonym key: {e}")))?;
    let mut key = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut key)
        .map_err(|_| file_error(path, "the pseudonym key must be 64 hex digits"))?;
    Ok(key)
}

/// File in the data directory naming the API address of the running node, so that local
/// tools find a node whose config asks for an ephemeral port (`127.0.0.1:0`).
pub const API_ADDR_FILE: &str = "api.addr";

/// The API address a running node reported in `data_dir`, if any.
pub fn read_api_addr(data_dir: &Path) -> Option<SocketAddr> {
    std::fs::read_to_string(data_dir.join(API_ADDR_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A started node: its API address and the handles to stop it.
pub struct RunningNode {
    /// Where the API listens (the real port when the config said 0).
    pub api_addr: SocketAddr,
    /// QUIC sessions with the parent and children.
    pub sync: SyncHandle,
    scrubber: tokio::task::JoinHandle<()>,
    lifecycle: tokio::task::JoinHandle<()>,
    figures: figures::FiguresKeeper,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    writer_thread: std::thread::JoinHandle<()>,
    shutdown: tokio::sync::oneshot::Sender<()>,
    store: Arc<SledStore>,
    data_dir: std::path::PathBuf,
    /// The public information service, when `[public]` is set.
    pub public: Option<crate::node::public::PublicService>,
}

impl RunningNode {
    /// Resolves once the store was poisoned by a full disk and space has come back: a
    /// poisoned sled handle cannot be reused, so the caller restarts the node, which
    /// reopens the store and catches up. Until then the node keeps serving reads and
    /// status, refuses writes and acknowledges nothing.
    pub async fn space_returned(&self) {
        // An idle node must not wake up to poll for a disk that is not full.
        self.store.filled().await;
        loop {
            tokio::time::sleep(SPACE_PROBE_EVERY).await;
            let dir = self.data_dir.clone();
            let room = tokio::task::spawn_blocking(move || has_room(&dir)).await;
            if matches!(room, Ok(true)) {
                return;
            }
        }
    }

    /// Stops accepting requests, drains in-flight ones and closes the store.
    pub async fn stop(self) -> Result<(), DaemonError> {
        // Sessions first: nothing is acknowledged that is not durable, so cutting them is
        // safe; the peer resumes from its last ack.
        self.sync.stop();
        self.scrubber.abort();
        self.lifecycle.abort();
        self.figures.stop();
        // A backup streaming would hold its connection open; it ends without a manifest.
        self.store.cancel_backup("the node is stopping");
        if let Some(public) = self.public {
            public.stop().await;
        }
        let _ = self.shutdown.send(());
        let served = self.server.await.map_err(|e| DaemonError::Io {
            what: "API server task".into(),
            source: std::io::Error::other(e),
        })?;
        served.map_err(|source| DaemonError::Io {
            what: "API server".into(),
            source,
        })?;
        // The server held the last writer handles; once they are gone the writer thread
        // commits what it has and returns.
        tokio::task::spawn_blocking(move || self.writer_thread.join())
            .await
            .ok();
        Ok(())
    }
}

/// How often a node whose disk filled checks whether space came back.
const SPACE_PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(2);
/// Free space a reopened store needs at least: a probe file this large must fit.
const SPACE_PROBE_BYTES: usize = 8 << 20;

/// True when a probe file of [`SPACE_PROBE_BYTES`] can be written and synced in `dir`.
fn has_room(dir: &Path) -> bool {
    use std::io::Write;
    let probe = dir.join(".space-probe");
    let written = std::fs::File::create(&probe).and_then(|mut f| {
        f.write_all(&vec![0u8; SPACE_PROBE_BYTES])?;
        f.sync_all()
    });
    let _ = std::fs::remove_file(&probe);
    written.is_ok()
}

/// Opens the store (rebuilding it from the parent if it is gone or damaged) and starts the
/// node's services.
pub async fn start(config: Config) -> Result<RunningNode, DaemonError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store: Arc<SledStore> = Arc::new(recovery::open_store(&config)?);
    let tokens = Arc::new(api::ApiTokens::new(read_tokens(&config.token_file)?));
    let keys = epochs::load(&config, store.as_ref(), clock.as_ref())?;
    let pid_keys = Arc::new(api::PidKeys::new(keys.current, keys.previous));
    let certificate = Arc::new(pki::CurrentCertificate::new(
        pki::cert_info(&config.tls_cert)
            .map_err(|e| file_error(&config.tls_cert, e.to_string()))?,
    ));
    let commits = CommitSignal::default();
    let (writer, writer_thread) =
        Writer::start(store.clone(), config.node, clock.clone(), commits.clone()).map_err(
            |source| DaemonError::Io {
                what: "starting the writer thread".into(),
                source,
            },
        )?;
    let listener = crate::node::api::bind(config.api_listen).map_err(|source| DaemonError::Io {
        what: format!("binding the API to {}", config.api_listen),
        source,
    })?;
    let api_addr = listener.local_addr().map_err(|source| DaemonError::Io {
        what: "reading the API address".into(),
        source,
    })?;
    let data_dir = config.data_dir.clone();
    let links = Arc::new(Links::default());
    let standards = Arc::new(StandardsCell::new(crate::node::write::standards_in_force(
        store.as_ref(),
    )));
    let scrubber = tokio::spawn(scrub(store.clone(), config.anti_entropy_interval));
    let figures = figures::FiguresKeeper::start(store.clone(), standards.clone(), &commits);
    let trust = trust_of(&config, store.as_ref())?;
    let sync = start_sync(
        &config,
        store.clone(),
        standards.clone(),
        links.clone(),
        clock.clone(),
        commits.clone(),
        trust.clone(),
    )?;
    let config = Arc::new(config);
    let lifecycle = tokio::spawn(lifecycle::run(
        lifecycle::Reloadable {
            config: config.clone(),
            tokens: tokens.clone(),
            tls: sync.tls_switch(),
            trust: trust.clone(),
            certificate: certificate.clone(),
            clock: clock.clone(),
            keys: pid_keys.clone(),
            store: store.clone(),
            commits: commits.clone(),
        },
        lifecycle::hangups(),
    ));
    let state = AppState {
        node: config.node,
        body_limit: config.body_limit,
        config,
        store: store.clone(),
        writer,
        commits,
        standards,
        links,
        keys: pid_keys,
        tokens,
        started_at_ms: clock.now_ms(),
        clock,
        certificate,
        trust,
        stats: Arc::new(ApiStats::default()),
        coverage_cache: Arc::default(),
        backups: store.clone(),
    };
    let public = start_public(&state).await?;
    let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(api::serve(listener, state, async move {
        let _ = stop.await;
    }));
    std::fs::write(data_dir.join(API_ADDR_FILE), format!("{api_addr}\n")).map_err(|source| {
        DaemonError::Io {
            what: format!("writing {}", data_dir.join(API_ADDR_FILE).display()),
            source,
        }
    })?;
    tracing::info!(api = %api_addr, "Node started");
    Ok(RunningNode {
        api_addr,
        sync,
        scrubber,
        lifecycle,
        figures,
        server,
        writer_thread,
        shutdown,
        store,
        data_dir,
        public,
    })
}

/// Starts the public information service when the config asks for one.
async fn start_public(
    state: &AppState,
) -> Result<Option<crate::node::public::PublicService>, DaemonError> {
    let Some(config) = &state.config.public else {
        return Ok(None);
    };
    let parts = crate::node::public::PublicParts {
        node: state.node,
        name: state.config.name.clone(),
        store: state.store.clone(),
        commits: state.commits.clone(),
        standards: state.standards.clone(),
        clock: state.clock.clone(),
        limits: state.config.api_limits,
    };
    crate::node::public::PublicService::start(config, parts)
        .await
        .map(Some)
        .map_err(|source| DaemonError::Io {
            what: format!("binding the public service to {}", config.listen),
            source,
        })
}

/// What this node trusts: the CA bundle in `tls.ca` and the revocations stored here.
fn trust_of(config: &Config, store: &dyn Store) -> Result<DocumentVerifier, DaemonError> {
    let ca = std::fs::read_to_string(&config.tls_ca)
        .map_err(|e| file_error(&config.tls_ca, e.to_string()))?;
    let trust =
        DocumentVerifier::new(&ca).map_err(|e| file_error(&config.tls_ca, e.to_string()))?;
    crate::node::write::put_revocations_in_force(store, &trust);
    Ok(trust)
}

/// Binds QUIC and starts the sessions: serving children (provinces, the ministry) and
/// dialling the parent (everyone but the ministry, when configured).
fn start_sync(
    config: &Config,
    store: Arc<SledStore>,
    standards: Arc<StandardsCell>,
    links: Arc<Links>,
    clock: Arc<dyn Clock>,
    commits: CommitSignal,
    verifier: DocumentVerifier,
) -> Result<SyncHandle, DaemonError> {
    let files = TlsFiles {
        ca: &config.tls_ca,
        cert: &config.tls_cert,
        key: &config.tls_key,
    };
    let ctx = SyncContext {
        verifier,
        me: config.node,
        store,
        standards,
        links,
        clock,
        interval: config.sync_interval,
        anti_entropy: config.anti_entropy_interval,
        batch_records: config.batch_records as usize,
        children: config.children.clone(),
        storage_calls: StorageCalls::BlockingPool,
        commits,
        client_tls: Arc::default(),
        max_protocol: config.max_protocol,
    };
    let parent = config.parent.as_ref().map(|p| (p.code, p.address.clone()));
    let started = TlsMaterial::load(&files)
        .and_then(|tls| transport::start(Socket::Udp(config.listen), &tls, parent, ctx));
    started.map_err(|e| {
        file_error(
            &config.tls_cert,
            format!("starting QUIC on {}: {e}", config.listen),
        )
    })
}

/// Records verified per scrub step.
const SCRUB_STEP: usize = 1000;
/// Pause between scrub steps: about 2,000 records/s, a few percent of a core, so that a
/// million-record city is re-verified every ten minutes or so.
const SCRUB_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);

/// Verifies every stored record against its hash, a step at a time, forever; a record
/// whose data no longer matches is removed, so the summaries stop counting it and
/// anti-entropy fetches a good copy from the child that sent it.
async fn scrub(store: Arc<SledStore>, pause_between_passes: std::time::Duration) {
    let mut cursor = ScrubCursor::default();
    loop {
        if store.fault().is_some() {
            // A poisoned store is reported in status already; nothing to verify until the
            // node reopens it.
            tokio::time::sleep(SCRUB_PAUSE).await;
            continue;
        }
        let s = store.clone();
        let mut c = cursor.clone();
        let step = tokio::task::spawn_blocking(move || {
            let found = s.scrub(&mut c, SCRUB_STEP)?;
            if !found.is_empty() {
                tracing::error!(
                    records = found.len(),
                    "Corrupted records found; removed so that anti-entropy restores them"
                );
                s.commit(WriteBatch {
                    removals: found,
                    ..WriteBatch::default()
                })?;
            }
            Ok::<_, StoreError>(c)
        })
        .await;
        let passes = cursor.passes;
        match step {
            Ok(Ok(c)) => cursor = c,
            Ok(Err(e)) => tracing::error!(error = %e, "Scrub failed"),
            Err(e) => tracing::error!(error = %e, "Scrub task failed"),
        }
        let pause = if cursor.passes > passes {
            pause_between_passes
        } else {
            SCRUB_PAUSE
        };
        tokio::time::sleep(pause).await;
    }
}

/// Resolves on the first SIGINT or SIGTERM received after this call. The handlers are
/// in place when it returns, not when the future is first polled: call it before
/// announcing that the node serves, so that a signal sent at once is not the default
/// action (death) but an orderly stop.
pub fn termination_signal() -> impl std::future::Future<Output = ()> + Send {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let streams = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        );
        async move {
            match streams {
                (Ok(mut int), Ok(mut term)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::read_tokens;

    #[test]
    fn a_token_file_holds_the_token_in_use_and_at_most_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        let (a, b) = ("a".repeat(32), "b".repeat(40));
        let read = |text: String| {
            std::fs::write(&file, text).unwrap();
            read_tokens(&file)
        };
        assert_eq!(read(format!("{a}\n")).unwrap(), vec![a.clone()]);
        assert_eq!(
            read(format!("\n{a}\n\n{b}\n")).unwrap(),
            [a.clone(), b.clone()]
        );
        assert!(read(String::new()).is_err(), "no token");
        assert!(
            read(format!("{a}\nshort\n")).is_err(),
            "a short line spoils the file"
        );
        assert!(read(format!("{a}\n{b}\n{a}\n")).is_err(), "three tokens");
    }
}
