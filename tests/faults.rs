//! Real-process fault tests: SIGKILL cycles over a ministry, province 440000 and two
//! cities while the cities ingest continuously; afterwards every acknowledged version is at
//! every tier (lost = 0), nothing upstream that the city does not hold (phantom = 0), and no
//! transfer restarted from zero. Also: a city whose own store is corrupted, damaged, wiped
//! or older than its province's copy.
//!
//! `LMSYNC_TEST_SEED=S` replays a run's choices (victims and moments; the kernel's
//! scheduling is not replayed), `LMSYNC_FAULT_CYCLES=N` sets the number of kills (20 by
//! default, e.g. 100 for the long mode).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    Http, Ledger, Network, NodeFiles, RunningNode, digest, env_number, eventually, free_udp_port,
    lmsync_ok, owned_vacancy as vacancy,
};
use lmsync::core::model::NodeCode;
use lmsync::node::storage::{SledStore, sled_options};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

const CITIES: [&str; 2] = ["440100", "440300"];
/// Records per sync batch in this test (default 1000): small batches keep the bound on
/// records re-sent after a kill (4 batches in flight per owner and link) meaningful.
const BATCH_RECORDS: u64 = 50;
/// The longest a writer keeps retrying one batch before it declares its city dead.
const OUTAGE_LIMIT: Duration = Duration::from_secs(60);

fn seed() -> u64 {
    std::env::var("LMSYNC_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            u64::from(std::process::id()) << 32 ^ u64::from(nanos)
        })
}

/// Prints the seed when the test fails (a panic in this thread, including one propagated
/// from a writer thread by `join`).
struct SeedOnFailure(u64);

impl Drop for SeedOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "faults: FAILED with seed={0}; replay with LMSYNC_TEST_SEED={0}",
                self.0
            );
        }
    }
}

/// What one writer sent and had acknowledged, and what its outages cost.
#[derive(Default)]
struct Written {
    ledger: Ledger,
    /// Attempts that failed (node down, connection cut) and were retried.
    retries: u64,
    /// Longest time one batch waited for an answer across retries.
    longest_outage: Duration,
}

/// Posts batches of new vacancies (and some updates of earlier ids) to the city whose API
/// is in `api`, up to 250 records/s, until `stop`; retries a batch while the city is down.
fn write_continuously(
    owner: &str,
    api: &Mutex<String>,
    token: &str,
    seed: u64,
    stop: &AtomicBool,
    progress: &AtomicU64,
) -> Written {
    let poster = Http::with_timeout(Duration::from_secs(30));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut w = Written::default();
    while !stop.load(Ordering::SeqCst) {
        let size = rng.random_range(10..40);
        let batch = w.ledger.batch(&mut rng, owner, size, (20, 0.2));
        let body = serde_json::to_vec(&batch).unwrap();
        let first_try = Instant::now();
        loop {
            let url = format!("{}/v1/records", api.lock().unwrap());
            match poster.post_raw(&url, Some(token), body.clone()) {
                Ok((200, answer)) => {
                    w.ledger.acknowledged(&answer);
                    progress.fetch_add(1, Ordering::SeqCst);
                    break;
                }
                Ok((status @ (400..=499), answer)) => {
                    panic!("{owner} refused a valid batch: {status} {answer}")
                }
                // Down, restarting or cut mid-request: the batch is not acknowledged; send
                // the same body again (identical records are no-ops if they were stored).
                _ => {
                    w.retries += 1;
                    if stop.load(Ordering::SeqCst) {
                        return w;
                    }
                    assert!(
                        first_try.elapsed() < OUTAGE_LIMIT,
                        "{owner} did not answer for {OUTAGE_LIMIT:?}"
                    );
                    std::thread::sleep(Duration::from_millis(25));
                }
            }
        }
        w.longest_outage = w.longest_outage.max(first_try.elapsed());
        // Pacing (a steady rate), not synchronisation.
        std::thread::sleep(Duration::from_millis(100));
    }
    w
}

