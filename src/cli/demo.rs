//! `lmsync demo`: the local three-tier demo network, with progress and a summary.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::http;
use crate::tooling::demo::national::{self, ProvinceStanding};
use crate::tooling::demo::{DEMO_CLASSIFICATION, DEMO_TARGET, Demo, OwnerDigests};

/// Records per city of the national demo unless `--records` says otherwise.
const NATIONAL_RECORDS: usize = 1_000;
/// Records per city of the pilot demo unless `--records` says otherwise.
const PILOT_RECORDS: usize = 20_000;

/// Start a local demo network on loopback: the ministry, the provinces and pilot cities,
/// each a real node (its own certificate from a fresh network CA, its own sled store and
/// HTTP API, real QUIC between tiers). Cities ingest seeded synthetic office records
/// through their APIs while sync runs; the ministry publishes a classification version
/// that flows down and takes effect at every city. Progress shows each city's records at
/// the city, its province and the ministry; the summary compares digests per owner.
/// With --national: the whole national tree (the ministry, all 31 provinces and 100
/// cities), with overall progress and a summary per province.
/// Without --exit-when-converged the network keeps running until Ctrl-C.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lmsync demo\n  lmsync demo --cities 6 --records 20000 --exit-when-converged\n  lmsync demo --national --exit-when-converged\n  lmsync demo --dir demo-net   # keep the data"
)]
pub(crate) struct DemoArgs {
    /// Number of pilot cities.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=40))]
    cities: u32,
    /// The national network: the ministry, all 31 provinces and 100 cities (every
    /// built-in pilot city, then other prefecture-level cities, 1–5 per province).
    #[arg(long, conflicts_with = "cities")]
    national: bool,
    /// Records per city [default: 20000; 1000 with --national].
    #[arg(long)]
    records: Option<usize>,
    /// Seed of the synthetic records.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Keep the network's files in this directory (default: a temporary one).
    #[arg(long, value_name = "D")]
    dir: Option<PathBuf>,
    /// Exit 0 once every digest matches at every tier and the new standard reached every
    /// city (non-zero with the reason on timeout).
    #[arg(long)]
    exit_when_converged: bool,
    /// Give up after this long.
    #[arg(long, default_value = "10m", value_parser = crate::node::config::parse_duration)]
    timeout: Duration,
}

