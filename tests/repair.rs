//! Repair at the session level (real sessions, sled stores, messages in memory): a child's
//! own records are kept at its parent, so a child that lost some (a copy its scrub
//! removed, a store that went back) gets them from there; and the documents a parent
//! issued are kept by its children, so a parent whose store was rebuilt gets them back.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::sessions::{
    Signer, code, hold, store, sync_once, sync_once_with, verifier, write_generated,
};
use lmsync::core::model::MINISTRY;
use lmsync::core::model::standards::{Standards, StandardsCell};
use lmsync::core::protocol::merge::plan_replica;
use lmsync::core::protocol::{Action, ChildSession, Event, ParentSession};
use lmsync::core::store::{Removal, Store, WriteBatch};
use lmsync::core::wire::{Message, PROTOCOL_VERSION, RefusalCode};
use lmsync::node::storage::{SledStore, sled_options};

/// Removes `count` of `owner`'s records the way the scrub removes corrupted copies.
fn remove_records(store: &SledStore, owner: lmsync::core::model::NodeCode, count: usize) -> usize {
    let removals: Vec<Removal> = store
        .scan_owner(owner)
        .take(count)
        .map(|r| Removal {
            envelope: r.unwrap().envelope,
        })
        .collect();
    let removed = removals.len();
    store
        .commit(WriteBatch {
            removals,
            ..WriteBatch::default()
        })
        .unwrap();
    removed
}

fn repaired(events: &[Event]) -> usize {
    events
        .iter()
        .map(|e| match e {
            Event::Repaired { records, .. } => *records,
            _ => 0,
        })
        .sum()
}

#[test]
fn a_child_gets_back_its_own_records_that_it_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (c, p) = (code("440100"), code("440000"));
    let city = store(&dir.path().join("city"), c);
    let province = store(&dir.path().join("province"), p);
    write_generated(&city, c, 1000);
    sync_once(&city, &province);
    let whole = province.digest(Some(c), None);
    assert_eq!(city.digest(Some(c), None), whole);

    for lost in [1, 37, 1000] {
        let removed = remove_records(&city, c, lost);
        assert_ne!(city.digest(Some(c), None), whole);
        let events = sync_once(&city, &province);
        assert_eq!(repaired(&events.child), removed, "lost {lost}");
        assert_eq!(city.digest(Some(c), None), whole, "lost {lost}");
        // Nothing moved the other way: the parent had every record already.
        assert_eq!(repaired(&events.parent), 0);
        assert_eq!(province.digest(Some(c), None), whole);
    }
}

/// What a parent sends down in one anti-entropy answer is bounded (5,000 records); the
/// next round sends the rest.
#[test]
fn repair_down_is_bounded_per_round() {
    let dir = tempfile::tempdir().unwrap();
    let (c, p) = (code("440100"), code("440000"));
    let city = store(&dir.path().join("city"), c);
    let province = store(&dir.path().join("province"), p);
    write_generated(&city, c, 6000);
    sync_once(&city, &province);
    let whole = province.digest(Some(c), None);
    let removed = remove_records(&city, c, 6000);
    assert!(removed > 5000, "{removed}");
    assert_eq!(repaired(&sync_once(&city, &province).child), 5000);
    assert_eq!(repaired(&sync_once(&city, &province).child), removed - 5000);
    assert_eq!(city.digest(Some(c), None), whole);
}

#[test]
fn a_child_whose_store_went_back_restores_what_its_parent_holds() {
    let dir = tempfile::tempdir().unwrap();
    let (c, p) = (code("440100"), code("440000"));
    let (live, backup) = (dir.path().join("city"), dir.path().join("backup"));
    let province = store(&dir.path().join("province"), p);
    {
        let city = store(&live, c);
        write_generated(&city, c, 500);
        sync_once(&city, &province);
    }
    common::copy_dir(&live, &backup);
    let held_before = {
        let city = SledStore::open(&live, c, sled_options(8 << 20)).unwrap();
        write_generated(&city, c, 1500);
        sync_once(&city, &province);
        city.last_seq(c)
    };
    assert_eq!(province.complete_through(c).unwrap(), held_before);

    let city = SledStore::open(&backup, c, sled_options(8 << 20)).unwrap();
    let went_back_to = city.complete_through(c).unwrap();
    assert!(went_back_to < held_before);
    let events = sync_once(&city, &province);
    assert!(
        events.child.iter().any(|e| matches!(
            e,
            Event::BehindParent { here, at_parent }
                if *here == went_back_to && *at_parent == held_before
        )),
        "{:?}",
        events.child
    );
    assert!(!city.restore_pending().unwrap(), "the restore completed");
    assert_eq!(city.complete_through(c).unwrap(), held_before);
    assert_eq!(city.digest(Some(c), None), province.digest(Some(c), None));
}

