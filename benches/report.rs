//! The national quarterly report and national coverage over a large replicated store, as
//! ratios to a raw scan of the same store measured in the same run (`docs/PERFORMANCE.md`),
//! and the peak memory of each computation (it must not grow with the records held).
//!
//! The store: a ministry store (100000) holding the records of every built-in pilot city
//! (`PILOT_CITIES`), each city's share of the N records in proportion to its urban
//! population, so that every city covers about the same simulated days from 1999-07-01
//! (the generator's start). Records come from `synth::Generator` (seed 42) through the
//! ingest path (`IngestContext::draft`, the `Planner` of the owning city) and are committed
//! in batches of 10,000 with the ministry's watermark and a receipt time, as replication
//! writes them. Generation streams (two producer threads, a bounded channel, one committer),
//! so the bench holds at most a few batches of records. The build runs in one child process
//! (or in processes of at most `LMSYNC_BENCH_REPORT_BUILD_GROUP` records, whole cities
//! each); a guard aborts a build process whose RSS passes
//! `LMSYNC_BENCH_REPORT_BUILD_MAX_RSS_MIB` (default 4096): a writer's memory must stay flat
//! (`tests/memory.rs`), and before the store drove sled's epoch reclamation it grew by
//! ~2 KB per record written, past 20 GB at 10^7. Every record's `recorded_at_ms`
//! is noon of the middle day of the measured quarter, so coverage's F05 check
//! (classification currency) runs on every record: an upper bound of its per-record work.
//!
//! Each measurement runs in a **fresh child process** (this binary re-executed) that opens
//! the store, resets its peak RSS (writes `5` to `/proc/self/clear_refs`), computes, and
//! reports VmHWM (the peak since the reset), VmRSS after opening and at the end, CPU time
//! and bytes read from disk. So a peak is the computation's own plus the open store
//! (in-memory summaries and key filters, read from the checkpoint the build's clean close
//! left), never left over from building or from another computation. The OS page
//! cache is shared: warm unless other processes evicted it (`disk read` tells).
//!
//! Figures per round (medians over the rounds for times, maxima for peaks):
//! - `raw_scan`: every record of every owner once through `Store::records_of` (sled scan
//!   + bincode decode): the limit, in records per second.
//! - `national_report`: `scan::report(store, period, National, ValidInPeriod)` (two
//!   passes over each city), then `publish(5)` and `render_csv`; ratio = its time ÷ (2 ×
//!   raw scan time).
//! - `national_coverage`: `scan::coverage` of National (two passes, metrics, pilots,
//!   engine facts), then serialised to JSON as the API does; same ratio.
//! - `province_report`: the report of the province holding the most records: fewer
//!   records scanned through the same per-city state, for the memory comparison.
//!
//! Each of those scans first forgets the figures the store keeps (`scan::figures::forget`,
//! untimed), so it scans every city, and keeps its own. The `_kept` measurements then
//! answer from them, each in a fresh process right after opening the store (cold, as a
//! node just restarted) and then once more in the same process (warm):
//! `national_report_kept`, `national_coverage_kept`, `province_report_kept`, and
//! `city_report_kept` (the city with the most records). `disk` is the store's size per
//! record held, figures included.
//!
//! Run: `cargo bench --bench report`. Env: `LMSYNC_BENCH_REPORT_RECORDS` (default
//! 10,000,000; without `--bench`, as under `cargo test --benches`, a 20,000-record smoke
//! run), `LMSYNC_BENCH_REPORT_ROUNDS` (default 3), `LMSYNC_BENCH_REPORT_CACHE` (sled cache
//! bytes, default 268435456 = 256 MiB, the node's default), `LMSYNC_BENCH_REPORT_PERIOD`
//! (default `1999Q3`), `LMSYNC_BENCH_REPORT_DIR` (keep the store in this directory and
//! reuse it on the next run if it was built with the same records and period; without it
//! the store goes to a temporary directory under `target/tmp` that is deleted at the end).

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use lmsync::core::model::ingest::{Draft, IngestContext};
use lmsync::core::model::person::Pseudonymiser;
use lmsync::core::model::standards::Standards;
use lmsync::core::model::tables::PILOT_CITIES;
use lmsync::core::model::{MINISTRY, NodeCode};
use lmsync::core::store::{Store, WriteBatch};
use lmsync::node::clock::{Clock, SystemClock};
use lmsync::node::links::Links;
use lmsync::node::storage::{SledStore, sled_options};
use lmsync::node::write::Planner;
use lmsync::reporting::analysis::report::render_csv;
use lmsync::reporting::analysis::{CountBasis, Period, Scope};
use lmsync::reporting::scan::{self, Context, figures};

