//! `lmsync gen`.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use clap::Args;

use crate::core::model::{NodeCode, Tier};
use crate::tooling::synth::Generator;

/// Write seeded synthetic office records for one city as JSON Lines on stdout.
///
/// The same node, record count and seed always give the same file. Records come in
/// dependency order (offices, employers, courses, then daily activity from 1999-07-01),
/// with the mix and volumes of DOMAIN §6 scaled by the city's urban population.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  lmsync gen --node 440100 --records 50000 --seed 7 > 440100.jsonl"
)]
pub(crate) struct GenArgs {
    /// GB/T 2260 code of the city.
    #[arg(long, value_name = "CODE")]
    node: NodeCode,
    /// Number of records.
    #[arg(long, value_name = "N")]
    records: usize,
    /// Random seed.
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
}

pub(crate) fn run(args: GenArgs) -> anyhow::Result<ExitCode> {
    if args.node.tier() != Tier::City && !args.node.is_municipality() {
        anyhow::bail!(
            "{} is a {} node; synthetic office records are generated for cities",
            args.node,
            args.node.tier()
        );
    }
    let stdout = std::io::stdout().lock();
    let mut out = BufWriter::new(stdout);
    for record in Generator::new(args.node, args.seed).take(args.records) {
        let written = serde_json::to_writer(&mut out, &record)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"));
        if let Err(e) = written {
            // A closed pipe (`| head`) is a normal way to stop.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(ExitCode::SUCCESS);
            }
            return Err(e.into());
        }
    }
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}
