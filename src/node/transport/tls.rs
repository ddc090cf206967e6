//! TLS 1.3 with mutual authentication against the network CA only, and the QUIC
//! endpoint settings: explicit limits, no 0-RTT, no migration.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{IdleTimeout, TransportConfig, VarInt};
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::TransportError;
use crate::core::model::Tier;

/// ALPN of protocol generation 1.
pub const ALPN: &[u8] = b"lmsync/1";

/// A node's TLS material: the CA to trust and its own certificate and key.
pub struct TlsFiles<'a> {
    /// CA certificate (PEM).
    pub ca: &'a Path,
    /// Node certificate (PEM).
    pub cert: &'a Path,
    /// Node key (PEM).
    pub key: &'a Path,
}

fn tls_err(what: &str, e: impl std::fmt::Display) -> TransportError {
    TransportError::Tls(format!("{what}: {e}"))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A node's TLS material in memory: the roots it trusts and its own chain and key.
pub struct TlsMaterial {
    roots: RootCertStore,
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl TlsMaterial {
    /// Reads the CA, node certificate and key files.
    pub fn load(files: &TlsFiles<'_>) -> Result<Self, TransportError> {
        let read = |path: &Path, what: &str| {
            std::fs::read(path).map_err(|e| tls_err(&format!("reading {what}"), e))
        };
        Self::from_pem(
            &read(files.ca, "the CA")?,
            &read(files.cert, "the node certificate")?,
            &read(files.key, "the node key")?,
        )
    }

    /// Parses PEM text: the CA certificate(s), the node certificate chain and its key.
    pub fn from_pem(ca: &[u8], cert: &[u8], key: &[u8]) -> Result<Self, TransportError> {
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(ca) {
            roots
                .add(c.map_err(|e| tls_err("parsing the CA", e))?)
                .map_err(|e| tls_err("the CA", e))?;
        }
        let certs = CertificateDer::pem_slice_iter(cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| tls_err("parsing the node certificate", e))?;
        let key =
            PrivateKeyDer::from_pem_slice(key).map_err(|e| tls_err("reading the node key", e))?;
        Ok(TlsMaterial { roots, certs, key })
    }
}

/// Endpoint settings for a node that serves children. Its stateless-reset key is derived
/// from the node key instead of drawn at random per process: a parent restarted on the
/// same address then answers the old connections' packets with resets its children
/// recognise, and they reconnect at once instead of after the idle timeout. Knowing the
/// key lets one reset this node's connections, so it is derived (one-way, domain
/// separated) from a secret only this node holds.
///
/// The connection ids it issues are keyed the same way: an endpoint answers only packets
/// whose id it could have issued, and a new process must recognise its predecessor's.
pub fn endpoint_config(material: &TlsMaterial) -> quinn::EndpointConfig {
    let derive = |purpose: &str| blake3::derive_key(purpose, material.key.secret_der());
    let reset = derive("lmsync stateless reset key v1");
    let mut config = quinn::EndpointConfig::new(Arc::new(ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        &reset,
    )));
    let mut cid_key = [0u8; 8];
    cid_key.copy_from_slice(&derive("lmsync connection id key v1")[..8]);
    let cid_key = u64::from_le_bytes(cid_key);
    config.cid_generator(move || {
        Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
    });
    config
}

/// How often the child pings an idle link. Only the child does: its pings keep both ends
/// alive, and a restarted parent answers one with a stateless reset, so a restart is
/// noticed within this interval. Twice per idle timeout, so that one lost ping does not
/// end the link; on a national network of ~130 idle links these pings are most of what
/// an idle node does.
const CHILD_KEEP_ALIVE: Duration = Duration::from_secs(4);

/// Limits that hold for every connection; `keep_alive` only on the child's side.
pub fn transport_config(keep_alive: Option<Duration>) -> Arc<TransportConfig> {
    let mut t = TransportConfig::default();
    // The protocol uses one stream per connection; a peer gets no more.
    t.max_concurrent_bidi_streams(VarInt::from_u32(1))
        .max_concurrent_uni_streams(VarInt::from_u32(0))
        .stream_receive_window(VarInt::from_u32(16 << 20))
        .receive_window(VarInt::from_u32(32 << 20))
        .send_window(32 << 20)
        .datagram_receive_buffer_size(None)
        .keep_alive_interval(keep_alive);
    if let Ok(idle) = IdleTimeout::try_from(Duration::from_secs(10)) {
        t.max_idle_timeout(Some(idle));
    }
    Arc::new(t)
}

/// The server side (parents): client certificates required, signed by the CA.
pub fn server_config(material: &TlsMaterial) -> Result<quinn::ServerConfig, TransportError> {
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(material.roots.clone()), provider())
            .build()
            .map_err(|e| tls_err("client verifier", e))?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| tls_err("TLS versions", e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(material.certs.clone(), material.key.clone_key())
        .map_err(|e| tls_err("node certificate", e))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.max_early_data_size = 0;
    let crypto = QuicServerConfig::try_from(tls).map_err(|e| tls_err("QUIC server", e))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config
        .transport_config(transport_config(None))
        .migration(false)
        .max_incoming(256)
        .incoming_buffer_size(64 << 10)
        .incoming_buffer_size_total(8 << 20);
    Ok(config)
}

/// The client side (children): trusts only the CA, presents the node certificate.
pub fn client_config(material: &TlsMaterial) -> Result<quinn::ClientConfig, TransportError> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| tls_err("TLS versions", e))?
        .with_root_certificates(material.roots.clone())
        .with_client_auth_cert(material.certs.clone(), material.key.clone_key())
        .map_err(|e| tls_err("node certificate", e))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.enable_early_data = false;
    let crypto = QuicClientConfig::try_from(tls).map_err(|e| tls_err("QUIC client", e))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport_config(Some(CHILD_KEEP_ALIVE)));
    Ok(config)
}

/// The client configuration dials use: replaced when the node reloads its TLS files, so
/// the next connection presents the new certificate while established ones carry on.
#[derive(Default)]
pub struct ClientTls {
    config: RwLock<Option<quinn::ClientConfig>>,
    replaced: tokio::sync::Notify,
}

impl ClientTls {
    /// The configuration in force, if this node dials at all.
    pub fn current(&self) -> Option<quinn::ClientConfig> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(super) fn replace(&self, config: quinn::ClientConfig) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Some(config);
        // One permit kept if nobody waits: the dialer's next wait ends at once.
        self.replaced.notify_one();
    }

    /// Resolves when the configuration is replaced.
    pub(super) async fn changed(&self) {
        self.replaced.notified().await;
    }
}

/// Puts new TLS material in force on a running endpoint: the server side for the next
/// handshake of a child, the client side for the next dial. Sessions already established
/// keep the keys they agreed on and carry on.
#[derive(Clone)]
pub struct TlsSwitch {
    pub(super) endpoint: quinn::Endpoint,
    pub(super) tier: Tier,
    pub(super) client: Arc<ClientTls>,
}

impl TlsSwitch {
    /// Builds both sides from `material` first, so that material that does not make a
    /// config (a key that does not match its certificate) changes nothing.
    pub fn apply(&self, material: &TlsMaterial) -> Result<(), TransportError> {
        let server = match self.tier {
            Tier::City => None,
            _ => Some(server_config(material)?),
        };
        let client = match self.tier {
            Tier::Ministry => None,
            _ => Some(client_config(material)?),
        };
        if let Some(server) = server {
            self.endpoint.set_server_config(Some(server));
        }
        if let Some(client) = client {
            self.client.replace(client);
        }
        Ok(())
    }
}