mod common;

use common::{dir_bytes, env_usize};

/// Records per commit while building.
const COMMIT: usize = 10_000;
/// Generator seed.
const SEED: u64 = 42;
/// Marks a completely built store and what it holds.
const MARKER: &str = "lmsync-bench-report.txt";
/// Where the child process learns its task.
const TASK_ENV: &str = "LMSYNC_BENCH_REPORT_TASK";

/// A field of `/proc/self/status` in kB (`VmRSS`, `VmHWM`).
fn status_kb(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Resets VmHWM to the current RSS; false when the kernel refuses.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// User + system CPU seconds of this process (clock ticks of 1/100 s).
fn cpu_secs() -> f64 {
    let text = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = text.rsplit_once(')').map_or("", |(_, a)| a);
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    f.get(11)
        .zip(f.get(12))
        .map_or(0.0, |(u, s)| (u + s) as f64 / 100.0)
}

/// Bytes this process caused to be read from the block device (not the page cache).
fn disk_read_bytes() -> u64 {
    let text = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("read_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// The pilot cities and how many of the `n` records each gets (by urban population).
fn allocation(n: usize) -> Vec<(NodeCode, usize)> {
    let total: u64 = PILOT_CITIES.iter().map(|c| u64::from(c.3)).sum();
    let mut out: Vec<(NodeCode, usize)> = PILOT_CITIES
        .iter()
        .map(|c| {
            let share = (n as u64 * u64::from(c.3) / total) as usize;
            (NodeCode::new(c.0).unwrap(), share)
        })
        .collect();
    let short = n - out.iter().map(|(_, k)| k).sum::<usize>();
    let largest = (0..out.len()).max_by_key(|&i| out[i].1).unwrap();
    out[largest].1 += short;
    out
}

/// `recorded_at_ms` of every record: noon of the quarter's middle day.
fn recorded_at(period: Period) -> i64 {
    let first = period.first_day();
    let mid = first + (period.last_day() - first) / 2;
    mid.and_hms_opt(12, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis()
}

fn marker_text(n: usize, period: Period) -> String {
    format!(
        "records={n} seed={SEED} recorded_at={period} cities={}\n",
        PILOT_CITIES.len()
    )
}

/// The store a child process works on, passed to it in its environment.
struct StoreSettings {
    path: PathBuf,
    cache: u64,
    period: Period,
}

impl StoreSettings {
    fn pass_to<'c>(&self, command: &'c mut Command) -> &'c mut Command {
        command
            .env("LMSYNC_BENCH_REPORT_STORE", &self.path)
            .env("LMSYNC_BENCH_REPORT_CACHE_BYTES", self.cache.to_string())
            .env("LMSYNC_BENCH_REPORT_PERIOD_SET", self.period.to_string())
    }

    fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).unwrap();
        StoreSettings {
            path: PathBuf::from(var("LMSYNC_BENCH_REPORT_STORE")),
            cache: var("LMSYNC_BENCH_REPORT_CACHE_BYTES").parse().unwrap(),
            period: var("LMSYNC_BENCH_REPORT_PERIOD_SET").parse().unwrap(),
        }
    }
}

