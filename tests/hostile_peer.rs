//! Hostile but authenticated peers against a live province (test plan items 7 and 9).
//!
//! Each case runs a real province 440000 and a real honest city 440100 syncing to it, and
//! drives a hostile city 440300 — a genuine certificate from the same CA, in the
//! province's subtree — with a hand-written quinn client: garbage frames, a frame twice
//! the size limit, a thousand streams, a slowloris stream, one node reconnecting again and
//! again, and a junk UDP flood. For each
//! it asserts on the province that the hostile session ends (or gets no more streams)
//! with the reason in its status, that the honest city's digest at the province keeps
//! matching the city's, that the province stays healthy, that nothing of 440300 is
//! stored, and that the province's RSS stays within [`RSS_BUDGET_MIB`] and grows by no
//! more than [`GROWTH_BUDGET_MIB`]. Each case prints one `hostile_peer case=…` line.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Http, Network, NodeFiles, RunningNode, digest, vacancy};
use lmsync::core::wire::{self, MAX_FRAME, Message, PROTOCOL_VERSION};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

const PROVINCE: &str = "440000";
const CITY: &str = "440100";
const HOSTILE: &str = "440300";

/// Absolute ceiling on the province's resident memory during an attack. A province here
/// starts at about 20 MiB (its sled cache is nearly empty); what one connection can make
/// it hold is bounded by the transport limits: at most the 32 MiB receive window of
/// unread stream data (`tls::transport_config`) plus one frame buffer of at most
/// `MAX_FRAME` (8 MiB), i.e. 40 MiB for the hostile connection and 40 MiB for the honest
/// city. 300 MiB leaves the rest for the allocator's retained arenas and the runtime.
/// (A peer holds one connection at a time: a newer one from the same node replaces it.)
const RSS_BUDGET_MIB: u64 = 300;
/// Ceiling on the growth over the RSS before the attack: two connections' worth of the
/// bounds above (80 MiB) plus headroom for allocator fragmentation.
const GROWTH_BUDGET_MIB: u64 = 128;
/// How long the honest city's records may take to reach the province.
const SYNC_BOUND: Duration = Duration::from_secs(20);
/// How long the province may take to end a session after a bad frame.
const CLOSE_BOUND: Duration = Duration::from_secs(10);

/// A province, its honest city (already in sync) and the hostile peer's client config.
struct Scene {
    net: Network,
    province: RunningNode,
    city_files: NodeFiles,
    city: RunningNode,
    http: Http,
    rt: tokio::runtime::Runtime,
    hostile: quinn::ClientConfig,
    addr: SocketAddr,
    posted: usize,
}

impl Scene {
    fn new() -> Self {
        let net = Network::new();
        let province_files = net.init(PROVINCE, None);
        let province = RunningNode::start(&province_files);
        let quic = province.quic.clone().unwrap();
        let city_files = net.init(CITY, Some(&format!("{PROVINCE}@{quic}")));
        let city = RunningNode::start(&city_files);
        // The hostile peer: a genuine certificate for 440300 from the same CA.
        net.init(HOSTILE, None);
        let hostile = client_config_of(&net, HOSTILE);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let mut scene = Scene {
            net,
            addr: quic.parse().unwrap(),
            province,
            city_files,
            city,
            http: Http::new(),
            rt,
            hostile,
            posted: 0,
        };
        scene.post(20);
        scene.wait_synced("the first records");
        scene
    }

    /// Posts `n` new vacancies at the honest city.
    fn post(&mut self, n: usize) {
        let records: Vec<Value> = (self.posted..self.posted + n)
            .map(|i| vacancy(&format!("V-{i}"), 1))
            .collect();
        self.posted += n;
        let (status, body) = self.http.post(
            &self.city.url("/v1/records"),
            &self.city_files.token,
            &json!(records),
        );
        assert_eq!(status, 200, "{body}");
    }

    /// Whether the province holds exactly the honest city's records.
    fn synced(&self) -> bool {
        let at_city = digest(&self.http, &self.city, CITY);
        at_city["records"].as_u64() == Some(self.posted as u64)
            && digest(&self.http, &self.province, CITY) == at_city
    }

