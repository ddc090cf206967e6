//! Deterministic simulation of the whole node stack over real QUIC: a ministry, three
//! provinces and nine cities run lmsync's own transport (quinn with rustls mutual TLS,
//! the sync sessions, real sled stores) on turmoil's simulated network, through a socket
//! adapter that can also drop, duplicate and corrupt datagrams.
//!
//! Nemeses come from the seed: full and one-way partitions of tier links, link flapping,
//! latency, socket loss/duplication/corruption, node restarts (turmoil `bounce`) and
//! per-node clock offsets. Then everything heals and the checker requires lost = 0
//! (written at a city, missing at its province or the ministry), phantom = 0 (held
//! upstream, never written by the city) and convergence within a bounded time. The trace
//! (every datagram's time, ends and length) must be the same for the same seed.
//!
//! A restart here drops every task, connection and in-memory session of the node but not
//! its sled store (turmoil cannot crash `std::fs`); storage crashes are covered by the
//! real-process SIGKILL tests. `LMSYNC_QUIC_SIM_SEEDS=N` runs N seeds (long mode),
//! `LMSYNC_TEST_SEED=S` replays one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use lmsync::core::model::ingest::IngestContext;
use lmsync::core::model::person::Pseudonymiser;
use lmsync::core::model::signature::DocumentVerifier;
use lmsync::core::model::standards::{Standards, StandardsCell};
use lmsync::core::model::{MINISTRY, NodeCode, RecordKey};
use lmsync::core::store::{Store, WriteBatch};
use lmsync::node::clock::Clock;
use lmsync::node::links::Links;
use lmsync::node::storage::{SledStore, sled_options};
use lmsync::node::transport::tls::TlsMaterial;
use lmsync::node::transport::{self, Socket, StorageCalls, SyncContext};
use lmsync::node::write::{CommitSignal, Planner};
use quinn::udp::{RecvMeta, Transmit};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const PROVINCES: [&str; 3] = ["440000", "320000", "210000"];
const CITIES: [&str; 9] = [
    "440100", "440300", "445100", "320200", "320581", "320500", "210100", "210200", "210300",
];
const QUIC_PORT: u16 = 4433;
/// Simulated time with faults and writes; then everything heals.
const FAULT_PHASE: Duration = Duration::from_secs(40);
const ANTI_ENTROPY: Duration = Duration::from_secs(2);
/// After healing: the reconnect backoff's cap plus ten anti-entropy rounds.
const CONVERGE_BOUND: Duration = Duration::from_secs(30 + 10 * 2);

fn code(s: &str) -> NodeCode {
    s.parse().unwrap()
}

fn host(node: NodeCode) -> String {
    format!("n{node}")
}

fn nodes() -> Vec<NodeCode> {
    std::iter::once(MINISTRY)
        .chain(PROVINCES.iter().chain(&CITIES).map(|c| code(c)))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Certificates: Ed25519, so every handshake has the same size (ECDSA signatures vary by a
// byte or two, which would change packet sizes and so the trace).

struct Pki {
    ca: String,
    nodes: BTreeMap<NodeCode, (String, String)>,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        use rcgen::{
            BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
            SanType, SerialNumber,
        };
        let validity = |p: &mut CertificateParams| {
            p.not_before = rcgen::date_time_ymd(2025, 1, 1);
            p.not_after = rcgen::date_time_ymd(2045, 1, 1);
        };
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.serial_number = Some(SerialNumber::from(1u64));
        validity(&mut ca);
        let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, &ca_key).unwrap();
        let nodes = nodes()
            .into_iter()
            .map(|node| {
                let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
                let mut p =
                    CertificateParams::new(vec![lmsync::node::pki::dns_name(node)]).unwrap();
                let uri = lmsync::node::pki::node_uri(node).try_into().unwrap();
                p.subject_alt_names.push(SanType::URI(uri));
                p.extended_key_usages = vec![
                    ExtendedKeyUsagePurpose::ServerAuth,
                    ExtendedKeyUsagePurpose::ClientAuth,
                ];
                p.serial_number = Some(SerialNumber::from(u64::from(node.get())));
                validity(&mut p);
                let cert = p.signed_by(&key, &issuer).unwrap();
                (node, (cert.pem(), key.serialize_pem()))
            })
            .collect();
        Pki { ca: ca_pem, nodes }
    })
}

