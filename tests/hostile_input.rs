//! Hostile input to the sync protocol, as property tests (RELIABILITY.md test plan item 6).
//!
//! - Every `Message` variant, generated with arbitrary contents, survives
//!   `encode_frame` → `frame_len` → `decode_body` unchanged; a valid body with trailing
//!   bytes, a truncated body and a length prefix over `MAX_FRAME` are refused.
//! - Arbitrary and mutated bodies never panic the decoder; whatever it accepts re-encodes
//!   to a canonical body no longer than the input that decodes to the same message (bincode
//!   accepts over-long varints, so received bytes are never compared, re-encodings are).
//! - The 10-byte "2^40-length vector" frame of RELIABILITY §2.10 is refused without
//!   allocating it (regression test).
//! - A sans-IO `ParentSession` over a real sled store, fed any sequence of messages from a
//!   hostile child (with or without a `Hello`), never panics, returns only well-formed
//!   actions, and never stores a record, quarantine entry or watermark of an owner outside
//!   the child's subtree, nor a document whose signature does not verify. A `ChildSession`
//!   fed any messages from a hostile parent does not panic either and stores only its own
//!   restored records and verified documents from above.
//! - Descending the 16-way bucket tree with `reconcile::differing` finds exactly the symmetric
//!   difference of two record sets.
//!
//! Cases are capped for CI (a debug build on two cores); `PROPTEST_CASES=N` runs N cases of
//! every property for a long mode. The RNG seed is fixed unless `PROPTEST_RNG_SEED` is set,
//! so a failure reproduces; proptest also persists failing inputs beside this file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;
use std::time::Instant;

use bincode::error::DecodeError;
use lmsync::core::codec::{self, CodecError};
use lmsync::core::model::document::StoredDocument;
use lmsync::core::model::document::{PILOT, issued_above, reported_up};
use lmsync::core::model::record::CodeRef;
use lmsync::core::model::signature::DocumentVerifier;
use lmsync::core::model::tables::PROVINCES;
use lmsync::core::model::{Envelope, Hash32, Kind, MINISTRY, NodeCode, Record, RecordKey, Status};
use lmsync::core::protocol::{Action, ChildSession, Event, ParentSession};
use lmsync::core::reconcile::{Bucket, Change, OwnerSummary, differing};
use lmsync::core::store::{RecordWrite, Store, WriteBatch};
use lmsync::core::wire::{
    FrameError, LeafFp, MAX_FRAME, Message, PROTOCOL_VERSION, RefusalCode, decode_body,
    encode_frame, frame_len,
};
use lmsync::node::storage::{SledStore, sled_options};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed, TestCaseError, TestRunner};

// ---------------------------------------------------------------------------------------
// Running properties

/// Seed used unless `PROPTEST_RNG_SEED` says otherwise.
const SEED: u64 = 0x6c6d_7379_6e63;

/// A proptest config with `cases` cases (or `PROPTEST_CASES`) and a fixed seed (or
/// `PROPTEST_RNG_SEED`).
fn config(cases: u32) -> Config {
    let base = Config::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() {
        base.cases
    } else {
        cases
    };
    let rng_seed = match base.rng_seed {
        RngSeed::Random => RngSeed::Fixed(SEED),
        fixed => fixed,
    };
    Config {
        cases,
        rng_seed,
        source_file: Some(file!()),
        // Failing inputs are kept beside this file (tests/ has no lib.rs to find).
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        // A session case opens a sled store: shrinking must not run for minutes.
        max_shrink_time: 60_000,
        ..base
    }
}

/// Runs one property and prints a one-line figure (cases, seed, time).
fn check<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let config = config(cases);
    let seed = config.rng_seed;
    let mut runner = TestRunner::new(config);
    let ran = Cell::new(0u64);
    let start = Instant::now();
    let result = runner.run(&strategy, |value| {
        ran.set(ran.get() + 1);
        test(value)
    });
    if let Err(e) = result {
        panic!("{name}: {e} (seed {seed}; replay with PROPTEST_RNG_SEED)");
    }
    println!(
        "{name}: cases={} seed={seed} elapsed_ms={}",
        ran.get(),
        start.elapsed().as_millis()
    );
}

// ---------------------------------------------------------------------------------------
// Fixture: valid records, signed documents, a CA

fn code(s: &str) -> NodeCode {
    s.parse().unwrap()
}

const CITY: &str = "440100";
const SIBLING: &str = "440300";
const PROVINCE: &str = "440000";
const OUTSIDER: &str = "320200";

// The fixture is the fuzz targets' own (`fuzz/src/lib.rs`): the property tests and the
// fuzzers start from the same valid records and signed documents.
#[allow(dead_code, clippy::expect_used, unreachable_pub)]
#[path = "../fuzz/src/lib.rs"]
mod fuzzkit;

use fuzzkit::{differing_leaves, fixture, scratch_dir};

// ---------------------------------------------------------------------------------------
// Strategies

fn province_codes() -> Vec<u32> {
    PROVINCES.iter().map(|(p, _, _)| *p).collect()
}

/// Any valid node code.
fn node_code() -> BoxedStrategy<NodeCode> {
    prop_oneof![
        1 => Just(MINISTRY),
        2 => prop::sample::select(province_codes()).prop_map(|p| NodeCode::new(p).unwrap()),
        5 => (
            prop::sample::select(province_codes()),
            prop_oneof![1u32..=70, Just(90u32)],
            0u32..100,
        )
            .prop_map(|(p, pre, county)| NodeCode::new(p + pre * 100 + county).unwrap()),
    ]
    .boxed()
}

/// Numbers as a hostile peer picks them: mostly small (so that they hit real seqs), some
/// at the edges, some anywhere.
fn num() -> BoxedStrategy<u64> {
    prop_oneof![
        6 => 0u64..8,
        1 => Just(u64::MAX),
        1 => Just(u64::MAX - 1),
        2 => any::<u64>(),
    ]
    .boxed()
}

fn text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "[a-z_0-9-]{0,12}",
        1 => "\\PC{0,24}",
        1 => any::<String>(),
    ]
    .boxed()
}

fn status() -> impl Strategy<Value = Status> {
    prop::sample::select(vec![
        Status::Active,
        Status::Closed,
        Status::Withdrawn,
        Status::Voided,
    ])
}

fn kind() -> impl Strategy<Value = Kind> {
    prop::sample::select(Kind::ALL.to_vec())
}

fn refusal_code() -> impl Strategy<Value = RefusalCode> {
    prop::sample::select(vec![
        RefusalCode::Version,
        RefusalCode::Identity,
        RefusalCode::Unauthorised,
        RefusalCode::Protocol,
        RefusalCode::Unavailable,
    ])
}

