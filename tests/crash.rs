//! Process-crash durability: SIGKILL a real node while a client posts batches; after a
//! restart every acknowledged record is there with the version and seq it was acknowledged
//! with, its hash verifies, nothing unsent appears, and the store opens every time.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use common::{Http, Network, RunningNode, vacancy};
use lmsync::core::model::{Kind, NodeCode};
use lmsync::node::storage::{SledStore, sled_options};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

/// (version, seq) acknowledged for an id.
type Acks = BTreeMap<String, (u64, u64)>;

fn seed() -> u64 {
    std::env::var("LMSYNC_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from(std::process::id()) ^ 0x5eed)
}

/// Posts batches until the node stops answering; every ack goes to `acks`.
fn client(
    api: String,
    token: String,
    cycle: u64,
    rng_seed: u64,
    sent: mpsc::Sender<Vec<String>>,
    acks: mpsc::Sender<Vec<Value>>,
    stop: Arc<AtomicBool>,
) {
    let http = Http::new();
    let mut rng = ChaCha8Rng::seed_from_u64(rng_seed);
    let mut next = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let size = rng.random_range(50..300);
        let batch: Vec<Value> = (0..size)
            .map(|_| {
                // Mostly new ids, some updates of earlier ones (new versions).
                let id = if next > 10 && rng.random_bool(0.2) {
                    rng.random_range(0..next)
                } else {
                    next += 1;
                    next
                };
                vacancy(
                    &format!("V-{cycle}-{id}"),
                    u32::try_from(rng.random_range(1..200)).unwrap(),
                )
            })
            .collect();
        let _ = sent.send(
            batch
                .iter()
                .map(|v| v["id"].as_str().unwrap().to_string())
                .collect(),
        );
        let body = serde_json::to_vec(&batch).unwrap();
        match http.post_raw(&format!("{api}/v1/records"), Some(&token), body) {
            Ok((200, answer)) => {
                let _ = acks.send(answer["accepted"].as_array().unwrap().clone());
            }
            _ => return,
        }
    }
}

fn record_acks(acked: &mut Acks, answer: Vec<Value>) {
    for a in answer {
        let id = a["id"].as_str().unwrap().to_string();
        let now = (a["version"].as_u64().unwrap(), a["seq"].as_u64().unwrap());
        let entry = acked.entry(id).or_insert(now);
        *entry = (*entry).max(now);
    }
}

#[test]
fn acknowledged_records_survive_sigkill() {
    let seed = seed();
    println!("crash test seed={seed} (rerun with LMSYNC_TEST_SEED={seed})");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let net = Network::new();
    let files = net.init("440100", None);
    let mut acked = Acks::new();
    let mut sent_ids = BTreeSet::new();
    let cycles = 4;
    for cycle in 0..cycles {
        let node = RunningNode::start(&files);
        let (sent_tx, sent_rx) = mpsc::channel();
        let (ack_tx, ack_rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let (api, token, stop2, client_seed) = (
            node.api.clone(),
            files.token.clone(),
            stop.clone(),
            rng.random(),
        );
        let worker = std::thread::spawn(move || {
            client(api, token, cycle, client_seed, sent_tx, ack_tx, stop2)
        });
        let kill_after = rng.random_range(2..12);
        for _ in 0..kill_after {
            record_acks(&mut acked, ack_rx.recv().expect("client stopped early"));
        }
        // The client is already posting its next batch: the kill lands mid-request.
        node.kill();
        stop.store(true, Ordering::SeqCst);
        worker.join().unwrap();
        ack_rx.try_iter().for_each(|a| record_acks(&mut acked, a));
        sent_ids.extend(sent_rx.try_iter().flatten());
    }
    assert!(
        acked.len() > 100,
        "the test acknowledged too little to mean anything"
    );

    // The store opens after every kill, and every acknowledged version is there.
    let node = RunningNode::start(&files);
    let http = Http::new();
    for (id, (version, seq)) in &acked {
        let (status, r) = http.get(&node.url(&format!("/v1/records/440100/vacancy/{id}")));
        assert_eq!(status, 200, "acknowledged record {id} lost (seed {seed})");
        let stored = (r["version"].as_u64().unwrap(), r["seq"].as_u64().unwrap());
        assert!(
            stored.0 >= *version,
            "{id}: version went back from {version} to {} (seed {seed})",
            stored.0
        );
        if stored.0 == *version {
            assert_eq!(
                stored.1, *seq,
                "{id}: same version, different seq (seed {seed})"
            );
        }
    }
    assert_eq!(node.terminate(), Some(0));

    let owner: NodeCode = "440100".parse().unwrap();
    let store = SledStore::open(&files.data, owner, sled_options(64 << 20)).unwrap();
    let mut stored = 0;
    let mut scanned = lmsync::core::reconcile::Digest::default();
    for record in store.scan_owner(owner) {
        let record = record.unwrap();
        scanned.merge(lmsync::core::reconcile::Digest {
            records: 1,
            sum: record.envelope.fingerprint(),
        });
        assert!(
            record.verify_hash().unwrap(),
            "hash mismatch for {} (seed {seed})",
            record.envelope.id
        );
        assert_eq!(record.envelope.kind, Kind::Vacancy);
        assert!(
            sent_ids.contains(&record.envelope.id),
            "phantom record {} (seed {seed})",
            record.envelope.id
        );
        stored += 1;
    }
    assert!(stored >= acked.len());
    assert_eq!(
        lmsync::core::store::Store::digest(&store, Some(owner), None),
        scanned,
        "the digest rebuilt from the change log matches the records (seed {seed})"
    );
    println!(
        "crash test: cycles={cycles} acked={} stored={stored} lost=0 phantom=0 seed={seed}",
        acked.len()
    );
}
