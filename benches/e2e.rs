//! End-to-end throughput city → province → ministry, as a ratio to raw sled measured in
//! the same run (`docs/PERFORMANCE.md`):
//!
//! - `raw_sled`: N encoded records under the node's keys, `apply_batch` of 1,000 + flush +
//!   fdatasync of the data file (as `benches/ingest.rs`). Every record must become durable
//!   in three stores that share the same two cores, so the end-to-end limit is raw ÷ 3.
//! - `e2e`: a ministry (100000), a province (440000) and a city (440100), each started as
//!   `lmsync run` starts it (`lmsync::node::daemon::start`) with the demo's files
//!   (`lmsync::tooling::demo::prepare_node`, sync interval 200 ms), in one tokio runtime with 2
//!   workers. N synthetic records are POSTed to the city's API in batches of 1,000 by 4
//!   concurrent clients; the clock runs from the first POST until the ministry's
//!   `GET /v1/digest?owner=440100` equals the city's (polled every 50 ms). Figures: ingest
//!   time at the city, time until the province matches, time until the ministry matches,
//!   and records/s = distinct records stored (the digest's `records`) ÷ time to the
//!   ministry match.
//!
//! Run: `cargo bench --bench e2e` (env `LMSYNC_E2E_RECORDS`, default 100,000;
//! `LMSYNC_E2E_ROUNDS`, default 3; `LMSYNC_BENCH_DIR`, default `.`). Prints one line per
//! figure: `name = value unit (ratio to limit)`, medians of the rounds, fresh nodes and
//! directories every round.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss
)]

use std::path::Path;
use std::time::{Duration, Instant};

use lmsync::core::model::NodeCode;
use serde_json::Value;

mod common;

use common::{BATCH, city, encoded, env_usize, raw_sled};

const CACHE: u64 = 256 << 20;
const CLIENTS: usize = 4;
const POLL: Duration = Duration::from_millis(50);

fn code(c: u32) -> NodeCode {
    NodeCode::new(c).unwrap()
}

/// One started node of the three.
struct Node {
    api: String,
    token: String,
    running: lmsync::node::daemon::RunningNode,
}

impl Node {
    async fn start(dir: &Path, ca: &Path, node: NodeCode, parent: Option<&Node>) -> Node {
        let parent = parent.map(|p| {
            let quic = p
                .running
                .sync
                .quic_addr
                .expect("the parent listens on QUIC");
            format!("{}@{quic}", node.parent().unwrap())
        });
        let config = lmsync::tooling::demo::prepare_node(dir, ca, node, parent.as_deref()).unwrap();
        let token = lmsync::node::daemon::read_token(&config.token_file).unwrap();
        let running = lmsync::node::daemon::start(config).await.unwrap();
        Node {
            api: format!("http://{}", running.api_addr),
            token,
            running,
        }
    }

    /// `(records, root)` of the city's records here.
    async fn digest(&self, client: &reqwest::Client) -> (u64, String) {
        let d: Value = client
            .get(format!("{}/v1/digest?owner={}", self.api, city()))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            d["records"].as_u64().unwrap(),
            d["root"].as_str().unwrap().to_string(),
        )
    }
}

/// One round's figures, in seconds from the first POST (None: never matched).
struct Round {
    ingest: f64,
    province: Option<f64>,
    ministry: Option<f64>,
    records: u64,
}

async fn feed(city: &Node, bodies: Vec<Vec<u8>>) {
    let url = format!("{}/v1/records", city.api);
    common::post_all(&url, &city.token, bodies, CLIENTS).await;
}

