//! The public vacancy board under load (`docs/PERFORMANCE.md`): search latency with many
//! concurrent readers over a large board, and the ingest rate of the same node with and
//! without those readers, measured in the same run.
//!
//! A city node (as `lmsync run` starts it, with `[public]`) ingests half of N vacancies
//! over its API with 4 clients and no readers (filling the board), then the other half
//! in W windows, alternately without readers (quiet) and while R readers search its
//! public listener (loaded, timing every search). The windows go quiet, loaded, loaded,
//! quiet, and again (ABBA), so the slowing of a growing store falls on both alike and
//! the ratio of their rates is the readers' cost alone. Searches mix the board's first
//! page, an occupation group, an area, a wage range, words and a deeper page.
//!
//! Run: `cargo bench --bench public` (env `LMSYNC_BENCH_VACANCIES`, default 1,000,000;
//! `LMSYNC_BENCH_READERS`, default 200; `LMSYNC_BENCH_READER_PAUSE_MS`, the pause of each
//! reader between searches, default 1,000: a person at a phone or a screen; 0 searches
//! flat out; `LMSYNC_BENCH_WINDOWS`, default 8, a multiple of 4). Prints the latency
//! distribution, each window's rate and the ratio of the loaded windows' rate to the
//! quiet ones' (goals: p99 ≤ 50 ms, loaded ÷ quiet ≥ 0.8).

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss
)]

use std::path::Path;
use std::time::{Duration, Instant};

use lmsync::node::config::Config;
use serde_json::{Value, json};

mod common;

use common::{BATCH, env_usize};

const CACHE: u64 = 256 << 20;
const TOKEN: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

const OCCUPATIONS: [&str; 8] = [
    "4-01-01", "4-07-02", "6-04-01", "6-24-05", "3-01-01", "2-02-07", "4-03-01", "6-08-04",
];
const TITLES: [&str; 8] = [
    "营业员",
    "物业管理员",
    "钳工",
    "起重工",
    "行政业务员",
    "机械工程师",
    "厨师",
    "装配工",
];

/// `n` publishable vacancies of 1999, seeded by their index.
fn vacancies(from: usize, n: usize) -> Vec<Value> {
    (from..from + n)
        .map(|i| {
            let k = i % 8;
            let wage = 300 + (i * 37 % 1500) as u32;
            json!({"kind": "vacancy", "id": format!("V-{i}"), "data": {
                "receiving_office_id": format!("O-{}", i % 50),
                "employer_id": format!("E-{}", i % 5000),
                "reported_on": format!("1999-06-{:02}", 1 + i % 28),
                "report_channel": "on_site",
                "title": format!("招聘{}", TITLES[k]),
                "occupation": OCCUPATIONS[k],
                "industry": "C",
                "headcount": 1 + (i % 5) as u32,
                "contract_term": "one_year_or_more",
                "employment_type": "full_time",
                "wage_min": wage,
                "wage_max": wage + 200,
                "work_location": format!("4401{:02}", 1 + i % 14),
                "valid_from": "1999-06-01",
                "valid_until": "1999-12-31",
                "publish_allowed": true,
                "fill_state": "open"
            }})
        })
        .collect()
}

fn node_config(dir: &Path) -> Config {
    common::city_config(
        dir,
        TOKEN,
        CACHE,
        "max_connections = 1024\nmax_in_flight = 512\n\
         [public]\nlisten = \"127.0.0.1:0\"\nrequests_per_second = 1000000\nburst = 1000000\n",
    )
}

/// Posts `records` in batches with 4 clients; returns how long it took.
async fn ingest(url: &str, records: Vec<Value>) -> Duration {
    let bodies: Vec<Vec<u8>> = records
        .chunks(BATCH)
        .map(|c| serde_json::to_vec(c).unwrap())
        .collect();
    let start = Instant::now();
    common::post_all(url, TOKEN, bodies, 4).await;
    start.elapsed()
}

/// Whether the readers search: set for the loaded windows, cleared for the quiet ones;
/// `None` ends them.
type Gate = tokio::sync::watch::Receiver<Option<bool>>;

/// Window `w` of the ABBA order: quiet, loaded, loaded, quiet, again.
fn loaded_window(w: usize) -> bool {
    matches!(w % 4, 1 | 2)
}

const QUERIES: [&str; 6] = [
    "per_page=20",
    "occupation=4&per_page=20",
    "area=440105&per_page=20",
    "wage_min=800&wage_max=1200&per_page=20",
    "q=%E9%92%B3%E5%B7%A5&per_page=20",
    "page=5&per_page=20",
];

