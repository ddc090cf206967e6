//! Anti-entropy cost: lmsync's bucket-tree reconciliation against negentropy 0.5 on the
//! same sets (`docs/PERFORMANCE.md`).
//!
//! Two sled stores in a temporary directory: a child (city 440100) and its parent (province
//! 440000), both holding the same n records of owner 440100, complete through the same seq
//! on both sides (so the fast path has nothing to send). Each case then introduces d
//! differences at random in key space: ⌈d/2⌉ records the parent is missing and ⌊d/2⌋
//! records the child holds in a newer version; the parent's watermark moves with the
//! child's last seq, so only anti-entropy can find them. The child and parent sessions
//! (`ChildSession`, `ParentSession`, sans-IO) then run in memory, in one process, with
//! every `Action::Commit` made durable in its store, until the owner's digests are equal.
//!
//! Figures per case:
//! - `bytes`: every anti-entropy frame (`Digests`, `Buckets`, `Leaves`, `Fetch`, `Repair`)
//!   as `encode_frame` produces it (4-byte length prefix included), both directions.
//! - `reconciliation bytes`: the same without the records inside `Repair` (the frames'
//!   own overhead stays): what finding the differences costs.
//! - `round_trips`: per anti-entropy round (one `on_anti_entropy` timer firing), the
//!   messages form flights, maximal runs of consecutive messages in one direction;
//!   round trips = ⌈flights / 2⌉ (a lone `Digests` answered by silence is 1), summed over
//!   the rounds needed to converge. negentropy: the number of client queries, each
//!   answered by the server (the client's last step produces no message).
//! - `time`: wall time of the whole exchange, sled reads and durable repairs included
//!   (the bench's own sizing of the repaired records left out), and of it the time spent
//!   repairing: every commit and the `Fetch` and `Repair` handlers (reading the fetched
//!   records, checking them, storing them). The rest is finding the differences. Per
//!   phase (message handled, commit, frame encoding) it is printed too.
//! - negentropy: the same records as 32-byte ids (blake3 of the record fingerprint, so
//!   a newer version is a different id on each side), all with timestamp 0 (the records'
//!   `recorded_at_ms`), `NegentropyStorageVector`, frame size limit 0 (the default:
//!   unlimited); bytes = every message both ways.
//! - the ratio: lmsync reconciliation bytes per difference ÷ negentropy bytes per
//!   difference (negentropy's messages carry ids only, no records).
//!
//! Run: `cargo bench --bench reconcile`. Env: `LMSYNC_RECON_N` (records per side,
//! default 1,000,000), `LMSYNC_RECON_D` (comma-separated differences, default
//! `0,1,100,10000`), `LMSYNC_RECON_SEED`, `LMSYNC_BENCH_DIR` (where the stores go,
//! default `.`), `LMSYNC_RECON_CACHE_MIB` (sled's cache per store, default the node's
//! 256). Without `--bench` (`cargo test --benches`) it runs a small smoke case.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss
)]

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use lmsync::core::codec;
use lmsync::core::model::ingest::IngestContext;
use lmsync::core::model::kinds::RecordData;
use lmsync::core::model::person::Pseudonymiser;
use lmsync::core::model::record::{CodeRef, content_hash};
use lmsync::core::model::signature::DocumentVerifier;
use lmsync::core::model::standards::{Standards, StandardsCell};
use lmsync::core::model::{Envelope, Kind, NodeCode, Record, Status};
use lmsync::core::protocol::{Action, ChildSession, Event, ParentSession};
use lmsync::core::store::{RecordWrite, Store, WriteBatch};
use lmsync::core::wire::{MAX_FRAME, Message, encode_frame};
use lmsync::node::storage::{SledStore, sled_options};
use negentropy::{Id, Negentropy, NegentropyStorageVector};
use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;

/// Records per commit while filling the stores.
const FILL_BATCH: usize = 10_000;
/// Records per `Repair` message (the daemon's default `sync.batch_records`).
const BATCH_RECORDS: usize = 1000;
/// sled's cache per store: the node's default (`LMSYNC_RECON_CACHE_MIB` to change it).
fn cache() -> u64 {
    (env_usize("LMSYNC_RECON_CACHE_MIB", 256) as u64) << 20
}
/// Anti-entropy rounds tried before declaring that the stores do not converge.
const MAX_ROUNDS: usize = 1000;