/// A parent may repair down only the child's own records.
#[test]
fn a_child_refuses_a_repair_holding_another_owners_records() {
    let dir = tempfile::tempdir().unwrap();
    let (c, sibling, p) = (code("440100"), code("440300"), code("440000"));
    let city = store(&dir.path().join("city"), c);
    let other = store(&dir.path().join("other"), sibling);
    write_generated(&other, sibling, 10);
    let foreign: Vec<_> = other.scan_owner(sibling).map(Result::unwrap).collect();

    let verifier = verifier();
    let standards = Arc::new(StandardsCell::new(Standards::builtin()));
    for owner in [c, sibling] {
        let mut child = ChildSession::new(c, p, 100, verifier.clone(), standards.clone());
        child.start(&city);
        let welcome = Message::Welcome {
            protocol: PROTOCOL_VERSION,
            node: p,
            store_id: [1; 16],
        };
        child.handle(&city, welcome).unwrap();
        let actions = child
            .handle(
                &city,
                Message::Repair {
                    owner,
                    records: foreign.clone(),
                },
            )
            .unwrap();
        assert!(
            matches!(
                actions.as_slice(),
                [Action::Close {
                    code: RefusalCode::Protocol,
                    ..
                }]
            ),
            "repair as {owner}: {actions:?}"
        );
    }
    assert_eq!(city.digest(Some(sibling), None).records, 0);
}

fn returned(events: &[Event]) -> Vec<u32> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::DocumentsReturned { count, .. } => Some(*count),
            _ => None,
        })
        .collect()
}

/// A parent whose store was rebuilt holds none of the documents it issued; its child
/// gives back the newest of each, and only those (not the ministry's, which come from
/// above), then says it is done. Once they are back there is nothing more to return.
#[test]
fn a_parent_gets_back_the_documents_it_issued_from_a_child() {
    let dir = tempfile::tempdir().unwrap();
    let (c, p) = (code("440100"), code("440000"));
    let signer = Signer::new();
    let city = store(&dir.path().join("city"), c);
    let province = store(&dir.path().join("province"), p);
    let (own_v3, own_other) = (signer.policy(p, "P-1", 3), signer.policy(p, "P-2", 1));
    let national = signer.policy(MINISTRY, "M-1", 2);
    hold(&city, vec![own_v3.clone(), own_other.clone(), national]);

    let events = sync_once_with(&city, &province, &signer.verifier);
    assert_eq!(returned(&events.parent), vec![2], "{events:?}");
    let mut back = province.documents().unwrap();
    back.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(
        back,
        vec![own_v3, own_other],
        "its own documents, newest, nothing else"
    );

    let events = sync_once_with(&city, &province, &signer.verifier);
    assert_eq!(
        returned(&events.parent),
        vec![0],
        "nothing more to give back"
    );
}

