//! What changes under a running node without a restart: on SIGHUP it re-reads the API
//! tokens, its TLS files (a renewed certificate and key, a CA bundle with a second CA
//! during a rotation) and its pseudonym keys (`[privacy]` of the config file, announcing
//! a new key epoch); once a day it warns when its certificate expires soon.
//!
//! A file that does not read, or TLS material that does not make a config (a key that
//! does not match its certificate, a certificate of another node), changes nothing: what is
//! in force stays, and the error is logged.

use std::sync::Arc;
use std::time::Duration;

use crate::core::model::signature::DocumentVerifier;
use crate::node::api::{ApiTokens, PidKeys};
use crate::node::clock::Clock;
use crate::node::config::Config;
use crate::node::pki::{self, CertInfo, CurrentCertificate};
use crate::node::storage::SledStore;
use crate::node::transport::tls::{TlsFiles, TlsMaterial, TlsSwitch};
use crate::node::write::CommitSignal;

use super::{DaemonError, file_error, read_tokens};

/// How often the certificate's expiry is checked (and, when it is near, warned of).
const EXPIRY_CHECK_EVERY: Duration = Duration::from_secs(24 * 3600);

/// What a reload replaces.
pub(super) struct Reloadable {
    pub config: Arc<Config>,
    pub tokens: Arc<ApiTokens>,
    pub tls: TlsSwitch,
    pub trust: DocumentVerifier,
    pub certificate: Arc<CurrentCertificate>,
    pub clock: Arc<dyn Clock>,
    pub keys: Arc<PidKeys>,
    pub store: Arc<SledStore>,
    pub commits: CommitSignal,
}

/// Listens for SIGHUP from now on. Called while the node starts, before it says it
/// serves: a SIGHUP before the handler is in place would end the process.
pub(super) fn hangups() -> Option<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::warn!(error = %e, "Cannot listen for SIGHUP; tokens and TLS files reload on restart only");
            None
        }
    }
}

/// Reloads on every SIGHUP received through `hangups` and checks the certificate's
/// expiry daily, until aborted.
pub(super) async fn run(node: Reloadable, mut hangups: Option<tokio::signal::unix::Signal>) {
    let mut expiry = tokio::time::interval(EXPIRY_CHECK_EVERY);
    loop {
        tokio::select! {
            Some(()) = async { hangup(hangups.as_mut()).await } => {
                reload_tokens(&node);
                if let Err(e) = reload_tls(&node) {
                    tracing::error!(error = %e, "TLS files not reloaded; the certificate in force stays");
                }
                let (config, store) = (node.config.clone(), node.store.clone());
                let (clock, keys) = (node.clock.clone(), node.keys.clone());
                let reloaded = tokio::task::spawn_blocking(move || {
                    super::epochs::reload(&config, store.as_ref(), clock.as_ref(), &keys)
                })
                .await;
                match reloaded {
                    Ok(Ok(true)) => node.commits.notify_documents(),
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "Pseudonym keys not reloaded; the keys in force stay"),
                    Err(e) => tracing::error!(error = %e, "Pseudonym keys not reloaded; the keys in force stay"),
                }
            }
            _ = expiry.tick() => warn_of_expiry(&node),
        }
    }
}

async fn hangup(signal: Option<&mut tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

fn reload_tokens(node: &Reloadable) {
    match read_tokens(&node.config.token_file) {
        Ok(new) => {
            let accepted = new.len();
            node.tokens.replace(new);
            tracing::info!(accepted, "API tokens reloaded");
        }
        Err(e) => tracing::warn!(error = %e, "API tokens not reloaded; those in force stay"),
    }
}

/// Puts the TLS files in force: the node's certificate and key for the next handshakes,
/// the CA bundle for peers and documents. Sessions already established carry on.
fn reload_tls(node: &Reloadable) -> Result<CertInfo, DaemonError> {
    let config = &node.config;
    let info = pki::cert_info(&config.tls_cert)
        .map_err(|e| file_error(&config.tls_cert, e.to_string()))?;
    if info.node != Some(config.node) {
        return Err(file_error(
            &config.tls_cert,
            format!("the certificate is not node {}'s", config.node),
        ));
    }
    let files = TlsFiles {
        ca: &config.tls_ca,
        cert: &config.tls_cert,
        key: &config.tls_key,
    };
    let ca = std::fs::read_to_string(&config.tls_ca)
        .map_err(|e| file_error(&config.tls_ca, e.to_string()))?;
    // Checked before anything changes, so a bad bundle leaves the old trust whole.
    DocumentVerifier::new(&ca).map_err(|e| file_error(&config.tls_ca, e.to_string()))?;
    TlsMaterial::load(&files)
        .and_then(|material| node.tls.apply(&material))
        .map_err(|e| file_error(&config.tls_cert, e.to_string()))?;
    node.trust
        .replace_anchors(&ca)
        .map_err(|e| file_error(&config.tls_ca, e.to_string()))?;
    let changed = node.certificate.get().map(|c| c.serial) != Some(info.serial.clone());
    node.certificate.replace(info.clone());
    tracing::info!(
        serial = %info.serial,
        expires = %rfc3339(info.not_after),
        changed,
        "TLS files reloaded; new handshakes use them"
    );
    if let Some(warning) = info.validity_warning(node.clock.now_ms() / 1000) {
        tracing::warn!(serial = %info.serial, "{warning}");
    }
    Ok(info)
}

fn warn_of_expiry(node: &Reloadable) {
    let Some(info) = node.certificate.get() else {
        return;
    };
    if let Some(warning) = info.validity_warning(node.clock.now_ms() / 1000) {
        tracing::warn!(serial = %info.serial, expires = %rfc3339(info.not_after), "{warning}");
    }
}

fn rfc3339(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map_or_else(|| seconds.to_string(), |d| d.to_rfc3339())
}
