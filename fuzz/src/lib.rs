//! Shared pieces of the fuzz targets: the checks on a decoded body, a fixture of valid
//! records and signed documents, and a driver that feeds fuzzer bytes to a sans-IO
//! `ParentSession` over a real sled store.
//!
//! Every check here is an `assert!`: a violated property is a crash the fuzzer keeps.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use lmsync::core::codec;
use lmsync::core::model::document::StoredDocument;
use lmsync::core::model::document::{PILOT, POLICY, TARGET, reported_up};
use lmsync::core::model::ingest::IngestContext;
use lmsync::core::model::person::Pseudonymiser;
use lmsync::core::model::record::content_hash;
use lmsync::core::model::signature::DocumentVerifier;
use lmsync::core::model::standards::{Standards, StandardsCell};
use lmsync::core::model::{Envelope, Kind, MINISTRY, NodeCode, Record, RecordKey};
use lmsync::core::protocol::{Action, ParentSession};
use lmsync::core::reconcile::Digest;
use lmsync::core::store::{RecordWrite, Store, WriteBatch};
use lmsync::core::wire::{LeafFp, MAX_FRAME, Message, PROTOCOL_VERSION, decode_body, encode_frame};
use lmsync::node::storage::{SledStore, sled_options};

/// What must hold for any body the decoder accepts: within the frame limit, and a
/// canonical re-encoding, never longer than the input (bincode accepts over-long varints),
/// that decodes to the same message.
pub fn check_accepted(body: &[u8], m: &Message) {
    assert!(body.len() <= MAX_FRAME);
    let again = codec::encode(m).expect("a decoded message encodes");
    assert!(
        again.len() <= body.len(),
        "canonical encoding {} bytes, input {} bytes",
        again.len(),
        body.len()
    );
    assert_eq!(&decode_body(&again).expect("canonical bytes decode"), m);
}

fn code(s: &str) -> NodeCode {
    s.parse().expect("a valid code")
}

/// The codes the session target names.
pub const CODES: [&str; 6] = ["440100", "440300", "440000", "320200", "100000", "110000"];

/// Valid records and signed documents, built once per process.
pub struct Fixture {
    _dir: tempfile::TempDir,
    /// Trusts the fixture's CA.
    pub verifier: DocumentVerifier,
    /// The built-in standards.
    pub standards: Arc<StandardsCell>,
    /// Valid records of 440100, 440300 and 320200 (unique keys, seq = position + 1).
    pub pool: BTreeMap<NodeCode, Vec<Record>>,
    /// Validly signed documents of the ministry, province 440000 and city 440100.
    pub docs: Vec<StoredDocument>,
}

/// A temporary directory, in memory when the machine has /dev/shm.
pub fn scratch_dir(prefix: &str) -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix);
    if shm.is_dir() {
        builder.tempdir_in(shm).expect("tempdir in /dev/shm")
    } else {
        builder.tempdir().expect("tempdir")
    }
}

/// The process-wide fixture.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = scratch_dir("lmsync-fuzz-fixture");
        let ca = dir.path().join("ca");
        lmsync::node::pki::init_ca(&ca).expect("CA");
        let verifier =
            DocumentVerifier::new(&std::fs::read_to_string(ca.join("ca.crt")).expect("ca.crt"))
                .expect("verifier");
        let standards = Standards::builtin();
        let pool = ["440100", "440300", "320200"]
            .map(code)
            .into_iter()
            .map(|o| (o, valid_records(o, &standards)))
            .collect();
        let mut docs = Vec::new();
        for (issuer, kinds) in [
            (MINISTRY, &[POLICY, TARGET][..]),
            (code("440000"), &[PILOT, TARGET, POLICY][..]),
            (code("440100"), &[PILOT][..]),
        ] {
            let out = dir.path().join(format!("pki-{issuer}"));
            lmsync::node::pki::issue(&ca, issuer, &out, 1).expect("issue");
            let cert = std::fs::read_to_string(out.join("node.crt")).expect("node.crt");
            let key = std::fs::read_to_string(out.join("node.key")).expect("node.key");
            for (i, kind) in kinds.iter().enumerate() {
                let mut doc = StoredDocument {
                    kind: (*kind).to_string(),
                    id: format!("D-{issuer}-{i}"),
                    issuer,
                    version: 1 + i as u64,
                    body: format!("{{\"n\":{i}}}"),
                    certificate: Vec::new(),
                    signature: Vec::new(),
                };
                lmsync::core::model::signature::sign(&mut doc, &cert, &key).expect("sign");
                docs.push(doc);
            }
        }
        Fixture {
            _dir: dir,
            verifier,
            standards: Arc::new(StandardsCell::new(standards)),
            pool,
            docs,
        }
    })
}

