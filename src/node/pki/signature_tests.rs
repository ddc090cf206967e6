//! Document signatures made with certificates `pki` issues, CA bundles, revoked signers,
//! and renewal in place.

use super::*;
use crate::core::model::MINISTRY;
use crate::core::model::document::StoredDocument;
use crate::core::model::signature::{DocumentVerifier, sign};

fn setup(dir: &std::path::Path, node: &str) -> (String, String, String) {
    let ca = dir.join("ca");
    if !ca.join("ca.crt").exists() {
        init_ca(&ca).unwrap();
    }
    let out = dir.join(node);
    issue(&ca, node.parse().unwrap(), &out, 1).unwrap();
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

#[test]
fn a_bundle_trusts_both_cas_and_a_revoked_signer_is_refused() {
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (ca1, cert1, key1) = setup(one.path(), "100000");
    let (ca2, cert2, key2) = setup(two.path(), "100000");
    let (mut d1, mut d2) = (doc(MINISTRY), doc(MINISTRY));
    sign(&mut d1, &cert1, &key1).unwrap();
    sign(&mut d2, &cert2, &key2).unwrap();
    let verifier = DocumentVerifier::new(&ca1).unwrap();
    assert!(
        verifier.verify(&d2).is_err(),
        "the second CA is not trusted yet"
    );
    verifier.replace_anchors(&format!("{ca1}{ca2}")).unwrap();
    verifier.verify(&d1).unwrap();
    verifier.verify(&d2).unwrap();
    assert!(verifier.replace_anchors("not a certificate").is_err());
    verifier
        .verify(&d2)
        .expect("a bad bundle leaves the trust as it was");

    let serial = crate::core::model::revocation::serial_of_der(&d1.certificate).unwrap();
    assert_eq!(
        serial,
        cert_info(&one.path().join("100000").join(NODE_CERT))
            .unwrap()
            .serial
    );
    let revocation = crate::core::model::revocation::Revocation {
        node: MINISTRY,
        serial: serial.clone(),
        reason: "key stolen".into(),
        issuer: MINISTRY,
    };
    verifier.replace_revocations([(serial, revocation)].into_iter().collect());
    let refused = verifier.verify(&d1).unwrap_err();
    assert!(
        refused.contains("revoked") && refused.contains("key stolen"),
        "{refused}"
    );
    verifier.verify(&d2).unwrap();
    assert!(verifier.revocation_of(&d1.certificate).is_some());
    assert!(verifier.revocation_of(&d2.certificate).is_none());
}

#[test]
fn renewal_replaces_the_pair_with_a_new_key_for_the_same_node() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, pki) = (dir.path().join("ca"), dir.path().join("pki"));
    init_ca(&ca).unwrap();
    let node: NodeCode = "440100".parse().unwrap();
    issue(&ca, node, &pki, 1).unwrap();
    let old_key = std::fs::read_to_string(pki.join(NODE_KEY)).unwrap();
    let old = cert_info(&pki.join(NODE_CERT)).unwrap();
    let renewed = renew(&ca, node, &pki, 2).unwrap();
    assert_eq!(renewed.previous_serial, Some(old.serial.clone()));
    let register: Vec<String> = issued(&ca).unwrap().into_iter().map(|i| i.serial).collect();
    assert_eq!(register, [old.serial.clone(), renewed.info.serial.clone()]);
    let fresh = dir.path().join("fresh");
    let first = renew(&ca, node, &fresh, 1).unwrap();
    assert_eq!(first.previous_serial, None);
    assert!(fresh.join(CA_CERT).exists() && fresh.join(NODE_KEY).exists());
    assert_ne!(renewed.info.serial, old.serial);
    assert_eq!(renewed.info.node, Some(node));
    assert!(renewed.issuer_trusted);
    assert_ne!(
        std::fs::read_to_string(pki.join(NODE_KEY)).unwrap(),
        old_key
    );
    assert!(issued_by(&pki.join(NODE_CERT), &ca.join(CA_CERT)).unwrap());
    assert!(!pki.join("node.key.new").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(pki.join(NODE_KEY))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let other: NodeCode = "440300".parse().unwrap();
    assert!(matches!(
        renew(&ca, other, &pki, 2),
        Err(PkiError::OtherNode { .. })
    ));
    // Renewed by another CA: the directory's ca.crt does not hold it yet.
    let ca2 = dir.path().join("ca2");
    init_ca(&ca2).unwrap();
    assert!(!renew(&ca2, node, &pki, 2).unwrap().issuer_trusted);
}

