//! The sled store on disk: durability across reopen, identity binding, summaries rebuilt
//! from the change log or read from the checkpoint of a clean close, and a property test
//! of write sequences against a model.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use lmsync::core::model::ingest::{Draft, IngestContext};
use lmsync::core::model::person::Pseudonymiser;
use lmsync::core::model::standards::Standards;
use lmsync::core::model::{NodeCode, RecordKey};
use lmsync::core::reconcile::Digest;
use lmsync::core::store::{Store, StoreError, WriteBatch};
use lmsync::node::clock::ManualClock;
use lmsync::node::storage::{SledStore, sled_options};
use lmsync::node::write::Planner;
use proptest::prelude::*;
use serde_json::json;

fn city() -> NodeCode {
    "440100".parse().unwrap()
}

fn create(dir: &std::path::Path) -> SledStore {
    SledStore::create(dir, city(), [9; 16], 0, sled_options(16 << 20)).unwrap()
}

fn draft(id: &str, headcount: u32) -> Draft {
    let standards = Standards::builtin();
    let key = Pseudonymiser::new([1; 32], 1);
    let cx = IngestContext::new(city(), &standards, Some(&key));
    let mut v = json!({"kind": "vacancy", "id": id, "data": {
        "receiving_office_id": "O-1", "employer_id": "E-1", "reported_on": "1999-08-02",
        "report_channel": "phone", "title": "钳工", "occupation": "6-04", "industry": "C",
        "headcount": 1, "contract_term": "up_to_1_year", "employment_type": "full_time",
        "work_location": "440100", "valid_from": "1999-08-02", "valid_until": "1999-09-30",
        "publish_allowed": false, "fill_state": "open"}});
    v["data"]["headcount"] = json!(headcount);
    cx.draft(v).unwrap()
}

/// Plans and commits drafts as the write path does; returns (id, version, seq, changed).
fn write(store: &SledStore, drafts: Vec<Draft>) -> Vec<(String, u64, u64, bool)> {
    let clock = ManualClock::new(1_000);
    let refs = Standards::builtin().code_refs();
    let mut planner = Planner::new(store, city());
    let out: Vec<_> = drafts
        .into_iter()
        .map(|d| {
            let o = planner
                .plan(d, &refs, lmsync::node::clock::Clock::now_ms(&clock))
                .unwrap();
            (o.id, o.version, o.seq, o.changed)
        })
        .collect();
    store
        .commit(WriteBatch {
            records: planner.into_writes(),
            ..WriteBatch::default()
        })
        .unwrap();
    out
}

fn scanned_digest(store: &SledStore) -> Digest {
    let mut d = Digest::default();
    for r in store.scan_owner(city()) {
        d.merge(Digest {
            records: 1,
            sum: r.unwrap().envelope.fingerprint(),
        });
    }
    d
}

#[test]
fn data_survives_reopen_and_summaries_rebuild_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let digest = {
        let store = create(&path);
        write(&store, vec![draft("V-1", 1), draft("V-2", 2)]);
        write(&store, vec![draft("V-1", 5), draft("V-3", 3)]);
        assert_eq!(store.last_seq(city()), 4);
        let digest = store.digest(None, None);
        store.close_as_if_crashed();
        digest
    };
    let store = SledStore::open(&path, city(), sled_options(16 << 20)).unwrap();
    assert!(!store.opened_from_checkpoint(), "no clean close: the log");
    assert_eq!(store.digest(None, None), digest);
    assert_eq!(store.digest(None, None), scanned_digest(&store));
    assert_eq!(store.last_seq(city()), 4);
    let r = store
        .get_record(
            city(),
            RecordKey::of(lmsync::core::model::Kind::Vacancy, "V-1"),
        )
        .unwrap()
        .unwrap();
    assert_eq!((r.envelope.version, r.envelope.seq), (2, 3));
    assert!(r.verify_hash().unwrap());
}

