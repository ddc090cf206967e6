//! The leaf index against the records it indexes, on real sled stores: after any history
//! of writes, replacements and removals (and after a reopen) every leaf lists exactly the
//! key, version and fingerprint of each record held; a store written before the index
//! existed gains it when it opens.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use lmsync::core::model::ingest::{Draft, IngestContext};
use lmsync::core::model::person::Pseudonymiser;
use lmsync::core::model::standards::Standards;
use lmsync::core::model::{Kind, NodeCode, RecordKey};
use lmsync::core::store::{FORMAT_VERSION, LeafItem, NodeIdentity, Removal, Store, WriteBatch};
use lmsync::node::storage::{SledStore, sled_options};
use lmsync::node::write::Planner;
use proptest::prelude::*;
use serde_json::json;

fn city() -> NodeCode {
    "440100".parse().unwrap()
}

/// Leaves at the edges of groups and of the tree, where folding passes turn.
const EDGE_LEAVES: [usize; 5] = [0, 1, 255, 256, 4095];

/// Record ids whose keys fall in [`EDGE_LEAVES`], a dozen or so per leaf.
fn id_pool() -> &'static [String] {
    static POOL: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        (0..)
            .map(|i| format!("V-{i}"))
            .filter(|id| EDGE_LEAVES.contains(&RecordKey::of(Kind::Vacancy, id).bucket()))
            .take(64)
            .collect()
    })
}

fn draft(id: &str, headcount: u32) -> Draft {
    let standards = Standards::builtin();
    let key = Pseudonymiser::new([1; 32], 1);
    let cx = IngestContext::new(city(), &standards, Some(&key));
    cx.draft(json!({"kind": "vacancy", "id": id, "data": {
        "receiving_office_id": "O-1", "employer_id": "E-1", "reported_on": "1999-08-02",
        "report_channel": "phone", "title": "钳工", "occupation": "6-04", "industry": "C",
        "headcount": headcount, "contract_term": "up_to_1_year", "employment_type": "full_time",
        "work_location": "440100", "valid_from": "1999-08-02", "valid_until": "1999-09-30",
        "publish_allowed": false, "fill_state": "open"}}))
        .unwrap()
}

/// Commits one batch: writes (`headcount > 0`, a new version when it changes) and removals
/// (`0`, as the scrub removes a corrupted copy) of ids from the pool.
fn commit(store: &SledStore, ops: &[(usize, u32)]) {
    let refs = Standards::builtin().code_refs();
    let mut planner = Planner::new(store, city());
    let mut removals = Vec::new();
    let written: Vec<usize> = ops
        .iter()
        .filter(|(_, h)| *h > 0)
        .map(|(i, _)| *i)
        .collect();
    for (i, headcount) in ops {
        let id = &id_pool()[*i];
        if *headcount > 0 {
            planner.plan(draft(id, *headcount), &refs, 1_000).unwrap();
        } else if !written.contains(i) && !removals.iter().any(|r: &Removal| r.envelope.id == *id) {
            let key = RecordKey::of(Kind::Vacancy, id);
            if let Some(r) = store.get_record(city(), key).unwrap() {
                removals.push(Removal {
                    envelope: r.envelope,
                });
            }
        }
    }
    store
        .commit(WriteBatch {
            records: planner.into_writes(),
            removals,
            ..WriteBatch::default()
        })
        .unwrap();
}

/// Every leaf as decoding the records gives it.
fn decoded_leaves(store: &SledStore) -> BTreeMap<u16, Vec<LeafItem>> {
    let mut leaves: BTreeMap<u16, Vec<LeafItem>> = BTreeMap::new();
    for r in store.scan_owner(city()) {
        let e = r.unwrap().envelope;
        #[allow(clippy::cast_possible_truncation)] // the low 64 bits are the point
        let item = (e.key(), e.version, e.fingerprint() as u64);
        let leaf = u16::try_from(item.0.bucket()).unwrap();
        leaves.entry(leaf).or_default().push(item);
    }
    leaves
}

fn assert_index_matches_records(store: &SledStore) -> Result<(), TestCaseError> {
    let expected = decoded_leaves(store);
    let all: Vec<u16> = (0..4096).collect();
    let listed = store.leaves_items(city(), &all).unwrap();
    for (leaf, items) in all.iter().zip(&listed) {
        let want = expected.get(leaf).cloned().unwrap_or_default();
        prop_assert_eq!(items, &want, "leaf {}", leaf);
    }
    for leaf in EDGE_LEAVES {
        let leaf = u16::try_from(leaf).unwrap();
        let alone = store.leaf_items(city(), leaf).unwrap();
        prop_assert_eq!(alone, expected.get(&leaf).cloned().unwrap_or_default());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any history of batches (new records, new versions, identical re-posts, removals),
    /// folded in passes of any length, leaves the index equal to the records.
    #[test]
    fn the_index_lists_what_the_records_hold(
        batches in prop::collection::vec(prop::collection::vec((0usize..64, 0u32..4), 1..16), 1..24),
        min_tail in 1u64..64,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let store = SledStore::create(&path, city(), [9; 16], 0, sled_options(16 << 20)).unwrap();
        store.set_index_min_tail_for_test(min_tail);
        for (n, batch) in batches.iter().enumerate() {
            commit(&store, batch);
            if n % 4 == 3 {
                assert_index_matches_records(&store)?;
            }
        }
        assert_index_matches_records(&store)?;
        drop(store);
        let store = SledStore::open(&path, city(), sled_options(16 << 20)).unwrap();
        assert_index_matches_records(&store)?;
        store.set_index_min_tail_for_test(min_tail);
        commit(&store, &[(0, 3), (1, 0), (63, 2)]);
        assert_index_matches_records(&store)?;
    }
}

/// A store written before the index existed (format 1, no index keys; here also the
/// remains of an interrupted build) gains the index when it opens, and says so.
#[test]
fn a_store_without_the_index_builds_it_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let options = sled_options(16 << 20);
    {
        let store = SledStore::create(&path, city(), [9; 16], 0, options).unwrap();
        commit(&store, &(0..64).map(|i| (i, 1)).collect::<Vec<_>>());
        commit(&store, &[(3, 2), (4, 0), (5, 3)]);
    }
    {
        // What an earlier release left: format 1, no `f` keys but a stray one.
        let db = common::open_raw_sled(&path);
        let stale: Vec<_> = db.scan_prefix(b"f").keys().map(Result::unwrap).collect();
        assert!(!stale.is_empty(), "the index was written");
        for k in stale {
            db.remove(k).unwrap();
        }
        db.insert(b"f\0\x06\xb7\x24b\0\x01", &[1u8; 3][..]).unwrap();
        let bytes = db.get(b"i").unwrap().unwrap();
        let mut identity: NodeIdentity = lmsync::core::codec::decode(&bytes).unwrap();
        assert_eq!(identity.format, FORMAT_VERSION);
        identity.format = 1;
        db.insert(b"i", lmsync::core::codec::encode(&identity).unwrap())
            .unwrap();
        db.flush().unwrap();
    }
    assert_eq!(SledStore::peek_identity(&path).unwrap().format, 1);
    let store = SledStore::open(&path, city(), options).unwrap();
    assert_eq!(store.identity().format, FORMAT_VERSION);
    assert_index_matches_records(&store).unwrap();
    commit(&store, &[(6, 3), (7, 0)]);
    assert_index_matches_records(&store).unwrap();
    drop(store);
    assert_eq!(
        SledStore::peek_identity(&path).unwrap().format,
        FORMAT_VERSION
    );
}