fn pool_records() -> Vec<Record> {
    fixture().pool.values().flatten().cloned().collect()
}

/// A record of any owner: the data of a valid record (so every `RecordData` variant
/// occurs) under an arbitrary envelope.
fn arbitrary_record() -> BoxedStrategy<Record> {
    let envelope = (
        node_code(),
        kind(),
        text(),
        num(),
        num(),
        status(),
        any::<i64>(),
        prop::collection::vec(
            (text(), text()).prop_map(|(scheme, version)| CodeRef { scheme, version }),
            0..3,
        ),
        any::<[u8; 32]>(),
    )
        .prop_map(
            |(owner, kind, id, version, seq, status, recorded_at_ms, code_refs, hash)| Envelope {
                owner,
                kind,
                id,
                version,
                seq,
                status,
                recorded_at_ms,
                code_refs,
                hash: Hash32(hash),
            },
        );
    (
        prop::sample::select(pool_records()),
        envelope,
        any::<bool>(),
    )
        .prop_map(|(valid, envelope, keep)| {
            if keep {
                valid
            } else {
                Record {
                    envelope,
                    data: valid.data,
                }
            }
        })
        .boxed()
}

/// How a hostile peer may spoil a valid record.
#[derive(Debug, Clone, Copy)]
enum Spoil {
    None,
    Owner(NodeCode),
    Hash(usize),
    Kind(Kind),
    Id,
    Data(usize),
    Version(u64),
}

fn spoil() -> impl Strategy<Value = Spoil> {
    prop_oneof![
        8 => Just(Spoil::None),
        1 => node_code().prop_map(Spoil::Owner),
        1 => (0usize..32).prop_map(Spoil::Hash),
        1 => kind().prop_map(Spoil::Kind),
        1 => Just(Spoil::Id),
        1 => any::<usize>().prop_map(Spoil::Data),
        2 => num().prop_map(Spoil::Version),
    ]
}

fn spoiled(mut r: Record, how: Spoil) -> Record {
    match how {
        Spoil::None => {}
        Spoil::Owner(o) => r.envelope.owner = o,
        Spoil::Hash(i) => r.envelope.hash.0[i] ^= 0x55,
        Spoil::Kind(k) => r.envelope.kind = k,
        Spoil::Id => r.envelope.id.push('x'),
        Spoil::Data(i) => {
            let all = pool_records();
            r.data = all[i % all.len()].data.clone();
        }
        // The version is outside the content hash: a newer version stays valid.
        Spoil::Version(v) => r.envelope.version = v,
    }
    r
}

/// Records of `owner` as its child would send them for seqs `from..=to`: valid records
/// of that owner (when there are any) with seqs in the range, some spoiled.
fn records_for(owner: NodeCode, from: u64, to: u64) -> BoxedStrategy<Vec<Record>> {
    let own = fixture().pool.get(&owner).cloned().unwrap_or_default();
    let source = if own.is_empty() { pool_records() } else { own };
    let span = to.saturating_sub(from).saturating_add(1);
    prop::collection::vec((prop::sample::select(source), any::<u64>(), spoil()), 0..5)
        .prop_map(move |picks| {
            let mut out: Vec<Record> = Vec::new();
            for (r, at, how) in picks {
                let mut r = spoiled(r, how);
                r.envelope.seq = from.saturating_add(at % span);
                out.push(r);
            }
            out
        })
        .boxed()
}

/// A document: validly signed, signed then altered, or arbitrary.
fn document() -> BoxedStrategy<StoredDocument> {
    let docs = fixture().docs.clone();
    let arbitrary = (
        text(),
        text(),
        node_code(),
        num(),
        text(),
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec(any::<u8>(), 0..72),
    )
        .prop_map(
            |(kind, id, issuer, version, body, certificate, signature)| StoredDocument {
                kind,
                id,
                issuer,
                version,
                body,
                certificate,
                signature,
            },
        );
    prop_oneof![
        3 => prop::sample::select(docs.clone()),
        2 => (prop::sample::select(docs.clone()), 0u8..7, num(), node_code(), any::<usize>())
            .prop_map(|(mut d, what, n, issuer, i)| {
                match what {
                    0 => d.version = n,
                    1 => d.issuer = issuer,
                    2 => d.body.push(' '),
                    3 => d.kind = PILOT.into(),
                    4 => { let l = d.signature.len(); d.signature[i % l] ^= 1; }
                    5 => { let l = d.certificate.len(); d.certificate[i % l] ^= 1; }
                    _ => d.certificate.truncate(i % 64),
                }
                d
            }),
        1 => arbitrary,
    ]
    .boxed()
}

fn store_id() -> BoxedStrategy<[u8; 16]> {
    prop_oneof![3 => (1u8..3).prop_map(|b| [b; 16]), 1 => any::<[u8; 16]>()].boxed()
}

fn leaf() -> BoxedStrategy<u16> {
    prop_oneof![4 => 0u16..4096, 1 => any::<u16>()].boxed()
}

fn leaves() -> BoxedStrategy<Vec<(u16, Vec<LeafFp>)>> {
    prop::collection::vec((leaf(), prop::collection::vec(any::<LeafFp>(), 0..6)), 0..5).boxed()
}

/// `(depth, parents, buckets)`: mostly consistent (16 buckets per parent), sometimes not.
/// `(depth, parents, buckets)` of a `Buckets` message.
type BucketsParts = (u8, Vec<u16>, Vec<(u32, u64)>);

fn buckets() -> BoxedStrategy<BucketsParts> {
    let depth = prop_oneof![6 => 1u8..=3, 1 => any::<u8>()];
    let parents = prop_oneof![
        3 => prop::collection::vec(0u16..16, 0..3),
        2 => prop::collection::vec(0u16..256, 0..3),
        1 => prop::collection::vec(any::<u16>(), 0..3),
    ];
    let bucket = prop_oneof![4 => (0u32..4, 0u64..4), 1 => any::<(u32, u64)>()];
    (depth, parents, any::<bool>())
        .prop_flat_map(move |(depth, parents, consistent)| {
            let n = if consistent { parents.len() * 16 } else { 0 };
            let len = if consistent { n..n + 1 } else { 0..40 };
            (
                Just(depth),
                Just(parents),
                prop::collection::vec(bucket.clone(), len),
            )
        })
        .boxed()
}

/// Records for a batch or repair of `owner` covering seqs `from..=to`.
type BatchFn = Rc<dyn Fn(NodeCode, u64, u64) -> BoxedStrategy<Vec<Record>>>;