/// One node of the test network.
struct Node {
    files: NodeFiles,
    tier: &'static str,
    run: Option<RunningNode>,
    /// The API base URL of the current process (it changes on restart: port 0).
    api: Arc<Mutex<String>>,
}

impl Node {
    fn start(files: NodeFiles, tier: &'static str) -> Self {
        let run = RunningNode::start(&files);
        let api = Arc::new(Mutex::new(run.api.clone()));
        Node {
            files,
            tier,
            run: Some(run),
            api,
        }
    }

    fn run(&self) -> &RunningNode {
        self.run.as_ref().unwrap()
    }

    /// SIGKILL, then start again on the same config (same QUIC port); returns the time from
    /// spawning to the ready line (store open, summaries rebuilt, API bound).
    fn kill_and_restart(&mut self) -> Duration {
        self.run.take().unwrap().kill();
        let start = Instant::now();
        let run = RunningNode::start(&self.files);
        let reopen = start.elapsed();
        *self.api.lock().unwrap() = run.api.clone();
        self.run = Some(run);
        reopen
    }

    fn status(&self, http: &Http) -> Value {
        http.get(&self.run().url("/v1/status")).1
    }
}

/// Records received from children since the process started, from its status.
fn received(status: &Value) -> u64 {
    status["children"].as_array().map_or(0, |c| {
        c.iter()
            .filter_map(|c| c["records_received"].as_u64())
            .sum()
    })
}