// ---------------------------------------------------------------------------------------
// The socket adapter: quinn's abstract socket over a turmoil UDP socket, with seeded
// datagram faults and a trace of every datagram sent.

/// Datagram faults for one node's socket, set by the nemesis.
#[derive(Debug, Default, Clone, Copy)]
struct SocketFaults {
    loss: f64,
    duplicate: f64,
    corrupt: f64,
}

/// State shared by all sockets of one run.
#[derive(Debug)]
struct Wire {
    rng: ChaCha8Rng,
    faults: BTreeMap<IpAddr, SocketFaults>,
    trace: blake3::Hasher,
    datagrams: u64,
    dropped: u64,
    duplicated: u64,
    corrupted: u64,
}

type Readable = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

struct SimSocket {
    ip: IpAddr,
    inner: Arc<turmoil::net::UdpSocket>,
    readable: Mutex<Option<Readable>>,
    wire: Arc<Mutex<Wire>>,
}

impl fmt::Debug for SimSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SimSocket({})", self.ip)
    }
}

#[derive(Debug)]
struct AlwaysWritable;

impl quinn::UdpPoller for AlwaysWritable {
    fn poll_writable(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // turmoil's UDP has no back-pressure.
        Poll::Ready(Ok(()))
    }
}

impl SimSocket {
    fn send(&self, bytes: &[u8], to: SocketAddr) {
        // No route (a crashed host) is a lost datagram, as on a real network.
        let _ = self.inner.try_send_to(bytes, to);
    }
}