/// What a generated message draws from: node codes, numbers, records, and how often
/// each variant occurs (in the enum's order).
#[derive(Clone)]
struct Domain {
    codes: BoxedStrategy<NodeCode>,
    nums: BoxedStrategy<u64>,
    batch: BatchFn,
    weights: [u32; VARIANTS],
}

/// Any message, drawn from `d`.
fn message_in(d: Domain) -> BoxedStrategy<Message> {
    let (c, n, w) = (d.codes, d.nums, d.weights);
    let (batch, batch2) = (d.batch.clone(), d.batch);
    prop_oneof![
        w[0] => (any::<(u16, u16)>(), c.clone(), store_id()).prop_map(|(protocol, node, store_id)| {
            Message::Hello { protocol, node, store_id }
        }),
        w[1] => (any::<u16>(), c.clone(), store_id()).prop_map(|(protocol, node, store_id)| {
            Message::Welcome { protocol, node, store_id }
        }),
        w[2] => (refusal_code(), text()).prop_map(|(code, reason)| Message::Refuse { code, reason }),
        w[3] => prop::collection::vec((c.clone(), n.clone()), 0..4)
            .prop_map(|owners| Message::Offer { owners }),
        w[4] => (c.clone(), n.clone()).prop_map(|(owner, after)| Message::Want { owner, after }),
        w[5] => (c.clone(), n.clone(), 0u64..4)
            .prop_flat_map(move |(owner, from, span)| {
                let to = from.saturating_add(span);
                (Just(owner), Just(from), Just(to), batch(owner, from, to))
            })
            .prop_map(|(owner, from, to, records)| Message::Batch { owner, from, to, records }),
        w[6] => (c.clone(), n.clone(), n.clone())
            .prop_map(|(owner, through, ministry)| Message::Ack { owner, through, ministry }),
        w[7] => document().prop_map(Message::Document),
        w[8] => Just(Message::Ping),
        w[9] => prop::collection::vec((c.clone(), n.clone(), n.clone(), any::<u128>()), 0..4)
            .prop_map(|owners| Message::Digests { owners }),
        w[10] => (c.clone(), buckets()).prop_map(|(owner, (depth, parents, buckets))| {
            Message::Buckets { owner, depth, parents, buckets }
        }),
        w[11] => (c.clone(), n.clone(), leaves())
            .prop_map(|(owner, salt, leaves)| Message::Leaves { owner, salt, leaves }),
        w[12] => (c.clone(), n.clone(), leaves())
            .prop_map(|(owner, salt, leaves)| Message::Fetch { owner, salt, leaves }),
        w[13] => c.clone()
            .prop_flat_map(move |owner| (Just(owner), batch2(owner, 0, u64::MAX)))
            .prop_map(|(owner, records)| Message::Repair { owner, records }),
        w[14] => prop::collection::vec((text(), text(), n.clone()), 0..4)
            .prop_map(|have| Message::Documents { have }),
        w[15] => (c.clone(), n.clone()).prop_map(|(owner, after)| Message::Restore { owner, after }),
        w[16] => (c, n).prop_map(|(owner, through)| Message::Restored { owner, through }),
        w[17] => any::<u32>().prop_map(|count| Message::DocumentsReturned { count }),
    ]
    .boxed()
}

/// Any message with arbitrary contents (for the codec), every variant equally often.
fn any_message() -> BoxedStrategy<Message> {
    message_in(Domain {
        codes: node_code(),
        nums: num(),
        batch: Rc::new(|_, _, _| prop::collection::vec(arbitrary_record(), 0..3).boxed()),
        weights: [1; VARIANTS],
    })
}

const VARIANTS: usize = 18;

// ---------------------------------------------------------------------------------------
// Codec and framing

/// What the decoder must guarantee for any body it accepts: within the frame limit, and a
/// canonical re-encoding (never longer) that decodes to the same message.
fn accepted_body_is_sane(body: &[u8], m: &Message) -> Result<(), TestCaseError> {
    prop_assert!(body.len() <= MAX_FRAME);
    let again = codec::encode(m).unwrap();
    prop_assert!(
        again.len() <= body.len(),
        "canonical encoding ({} bytes) longer than the accepted input ({} bytes)",
        again.len(),
        body.len()
    );
    prop_assert_eq!(&decode_body(&again).unwrap(), m);
    Ok(())
}

#[test]
fn every_variant_round_trips_through_a_frame() {
    let seen = std::sync::Mutex::new(BTreeSet::new());
    check("round_trip", 1024, any_message(), |m| {
        seen.lock().unwrap().insert(m.name());
        let frame = encode_frame(&m).unwrap();
        prop_assert!(frame.len() - 4 <= MAX_FRAME);
        let len = frame_len(frame[..4].try_into().unwrap()).unwrap();
        prop_assert_eq!(len, frame.len() - 4);
        let back = decode_body(&frame[4..]).unwrap();
        prop_assert_eq!(&back, &m);
        // Encoding is deterministic: the same value gives the same bytes.
        prop_assert_eq!(encode_frame(&back).unwrap(), frame);
        Ok(())
    });
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), VARIANTS, "every variant generated: {seen:?}");
}

#[test]
fn trailing_bytes_after_a_valid_body_are_refused() {
    let extra = prop::collection::vec(any::<u8>(), 1..16);
    check("trailing", 512, (any_message(), extra), |(m, extra)| {
        let mut body = codec::encode(&m).unwrap();
        body.extend_from_slice(&extra);
        match decode_body(&body) {
            Err(FrameError::Codec(CodecError::TrailingBytes { trailing })) => {
                prop_assert_eq!(trailing, extra.len());
            }
            other => prop_assert!(false, "expected TrailingBytes, got {other:?}"),
        }
        Ok(())
    });
}

#[test]
fn truncated_bodies_are_refused() {
    check(
        "truncated",
        512,
        (any_message(), any::<prop::sample::Index>()),
        |(m, cut)| {
            let body = codec::encode(&m).unwrap();
            let keep = cut.index(body.len());
            let result = decode_body(&body[..keep]);
            prop_assert!(
                result.is_err(),
                "{keep} of {} bytes decoded: {result:?}",
                body.len()
            );
            Ok(())
        },
    );
}