/// True when records or acks moved on one of the node's links within the last second.
fn sync_active(status: &Value) -> bool {
    let time = |v: &Value| {
        v.as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    let Some(now) = time(&status["now"]) else {
        return false;
    };
    std::iter::once(&status["parent"])
        .chain(status["children"].as_array().into_iter().flatten())
        .filter_map(|link| time(&link["last_sync"]))
        .any(|t| now - t < chrono::TimeDelta::seconds(1))
}

/// The records of `owner` in a stopped node's store: id → version (hashes verified).
fn stored(files: &NodeFiles, owner: &str, seed: u64) -> BTreeMap<String, u64> {
    common::stored_records(files, owner, &format!("seed {seed}")).0
}

#[test]
fn sigkill_cycles_at_every_tier_lose_nothing_and_converge() {
    let seed = seed();
    let _report = SeedOnFailure(seed);
    let cycles = env_number("LMSYNC_FAULT_CYCLES", 20);
    println!("faults: seed={seed} cycles={cycles} (replay with LMSYNC_TEST_SEED={seed})");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let net = Network::new();
    // Fixed QUIC ports: a restarted parent keeps its address.
    let (mport, pport) = (free_udp_port(), free_udp_port());
    let mut files = vec![
        (
            net.init_at("100000", None, &format!("127.0.0.1:{mport}")),
            "ministry",
        ),
        (
            net.init_at(
                "440000",
                Some(&format!("100000@127.0.0.1:{mport}")),
                &format!("127.0.0.1:{pport}"),
            ),
            "province",
        ),
    ];
    for c in CITIES {
        files.push((
            net.init_at(c, Some(&format!("440000@127.0.0.1:{pport}")), "127.0.0.1:0"),
            "city",
        ));
    }
    for (f, _) in &files {
        let text = std::fs::read_to_string(&f.config).unwrap().replace(
            "batch_records = 1000",
            &format!("batch_records = {BATCH_RECORDS}"),
        );
        assert!(text.contains(&format!("batch_records = {BATCH_RECORDS}")));
        std::fs::write(&f.config, text).unwrap();
    }
    let mut nodes: Vec<Node> = files
        .into_iter()
        .map(|(f, tier)| Node::start(f, tier))
        .collect();
    let http = Http::new();

    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    let mut progress = Vec::new();
    for node in &nodes[2..] {
        let (owner, api, token, stop) = (
            node.files.code.clone(),
            node.api.clone(),
            node.files.token.clone(),
            stop.clone(),
        );
        let done = Arc::new(AtomicU64::new(0));
        progress.push(done.clone());
        let writer_seed = rng.random();
        writers.push(std::thread::spawn(move || {
            write_continuously(&owner, &api, &token, writer_seed, &stop, &done)
        }));
    }
    eventually("first acks at both cities", Duration::from_secs(30), || {
        progress.iter().all(|p| p.load(Ordering::SeqCst) > 0)
    });

    let mut kills: BTreeMap<&str, u64> = ["city", "province", "ministry"]
        .into_iter()
        .map(|t| (t, 0))
        .collect();
    let mut reopen_max = Duration::ZERO;
    // Kills that landed while records or acks were moving on one of the victim's links.
    let mut active_at_kill = 0;
    let (mut received_province, mut received_ministry) = (0, 0);
    for cycle in 0..cycles {
        // A random moment: after the last restart the links are reconnecting, batches are
        // in transfer, being applied or acknowledged.
        std::thread::sleep(Duration::from_millis(rng.random_range(0..=1500)));
        let victim = rng.random_range(0..nodes.len());
        let node = &mut nodes[victim];
        let status = node.status(&http);
        match node.tier {
            "province" => received_province += received(&status),
            "ministry" => received_ministry += received(&status),
            _ => {}
        }
        let active = sync_active(&status);
        active_at_kill += u64::from(active);
        let reopen = node.kill_and_restart();
        reopen_max = reopen_max.max(reopen);
        *kills.get_mut(node.tier).unwrap() += 1;
        println!(
            "cycle {cycle}: killed {} ({}{}), reopened in {} ms",
            node.files.code,
            node.tier,
            if active { ", syncing" } else { "" },
            reopen.as_millis()
        );
    }

    stop.store(true, Ordering::SeqCst);
    let written: Vec<Written> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let stopped = Instant::now();
    for node in &nodes[2..] {
        let owner = &node.files.code;
        eventually(
            &format!("{owner}'s records at every tier (seed {seed})"),
            // The reconnect backoff (up to 30 s) after the idle timeout (10 s) that reveals
            // a killed parent, then the transfer.
            Duration::from_secs(120),
            || {
                let at_city = digest(&http, node.run(), owner);
                digest(&http, nodes[1].run(), owner) == at_city
                    && digest(&http, nodes[0].run(), owner) == at_city
            },
        );
    }
    let converge = stopped.elapsed();
    received_province += received(&nodes[1].status(&http));
    received_ministry += received(&nodes[0].status(&http));

    // Stop every node cleanly and read the stores themselves: every record, every tier.
    // No kill may look like damage: a store set aside and rebuilt would be a false alarm.
    for node in &mut nodes {
        assert_eq!(node.run.take().unwrap().terminate(), Some(0));
        assert!(
            set_aside(&node.files).is_empty(),
            "{} took a SIGKILL for damage (seed {seed})",
            node.files.code
        );
    }
    let (mut acked_total, mut ids_total, mut versions_total) = (0, 0, 0);
    for (city, w) in nodes[2..].iter().zip(&written) {
        let owner = &city.files.code;
        let at_city = stored(&city.files, owner, seed);
        versions_total += at_city.values().sum::<u64>();
        // The city itself, the province and the ministry (not the sibling city).
        for node in nodes
            .iter()
            .filter(|n| n.tier != "city" || n.files.code == *owner)
        {
            let here = if node.files.code == *owner {
                at_city.clone()
            } else {
                stored(&node.files, owner, seed)
            };
            for (id, version) in &w.ledger.acked {
                let held = here.get(id).copied();
                assert!(
                    held.is_some_and(|h| h >= *version),
                    "lost: {owner}'s {id} v{version} acknowledged, {} holds {held:?} (seed {seed})",
                    node.files.code
                );
            }
            for id in here.keys() {
                assert!(
                    w.ledger.sent.contains(id),
                    "phantom: {} holds {owner}'s {id}, never sent (seed {seed})",
                    node.files.code
                );
            }
            assert_eq!(
                here, at_city,
                "phantom or stale: {} differs from the city {owner} (seed {seed})",
                node.files.code
            );
        }
        acked_total += w.ledger.acks;
        ids_total += w.ledger.acked.len();
        println!(
            "writer {owner}: acks={} ids={} sent_ids={} retries={} longest_outage_ms={}",
            w.ledger.acks,
            w.ledger.acked.len(),
            w.ledger.sent.len(),
            w.retries,
            w.longest_outage.as_millis()
        );
    }
    assert!(
        ids_total > 1000,
        "too little was acknowledged to mean anything"
    );

    // No transfer restarted from zero: each record version crossed each link about once.
    // A kill of either end of a link loses at most the batches in flight (4 per owner).
    let in_flight = |kills: u64| kills * CITIES.len() as u64 * 4 * BATCH_RECORDS;
    let (kc, kp, km) = (kills["city"], kills["province"], kills["ministry"]);
    println!(
        "received: province={received_province} ministry={received_ministry} for {versions_total} versions"
    );
    assert!(
        received_province <= versions_total + in_flight(kc + kp),
        "a transfer to the province restarted: {received_province} for {versions_total} (seed {seed})"
    );
    assert!(
        received_ministry <= versions_total + in_flight(kp + km),
        "a transfer to the ministry restarted: {received_ministry} for {versions_total} (seed {seed})"
    );
    println!(
        "faults: seed={seed} cycles={cycles} kills={{city:{kc}, province:{kp}, ministry:{km}}} syncing_at_kill={active_at_kill} acked={acked_total} ids={ids_total} lost=0 phantom=0 max_reopen_ms={} converge_ms={}",
        reopen_max.as_millis(),
        converge.as_millis()
    );
}

/// A city with 200 records at every tier, stopped; one of its own records is then
/// overwritten on disk (status changed, hash kept). Returns the tree (city stopped), the
/// city's files, the corrupted record's URL path and the good copy as the city served it.
fn city_with_a_corrupted_record(http: &Http) -> (common::Tree, NodeFiles, String, Value) {
    let mut t = common::tree(&["440100"]);
    let batch: Vec<Value> = (0..200)
        .map(|i| vacancy("440100", &format!("V-{i}"), 5))
        .collect();
    let (status, answer) = http.post(
        &t.cities[0].1.url("/v1/records"),
        &t.cities[0].0.token,
        &Value::Array(batch),
    );
    assert_eq!(status, 200, "{answer}");
    common::converged(http, &t);
    let (files, run) = t.cities.pop().unwrap();
    let url = "/v1/records/440100/vacancy/V-7".to_string();
    let (_, good) = http.get(&run.url(&url));
    assert_eq!(run.terminate(), Some(0));
    let owner: NodeCode = "440100".parse().unwrap();
    let store = SledStore::open(&files.data, owner, sled_options(16 << 20)).unwrap();
    let key = lmsync::core::model::RecordKey::of(lmsync::core::model::Kind::Vacancy, "V-7");
    let mut record = lmsync::core::store::Store::get_record(&store, owner, key)
        .unwrap()
        .unwrap();
    record.envelope.status = lmsync::core::model::Status::Voided;
    store.corrupt_record_for_test(owner, &record).unwrap();
    assert!(!record.verify_hash().unwrap());
    (t, files, url, good)
}

/// The scrub re-hashes every record and removes the bad copy (the city stops serving the
/// corrupted version); nothing of the corruption reaches upstream; and anti-entropy sends
/// the city its good copy back from the province (a child's own records are repaired
/// downward), so a later write of the same id continues from the right version.
#[test]
fn a_city_record_corrupted_on_disk_is_detected_not_passed_on_and_restored() {
    let http = Http::new();
    let (t, files, url, good) = city_with_a_corrupted_record(&http);
    let upstream = digest(&http, &t.province.1, "440100");
    let city = RunningNode::start(&files);
    eventually(
        "the good copy back at the city",
        Duration::from_secs(60),
        || {
            // Upstream never changes meanwhile (anti-entropy runs every second here).
            assert_eq!(digest(&http, &t.province.1, "440100"), upstream);
            assert_eq!(digest(&http, &t.ministry.1, "440100"), upstream);
            // (A committed record reads back a moment before the summaries move.)
            let (status, record) = http.get(&city.url(&url));
            status == 200
                && record["hash"] == good["hash"]
                && record["status"] == good["status"]
                && digest(&http, &city, "440100") == upstream
        },
    );
    let (status, at_ministry) = http.get(&t.ministry.1.url(&url));
    assert_eq!((status, &at_ministry["hash"]), (200, &good["hash"]));
}

/// Posts `batches` × 200 vacancies of `code` to `node`, each acknowledged.
fn post_vacancies(http: &Http, node: &RunningNode, files: &NodeFiles, batches: usize) {
    for b in 0..batches {
        let batch: Vec<Value> = (0..200)
            .map(|i| vacancy(&files.code, &format!("V-{b}-{i}"), 5))
            .collect();
        let (status, answer) =
            http.post(&node.url("/v1/records"), &files.token, &Value::Array(batch));
        assert_eq!(status, 200, "{answer}");
    }
}

/// Overwrites 4 KiB in the middle of sled's `db` file with seeded random bytes (stopped
/// node). sled's recovery stops at the damaged message and silently drops what follows.
fn damage_store_file(files: &NodeFiles) {
    damage_store_file_at(files, 4, 8);
}

/// Overwrites 4 KiB at `eighths`/8 of sled's `db` file with seeded random bytes.
fn damage_store_file_at(files: &NodeFiles, eighths: usize, seed: u64) {
    let db = files.data.join("db");
    let mut bytes = std::fs::read(&db).unwrap();
    let at = (bytes.len() * eighths / 8).min(bytes.len().saturating_sub(4096));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.fill(&mut bytes[at..at + 4096]);
    std::fs::write(&db, bytes).unwrap();
}

/// The `damaged-*` directories a node set its store aside into.
fn set_aside(files: &NodeFiles) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(&files.data)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("damaged-"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A node without a parent whose store file was damaged while it was stopped refuses to
/// start and names the damage; sled alone would drop the log after the damage and serve
/// the rest (1,000 of 2,000 records here) as healthy. The commit seal beside the store
/// shows that acknowledged batches are gone. sled's recovery rewrites the damaged tail on
/// every open, so a second start must refuse just the same: the seal is kept as evidence.
#[test]
fn a_damaged_store_file_is_detected_on_open() {
    let http = Http::new();
    let net = Network::new();
    let files = net.init("440100", None);
    let run = RunningNode::start(&files);
    post_vacancies(&http, &run, &files, 10);
    assert_eq!(run.terminate(), Some(0));
    damage_store_file(&files);
    let seal = std::fs::read(files.data.join("seal")).unwrap();

    for attempt in 1..=2 {
        let out = common::bin()
            .args(["run", "--config", files.config.to_str().unwrap()])
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "start {attempt} on a damaged store: {stderr}"
        );
        assert!(
            stderr.contains("the store is damaged")
                && stderr.contains("no parent or children to rebuild from"),
            "start {attempt}: {stderr}"
        );
        println!(
            "start {attempt} refused: {}",
            stderr.lines().last().unwrap_or_default()
        );
        assert!(
            std::fs::read(files.data.join("seal")).unwrap() == seal,
            "the seal is left as evidence"
        );
    }
    assert!(set_aside(&files).is_empty());
}

/// Damage anywhere in the store file, not only where sled's recovery drops the rest: at
/// each eighth of the file in turn, a node without a parent either refuses to start and
/// says the store is damaged (including where sled itself panics while recovering), or,
/// when the damage fell on space sled no longer uses, starts with every record.
#[test]
fn damage_anywhere_in_the_store_file_never_serves_fewer_records() {
    let http = Http::new();
    let net = Network::new();
    let files = net.init("440100", None);
    let run = RunningNode::start(&files);
    post_vacancies(&http, &run, &files, 10);
    let before = digest(&http, &run, "440100");
    assert_eq!(run.terminate(), Some(0));
    let pristine = files.data.with_extension("pristine");
    common::copy_dir(&files.data, &pristine);

    let mut outcomes = Vec::new();
    for eighths in 0..8 {
        std::fs::remove_dir_all(&files.data).unwrap();
        common::copy_dir(&pristine, &files.data);
        damage_store_file_at(&files, eighths, 100 + eighths as u64);
        let mut child = common::bin()
            .args(["run", "--config", files.config.to_str().unwrap()])
            .env("RUST_LOG", "error")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        if let Some(api) = line.split("API ").nth(1).map(str::trim) {
            let after = http.get(&format!("{api}/v1/digest?owner=440100")).1;
            // The summaries come from the change log; the records themselves must read
            // back too (every tenth of them).
            let unreadable: Vec<String> = (0..10)
                .flat_map(|b| (0..200).step_by(10).map(move |i| format!("V-{b}-{i}")))
                .filter(|id| {
                    let url = format!("{api}/v1/records/440100/vacancy/{id}");
                    http.try_get(&url).is_none_or(|(status, _)| status != 200)
                })
                .collect();
            child.kill().unwrap();
            child.wait().unwrap();
            assert_eq!(
                after, before,
                "damage at {eighths}/8 came back as a healthy store with other records"
            );
            assert!(
                unreadable.is_empty(),
                "damage at {eighths}/8: started, but {unreadable:?} do not read back"
            );
            outcomes.push(format!("{eighths}/8: started whole"));
        } else {
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success());
            let said = stderr
                .lines()
                .find(|l| l.starts_with("error: "))
                .unwrap_or_else(|| panic!("damage at {eighths}/8: no error line: {stderr}"));
            assert!(said.contains("the store is damaged"), "{eighths}/8: {said}");
            outcomes.push(format!(
                "{eighths}/8: refused ({})",
                &said[..said.len().min(160)]
            ));
        }
    }
    println!("damage outcomes:\n  {}", outcomes.join("\n  "));
    assert!(
        outcomes.iter().any(|o| o.contains("refused")),
        "no damage was detected anywhere"
    );
}

