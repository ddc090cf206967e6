//! `lmsync demo`: the local demo network, with progress and a summary.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::http;
use crate::demo::Demo;

/// Start a local demo network on loopback and feed it seeded synthetic office records.
///
/// Every node is real: its own certificate from a freshly made network CA, its own sled
/// store, its own HTTP API. Each city ingests its records through its API while you
/// watch; then a summary shows each owner's record count and digest. Without
/// --exit-when-converged the network keeps running until Ctrl-C.
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
    /// Exit 0 once every city has stored its records (non-zero on timeout).
    #[arg(long)]
    exit_when_converged: bool,
    /// Give up after this long.
    #[arg(long, default_value = "10m", value_parser = crate::config::parse_duration)]
    timeout: Duration,
}

pub(crate) fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    crate::telemetry::init("warn", crate::config::LogFormat::Pretty);
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
        println!(
            "lmsync demo: {} city nodes in {}",
            demo.cities.len(),
            dir.display()
        );
        for c in &demo.cities {
            println!("  {} API http://{}  {}", c.code, c.api, c.name);
        }
        let started = Instant::now();
        let bars = progress(&demo);
        let fed = tokio::time::timeout(args.timeout, async {
            tokio::select! {
                done = demo.feed() => done,
                () = tick(&demo, &bars) => unreachable!("the ticker never ends"),
            }
        })
        .await;
        bars.iter().for_each(ProgressBar::finish);
        match fed {
            Err(_) => bail!(
                "timed out after {:?} before every city stored its records",
                args.timeout
            ),
            Ok(result) => result?,
        }
        summary(&demo, started.elapsed()).await?;
        if !args.exit_when_converged {
            println!("\nThe network keeps running; press Ctrl-C to stop it.");
            crate::daemon::termination_signal().await;
        }
        demo.stop().await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn progress(demo: &Demo) -> Vec<ProgressBar> {
    let multi = MultiProgress::new();
    if !std::io::stderr().is_terminal() {
        multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let style =
        ProgressStyle::with_template("{prefix:<18} {bar:40} {pos:>7}/{len} stored at the city")
            .ok();
    demo.cities
        .iter()
        .map(|c| {
            let bar = multi.add(ProgressBar::new(demo.records as u64));
            if let Some(s) = &style {
                bar.set_style(s.clone());
            }
            bar.set_prefix(format!("{} {}", c.code, c.name));
            bar
        })
        .collect()
}

async fn tick(demo: &Demo, bars: &[ProgressBar]) {
    loop {
        for (c, bar) in demo.cities.iter().zip(bars) {
            bar.set_position(c.stored.load(Ordering::Relaxed));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn summary(demo: &Demo, elapsed: Duration) -> anyhow::Result<()> {
    let client = http::client()?;
    println!(
        "\n{:<8} {:>9} {:>9}  {:<16}  name",
        "owner", "posted", "records", "digest"
    );
    let mut total = 0u64;
    for c in &demo.cities {
        let d = http::get_json(
            &client,
            &format!("http://{}/v1/digest?owner={}", c.api, c.code),
        )
        .await
        .with_context(|| format!("reading the digest of {}", c.code))?;
        let posted = c.stored.load(Ordering::Relaxed);
        total += posted;
        let root = d["root"].as_str().unwrap_or("-");
        let records = d["records"].as_u64().unwrap_or(0);
        let short = &root[..16.min(root.len())];
        println!(
            "{:<8} {posted:>9} {records:>9}  {short:<16}  {}",
            c.code, c.name
        );
    }
    let secs = elapsed.as_secs_f64();
    println!(
        "\nconverged: every city stored its {} records in {secs:.1} s ({:.0} records/s)",
        demo.records,
        total as f64 / secs
    );
    println!("(provinces and the ministry join the demo when tier-to-tier sync lands)");
    Ok(())
}