/// A clean close leaves a checkpoint of the summaries that the next open reads instead of
/// the change log; the first commit after it removes it in the same batch, so a crash
/// after that commit rebuilds from the log, and a crash before any commit keeps it.
#[test]
fn a_clean_close_leaves_a_checkpoint_that_the_next_commit_removes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let open = || SledStore::open(&path, city(), sled_options(16 << 20)).unwrap();
    let store = create(&path);
    write(&store, vec![draft("V-1", 1), draft("V-2", 2)]);
    let digest = store.digest(None, None);
    drop(store);

    let store = open();
    assert!(store.opened_from_checkpoint(), "a clean close left one");
    assert_eq!(store.digest(None, None), digest);
    assert_eq!(store.last_seq(city()), 2);
    store.close_as_if_crashed();
    let store = open();
    assert!(
        store.opened_from_checkpoint(),
        "no commit since: still valid"
    );

    write(&store, vec![draft("V-2", 7), draft("V-3", 3)]);
    let digest = store.digest(None, None);
    store.close_as_if_crashed();
    let store = open();
    assert!(!store.opened_from_checkpoint(), "the commit removed it");
    assert_eq!(store.digest(None, None), digest);
    assert_eq!(store.digest(None, None), scanned_digest(&store));
    assert_eq!(store.last_seq(city()), 4);
    assert!(
        store.may_contain(
            city(),
            RecordKey::of(lmsync::core::model::Kind::Vacancy, "V-3")
        ),
        "the key filter came back too"
    );
    drop(store);
    let store = open();
    assert!(store.opened_from_checkpoint());
    assert_eq!(store.digest(None, None), digest);
    assert!(store.may_contain(
        city(),
        RecordKey::of(lmsync::core::model::Kind::Vacancy, "V-3")
    ));
}

/// A release that knew no checkpoints committed after one was written (a downgrade and
/// back): the checkpoint is behind the seal, so the log is read instead.
#[test]
fn a_checkpoint_behind_the_seal_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let open = || SledStore::open(&path, city(), sled_options(16 << 20)).unwrap();
    let store = create(&path);
    write(&store, vec![draft("V-1", 1), draft("V-2", 2)]);
    drop(store);
    let store = open();
    assert!(store.opened_from_checkpoint());
    store.commit_next_as_an_earlier_release();
    write(&store, vec![draft("V-3", 3)]);
    let digest = store.digest(None, None);
    store.close_as_if_crashed();
    let store = open();
    assert!(!store.opened_from_checkpoint(), "stale: the log instead");
    assert_eq!(store.digest(None, None), digest);
    assert_eq!(store.digest(None, None), scanned_digest(&store));
}

#[test]
fn a_store_refuses_another_node_and_missing_markers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    drop(create(&path));
    let other: NodeCode = "210100".parse().unwrap();
    match SledStore::open(&path, other, sled_options(16 << 20)) {
        Err(StoreError::WrongNode { found, expected }) => {
            assert_eq!((found, expected), (city(), other))
        }
        other => panic!("expected WrongNode, got {other:?}"),
    }
    assert!(matches!(
        SledStore::create(&path, city(), [1; 16], 0, sled_options(1 << 20)),
        Err(StoreError::AlreadyInitialised(_))
    ));
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert!(matches!(
        SledStore::open(&empty, city(), sled_options(1 << 20)),
        Err(StoreError::NotInitialised(_))
    ));
}