/// A city whose store file was damaged (or whose data directory was wiped) while it was
/// stopped sets the damaged files aside, rebuilds from its province, refuses writes while
/// it restores, and ends with every record it had acknowledged; then it syncs as before.
fn city_store_rebuilt_from_its_province(break_store: impl FnOnce(&NodeFiles), damaged: bool) {
    let http = Http::new();
    let mut t = common::tree(&["440100"]);
    post_vacancies(&http, &t.cities[0].1, &t.cities[0].0, 10);
    common::converged(&http, &t);
    let upstream = digest(&http, &t.province.1, "440100");
    assert_eq!(upstream["records"], 2000);
    let (files, run) = t.cities.pop().unwrap();
    assert_eq!(run.terminate(), Some(0));
    break_store(&files);

    let city = RunningNode::start(&files);
    // Rebuilt, not served: until its records are back it refuses writes.
    let (status, body) = http.post(
        &city.url("/v1/records"),
        &files.token,
        &Value::Array(vec![vacancy("440100", "V-new", 1)]),
    );
    let restored_already = status == 200;
    assert!(
        restored_already || (status == 503 && body["error"] == "restoring"),
        "{status} {body}"
    );
    eventually(
        "the city's records back from its province",
        Duration::from_secs(60),
        || {
            let s = http.get(&city.url("/v1/status")).1;
            s["restoring"] == false && digest(&http, &city, "440100")["records"] == 2000
        },
    );
    let aside = set_aside(&files);
    let reported = http.get(&city.url("/v1/status")).1["store"]["set_aside"].clone();
    if damaged {
        assert_eq!(aside.len(), 1, "the damaged store is kept for inspection");
        assert!(aside[0].join("db").exists() && aside[0].join("seal").exists());
        let name = aside[0].file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(reported, serde_json::json!([name]), "status names it");
    } else {
        assert!(aside.is_empty());
        assert_eq!(reported, serde_json::json!([]));
    }
    // It syncs as before: a new record reaches the province.
    t.cities.push((files, city));
    a_new_record_reaches_the_province(&http, &t, 2001);
}