impl quinn::AsyncUdpSocket for SimSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn quinn::UdpPoller>> {
        Box::pin(AlwaysWritable)
    }

    fn try_send(&self, t: &Transmit<'_>) -> io::Result<()> {
        let mut wire = self.wire.lock().unwrap();
        let faults = wire.faults.get(&self.ip).copied().unwrap_or_default();
        let now = u64::try_from(turmoil::sim_elapsed().unwrap_or_default().as_millis()).unwrap();
        wire.datagrams += 1;
        let entry = [
            now,
            ip_u64(self.ip),
            ip_u64(t.destination.ip()),
            t.contents.len() as u64,
        ];
        entry.iter().for_each(|v| {
            wire.trace.update(&v.to_le_bytes());
        });
        if wire.rng.random_bool(faults.loss) {
            wire.dropped += 1;
            return Ok(());
        }
        if wire.rng.random_bool(faults.corrupt) {
            wire.corrupted += 1;
            let mut bytes = t.contents.to_vec();
            let bit = wire.rng.random_range(0..bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            self.send(&bytes, t.destination);
            return Ok(());
        }
        let twice = wire.rng.random_bool(faults.duplicate);
        drop(wire);
        self.send(t.contents, t.destination);
        if twice {
            self.wire.lock().unwrap().duplicated += 1;
            self.send(t.contents, t.destination);
        }
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let mut readable = self.readable.lock().unwrap();
        loop {
            // turmoil's `readable()` holds the receive lock while pending: poll it first,
            // then take the datagram.
            let inner = self.inner.clone();
            let fut =
                readable.get_or_insert_with(|| Box::pin(async move { inner.readable().await }));
            match fut.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(r) => {
                    *readable = None;
                    r?;
                }
            }
            match self.inner.try_recv_from(&mut bufs[0]) {
                Ok((len, from)) => {
                    meta[0] = RecvMeta::default();
                    meta[0].addr = from;
                    meta[0].len = len;
                    meta[0].stride = len;
                    meta[0].dst_ip = Some(self.ip);
                    return Poll::Ready(Ok(1));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn may_fragment(&self) -> bool {
        false
    }
}

fn ip_u64(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => u64::from(u32::from(v4)),
        IpAddr::V6(v6) => u64::from_le_bytes(v6.octets()[8..].try_into().unwrap()),
    }
}

// ---------------------------------------------------------------------------------------
// Nodes.

/// Simulated time plus a per-node offset (clock skew), from a fixed epoch.
#[derive(Debug)]
struct SimClock {
    offset_ms: i64,
}

impl Clock for SimClock {
    fn now_ms(&self) -> i64 {
        let elapsed = turmoil::sim_elapsed().unwrap_or_default().as_millis();
        1_767_225_600_000 + i64::try_from(elapsed).unwrap() + self.offset_ms
    }
}

/// What a node keeps across restarts: its store (and so everything it acknowledged).
#[derive(Clone)]
struct NodeSetup {
    node: NodeCode,
    store: Arc<SledStore>,
    clock_offset_ms: i64,
    parent_addr: Option<String>,
    wire: Arc<Mutex<Wire>>,
    seed: u64,
    writes: Arc<Mutex<u64>>,
}

async fn run_node(setup: NodeSetup) -> turmoil::Result {
    let ip = turmoil::lookup(host(setup.node).as_str());
    let port = if setup.node.tier() == lmsync::core::model::Tier::City {
        0
    } else {
        QUIC_PORT
    };
    let inner = turmoil::net::UdpSocket::bind((std::net::Ipv4Addr::UNSPECIFIED, port)).await?;
    let socket = Arc::new(SimSocket {
        ip,
        inner: Arc::new(inner),
        readable: Mutex::new(None),
        wire: setup.wire.clone(),
    });
    let mut config = quinn::EndpointConfig::default();
    let mut rng_seed = [0u8; 32];
    rng_seed[..8].copy_from_slice(&setup.seed.to_le_bytes());
    rng_seed[8..12].copy_from_slice(&setup.node.get().to_le_bytes());
    config.rng_seed(Some(rng_seed));
    let (cert, key) = &pki().nodes[&setup.node];
    let tls = TlsMaterial::from_pem(pki().ca.as_bytes(), cert.as_bytes(), key.as_bytes())?;
    // The city's offices ring it as the API's writer does, so uploads start on commit.
    let commits = CommitSignal::default();
    let ctx = SyncContext {
        me: setup.node,
        store: setup.store.clone(),
        standards: Arc::new(StandardsCell::new(Standards::builtin())),
        links: Arc::new(Links::default()),
        clock: Arc::new(SimClock {
            offset_ms: setup.clock_offset_ms,
        }),
        interval: Duration::from_millis(100),
        anti_entropy: ANTI_ENTROPY,
        batch_records: 50,
        verifier: DocumentVerifier::new(&pki().ca)?,
        children: None,
        storage_calls: StorageCalls::Inline,
        commits: commits.clone(),
        client_tls: Arc::default(),
        max_protocol: lmsync::core::wire::PROTOCOL_VERSION,
    };
    let parent = setup.node.parent().zip(setup.parent_addr.clone());
    let _sync = transport::start(Socket::Custom { socket, config }, &tls, parent, ctx)?;
    if setup.node.tier() == lmsync::core::model::Tier::City {
        write_records(&setup, &commits).await;
    }
    std::future::pending::<()>().await;
    Ok(())
}

/// The city's offices post batches of records (new and changed) until the fault phase
/// ends. Committed means acknowledged: these must all reach the ministry.
async fn write_records(setup: &NodeSetup, commits: &CommitSignal) {
    let city = setup.node;
    let standards = Standards::builtin();
    let key = Pseudonymiser::new([5; 32], 1);
    let cx = IngestContext::new(city, &standards, Some(&key));
    let mut rng = ChaCha8Rng::seed_from_u64(setup.seed ^ u64::from(city.get()));
    while turmoil::sim_elapsed().unwrap_or_default() < FAULT_PHASE {
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..1500))).await;
        let start = rng.random_range(0..60);
        let count = rng.random_range(1..25);
        let mut planner = Planner::new(setup.store.as_ref(), city);
        let clock = SimClock {
            offset_ms: setup.clock_offset_ms,
        };
        for v in lmsync::tooling::synth::generate(city, start + count, 3)
            .into_iter()
            .skip(start)
        {
            planner
                .plan(cx.draft(v).unwrap(), &standards.code_refs(), clock.now_ms())
                .unwrap();
        }
        let records = planner.into_writes();
        if records.is_empty() {
            continue;
        }
        setup
            .store
            .commit(WriteBatch {
                records,
                ..WriteBatch::default()
            })
            .unwrap();
        commits.notify();
        *setup.writes.lock().unwrap() += 1;
    }
}

// ---------------------------------------------------------------------------------------
// The run: topology, nemesis, heal, checker.

struct Outcome {
    trace: [u8; 32],
    converge_ms: u128,
    faults: BTreeMap<&'static str, u64>,
    writes: u64,
    records: usize,
    datagrams: u64,
    dropped: u64,
    duplicated: u64,
    corrupted: u64,
}

fn sim_dir() -> tempfile::TempDir {
    // tmpfs when there is one: a simulation runs thousands of fsyncs.
    tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap())
}

