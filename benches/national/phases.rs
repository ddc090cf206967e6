//! The national bench's phases, in order: the raw sled limit, setting up and starting the
//! network, the clean feed (throughput and lag), idle cost, the feed under faults, and the
//! final checks; and the figures they produce.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lmsync::core::model::{MINISTRY, NodeCode, Tier};
use lmsync::tooling::demo::Branch;
use tokio::sync::oneshot;

use super::common;
use super::feed::{self, Endpoint, Feed, Ledger, Pause};
use super::figures::{Figures, Lags};
use super::fleet::Fleet;
use super::measure;
use super::{Params, victims};

/// JSON array bodies of one city's POSTs, in order.
type Bodies = Vec<Vec<u8>>;
/// Each city's bodies of phase 1 and of phase 3.
type Planned = BTreeMap<NodeCode, (Bodies, Bodies)>;

const RAW_CACHE: u64 = 256 << 20;
const RAW_MAX: usize = 200_000;

/// Runs every phase in `dir`; panics (after killing every node) when the network does
/// not converge or loses an acknowledged record.
pub fn run(p: &Params, tree: &[Branch], dir: &Path) -> Figures {
    let mut f = Figures::default();
    let cities = lmsync::tooling::demo::national::cities_of(tree);
    let bodies = generate(p, &cities);
    f.raw_records = (p.records * cities.len()).min(RAW_MAX);
    f.raw = raw_limit(p.seed, f.raw_records, &dir.join("raw"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let (fleet, ledgers) = rt.block_on(network(p, tree, dir, bodies, &mut f));
    drop(rt);
    // Every node has stopped: the stores can be opened here.
    f.checked = measure::nothing_lost(fleet.dir(), &ledgers);
    f
}

/// Each city's phase-1 and phase-3 bodies: one generated stream, so phase 3 brings later
/// versions of phase-1 records as well as new ones.
fn generate(p: &Params, cities: &[NodeCode]) -> Planned {
    let bodies = |records: &[serde_json::Value]| -> Bodies {
        records
            .chunks(p.batch)
            .map(|c| serde_json::to_vec(c).expect("JSON"))
            .collect()
    };
    cities
        .iter()
        .map(|&city| {
            let all =
                lmsync::tooling::synth::generate(city, p.records + p.records.div_ceil(2), p.seed);
            let (first, later) = all.split_at(p.records);
            (city, (bodies(first), bodies(later)))
        })
        .collect()
}

/// Raw sled rec/s on `n` records of the benches' city, batches of [`BATCH`], durable.
fn raw_limit(seed: u64, n: usize, dir: &Path) -> f64 {
    let json = lmsync::tooling::synth::generate(common::city(), n, seed);
    let key = lmsync::core::model::person::Pseudonymiser::new([7; 32], 1);
    let encoded = common::encoded(&common::drafts(&json, &key));
    let rate = common::raw_sled(dir, &encoded, RAW_CACHE);
    std::fs::remove_dir_all(dir).expect("removing the raw store");
    rate
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client")
}

/// Sets up and starts the network, runs phases 1–3, and stops every node.
async fn network(
    p: &Params,
    tree: &[Branch],
    dir: &Path,
    mut bodies: Planned,
    f: &mut Figures,
) -> (Fleet, BTreeMap<NodeCode, Ledger>) {
    let started = Instant::now();
    let mut fleet = Fleet::set_up(dir, tree);
    let provinces: Vec<NodeCode> = tree.iter().map(|b| b.province).collect();
    let cities = lmsync::tooling::demo::national::cities_of(tree);
    fleet.start(&[MINISTRY]).await;
    fleet.start(&provinces).await;
    fleet.start(&cities).await;
    f.nodes = fleet.pids().len();
    f.started_in = started.elapsed().as_secs_f64();
    let client = client();
    let first: BTreeMap<NodeCode, Bodies> = bodies
        .iter_mut()
        .map(|(c, (one, _))| (*c, std::mem::take(one)))
        .collect();
    let ledgers = clean_feed(p, &client, &fleet, first, f).await;
    idle(p, &fleet, f).await;
    let later: BTreeMap<NodeCode, Bodies> = bodies
        .into_iter()
        .map(|(c, (_, three))| (c, three))
        .collect();
    let (mut fleet, ledgers) = faults(p, tree, &client, fleet, later, ledgers, f).await;
    let unclean = fleet.stop_all().await;
    assert!(unclean.is_empty(), "did not exit 0 on SIGTERM: {unclean:?}");
    (fleet, ledgers)
}

/// Spawns one feed per city; the ledgers come back from the handles.
fn spawn_feeds(
    client: &reqwest::Client,
    feeds: Vec<(Feed, Ledger)>,
) -> Vec<tokio::task::JoinHandle<(NodeCode, Ledger)>> {
    feeds
        .into_iter()
        .map(|(feed, ledger)| {
            let client = client.clone();
            tokio::spawn(async move {
                let city = feed.city;
                (city, feed::run(client, feed, ledger).await)
            })
        })
        .collect()
}

async fn join(
    handles: Vec<tokio::task::JoinHandle<(NodeCode, Ledger)>>,
) -> BTreeMap<NodeCode, Ledger> {
    let mut out = BTreeMap::new();
    for h in handles {
        let (city, ledger) = h.await.expect("a feed panicked");
        out.insert(city, ledger);
    }
    out
}

fn endpoint(fleet: &Fleet, code: NodeCode) -> Endpoint {
    let n = fleet.node(code);
    Endpoint {
        api: n.api.clone(),
        token: n.token.clone(),
    }
}

/// Phase 1: every city fed at once; time until the ministry holds everything; lags.
async fn clean_feed(
    p: &Params,
    client: &reqwest::Client,
    fleet: &Fleet,
    bodies: BTreeMap<NodeCode, Bodies>,
    f: &mut Figures,
) -> BTreeMap<NodeCode, Ledger> {
    let ministry = fleet.node(MINISTRY).api.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(measure::watch_ministry(
        client.clone(),
        ministry.clone(),
        p.poll,
        stop.clone(),
    ));
    let start = Instant::now();
    let deadline = start + p.phase_limit;
    let progress = Arc::new(AtomicU64::new(0));
    let feeds = bodies
        .into_iter()
        .map(|(city, batches)| {
            let feed = Feed {
                city,
                endpoint: endpoint(fleet, city),
                batches,
                spacing: None,
                offset: Duration::ZERO,
                pause: None,
                progress: progress.clone(),
                deadline,
            };
            (feed, Ledger::default())
        })
        .collect();
    let ledgers = join(spawn_feeds(client, feeds)).await;
    f.fed_in = start.elapsed().as_secs_f64();
    f.posted = ledgers.values().map(|l| l.accepted).sum();
    let mut targets = BTreeMap::new();
    for city in ledgers.keys() {
        let d = measure::digest(client, &fleet.node(*city).api, *city).await;
        targets.insert(*city, d.expect("the city answers"));
    }
    f.distinct = targets.values().map(|d| d.0).sum();
    let mut waiting = targets.clone();
    while !waiting.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the ministry lacks records of {:?} after {:?}",
            waiting.keys().collect::<Vec<_>>(),
            p.phase_limit
        );
        for (city, target) in std::mem::take(&mut waiting) {
            if measure::digest(client, &ministry, city).await.as_ref() != Some(&target) {
                waiting.insert(city, target);
            }
        }
        if !waiting.is_empty() {
            tokio::time::sleep(p.poll).await;
        }
    }
    f.to_ministry = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let seen = watcher.await.expect("the ministry watcher");
    f.lags = Lags::measure(&ledgers, &seen, &BTreeMap::new(), &[]);
    ledgers
}

