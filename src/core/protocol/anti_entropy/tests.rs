//! Anti-entropy between a child and its parent over an in-memory store: what is repaired
//! in which direction, and how far down the tree each protocol version descends.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::leaves::SUB_LEAF_SALT;
use crate::core::model::ingest::IngestContext;
use crate::core::model::person::Pseudonymiser;
use crate::core::model::record::content_hash;
use crate::core::model::signature::DocumentVerifier;
use crate::core::model::standards::{Standards, StandardsCell};
use crate::core::model::{Envelope, Kind, NodeCode, Record, RecordKey};
use crate::core::protocol::{Action, ChildSession, ParentSession};
use crate::core::reconcile::{Bucket, Change, Digest, OwnerSummary};
use crate::core::store::{
    LeafItem, NodeIdentity, OwnerCounts, QuarantinedRecord, Removal, ScrubCursor, Store,
    StoreError, WriteBatch,
};
use crate::core::wire::{MIN_PROTOCOL_VERSION, Message, PROTOCOL_VERSION};

fn city() -> NodeCode {
    "440100".parse().unwrap()
}

fn province() -> NodeCode {
    "440000".parse().unwrap()
}

/// A store in memory: records (with their fingerprints) and watermarks; summaries are
/// computed when asked.
struct Mem {
    identity: NodeIdentity,
    records: Mutex<BTreeMap<(NodeCode, RecordKey), (Record, u128)>>,
    watermarks: Mutex<BTreeMap<(NodeCode, NodeCode), u64>>,
}

fn entry(r: Record) -> ((NodeCode, RecordKey), (Record, u128)) {
    let fp = r.envelope.fingerprint();
    ((r.envelope.owner, r.envelope.key()), (r, fp))
}

impl Mem {
    fn new(node: NodeCode, records: impl IntoIterator<Item = Record>) -> Mem {
        Mem {
            identity: NodeIdentity {
                format: crate::core::store::FORMAT_VERSION,
                node,
                store_id: [node.get().to_be_bytes()[3]; 16],
                created_at_ms: 0,
            },
            records: Mutex::new(records.into_iter().map(entry).collect()),
            watermarks: Mutex::new(BTreeMap::new()),
        }
    }

    fn held(&self) -> Vec<Record> {
        let records = self.records.lock().unwrap();
        records.values().map(|(r, _)| r.clone()).collect()
    }

    fn summary(&self, owner: NodeCode) -> OwnerSummary {
        let mut summary = OwnerSummary::default();
        let records = self.records.lock().unwrap();
        for ((o, key), (r, fp)) in records.iter() {
            if *o == owner {
                summary.apply(&Change {
                    key: *key,
                    kind: r.envelope.kind,
                    fp: Some(*fp),
                    prev_fp: None,
                });
            }
        }
        summary
    }
}

