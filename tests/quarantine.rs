//! Quarantine: a received record that fails the hash check or validation is kept aside
//! with its reason (durably, across a reopen), the rest of its batch is stored and
//! acknowledged, and a valid version of the same record clears the entry.

#![allow(clippy::unwrap_used)]

mod common;

use common::sessions::{code, store, sync_once, write_generated};
use lmsync::core::model::kinds::RecordData;
use lmsync::core::model::{Kind, NodeCode, Record, RecordKey};
use lmsync::core::protocol::Event;
use lmsync::core::store::{MAX_QUARANTINED_PER_OWNER, QuarantinedRecord, Store, WriteBatch};
use lmsync::node::storage::{SledStore, sled_options};

/// Changes a vacancy's data without its hash: what a bit flip on disk or in a buggy
/// sender would produce.
fn tamper(record: &mut Record) {
    match &mut record.data {
        RecordData::Vacancy(v) => v.headcount += 1,
        other => panic!("expected a vacancy, got {:?}", other.kind()),
    }
}

fn first_vacancy(store: &SledStore, city: NodeCode) -> Record {
    store
        .scan_owner(city)
        .map(Result::unwrap)
        .find(|r| r.envelope.kind == Kind::Vacancy)
        .unwrap()
}

#[test]
fn a_tampered_record_is_quarantined_and_the_rest_of_its_batch_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (c, p) = (code("440100"), code("440000"));
    let city = store(&dir.path().join("city"), c);
    let province = store(&dir.path().join("province"), p);
    write_generated(&city, c, 1000);
    let mut bad = first_vacancy(&city, c);
    tamper(&mut bad);
    city.corrupt_record_for_test(c, &bad).unwrap();

    let events = sync_once(&city, &province).parent;

    let reported: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Quarantined { id, reason, .. } => Some((id.clone(), reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(reported.len(), 1, "one quarantine event: {events:?}");
    assert_eq!(reported[0].0, bad.envelope.id);
    let kept = province.quarantined(Some(c), 10).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].record, bad, "the record is kept as received");
    assert_eq!(kept[0].from, c);
    assert!(kept[0].reason.contains("hash"), "{}", kept[0].reason);
    assert_eq!(province.quarantine_counts().get(&c), Some(&1));
    // Every other record arrived and was acknowledged: the province holds all but one,
    // and its watermark for the city reached the city's last seq.
    assert_eq!(
        province.digest(Some(c), None).records + 1,
        city.digest(Some(c), None).records
    );
    assert!(
        province
            .get_record(c, bad.envelope.key())
            .unwrap()
            .is_none()
    );
    assert_eq!(province.watermark(p, c).unwrap(), city.last_seq(c));
}

fn quarantined(record: Record) -> QuarantinedRecord {
    QuarantinedRecord {
        record,
        reason: "fails validation here".into(),
        from: code("440100"),
        received_at_ms: 5,
    }
}

#[test]
fn quarantine_survives_a_reopen_and_a_valid_version_clears_it() {
    let dir = tempfile::tempdir().unwrap();
    let c = code("440100");
    let path = dir.path().join("province");
    let province = store(&path, code("440000"));
    let source = store(&dir.path().join("city"), c);
    write_generated(&source, c, 1000);
    let good = first_vacancy(&source, c);
    let mut bad = good.clone();
    tamper(&mut bad);
    province
        .commit(WriteBatch {
            quarantine: vec![quarantined(bad.clone())],
            ..WriteBatch::default()
        })
        .unwrap();
    drop(province);

    let province = SledStore::open(&path, code("440000"), sled_options(8 << 20)).unwrap();
    assert_eq!(province.quarantine_counts().get(&c), Some(&1));
    assert_eq!(province.quarantined(None, 10).unwrap()[0].record, bad);

    province
        .commit(WriteBatch {
            records: vec![lmsync::core::store::RecordWrite {
                record: good,
                prev_fp: None,
            }],
            ..WriteBatch::default()
        })
        .unwrap();
    assert!(province.quarantine_counts().is_empty());
    assert!(province.quarantined(Some(c), 10).unwrap().is_empty());
    drop(province);
    let province = SledStore::open(&path, code("440000"), sled_options(8 << 20)).unwrap();
    assert!(
        province.quarantined(None, 10).unwrap().is_empty(),
        "cleared durably"
    );
}

#[test]
fn quarantine_keeps_at_most_the_cap_per_owner() {
    let dir = tempfile::tempdir().unwrap();
    let c = code("440100");
    let province = store(&dir.path().join("province"), code("440000"));
    let source = store(&dir.path().join("city"), c);
    write_generated(&source, c, 1000);
    let template = first_vacancy(&source, c);
    let cap = usize::try_from(MAX_QUARANTINED_PER_OWNER).unwrap();
    let entries: Vec<_> = (0..cap + 50)
        .map(|i| {
            let mut r = template.clone();
            r.envelope.id = format!("V-Q-{i}");
            quarantined(r)
        })
        .collect();
    province
        .commit(WriteBatch {
            quarantine: entries,
            ..WriteBatch::default()
        })
        .unwrap();
    assert_eq!(
        province.quarantine_counts().get(&c).copied(),
        Some(MAX_QUARANTINED_PER_OWNER)
    );
    assert_eq!(
        province.quarantined(Some(c), cap + 100).unwrap().len(),
        cap,
        "stored entries match the count"
    );
    assert!(
        province
            .get_record(c, RecordKey::of(Kind::Vacancy, "V-Q-0"))
            .unwrap()
            .is_none()
    );
}