#[test]
fn length_prefixes_over_the_frame_limit_are_refused() {
    let limit = u32::try_from(MAX_FRAME).unwrap();
    check("frame_len", 1024, any::<u32>(), |len| {
        let expected = usize::try_from(len).unwrap();
        match frame_len(len.to_be_bytes()) {
            Ok(n) => {
                prop_assert!(len <= limit);
                prop_assert_eq!(n, expected);
            }
            Err(FrameError::TooLong(n)) => {
                prop_assert!(len > limit);
                prop_assert_eq!(n, expected);
            }
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
        Ok(())
    });
    assert!(matches!(
        frame_len((limit + 1).to_be_bytes()),
        Err(FrameError::TooLong(_))
    ));
    assert_eq!(frame_len(limit.to_be_bytes()).unwrap(), MAX_FRAME);
    // A body past the limit is refused before it is looked at.
    let huge = vec![0u8; MAX_FRAME + 1];
    assert!(matches!(decode_body(&huge), Err(FrameError::TooLong(_))));
}

#[test]
fn arbitrary_bytes_never_panic_the_decoder() {
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec(any::<u8>(), 0..1024),
        // A plausible variant tag first, so that decoding goes past the first byte.
        (0u8..17, prop::collection::vec(any::<u8>(), 0..256)).prop_map(|(tag, mut rest)| {
            rest.insert(0, tag);
            rest
        }),
    ];
    check("arbitrary_bytes", 4096, bytes, |body| {
        if let Ok(m) = decode_body(&body) {
            accepted_body_is_sane(&body, &m)?;
        }
        if body.len() >= 4 {
            let prefix: [u8; 4] = body[..4].try_into().unwrap();
            if let Ok(len) = frame_len(prefix) {
                let rest = &body[4..];
                if let Ok(m) = decode_body(&rest[..len.min(rest.len())]) {
                    accepted_body_is_sane(&rest[..len.min(rest.len())], &m)?;
                }
            }
        }
        Ok(())
    });
}