/// A parent that published a document again after its store went back (version 1, while
/// its children hold version 3) takes the newer version back and says it must publish
/// again; a version it holds newer than the child's is kept.
#[test]
fn a_parent_that_republished_over_a_lost_version_takes_the_newer_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (c, p) = (code("440100"), code("440000"));
    let signer = Signer::new();
    let city = store(&dir.path().join("city"), c);
    let province = store(&dir.path().join("province"), p);
    hold(
        &city,
        vec![signer.policy(p, "P-1", 3), signer.policy(p, "P-2", 1)],
    );
    let newer_here = signer.policy(p, "P-2", 4);
    hold(
        &province,
        vec![signer.policy(p, "P-1", 1), newer_here.clone()],
    );

    let events = sync_once_with(&city, &province, &signer.verifier);
    let held = |id: &str| province.get_document("policy", p, id).unwrap().unwrap();
    assert_eq!(
        held("P-1").version,
        3,
        "the newer returned version is in force"
    );
    assert_eq!(held("P-2"), newer_here, "a newer version here is kept");
    let conflicts: Vec<&Event> = events
        .parent
        .iter()
        .filter(|e| matches!(e, Event::Conflict { detail } if detail.contains("publish again")))
        .collect();
    assert_eq!(conflicts.len(), 1, "{events:?}");
    assert_eq!(returned(&events.parent), vec![1]);
    assert_eq!(
        city.get_document("policy", p, "P-2").unwrap().unwrap(),
        newer_here
    );
}

/// A child may give a parent back only the parent's own documents (and a province its
/// reports), signed: another issuer's document, or the parent's altered, ends the session
/// with nothing stored.
#[test]
fn a_child_cannot_pass_off_other_documents_as_returned() {
    let dir = tempfile::tempdir().unwrap();
    let (c, p) = (code("440100"), code("440000"));
    let signer = Signer::new();
    let province = store(&dir.path().join("province"), p);
    let mut altered = signer.policy(p, "P-1", 7);
    altered.body = r#"{"title":"altered"}"#.into();
    let cases = [
        ("the ministry's", signer.policy(MINISTRY, "M-1", 1)),
        ("a sibling's", signer.policy(code("440300"), "S-1", 1)),
        ("the city's own", signer.policy(c, "C-1", 1)),
        ("the parent's, altered", altered),
    ];
    let standards = Arc::new(StandardsCell::new(Standards::builtin()));
    for (what, doc) in cases {
        let mut parent = ParentSession::new(p, c, standards.clone(), signer.verifier.clone());
        let hello = Message::Hello {
            protocol: (PROTOCOL_VERSION, PROTOCOL_VERSION),
            node: c,
            store_id: [9; 16],
        };
        for a in parent.handle(&province, hello).unwrap() {
            if let Action::Commit { batch, .. } = a {
                province.commit(batch).unwrap();
            }
        }
        let actions = parent.handle(&province, Message::Document(doc)).unwrap();
        assert!(
            matches!(
                actions.as_slice(),
                [Action::Close {
                    code: RefusalCode::Unauthorised,
                    ..
                }]
            ),
            "{what}: {actions:?}"
        );
    }
    assert!(province.documents().unwrap().is_empty());
}

/// A batch that holds one record twice (a child's bug or an attack) stores it once, in
/// the newer version whichever comes first: the parent's summaries count the record once,
/// with the fingerprint of the version it holds.
#[test]
fn a_record_twice_in_one_batch_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let (c, p) = (code("440100"), code("440000"));
    let city = store(&dir.path().join("city"), c);
    write_generated(&city, c, 5);
    let (_, records) = city.changes(c, 0, city.last_seq(c), 10).unwrap();
    let older = records[0].clone();
    let mut newer = older.clone();
    newer.envelope.version += 1;
    newer.envelope.seq = city.last_seq(c) + 1;
    let standards = Standards::builtin();
    let verifier = verifier();
    let batches = [
        vec![older.clone(), newer.clone()],
        vec![newer.clone(), older.clone()],
        vec![newer.clone(), newer.clone()],
    ];
    for (n, batch) in batches.into_iter().enumerate() {
        let province = store(&dir.path().join(format!("province-{n}")), p);
        let plan = plan_replica(&province, (&standards, &verifier), batch).unwrap();
        assert_eq!(plan.writes.len(), 1, "batch {n}");
        assert!(plan.conflicts.is_empty(), "batch {n}");
        province
            .commit(WriteBatch {
                records: plan.writes,
                ..WriteBatch::default()
            })
            .unwrap();
        let held = province.get_record(c, older.envelope.key()).unwrap();
        assert_eq!(
            held.map(|r| r.envelope.version),
            Some(newer.envelope.version)
        );
        let digest = province.digest(Some(c), None);
        assert_eq!(
            (digest.records, digest.sum),
            (1, newer.envelope.fingerprint()),
            "batch {n}"
        );
    }
}
