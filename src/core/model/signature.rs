//! Document signatures: the issuer signs with its node key, every hop verifies against the
//! network CA before storing or forwarding, so a province cannot forge or alter a ministry
//! document. The verifier holds what a node trusts (the CA certificates and the revoked
//! node certificates), which the transport consults for its peers too.
//!
//! Pure: keys and certificates arrive as PEM or DER bytes; reading them from files is the
//! node shell's job (`node::pki`).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;

use super::NodeCode;
use super::document::StoredDocument;
use super::revocation::{Revocation, serial_hex, serial_of_der};
use crate::core::codec;

/// Why a document could not be signed, or a verifier not built.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// A PEM text does not hold a valid X.509 certificate.
    #[error("{0} is not a valid PEM X.509 certificate")]
    BadCertificate(&'static str),
    /// The private key does not parse or cannot sign.
    #[error("signing key error: {0}")]
    Key(#[from] rcgen::Error),
}

/// The URI SAN prefix that binds a certificate to a node code.
pub const NODE_URI_PREFIX: &str = "urn:lmsync:node:";

/// The node code a certificate is issued for (its `urn:lmsync:node:<code>` URI SAN).
pub fn node_of(cert: &x509_parser::certificate::X509Certificate<'_>) -> Option<NodeCode> {
    cert.subject_alternative_name()
        .ok()
        .flatten()
        .and_then(|san| {
            san.value.general_names.iter().find_map(|n| match n {
                x509_parser::extensions::GeneralName::URI(u) => {
                    u.strip_prefix(NODE_URI_PREFIX).and_then(|c| c.parse().ok())
                }
                _ => None,
            })
        })
}

#[derive(Serialize)]
struct Signed<'a> {
    kind: &'a str,
    id: &'a str,
    issuer: NodeCode,
    version: u64,
    body: &'a str,
}

/// The bytes an issuer signs.
fn signed_bytes(doc: &StoredDocument) -> Vec<u8> {
    let signed = Signed {
        kind: &doc.kind,
        id: &doc.id,
        issuer: doc.issuer,
        version: doc.version,
        body: &doc.body,
    };
    // Encoding our own plain struct cannot fail; an empty message would fail verification.
    codec::encode(&signed).unwrap_or_default()
}

/// Signs `doc` (its certificate and signature fields are filled in) with the node's key.
pub fn sign(doc: &mut StoredDocument, cert_pem: &str, key_pem: &str) -> Result<(), SignatureError> {
    let (certificate, signature) = sign_message(&signed_bytes(doc), cert_pem, key_pem)?;
    doc.certificate = certificate;
    doc.signature = signature;
    Ok(())
}

/// Signs `message` with the node's key: the node's certificate (DER) and the signature.
pub fn sign_message(
    message: &[u8],
    cert_pem: &str,
    key_pem: &str,
) -> Result<(Vec<u8>, Vec<u8>), SignatureError> {
    let key = rcgen::KeyPair::from_pem(key_pem)?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
        .map_err(|_| SignatureError::BadCertificate("node.crt"))?;
    let signature = rcgen::SigningKey::sign(&key, message)?;
    Ok((pem.contents, signature))
}

/// What a node trusts: the network CA certificates (more than one while the CA is rotated)
/// and the certificates revoked since.
#[derive(Debug, Default)]
struct Trust {
    anchors: Vec<Vec<u8>>,
    revoked: BTreeMap<String, Revocation>,
}

/// Checks documents against the network CA and the revocations in force. Clones share one
/// trust: replacing the CA bundle or the revocations takes effect in every session at once.
#[derive(Debug, Clone)]
pub struct DocumentVerifier {
    trust: Arc<RwLock<Trust>>,
}

/// Every certificate in the PEM text `ca_pem`, as DER; at least one.
fn anchors_of(ca_pem: &str) -> Result<Vec<Vec<u8>>, SignatureError> {
    let anchors = x509_parser::pem::Pem::iter_from_buffer(ca_pem.as_bytes())
        .map(|pem| pem.map(|p| p.contents))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| SignatureError::BadCertificate("ca.crt"))?;
    if anchors.is_empty()
        || anchors
            .iter()
            .any(|der| x509_parser::parse_x509_certificate(der).is_err())
    {
        return Err(SignatureError::BadCertificate("ca.crt"));
    }
    Ok(anchors)
}