/// A city's report for 2024Q1 as record version `version`, signed with `cert`/`key`.
fn signed_report(
    city: NodeCode,
    version: u64,
    (cert, key): (&str, &str),
) -> crate::core::model::Record {
    use crate::core::model::kinds::{
        Bytes, CountBasis, RecordData, SupplyDemandReport, sign_report,
    };
    let mut report = SupplyDemandReport {
        period: "2024Q1".into(),
        count_basis: CountBasis::ValidInPeriod,
        suppress_below: 5,
        submitted_at_ms: 1_715_342_400_000,
        first_submitted_at_ms: 1_715_342_400_000,
        tables: "{\"tables\":[]}".into(),
        certificate: Bytes::default(),
        signature: Bytes::default(),
    };
    sign_report(&mut report, city, version, cert, key).unwrap();
    let data = RecordData::SupplyDemandReport(report);
    let status = crate::core::model::Status::Active;
    let hash = crate::core::model::record::content_hash(city, "2024Q1", status, &data).unwrap();
    crate::core::model::Record {
        envelope: crate::core::model::Envelope {
            owner: city,
            kind: crate::core::model::Kind::SupplyDemandReport,
            id: "2024Q1".into(),
            version,
            seq: version,
            status,
            recorded_at_ms: 1_715_342_400_000,
            code_refs: Vec::new(),
            hash,
        },
        data,
    }
}

#[test]
fn a_city_signs_its_report_and_rewriting_it_is_caught() {
    use crate::core::model::kinds::{RecordData, verify_record};
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = setup(dir.path(), "440100");
    let verifier = DocumentVerifier::new(&ca).unwrap();
    let city: NodeCode = "440100".parse().unwrap();
    let good = signed_report(city, 2, (&cert, &key));
    verify_record(&verifier, &good).unwrap();
    assert!(good.verify_hash().unwrap());

    // Whoever forwards the record can recompute its content hash, but not the signature:
    // changed tables, a changed submission time, the old content as a newer version
    // (hiding a correction) or a voided status are all caught.
    let rewrite = |edit: &dyn Fn(&mut crate::core::model::Record)| {
        let mut r = good.clone();
        edit(&mut r);
        verify_record(&verifier, &r).unwrap_err()
    };
    let tables = rewrite(&|r| {
        if let RecordData::SupplyDemandReport(d) = &mut r.data {
            d.tables = "{\"tables\":[1]}".into();
        }
    });
    assert!(tables.contains("signature does not match"), "{tables}");
    let late = rewrite(&|r| {
        if let RecordData::SupplyDemandReport(d) = &mut r.data {
            d.first_submitted_at_ms += 86_400_000;
        }
    });
    assert!(late.contains("signature"), "{late}");
    assert!(rewrite(&|r| r.envelope.version = 3).contains("signature"));
    assert!(
        rewrite(&|r| r.envelope.status = crate::core::model::Status::Voided).contains("signature")
    );
    let id = rewrite(&|r| r.envelope.id = "2024Q2".into());
    assert!(id.contains("is not its period"), "{id}");

    // A province signing a report in the city's name is caught.
    let (_, pcert, pkey) = setup(dir.path(), "440000");
    let forged = signed_report(city, 2, (&pcert, &pkey));
    let refused = verify_record(&verifier, &forged).unwrap_err();
    assert!(refused.contains("certificate is for"), "{refused}");

    // Other kinds carry no signature of their own.
    let mut office = good.clone();
    office.data = RecordData::Office(crate::core::model::kinds::Office {
        division_code: "440103".into(),
        office_type: crate::core::model::kinds::OfficeType::CityCentre,
        parent_office_id: None,
        employer_id: None,
        name: "centre".into(),
        public_address: None,
        opened_on: "2000-01-01".parse().unwrap(),
        closed_on: None,
        networked: true,
        networked_since: None,
        public_channels: Vec::new(),
        services: Vec::new(),
        staff_count: 1,
    });
    verify_record(&verifier, &office).unwrap();
}