/// Writes one more record at the tree's city; it is accepted and the province ends with
/// `expected` records of the city, the same as the city.
fn a_new_record_reaches_the_province(http: &Http, t: &common::Tree, expected: u64) {
    let (files, city) = &t.cities[0];
    let (status, body) = http.post(
        &city.url("/v1/records"),
        &files.token,
        &Value::Array(vec![vacancy("440100", "V-after", 1)]),
    );
    assert_eq!(status, 200, "{body}");
    common::converged(http, t);
    assert_eq!(digest(http, &t.province.1, "440100")["records"], expected);
    assert_eq!(
        digest(http, &t.province.1, "440100"),
        digest(http, city, "440100")
    );
}

#[test]
fn a_damaged_city_store_is_set_aside_and_rebuilt_from_its_province() {
    city_store_rebuilt_from_its_province(damage_store_file, true);
}

#[test]
fn a_wiped_city_store_is_rebuilt_from_its_province() {
    city_store_rebuilt_from_its_province(
        |files| std::fs::remove_dir_all(&files.data).unwrap(),
        false,
    );
}

/// Publishes a `policy` document at `node`; returns the version it got.
fn publish_policy(http: &Http, node: &RunningNode, files: &NodeFiles, id: &str, text: &str) -> u64 {
    let doc = serde_json::json!({"kind": "policy", "id": id, "body": {"text": text}});
    let (status, body) = http.post(&node.url("/v1/documents"), &files.token, &doc);
    assert_eq!(status, 200, "{body}");
    body["version"].as_u64().unwrap()
}