/// Child: generates, drafts and commits the records of the cities in `LMSYNC_BENCH_REPORT_CITIES`
/// (`code:count,…`) into the ministry store (created by the first group).
fn build_group() {
    let StoreSettings {
        path,
        cache,
        period,
    } = StoreSettings::from_env();
    let plan: Vec<(NodeCode, usize)> = std::env::var("LMSYNC_BENCH_REPORT_CITIES")
        .unwrap()
        .split(',')
        .map(|c| {
            let (code, k) = c.split_once(':').unwrap();
            (code.parse().unwrap(), k.parse().unwrap())
        })
        .collect();
    let done_before = env_usize("LMSYNC_BENCH_REPORT_DONE", 0);
    let n = env_usize("LMSYNC_BENCH_REPORT_TOTAL", 0);
    let max_rss_kb = env_usize("LMSYNC_BENCH_REPORT_BUILD_MAX_RSS_MIB", 4 << 10) as u64 * 1024;
    let store = if path.join("conf").exists() {
        SledStore::open(&path, MINISTRY, sled_options(cache)).unwrap()
    } else {
        SledStore::create(&path, MINISTRY, [9; 16], 0, sled_options(cache)).unwrap()
    };
    let group_n: usize = plan.iter().map(|(_, k)| k).sum();
    let producers = std::thread::available_parallelism()
        .map_or(2, |p| p.get())
        .clamp(1, 4);
    let (tx, rx) = sync_channel::<(NodeCode, Vec<Draft>)>(2 * producers);
    // The last simulated day of each city (its newest job seeker's registration).
    let last_days = std::sync::Mutex::new(Vec::new());
    let start = Instant::now();
    std::thread::scope(|s| {
        for p in 0..producers {
            let (tx, last_days) = (tx.clone(), &last_days);
            let mine: Vec<(NodeCode, usize)> =
                plan.iter().copied().skip(p).step_by(producers).collect();
            s.spawn(move || {
                let standards = Standards::builtin();
                let key = Pseudonymiser::new([7; 32], 1);
                for (city, k) in mine {
                    let cx = IngestContext::new(city, &standards, Some(&key));
                    let mut batch = Vec::with_capacity(COMMIT);
                    let mut last_day = String::new();
                    for v in lmsync::tooling::synth::Generator::new(city, SEED).take(k) {
                        if let Some(d) = v["data"]["registered_on"].as_str()
                            && d > last_day.as_str()
                        {
                            last_day = d.to_string();
                        }
                        batch.push(cx.draft(v).expect("generated records are valid"));
                        if batch.len() == COMMIT {
                            let full = std::mem::replace(&mut batch, Vec::with_capacity(COMMIT));
                            tx.send((city, full)).unwrap();
                        }
                    }
                    if !batch.is_empty() {
                        tx.send((city, batch)).unwrap();
                    }
                    last_days.lock().unwrap().push(last_day);
                }
            });
        }
        drop(tx);
        let refs = Standards::builtin().code_refs();
        let at = recorded_at(period);
        let (mut written, mut last_print) = (0usize, Instant::now());
        for (city, drafts) in rx {
            let count = drafts.len();
            let mut planner = Planner::new(&store, city);
            for d in drafts {
                planner.plan(d, &refs, at).unwrap();
            }
            let records = planner.into_writes();
            let last = records.iter().map(|w| w.record.envelope.seq).max();
            store
                .commit(WriteBatch {
                    records,
                    watermarks: last.map(|s| (MINISTRY, city, s)).into_iter().collect(),
                    received_at_ms: Some(SystemClock.now_ms()),
                    ..WriteBatch::default()
                })
                .unwrap();
            written += count;
            let rss = status_kb("VmRSS");
            // A guard for a shared machine, should a writer's memory grow again.
            assert!(
                rss <= max_rss_kb,
                "build RSS {:.0} MiB over LMSYNC_BENCH_REPORT_BUILD_MAX_RSS_MIB: lower \
                 LMSYNC_BENCH_REPORT_BUILD_GROUP",
                mib(rss)
            );
            if last_print.elapsed() >= Duration::from_secs(15) || written == group_n {
                last_print = Instant::now();
                let secs = start.elapsed().as_secs_f64();
                let all = done_before + written;
                println!(
                    "  build: {all} / {n} records ({:.0}%); this process: {written} in {secs:.0} \
                     s, {:.0} rec/s, RSS {:.0} MiB",
                    100.0 * all as f64 / n as f64,
                    written as f64 / secs,
                    mib(rss),
                );
            }
        }
    });
    drop(store);
    let mut days = last_days.into_inner().unwrap();
    days.retain(|d| !d.is_empty());
    days.sort();
    println!(
        "  build group: {group_n} records of {} cities, simulated 1999-07-01 through {} .. {}, \
         peak RSS {:.0} MiB ({producers} producer threads + 1 committer)",
        plan.len(),
        days.first().map_or("-", String::as_str),
        days.last().map_or("-", String::as_str),
        mib(status_kb("VmHWM"))
    );
}

