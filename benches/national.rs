//! The national network as real processes: the ministry (100000), 31 provinces and 100
//! cities (`lmsync::tooling::demo::national_tree`), each a `lmsync run` process on
//! 127.0.0.1 with its own certificate from a fresh network CA (`lmsync pki init`, `lmsync
//! pki issue`), set up by `lmsync init` with the defaults an operator gets (sync interval
//! 5 s, anti-entropy 5 min, sled cache 256 MiB, log level info; QUIC on a fixed loopback
//! port for parents, APIs on ephemeral ports), logging to `DIR/CODE/run.log`. Every city
//! is fed seeded synthetic records (`lmsync::tooling::synth`) through its HTTP API by this
//! process, each city's batches in order, all cities at once.
//!
//! What is measured, all in one run:
//!
//! - **Limit:** raw sled (`benches/common::raw_sled`: the same kind of records, batches of
//!   1,000, flush + fdatasync), measured first in the same run, on a store of as many
//!   records as phase 1 posts (at most 200,000). Every record must become durable at city,
//!   province and ministry on the same cores, so the end-to-end limit is raw ÷ 3.
//! - **Phase 1, clean feed:** every city's records POSTed at once. `time_to_ministry` runs
//!   from the first POST until the ministry's `GET /v1/digest?owner=CITY` equals the
//!   city's (after its last POST) for every city, polled every 100 ms; the end-to-end
//!   rate is the distinct records held (sum of the digests' `records`) ÷ that time.
//! - **Lag, measured from outside:** the nodes keep their own lag samples
//!   (`node::links::record_lags`: received at the parent − recorded at the city, the last
//!   1,024 per owner, in memory), but a node exposes only their p50 and p95 per city, in
//!   the coverage metric F01, so the bench measures lag itself. A city's commit is the
//!   moment its `POST /v1/records` answer arrived here (the node answers only once the
//!   batch is durable); the ministry's commit of a record is the first answer of the
//!   ministry's `GET /v1/status`, polled every 100 ms, whose `owners[].last_seq` for that
//!   city is at least the record's seq (the status reads in-memory summaries that move
//!   only after a durable commit, and uploads carry a city's change log in seq order, so
//!   holding seq s means holding every earlier one; the final digests confirm it). Lags
//!   are therefore overestimated by up to one poll interval plus the status request.
//!   Per city p50 and p99 over the records the city changed (unchanged re-sends carry no
//!   new seq), then across cities the median city's p99, the slowest city's p99 and their
//!   ratio. Measured twice: `lag_clean` in phase 1, where every city posts as fast as it
//!   can, so it is mostly time spent queued behind the other cities' records; and
//!   `lag_paced` in phase 3 at a steady, lower rate, over the cities outside
//!   the faults (not the killed province's, not the wiped one).
//! - **Idle, once in sync:** after 5 s of rest, and once the nodes' background work is
//!   done (the provinces and the ministry keep each city's figures of its latest quarters
//!   when records settle: the first second in which all nodes together used under a tenth
//!   of a core, at most a minute, printed), utime + stime of every node process from
//!   `/proc/PID/stat` over a 10 s window, as a share of one core; VmRSS of every node from
//!   `/proc/PID/status` (median and max over cities and provinces; the ministry apart).
//! - **Phase 3, faults while feeding continues:** half as many records again per city,
//!   each city's batches spread over 30 s and the cities staggered, so the load is steady
//!   (1,000 records per city: 3,300 records/s in all). Once a quarter of its batches are acknowledged, the province with
//!   the most cities is SIGKILLed and restarted 3 s later; then a city of another province
//!   stops once its province holds its records, its data directory is deleted and
//!   re-created with `lmsync init --restore` (its pseudonym key put back, as
//!   docs/SYNC.md says), and it restarts and restores its own records from its province
//!   before its feed resumes. At the end every city's digest must be equal at city,
//!   province and ministry (asserted), every node must exit 0 on SIGTERM (asserted), and
//!   every record any API acknowledged must be in the stopped stores of its city, its
//!   province and the ministry, at its acknowledged version or later (asserted).
//!
//! Only convergence and nothing-lost are asserted; the figures are printed one per line,
//! `name = value unit (ratio …)`.
//!
//! Run: `cargo bench --bench national` (env `LMSYNC_NATIONAL_PROVINCES`, default 31;
//! `LMSYNC_NATIONAL_CITIES`, default 100; `LMSYNC_NATIONAL_RECORDS` per city, default
//! 2,000; `LMSYNC_NATIONAL_BATCH`, records per POST, default 100; `LMSYNC_NATIONAL_SEED`,
//! default from the clock, printed; `LMSYNC_BENCH_DIR`, default cargo's target tmp dir,
//! on a real disk; `LMSYNC_NATIONAL_IDLE`, the idle window in seconds, default 10;
//! `LMSYNC_NATIONAL_KEEP=1` keeps the directory, as does a failure).
//! Without `--bench` (`cargo test --benches`) it runs a smoke case: 2 provinces, 3
//! cities, 200 records each, shorter windows, the same faults and checks.

