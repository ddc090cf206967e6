//! Document signatures: the issuer signs with its node key, every hop verifies against the
//! network CA before storing or forwarding, so a province cannot forge or alter a ministry
//! document.

use serde::Serialize;

use super::{PkiError, node_of};
use crate::model::NodeCode;
use crate::storage::StoredDocument;
use crate::wire::codec;

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
pub fn sign(doc: &mut StoredDocument, cert_pem: &str, key_pem: &str) -> Result<(), PkiError> {
    let key = rcgen::KeyPair::from_pem(key_pem)?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
        .map_err(|_| PkiError::BadCertificate("node.crt".into()))?;
    doc.certificate = pem.contents;
    doc.signature = rcgen::SigningKey::sign(&key, &signed_bytes(doc))?;
    Ok(())
}

/// Checks documents against the network CA.
#[derive(Debug, Clone)]
pub struct DocumentVerifier {
    ca_der: Vec<u8>,
}

impl DocumentVerifier {
    /// A verifier trusting the CA certificate in `ca_pem`.
    pub fn new(ca_pem: &str) -> Result<Self, PkiError> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(ca_pem.as_bytes())
            .map_err(|_| PkiError::BadCertificate("ca.crt".into()))?;
        Ok(DocumentVerifier {
            ca_der: pem.contents,
        })
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
        let (_, ca) = x509_parser::parse_x509_certificate(&self.ca_der)
            .map_err(|e| format!("bad CA certificate: {e}"))?;
        let (_, cert) = x509_parser::parse_x509_certificate(&doc.certificate)
            .map_err(|_| "the document's certificate does not parse".to_string())?;
        cert.verify_signature(Some(ca.public_key()))
            .map_err(|_| "the document's certificate is not from the network CA".to_string())?;
        if node_of(&cert) != Some(doc.issuer) {
            return Err(format!(
                "the document says issuer {}, its certificate is for {:?}",
                doc.issuer,
                node_of(&cert).map(|n| n.to_string())
            ));
        }
        let key = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            cert.public_key().subject_public_key.data.as_ref(),
        );
        key.verify(&signed_bytes(doc), &doc.signature)
            .map_err(|_| "the signature does not match the document".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MINISTRY;

    fn setup(dir: &std::path::Path, node: &str) -> (String, String, String) {
        let ca = dir.join("ca");
        if !ca.join("ca.crt").exists() {
            super::super::init_ca(&ca).unwrap();
        }
        let out = dir.join(node);
        super::super::issue(&ca, node.parse().unwrap(), &out, 1).unwrap();
        let read = |p: std::path::PathBuf| std::fs::read_to_string(p).unwrap();
        (
            read(ca.join("ca.crt")),
            read(out.join("node.crt")),
            read(out.join("node.key")),
        )
    }

    fn doc(issuer: NodeCode) -> StoredDocument {
        StoredDocument {
            kind: "policy".into(),
            id: "劳社部发〔1999〕1号".into(),
            issuer,
            version: 1,
            body: "{\"title\":\"pilot notice\"}".into(),
            certificate: Vec::new(),
            signature: Vec::new(),
        }
    }

    #[test]
    fn signed_documents_verify_and_tampering_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = setup(dir.path(), "100000");
        let verifier = DocumentVerifier::new(&ca).unwrap();
        let mut d = doc(MINISTRY);
        sign(&mut d, &cert, &key).unwrap();
        verifier.verify(&d).unwrap();

        let mut altered = d.clone();
        altered.body = "{\"title\":\"altered\"}".into();
        assert!(verifier.verify(&altered).unwrap_err().contains("signature"));

        // A province re-signing a "ministry" document with its own key is caught.
        let (_, pcert, pkey) = setup(dir.path(), "440000");
        let mut forged = doc(MINISTRY);
        sign(&mut forged, &pcert, &pkey).unwrap();
        assert!(
            verifier
                .verify(&forged)
                .unwrap_err()
                .contains("certificate is for")
        );

        // A certificate from another CA is caught.
        let other = tempfile::tempdir().unwrap();
        let (_, ocert, okey) = setup(other.path(), "100000");
        let mut foreign = doc(MINISTRY);
        sign(&mut foreign, &ocert, &okey).unwrap();
        assert!(
            verifier
                .verify(&foreign)
                .unwrap_err()
                .contains("network CA")
        );
    }
}