fn valid_records(owner: NodeCode, standards: &Standards) -> Vec<Record> {
    let key = Pseudonymiser::new([5; 32], 1);
    let cx = IngestContext::new(owner, standards, Some(&key));
    let mut per_kind = [0usize; Kind::ALL.len()];
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for value in lmsync::tooling::synth::Generator::new(owner, 11).take(5_000) {
        if per_kind.iter().all(|n| *n >= 3) {
            break;
        }
        let Ok(draft) = cx.draft(value) else { continue };
        let kind = draft.data.kind();
        if per_kind[kind.index()] >= 6 || !seen.insert(RecordKey::of(kind, &draft.id)) {
            continue;
        }
        per_kind[kind.index()] += 1;
        let hash = content_hash(owner, &draft.id, draft.status, &draft.data).expect("hash");
        out.push(Record {
            envelope: Envelope {
                owner,
                kind,
                id: draft.id,
                version: 1,
                seq: out.len() as u64 + 1,
                status: draft.status,
                recorded_at_ms: 930_787_200_000,
                code_refs: standards.code_refs(),
                hash,
            },
            data: draft.data,
        });
    }
    out
}

/// Reads fuzzer bytes as parameters; zeros once they run out.
pub struct Bytes<'a>(pub &'a [u8]);

impl Bytes<'_> {
    /// One byte.
    pub fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    /// A little-endian u16.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    /// A u64: small most of the time, any value when the first byte says so.
    pub fn num(&mut self) -> u64 {
        match self.u8() {
            b @ 0..=239 => u64::from(b % 12),
            240..=247 => u64::MAX - u64::from(self.u8() % 2),
            _ => u64::from_le_bytes(std::array::from_fn(|_| self.u8())),
        }
    }
    /// `n` raw bytes (fewer when the input ends).
    pub fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
    /// True when nothing is left.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn pick_code(b: &mut Bytes<'_>) -> NodeCode {
    code(CODES[usize::from(b.u8()) % CODES.len()])
}

fn pick_records(b: &mut Bytes<'_>, owner: NodeCode, from: u64, to: u64) -> Vec<Record> {
    let fx = fixture();
    let all: Vec<&Record> = fx.pool.values().flatten().collect();
    let own: Vec<&Record> = fx
        .pool
        .get(&owner)
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    let n = b.u8() % 5;
    let span = to.saturating_sub(from).saturating_add(1);
    (0..n)
        .map(|_| {
            let choice = b.u16();
            let source = if own.is_empty() || choice & 0x8000 != 0 {
                &all
            } else {
                &own
            };
            let mut r = source[usize::from(choice) % source.len()].clone();
            r.envelope.seq = from.saturating_add(u64::from(b.u8()) % span);
            match b.u8() {
                0..=199 => {}
                200..=209 => r.envelope.version = b.num(),
                210..=219 => r.envelope.hash.0[usize::from(b.u8() % 32)] ^= 1,
                220..=229 => r.envelope.owner = pick_code(b),
                230..=239 => r.envelope.id.push('x'),
                _ => r.envelope.kind = Kind::ALL[usize::from(b.u8()) % Kind::ALL.len()],
            }
            r
        })
        .collect()
}