/// One edit of an encoded body.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(prop::sample::Index, u8),
    Set(prop::sample::Index, u8),
    Insert(prop::sample::Index, Vec<u8>),
    Remove(prop::sample::Index, usize),
    /// Replace one byte with a varint marker (0xfb..=0xfe: u16, u32, u64, u128 follow).
    Varint(prop::sample::Index, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let i = any::<prop::sample::Index>;
    prop_oneof![
        (i(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        (i(), any::<u8>()).prop_map(|(i, x)| Mutation::Set(i, x)),
        (i(), prop::collection::vec(any::<u8>(), 1..10)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (i(), 1usize..8).prop_map(|(i, n)| Mutation::Remove(i, n)),
        (i(), 0xfbu8..=0xfe).prop_map(|(i, x)| Mutation::Varint(i, x)),
    ]
}

fn mutate(body: &mut Vec<u8>, m: &Mutation) {
    if body.is_empty() {
        return;
    }
    match m {
        Mutation::Flip(i, x) => {
            let at = i.index(body.len());
            body[at] ^= x;
        }
        Mutation::Set(i, x) | Mutation::Varint(i, x) => {
            let at = i.index(body.len());
            body[at] = *x;
        }
        Mutation::Insert(i, bytes) => {
            let at = i.index(body.len() + 1);
            body.splice(at..at, bytes.iter().copied());
        }
        Mutation::Remove(i, n) => {
            let at = i.index(body.len());
            let end = (at + n).min(body.len());
            body.drain(at..end);
        }
    }
}

#[test]
fn mutated_valid_bodies_never_panic_the_decoder() {
    let accepted = Cell::new(0u64);
    check(
        "mutated_bodies",
        4096,
        (any_message(), prop::collection::vec(mutation(), 1..4)),
        |(m, edits)| {
            let mut body = codec::encode(&m).unwrap();
            for e in &edits {
                mutate(&mut body, e);
            }
            if let Ok(decoded) = decode_body(&body) {
                accepted.set(accepted.get() + 1);
                accepted_body_is_sane(&body, &decoded)?;
            }
            Ok(())
        },
    );
    println!("mutated_bodies: accepted={}", accepted.get());
}

/// The 10-byte `Offer` body claiming 2^40 owners: variant 3, then the u64 varint
/// `fd 00 00 00 00 00 01 00 00` (RELIABILITY §2.10).
const VECTOR_2_POW_40: [u8; 10] = [3, 0xfd, 0, 0, 0, 0, 0, 1, 0, 0];

#[test]
fn regression_2_pow_40_length_vector_frame_is_refused_with_a_limit_error() {
    // RELIABILITY §2.10: bincode without a limit aborts the process allocating 1 TiB.
    let raw = [0xfd, 0, 0, 0, 0, 0, 1, 0, 0];
    let err = codec::decode::<String>(&raw).unwrap_err();
    assert!(
        matches!(err, CodecError::Decode(DecodeError::LimitExceeded)),
        "a 2^40-byte string is refused by the limit: {err:?}"
    );
    let err = codec::decode::<Vec<u8>>(&raw).unwrap_err();
    println!("2^40-byte Vec<u8>: refused with {err:?}");
    assert!(
        matches!(err, CodecError::Decode(_)),
        "a 2^40-byte vector is refused: {err:?}"
    );

    // The same claim inside a frame: the length prefix passes, the body is refused.
    let mut frame = u32::try_from(VECTOR_2_POW_40.len())
        .unwrap()
        .to_be_bytes()
        .to_vec();
    frame.extend_from_slice(&VECTOR_2_POW_40);
    assert_eq!(frame.len(), 14);
    let len = frame_len(frame[..4].try_into().unwrap()).unwrap();
    let err = decode_body(&frame[4..4 + len]).unwrap_err();
    assert!(
        matches!(err, FrameError::Codec(CodecError::Decode(_))),
        "{err:?}"
    );

    // Every container of every variant, claiming 2^40 entries or bytes right after the
    // fields before it: refused. Strings are claimed whole up front, so the limit refuses
    // them (`LimitExceeded`); sequences go through serde, which decodes element by element
    // (preallocating at most 1 MiB), so they end at the input's end (`UnexpectedEnd`).
    let claim = [0xfd, 0, 0, 0, 0, 0, 1, 0, 0];
    let owner = codec::encode(&code(CITY)).unwrap();
    let mut cases: Vec<(&str, Vec<u8>, bool)> = Vec::new();
    let with = |tag: u8, before: &[u8]| {
        let mut b = vec![tag];
        b.extend_from_slice(before);
        b.extend_from_slice(&claim);
        b
    };
    cases.push(("Refuse.reason", with(2, &[0]), true));
    cases.push(("Offer.owners", with(3, &[]), false));
    let mut batch = owner.clone();
    batch.extend_from_slice(&[1, 2]);
    cases.push(("Batch.records", with(5, &batch), false));
    cases.push(("Document.kind", with(7, &[]), true));
    cases.push(("Digests.owners", with(9, &[]), false));
    let mut buckets = owner.clone();
    buckets.push(2);
    cases.push(("Buckets.parents", with(10, &buckets), false));
    let mut leaves = owner.clone();
    leaves.push(0);
    cases.push(("Leaves.leaves", with(11, &leaves), false));
    cases.push(("Fetch.leaves", with(12, &leaves), false));
    cases.push(("Repair.records", with(13, &owner), false));
    cases.push(("Documents.have", with(14, &[]), false));
    for (what, body, is_string) in cases {
        let err = decode_body(&body).unwrap_err();
        println!("2^40 claim in {what}: refused with {err:?}");
        if is_string {
            assert!(
                matches!(
                    err,
                    FrameError::Codec(CodecError::Decode(DecodeError::LimitExceeded))
                ),
                "{what}: {err:?}"
            );
        } else {
            assert!(
                matches!(err, FrameError::Codec(CodecError::Decode(_))),
                "{what}: {err:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Sessions over a real sled store

/// Owners a hostile peer names: mostly those of the subtree at hand (`inside`), often
/// its neighbours, sometimes any code.
fn session_codes(inside: Vec<NodeCode>) -> BoxedStrategy<NodeCode> {
    prop_oneof![
        8 => prop::sample::select(inside),
        3 => prop::sample::select(vec![
            code(CITY),
            code(SIBLING),
            code(PROVINCE),
            code(OUTSIDER),
            MINISTRY,
            code("110000"),
        ]),
        1 => node_code(),
    ]
    .boxed()
}

/// Seqs near what the store holds (`held`), so that batches and acks line up.
fn session_nums(held: u64) -> BoxedStrategy<u64> {
    prop_oneof![4 => 0..=held + 3, 1 => num()].boxed()
}

/// What a child sends, by variant (the enum's order): mostly what a child may send.
const CHILD_SAYS: [u32; VARIANTS] = [1, 1, 1, 6, 1, 10, 2, 3, 1, 4, 4, 4, 1, 6, 3, 3, 1, 2];
/// What a parent sends, by variant.
const PARENT_SAYS: [u32; VARIANTS] = [1, 2, 1, 1, 8, 6, 6, 4, 1, 1, 6, 1, 6, 1, 3, 1, 3, 1];

/// A message as a hostile peer in these sessions sends it: plausible owners and seqs,
/// batches of valid (sometimes spoiled) records; now and then anything at all.
fn session_message(
    inside: Vec<NodeCode>,
    held: u64,
    weights: [u32; VARIANTS],
) -> BoxedStrategy<Message> {
    let domain = Domain {
        codes: session_codes(inside),
        nums: session_nums(held),
        batch: Rc::new(records_for),
        weights,
    };
    prop_oneof![8 => message_in(domain), 1 => any_message()].boxed()
}

/// The owners within `node`'s subtree that the tests use.
fn subtree(node: NodeCode) -> Vec<NodeCode> {
    [CITY, SIBLING, PROVINCE, OUTSIDER]
        .map(code)
        .into_iter()
        .filter(|o| o.is_within(node))
        .collect()
}

/// A store in a fresh scratch directory.
fn new_store(node: NodeCode, store_id: [u8; 16]) -> (tempfile::TempDir, SledStore) {
    let dir = scratch_dir("lmsync-hostile-store");
    let store = SledStore::create(
        &dir.path().join("data"),
        node,
        store_id,
        0,
        sled_options(1 << 20),
    )
    .unwrap();
    (dir, store)
}

/// Stores the first `n` pool records of `owner` and, when `mark` is set, the watermark
/// `(mark, owner, n)` that says they are complete here.
fn populate(store: &SledStore, owner: NodeCode, n: usize, mark: Option<NodeCode>) {
    let records: Vec<Record> = fixture().pool[&owner].iter().take(n).cloned().collect();
    let last = records.last().map_or(0, |r| r.envelope.seq);
    store
        .commit(WriteBatch {
            records: records
                .into_iter()
                .map(|record| RecordWrite {
                    record,
                    prev_fp: None,
                })
                .collect(),
            watermarks: mark.map(|m| vec![(m, owner, last)]).unwrap_or_default(),
            ..WriteBatch::default()
        })
        .unwrap();
}

/// What a store holds per owner, to compare before and after a session.
#[derive(Debug, Clone, PartialEq)]
struct OwnerView {
    digest: lmsync::core::reconcile::Digest,
    last_seq: u64,
    quarantined: u64,
}

fn view(store: &SledStore, owners: &BTreeSet<NodeCode>) -> BTreeMap<NodeCode, OwnerView> {
    let quarantine = store.quarantine_counts();
    owners
        .iter()
        .map(|o| {
            (
                *o,
                OwnerView {
                    digest: store.digest(Some(*o), None),
                    last_seq: store.last_seq(*o),
                    quarantined: quarantine.get(o).copied().unwrap_or(0),
                },
            )
        })
        .collect()
}

/// Every owner the store knows of, plus the codes the tests use.
fn known_owners(store: &SledStore) -> BTreeSet<NodeCode> {
    let mut owners: BTreeSet<NodeCode> = store.owner_counts().into_keys().collect();
    owners.extend(store.quarantine_counts().into_keys());
    owners.extend([CITY, SIBLING, PROVINCE, OUTSIDER, "110000"].map(code));
    owners.insert(MINISTRY);
    owners
}

/// Checks a message a session wants sent: it frames within the limit and round-trips.
fn sendable(m: &Message) -> Result<(), TestCaseError> {
    let frame = encode_frame(m).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert!(
        frame.len() - 4 <= MAX_FRAME,
        "{} of {} bytes",
        m.name(),
        frame.len()
    );
    prop_assert_eq!(&decode_body(&frame[4..]).unwrap(), m);
    Ok(())
}

/// The parent's side of one scenario.
#[derive(Debug, Clone)]
struct ParentCase {
    /// Parent is the ministry and the child province 440000; else province 440000 and
    /// city 440100.
    ministry: bool,
    /// The store id this parent remembers for the child, if any.
    known_id: Option<[u8; 16]>,
    /// Records pre-loaded per owner.
    preload: usize,
    /// Open with a correct `Hello` before the hostile messages.
    hello: Option<[u8; 16]>,
    script: Vec<Message>,
}

fn parent_case() -> impl Strategy<Value = ParentCase> {
    (any::<bool>(), 0usize..8)
        .prop_flat_map(|(ministry, preload)| {
            let child = if ministry { code(PROVINCE) } else { code(CITY) };
            let held = u64::try_from(preload).unwrap();
            (
                Just(ministry),
                prop::option::of(store_id()),
                Just(preload),
                prop::option::weighted(0.85, store_id()),
                prop::collection::vec(session_message(subtree(child), held, CHILD_SAYS), 1..24),
            )
        })
        .prop_map(|(ministry, known_id, preload, hello, script)| ParentCase {
            ministry,
            known_id,
            preload,
            hello,
            script,
        })
}

/// Totals over all parent cases, for the one-line figure.
#[derive(Debug, Default)]
struct Totals {
    messages: u64,
    commits: u64,
    records: u64,
    closes: u64,
    sends: u64,
    documents: u64,
    /// Why sessions were closed: code and the reason's first words.
    why: BTreeMap<String, u64>,
}

impl Totals {
    fn closed(&mut self, code: RefusalCode, reason: &str) {
        self.closes += 1;
        let head: Vec<&str> = reason.split_whitespace().take(4).collect();
        *self
            .why
            .entry(format!("{code:?}: {}", head.join(" ")))
            .or_default() += 1;
    }

    fn add(&mut self, t: Totals) {
        self.messages += t.messages;
        self.commits += t.commits;
        self.records += t.records;
        self.closes += t.closes;
        self.sends += t.sends;
        self.documents += t.documents;
        for (k, v) in t.why {
            *self.why.entry(k).or_default() += v;
        }
    }
}

fn check_parent_send(m: &Message, child: NodeCode) -> Result<(), TestCaseError> {
    sendable(m)?;
    let within = |o: &NodeCode| o.is_within(child);
    match m {
        Message::Welcome { .. }
        | Message::Documents { .. }
        | Message::DocumentsHeld { .. }
        | Message::Document(_) => {}
        Message::Want { owner, .. } | Message::Ack { owner, .. } => {
            prop_assert!(within(owner), "{m:?}")
        }
        Message::Buckets {
            owner,
            depth,
            parents,
            buckets,
        } => {
            prop_assert!(within(owner));
            prop_assert_eq!(buckets.len(), parents.len() * 16);
            match depth {
                1 => prop_assert_eq!(parents, &vec![0u16]),
                3 => prop_assert!(parents.iter().all(|p| *p < 256), "{parents:?}"),
                // Version 4: the sub-leaves of differing leaves.
                4 => prop_assert!(parents.iter().all(|p| *p < 4096), "{parents:?}"),
                _ => prop_assert!(false, "the parent sends depth 1, 3 or 4, not {depth}"),
            }
        }
        Message::Fetch { owner, leaves, .. } => {
            prop_assert!(within(owner));
            prop_assert!(leaves.iter().all(|(_, fps)| !fps.is_empty()));
        }
        // A restore returns the child's own records only, never a sibling's.
        Message::Batch {
            owner,
            from,
            to,
            records,
        } => {
            prop_assert_eq!(*owner, child);
            prop_assert!(from <= &to.saturating_add(1));
            for r in records {
                prop_assert_eq!(r.envelope.owner, child);
                prop_assert!((*from..=*to).contains(&r.envelope.seq));
            }
        }
        Message::Restored { owner, .. } => prop_assert_eq!(*owner, child),
        other => prop_assert!(false, "a parent does not send {}", other.name()),
    }
    Ok(())
}

fn check_parent_batch(
    batch: &WriteBatch,
    me: NodeCode,
    child: NodeCode,
    verifier: &DocumentVerifier,
) -> Result<(), TestCaseError> {
    for w in &batch.records {
        let e = &w.record.envelope;
        prop_assert!(e.owner.is_within(child), "stores {}'s record", e.owner);
        prop_assert!(
            w.record.verify_hash().unwrap(),
            "stores an unverified record"
        );
    }
    for q in &batch.quarantine {
        prop_assert!(q.record.envelope.owner.is_within(child));
        prop_assert_eq!(q.from, child);
    }
    for (peer, owner, _) in &batch.watermarks {
        prop_assert_eq!(*peer, me);
        prop_assert!(owner.is_within(child), "watermark of {owner}");
    }
    // Documents from a child: its reports, or this node's own given back.
    for d in &batch.documents {
        prop_assert!(
            (d.issuer == child && reported_up(&d.kind)) || d.issuer == me,
            "stores {}/{} of {}",
            d.kind,
            d.id,
            d.issuer
        );
        prop_assert!(verifier.verify(d).is_ok(), "stores a forged document");
    }
    for (peer, _) in &batch.peer_store_ids {
        prop_assert_eq!(*peer, child);
    }
    prop_assert!(batch.removals.is_empty() && batch.restore_pending.is_none());
    Ok(())
}

fn run_parent(case: ParentCase, totals: &std::sync::Mutex<Totals>) -> Result<(), TestCaseError> {
    let fx = fixture();
    let (me, child) = if case.ministry {
        (MINISTRY, code(PROVINCE))
    } else {
        (code(PROVINCE), code(CITY))
    };
    let (_dir, store) = new_store(me, [9; 16]);
    for owner in [CITY, SIBLING, OUTSIDER].map(code) {
        if case.ministry || owner != code(OUTSIDER) {
            populate(&store, owner, case.preload, Some(me));
        }
    }
    if let Some(id) = case.known_id {
        store
            .commit(WriteBatch {
                peer_store_ids: vec![(child, id)],
                ..WriteBatch::default()
            })
            .unwrap();
    }
    let owners = known_owners(&store);
    let before = view(&store, &owners);
    let documents_before = store.documents().unwrap();
    let watermarks_before: Vec<u64> = owners
        .iter()
        .map(|o| store.watermark(me, *o).unwrap())
        .collect();

    let new_session = || ParentSession::new(me, child, fx.standards.clone(), fx.verifier.clone());
    let mut session = new_session();
    // After a refusal the child dials again and, in most cases, greets properly.
    let hello = case.hello.map(|store_id| Message::Hello {
        protocol: (PROTOCOL_VERSION, PROTOCOL_VERSION),
        node: child,
        store_id,
    });
    let mut script: VecDeque<Message> = case.script.into();
    if let Some(h) = hello.clone() {
        script.push_front(h);
    }
    let mut t = Totals::default();
    while let Some(message) = script.pop_front() {
        t.messages += 1;
        let actions = session
            .handle(&store, message.clone())
            .map_err(|e| TestCaseError::fail(format!("store error on {message:?}: {e}")))?;
        let n = actions.len();
        let mut closed = false;
        for (i, action) in actions.into_iter().enumerate() {
            prop_assert!(!closed, "an action after Close");
            match action {
                Action::Send(m) => {
                    t.sends += 1;
                    check_parent_send(&m, child)?;
                }
                Action::Commit { batch, then } => {
                    check_parent_batch(&batch, me, child, &fx.verifier)?;
                    t.commits += 1;
                    t.records += u64::try_from(batch.records.len()).unwrap();
                    t.documents += u64::try_from(batch.documents.len()).unwrap();
                    store.commit(batch).map_err(|e| {
                        TestCaseError::fail(format!("commit after {message:?} failed: {e}"))
                    })?;
                    for m in &then {
                        prop_assert!(matches!(m, Message::Ack { .. }), "{m:?}");
                        check_parent_send(m, child)?;
                    }
                }
                Action::Close { code, reason } => {
                    prop_assert!(!reason.is_empty());
                    prop_assert_eq!(i + 1, n, "Close is the last action");
                    t.closed(code, &reason);
                    closed = true;
                }
                Action::Event(e) => check_event(&e, child)?,
            }
        }
        if closed {
            // The shell ends the connection; the child dials again.
            session = new_session();
            if let Some(h) = hello.clone().filter(|h| *h != message) {
                script.push_front(h);
            }
        }
    }

    // Nothing outside the child's subtree moved; documents only the child's or this node's
    // own, verified.
    let after = view(&store, &known_owners(&store));
    for (owner, now) in &after {
        let was = before.get(owner).cloned().unwrap_or(OwnerView {
            digest: lmsync::core::reconcile::Digest::default(),
            last_seq: 0,
            quarantined: 0,
        });
        if !owner.is_within(child) {
            prop_assert_eq!(&was, now, "{} changed records of {}", child, owner);
        }
    }
    for (o, was) in owners.iter().zip(watermarks_before) {
        if !o.is_within(child) {
            prop_assert_eq!(store.watermark(me, *o).unwrap(), was, "watermark of {}", o);
        }
    }
    for d in store.documents().unwrap() {
        if !documents_before.contains(&d) {
            prop_assert!(fx.verifier.verify(&d).is_ok() && (d.issuer == child || d.issuer == me));
        }
    }
    totals.lock().unwrap().add(t);
    Ok(())
}

fn check_event(e: &Event, peer_subtree: NodeCode) -> Result<(), TestCaseError> {
    match e {
        Event::Received { owner, .. }
        | Event::Repaired { owner, .. }
        | Event::Quarantined { owner, .. } => prop_assert!(owner.is_within(peer_subtree)),
        _ => {}
    }
    Ok(())
}

#[test]
fn parent_session_survives_a_hostile_child_and_stores_only_its_subtree() {
    let totals = std::sync::Mutex::new(Totals::default());
    check("parent_session", 192, parent_case(), |case| {
        run_parent(case, &totals)
    });
    let t = totals.into_inner().unwrap();
    println!(
        "parent_session: messages={} sends={} commits={} records_stored={} documents_stored={} closes={}",
        t.messages, t.sends, t.commits, t.records, t.documents, t.closes
    );
    println!("parent_session: closes by reason: {:?}", t.why);
    assert!(t.records > 0, "some cases got as far as storing records");
}

/// One step of a hostile parent's script at the child.
#[derive(Debug, Clone)]
enum ChildStep {
    Message(Message),
    Tick,
    AntiEntropy,
}

#[derive(Debug, Clone)]
struct ChildCase {
    /// The child is province 440000 (parent the ministry); else city 440100.
    province: bool,
    restore_pending: bool,
    preload: usize,
    welcome: bool,
    script: Vec<ChildStep>,
}

fn child_case() -> impl Strategy<Value = ChildCase> {
    (any::<bool>(), 0usize..8)
        .prop_flat_map(|(province, preload)| {
            let me = if province { code(PROVINCE) } else { code(CITY) };
            let held = u64::try_from(preload).unwrap();
            let step = prop_oneof![
                8 => session_message(subtree(me), held, PARENT_SAYS).prop_map(ChildStep::Message),
                1 => Just(ChildStep::Tick),
                1 => Just(ChildStep::AntiEntropy),
            ];
            (
                Just(province),
                prop::bool::weighted(0.3),
                Just(preload),
                prop::bool::weighted(0.85),
                prop::collection::vec(step, 1..24),
            )
        })
        .prop_map(
            |(province, restore_pending, preload, welcome, script)| ChildCase {
                province,
                restore_pending,
                preload,
                welcome,
                script,
            },
        )
}

fn run_child(case: ChildCase, totals: &std::sync::Mutex<Totals>) -> Result<(), TestCaseError> {
    let fx = fixture();
    let (me, parent) = if case.province {
        (code(PROVINCE), MINISTRY)
    } else {
        (code(CITY), code(PROVINCE))
    };
    let (_dir, store) = new_store(me, [3; 16]);
    populate(
        &store,
        code(CITY),
        case.preload,
        case.province.then_some(me),
    );
    if case.province {
        populate(&store, code(SIBLING), case.preload, Some(me));
    }
    if case.restore_pending {
        store
            .commit(WriteBatch {
                restore_pending: Some(true),
                ..WriteBatch::default()
            })
            .unwrap();
    }
    let owners = known_owners(&store);
    let before = view(&store, &owners);
    let documents_before = store.documents().unwrap();
    let new_session =
        || ChildSession::new(me, parent, 3, fx.verifier.clone(), fx.standards.clone());
    let mut session = new_session();
    for m in session.start(&store) {
        match m {
            Action::Send(m) => sendable(&m)?,
            other => prop_assert!(false, "start: {other:?}"),
        }
    }
    // After a refusal the child dials again; the parent mostly welcomes it properly.
    let welcome = case.welcome.then_some(ChildStep::Message(Message::Welcome {
        protocol: PROTOCOL_VERSION,
        node: parent,
        store_id: [4; 16],
    }));
    let mut script: VecDeque<ChildStep> = case.script.into();
    if let Some(w) = welcome.clone() {
        script.push_front(w);
    }
    let mut t = Totals::default();
    while let Some(step) = script.pop_front() {
        t.messages += 1;
        let result = match step.clone() {
            ChildStep::Message(m) => session.handle(&store, m),
            ChildStep::Tick => session.on_tick(&store),
            ChildStep::AntiEntropy => session.on_anti_entropy(&store),
        };
        let actions =
            result.map_err(|e| TestCaseError::fail(format!("store error on {step:?}: {e}")))?;
        let mut closed = false;
        for action in actions {
            prop_assert!(!closed, "an action after Close");
            match action {
                Action::Send(m) => {
                    t.sends += 1;
                    sendable(&m)?;
                }
                Action::Commit { batch, then } => {
                    for w in &batch.records {
                        prop_assert_eq!(
                            w.record.envelope.owner,
                            me,
                            "a parent restores only the child's records"
                        );
                        prop_assert!(w.record.verify_hash().unwrap());
                    }
                    for (peer, _, _) in &batch.watermarks {
                        prop_assert!(
                            *peer == parent || *peer == MINISTRY,
                            "watermark for {}",
                            peer
                        );
                    }
                    for d in &batch.documents {
                        prop_assert!(
                            issued_above(d.issuer, me),
                            "{} is not above {}",
                            d.issuer,
                            me
                        );
                        prop_assert!(fx.verifier.verify(d).is_ok(), "stores a forged document");
                    }
                    t.commits += 1;
                    t.records += u64::try_from(batch.records.len()).unwrap();
                    t.documents += u64::try_from(batch.documents.len()).unwrap();
                    store.commit(batch).map_err(|e| {
                        TestCaseError::fail(format!("commit after {step:?} failed: {e}"))
                    })?;
                    for m in &then {
                        sendable(m)?;
                    }
                }
                Action::Close { code, reason } => {
                    prop_assert!(!reason.is_empty());
                    t.closed(code, &reason);
                    closed = true;
                }
                Action::Event(_) => {}
            }
        }
        if closed {
            session = new_session();
            if let (Some(w), ChildStep::Message(m)) = (welcome.clone(), &step)
                && !matches!(m, Message::Welcome { .. })
            {
                script.push_front(w);
            }
        }
    }
    let after = view(&store, &known_owners(&store));
    for (owner, now) in &after {
        if *owner != me {
            prop_assert_eq!(before.get(owner), Some(now), "records of {} changed", owner);
        }
    }
    for d in store.documents().unwrap() {
        if !documents_before.contains(&d) {
            prop_assert!(fx.verifier.verify(&d).is_ok() && issued_above(d.issuer, me));
        }
    }
    totals.lock().unwrap().add(t);
    Ok(())
}

#[test]
fn child_session_survives_a_hostile_parent() {
    let totals = std::sync::Mutex::new(Totals::default());
    check("child_session", 192, child_case(), |case| {
        run_child(case, &totals)
    });
    let t = totals.into_inner().unwrap();
    println!(
        "child_session: steps={} sends={} commits={} records_restored={} documents_stored={} closes={}",
        t.messages, t.sends, t.commits, t.records, t.documents, t.closes
    );
    println!("child_session: closes by reason: {:?}", t.why);
}

// ---------------------------------------------------------------------------------------
// Reconciliation

/// A record's identity and version: its key, kind and fingerprint.
fn fingerprint(kind: Kind, id: u32, version: u8) -> u128 {
    let mut h = blake3::Hasher::new_derive_key("lmsync hostile-input test fingerprint");
    h.update(&[kind as u8, version]);
    h.update(&id.to_le_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    u128::from_le_bytes(out)
}

type RecordSet = BTreeMap<RecordKey, (Kind, u128)>;

fn summary_of(set: &RecordSet) -> OwnerSummary {
    let mut s = OwnerSummary::default();
    for (key, (kind, fp)) in set {
        s.apply(&Change {
            key: *key,
            kind: *kind,
            fp: Some(*fp),
            prev_fp: None,
        });
    }
    s
}

/// Two record sets over a shared id space: records only in one, in both at the same
/// version, in both at different versions. Ids are few, so that leaves collide often.
fn two_sets() -> impl Strategy<Value = (RecordSet, RecordSet)> {
    let id_space = prop_oneof![1u32..64, 1u32..100_000];
    (
        id_space,
        prop::collection::vec((0usize..12, any::<u32>(), 0u8..4, 0u8..4), 0..200),
    )
        .prop_map(|(space, items)| {
            let (mut a, mut b) = (RecordSet::new(), RecordSet::new());
            for (k, id, va, vb) in items {
                let kind = Kind::ALL[k];
                let id = id % space;
                let key = RecordKey::of(kind, &id.to_string());
                // Version 0 means absent from that side.
                if va > 0 {
                    a.insert(key, (kind, fingerprint(kind, id, va)));
                }
                if vb > 0 {
                    b.insert(key, (kind, fingerprint(kind, id, vb)));
                }
            }
            (a, b)
        })
}

#[test]
fn bucket_tree_descent_finds_exactly_the_symmetric_difference() {
    check("recon_descent", 256, two_sets(), |(a, b)| {
        let (sa, sb) = (summary_of(&a), summary_of(&b));
        let leaves = differing_leaves(&sa, &sb);
        let mut sorted = leaves.clone();
        sorted.sort_unstable();
        sorted.dedup();
        prop_assert_eq!(&sorted, &leaves, "leaves in order, once each");
        prop_assert_eq!(&differing_leaves(&sb, &sa), &leaves, "symmetric");

        // The symmetric difference of (key, fingerprint) pairs.
        let pairs = |s: &RecordSet| -> BTreeSet<(RecordKey, u128)> {
            s.iter().map(|(k, (_, fp))| (*k, *fp)).collect()
        };
        let (pa, pb) = (pairs(&a), pairs(&b));
        let expected: BTreeSet<(RecordKey, u128)> = pa.symmetric_difference(&pb).copied().collect();
        let expected_leaves: BTreeSet<u16> = expected
            .iter()
            .map(|(k, _)| u16::try_from(k.bucket()).unwrap())
            .collect();
        prop_assert_eq!(
            leaves.iter().copied().collect::<BTreeSet<u16>>(),
            expected_leaves
        );
        // Comparing the differing leaves' contents (what Leaves/Fetch do) recovers all of it.
        let in_leaves = |s: &BTreeSet<(RecordKey, u128)>| -> BTreeSet<(RecordKey, u128)> {
            s.iter()
                .filter(|(k, _)| leaves.contains(&u16::try_from(k.bucket()).unwrap()))
                .copied()
                .collect()
        };
        let found: BTreeSet<(RecordKey, u128)> = in_leaves(&pa)
            .symmetric_difference(&in_leaves(&pb))
            .copied()
            .collect();
        prop_assert_eq!(found, expected);
        if a == b {
            prop_assert!(leaves.is_empty());
            prop_assert_eq!(sa.digest(None), sb.digest(None));
        }
        Ok(())
    });
}

#[test]
fn differing_never_panics_on_arbitrary_buckets() {
    let buckets = || {
        prop::collection::vec(
            prop_oneof![3 => (0u32..3, 0u64..3), 1 => any::<(u32, u64)>()]
                .prop_map(|(count, fp)| Bucket { count, fp }),
            0..80,
        )
    };
    // Parent indices lie below 4096 (a depth-2 index at most): `p * 16 + c` is a u16.
    let parents = prop::collection::vec(prop_oneof![0u16..16, 0u16..4096], 0..6);
    check(
        "differing",
        1024,
        (parents, buckets(), buckets()),
        |(parents, mine, theirs)| {
            let out = differing(&parents, &mine, &theirs);
            prop_assert!(out.len() <= parents.len() * 16);
            for d in &out {
                prop_assert!(parents.contains(&(d / 16)), "{d} under {parents:?}");
            }
            prop_assert_eq!(differing(&parents, &theirs, &mine), out);
            prop_assert!(differing(&parents, &mine, &mine).is_empty());
            Ok(())
        },
    );
}