/// A store whose sled files come back shorter than what was committed (here: the files of
/// an earlier moment under the current seal, which is what sled leaves after dropping a
/// damaged log's end) is refused as damaged; a consistent older copy (files and seal
/// together, a backup) opens, and so does a store whose seal is missing or torn.
#[test]
fn a_store_shorter_than_its_commit_seal_is_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let (path, earlier) = (dir.path().join("data"), dir.path().join("earlier"));
    let store = create(&path);
    write(
        &store,
        (0..50).map(|i| draft(&format!("V-{i}"), 1)).collect(),
    );
    drop(store);
    common::copy_dir(&path, &earlier);
    let store = SledStore::open(&path, city(), sled_options(16 << 20)).unwrap();
    write(
        &store,
        (50..60).map(|i| draft(&format!("V-{i}"), 1)).collect(),
    );
    drop(store);

    // The earlier copy, whole, is a consistent backup.
    drop(SledStore::open(&earlier, city(), sled_options(16 << 20)).unwrap());
    // The earlier sled files under the later seal lost committed batches.
    std::fs::copy(path.join("seal"), earlier.join("seal")).unwrap();
    match SledStore::open(&earlier, city(), sled_options(16 << 20)) {
        Err(StoreError::Damaged(detail)) => assert!(detail.contains("50 entries"), "{detail}"),
        other => panic!("expected Damaged, got {other:?}"),
    }
    // Refused again on the next open: the seal is evidence, not rewritten.
    assert!(matches!(
        SledStore::open(&earlier, city(), sled_options(16 << 20)),
        Err(StoreError::Damaged(_))
    ));
    // Without a usable seal there is nothing to compare: the store opens, sealed afresh.
    std::fs::write(earlier.join("seal"), b"torn").unwrap();
    let reopened = SledStore::open(&earlier, city(), sled_options(16 << 20)).unwrap();
    assert_eq!(reopened.digest(Some(city()), None).records, 50);
}

#[test]
fn a_store_created_for_restore_is_marked_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let options = sled_options(16 << 20);
    drop(SledStore::create_marked(&path, city(), [3; 16], 0, options, true).unwrap());
    let store = SledStore::open(&path, city(), options).unwrap();
    assert!(store.restore_pending().unwrap());
    assert!(!create(&dir.path().join("plain")).restore_pending().unwrap());
}

#[test]
fn a_corrupted_value_is_detected_by_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let store = create(&dir.path().join("data"));
    write(&store, vec![draft("V-1", 1)]);
    let key = RecordKey::of(lmsync::core::model::Kind::Vacancy, "V-1");
    let mut r = store.get_record(city(), key).unwrap().unwrap();
    if let lmsync::core::model::kinds::RecordData::Vacancy(v) = &mut r.data {
        v.headcount = 99;
    }
    store.corrupt_record_for_test(city(), &r).unwrap();
    let back = store.get_record(city(), key).unwrap().unwrap();
    assert!(
        !back.verify_hash().unwrap(),
        "changed data no longer matches its hash"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any sequence of batches of writes (new ids, changes, identical re-posts) leaves the
    /// store agreeing with a simple model, before and after a reopen.
    #[test]
    fn write_sequences_match_a_model(batches in prop::collection::vec(prop::collection::vec((0u8..12, 1u32..4), 1..20), 1..6)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let store = create(&path);
        let mut model: BTreeMap<String, (u32, u64, u64)> = BTreeMap::new();
        let mut next_seq = 1;
        for batch in batches {
            let drafts: Vec<Draft> = batch.iter().map(|(id, h)| draft(&format!("V-{id}"), *h)).collect();
            for ((id, version, seq, changed), (_, h)) in write(&store, drafts).into_iter().zip(&batch) {
                let expected = match model.get(&id) {
                    Some((old_h, v, s)) if old_h == h => (*h, *v, *s),
                    Some((_, v, _)) => { next_seq += 1; (*h, v + 1, next_seq - 1) }
                    None => { next_seq += 1; (*h, 1, next_seq - 1) }
                };
                prop_assert_eq!(changed, model.get(&id).is_none_or(|m| m.0 != *h));
                prop_assert_eq!((version, seq), (expected.1, expected.2));
                model.insert(id, expected);
            }
        }
        prop_assert_eq!(store.digest(None, None).records, model.len() as u64);
        prop_assert_eq!(store.digest(None, None), scanned_digest(&store));
        let digest = store.digest(None, None);
        // As a crash leaves it (the change log), then as a clean close does (a checkpoint).
        store.close_as_if_crashed();
        for checkpoint in [false, true] {
            let reopened = SledStore::open(&path, city(), sled_options(16 << 20)).unwrap();
            prop_assert_eq!(reopened.opened_from_checkpoint(), checkpoint);
            prop_assert_eq!(reopened.digest(None, None), digest);
            prop_assert_eq!(reopened.digest(None, None), scanned_digest(&reopened));
            prop_assert_eq!(reopened.last_seq(city()), next_seq - 1);
        }
    }
}