impl Store for Mem {
    fn identity(&self) -> &NodeIdentity {
        &self.identity
    }
    fn get_record(&self, owner: NodeCode, key: RecordKey) -> Result<Option<Record>, StoreError> {
        let records = self.records.lock().unwrap();
        Ok(records.get(&(owner, key)).map(|(r, _)| r.clone()))
    }
    fn buckets(&self, owner: NodeCode, depth: u32, parents: &[u16]) -> Vec<Bucket> {
        self.summary(owner).children(depth, parents)
    }
    fn leaf_items(&self, owner: NodeCode, leaf: u16) -> Result<Vec<LeafItem>, StoreError> {
        let [high, low] = (leaf << 4).to_be_bytes();
        let mut first = [0u8; 16];
        (first[0], first[1]) = (high, low);
        let mut last = [0xff; 16];
        (last[0], last[1]) = (high, low | 0x0f);
        let records = self.records.lock().unwrap();
        let range = records.range((owner, RecordKey(first))..=(owner, RecordKey(last)));
        #[allow(clippy::cast_possible_truncation)] // the low 64 bits are the point
        Ok(range
            .map(|((_, key), (r, fp))| (*key, r.envelope.version, *fp as u64))
            .collect())
    }
    fn scrub(&self, _: &mut ScrubCursor, _: usize) -> Result<Vec<Removal>, StoreError> {
        Ok(Vec::new())
    }
    fn may_contain(&self, _: NodeCode, _: RecordKey) -> bool {
        true
    }
    fn commit(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut records = self.records.lock().unwrap();
        records.extend(batch.records.into_iter().map(|w| entry(w.record)));
        for r in batch.removals {
            records.remove(&(r.envelope.owner, r.envelope.key()));
        }
        let mut marks = self.watermarks.lock().unwrap();
        for (peer, owner, seq) in batch.watermarks {
            marks.insert((peer, owner), seq);
        }
        Ok(())
    }
    fn digest(&self, owner: Option<NodeCode>, kind: Option<Kind>) -> Digest {
        owner.map_or_else(Digest::default, |o| self.summary(o).digest(kind))
    }
    fn last_seq(&self, owner: NodeCode) -> u64 {
        let held = self.held();
        let of_owner = held.iter().filter(|r| r.envelope.owner == owner);
        of_owner.map(|r| r.envelope.seq).max().unwrap_or(0)
    }
    fn owner_counts(&self) -> BTreeMap<NodeCode, OwnerCounts> {
        let mut counts: BTreeMap<NodeCode, OwnerCounts> = BTreeMap::new();
        for r in self.held() {
            let c = counts.entry(r.envelope.owner).or_default();
            c.last_seq = c.last_seq.max(r.envelope.seq);
            *c.by_kind.entry(r.envelope.kind).or_default() += 1;
        }
        counts
    }
    fn get_document(
        &self,
        _: &str,
        _: NodeCode,
        _: &str,
    ) -> Result<Option<crate::core::model::document::StoredDocument>, StoreError> {
        Ok(None)
    }
    fn documents(&self) -> Result<Vec<crate::core::model::document::StoredDocument>, StoreError> {
        Ok(Vec::new())
    }
    fn quarantined(
        &self,
        _: Option<NodeCode>,
        _: usize,
    ) -> Result<Vec<QuarantinedRecord>, StoreError> {
        Ok(Vec::new())
    }
    fn quarantine_counts(&self) -> BTreeMap<NodeCode, u64> {
        BTreeMap::new()
    }
    fn last_received(&self, _: NodeCode) -> Result<Option<i64>, StoreError> {
        Ok(None)
    }
    fn records_of(
        &self,
        owner: NodeCode,
    ) -> Box<dyn Iterator<Item = Result<Record, StoreError>> + '_> {
        let held = self.held().into_iter();
        Box::new(held.filter(move |r| r.envelope.owner == owner).map(Ok))
    }
    fn watermark(&self, peer: NodeCode, owner: NodeCode) -> Result<u64, StoreError> {
        Ok(*self
            .watermarks
            .lock()
            .unwrap()
            .get(&(peer, owner))
            .unwrap_or(&0))
    }
    fn changes(
        &self,
        owner: NodeCode,
        after: u64,
        upto: u64,
        max: usize,
    ) -> Result<(u64, Vec<Record>), StoreError> {
        let mut found: Vec<Record> = self
            .held()
            .into_iter()
            .filter(|r| r.envelope.owner == owner && (after + 1..=upto).contains(&r.envelope.seq))
            .collect();
        found.sort_by_key(|r| r.envelope.seq);
        found.truncate(max);
        Ok((upto, found))
    }
    fn size_on_disk(&self) -> u64 {
        0
    }
    fn restore_pending(&self) -> Result<bool, StoreError> {
        Ok(false)
    }
    fn peer_store_id(&self, _: NodeCode) -> Result<Option<[u8; 16]>, StoreError> {
        Ok(None)
    }
    fn fault(&self) -> Option<String> {
        None
    }
    fn full(&self) -> bool {
        false
    }
}

/// Record `id` of the city at `version` (each version has other data) and `seq`.
fn record(id: &str, version: u64, seq: u64) -> Record {
    static DATA: std::sync::OnceLock<Vec<crate::core::model::ingest::Draft>> =
        std::sync::OnceLock::new();
    let drafts = DATA.get_or_init(|| {
        let standards = Standards::builtin();
        let key = Pseudonymiser::new([1; 32], 1);
        let cx = IngestContext::new(city(), &standards, Some(&key));
        (1..=3)
            .map(|headcount| {
                cx.draft(json!({"kind": "vacancy", "id": "V", "data": {
                    "receiving_office_id": "O-1", "employer_id": "E-1",
                    "reported_on": "1999-08-02", "report_channel": "phone", "title": "钳工",
                    "occupation": "6-04", "industry": "C", "headcount": headcount,
                    "contract_term": "up_to_1_year", "employment_type": "full_time",
                    "work_location": "440100", "valid_from": "1999-08-02",
                    "valid_until": "1999-09-30", "publish_allowed": false,
                    "fill_state": "open"}}))
                    .unwrap()
            })
            .collect()
    });
    let draft = &drafts[usize::try_from(version - 1).unwrap() % drafts.len()];
    let hash = content_hash(city(), id, draft.status, &draft.data).unwrap();
    Record {
        envelope: Envelope {
            owner: city(),
            kind: draft.data.kind(),
            id: id.into(),
            version,
            seq,
            status: draft.status,
            recorded_at_ms: 0,
            code_refs: Standards::builtin().code_refs(),
            hash,
        },
        data: draft.data.clone(),
    }
}

