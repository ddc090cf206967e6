//! The command line (`docs/reference/cli.md`): argument parsing and one function per verb. The only
//! module that prints for people; errors reach here as `anyhow` chains and leave as one
//! line on stderr with a non-zero exit code.

mod backup;
mod changes;
mod config;
mod coverage;
mod demo;
mod export;
mod figures;
mod generate;
mod http;
mod import;
mod import_office;
mod init;
mod pki;
mod publish;
mod report;
mod retire;
mod run;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// lmsync: replication engine of the labour-market information network.
///
/// Every node (city, province, ministry) keeps a durable local store of office records;
/// records flow up the tree, classification standards and policies flow down.
#[derive(Debug, Parser)]
#[command(
    name = "lmsync",
    version,
    propagate_version = true,
    after_help = "\
Set up a city node:
  lmsync pki init --dir ca
  lmsync pki issue --dir ca --node 440100 --out pki-440100
  lmsync init --node 440100 --pki pki-440100 --data data-440100 --config 440100.toml
  lmsync run --config 440100.toml &
  lmsync gen --node 440100 --records 50000 --seed 1 > records.jsonl
  lmsync import --config 440100.toml records.jsonl
  lmsync status --config 440100.toml"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a local demo network and feed it synthetic records.
    Demo(demo::DemoArgs),
    /// Manage the network's certificate authority and node certificates.
    Pki {
        #[command(subcommand)]
        command: pki::PkiCommand,
    },
    /// Create a node: its config file, API token, pseudonym key and data directory.
    Init(init::InitArgs),
    /// Run a node until SIGINT or SIGTERM.
    Run(run::RunArgs),
    /// Show one node's state: links, counts, store, certificate.
    Status(status::StatusArgs),
    /// Ingest records through a running node's API: JSON Lines, or an office's CSV or
    /// .xlsx export through a mapping file.
    Import(import::ImportArgs),
    /// Publish a document (ministry or province) that flows down the tree.
    Publish(publish::PublishArgs),
    /// Retire a node from service (its records stay), or reinstate it.
    Retire(retire::RetireArgs),
    /// The quarterly supply/demand report and pilot target status of a scope.
    Report(report::ReportArgs),
    /// A scope's coverage: the targets' status and their trends over four quarters.
    Coverage(coverage::CoverageArgs),
    /// Write seeded synthetic office records for a city as JSON Lines.
    Gen(generate::GenArgs),
    /// Check the node's kept figures against its records.
    Figures(figures::FiguresArgs),
    /// Print a node's record changes as JSON Lines, resumable from a cursor file.
    #[command(long_about = changes::CHANGES_ABOUT)]
    Changes(changes::ChangesArgs),
    /// Back up a running node's store, consistent at one moment, into a directory.
    #[command(long_about = backup::BACKUP_ABOUT)]
    Backup(backup::BackupArgs),
    /// Restore a node's store from a backup directory into an empty data directory.
    #[command(long_about = backup::RESTORE_ABOUT)]
    Restore(backup::RestoreArgs),
    /// Export a running node's records as partitioned Parquet for analytics engines.
    #[command(long_about = export::EXPORT_ABOUT)]
    Export(export::ExportArgs),
    /// Work with config files.
    Config {
        #[command(subcommand)]
        command: config::ConfigCommand,
    },
}

/// Where a command finds its node: a config file (default `lmsync.toml`).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ConfigArg {
    /// The node's config file.
    #[arg(
        long,
        short = 'c',
        value_name = "FILE",
        default_value = "lmsync.toml",
        env = "LMSYNC_CONFIG"
    )]
    config: PathBuf,
}

/// Parses the command line, runs the verb and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Pki { command } => pki::run(command),
        Command::Init(args) => init::run(args),
        Command::Run(args) => run::run(args),
        Command::Status(args) => status::run(args),
        Command::Import(args) => import::run(args),
        Command::Report(args) => report::run(args),
        Command::Coverage(args) => coverage::run(args),
        Command::Gen(args) => generate::run(args),
        Command::Figures(args) => figures::run(args),
        Command::Changes(args) => changes::run(args),
        Command::Backup(args) => backup::backup(args),
        Command::Restore(args) => backup::run_restore(args),
        Command::Export(args) => export::run(args),
        Command::Publish(args) => publish::run(args),
        Command::Retire(args) => retire::run(args),
        Command::Config { command } => config::run(command),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each cause once: library errors often name their
/// source in their own message already.
fn describe(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !line.ends_with(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}

/// A tokio runtime for verbs that do IO.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