/// Phase 2: CPU of every node over the idle window, and each node's RSS.
async fn idle(p: &Params, fleet: &Fleet, f: &mut Figures) {
    tokio::time::sleep(p.settle).await;
    let pids = fleet.pids();
    let ticks = |pids: &[(NodeCode, u32)]| -> Vec<u64> {
        pids.iter()
            .map(|(c, pid)| measure::cpu_ticks(*pid).unwrap_or_else(|| panic!("{c} is gone")))
            .collect()
    };
    f.idle_waited = quiet(&pids, &ticks).await;
    let (before, at) = (ticks(&pids), Instant::now());
    tokio::time::sleep(p.idle_window).await;
    let (after, window) = (ticks(&pids), at.elapsed().as_secs_f64());
    f.idle_window = window;
    let per_second = measure::clock_ticks();
    let share = |ticks: u64| ticks as f64 / per_second / window * 100.0;
    for (((code, _), b), a) in pids.iter().zip(&before).zip(&after) {
        let tier = match code.tier() {
            Tier::City => 0,
            Tier::Province => 1,
            Tier::Ministry => 2,
        };
        f.idle_cpu_tiers[tier] += share(a - b);
        f.idle_cpu += share(a - b);
    }
    f.rss = pids
        .iter()
        .map(|(c, pid)| (*c, measure::rss(*pid).unwrap_or_default()))
        .collect();
}