#![allow(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss
)]

mod common;
#[path = "national/feed.rs"]
mod feed;
#[path = "national/figures.rs"]
mod figures;
#[path = "national/fleet.rs"]
mod fleet;
#[path = "national/measure.rs"]
mod measure;
#[path = "national/phases.rs"]
mod phases;

use std::path::PathBuf;
use std::time::Duration;

use lmsync::core::model::NodeCode;
use lmsync::tooling::demo::Branch;

use common::env_usize;

/// The run's size and pacing.
pub struct Params {
    pub smoke: bool,
    pub provinces: usize,
    pub cities: usize,
    /// Records per city in phase 1; phase 3 adds half as many.
    pub records: usize,
    pub batch: usize,
    pub seed: u64,
    pub base: PathBuf,
    pub keep: bool,
    /// Digest and status polling.
    pub poll: Duration,
    pub settle: Duration,
    pub idle_window: Duration,
    /// Phase 3 spreads each city's batches over this long.
    pub pace: Duration,
    pub outage: Duration,
    /// Bound of every phase.
    pub phase_limit: Duration,
}

impl Params {
    fn from_env(smoke: bool) -> Params {
        let seed = std::env::var("LMSYNC_NATIONAL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        let (provinces, cities, records, batch) = if smoke {
            (2, 3, 200, 50)
        } else {
            (31, 100, 2000, 100)
        };
        let secs = |full: u64, small: u64| Duration::from_secs(if smoke { small } else { full });
        Params {
            smoke,
            provinces: env_usize("LMSYNC_NATIONAL_PROVINCES", provinces),
            cities: env_usize("LMSYNC_NATIONAL_CITIES", cities),
            records: env_usize("LMSYNC_NATIONAL_RECORDS", records).max(1),
            batch: env_usize("LMSYNC_NATIONAL_BATCH", batch).clamp(1, 10_000),
            seed,
            base: std::env::var("LMSYNC_BENCH_DIR").map_or_else(
                |_| PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
                PathBuf::from,
            ),
            keep: std::env::var("LMSYNC_NATIONAL_KEEP").is_ok_and(|v| v == "1"),
            poll: Duration::from_millis(100),
            settle: secs(5, 1),
            idle_window: Duration::from_secs(env_usize(
                "LMSYNC_NATIONAL_IDLE",
                if smoke { 2 } else { 10 },
            ) as u64),
            pace: secs(30, 4),
            outage: secs(3, 1),
            phase_limit: secs(1200, 90),
        }
    }
}

/// The bench's directory: deleted at the end unless kept, and kept after a failure so
/// the nodes' logs can be read.
struct Workdir {
    dir: Option<tempfile::TempDir>,
    keep: bool,
}

impl Workdir {
    fn path(&self) -> PathBuf {
        self.dir
            .as_ref()
            .expect("present until dropped")
            .path()
            .to_path_buf()
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take()
            && (self.keep || std::thread::panicking())
        {
            eprintln!("kept {}", dir.keep().display());
        }
    }
}

/// The province killed in phase 3 (the one with the most cities, first by code) and the
/// city wiped (440100 when it is in another province, else the first city of another).
fn victims(tree: &[Branch]) -> (NodeCode, Option<NodeCode>) {
    let kill = tree
        .iter()
        .max_by_key(|b| (b.cities.len(), std::cmp::Reverse(b.province)))
        .expect("a tree with a province")
        .province;
    let others: Vec<NodeCode> = tree
        .iter()
        .filter(|b| b.province != kill)
        .flat_map(|b| b.cities.iter().copied())
        .collect();
    let wipe = others
        .iter()
        .find(|c| c.get() == 440_100)
        .or(others.first())
        .copied();
    (kill, wipe)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let p = Params::from_env(!args.iter().any(|a| a == "--bench"));
    let tree = lmsync::tooling::demo::scaled_tree(p.provinces, p.cities);
    let cities = lmsync::tooling::demo::national::cities_of(&tree);
    let per: Vec<usize> = tree.iter().map(|b| b.cities.len()).collect();
    println!(
        "national{}: seed = {}; {} provinces, {} cities ({}-{} per province), {} records per \
         city then {} more under faults, POSTs of {}; {} cores",
        if p.smoke { " (smoke)" } else { "" },
        p.seed,
        tree.len(),
        cities.len(),
        per.iter().min().unwrap_or(&0),
        per.iter().max().unwrap_or(&0),
        p.records,
        p.records.div_ceil(2),
        p.batch,
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
    );
    std::fs::create_dir_all(&p.base).expect("the bench directory");
    let work = Workdir {
        dir: Some(
            tempfile::Builder::new()
                .prefix("lmsync-national-")
                .tempdir_in(&p.base)
                .expect("a directory for the network"),
        ),
        keep: p.keep,
    };
    let figures = phases::run(&p, &tree, &work.path());
    figures.print(&p);
}