/// Builds the store at `path` in fresh processes of at most about `group` records each.
fn build(path: &Path, n: usize, cache: u64, period: Period, group: usize) {
    let plan = allocation(n);
    let mut groups: Vec<Vec<(NodeCode, usize)>> = vec![Vec::new()];
    for (city, k) in plan {
        let last = groups.last_mut().unwrap();
        if !last.is_empty() && last.iter().map(|(_, k)| k).sum::<usize>() + k > group {
            groups.push(vec![(city, k)]);
        } else {
            last.push((city, k));
        }
    }
    let start = Instant::now();
    let mut done = 0;
    for g in &groups {
        let cities: Vec<String> = g.iter().map(|(c, k)| format!("{c}:{k}")).collect();
        let settings = StoreSettings {
            path: path.to_path_buf(),
            cache,
            period,
        };
        let status = settings
            .pass_to(Command::new(std::env::current_exe().unwrap()).env(TASK_ENV, "build"))
            .env("LMSYNC_BENCH_REPORT_CITIES", cities.join(","))
            .env("LMSYNC_BENCH_REPORT_DONE", done.to_string())
            .env("LMSYNC_BENCH_REPORT_TOTAL", n.to_string())
            .status()
            .unwrap();
        assert!(status.success(), "building failed");
        done += g.iter().map(|(_, k)| k).sum::<usize>();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "build = {n} records generated, drafted, planned and committed in {secs:.1} s ({:.0} \
         rec/s, batches of {COMMIT}, {} build processes); store on disk {:.2} GiB",
        n as f64 / secs,
        groups.len(),
        dir_bytes(path) as f64 / f64::from(1u32 << 30)
    );
}

/// What a child process measured.
#[derive(Debug, Clone, Default)]
struct Measured {
    secs: f64,
    open_secs: f64,
    records: u64,
    rss_open_kb: u64,
    /// VmHWM just before the reset: the peak of opening the store.
    open_peak_kb: u64,
    peak_kb: u64,
    reset: bool,
    cpu_secs: f64,
    disk_read: u64,
    /// The same computation again in the same process (kept figures only).
    warm_secs: f64,
}

/// Child: opens the store, resets the peak, runs one task, prints `RESULT …`.
fn child(task: &str) {
    let StoreSettings {
        path,
        cache,
        period,
    } = StoreSettings::from_env();
    let t = Instant::now();
    let store = SledStore::open(&path, MINISTRY, sled_options(cache)).unwrap();
    let open_secs = t.elapsed().as_secs_f64();
    let rss_open_kb = status_kb("VmRSS");
    let open_peak_kb = status_kb("VmHWM");
    // `X` scans (the figures forgotten first, untimed); `X_kept` answers from the figures
    // the previous task kept, cold (this process just opened the store) and then warm.
    let (what, kept) = match task.strip_suffix("_kept") {
        Some(what) => (what, true),
        None => (task, false),
    };
    if !kept && what != "raw" {
        figures::forget(&store).unwrap();
    }
    let reset = reset_peak();
    let (cpu0, read0) = (cpu_secs(), disk_read_bytes());
    let start = Instant::now();
    let records = compute(what, &store, period, true);
    let secs = start.elapsed().as_secs_f64();
    let warm_secs = if kept {
        let again = Instant::now();
        compute(what, &store, period, false);
        again.elapsed().as_secs_f64()
    } else {
        0.0
    };
    println!(
        "RESULT secs={secs} open_secs={open_secs} records={records} rss_open_kb={rss_open_kb} \
         open_peak_kb={open_peak_kb} peak_kb={} rss_end_kb={} reset={} cpu_secs={} disk_read={} \
         warm_secs={warm_secs}",
        status_kb("VmHWM"),
        status_kb("VmRSS"),
        u8::from(reset),
        cpu_secs() - cpu0,
        disk_read_bytes() - read0,
    );
}

/// The scope a report task covers: national, the province, or the city (from the env).
fn scope_of(what: &str) -> Scope {
    let code = |var: &str| std::env::var(var).unwrap().parse().unwrap();
    match what {
        "report" => Scope::National,
        "province" => Scope::Province(code("LMSYNC_BENCH_REPORT_PROVINCE")),
        "city" => Scope::City(code("LMSYNC_BENCH_REPORT_CITY")),
        other => panic!("unknown report task {other}"),
    }
}