/// Waits until the nodes' background work after the feed is done (provinces and the
/// ministry keep each city's figures of its latest quarters once records settle): a second
/// in which all of them together used less than a tenth of a core, for at most a minute.
/// Returns the seconds waited.
async fn quiet(pids: &[(NodeCode, u32)], ticks: impl Fn(&[(NodeCode, u32)]) -> Vec<u64>) -> f64 {
    const SAMPLE: Duration = Duration::from_secs(1);
    const LONGEST: Duration = Duration::from_secs(60);
    let per_second = measure::clock_ticks();
    let start = Instant::now();
    let mut before = ticks(pids);
    while start.elapsed() < LONGEST {
        tokio::time::sleep(SAMPLE).await;
        let after = ticks(pids);
        let used: u64 = after.iter().zip(&before).map(|(a, b)| a - b).sum();
        if (used as f64 / per_second) < 0.1 * SAMPLE.as_secs_f64() {
            break;
        }
        before = after;
    }
    start.elapsed().as_secs_f64()
}

/// Phase 3: a paced feed while a province is killed and restarted and a city is wiped and
/// restored; then convergence at every tier, and the lags of the cities outside the faults.
async fn faults(
    p: &Params,
    tree: &[Branch],
    client: &reqwest::Client,
    mut fleet: Fleet,
    bodies: BTreeMap<NodeCode, Bodies>,
    ledgers: BTreeMap<NodeCode, Ledger>,
    f: &mut Figures,
) -> (Fleet, BTreeMap<NodeCode, Ledger>) {
    let (kill, wipe) = victims(tree);
    let skip: BTreeMap<NodeCode, usize> = ledgers.iter().map(|(c, l)| (*c, l.acks.len())).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(measure::watch_ministry(
        client.clone(),
        fleet.node(MINISTRY).api.clone(),
        p.poll,
        stop.clone(),
    ));
    let start = Instant::now();
    let deadline = start + p.phase_limit;
    let progress = Arc::new(AtomicU64::new(0));
    let total: usize = bodies.values().map(Vec::len).sum();
    let (feeds, control) = paced_feeds(p, &fleet, bodies, ledgers, wipe, &progress, deadline);
    let handles = spawn_feeds(client, feeds);
    while progress.load(Ordering::Relaxed) * 4 < total as u64 {
        assert!(Instant::now() < deadline, "phase 3 feeding stalled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let killed_at = Instant::now();
    fleet.kill(kill);
    tokio::time::sleep(p.outage).await;
    fleet.start(&[kill]).await;
    f.down_for = killed_at.elapsed().as_secs_f64();
    let cities_of_kill = tree
        .iter()
        .find(|b| b.province == kill)
        .map_or(&[][..], |b| &b.cities[..]);
    f.killed = format!("{kill} ({} cities)", cities_of_kill.len());
    if let (Some(city), Some((paused, resume))) = (wipe, control) {
        paused.await.expect("the wiped city's feed pauses");
        f.wiped = format!("{city} at {:.1} s", start.elapsed().as_secs_f64());
        wipe_and_restore(p, client, &mut fleet, city, deadline, f).await;
        let _ = resume.send(endpoint(&fleet, city));
    }
    let ledgers = join(handles).await;
    f.fault_fed_in = start.elapsed().as_secs_f64();
    f.fault_posted = ledgers.values().map(|l| l.accepted).sum::<u64>() - f.posted;
    let fed = Instant::now();
    every_tier_equal(p, client, &fleet, &ledgers, deadline).await;
    f.fault_converged_after = fed.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let seen = watcher.await.expect("the ministry watcher");
    let exclude: Vec<NodeCode> = cities_of_kill.iter().copied().chain(wipe).collect();
    f.paced_lags = Lags::measure(&ledgers, &seen, &skip, &exclude);
    (fleet, ledgers)
}

/// The pause of the wiped city's feed, as the fault driver holds it.
type Control = (oneshot::Receiver<()>, oneshot::Sender<Endpoint>);

/// Each city's batches spread evenly over [`Params::pace`], the cities staggered so that
/// the network sees a steady load rather than bursts; `wipe`'s feed pauses halfway.
fn paced_feeds(
    p: &Params,
    fleet: &Fleet,
    bodies: BTreeMap<NodeCode, Bodies>,
    mut ledgers: BTreeMap<NodeCode, Ledger>,
    wipe: Option<NodeCode>,
    progress: &Arc<AtomicU64>,
    deadline: Instant,
) -> (Vec<(Feed, Ledger)>, Option<Control>) {
    let mut control = None;
    let mut feeds = Vec::new();
    let cities = u32::try_from(bodies.len().max(1)).unwrap_or(u32::MAX);
    for (k, (city, batches)) in (0..).zip(bodies) {
        let pause = (Some(city) == wipe).then(|| {
            let (paused_tx, paused_rx) = oneshot::channel();
            let (resume_tx, resume_rx) = oneshot::channel();
            control = Some((paused_rx, resume_tx));
            Pause {
                after: batches.len() / 2,
                paused: paused_tx,
                resume: resume_rx,
            }
        });
        let spacing = p.pace / u32::try_from(batches.len().max(1)).unwrap_or(u32::MAX);
        let feed = Feed {
            city,
            endpoint: endpoint(fleet, city),
            batches,
            spacing: Some(spacing),
            offset: spacing * k / cities,
            pause,
            progress: progress.clone(),
            deadline,
        };
        feeds.push((feed, ledgers.remove(&city).unwrap_or_default()));
    }
    (feeds, control)
}

/// Waits until `city`'s province holds its records, stops it, wipes and re-creates its
/// store marked for restore, restarts it and waits until the restore is done.
async fn wipe_and_restore(
    p: &Params,
    client: &reqwest::Client,
    fleet: &mut Fleet,
    city: NodeCode,
    deadline: Instant,
    f: &mut Figures,
) {
    let province = city.province().expect("a city has a province");
    loop {
        let here = measure::digest(client, &fleet.node(city).api, city).await;
        let above = measure::digest(client, &fleet.node(province).api, city).await;
        if here.is_some() && here == above {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{province} never caught up with {city}"
        );
        tokio::time::sleep(p.poll).await;
    }
    assert!(fleet.stop(city).await, "{city} did not exit 0 on SIGTERM");
    fleet.wipe_and_reinit(city);
    let restarted = Instant::now();
    fleet.start(&[city]).await;
    let api = fleet.node(city).api.clone();
    loop {
        let status: Option<serde_json::Value> =
            match client.get(format!("{api}/v1/status")).send().await {
                Ok(r) => r.json().await.ok(),
                Err(_) => None,
            };
        if status.is_some_and(|s| s["restoring"] == false) {
            break;
        }
        assert!(Instant::now() < deadline, "{city} never finished restoring");
        tokio::time::sleep(p.poll).await;
    }
    f.restored_in = restarted.elapsed().as_secs_f64();
    f.restored_records = measure::digest(client, &api, city).await.map_or(0, |d| d.0);
}

/// Waits until every city's digest is equal, and not empty, at city, province and
/// ministry.
async fn every_tier_equal(
    p: &Params,
    client: &reqwest::Client,
    fleet: &Fleet,
    ledgers: &BTreeMap<NodeCode, Ledger>,
    deadline: Instant,
) {
    let mut waiting: Vec<NodeCode> = ledgers.keys().copied().collect();
    while !waiting.is_empty() {
        let mut still = Vec::new();
        for city in waiting {
            let province = city.province().expect("a city has a province");
            let mut tiers = Vec::new();
            for node in [city, province, MINISTRY] {
                tiers.push(measure::digest(client, &fleet.node(node).api, city).await);
            }
            let equal =
                tiers[0].as_ref().is_some_and(|d| d.0 > 0) && tiers.iter().all(|t| *t == tiers[0]);
            if !equal {
                still.push(city);
            }
        }
        waiting = still;
        assert!(
            waiting.is_empty() || Instant::now() < deadline,
            "digests still differ between tiers for {waiting:?}"
        );
        if !waiting.is_empty() {
            tokio::time::sleep(p.poll).await;
        }
    }
}