fn run(seed: u64) -> Outcome {
    let dir = sim_dir();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let wire = Arc::new(Mutex::new(Wire {
        rng: ChaCha8Rng::seed_from_u64(seed.wrapping_add(1)),
        faults: BTreeMap::new(),
        trace: blake3::Hasher::new(),
        datagrams: 0,
        dropped: 0,
        duplicated: 0,
        corrupted: 0,
    }));
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(FAULT_PHASE + CONVERGE_BOUND + Duration::from_secs(10))
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(5))
        .repair_rate(0.2)
        .udp_capacity(4096)
        .build();
    let writes = Arc::new(Mutex::new(0));
    let mut stores = BTreeMap::new();
    for (i, node) in nodes().into_iter().enumerate() {
        let store = SledStore::create(
            &dir.path().join(node.to_string()),
            node,
            [u8::try_from(i).unwrap(); 16],
            0,
            sled_options(4 << 20),
        )
        .unwrap();
        let store = Arc::new(store);
        stores.insert(node, store.clone());
        let setup = NodeSetup {
            node,
            store,
            clock_offset_ms: rng.random_range(-3_600_000..3_600_000),
            parent_addr: node
                .parent()
                .map(|p| SocketAddr::new(sim.lookup(host(p).as_str()), QUIC_PORT).to_string()),
            wire: wire.clone(),
            seed,
            writes: writes.clone(),
        };
        sim.host(host(node).as_str(), move || run_node(setup.clone()));
    }
    let faults = nemesis(&mut sim, &mut rng, &wire);
    heal(&mut sim, &wire);
    let healed_at = sim.elapsed();
    while !converged(&stores) {
        sim.step().unwrap();
        let waited = sim.elapsed() - healed_at;
        assert!(
            waited <= CONVERGE_BOUND,
            "seed {seed}: not converged {waited:?} after healing; replay with LMSYNC_TEST_SEED={seed}"
        );
    }
    let converge_ms = (sim.elapsed() - healed_at).as_millis();
    let records = check_lost_and_phantom(seed, &stores);
    let wire = wire.lock().unwrap();
    let mut trace = wire.trace.clone();
    for (node, store) in &stores {
        trace.update(&node.get().to_le_bytes());
        trace.update(&store.digest(None, None).sum.to_le_bytes());
    }
    let writes = *writes.lock().unwrap();
    Outcome {
        trace: *trace.finalize().as_bytes(),
        converge_ms,
        faults,
        writes,
        records,
        datagrams: wire.datagrams,
        dropped: wire.dropped,
        duplicated: wire.duplicated,
        corrupted: wire.corrupted,
    }
}

fn tier_links() -> Vec<(String, String)> {
    nodes()
        .into_iter()
        .filter_map(|n| n.parent().map(|p| (host(n), host(p))))
        .collect()
}

/// Runs the fault phase: every 0.5–3 s of simulated time one nemesis acts. Returns how
/// many of each kind acted.
fn nemesis(
    sim: &mut turmoil::Sim<'_>,
    rng: &mut ChaCha8Rng,
    wire: &Mutex<Wire>,
) -> BTreeMap<&'static str, u64> {
    let links = tier_links();
    let all = nodes();
    let mut faults = BTreeMap::new();
    let mut next = Duration::ZERO;
    while sim.elapsed() < FAULT_PHASE {
        if sim.elapsed() >= next {
            next = sim.elapsed() + Duration::from_millis(rng.random_range(500..3000));
            let (child, parent) = &links[rng.random_range(0..links.len())];
            let (child, parent) = (child.as_str(), parent.as_str());
            let kind = match rng.random_range(0..8) {
                0 => {
                    sim.partition(child, parent);
                    "partition"
                }
                1 => {
                    sim.partition_oneway(child, parent);
                    "oneway"
                }
                2 => {
                    sim.partition_oneway(parent, child);
                    "oneway"
                }
                3 => {
                    sim.repair(child, parent);
                    "repair"
                }
                4 => {
                    sim.set_link_fail_rate(child, parent, rng.random_range(0.01..0.2));
                    "flapping"
                }
                5 => {
                    let latency = Duration::from_millis(rng.random_range(5..200));
                    sim.set_link_max_message_latency(child, parent, latency);
                    "latency"
                }
                6 => {
                    let f = SocketFaults {
                        loss: rng.random_range(0.0..0.3),
                        duplicate: rng.random_range(0.0..0.1),
                        corrupt: rng.random_range(0.0..0.05),
                    };
                    wire.lock().unwrap().faults.insert(sim.lookup(child), f);
                    "socket"
                }
                _ => {
                    sim.bounce(host(all[rng.random_range(0..all.len())]).as_str());
                    "restart"
                }
            };
            *faults.entry(kind).or_insert(0) += 1;
        }
        sim.step().unwrap();
    }
    faults
}