async fn round(dir: &Path, bodies: Vec<Vec<u8>>, give_up: Duration) -> Round {
    let ca = dir.join("ca");
    lmsync::node::pki::init_ca(&ca).unwrap();
    let ministry = Node::start(dir, &ca, code(100_000), None).await;
    let province = Node::start(dir, &ca, code(440_000), Some(&ministry)).await;
    let city = Node::start(dir, &ca, city(), Some(&province)).await;
    let client = reqwest::Client::new();

    let start = Instant::now();
    feed(&city, bodies).await;
    let ingest = start.elapsed().as_secs_f64();
    // Every POST is acknowledged, so the city's digest is final from here on.
    let target = city.digest(&client).await;
    let (mut at_province, mut at_ministry) = (None, None);
    let mut last = ((0, String::new()), (0, String::new()));
    while start.elapsed() < give_up {
        if at_province.is_none() {
            last.0 = province.digest(&client).await;
            if last.0 == target {
                at_province = Some(start.elapsed().as_secs_f64());
            }
        }
        last.1 = ministry.digest(&client).await;
        if last.1 == target {
            at_ministry = Some(start.elapsed().as_secs_f64());
            at_province.get_or_insert_with(|| start.elapsed().as_secs_f64());
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    if at_ministry.is_none() {
        println!(
            "  gave up after {:.0} s: city {} records, province {} (matched: {}), ministry {}",
            give_up.as_secs_f64(),
            target.0,
            last.0.0,
            at_province.is_some(),
            last.1.0
        );
    }
    for node in [city, province, ministry] {
        node.running.stop().await.unwrap();
    }
    Round {
        ingest,
        province: at_province,
        ministry: at_ministry,
        records: target.0,
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

fn secs(t: Option<f64>) -> String {
    t.map_or_else(|| "never".to_string(), |t| format!("{t:.2} s"))
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing useful here.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env_usize("LMSYNC_E2E_RECORDS", 100_000);
    let rounds = env_usize("LMSYNC_E2E_ROUNDS", 3).max(1);
    let base = std::env::var("LMSYNC_BENCH_DIR").unwrap_or_else(|_| ".".into());
    let json = lmsync::tooling::synth::generate(city(), n, 42);
    let encoded = encoded(&common::drafts(
        &json,
        &lmsync::core::model::person::Pseudonymiser::new([7; 32], 1),
    ));
    let bytes: usize = encoded.iter().map(|(_, v)| v.len()).sum();
    let bodies: Vec<Vec<u8>> = json
        .chunks(BATCH)
        .map(|c| serde_json::to_vec(c).unwrap())
        .collect();
    println!(
        "records = {n} per run, mean encoded size {} B, batches of {BATCH}, {CLIENTS} clients, \
         {rounds} rounds",
        bytes / n.max(1)
    );
    println!(
        "setup: 3 nodes (ministry 100000, province 440000, city 440100) in one process, one \
         tokio runtime with 2 workers, {} cores available, sync interval 200 ms, digest polled \
         every {} ms",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        POLL.as_millis()
    );
    let (mut raw, mut ingest, mut province, mut ministry, mut e2e) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in 0..rounds {
        let tmp = tempfile::tempdir_in(&base).unwrap();
        let limit = raw_sled(&tmp.path().join("raw"), &encoded, CACHE);
        raw.push(limit);
        std::fs::remove_dir_all(tmp.path().join("raw")).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        // Generous: ten times what the raw limit allows for the three stores, at least 2 min.
        let give_up = Duration::from_secs_f64((30.0 * n as f64 / limit).max(120.0));
        let out = rt.block_on(round(&tmp.path().join("net"), bodies.clone(), give_up));
        drop(rt);
        ingest.push(out.ingest);
        out.province.into_iter().for_each(|t| province.push(t));
        let rate = out.ministry.map(|t| out.records as f64 / t);
        if let Some(rate) = rate {
            ministry.push(out.ministry.unwrap_or_default());
            e2e.push(rate);
        }
        println!(
            "round {r}: raw {limit:.0} rec/s; city ingest {:.2} s ({:.0} rec/s), province \
             match {}, ministry match {}, {} records, e2e {} rec/s ({} x raw / 3)",
            out.ingest,
            n as f64 / out.ingest,
            secs(out.province),
            secs(out.ministry),
            out.records,
            rate.map_or_else(|| "-".into(), |r| format!("{r:.0}")),
            rate.map_or_else(|| "-".into(), |r| format!("{:.2}", r / (limit / 3.0))),
        );
    }
    let limit = median(raw).unwrap();
    println!("raw_sled_batch_durable = {limit:.0} rec/s (the limit per store)");
    println!(
        "e2e_limit = {:.0} rec/s (raw sled / 3: three durable stores on the same cores)",
        limit / 3.0
    );
    let t = median(ingest).unwrap();
    let rate = n as f64 / t;
    println!(
        "city_ingest_time = {t:.2} s; city_ingest = {rate:.0} rec/s ({:.2}x raw sled; context \
         only, the city shares the cores with its province and ministry)",
        rate / limit
    );
    println!(
        "province_match_time = {} ({} of {rounds} rounds matched)",
        secs(median(province.clone())),
        province.len()
    );
    println!(
        "ministry_match_time = {} ({} of {rounds} rounds matched)",
        secs(median(ministry.clone())),
        ministry.len()
    );
    match median(e2e) {
        Some(e) => println!(
            "e2e_city_to_ministry = {e:.0} rec/s ({:.2}x raw sled / 3; goal >= 0.5)",
            e / (limit / 3.0)
        ),
        None => println!("e2e_city_to_ministry = never matched (0.00x raw sled / 3; goal >= 0.5)"),
    }
}