    /// Waits (bounded) until the province holds the city's records; returns how long.
    fn wait_synced(&self, what: &str) -> Duration {
        let start = Instant::now();
        while !self.synced() {
            assert!(
                start.elapsed() < SYNC_BOUND,
                "{what}: the honest city's records did not reach the province in {SYNC_BOUND:?}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        start.elapsed()
    }

    /// The province's link state for the hostile peer, if it has one.
    fn hostile_link(&self) -> Option<Value> {
        self.link_of(HOSTILE)
    }

    /// The province's link state for `node`, if it has one.
    fn link_of(&self, node: &str) -> Option<Value> {
        let (code, status) = self.http.get(&self.province.url("/v1/status"));
        assert_eq!(code, 200, "{status}");
        status["children"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["code"].to_string().contains(node))
            .cloned()
    }

    /// Waits (bounded) until the province reports the hostile session ended with an error
    /// containing `expect`, and returns that error.
    fn wait_hostile_error(&self, expect: &str) -> String {
        let start = Instant::now();
        loop {
            let link = self.hostile_link();
            if let Some(link) = &link
                && link["connected"] == json!(false)
                && let Some(e) = link["last_error"].as_str()
                && e.contains(expect)
            {
                return e.to_string();
            }
            assert!(
                start.elapsed() < CLOSE_BOUND,
                "the province did not report {expect:?} for {HOSTILE}: {link:?}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The province is alive and healthy, holds the honest city's records and nothing
    /// of the hostile peer's.
    fn assert_clean(&mut self) {
        assert!(
            self.province.child.try_wait().unwrap().is_none(),
            "the province exited"
        );
        let (code, status) = self.http.get(&self.province.url("/v1/status"));
        assert_eq!(code, 200, "{status}");
        assert_eq!(status["store"]["healthy"], json!(true), "{status}");
        assert_eq!(
            digest(&self.http, &self.province, HOSTILE)["records"],
            json!(0),
            "nothing of the hostile peer is stored"
        );
        let all = self.http.get(&self.province.url("/v1/digest")).1;
        assert_eq!(
            all["records"],
            json!(self.posted),
            "the province holds the honest city's records and nothing else: {all}"
        );
        assert!(self.synced(), "the honest city is in sync");
    }

    fn rss(&self) -> Rss {
        Rss::sample(self.province.child.id())
    }

    async fn connect(&self) -> (quinn::Endpoint, quinn::Connection) {
        connect(&self.hostile, self.addr).await
    }
}

/// A QUIC client config presenting `node`'s certificate and key from the network's PKI.
fn client_config_of(net: &Network, node: &str) -> quinn::ClientConfig {
    let pki = net.path().join(format!("pki-{node}"));
    let material =
        lmsync::node::transport::tls::TlsMaterial::load(&lmsync::node::transport::tls::TlsFiles {
            ca: &pki.join("ca.crt"),
            cert: &pki.join("node.crt"),
            key: &pki.join("node.key"),
        })
        .unwrap();
    lmsync::node::transport::tls::client_config(&material).unwrap()
}

async fn connect(
    config: &quinn::ClientConfig,
    addr: SocketAddr,
) -> (quinn::Endpoint, quinn::Connection) {
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(config.clone());
    let conn = tokio::time::timeout(
        Duration::from_secs(10),
        endpoint.connect(addr, "n440000.lmsync").unwrap(),
    )
    .await
    .expect("handshake within 10 s")
    .expect("the hostile peer's certificate is genuine: the handshake succeeds");
    (endpoint, conn)
}

/// The hostile peer's `Hello`, with a fixed store id.
fn hello() -> Vec<u8> {
    wire::encode_frame(&Message::Hello {
        protocol: (PROTOCOL_VERSION, PROTOCOL_VERSION),
        node: HOSTILE.parse().unwrap(),
        store_id: [0x33; 16],
    })
    .unwrap()
}

/// Sends `Hello` on a new stream and reads the province's `Welcome`.
async fn greet(conn: &quinn::Connection) -> (quinn::SendStream, quinn::RecvStream) {
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(&hello()).await.unwrap();
    let mut prefix = [0u8; 4];
    tokio::time::timeout(CLOSE_BOUND, recv.read_exact(&mut prefix))
        .await
        .unwrap()
        .unwrap();
    let mut body = vec![0u8; wire::frame_len(prefix).unwrap()];
    recv.read_exact(&mut body).await.unwrap();
    let welcome = wire::decode_body(&body).unwrap();
    assert!(matches!(welcome, Message::Welcome { .. }), "{welcome:?}");
    (send, recv)
}

/// Waits (bounded) for the province to close the connection; returns how and when.
async fn closed_by_server(conn: &quinn::Connection, start: Instant) -> (String, Duration) {
    let e = tokio::time::timeout(CLOSE_BOUND, conn.closed())
        .await
        .expect("the province closes the hostile connection");
    (e.to_string(), start.elapsed())
}

/// Samples a process's VmRSS every 20 ms on a thread of its own and keeps the peak.
struct Rss {
    pid: u32,
    start_kib: u64,
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn rss_kib(pid: u32) -> u64 {
    common::rss(pid) / 1024
}

impl Rss {
    fn sample(pid: u32) -> Self {
        let start_kib = rss_kib(pid);
        let peak = Arc::new(AtomicU64::new(start_kib));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (peak, stop) = (peak.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(bytes) = common::try_rss(pid) {
                        peak.fetch_max(bytes / 1024, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Rss {
            pid,
            start_kib,
            peak,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops sampling, asserts the budgets and returns a figure for the summary line.
    fn finish(mut self, case: &str) -> String {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        let peak = self.peak.load(Ordering::Relaxed).max(rss_kib(self.pid));
        let (start_mib, peak_mib) = (self.start_kib / 1024, peak / 1024);
        assert!(
            peak_mib < RSS_BUDGET_MIB,
            "{case}: province RSS peaked at {peak_mib} MiB (budget {RSS_BUDGET_MIB} MiB)"
        );
        assert!(
            peak_mib.saturating_sub(start_mib) < GROWTH_BUDGET_MIB,
            "{case}: province RSS grew from {start_mib} to {peak_mib} MiB (budget +{GROWTH_BUDGET_MIB} MiB)"
        );
        format!("rss_start_mib={start_mib} rss_peak_mib={peak_mib}")
    }
}

/// A frame's 4-byte big-endian length prefix.
fn prefix(len: usize) -> Vec<u8> {
    u32::try_from(len).unwrap().to_be_bytes().to_vec()
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// (a) Garbage on the sync stream: random bytes, a frame of junk that does not decode, a
/// body claiming a 2^40-element vector, and a frame with trailing bytes after a proper
/// `Hello`. Each ends the hostile session with the reason in the province's status.
#[test]
fn garbage_frames_end_the_hostile_session() {
    let mut s = Scene::new();
    let rss = s.rss();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut random = vec![0u8; 64 << 10];
    rng.fill_bytes(&mut random);
    // Junk of a valid length whose first byte names no message (variant 200).
    let mut junk = vec![0u8; 1024];
    rng.fill_bytes(&mut junk);
    junk[0] = 200;
    let mut undecodable = prefix(junk.len());
    undecodable.extend_from_slice(&junk);
    // `Offer` (variant 3) whose owner list claims 2^40 entries in a 10-byte body: nothing
    // may be allocated for the claim, and the body ends before the first entry.
    let huge_claim = [3u8, 0xfd, 0, 0, 0, 0, 0, 1, 0, 0];
    let mut claims = prefix(huge_claim.len());
    claims.extend_from_slice(&huge_claim);
    // A `Ping` with one trailing byte, after a proper `Hello`.
    let mut ping = wire::encode_frame(&Message::Ping).unwrap();
    ping.push(0);
    let len = prefix(ping.len() - 4);
    ping[..4].copy_from_slice(&len);

    let cases: [(&str, bool, Vec<u8>, &str); 4] = [
        (
            "random_bytes",
            false,
            random,
            "exceeds the 8388608-byte limit",
        ),
        ("undecodable", false, undecodable, "variant"),
        ("huge_claim", false, claims, "UnexpectedEnd"),
        ("trailing_after_hello", true, ping, "1 trailing bytes"),
    ];
    let mut figures = Vec::new();
    for (name, greet_first, payload, expect) in cases {
        let (client_saw, took) = s.rt.block_on(async {
            let (_endpoint, conn) = s.connect().await;
            let (mut send, _recv) = if greet_first {
                greet(&conn).await
            } else {
                conn.open_bi().await.unwrap()
            };
            let start = Instant::now();
            // The province may close before all of it is written.
            let _ = send.write_all(&payload).await;
            closed_by_server(&conn, start).await
        });
        let reason = s.wait_hostile_error(expect);
        s.post(10);
        let sync = s.wait_synced(name);
        s.assert_clean();
        figures.push(format!(
            "{name}:close_ms={},sync_ms={},client_saw={client_saw:?},server_reason={reason:?}",
            ms(took),
            ms(sync)
        ));
    }
    let rss = rss.finish("garbage");
    println!(
        "hostile_peer case=garbage sessions=4 {} stored_hostile=0 records={} {rss}",
        figures.join(" "),
        s.posted
    );
}

/// (b) A frame whose length prefix is twice `MAX_FRAME`, followed by 16 MiB actually
/// streamed: refused on the prefix, before any allocation. For contrast, a frame of
/// exactly `MAX_FRAME` of junk is read in full and then refused by the decoder.
#[test]
fn an_oversized_frame_is_refused_on_its_prefix() {
    let mut s = Scene::new();
    let rss = s.rss();
    let mut figures = Vec::new();
    for (name, len, expect) in [
        (
            "twice_max_frame",
            2 * MAX_FRAME,
            format!("frame of {} bytes exceeds", 2 * MAX_FRAME),
        ),
        ("at_max_frame", MAX_FRAME, "malformed encoding".to_string()),
    ] {
        let sent = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let attack = {
            let (config, addr, sent) = (s.hostile.clone(), s.addr, sent.clone());
            s.rt.spawn(async move {
                let (_endpoint, conn) = connect(&config, addr).await;
                let (mut send, _recv) = conn.open_bi().await.unwrap();
                send.write_all(&prefix(len)).await.unwrap();
                let mut chunk = vec![0xa5u8; 256 << 10];
                chunk[0] = 200; // the body's first byte names no message
                let mut written = 0;
                while written < len {
                    let n = chunk.len().min(len - written);
                    if send.write_all(&chunk[..n]).await.is_err() {
                        break;
                    }
                    written += n;
                    chunk[0] = 0xa5;
                    sent.store(written as u64, Ordering::Relaxed);
                }
                let before = conn.stats().udp_tx.bytes;
                let closed = closed_by_server(&conn, start).await;
                (closed, before.max(conn.stats().udp_tx.bytes))
            })
        };
        // The honest city keeps syncing while the frame streams.
        s.post(10);
        let sync = s.wait_synced(name);
        let ((client_saw, took), wire_bytes) = s.rt.block_on(attack).unwrap();
        let reason = s.wait_hostile_error(&expect);
        s.assert_clean();
        figures.push(format!(
            "{name}:prefix={len},client_buffered_mib={:.1},wire_kib={},close_ms={},sync_ms={},client_saw={client_saw:?},server_reason={reason:?}",
            sent.load(Ordering::Relaxed) as f64 / f64::from(1 << 20),
            wire_bytes / 1024,
            ms(took),
            ms(sync),
        ));
    }
    let rss = rss.finish("oversized");
    println!(
        "hostile_peer case=oversized {} stored_hostile=0 {rss}",
        figures.join(" ")
    );
}

/// (c) A thousand bidirectional streams on one authenticated connection: the province
/// grants four (`max_concurrent_bidi_streams`), reads only the session's own, and never
/// raises the limit; the rest are simply not granted. The three idle streams are then
/// filled as far as flow control lets them, which bounds what the province buffers.
#[test]
fn a_thousand_streams_get_one() {
    let mut s = Scene::new();
    let rss = s.rss();
    const STREAMS: usize = 1000;
    let granted = Arc::new(AtomicUsize::new(0));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let attack = {
        let (config, addr, granted) = (s.hostile.clone(), s.addr, granted.clone());
        s.rt.spawn(async move {
            let (_endpoint, conn) = connect(&config, addr).await;
            // Stream 0 carries a proper session, so the province serves this peer.
            let (_send0, _recv0) = greet(&conn).await;
            granted.fetch_add(1, Ordering::Relaxed);
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let mut opens = tokio::task::JoinSet::new();
            for _ in 1..STREAMS {
                let (conn, granted, tx) = (conn.clone(), granted.clone(), tx.clone());
                opens.spawn(async move {
                    let Ok((mut send, recv)) = conn.open_bi().await else {
                        return;
                    };
                    // A stream exists for the peer once it carries a byte.
                    if send.write_all(&[0]).await.is_err() {
                        return;
                    }
                    granted.fetch_add(1, Ordering::Relaxed);
                    let _ = tx.send((send, recv));
                });
            }
            // Give the province time to grant more: it must not (an absence cannot be
            // awaited, so this is an observation window, not synchronisation).
            tokio::time::sleep(Duration::from_secs(2)).await;
            let mut extra = Vec::new();
            while let Ok(stream) = rx.try_recv() {
                extra.push(stream);
            }
            // Fill the streams the province never reads, as far as flow control allows.
            let filled = Arc::new(AtomicU64::new(0));
            let chunk = vec![0x5au8; 256 << 10];
            let mut fills = tokio::task::JoinSet::new();
            for (mut send, _) in extra.drain(..) {
                let (filled, chunk) = (filled.clone(), chunk.clone());
                fills.spawn(async move {
                    for _ in 0..64 {
                        if send.write_all(&chunk).await.is_err() {
                            break;
                        }
                        filled.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    }
                    send
                });
            }
            let _ = tokio::time::timeout(Duration::from_secs(3), async {
                while fills.join_next().await.is_some() {}
            })
            .await;
            let granted_now = granted.load(Ordering::Relaxed);
            let still_open = conn.close_reason().is_none();
            ready_tx
                .send((granted_now, filled.load(Ordering::Relaxed), still_open))
                .unwrap();
            // Hold everything open until the test has checked the province.
            let _ = done_rx.await;
            opens.abort_all();
            fills.abort_all();
            conn.close(0u32.into(), b"hostile peer done");
        })
    };
    // Meanwhile the honest city syncs.
    s.post(10);
    let sync_during = s.wait_synced("during the stream flood");
    let (granted_now, filled, still_open) = ready_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(
        granted_now, 1,
        "the protocol uses one stream: the province grants one, no more"
    );
    assert!(still_open, "refusing streams is flow control, not a close");
    assert!(
        filled <= 32 << 20,
        "unread streams are bounded by the 32 MiB connection window: {filled}"
    );
    let link = s.hostile_link().unwrap();
    assert_eq!(link["connected"], json!(true), "{link}");
    s.post(10);
    let sync_under = s.wait_synced("with the hostile streams held open");
    s.assert_clean();
    let _ = done_tx.send(());
    s.rt.block_on(attack).unwrap();
    let rss = rss.finish("streams");
    println!(
        "hostile_peer case=streams opened={STREAMS} granted={granted_now} not_granted={} idle_streams_buffered_mib={:.1} sync_ms={},{} stored_hostile=0 {rss}",
        STREAMS - granted_now,
        filled as f64 / f64::from(1 << 20),
        ms(sync_during),
        ms(sync_under),
    );
}

/// (d) Slowloris: the prefix of a `MAX_FRAME` frame and then its body at one byte per
/// second for ten seconds. The province keeps serving the honest city and its memory
/// stays put; whether it cuts the trickle off is reported (it has no read deadline).
#[test]
fn a_slowloris_stream_costs_the_province_nothing() {
    let mut s = Scene::new();
    let rss = s.rss();
    // Longer than the province's 10 s deadline for a connection to say `Hello`.
    const SECONDS: usize = 14;
    let attack = {
        let (config, addr) = (s.hostile.clone(), s.addr);
        s.rt.spawn(async move {
            let (_endpoint, conn) = connect(&config, addr).await;
            let (mut send, _recv) = conn.open_bi().await.unwrap();
            let mut bytes = prefix(MAX_FRAME);
            bytes.extend_from_slice(&[200; SECONDS]);
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut sent = 0;
            for b in bytes.iter().take(SECONDS) {
                tick.tick().await;
                if conn.close_reason().is_some() || send.write_all(&[*b]).await.is_err() {
                    break;
                }
                sent += 1;
            }
            tick.tick().await;
            let closed = conn.close_reason().map(|e| e.to_string());
            conn.close(0u32.into(), b"hostile peer done");
            (sent, closed)
        })
    };
    let start = Instant::now();
    let mut syncs = Vec::new();
    // Records posted while the trickle runs reach the province.
    while start.elapsed() < Duration::from_secs(SECONDS as u64 - 2) {
        s.post(5);
        syncs.push(ms(s.wait_synced("during the slowloris")));
        s.assert_clean();
        std::thread::sleep(Duration::from_millis(500));
    }
    // Before its `Hello` is complete the trickling peer has no link in the status.
    let visible = s.hostile_link().is_some();
    let (sent, closed) = s.rt.block_on(attack).unwrap();
    assert!(
        closed.as_deref().is_some_and(|c| c.contains("took longer")),
        "the province cuts off a peer that never finishes its Hello: {closed:?}"
    );
    s.post(5);
    syncs.push(ms(s.wait_synced("after the slowloris")));
    s.assert_clean();
    let rss = rss.finish("slowloris");
    println!(
        "hostile_peer case=slowloris seconds={SECONDS} bytes_sent={sent} closed_by_server={closed:?} hostile_in_status={visible} sync_ms={syncs:?} stored_hostile=0 {rss}",
    );
}

/// One authenticated node opening connection after connection, each filling its stream
/// as far as flow control allows: every new connection replaces the previous one, so the
/// province holds one session's buffers for it, not one per connection.
#[test]
fn a_node_holds_one_connection_at_a_time() {
    let mut s = Scene::new();
    let rss = s.rss();
    const CONNECTIONS: usize = 8;
    let attack = {
        let (config, addr) = (s.hostile.clone(), s.addr);
        s.rt.spawn(async move {
            let mut held = Vec::new();
            for _ in 0..CONNECTIONS {
                let (endpoint, conn) = connect(&config, addr).await;
                let (mut send, recv) = greet(&conn).await;
                // Start a frame the province must buffer: the longest allowed.
                let mut bytes = prefix(MAX_FRAME);
                bytes.extend(std::iter::repeat_n(7u8, 4 << 20));
                let _ = tokio::time::timeout(Duration::from_secs(2), send.write_all(&bytes)).await;
                held.push((endpoint, conn, send, recv));
            }
            let (mut replaced, mut closed) = (0, 0);
            let mut reasons = Vec::new();
            for (_, c, ..) in &held[..CONNECTIONS - 1] {
                // The replacing close may still be on its way; if its packet is lost
                // under load, the client learns of it by the 10 s idle timeout.
                let reason = tokio::time::timeout(Duration::from_secs(15), c.closed()).await;
                if let Ok(r) = reason {
                    closed += 1;
                    replaced +=
                        usize::from(r.to_string().contains("replaced by a newer connection"));
                    reasons.push(r.to_string());
                }
            }
            let last_open = held[CONNECTIONS - 1].1.close_reason().is_none();
            for (_, c, ..) in &held {
                c.close(0u32.into(), b"hostile peer done");
            }
            (replaced, closed, reasons, last_open)
        })
    };
    s.post(10);
    let sync_during = s.wait_synced("while one node reconnects again and again");
    let (replaced, closed, reasons, last_open) = s.rt.block_on(attack).unwrap();
    assert_eq!(
        closed,
        CONNECTIONS - 1,
        "the province closed every older connection: {reasons:?}"
    );
    assert!(
        replaced >= 1,
        "closed because a newer one replaced it: {reasons:?}"
    );
    assert!(last_open, "the newest connection is the live one");
    s.post(10);
    let sync_after = s.wait_synced("after the reconnects");
    s.assert_clean();
    let rss = rss.finish("reconnects");
    println!(
        "hostile_peer case=reconnects connections={CONNECTIONS} replaced={replaced} sync_ms={},{} stored_hostile=0 {rss}",
        ms(sync_during),
        ms(sync_after)
    );
}

/// (f) A peer presenting the honest city's certificate (a stolen key) whose `Hello` claims
/// another code is refused by the handshake's identity check before it changes anything:
/// the honest city's session is never displaced, and the attempts show as alerts.
#[test]
fn a_hello_that_contradicts_its_certificate_displaces_nobody() {
    const ATTEMPTS: usize = 6;
    let mut s = Scene::new();
    let stolen = client_config_of(&s.net, CITY);
    let addr = s.addr;
    let refused = s.rt.block_on(async move {
        let mut refused = 0;
        for _ in 0..ATTEMPTS {
            let (_endpoint, conn) = connect(&stolen, addr).await;
            let (mut send, _recv) = conn.open_bi().await.unwrap();
            // The certificate says 440100; the Hello says 440300.
            send.write_all(&hello()).await.unwrap();
            let (reason, _) = closed_by_server(&conn, Instant::now()).await;
            refused += usize::from(reason.contains("the handshake says"));
        }
        refused
    });
    assert_eq!(refused, ATTEMPTS, "every impostor is refused for its Hello");
    let link = s.link_of(CITY).expect("the honest city's link");
    assert_eq!(link["connected"], json!(true), "{link}");
    assert_eq!(
        link["sessions_broken"],
        json!(0),
        "the honest city's session was never displaced: {link}"
    );
    let alerts = link["alerts"].to_string();
    assert!(alerts.contains("failed the handshake"), "{link}");
    s.post(10);
    s.wait_synced("after the impostors");
    s.assert_clean();
    println!(
        "hostile_peer case=impostor attempts={ATTEMPTS} refused={refused} honest_sessions_broken=0"
    );
}

/// (e) 20,000 random datagrams from 20 source ports at the province's QUIC port, then the
/// honest city's new records still arrive within a bound, and a fresh handshake works.
#[test]
fn a_junk_udp_flood_does_not_stop_sync() {
    let mut s = Scene::new();
    let rss = s.rss();
    const DATAGRAMS: usize = 20_000;
    const SOURCES: usize = 20;
    let flood = {
        let addr = s.addr;
        std::thread::spawn(move || {
            let mut rng = ChaCha8Rng::seed_from_u64(9);
            let start = Instant::now();
            let mut bytes = 0usize;
            let mut buf = vec![0u8; 1400];
            let mut sockets = Vec::new();
            for _ in 0..SOURCES {
                let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
                for _ in 0..DATAGRAMS / SOURCES {
                    let n = rng.random_range(1..=buf.len());
                    rng.fill_bytes(&mut buf[..n]);
                    bytes += socket.send_to(&buf[..n], addr).unwrap();
                }
                sockets.push(socket);
            }
            let took = start.elapsed();
            // What the province sent back to the junk's sources (version negotiation,
            // stateless resets): drained until each socket stays quiet for 50 ms.
            let (mut replies, mut reply_bytes) = (0usize, 0usize);
            for socket in &sockets {
                socket
                    .set_read_timeout(Some(Duration::from_millis(50)))
                    .unwrap();
                while let Ok(n) = socket.recv(&mut buf) {
                    replies += 1;
                    reply_bytes += n;
                }
            }
            (bytes, took, replies, reply_bytes)
        })
    };
    // Records posted while the flood runs, and after it, reach the province.
    s.post(10);
    let sync_during = s.wait_synced("during the junk flood");
    let (bytes, flood, replies, reply_bytes) = flood.join().unwrap();
    s.post(10);
    let sync = s.wait_synced("after the junk flood");
    // A fresh handshake (address validation, mutual TLS) still completes promptly.
    let handshake = s.rt.block_on(async {
        let start = Instant::now();
        let (_endpoint, conn) = s.connect().await;
        let took = start.elapsed();
        conn.close(0u32.into(), b"done");
        took
    });
    s.assert_clean();
    let rss = rss.finish("udp_flood");
    println!(
        "hostile_peer case=udp_flood datagrams={DATAGRAMS} sources={SOURCES} bytes={bytes} replies={replies} reply_bytes={reply_bytes} flood_ms={} sync_during_ms={} sync_after_ms={} fresh_handshake_ms={} stored_hostile=0 {rss}",
        ms(flood),
        ms(sync_during),
        ms(sync),
        ms(handshake),
    );
}
