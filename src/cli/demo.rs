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
use crate::tooling::demo::{DEMO_CLASSIFICATION, DEMO_TARGET, Demo, OwnerDigests};

/// Start a local demo network on loopback: the ministry, the provinces and pilot cities,
/// each a real node (its own certificate from a fresh network CA, its own sled store and
/// HTTP API, real QUIC between tiers). Cities ingest seeded synthetic office records
/// through their APIs while sync runs; the ministry publishes a classification version
/// that flows down and takes effect at every city. Progress shows each city's records at
/// the city, its province and the ministry; the summary compares digests per owner.
/// Without --exit-when-converged the network keeps running until Ctrl-C.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lmsync demo\n  lmsync demo --cities 6 --records 20000 --exit-when-converged\n  lmsync demo --dir demo-net   # keep the data"
)]
pub(crate) struct DemoArgs {
    /// Number of pilot cities.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=40))]
    cities: u32,
    /// Records per city.
    #[arg(long, default_value_t = 20_000)]
    records: usize,
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
    super::runtime()?.block_on(async {
        let demo = Demo::start(&dir, args.cities as usize, args.records, args.seed).await?;
        print_nodes(&demo, &dir);
        let started = Instant::now();
        let bars = progress(&demo);
        let outcome = tokio::time::timeout(args.timeout, async {
            tokio::select! {
                done = converge(&demo) => done,
                () = tick(&demo, &bars) => unreachable!("the ticker never ends"),
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
        summary(&demo, &digests, started.elapsed());
        if !args.exit_when_converged {
            println!(
                "\nThe network keeps running; press Ctrl-C to stop it. Dashboards (coverage of {DEMO_QUARTER}, the demo's first quarter):"
            );
            for n in std::iter::once(&demo.ministry)
                .chain(&demo.provinces)
                .chain(&demo.cities)
            {
                println!("  {} http://{}/?period={DEMO_QUARTER}  {}", n.code, n.api, n.name);
            }
            crate::node::daemon::termination_signal().await;
        }
        demo.stop().await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn print_nodes(demo: &Demo, dir: &std::path::Path) {
    println!(
        "lmsync demo: the ministry, {} provinces and {} pilot cities in {}",
        demo.provinces.len(),
        demo.cities.len(),
        dir.display()
    );
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
async fn converge(demo: &Demo) -> anyhow::Result<Vec<OwnerDigests>> {
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
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn progress(demo: &Demo) -> Vec<ProgressBar> {
    let multi = MultiProgress::new();
    if !std::io::stderr().is_terminal() {
        multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
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
/// and the ministry.
async fn tick(demo: &Demo, bars: &[ProgressBar]) {
    let Ok(client) = http::client() else {
        return std::future::pending().await;
    };
    loop {
        if let Ok(digests) = demo.digests(&client).await {
            for ((c, bar), d) in demo.cities.iter().zip(bars).zip(&digests) {
                bar.set_position(c.stored.load(Ordering::Relaxed));
                bar.set_message(format!(
                    "at province {:>7}  at ministry {:>7}",
                    d.tiers[1].0, d.tiers[2].0
                ));
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn summary(demo: &Demo, digests: &[OwnerDigests], elapsed: Duration) {
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
    let posted: u64 = demo
        .cities
        .iter()
        .map(|c| c.stored.load(Ordering::Relaxed))
        .sum();
    let secs = elapsed.as_secs_f64();
    println!(
        "\nconverged: every owner's digest is equal at city, province and ministry, {DEMO_CLASSIFICATION} is in force and target {DEMO_TARGET} held at all {} cities",
        demo.cities.len()
    );
    println!(
        "time to converge {secs:.1} s for {posted} records ({:.0} records/s end to end)",
        posted as f64 / secs
    );
}