/// A message a child could send, built from fuzzer bytes (so that sessions get deep
/// faster than from raw bytes alone).
fn structured(b: &mut Bytes<'_>, child: NodeCode, op: u8) -> Message {
    let fx = fixture();
    match op % 13 {
        0 => Message::Hello {
            protocol: (PROTOCOL_VERSION, PROTOCOL_VERSION),
            node: child,
            store_id: [b.u8() % 3; 16],
        },
        1 => Message::Offer {
            owners: (0..b.u8() % 4).map(|_| (pick_code(b), b.num())).collect(),
        },
        2 => {
            let owner = pick_code(b);
            let from = b.num();
            let to = from.saturating_add(u64::from(b.u8() % 4));
            Message::Batch {
                owner,
                from,
                to,
                records: pick_records(b, owner, from, to),
            }
        }
        3 => Message::Digests {
            owners: (0..b.u8() % 4)
                .map(|_| (pick_code(b), b.num(), b.num(), u128::from(b.num())))
                .collect(),
        },
        4 => {
            let parents: Vec<u16> = (0..b.u8() % 3).map(|_| u16::from(b.u8() % 16)).collect();
            let buckets = (0..parents.len() * 16)
                .map(|_| (u32::from(b.u8() % 3), u64::from(b.u8() % 3)))
                .collect();
            Message::Buckets {
                owner: pick_code(b),
                depth: 2,
                parents,
                buckets,
            }
        }
        5 => Message::Leaves {
            owner: pick_code(b),
            salt: b.num(),
            leaves: (0..b.u8() % 3)
                .map(|_| {
                    let leaf = b.u16() % 4096;
                    let fps: Vec<LeafFp> = (0..b.u8() % 4)
                        .map(|_| std::array::from_fn(|_| b.u8()))
                        .collect();
                    (leaf, fps)
                })
                .collect(),
        },
        6 => {
            let owner = pick_code(b);
            Message::Repair {
                owner,
                records: pick_records(b, owner, 1, 40),
            }
        }
        7 => Message::Restore {
            owner: if b.u8() < 200 { child } else { pick_code(b) },
            after: b.num(),
        },
        8 => Message::Ack {
            owner: child,
            through: b.num(),
            ministry: b.num(),
        },
        9 => {
            let mut d = fx.docs[usize::from(b.u8()) % fx.docs.len()].clone();
            match b.u8() % 8 {
                0 => d.version = b.num(),
                1 => d.body.push(' '),
                2 => d.issuer = pick_code(b),
                3 => {
                    let i = usize::from(b.u8()) % d.signature.len();
                    d.signature[i] ^= 1;
                }
                _ => {}
            }
            Message::Document(d)
        }
        10 => Message::Documents {
            have: (0..b.u8() % 3)
                .map(|_| {
                    let d = &fx.docs[usize::from(b.u8()) % fx.docs.len()];
                    (d.kind.clone(), d.id.clone(), b.num())
                })
                .collect(),
        },
        11 => Message::DocumentsReturned {
            count: u32::from(b.u8()),
        },
        _ => Message::Ping,
    }
}

/// Checks that `action` from a parent serving `child` is well-formed and authorised.
fn check_action(action: &Action, me: NodeCode, child: NodeCode, verifier: &DocumentVerifier) {
    let sendable = |m: &Message| {
        let frame = encode_frame(m).expect("encodes");
        assert!(
            frame.len() - 4 <= MAX_FRAME,
            "frame of {} bytes",
            frame.len()
        );
        assert_eq!(&decode_body(&frame[4..]).expect("decodes"), m);
        match m {
            Message::Want { owner, .. } | Message::Ack { owner, .. } => {
                assert!(owner.is_within(child))
            }
            Message::Buckets {
                owner,
                parents,
                buckets,
                ..
            } => {
                assert!(owner.is_within(child));
                assert_eq!(buckets.len(), parents.len() * 16);
            }
            Message::Batch { owner, records, .. } => {
                assert_eq!(*owner, child, "restores only the child's own records");
                assert!(records.iter().all(|r| r.envelope.owner == child));
            }
            Message::Restored { owner, .. } => assert_eq!(*owner, child),
            Message::Fetch { owner, .. } => assert!(owner.is_within(child)),
            Message::Welcome { .. }
            | Message::Documents { .. }
            | Message::DocumentsHeld { .. }
            | Message::Document(_) => {}
            other => panic!("a parent does not send {other:?}"),
        }
    };
    match action {
        Action::Send(m) => sendable(m),
        Action::Commit { batch, then } => {
            for w in &batch.records {
                assert!(w.record.envelope.owner.is_within(child));
                assert!(w.record.verify_hash().unwrap_or(false));
            }
            for q in &batch.quarantine {
                assert!(q.record.envelope.owner.is_within(child));
            }
            for (peer, owner, _) in &batch.watermarks {
                assert_eq!(*peer, me);
                assert!(owner.is_within(child));
            }
            for d in &batch.documents {
                // The child's reports, or this node's own documents given back.
                assert!((d.issuer == child && reported_up(&d.kind)) || d.issuer == me);
                assert!(verifier.verify(d).is_ok(), "stores a forged document");
            }
            assert!(batch.peer_store_ids.iter().all(|(p, _)| *p == child));
            assert!(batch.removals.is_empty() && batch.restore_pending.is_none());
            then.iter().for_each(sendable);
        }
        Action::Close { reason, .. } => assert!(!reason.is_empty()),
        Action::Event(_) => {}
    }
}

fn snapshot(store: &SledStore) -> BTreeMap<NodeCode, (Digest, u64, u64)> {
    let quarantine = store.quarantine_counts();
    CODES
        .map(code)
        .into_iter()
        .chain(store.owner_counts().into_keys())
        .chain(quarantine.keys().copied())
        .map(|o| {
            (
                o,
                (
                    store.digest(Some(o), None),
                    store.last_seq(o),
                    quarantine.get(&o).copied().unwrap_or(0),
                ),
            )
        })
        .collect()
}

