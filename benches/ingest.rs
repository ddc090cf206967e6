//! Ingest throughput, durable, batches of 1,000, as ratios to raw sled measured in the
//! same run (`docs/PERFORMANCE.md`):
//!
//! - `raw_sled`: the same encoded records under the same keys, `apply_batch` + flush +
//!   fdatasync of the data file: the limit.
//! - `store`: the node's write path without HTTP: version/seq planning (one read per
//!   record), content hashing, encoding, record + packed change-log keys, durable commit.
//! - `api`: a node started as `lmsync run` starts it, fed JSON over HTTP by 4 concurrent
//!   clients, as `lmsync import` does (parsing, validation, pseudonymisation included).
//!
//! Run: `cargo bench --bench ingest` (env `LMSYNC_BENCH_RECORDS`, `LMSYNC_BENCH_ROUNDS`).
//! Prints one line per figure: `name = value unit (ratio to limit)`, medians of the rounds;
//! after the first round, where the disk of raw sled and of the node's store goes, per
//! record.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use lmsync::core::model::ingest::Draft;
use lmsync::core::model::person::Pseudonymiser;
use lmsync::core::model::standards::Standards;
use lmsync::core::store::{Store, WriteBatch};
use lmsync::node::clock::{Clock, SystemClock};
use lmsync::node::config::Config;
use lmsync::node::storage::{SledStore, sled_options};
use lmsync::node::write::{Planner, Writer};
use serde_json::Value;

mod common;

use common::{BATCH, city, drafts, encoded, env_usize, raw_sled};

const CACHE: u64 = 256 << 20;

/// Planner + commit in one thread, batch after batch: no overlap of CPU and IO.
fn store_sequential(dir: &Path, drafts: &[Draft]) -> f64 {
    let store = SledStore::create(dir, city(), [1; 16], 0, sled_options(CACHE)).unwrap();
    let refs = Standards::builtin().code_refs();
    let start = Instant::now();
    for chunk in drafts.chunks(BATCH) {
        let mut planner = Planner::new(&store, city());
        for d in chunk {
            planner
                .plan(d.clone(), &refs, SystemClock.now_ms())
                .unwrap();
        }
        let records = planner.into_writes();
        store
            .commit(WriteBatch {
                records,
                ..WriteBatch::default()
            })
            .unwrap();
    }
    drafts.len() as f64 / start.elapsed().as_secs_f64()
}

/// The node's write path: the `Writer` (group commit, planning overlapped with the
/// durable commit), fed batches of 1,000 by 4 concurrent submitters as the API does.
fn store_writer(dir: &Path, drafts: &[Draft]) -> f64 {
    let store: Arc<dyn Store> =
        Arc::new(SledStore::create(dir, city(), [1; 16], 0, sled_options(CACHE)).unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let refs = Standards::builtin().code_refs();
    let batches: Vec<Vec<Draft>> = drafts.chunks(BATCH).map(<[Draft]>::to_vec).collect();
    let signal = lmsync::node::write::CommitSignal::default();
    let (writer, thread) = Writer::start(store, city(), Arc::new(SystemClock), signal).unwrap();
    let start = Instant::now();
    rt.block_on(async {
        let queue = Arc::new(std::sync::Mutex::new(batches.into_iter()));
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (writer, queue, refs) = (writer.clone(), queue.clone(), refs.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let next = queue.lock().unwrap().next();
                    let Some(batch) = next else { break };
                    writer.submit(batch, refs.clone()).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let rate = drafts.len() as f64 / start.elapsed().as_secs_f64();
    drop(writer);
    thread.join().unwrap();
    rate
}

fn node_config(dir: &Path) -> Config {
    common::city_config(dir, &"b".repeat(64), CACHE, "")
}

fn api(dir: &Path, json: &[Value]) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let node = lmsync::node::daemon::start(node_config(dir)).await.unwrap();
        let url = format!("http://{}/v1/records", node.api_addr);
        let bodies: Vec<Vec<u8>> = json
            .chunks(BATCH)
            .map(|c| serde_json::to_vec(c).unwrap())
            .collect();
        let start = Instant::now();
        common::post_all(&url, &"b".repeat(64), bodies, 4).await;
        let rate = json.len() as f64 / start.elapsed().as_secs_f64();
        node.stop().await.unwrap();
        rate
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing useful here.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env_usize("LMSYNC_BENCH_RECORDS", 100_000);
    let rounds = env_usize("LMSYNC_BENCH_ROUNDS", 5);
    let json = lmsync::tooling::synth::generate(city(), n, 42);
    let key = Pseudonymiser::new([7; 32], 1);
    let drafts = drafts(&json, &key);
    let encoded = encoded(&drafts);
    let bytes: usize = encoded.iter().map(|(_, v)| v.len()).sum();
    println!(
        "records = {n} per run, mean encoded size {} B, batches of {BATCH}, {rounds} rounds",
        bytes / n
    );
    let (mut raw, mut seq, mut st, mut ap) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let tmp =
            tempfile::tempdir_in(std::env::var("LMSYNC_BENCH_DIR").unwrap_or_else(|_| ".".into()))
                .unwrap();
        raw.push(raw_sled(&tmp.path().join("raw"), &encoded, CACHE));
        seq.push(store_sequential(&tmp.path().join("seq"), &drafts));
        st.push(store_writer(&tmp.path().join("store"), &drafts));
        ap.push(api(&tmp.path().join("api"), &json));
        println!(
            "round {round}: raw {:.0}  sequential {:.0}  store {:.0}  api {:.0} rec/s",
            raw[round], seq[round], st[round], ap[round]
        );
        if round == 0 {
            // Where a store's disk goes, against raw sled holding the same records.
            let raw_dir = tmp.path().join("raw");
            let raw_disk = common::dir_bytes(&raw_dir) as f64 / n as f64;
            println!("disk_raw_sled = {raw_disk:.0} B per record (the same keys and values)");
            let node = common::where_the_bytes_go(&tmp.path().join("api").join("data"));
            println!("disk_node = {node}");
        }
    }
    let limit = median(raw);
    println!("raw_sled_batch_durable = {limit:.0} rec/s (the limit)");
    let q = median(seq);
    println!(
        "store_sequential_durable = {q:.0} rec/s ({:.2}x raw sled; plan then commit, no overlap)",
        q / limit
    );
    let s = median(st);
    println!(
        "store_ingest_durable = {s:.0} rec/s ({:.2}x raw sled; goal >= 0.6)",
        s / limit
    );
    let a = median(ap);
    println!(
        "api_ingest_durable = {a:.0} rec/s ({:.2}x raw sled; goal >= 0.5)",
        a / limit
    );
}