fn city() -> NodeCode {
    "440100".parse().unwrap()
}

fn province() -> NodeCode {
    "440000".parse().unwrap()
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// Builds records of owner 440100 quickly: ids `V-{i}`, data alternating between two
/// valid generated records of one kind by version (so each new version has a new hash).
struct Maker {
    kind: Kind,
    data: [RecordData; 2],
    refs: Vec<CodeRef>,
}

impl Maker {
    fn new() -> Self {
        let standards = Standards::builtin();
        let key = Pseudonymiser::new([7; 32], 1);
        let cx = IngestContext::new(city(), &standards, Some(&key));
        let drafts: Vec<_> = lmsync::tooling::synth::generate(city(), 2000, 1)
            .into_iter()
            .map(|v| cx.draft(v).expect("generated records are valid"))
            .collect();
        // Two different data of one kind, a vacancy if there are two.
        let mut kinds: Vec<Kind> = vec![Kind::Vacancy];
        kinds.extend(Kind::ALL);
        let (a, b) = kinds
            .iter()
            .find_map(|k| {
                let mut same = drafts.iter().filter(|d| d.data.kind() == *k);
                let a = same.next()?;
                let b = same.find(|d| d.data != a.data)?;
                Some((a.data.clone(), b.data.clone()))
            })
            .expect("two different generated records of one kind");
        Maker {
            kind: a.kind(),
            data: [a, b],
            refs: standards.code_refs(),
        }
    }

    fn record(&self, i: usize, version: u64, seq: u64) -> Record {
        let id = format!("V-{i}");
        let data = self.data[usize::from(version.is_multiple_of(2))].clone();
        let hash = content_hash(city(), &id, Status::Active, &data).unwrap();
        Record {
            envelope: Envelope {
                owner: city(),
                kind: self.kind,
                id,
                version,
                seq,
                status: Status::Active,
                recorded_at_ms: 0,
                code_refs: self.refs.clone(),
                hash,
            },
            data,
        }
    }
}

/// The two stores and what they hold once converged.
struct World {
    child: SledStore,
    parent: SledStore,
    maker: Maker,
    /// Fingerprint of the current version of record `V-{i}` (both sides, when in sync).
    fps: Vec<u128>,
    /// Its version.
    versions: Vec<u64>,
    /// Last seq of the owner; both sides are complete through it.
    seq: u64,
    /// Checks documents from above against a throwaway network CA.
    verifier: DocumentVerifier,
}

impl World {
    fn build(dir: &std::path::Path, n: usize) -> World {
        let child = SledStore::create(
            &dir.join("child"),
            city(),
            [1; 16],
            0,
            sled_options(cache()),
        )
        .unwrap();
        let parent = SledStore::create(
            &dir.join("parent"),
            province(),
            [2; 16],
            0,
            sled_options(cache()),
        )
        .unwrap();
        lmsync::node::pki::init_ca(&dir.join("ca")).unwrap();
        let ca = std::fs::read_to_string(dir.join("ca").join("ca.crt")).unwrap();
        let verifier = DocumentVerifier::new(&ca).unwrap();
        let maker = Maker::new();
        let mut fps = Vec::with_capacity(n);
        let mut start = 0;
        while start < n {
            let end = (start + FILL_BATCH).min(n);
            let records: Vec<RecordWrite> = (start..end)
                .map(|i| {
                    let r = maker.record(i, 1, i as u64 + 1);
                    fps.push(r.envelope.fingerprint());
                    RecordWrite {
                        record: r,
                        prev_fp: None,
                    }
                })
                .collect();
            let through = end as u64;
            std::thread::scope(|s| {
                let copy = records.clone();
                let parent = &parent;
                let up = s.spawn(move || {
                    parent
                        .commit(WriteBatch {
                            records: copy,
                            watermarks: vec![(province(), city(), through)],
                            ..WriteBatch::default()
                        })
                        .unwrap();
                });
                child
                    .commit(WriteBatch {
                        records,
                        ..WriteBatch::default()
                    })
                    .unwrap();
                up.join().unwrap();
            });
            start = end;
        }
        World {
            child,
            parent,
            maker,
            versions: vec![1; n],
            fps,
            seq: n as u64,
            verifier,
        }
    }

    /// Introduces `d` differences; returns the parent's fingerprints before them (the
    /// parent keeps those) for negentropy's sets.
    fn diverge(&mut self, d: usize, rng: &mut ChaCha8Rng) -> Vec<u128> {
        let before = self.fps.clone();
        let missing = d - d / 2;
        let changed = d / 2;
        let mut writes = Vec::with_capacity(d);
        for i in sample(rng, self.fps.len(), changed) {
            self.seq += 1;
            self.versions[i] += 1;
            let r = self.maker.record(i, self.versions[i], self.seq);
            let prev = self.fps[i];
            self.fps[i] = r.envelope.fingerprint();
            writes.push(RecordWrite {
                record: r,
                prev_fp: Some(prev),
            });
        }
        for _ in 0..missing {
            self.seq += 1;
            let i = self.fps.len();
            let r = self.maker.record(i, 1, self.seq);
            self.fps.push(r.envelope.fingerprint());
            self.versions.push(1);
            writes.push(RecordWrite {
                record: r,
                prev_fp: None,
            });
        }
        for chunk in writes.chunks(FILL_BATCH) {
            self.child
                .commit(WriteBatch {
                    records: chunk.to_vec(),
                    ..WriteBatch::default()
                })
                .unwrap();
        }
        // The parent believes it is complete through the child's last seq.
        self.parent
            .commit(WriteBatch {
                watermarks: vec![(province(), city(), self.seq)],
                ..WriteBatch::default()
            })
            .unwrap();
        assert_eq!(
            self.child.complete_through(city()).unwrap(),
            self.parent.complete_through(city()).unwrap(),
            "complete_through must be equal so that only anti-entropy runs"
        );
        before
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Child,
    Parent,
}

fn is_anti_entropy(m: &Message) -> bool {
    matches!(
        m,
        Message::Digests { .. }
            | Message::Buckets { .. }
            | Message::Leaves { .. }
            | Message::Fetch { .. }
            | Message::Repair { .. }
    )
}

/// Where the time of an exchange went: `(what, seconds)`, summed by name.
#[derive(Debug, Default)]
struct Phases(std::collections::BTreeMap<String, f64>);

impl Phases {
    fn add(&mut self, what: String, since: Instant) {
        *self.0.entry(what).or_default() += since.elapsed().as_secs_f64();
    }

    /// Seconds spent repairing: reading the fetched records, checking and storing them
    /// (every commit and the `Fetch`/`Repair` handlers).
    fn repairing(&self) -> f64 {
        self.0
            .iter()
            .filter(|(what, _)| {
                what.ends_with("commit")
                    || what.ends_with("handles Fetch")
                    || what.ends_with("handles Repair")
            })
            .fold(0.0, |sum, (_, secs)| sum + secs)
    }

    fn summary(&self) -> String {
        let mut by_time: Vec<_> = self.0.iter().collect();
        by_time.sort_by(|a, b| b.1.total_cmp(a.1));
        by_time
            .iter()
            .map(|(what, secs)| format!("{what} {:.1} ms", *secs * 1e3))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What crossed the link.
#[derive(Debug, Default)]
struct Traffic {
    /// `(sender, message name, frame bytes)` in send order.
    log: Vec<(Side, &'static str, usize)>,
    /// Bytes of the records carried by `Repair` frames.
    repair_payload: usize,
    /// Records stored by repairs at the parent.
    repaired: usize,
    conflicts: usize,
    quarantined: usize,
    max_frame: usize,
}

impl Traffic {
    fn bytes(&self) -> usize {
        self.log.iter().map(|(_, _, b)| b).sum()
    }

    fn flights(&self) -> usize {
        let mut flights = 0;
        let mut last = None;
        for (side, _, _) in &self.log {
            if last != Some(*side) {
                flights += 1;
                last = Some(*side);
            }
        }
        flights
    }

    fn names(&self) -> String {
        self.log
            .iter()
            .map(|(s, n, b)| {
                let arrow = if *s == Side::Child { "c>p" } else { "p>c" };
                format!("{arrow} {n} {b}")
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A child's session with its parent, wired in memory.
struct Link<'a> {
    world: &'a World,
    child: ChildSession,
    parent: ParentSession,
    to_parent: VecDeque<Message>,
    to_child: VecDeque<Message>,
    /// Anti-entropy messages.
    traffic: Traffic,
    /// Everything else (handshake, fast path, documents): not counted.
    other: Traffic,
    /// Time per phase.
    phases: Phases,
    /// Time the bench spent on its own accounting, left out of lmsync's time.
    uncounted: std::time::Duration,
}

impl<'a> Link<'a> {
    fn new(world: &'a World) -> Self {
        let standards = Arc::new(StandardsCell::new(Standards::builtin()));
        Link {
            world,
            child: ChildSession::new(
                city(),
                province(),
                BATCH_RECORDS,
                world.verifier.clone(),
                standards.clone(),
            ),
            parent: ParentSession::new(province(), city(), standards, world.verifier.clone()),
            to_parent: VecDeque::new(),
            to_child: VecDeque::new(),
            traffic: Traffic::default(),
            other: Traffic::default(),
            phases: Phases::default(),
            uncounted: std::time::Duration::ZERO,
        }
    }

    fn store(&self, side: Side) -> &'a SledStore {
        match side {
            Side::Child => &self.world.child,
            Side::Parent => &self.world.parent,
        }
    }

    fn send(&mut self, from: Side, m: Message) {
        let t0 = Instant::now();
        let frame = encode_frame(&m).unwrap();
        let traffic = if is_anti_entropy(&m) {
            &mut self.traffic
        } else {
            &mut self.other
        };
        traffic.max_frame = traffic.max_frame.max(frame.len());
        traffic.log.push((from, m.name(), frame.len()));
        self.phases.add("encoding frames".into(), t0);
        if let Message::Repair { records, .. } = &m {
            // Only the bench needs the records' own size: not counted as lmsync's time.
            let t0 = Instant::now();
            traffic.repair_payload += records
                .iter()
                .map(|r| codec::encode(r).unwrap().len())
                .sum::<usize>();
            self.uncounted += t0.elapsed();
        }
        match from {
            Side::Child => self.to_parent.push_back(m),
            Side::Parent => self.to_child.push_back(m),
        }
    }

    fn perform(&mut self, from: Side, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send(m) => self.send(from, m),
                Action::Commit { batch, then } => {
                    let t0 = Instant::now();
                    // Commits of the handshake (a peer's store id, watermarks) repair nothing.
                    let what = if batch.records.is_empty() {
                        "commit of no records"
                    } else {
                        "commit"
                    };
                    self.store(from).commit(batch).unwrap();
                    self.phases.add(format!("{from:?} {what}"), t0);
                    for m in then {
                        self.send(from, m);
                    }
                }
                Action::Close { code, reason } => {
                    panic!("the {from:?} closed the session: {code:?}: {reason}")
                }
                Action::Event(Event::Repaired { records, .. }) => self.traffic.repaired += records,
                Action::Event(Event::Conflict { detail }) => {
                    self.traffic.conflicts += 1;
                    eprintln!("conflict: {detail}");
                }
                Action::Event(Event::Quarantined { id, reason, .. }) => {
                    self.traffic.quarantined += 1;
                    eprintln!("quarantined {id}: {reason}");
                }
                Action::Event(_) => {}
            }
        }
    }

    /// Delivers messages until both sides are quiet; each side handles everything it has
    /// received before the other answers.
    fn run(&mut self) {
        loop {
            let mut moved = false;
            while let Some(m) = self.to_parent.pop_front() {
                let (t0, name) = (Instant::now(), m.name());
                let actions = self.parent.handle(&self.world.parent, m).unwrap();
                self.phases.add(format!("Parent handles {name}"), t0);
                self.perform(Side::Parent, actions);
                moved = true;
            }
            while let Some(m) = self.to_child.pop_front() {
                let (t0, name) = (Instant::now(), m.name());
                let actions = self.child.handle(&self.world.child, m).unwrap();
                self.phases.add(format!("Child handles {name}"), t0);
                self.perform(Side::Child, actions);
                moved = true;
            }
            if !moved {
                break;
            }
        }
    }

    fn take_traffic(&mut self) -> Traffic {
        std::mem::take(&mut self.traffic)
    }
}

fn converged(world: &World) -> bool {
    world.child.digest(Some(city()), None) == world.parent.digest(Some(city()), None)
}

/// lmsync's figures for one case.
#[derive(Debug, Default)]
struct LmsyncRun {
    bytes: usize,
    recon_bytes: usize,
    round_trips: usize,
    flights: usize,
    rounds: usize,
    repaired: usize,
    conflicts: usize,
    quarantined: usize,
    max_frame: usize,
    millis: f64,
    converged: bool,
    handshake: String,
    /// The handshake itself compared digests (anti-entropy round 1 rides on it).
    handshake_digests: bool,
    unexpected: Vec<String>,
    first_round: String,
    /// Where the time went.
    phases: String,
    /// Of `millis`, the time spent repairing (see [`Phases::repairing`]).
    repair_millis: f64,
}

fn run_lmsync(world: &World) -> LmsyncRun {
    let mut out = LmsyncRun::default();
    let mut link = Link::new(world);
    let t0 = Instant::now();
    // The session opens: Hello, Welcome, then the child's Offer (the fast path finds
    // nothing to transfer: complete_through is equal) and whatever else the handshake
    // sends. If the handshake compares digests, its anti-entropy is round 1.
    let start = link.child.start(&world.child);
    link.perform(Side::Child, start);
    link.run();
    let opening = link.take_traffic();
    out.handshake_digests = opening.log.iter().any(|(_, n, _)| *n == "Digests");
    let mut rounds = Vec::new();
    if out.handshake_digests {
        rounds.push(opening);
    } else if !opening.log.is_empty() {
        out.unexpected.push(format!(
            "anti-entropy messages without Digests in the handshake: {}",
            opening.names()
        ));
    }
    // Then the anti-entropy timer fires until the digests agree (at least once).
    while rounds.is_empty() || (!converged(world) && rounds.len() < MAX_ROUNDS) {
        if let Some(last) = rounds.last()
            && last.repaired == 0
        {
            out.unexpected.push(format!(
                "round {} repaired nothing and the digests still differ",
                rounds.len()
            ));
            break;
        }
        let actions = link.child.on_anti_entropy(&world.child).unwrap();
        link.perform(Side::Child, actions);
        link.run();
        rounds.push(link.take_traffic());
    }
    out.millis = t0.elapsed().saturating_sub(link.uncounted).as_secs_f64() * 1e3;
    out.converged = converged(world);
    if !out.converged && rounds.len() >= MAX_ROUNDS {
        out.unexpected.push(format!(
            "not converged after {MAX_ROUNDS} anti-entropy rounds"
        ));
    }
    out.rounds = rounds.len();
    out.first_round = rounds.first().map(Traffic::names).unwrap_or_default();
    for t in &rounds {
        let bytes = t.bytes();
        out.bytes += bytes;
        out.recon_bytes += bytes - t.repair_payload;
        out.flights += t.flights();
        out.round_trips += t.flights().div_ceil(2);
        out.repaired += t.repaired;
        out.conflicts += t.conflicts;
        out.quarantined += t.quarantined;
        out.max_frame = out.max_frame.max(t.max_frame);
    }
    let other = std::mem::take(&mut link.other);
    out.handshake = other.names();
    out.phases = link.phases.summary();
    out.repair_millis = link.phases.repairing() * 1e3;
    if other
        .log
        .iter()
        .any(|(_, n, _)| matches!(*n, "Want" | "Batch"))
    {
        out.unexpected.push(format!(
            "the fast path transferred records: {}",
            other.names()
        ));
    }
    if out.max_frame > MAX_FRAME {
        out.unexpected.push(format!(
            "a frame of {} bytes exceeds MAX_FRAME ({MAX_FRAME}): a real peer refuses it",
            out.max_frame
        ));
    }
    out
}

/// negentropy's figures for one case.
#[derive(Debug)]
struct NegRun {
    bytes: usize,
    round_trips: usize,
    have: usize,
    need: usize,
    millis: f64,
}

fn neg_id(fp: u128) -> Id {
    Id::from_byte_array(*blake3::hash(&fp.to_le_bytes()).as_bytes())
}

fn neg_storage(fps: &[u128]) -> NegentropyStorageVector {
    let mut s = NegentropyStorageVector::with_capacity(fps.len());
    for fp in fps {
        s.insert(0, neg_id(*fp)).unwrap();
    }
    s.seal().unwrap();
    s
}

/// The child initiates (client), the parent answers (server).
fn run_negentropy(child: &[u128], parent: &[u128]) -> NegRun {
    let client_store = neg_storage(child);
    let server_store = neg_storage(parent);
    let t0 = Instant::now();
    let mut client = Negentropy::borrowed(&client_store, 0).unwrap();
    let mut server = Negentropy::borrowed(&server_store, 0).unwrap();
    let (mut have, mut need) = (Vec::new(), Vec::new());
    let mut query = client.initiate().unwrap();
    let mut bytes = query.len();
    let mut round_trips = 1;
    loop {
        let answer = server.reconcile(&query).unwrap();
        bytes += answer.len();
        match client
            .reconcile_with_ids(&answer, &mut have, &mut need)
            .unwrap()
        {
            Some(next) => {
                bytes += next.len();
                round_trips += 1;
                query = next;
            }
            None => break,
        }
    }
    NegRun {
        bytes,
        round_trips,
        have: have.len(),
        need: need.len(),
        millis: t0.elapsed().as_secs_f64() * 1e3,
    }
}

fn per_difference(bytes: usize, d: usize) -> String {
    if d == 0 {
        "-".to_owned()
    } else {
        format!("{:.0}", bytes as f64 / d as f64)
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` runs a quick smoke case.
    let bench = std::env::args().any(|a| a == "--bench");
    let n = env_usize("LMSYNC_RECON_N", if bench { 1_000_000 } else { 3000 });
    let ds: Vec<usize> = std::env::var("LMSYNC_RECON_D")
        .ok()
        .map(|v| v.split(',').map(|x| x.trim().parse().unwrap()).collect())
        .unwrap_or_else(|| {
            if bench {
                vec![0, 1, 100, 10_000]
            } else {
                vec![0, 1, 100]
            }
        });
    let seed = std::env::var("LMSYNC_RECON_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x4401_0044_0000_u64);
    println!(
        "seed = {seed} (ChaCha8), n = {n} records of owner 440100 per side, d in {ds:?}, \
         negentropy 0.5 (NegentropyStorageVector, frame size limit 0 = unlimited)"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let tmp =
        tempfile::tempdir_in(std::env::var("LMSYNC_BENCH_DIR").unwrap_or_else(|_| ".".into()))
            .unwrap();
    let t0 = Instant::now();
    let mut world = World::build(tmp.path(), n);
    println!(
        "stores built = {:.1} s (child 440100 and parent 440000, {n} records each, batches of {FILL_BATCH}); \
         {} MiB on disk each, sled cache {} MiB",
        t0.elapsed().as_secs_f64(),
        world.parent.size_on_disk() >> 20,
        cache() >> 20
    );
    let (bases, tails, bytes) = world.parent.index_size().unwrap();
    println!(
        "leaf index at the parent: {bases} bases, {tails} tail values, {bytes} bytes \
         ({:.1} B per record)",
        bytes as f64 / n as f64
    );
    assert!(converged(&world), "the stores start in sync");

    let mut results = Vec::new();
    for &d in &ds {
        let parent_fps = world.diverge(d, &mut rng);
        let child_fps = world.fps.clone();
        let lm = run_lmsync(&world);
        let neg = run_negentropy(&child_fps, &parent_fps);
        let changed = d / 2;
        let lm_per = per_difference(lm.recon_bytes, d);
        let neg_per = per_difference(neg.bytes, d);
        let ratio = if d == 0 {
            "-".to_owned()
        } else {
            format!("{:.2}", lm.recon_bytes as f64 / neg.bytes as f64)
        };
        println!(
            "recon n={n} d={d}: lmsync bytes={} (reconciliation bytes={}, per difference={lm_per}) \
             round_trips={} time={:.1} ms (finding the differences {:.1} ms, repairing {:.1} ms) | \
             negentropy bytes={} round_trips={} time={:.1} ms | \
             bytes/difference ratio lmsync/negentropy={ratio}, time ratio={:.2}",
            lm.bytes,
            lm.recon_bytes,
            lm.round_trips,
            lm.millis,
            lm.millis - lm.repair_millis,
            lm.repair_millis,
            neg.bytes,
            neg.round_trips,
            neg.millis,
            lm.millis / neg.millis
        );
        println!(
            "  detail d={d}: child {} / parent {} records; lmsync {} anti-entropy round(s), {} flights, \
             {} records repaired, largest frame {} B, conflicts {}, quarantined {}; \
             negentropy have={} need={} (expected {} and {}), per difference={neg_per}, time={:.1} ms",
            child_fps.len(),
            parent_fps.len(),
            lm.rounds,
            lm.flights,
            lm.repaired,
            lm.max_frame,
            lm.conflicts,
            lm.quarantined,
            neg.have,
            neg.need,
            d,
            changed,
            neg.millis
        );
        println!(
            "  handshake and fast path (not counted) d={d}: {}; anti-entropy starts in the handshake: {}",
            lm.handshake, lm.handshake_digests
        );
        if lm.first_round.len() <= 400 {
            println!("  first round d={d}: {}", lm.first_round);
        }
        println!("  time by phase d={d}: {}", lm.phases);
        for u in &lm.unexpected {
            println!("  UNEXPECTED d={d}: {u}");
        }
        println!("converged = {}", lm.converged);
        assert_eq!(
            (neg.have, neg.need),
            (d, changed),
            "negentropy found the differences"
        );
        results.push((d, lm, neg));
        assert!(
            results.last().is_some_and(|r| r.1.converged),
            "lmsync anti-entropy did not converge at d={d}"
        );
    }

    println!("targets (docs/PERFORMANCE.md):");
    for (d, lm, neg) in &results {
        match d {
            0 => println!(
                "  in sync: round_trips={} (target 1), bytes={} (target < 1 KB): {}",
                lm.round_trips,
                lm.bytes,
                verdict(lm.round_trips <= 1 && lm.bytes < 1024)
            ),
            1 => println!(
                "  d=1: round_trips={} (target <= 4), bytes={} incl. the repaired record, \
                 reconciliation bytes={} (target < 4 KB): {} (total), {} (reconciliation)",
                lm.round_trips,
                lm.bytes,
                lm.recon_bytes,
                verdict(lm.round_trips <= 4 && lm.bytes < 4096),
                verdict(lm.round_trips <= 4 && lm.recon_bytes < 4096)
            ),
            _ => {}
        }
        if *d > 0 {
            // Bytes per difference: at most negentropy's at d = 1, half of it from 100 on.
            let share = if *d >= 100 { 0.5 } else { 1.0 };
            let ratio = lm.recon_bytes as f64 / neg.bytes as f64;
            println!(
                "  d={d}: reconciliation bytes per difference lmsync={} negentropy={}, \
                 ratio {ratio:.2} (target <= {share}): {}; time {:.1} ms vs {:.1} ms, \
                 ratio {:.2} (target <= 2): {}",
                per_difference(lm.recon_bytes, *d),
                per_difference(neg.bytes, *d),
                verdict(ratio <= share),
                lm.millis,
                neg.millis,
                lm.millis / neg.millis,
                verdict(lm.millis <= 2.0 * neg.millis)
            );
        }
    }
}