/// The first `n` ids whose keys fall in one leaf.
fn ids_in_one_leaf(n: usize) -> Vec<String> {
    let leaf = |id: &str| RecordKey::of(Kind::Vacancy, id).bucket();
    let target = leaf("V-0");
    (0..)
        .map(|i| format!("V-{i}"))
        .filter(|id| leaf(id) == target)
        .take(n)
        .collect()
}

/// Four records of one leaf in version 1 at the parent; the child holds them too, the
/// first in version 2.
fn one_leaf_with_a_change_at_the_child() -> (Vec<String>, Vec<Record>, Vec<Record>) {
    let ids = ids_in_one_leaf(4);
    let at_parent: Vec<Record> = ids
        .iter()
        .zip(1..)
        .map(|(id, s)| record(id, 1, s))
        .collect();
    let mut at_child = at_parent.clone();
    at_child[0] = record(&ids[0], 2, 5);
    (ids, at_parent, at_child)
}

/// A child and its parent, the messages between them passed in memory.
struct Link {
    child_store: Mem,
    parent_store: Mem,
    child: ChildSession,
    parent: ParentSession,
    /// `(to the parent, message)`, in the order sent.
    sent: Vec<(bool, Message)>,
}

impl Link {
    /// Connects, both sides speaking at most `protocol`, and runs until quiet (the
    /// handshake compares digests: anti-entropy round 1).
    fn connect(child_store: Mem, parent_store: Mem, protocol: u16) -> Link {
        // Both are complete through the child's last seq: only anti-entropy finds what
        // differs.
        let complete = child_store.last_seq(city());
        parent_store
            .commit(WriteBatch {
                watermarks: vec![(province(), city(), complete)],
                ..WriteBatch::default()
            })
            .unwrap();
        // A CA that signed nothing: these sessions exchange no documents.
        let ca = rcgen::generate_simple_self_signed(vec!["ca".to_string()]).unwrap();
        let verifier = DocumentVerifier::new(&ca.cert.pem()).unwrap();
        let standards = Arc::new(StandardsCell::new(Standards::builtin()));
        let mut link = Link {
            child: ChildSession::new(city(), province(), 100, verifier.clone(), standards.clone()),
            parent: ParentSession::new(province(), city(), standards, verifier),
            child_store,
            parent_store,
            sent: Vec::new(),
        };
        let hello = Message::Hello {
            protocol: (MIN_PROTOCOL_VERSION, protocol),
            node: city(),
            store_id: link.child_store.identity.store_id,
        };
        link.run(vec![(true, hello)]);
        link
    }

    /// One more anti-entropy round.
    fn round(&mut self) {
        let actions = self.child.on_anti_entropy(&self.child_store).unwrap();
        let queue = self.perform(true, actions);
        self.run(queue);
    }

    fn run(&mut self, mut queue: Vec<(bool, Message)>) {
        while !queue.is_empty() {
            let (to_parent, message) = queue.remove(0);
            self.sent.push((to_parent, message.clone()));
            let actions = if to_parent {
                self.parent.handle(&self.parent_store, message).unwrap()
            } else {
                self.child.handle(&self.child_store, message).unwrap()
            };
            queue.extend(self.perform(!to_parent, actions));
        }
    }

    fn perform(&mut self, to_parent: bool, actions: Vec<Action>) -> Vec<(bool, Message)> {
        let store = if to_parent {
            &self.child_store
        } else {
            &self.parent_store
        };
        let mut out = Vec::new();
        for action in actions {
            match action {
                Action::Send(m) => out.push((to_parent, m)),
                Action::Commit { batch, then } => {
                    store.commit(batch).unwrap();
                    out.extend(then.into_iter().map(|m| (to_parent, m)));
                }
                Action::Close { reason, .. } => panic!("the session closed: {reason}"),
                Action::Event(_) => {}
            }
        }
        out
    }

    fn converged(&self) -> bool {
        self.child_store.digest(Some(city()), None) == self.parent_store.digest(Some(city()), None)
    }

    /// Every record the parent repaired down, as `(id, version)`.
    fn repaired_down(&self) -> Vec<(String, u64)> {
        self.sent
            .iter()
            .filter_map(|(to_parent, m)| match m {
                Message::Repair { records, .. } if !to_parent => Some(records),
                _ => None,
            })
            .flatten()
            .map(|r| (r.envelope.id.clone(), r.envelope.version))
            .collect()
    }
}