/// Runs one computation; returns the records of its scope. `say` prints what it found.
fn compute(what: &str, store: &SledStore, period: Period, say: bool) -> u64 {
    let start = Instant::now();
    match what {
        "raw" => {
            let mut n = 0u64;
            for owner in store.owner_counts().into_keys() {
                for r in store.records_of(owner) {
                    std::hint::black_box(r.unwrap());
                    n += 1;
                }
            }
            n
        }
        "report" | "province" | "city" => {
            let scope = scope_of(what);
            let report = scan::report(store, period, scope, CountBasis::ValidInPeriod).unwrap();
            let computed = start.elapsed().as_secs_f64();
            let csv = render_csv(&report.publish(5));
            let o = &report.overall;
            if say {
                println!(
                    "{scope} report {period}: {} cities, demand {} (carried over {}, new {}), \
                     seekers {} (carried over {}, new {}), CSV {} B (publish + render {:.1} ms)",
                    report.cities.len(),
                    o.demand.total(),
                    o.demand.carried_over,
                    o.demand.new_in_period,
                    o.seekers.total(),
                    o.seekers.carried_over,
                    o.seekers.new_in_period,
                    csv.len(),
                    1000.0 * (start.elapsed().as_secs_f64() - computed),
                );
            }
            assert!(
                o.demand.total() > 0 && o.seekers.total() > 0,
                "the report of {period} counts nothing: pick a quarter the generated data covers"
            );
            in_scope(store, scope)
        }
        "coverage" => {
            let standards = Standards::builtin();
            let links = Links::default();
            let cx = Context {
                store,
                standards: &standards,
                links: &links,
                now_ms: SystemClock.now_ms(),
                stale_after: Duration::from_secs(86_400),
            };
            let cov = scan::coverage(&cx, period, Scope::National).unwrap();
            let computed = start.elapsed().as_secs_f64();
            let json = serde_json::to_string(&cov).unwrap();
            if say {
                println!(
                    "national coverage {period}: {} cities, {} records, {} stale, cohort \
                     evaluated {} (cumulative {}), {} metric values, JSON {} B ({:.1} ms)",
                    cov.cities.len(),
                    cov.cities.iter().map(|c| c.records).sum::<u64>(),
                    cov.cities.iter().filter(|c| c.stale).count(),
                    cov.summary.cohort.evaluated,
                    cov.summary.cohort.cumulative,
                    cov.summary.values.len(),
                    json.len(),
                    1000.0 * (start.elapsed().as_secs_f64() - computed),
                );
            }
            in_scope(store, Scope::National)
        }
        other => panic!("unknown task {other}"),
    }
}

/// Records held of the cities in `scope` (one pass).
fn in_scope(store: &dyn Store, scope: Scope) -> u64 {
    store
        .owner_counts()
        .iter()
        .filter(|(c, _)| scope.contains(**c))
        .map(|(_, c)| c.by_kind.values().sum::<u64>())
        .sum()
}

fn parse_result(line: &str) -> Measured {
    let kv: BTreeMap<&str, &str> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|p| p.split_once('='))
        .collect();
    let f = |k: &str| kv[k].parse::<f64>().unwrap();
    let u = |k: &str| kv[k].parse::<u64>().unwrap();
    Measured {
        secs: f("secs"),
        open_secs: f("open_secs"),
        records: u("records"),
        rss_open_kb: u("rss_open_kb"),
        open_peak_kb: u("open_peak_kb"),
        peak_kb: u("peak_kb"),
        reset: u("reset") == 1,
        cpu_secs: f("cpu_secs"),
        disk_read: u("disk_read"),
        warm_secs: f("warm_secs"),
    }
}