/// Feeds `data` to a `ParentSession` over a fresh sled store.
///
/// Byte 0 picks the scenario (bit 0: the ministry serving province 440000, else province
/// 440000 serving city 440100; bit 1: greet first; bit 2: the child's store id is known;
/// bits 3–5: records preloaded per owner). Then, repeatedly, one byte: below 0x80 a raw
/// frame follows (a little-endian u16 length, then the body, decoded with `decode_body`);
/// from 0x80 a message built from the following bytes. A refused session is replaced by
/// a new one, as when the child dials again.
pub fn run_parent_session(data: &[u8]) {
    let fx = fixture();
    let mut b = Bytes(data);
    let flags = b.u8();
    let (me, child) = if flags & 1 != 0 {
        (MINISTRY, code("440000"))
    } else {
        (code("440000"), code("440100"))
    };
    let dir = scratch_dir("lmsync-fuzz-store");
    let store = SledStore::create(
        &dir.path().join("data"),
        me,
        [9; 16],
        0,
        sled_options(1 << 20),
    )
    .expect("store");
    // One commit for the whole preload: each commit is a flush and an fsync.
    let preload = usize::from((flags >> 3) & 7);
    let mut batch = WriteBatch::default();
    for owner in ["440100", "440300", "320200"].map(code) {
        if me == MINISTRY || owner != code("320200") {
            let records: Vec<Record> = fx.pool[&owner].iter().take(preload).cloned().collect();
            let last = records.last().map_or(0, |r| r.envelope.seq);
            batch
                .records
                .extend(records.into_iter().map(|record| RecordWrite {
                    record,
                    prev_fp: None,
                }));
            batch.watermarks.push((me, owner, last));
        }
    }
    if flags & 4 != 0 {
        batch.peer_store_ids.push((child, [1; 16]));
    }
    store.commit(batch).expect("preload");
    let before = snapshot(&store);
    let docs_before = store.documents().expect("documents");
    let watermarks_before: Vec<u64> = CODES
        .map(code)
        .iter()
        .map(|o| store.watermark(me, *o).expect("watermark"))
        .collect();
    let new_session = || ParentSession::new(me, child, fx.standards.clone(), fx.verifier.clone());
    let mut session = new_session();
    let mut pending: Option<Message> = (flags & 2 != 0).then(|| structured(&mut b, child, 0));
    let mut steps = 0;
    while steps < 64 {
        let message = match pending.take() {
            Some(m) => m,
            None if b.is_empty() => break,
            None => {
                let op = b.u8();
                if op < 0x80 {
                    let len = usize::from(b.u16());
                    let body = b.take(len);
                    match decode_body(body) {
                        Ok(m) => {
                            check_accepted(body, &m);
                            m
                        }
                        Err(_) => continue,
                    }
                } else {
                    let m = structured(&mut b, child, op);
                    let frame = encode_frame(&m).expect("encodes");
                    assert_eq!(decode_body(&frame[4..]).expect("decodes"), m);
                    m
                }
            }
        };
        steps += 1;
        let actions = session
            .handle(&store, message)
            .expect("a healthy store never fails a session");
        let mut closed = false;
        for action in &actions {
            assert!(!closed, "an action after Close");
            check_action(action, me, child, &fx.verifier);
            match action {
                Action::Commit { batch, .. } => {
                    store
                        .commit(batch.clone())
                        .expect("commit of a checked batch");
                }
                Action::Close { .. } => closed = true,
                _ => {}
            }
        }
        if closed {
            session = new_session();
        }
    }
    let after = snapshot(&store);
    for (owner, now) in &after {
        if !owner.is_within(child) {
            assert_eq!(
                before.get(owner),
                Some(now),
                "{child} changed {owner}'s records"
            );
        }
    }
    for (o, was) in CODES.map(code).iter().zip(watermarks_before) {
        if !o.is_within(child) {
            assert_eq!(store.watermark(me, *o).expect("watermark"), was);
        }
    }
    for d in store.documents().expect("documents") {
        if !docs_before.contains(&d) {
            assert!(fx.verifier.verify(&d).is_ok() && (d.issuer == child || d.issuer == me));
        }
    }
}

/// The protocol's descent of the bucket tree: depth 1 under the root, 2 under the differing
/// buckets, 3 (the leaves) under those; returns the differing leaves.
pub fn differing_leaves(
    a: &lmsync::core::reconcile::OwnerSummary,
    b: &lmsync::core::reconcile::OwnerSummary,
) -> Vec<u16> {
    let mut parents = vec![0u16];
    for depth in 1..=3 {
        parents = lmsync::core::reconcile::differing(
            &parents,
            &a.children(depth, &parents),
            &b.children(depth, &parents),
        );
    }
    parents
}