fn heal(sim: &mut turmoil::Sim<'_>, wire: &Mutex<Wire>) {
    for (child, parent) in tier_links() {
        sim.repair(child.as_str(), parent.as_str());
        sim.set_link_fail_rate(child.as_str(), parent.as_str(), 0.0);
        sim.set_link_max_message_latency(child.as_str(), parent.as_str(), Duration::from_millis(5));
    }
    wire.lock().unwrap().faults.clear();
}

fn converged(stores: &BTreeMap<NodeCode, Arc<SledStore>>) -> bool {
    CITIES.iter().map(|c| code(c)).all(|city| {
        let at_city = stores[&city].digest(Some(city), None);
        let province = city.province().unwrap();
        at_city == stores[&province].digest(Some(city), None)
            && at_city == stores[&MINISTRY].digest(Some(city), None)
    })
}

/// Compares record by record: every version a city holds must be upstream (lost = 0),
/// and nothing upstream may be absent or newer at the city (phantom = 0). Returns the
/// number of city records checked.
fn check_lost_and_phantom(seed: u64, stores: &BTreeMap<NodeCode, Arc<SledStore>>) -> usize {
    let versions = |store: &SledStore, owner: NodeCode| -> BTreeMap<RecordKey, (u64, [u8; 32])> {
        store
            .scan_owner(owner)
            .map(|r| {
                let r = r.unwrap();
                (r.envelope.key(), (r.envelope.version, r.envelope.hash.0))
            })
            .collect()
    };
    let mut checked = 0;
    for city in CITIES.iter().map(|c| code(c)) {
        let written = versions(&stores[&city], city);
        for upstream in [city.province().unwrap(), MINISTRY] {
            let held = versions(&stores[&upstream], city);
            let lost = written
                .iter()
                .filter(|(k, v)| held.get(*k) != Some(v))
                .count();
            let phantom = held.keys().filter(|k| !written.contains_key(*k)).count();
            assert_eq!(
                (lost, phantom),
                (0, 0),
                "seed {seed}: {city} at {upstream}: lost, phantom"
            );
        }
        checked += written.len();
    }
    for owner in stores[&MINISTRY].owner_counts().into_keys() {
        assert!(
            CITIES.contains(&owner.to_string().as_str()),
            "seed {seed}: phantom owner {owner} at the ministry"
        );
    }
    checked
}

fn seeds() -> Vec<u64> {
    let var = |name: &str| std::env::var(name).ok().and_then(|s| s.parse::<u64>().ok());
    match var("LMSYNC_TEST_SEED") {
        Some(seed) => vec![seed],
        None => (0..var("LMSYNC_QUIC_SIM_SEEDS").unwrap_or(6)).collect(),
    }
}

#[test]
fn the_tree_converges_over_quic_under_faults() {
    for seed in seeds() {
        let started = std::time::Instant::now();
        let o = run(seed);
        assert!(
            o.writes > 0 && o.records > 0,
            "seed {seed}: nothing written"
        );
        assert!(!o.faults.is_empty(), "seed {seed}: no fault injected");
        println!(
            "quic-sim seed={seed} nodes=13 writes={} records={} faults={:?} datagrams={} dropped={} duplicated={} corrupted={} lost=0 phantom=0 converge_ms={} wall_ms={} trace={}",
            o.writes,
            o.records,
            o.faults,
            o.datagrams,
            o.dropped,
            o.duplicated,
            o.corrupted,
            o.converge_ms,
            started.elapsed().as_millis(),
            hex::encode(&o.trace[..8]),
        );
    }
}

#[test]
fn the_same_seed_gives_the_same_trace_over_quic() {
    let seed = seeds()[0];
    let (a, b) = (run(seed), run(seed));
    assert_eq!(
        hex::encode(a.trace),
        hex::encode(b.trace),
        "seed {seed} is not deterministic"
    );
}