pub(crate) fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    crate::node::telemetry::init("warn", crate::node::config::LogFormat::Pretty);
    let temp = tempfile::Builder::new().prefix("lmsync-demo-").tempdir()?;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            if d.join("ca").exists() {
                bail!(
                    "{} already holds a demo network; choose an empty directory",
                    d.display()
                );
            }
            d.clone()
        }
        None => temp.path().to_path_buf(),
    };
    let view = if args.national {
        View::National
    } else {
        View::Pilots
    };
    super::runtime()?.block_on(async {
        let demo = start(&args, &dir).await?;
        print_nodes(&demo, &dir, view);
        let started = Instant::now();
        let bars = progress(&demo, view);
        let outcome = tokio::time::timeout(args.timeout, async {
            tokio::select! {
                done = converge(&demo, view.poll()) => done,
                () = tick(&demo, &bars, view) => unreachable!("the ticker never ends"),
            }
        })
        .await;
        bars.iter().for_each(ProgressBar::finish);
        let digests = match outcome {
            Err(_) => bail!(
                "timed out after {:?} before the network converged",
                args.timeout
            ),
            Ok(result) => result?,
        };
        match view {
            View::Pilots => summary(&digests),
            View::National => national_summary(&digests),
        }
        totals(&demo, started.elapsed());
        target_line(&demo).await;
        if !args.exit_when_converged {
            // Before the addresses are printed: whoever reads them may stop the demo at once.
            let stop = crate::node::daemon::termination_signal();
            dashboards(&demo, &dir, view);
            stop.await;
        }
        demo.stop().await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Where each node's dashboard is (national: the ministry's and the provinces'; 100
/// city lines would bury them).
fn dashboards(demo: &Demo, dir: &std::path::Path, view: View) {
    println!(
        "\nThe network keeps running; press Ctrl-C to stop it. Dashboards (coverage of {DEMO_QUARTER}, the demo's first quarter):"
    );
    let cities = if view == View::National {
        &[][..]
    } else {
        &demo.cities[..]
    };
    if let Some(public) = demo.ministry.public_addr() {
        println!(
            "  public  http://{public}/  the national vacancy board (also /report, /offices, /screen)"
        );
    }
    for n in std::iter::once(&demo.ministry)
        .chain(&demo.provinces)
        .chain(cities)
    {
        println!(
            "  {} http://{}/?period={DEMO_QUARTER}  {}",
            n.code, n.api, n.name
        );
    }
    if view == View::National {
        println!(
            "  and the {} cities': each city's address is in {}/CODE/data/api.addr",
            demo.cities.len(),
            dir.display()
        );
    }
}

/// How the demo is shown: a row per city, or a row per province for the national tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    Pilots,
    National,
}

impl View {
    /// How often digests are compared: the national tree has 300 of them to read.
    fn poll(self) -> Duration {
        match self {
            View::Pilots => Duration::from_millis(200),
            View::National => Duration::from_secs(1),
        }
    }
}

async fn start(args: &DemoArgs, dir: &std::path::Path) -> anyhow::Result<Demo> {
    Ok(if args.national {
        let cities = national::cities_of(&national::national_tree());
        let records = args.records.unwrap_or(NATIONAL_RECORDS);
        Demo::start_cities(dir, cities, records, args.seed).await?
    } else {
        let records = args.records.unwrap_or(PILOT_RECORDS);
        Demo::start(dir, args.cities as usize, records, args.seed).await?
    })
}

fn print_nodes(demo: &Demo, dir: &std::path::Path, view: View) {
    println!(
        "lmsync demo: the ministry, {} provinces and {} {}cities in {}",
        demo.provinces.len(),
        demo.cities.len(),
        if view == View::National { "" } else { "pilot " },
        dir.display()
    );
    if view == View::National {
        for p in &demo.provinces {
            let cities: Vec<String> = demo
                .cities
                .iter()
                .filter(|c| c.code.province() == Some(p.code))
                .map(|c| c.code.to_string())
                .collect();
            println!("  {} {:<10} ← {}", p.code, p.name, cities.join(" "));
        }
        return;
    }
    for c in &demo.cities {
        let province = c
            .code
            .province()
            .map_or_else(String::new, |p| p.to_string());
        println!("  {} → {province} → 100000  {}", c.code, c.name);
    }
}

/// The quarter the demo's synthetic records start in.
const DEMO_QUARTER: &str = "1999Q3";

/// Feeds the cities, publishes the standard, and waits until everything matches.
async fn converge(demo: &Demo, poll: Duration) -> anyhow::Result<Vec<OwnerDigests>> {
    let client = http::client()?;
    demo.feed().await?;
    demo.publish_standard(&client).await?;
    demo.designate_pilots(&client).await?;
    loop {
        let digests = demo.digests(&client).await?;
        let documents = demo.cities_with_standard(&client).await?;
        if digests.iter().all(OwnerDigests::matches) && documents == demo.cities.len() {
            return Ok(digests);
        }
        tokio::time::sleep(poll).await;
    }
}

fn progress(demo: &Demo, view: View) -> Vec<ProgressBar> {
    let multi = MultiProgress::new();
    if !std::io::stderr().is_terminal() {
        multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    if view == View::National {
        let total = (demo.records * demo.cities.len()) as u64;
        let style =
            ProgressStyle::with_template("{prefix} {bar:30} {pos:>8}/{len} stored  {msg}").ok();
        let bar = multi.add(ProgressBar::new(total));
        if let Some(s) = style {
            bar.set_style(s);
        }
        bar.set_prefix("cities");
        return vec![bar];
    }
    let style =
        ProgressStyle::with_template("{prefix:<8} {bar:30} {pos:>7}/{len} stored  {msg}").ok();
    demo.cities
        .iter()
        .map(|c| {
            let bar = multi.add(ProgressBar::new(demo.records as u64));
            if let Some(s) = &style {
                bar.set_style(s.clone());
            }
            bar.set_prefix(c.code.to_string());
            bar
        })
        .collect()
}

/// Redraws the bars: records stored at each city, and how many have reached its province
/// and the ministry (national: in all, and how many cities and provinces converged).
async fn tick(demo: &Demo, bars: &[ProgressBar], view: View) {
    let Ok(client) = http::client() else {
        return std::future::pending().await;
    };
    // Without a terminal the bars are hidden: a plain line now and then instead, so a
    // log shows the demo moving.
    let plain = !std::io::stderr().is_terminal();
    let mut last_line: Option<Instant> = None;
    loop {
        if let Ok(digests) = demo.digests(&client).await {
            match view {
                View::Pilots => pilot_tick(demo, bars, &digests),
                View::National => national_tick(demo, bars, &digests),
            }
            if plain && last_line.is_none_or(|t| t.elapsed() >= PLAIN_PROGRESS_EVERY) {
                eprintln!("{}", progress_line(demo, &digests));
                last_line = Some(Instant::now());
            }
        }
        tokio::time::sleep(view.poll().max(Duration::from_millis(300))).await;
    }
}

/// How often a demo without a terminal prints a progress line.
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// One line of progress: records stored at the cities and how many are above.
fn progress_line(demo: &Demo, digests: &[OwnerDigests]) -> String {
    let stored: u64 = demo
        .cities
        .iter()
        .map(|c| c.stored.load(Ordering::Relaxed))
        .sum();
    let total = (demo.records * demo.cities.len()) as u64;
    let at = |tier: usize| digests.iter().map(|d| d.tiers[tier].0).sum::<u64>();
    let converged = digests.iter().filter(|d| d.matches()).count();
    format!(
        "progress: {stored}/{total} records stored at the cities, {} at the provinces, {} at the ministry; {converged}/{} cities converged",
        at(1),
        at(2),
        digests.len()
    )
}

/// A bar per city: records stored there, at its province and at the ministry.
fn pilot_tick(demo: &Demo, bars: &[ProgressBar], digests: &[OwnerDigests]) {
    for ((c, bar), d) in demo.cities.iter().zip(bars).zip(digests) {
        bar.set_position(c.stored.load(Ordering::Relaxed));
        bar.set_message(format!(
            "at province {:>7}  at ministry {:>7}",
            d.tiers[1].0, d.tiers[2].0
        ));
    }
}

/// The national bar: records stored at the cities, and how far the tiers above are.
fn national_tick(demo: &Demo, bars: &[ProgressBar], digests: &[OwnerDigests]) {
    let stored: u64 = demo
        .cities
        .iter()
        .map(|c| c.stored.load(Ordering::Relaxed))
        .sum();
    let standings = national::by_province(digests);
    let above = |tier: usize| standings.iter().map(|s| s.records[tier]).sum::<u64>();
    let cities: usize = standings.iter().map(|s| s.converged).sum();
    let provinces = standings.iter().filter(|s| s.converged()).count();
    for bar in bars {
        bar.set_position(stored);
        bar.set_message(format!(
            "at provinces {:>8}  at ministry {:>8}  converged: {cities}/{} cities, {provinces}/{} provinces",
            above(1),
            above(2),
            demo.cities.len(),
            standings.len()
        ));
    }
}

fn summary(digests: &[OwnerDigests]) {
    println!(
        "\n{:<8} {:>8}  {:<16} {:<16} {:<16}  match  name",
        "owner", "records", "city", "province", "ministry"
    );
    for d in digests {
        let short = |i: usize| d.tiers[i].1.chars().take(16).collect::<String>();
        let ok = if d.matches() { "yes" } else { "NO" };
        println!(
            "{:<8} {:>8}  {:<16} {:<16} {:<16}  {ok:<5}  {}",
            d.city,
            d.tiers[0].0,
            short(0),
            short(1),
            short(2),
            d.name
        );
    }
}

/// A row per province: its cities, how many converged, its records at each tier.
fn national_summary(digests: &[OwnerDigests]) {
    println!(
        "\n{:<8} {:<16} {:>6} {:>9}  {:>9} {:>9} {:>9}  every tier equal",
        "province", "name", "cities", "converged", "at cities", "province", "ministry"
    );
    let standings: Vec<ProvinceStanding> = national::by_province(digests);
    for s in &standings {
        println!(
            "{:<8} {:<16} {:>6} {:>9}  {:>9} {:>9} {:>9}  {}",
            s.province,
            s.name,
            s.cities,
            s.converged,
            s.records[0],
            s.records[1],
            s.records[2],
            if s.converged() { "yes" } else { "NO" }
        );
    }
    let converged: usize = standings.iter().map(|s| s.converged).sum();
    println!(
        "{} provinces, {converged} of {} cities converged",
        standings.len(),
        digests.len()
    );
}

/// What converged means, how long it took and the rate.
fn totals(demo: &Demo, elapsed: Duration) {
    let posted: u64 = demo
        .cities
        .iter()
        .map(|c| c.stored.load(Ordering::Relaxed))
        .sum();
    let secs = elapsed.as_secs_f64();
    println!(
        "\nconverged: every owner's digest is equal at city, province and ministry; {DEMO_CLASSIFICATION} is in force and target {DEMO_TARGET} is published at all {} cities",
        demo.cities.len()
    );
    println!(
        "time to converge {secs:.1} s for {posted} records ({:.0} records/s end to end)",
        posted as f64 / secs
    );
}

/// How the demo's target stands, in the ministry's own judgement (the same as its
/// dashboard's): published everywhere is not the same as met.
async fn target_line(demo: &Demo) {
    let Ok(client) = http::client() else { return };
    match demo.target_standing(&client, DEMO_QUARTER).await {
        Ok(s) => println!(
            "target {DEMO_TARGET} (M01, online share of vacancy reports, >= 0.6 at pilot cities) in {DEMO_QUARTER}: met at {} of {} cities, missed at {}, not judged at {} (the ministry's dashboard shows each)",
            s.met,
            s.met + s.missed + s.not_judged,
            s.missed,
            s.not_judged
        ),
        Err(e) => println!("target {DEMO_TARGET}: the ministry's coverage did not answer ({e})"),
    }
}