/// The version of `policy/id` a node holds, if any.
fn policy_version(http: &Http, node: &RunningNode, id: &str) -> Option<u64> {
    let (status, body) = http.get(&node.url(&format!("/v1/documents/policy/{id}")));
    (status == 200).then(|| body["version"].as_u64().unwrap())
}

/// The ministry has no parent: when its data directory is wiped it rebuilds from its
/// provinces. It refuses writes and publishing until a province has given back the
/// documents it issued; then every city's records are back with the same digests, and
/// the next publication continues the version sequence (a reused version would be ignored
/// by every node that holds the lost one) and reaches the city.
#[test]
fn a_wiped_ministry_is_rebuilt_from_its_provinces() {
    let http = Http::new();
    let common::Tree {
        net,
        ministry: (mf, mr),
        province,
        cities,
    } = common::tree(&["440100"]);
    post_vacancies(&http, &cities[0].1, &cities[0].0, 5);
    publish_policy(&http, &mr, &mf, "M-notice", "first");
    assert_eq!(publish_policy(&http, &mr, &mf, "M-notice", "second"), 2);
    let city = &cities[0].1;
    eventually("the notice at the city", Duration::from_secs(60), || {
        policy_version(&http, city, "M-notice") == Some(2)
    });
    let whole = digest(&http, city, "440100");
    eventually(
        "the city's records at the ministry",
        Duration::from_secs(60),
        || digest(&http, &mr, "440100") == whole,
    );
    assert_eq!(mr.terminate(), Some(0));
    std::fs::remove_dir_all(&mf.data).unwrap();

    // With its province away, nothing can come back: the ministry refuses to publish.
    let (pf, pr) = province;
    assert_eq!(pr.terminate(), Some(0));
    let mr = RunningNode::start(&mf);
    let (status, body) = http.post(
        &mr.url("/v1/documents"),
        &mf.token,
        &serde_json::json!({"kind": "policy", "id": "M-notice", "body": {"text": "too early"}}),
    );
    assert!(
        status == 503 && body["error"] == "restoring",
        "{status} {body}"
    );
    assert_eq!(http.get(&mr.url("/v1/status")).1["restoring"], true);
    let status_text = lmsync_ok(&["status", "--api", &mr.url("")]);
    assert!(
        status_text.contains("REBUILDING from its children"),
        "{status_text}"
    );

    let pr = RunningNode::start(&pf);
    let province = (pf, pr);
    eventually(
        "the ministry rebuilt from its province",
        Duration::from_secs(60),
        || {
            http.get(&mr.url("/v1/status")).1["restoring"] == false
                && policy_version(&http, &mr, "M-notice") == Some(2)
                && digest(&http, &mr, "440100") == whole
        },
    );
    assert!(
        set_aside(&mf).is_empty(),
        "a wiped store has nothing to set aside"
    );
    assert_eq!(publish_policy(&http, &mr, &mf, "M-notice", "third"), 3);
    eventually(
        "the new version at the city",
        Duration::from_secs(60),
        || policy_version(&http, city, "M-notice") == Some(3),
    );
    let t = common::Tree {
        net,
        ministry: (mf, mr),
        province,
        cities,
    };
    let next = whole["records"].as_u64().unwrap() + 1;
    a_new_record_reaches_the_province(&http, &t, next);
}