/// A store written before documents were keyed by issuer is migrated when it opens: its
/// documents are found by kind, issuer and id, and listed once.
#[test]
fn documents_stored_under_the_old_key_are_found_after_an_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    drop(create(&path));
    let doc = lmsync::core::model::document::StoredDocument {
        kind: "policy".into(),
        id: "P-1".into(),
        issuer: "440000".parse().unwrap(),
        version: 2,
        body: "{}".into(),
        certificate: vec![1],
        signature: vec![2],
    };
    {
        // The key an earlier release wrote: b'd', kind, NUL, id.
        let db = common::open_raw_sled(&path);
        let mut key = b"dpolicy\0".to_vec();
        key.extend_from_slice(b"P-1");
        db.insert(key, lmsync::core::codec::encode(&doc).unwrap())
            .unwrap();
        db.flush().unwrap();
    }
    let store = SledStore::open(&path, city(), sled_options(16 << 20)).unwrap();
    assert_eq!(
        store.get_document("policy", doc.issuer, "P-1").unwrap(),
        Some(doc.clone())
    );
    assert_eq!(store.documents().unwrap(), vec![doc]);
}

#[test]
fn documents_and_watermarks_commit_durably() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let doc = lmsync::core::model::document::StoredDocument {
        kind: "classification_version".into(),
        id: "CN-OCC@1999".into(),
        issuer: lmsync::core::model::MINISTRY,
        version: 1,
        body: "{\"scheme\":\"CN-OCC\"}".into(),
        certificate: vec![4, 5],
        signature: vec![1, 2, 3],
    };
    let province: NodeCode = "440000".parse().unwrap();
    {
        let store = create(&path);
        let batch = WriteBatch {
            documents: vec![doc.clone()],
            watermarks: vec![(province, city(), 42)],
            ..WriteBatch::default()
        };
        store.commit(batch).unwrap();
    }
    let store = SledStore::open(&path, city(), sled_options(16 << 20)).unwrap();
    assert_eq!(
        store
            .get_document("classification_version", doc.issuer, "CN-OCC@1999")
            .unwrap(),
        Some(doc.clone())
    );
    assert_eq!(store.documents().unwrap(), vec![doc]);
    assert_eq!(store.watermark(province, city()).unwrap(), 42);
    assert_eq!(
        store
            .watermark(lmsync::core::model::MINISTRY, city())
            .unwrap(),
        0
    );
}

/// A large batch: sled writes pages over a quarter segment to blob files it never
/// fsyncs; the store fsyncs every one before acknowledging, and its change log (packed in
/// chunks, so it adds no blobs of its own) still rebuilds the same summaries.
#[test]
fn a_large_batch_is_durable_in_blob_files_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let store = create(&path);
    let drafts = (0..8_000).map(|i| draft(&format!("V-{i}"), 1)).collect();
    write(&store, drafts);
    let blobs = std::fs::read_dir(path.join("blobs"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(store.synced_blob_files(), blobs, "every blob file fsynced");
    let before = store.digest(Some(city()), None);
    assert_eq!(before, scanned_digest(&store));
    drop(store);
    let store = SledStore::open(&path, city(), sled_options(16 << 20)).unwrap();
    assert_eq!(store.digest(Some(city()), None), before);
    assert_eq!(store.last_seq(city()), 8_000);
    let (to, records) = store.changes(city(), 0, 8_000, 10_000).unwrap();
    assert_eq!((to, records.len()), (8_000, 8_000));
}