impl DocumentVerifier {
    /// A verifier trusting every CA certificate in `ca_pem` (one, or two while the network
    /// CA is rotated).
    pub fn new(ca_pem: &str) -> Result<Self, SignatureError> {
        let trust = Trust {
            anchors: anchors_of(ca_pem)?,
            revoked: BTreeMap::new(),
        };
        Ok(DocumentVerifier {
            trust: Arc::new(RwLock::new(trust)),
        })
    }

    fn trust(&self) -> std::sync::RwLockReadGuard<'_, Trust> {
        self.trust.read().unwrap_or_else(|p| p.into_inner())
    }

    fn trust_mut(&self) -> std::sync::RwLockWriteGuard<'_, Trust> {
        self.trust.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Trusts the CA certificates in `ca_pem` from now on instead of those before; on an
    /// error the trust stays as it was.
    pub fn replace_anchors(&self, ca_pem: &str) -> Result<(), SignatureError> {
        let anchors = anchors_of(ca_pem)?;
        self.trust_mut().anchors = anchors;
        Ok(())
    }

    /// The revocations in force from now on (by serial).
    pub fn replace_revocations(&self, revoked: BTreeMap<String, Revocation>) {
        self.trust_mut().revoked = revoked;
    }

    /// The revocation of the DER certificate `der`, if it is revoked.
    pub fn revocation_of(&self, der: &[u8]) -> Option<Revocation> {
        let serial = serial_of_der(der)?;
        self.trust().revoked.get(&serial).cloned()
    }

    /// Every revocation in force.
    pub fn revocations(&self) -> Vec<Revocation> {
        self.trust().revoked.values().cloned().collect()
    }

    /// Ok when the certificate inside `doc` was issued by the network CA for `doc.issuer`
    /// and the signature covers the document as it is; the error names the document and
    /// why it fails.
    pub fn verify(&self, doc: &StoredDocument) -> Result<(), String> {
        self.check(doc).map_err(|reason| {
            format!(
                "document {}/{} from {}: {reason}",
                doc.kind, doc.id, doc.issuer
            )
        })
    }

    fn check(&self, doc: &StoredDocument) -> Result<(), String> {
        self.verify_signed(
            doc.issuer,
            &doc.certificate,
            &signed_bytes(doc),
            &doc.signature,
        )
        .map_err(|reason| reason.replace("the signed content", "the document"))
    }

    /// Ok when `certificate` (DER) was issued by the network CA for `signer`, is not
    /// revoked, and `signature` is its key's signature of `message`; otherwise why not.
    pub fn verify_signed(
        &self,
        signer: NodeCode,
        certificate: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), String> {
        let (_, cert) = x509_parser::parse_x509_certificate(certificate)
            .map_err(|_| "the signed content's certificate does not parse".to_string())?;
        let trust = self.trust();
        let from_the_ca = trust.anchors.iter().any(|der| {
            x509_parser::parse_x509_certificate(der)
                .is_ok_and(|(_, ca)| cert.verify_signature(Some(ca.public_key())).is_ok())
        });
        if !from_the_ca {
            return Err("the signed content's certificate is not from the network CA".to_string());
        }
        if let Some(r) = trust.revoked.get(&serial_hex(cert.raw_serial())) {
            return Err(format!(
                "it is signed with certificate {} of {}, revoked by {}: {}",
                r.serial, r.node, r.issuer, r.reason
            ));
        }
        drop(trust);
        if node_of(&cert) != Some(signer) {
            return Err(format!(
                "it says it is from {signer}, its certificate is for {}",
                node_of(&cert).map_or_else(|| "no node".to_string(), |n| n.to_string())
            ));
        }
        let key = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            cert.public_key().subject_public_key.data.as_ref(),
        );
        key.verify(message, signature)
            .map_err(|_| "the signature does not match the signed content".to_string())
    }
}