/// Runs `task` in a fresh process of this binary; echoes its other output when `echo`.
fn run_child(
    task: &str,
    store: &Path,
    cache: u64,
    period: Period,
    (province, city): (NodeCode, NodeCode),
    echo: bool,
) -> Measured {
    let settings = StoreSettings {
        path: store.to_path_buf(),
        cache,
        period,
    };
    let out = settings
        .pass_to(Command::new(std::env::current_exe().unwrap()).env(TASK_ENV, task))
        .env("LMSYNC_BENCH_REPORT_PROVINCE", province.to_string())
        .env("LMSYNC_BENCH_REPORT_CITY", city.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "task {task} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut result = None;
    for line in stdout.lines() {
        if line.starts_with("RESULT ") {
            result = Some(parse_result(line));
        } else if echo {
            println!("  {line}");
        }
    }
    result.expect("the child prints RESULT")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if let Ok(task) = std::env::var(TASK_ENV) {
        if task == "build" {
            build_group();
        } else {
            child(&task);
        }
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` runs a small smoke case.
    let bench = std::env::args().any(|a| a == "--bench");
    let n = env_usize(
        "LMSYNC_BENCH_REPORT_RECORDS",
        if bench { 10_000_000 } else { 20_000 },
    );
    let rounds = env_usize("LMSYNC_BENCH_REPORT_ROUNDS", if bench { 3 } else { 1 }).max(1);
    let cache = env_usize("LMSYNC_BENCH_REPORT_CACHE", 256 << 20) as u64;
    let period: Period = std::env::var("LMSYNC_BENCH_REPORT_PERIOD")
        .unwrap_or_else(|_| "1999Q3".into())
        .parse()
        .unwrap();
    let plan = allocation(n);
    let mut per_province: BTreeMap<NodeCode, usize> = BTreeMap::new();
    for (c, k) in &plan {
        *per_province.entry(c.province().unwrap()).or_default() += k;
    }
    let (province, province_records) = per_province.iter().max_by_key(|(_, k)| **k).unwrap();
    let (largest, largest_n) = plan.iter().max_by_key(|(_, k)| *k).unwrap();
    println!(
        "records = {n} in a ministry store, {} pilot cities (records by urban population; \
         largest {largest} with {largest_n}; province {province} with {province_records}), \
         seed {SEED}, period {period}, sled cache_capacity {} MiB, {rounds} rounds, {} cores",
        plan.len(),
        cache >> 20,
        std::thread::available_parallelism().map_or(0, |p| p.get()),
    );

    // Where the store lives: a kept directory (built once) or a temporary one.
    let kept = std::env::var("LMSYNC_BENCH_REPORT_DIR")
        .ok()
        .map(PathBuf::from);
    let tmp = match &kept {
        Some(_) => None,
        None => {
            let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
            std::fs::create_dir_all(&base).unwrap();
            Some(
                tempfile::Builder::new()
                    .prefix("lmsync-report-")
                    .tempdir_in(base)
                    .unwrap(),
            )
        }
    };
    let dir = kept
        .clone()
        .unwrap_or_else(|| tmp.as_ref().unwrap().path().to_path_buf());
    let store = dir.join("store");
    let marker = dir.join(MARKER);
    let expected = marker_text(n, period);
    match std::fs::read_to_string(&marker) {
        Ok(found) if found == expected => println!(
            "build = reusing the store in {} ({:.2} GiB on disk)",
            store.display(),
            dir_bytes(&store) as f64 / f64::from(1u32 << 30)
        ),
        Ok(found) => panic!(
            "{} holds a store built with {found:?}, not {expected:?}: delete it or pick another \
             LMSYNC_BENCH_REPORT_DIR",
            dir.display()
        ),
        Err(_) if store.exists() => panic!(
            "{} holds an incompletely built store: delete it",
            store.display()
        ),
        Err(_) => {
            println!("building the store in {}", store.display());
            let group = env_usize("LMSYNC_BENCH_REPORT_BUILD_GROUP", usize::MAX);
            build(&store, n, cache, period, group);
            std::fs::write(&marker, &expected).unwrap();
        }
    }

    // Each scan forgets the kept figures first, then keeps its own; the `_kept` task after
    // it answers from them in a fresh process (cold), then again (warm).
    let tasks = [
        "raw",
        "report",
        "report_kept",
        "coverage",
        "coverage_kept",
        "province",
        "province_kept",
        "city_kept",
    ];
    let mut results: BTreeMap<&str, Vec<Measured>> = BTreeMap::new();
    for round in 0..rounds {
        let mut line = format!("round {round}:");
        for task in tasks {
            let m = run_child(
                task,
                &store,
                cache,
                period,
                (*province, *largest),
                round == 0,
            );
            line += &format!("  {task} {:.2} s (peak {:.0} MiB)", m.secs, mib(m.peak_kb));
            results.entry(task).or_default().push(m);
        }
        println!("{line}");
    }

    let reset = results.values().flatten().all(|m| m.reset);
    let all: Vec<&Measured> = results.values().flatten().collect();
    let open_secs = median(all.iter().map(|m| m.open_secs).collect());
    let open_kb = all.iter().map(|m| m.rss_open_kb).max().unwrap();
    let open_peak_kb = all.iter().map(|m| m.open_peak_kb).max().unwrap();
    println!(
        "store_open = {open_secs:.2} s (summaries from the checkpoint the last clean close left); RSS after open \
         {:.0} MiB (peak while opening {:.0} MiB)",
        mib(open_kb),
        mib(open_peak_kb)
    );
    let raw = &results["raw"];
    let total = raw[0].records;
    let mib_read = |v: &[Measured]| {
        v.iter().map(|m| m.disk_read).max().unwrap() as f64 / f64::from(1u32 << 20)
    };
    let memory = |v: &[Measured]| {
        let peak = v.iter().map(|m| m.peak_kb).max().unwrap();
        let over = v
            .iter()
            .map(|m| m.peak_kb.saturating_sub(m.rss_open_kb))
            .max()
            .unwrap();
        format!(
            "peak RSS {:.0} MiB (+{:.0} over open), disk read <= {:.0} MiB",
            mib(peak),
            mib(over),
            mib_read(v)
        )
    };
    let raw_secs = median(raw.iter().map(|m| m.secs).collect());
    let raw_cpu = median(raw.iter().map(|m| m.cpu_secs).collect());
    println!(
        "raw_scan = {:.0} rec/s ({total} records in {raw_secs:.2} s, CPU {raw_cpu:.2} s; one \
         pass: sled scan + decode; the limit); {}",
        total as f64 / raw_secs,
        memory(raw)
    );
    for (task, name) in [
        ("report", "national_report"),
        ("coverage", "national_coverage"),
        ("province", "province_report"),
    ] {
        let v = &results[task];
        let records = v[0].records;
        let scope = if task == "province" {
            format!(" of {province}")
        } else {
            String::new()
        };
        // The limit for this scope: two raw passes over its records at the raw rate of the
        // same round, in wall time and in CPU time (the machine is shared).
        let share = 2.0 * records as f64 / total as f64;
        let wall: Vec<f64> = v
            .iter()
            .zip(raw)
            .map(|(m, r)| m.secs / (share * r.secs))
            .collect();
        let cpu: Vec<f64> = v
            .iter()
            .zip(raw)
            .map(|(m, r)| m.cpu_secs / (share * r.cpu_secs))
            .collect();
        let secs = median(v.iter().map(|m| m.secs).collect());
        let rounds: Vec<String> = wall.iter().map(|r| format!("{r:.2}")).collect();
        println!(
            "{name}{scope} = {secs:.2} s for {records} records, {:.0} rec/s scanned (2 passes), \
             CPU {:.2} s; time / (2 raw scans of the same round) = {:.2} (rounds {}), CPU ratio \
             {:.2} (1 = the limit); {}",
            2.0 * records as f64 / secs,
            median(v.iter().map(|m| m.cpu_secs).collect()),
            median(wall),
            rounds.join(", "),
            median(cpu),
            memory(v)
        );
    }
    for (task, name) in [
        ("report_kept", "national_report_kept"),
        ("coverage_kept", "national_coverage_kept"),
        ("province_kept", "province_report_kept"),
        ("city_kept", "city_report_kept"),
    ] {
        let v = &results[task];
        let scanned = results.get(task.trim_end_matches("_kept"));
        let cold = median(v.iter().map(|m| m.secs).collect());
        let vs_scan = scanned.map_or_else(String::new, |s| {
            let scan = median(s.iter().map(|m| m.secs).collect());
            format!("; {:.0}x faster than its scan", scan / cold)
        });
        println!(
            "{name} = {:.1} ms cold (a fresh process, right after opening the store; goal <= \
             1000, moonshot <= 100), {:.1} ms warm (asked again){vs_scan}; {}",
            1000.0 * cold,
            1000.0 * median(v.iter().map(|m| m.warm_secs).collect()),
            memory(v)
        );
    }
    let bytes = dir_bytes(&store);
    println!(
        "disk = {:.2} GiB, {:.0} B per record held (figures included)",
        bytes as f64 / f64::from(1u32 << 30),
        bytes as f64 / total as f64
    );
    println!(
        "memory = peaks are VmHWM of a fresh process {} after opening the store; sled \
         cache_capacity {} MiB",
        if reset {
            "reset (clear_refs 5)"
        } else {
            "NOT reset (clear_refs refused: peaks include opening)"
        },
        cache >> 20
    );
    if let Some(tmp) = tmp {
        let path = tmp.path().to_path_buf();
        tmp.close().unwrap();
        println!("removed {}", path.display());
    }
}