#[test]
fn the_parent_never_sends_down_its_older_copy_of_a_record_the_child_changed() {
    let (ids, at_parent, at_child) = one_leaf_with_a_change_at_the_child();
    let link = Link::connect(
        Mem::new(city(), at_child),
        Mem::new(province(), at_parent),
        PROTOCOL_VERSION,
    );
    assert_eq!(link.repaired_down(), Vec::new(), "{:?}", link.sent);
    assert!(link.converged());
    let key = RecordKey::of(Kind::Vacancy, &ids[0]);
    let held = link.parent_store.get_record(city(), key).unwrap().unwrap();
    assert_eq!(
        held.envelope.version, 2,
        "the parent took the child's newer version"
    );
}

/// A leaf where the child changed one record and lost another: the changed one goes up
/// at once, the lost one comes down in the next round, and no older copy ever does.
#[test]
fn a_lost_record_beside_a_changed_one_comes_down_in_the_next_round() {
    let (ids, at_parent, mut at_child) = one_leaf_with_a_change_at_the_child();
    at_child.remove(1);
    let mut link = Link::connect(
        Mem::new(city(), at_child),
        Mem::new(province(), at_parent),
        PROTOCOL_VERSION,
    );
    assert!(link.repaired_down().is_empty());
    link.round();
    assert_eq!(link.repaired_down(), vec![(ids[1].clone(), 1)]);
    assert!(link.converged());
}

/// A child holding an older version of its own record than its parent (its store went
/// back) gets the newer one back in the same round, once the parent has seen its copy.
#[test]
fn a_child_holding_an_older_version_gets_the_newer_one_back() {
    let ids = ids_in_one_leaf(3);
    let mut at_parent: Vec<Record> = ids
        .iter()
        .zip(1..)
        .map(|(id, s)| record(id, 1, s))
        .collect();
    let at_child = at_parent.clone();
    at_parent[0] = record(&ids[0], 2, 3);
    let link = Link::connect(
        Mem::new(city(), at_child),
        Mem::new(province(), at_parent),
        PROTOCOL_VERSION,
    );
    assert_eq!(link.repaired_down(), vec![(ids[0].clone(), 2)]);
    assert!(link.converged());
}

/// Many differences: version 4 descends to the sub-leaves and lists far fewer
/// fingerprints than version 3; with a version-3 or version-2 peer it reconciles as
/// before.
#[test]
fn version_4_lists_sub_leaves_when_much_differs_and_version_3_still_reconciles() {
    // About 4 records per leaf, a quarter of one per sub-leaf.
    let n = 16_000;
    let shared: Vec<Record> = (0..n)
        .map(|i| record(&format!("V-{i}"), 1, i + 1))
        .collect();
    let mut at_child = shared.clone();
    // 60 records the parent lacks, 30 the child changed, 10 the child lost.
    at_child.extend((n..n + 60).map(|i| record(&format!("V-{i}"), 1, i + 1)));
    for i in 0..30 {
        at_child[i * 7] = record(&format!("V-{}", i * 7), 2, n + 100 + i as u64);
    }
    at_child.retain(|r| !(500..510).any(|i| r.envelope.id == format!("V-{i}")));
    let mut listed = BTreeMap::new();
    for protocol in [2, 3, PROTOCOL_VERSION] {
        let mut link = Link::connect(
            Mem::new(city(), at_child.clone()),
            Mem::new(province(), shared.clone()),
            protocol,
        );
        for _ in 0..3 {
            if !link.converged() {
                link.round();
            }
        }
        assert!(link.converged(), "protocol {protocol}");
        let down = link.repaired_down();
        assert_eq!(down.len(), 10, "only the lost records come down: {down:?}");
        assert!(down.iter().all(|(_, v)| *v == 1));
        let deep = link.sent.iter().any(|(_, m)| {
            matches!(m, Message::Buckets { depth: 4, .. })
                || matches!(m, Message::Leaves { salt, .. } if salt & SUB_LEAF_SALT != 0)
        });
        assert_eq!(deep, protocol >= 4, "protocol {protocol}");
        let fingerprints: usize = link
            .sent
            .iter()
            .map(|(_, m)| match m {
                Message::Leaves { leaves, .. } => leaves.iter().map(|(_, f)| f.len()).sum(),
                _ => 0,
            })
            .sum();
        listed.insert(protocol, fingerprints);
    }
    assert!(
        listed[&PROTOCOL_VERSION] * 2 < listed[&3],
        "fingerprints listed per version: {listed:?}"
    );
}