/// Searches while the gate is open, `pause` between searches, until it is dropped;
/// returns each search's latency. Reader `seed` of `readers` starts its searches that
/// part of a pause after the gate opens, so that paced readers, like people, do not
/// all ask in the same instant.
async fn reader(
    base: String,
    mut gate: Gate,
    (seed, readers): (usize, usize),
    pause: Duration,
) -> Vec<(usize, Duration)> {
    let client = reqwest::Client::new();
    let mut latencies = Vec::new();
    let mut i = seed;
    let offset = pause.mul_f64(seed as f64 / readers.max(1) as f64);
    let mut searching = false;
    loop {
        match gate.wait_for(|open| *open != Some(false)).await {
            Ok(open) if open.is_some() => {}
            _ => break,
        }
        if !searching {
            tokio::time::sleep(offset).await;
        }
        searching = gate.borrow().is_some_and(|open| open);
        if !searching {
            continue;
        }
        let query = i % QUERIES.len();
        let url = format!("{base}/api/vacancies?{}", QUERIES[query]);
        i += 1;
        let start = Instant::now();
        let r = client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        latencies.push((query, start.elapsed()));
        tokio::time::sleep(pause).await;
    }
    latencies
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env_usize("LMSYNC_BENCH_VACANCIES", 1_000_000);
    let readers = env_usize("LMSYNC_BENCH_READERS", 200);
    // A person at a phone or a screen reloading waits a second or more; 0: each reader
    // searches again as soon as it has its answer (the worst case).
    let pause = Duration::from_millis(env_usize("LMSYNC_BENCH_READER_PAUSE_MS", 1_000) as u64);
    let windows = env_usize("LMSYNC_BENCH_WINDOWS", 8).max(4) / 4 * 4;
    let tmp =
        tempfile::tempdir_in(std::env::var("LMSYNC_BENCH_DIR").unwrap_or_else(|_| ".".into()))
            .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let node = lmsync::node::daemon::start(node_config(tmp.path())).await.unwrap();
        let api = format!("http://{}/v1/records", node.api_addr);
        let public = format!("http://{}", node.public.as_ref().unwrap().addr);
        let half = n / 2;
        let fill = ingest(&api, vacancies(0, half)).await;
        println!(
            "ingested {half} vacancies without readers: {:.0} rec/s",
            half as f64 / fill.as_secs_f64()
        );
        let (gate, open) = tokio::sync::watch::channel(Some(false));
        let tasks: Vec<_> = (0..readers)
            .map(|r| tokio::spawn(reader(public.clone(), open.clone(), (r, readers), pause)))
            .collect();
        drop(open);
        // (records, time) of the quiet and of the loaded windows.
        let mut spent = [(0usize, Duration::ZERO); 2];
        let per_window = (n - half).div_ceil(windows);
        for w in 0..windows {
            let from = half + w * per_window;
            // A small N leaves the last windows empty.
            let count = per_window.min(n.saturating_sub(from));
            if count == 0 {
                break;
            }
            let loaded = loaded_window(w);
            gate.send_replace(Some(loaded));
            let took = ingest(&api, vacancies(from, count)).await;
            let (records, time) = &mut spent[usize::from(loaded)];
            *records += count;
            *time += took;
            println!(
                "  window {w} ({}): {count} vacancies, {:.0} rec/s",
                if loaded { "loaded" } else { "quiet" },
                count as f64 / took.as_secs_f64()
            );
        }
        gate.send_replace(None);
        let rate = |(records, time): (usize, Duration)| records as f64 / time.as_secs_f64();
        let (quiet, loaded) = (rate(spent[0]), rate(spent[1]));
        let mut by_query = Vec::new();
        for t in tasks {
            by_query.extend(t.await.unwrap());
        }
        let mut latencies: Vec<Duration> = by_query.iter().map(|(_, d)| *d).collect();
        latencies.sort();
        let board: Value = reqwest::get(format!("{public}/api/vacancies?per_page=1"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        println!(
            "ingested {} vacancies in {windows} windows: quiet {quiet:.0} rec/s, with {readers} readers ({pause:?} between searches) {loaded:.0} rec/s",
            n - half
        );
        println!(
            "search_latency: {} searches, p50 {:?}, p99 {:?}, max {:?} (goal p99 <= 50 ms); board lists {}",
            latencies.len(),
            quantile(&latencies, 0.5),
            quantile(&latencies, 0.99),
            latencies.last().copied().unwrap_or_default(),
            board["total"]
        );
        for (q, text) in QUERIES.iter().enumerate() {
            let mut these: Vec<Duration> =
                by_query.iter().filter(|(i, _)| *i == q).map(|(_, d)| *d).collect();
            these.sort();
            if !these.is_empty() {
                println!(
                    "  {text}: p50 {:?}, p99 {:?}, max {:?}",
                    quantile(&these, 0.5),
                    quantile(&these, 0.99),
                    these.last().copied().unwrap_or_default()
                );
            }
        }
        println!(
            "ingest_with_readers = {:.2}x the rate without (goal >= 0.8)",
            loaded / quiet
        );
        node.stop().await.unwrap();
    });
}