/// A city brought back from an older backup of its own store (consistent, so nothing is
/// wrong on open) learns from its province's acknowledgement that the province holds more
/// of its records, restores them, and continues its sequence after them: a new record is
/// not mistaken for one the province already holds.
#[test]
fn a_city_back_from_an_older_backup_restores_what_its_province_holds() {
    let http = Http::new();
    let mut t = common::tree(&["440100"]);
    post_vacancies(&http, &t.cities[0].1, &t.cities[0].0, 5);
    common::converged(&http, &t);
    let (files, run) = t.cities.pop().unwrap();
    assert_eq!(run.terminate(), Some(0));
    let backup = files.data.with_extension("backup");
    common::copy_dir(&files.data, &backup);

    // The city goes on: 1,000 more records, all at the province.
    let run = RunningNode::start(&files);
    let more: Vec<Value> = (0..1000)
        .map(|i| vacancy("440100", &format!("W-{i}"), 5))
        .collect();
    let (status, body) = http.post(&run.url("/v1/records"), &files.token, &Value::Array(more));
    assert_eq!(status, 200, "{body}");
    t.cities.push((files, run));
    common::converged(&http, &t);
    let (files, run) = t.cities.pop().unwrap();
    assert_eq!(run.terminate(), Some(0));

    // The operator restores the older backup.
    std::fs::remove_dir_all(&files.data).unwrap();
    std::fs::rename(&backup, &files.data).unwrap();
    let city = RunningNode::start(&files);
    eventually(
        "the city's newer records back from its province",
        Duration::from_secs(60),
        || {
            let s = http.get(&city.url("/v1/status")).1;
            s["restoring"] == false && digest(&http, &city, "440100")["records"] == 2000
        },
    );
    // Through the restore (not record by record): the city says so.
    let uplink = http.get(&city.url("/v1/status")).1["parent"].clone();
    assert!(
        uplink["alerts"].to_string().contains("restored from it"),
        "{uplink}"
    );
    t.cities.push((files, city));
    a_new_record_reaches_the_province(&http, &t, 2001);
}
