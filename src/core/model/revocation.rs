//! Certificate revocations: a signed document by which the ministry (any node) or a
//! province (a node of its subtree) withdraws node certificates of one node, named by
//! their serial numbers. Every node that holds the document refuses that certificate as a peer and
//! refuses documents signed with it.
//!
//! Pure: what a revocation says and whether its issuer may say it. Refusing peers is the
//! transport's job; the verifier ([`super::signature::DocumentVerifier`]) holds the
//! revocations in force.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::document::{REVOCATION, StoredDocument};
use super::tree::{NodeCode, Tier};

/// Most certificates one revocation names.
const MAX_SERIALS: usize = 64;

/// What a revocation document's body holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationBody {
    /// The node the certificates were issued to.
    pub node: NodeCode,
    /// Their serial numbers, lowercase hex without separators or leading zero bytes.
    pub serials: Vec<String>,
    /// Why, for operators (e.g. "key stolen").
    #[serde(default)]
    pub reason: String,
}

/// A revocation in force: the body and who issued it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revocation {
    /// The node the certificate was issued to.
    pub node: NodeCode,
    /// The certificate's serial number, lowercase hex.
    pub serial: String,
    /// Why.
    pub reason: String,
    /// The node that revoked it.
    pub issuer: NodeCode,
}

/// A certificate's serial number as revocations name it: lowercase hex of the DER
/// integer's bytes, leading zero bytes dropped (an encoder may add one to keep it positive).
pub fn serial_hex(raw_serial: &[u8]) -> String {
    let first = raw_serial
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(raw_serial.len());
    hex::encode(&raw_serial[first..])
}

/// The serial number of the DER certificate `der`, as revocations name it.
pub fn serial_of_der(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(serial_hex(cert.raw_serial()))
}

/// Ok when `issuer` may revoke a certificate of `node`: the ministry any node's but its
/// own, a province those of the nodes within it but its own.
pub fn may_revoke(issuer: NodeCode, node: NodeCode) -> Result<(), String> {
    let allowed = issuer != node
        && match issuer.tier() {
            Tier::Ministry => true,
            Tier::Province => node.is_within(issuer),
            Tier::City => false,
        };
    if allowed {
        Ok(())
    } else {
        Err(format!(
            "{issuer} ({}) may not revoke a certificate of {node}: the ministry revokes any \
             other node's, a province those of its own cities",
            issuer.tier()
        ))
    }
}

fn is_serial(serial: &str) -> bool {
    !serial.is_empty()
        && serial.len() <= 40
        && !serial.starts_with("00")
        && serial
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Checks a revocation body as a publisher posts it, under document id `id` (its first
/// serial: a later revocation naming other certificates is another document).
pub fn check_body(issuer: NodeCode, id: &str, body: &RevocationBody) -> Result<(), String> {
    if body.serials.is_empty() || body.serials.len() > MAX_SERIALS {
        return Err(format!(
            "a revocation names 1 to {MAX_SERIALS} certificates, not {}",
            body.serials.len()
        ));
    }
    if let Some(bad) = body.serials.iter().find(|s| !is_serial(s)) {
        return Err(format!(
            "serial {bad:?} is not a certificate serial number in lowercase hex"
        ));
    }
    if id != body.serials[0] {
        return Err(format!(
            "a revocation's id is its first serial ({}), not {id:?}",
            body.serials[0]
        ));
    }
    super::document::check_reason(&body.reason)?;
    may_revoke(issuer, body.node)
}

/// The revocations `doc` states, one per certificate, or why it states none (a malformed
/// body, or an issuer without the authority).
pub fn parse(doc: &StoredDocument) -> Result<Vec<Revocation>, String> {
    if doc.kind != REVOCATION {
        return Err(format!("{} is not a revocation", doc.kind));
    }
    let body: RevocationBody =
        serde_json::from_str(&doc.body).map_err(|e| format!("a revocation body: {e}"))?;
    check_body(doc.issuer, &doc.id, &body)?;
    Ok(body
        .serials
        .into_iter()
        .map(|serial| Revocation {
            node: body.node,
            serial,
            reason: body.reason.clone(),
            issuer: doc.issuer,
        })
        .collect())
}

/// The revocations in force among `docs`, by serial. Documents that state none are
/// skipped: they were verified and stored, and a bad one must not hide the others.
pub fn in_force(docs: &[StoredDocument]) -> BTreeMap<String, Revocation> {
    docs.iter()
        .filter(|d| d.kind == REVOCATION)
        .filter_map(|d| parse(d).ok())
        .flatten()
        .map(|r| (r.serial.clone(), r))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::MINISTRY;

    fn code(s: &str) -> NodeCode {
        s.parse().unwrap()
    }

    fn doc(issuer: NodeCode, id: &str, body: &str) -> StoredDocument {
        StoredDocument {
            kind: REVOCATION.into(),
            id: id.into(),
            issuer,
            version: 1,
            body: body.into(),
            certificate: Vec::new(),
            signature: Vec::new(),
        }
    }

    #[test]
    fn the_ministry_revokes_anyone_a_province_its_subtree() {
        assert!(may_revoke(MINISTRY, code("440100")).is_ok());
        assert!(may_revoke(MINISTRY, code("440000")).is_ok());
        assert!(may_revoke(MINISTRY, MINISTRY).is_err(), "not itself");
        assert!(may_revoke(code("440000"), code("440100")).is_ok());
        assert!(may_revoke(code("440000"), code("210100")).is_err());
        assert!(may_revoke(code("440000"), code("440000")).is_err());
        assert!(may_revoke(code("440000"), MINISTRY).is_err());
        assert!(may_revoke(code("440100"), code("440300")).is_err());
    }

    #[test]
    fn parses_what_a_publisher_may_say_and_nothing_else() {
        let body = r#"{"node":"440100","serials":["7a01ff","5b"],"reason":"key stolen"}"#;
        let r = parse(&doc(MINISTRY, "7a01ff", body)).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].node, r[0].serial.as_str()),
            (code("440100"), "7a01ff")
        );
        assert!(
            parse(&doc(MINISTRY, "other", body)).is_err(),
            "id ≠ first serial"
        );
        assert!(parse(&doc(code("210000"), "7a01ff", body)).is_err());
        let upper = r#"{"node":"440100","serials":["7A01FF"]}"#;
        assert!(parse(&doc(MINISTRY, "7A01FF", upper)).is_err());
        let none = r#"{"node":"440100","serials":[]}"#;
        assert!(parse(&doc(MINISTRY, "x", none)).is_err());
        let extra = r#"{"node":"440100","serials":["7a01ff"],"x":1}"#;
        assert!(parse(&doc(MINISTRY, "7a01ff", extra)).is_err());
        let docs = [
            doc(MINISTRY, "7a01ff", body),
            doc(MINISTRY, "bad", "{}"),
            doc(
                code("440000"),
                "01",
                r#"{"node":"440300","serials":["01"]}"#,
            ),
        ];
        let force = in_force(&docs);
        assert_eq!(force.keys().collect::<Vec<_>>(), ["01", "5b", "7a01ff"]);
    }

    #[test]
    fn serials_drop_leading_zero_bytes() {
        assert_eq!(serial_hex(&[0, 0x81, 0x02]), "8102");
        assert_eq!(serial_hex(&[0x7f, 0]), "7f00");
    }
}
