//! `lmsync pki init` and `lmsync pki issue`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use crate::core::model::NodeCode;
use crate::node::pki;

#[derive(Debug, Subcommand)]
pub(crate) enum PkiCommand {
    /// Create the network's root CA (ministry information centre).
    ///
    /// Writes ca.crt (0644) and ca.key (0600) into DIR; refuses to overwrite. Keep ca.key
    /// offline: whoever holds it can admit nodes to the network.
    #[command(after_help = "Example:\n  lmsync pki init --dir /secure/lmsync-ca")]
    Init {
        /// Directory for the CA files.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
    /// Issue a node certificate signed by the root CA.
    ///
    /// Puts node.crt, node.key (0600) and a copy of ca.crt into OUT: everything
    /// `lmsync init --pki OUT` needs, never the CA key. The node code is bound into the
    /// certificate.
    #[command(
        after_help = "Example:\n  lmsync pki issue --dir /secure/lmsync-ca --node 440100 --out pki-440100"
    )]
    Issue {
        /// Directory holding the CA (from `pki init`).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// GB/T 2260 code of the node.
        #[arg(long, value_name = "CODE")]
        node: NodeCode,
        /// Output directory for the node's files.
        #[arg(long, value_name = "OUT")]
        out: PathBuf,
        /// Validity in years.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i32).range(1..=20))]
        years: i32,
    },
}

pub(crate) fn run(command: PkiCommand) -> anyhow::Result<ExitCode> {
    match command {
        PkiCommand::Init { dir } => {
            pki::init_ca(&dir).with_context(|| format!("creating the CA in {}", dir.display()))?;
            println!("Created the network CA in {}", dir.display());
            println!(
                "  {}  (share with every node)",
                dir.join(pki::CA_CERT).display()
            );
            println!(
                "  {}  (mode 0600; keep it offline)",
                dir.join(pki::CA_KEY).display()
            );
            println!(
                "Next: lmsync pki issue --dir {} --node CODE --out pki-CODE",
                dir.display()
            );
        }
        PkiCommand::Issue {
            dir,
            node,
            out,
            years,
        } => {
            pki::issue(&dir, node, &out, years)
                .with_context(|| format!("issuing a certificate for {node}"))?;
            println!(
                "Issued a {}-year certificate for node {node} ({}) in {}",
                years,
                node.tier(),
                out.display()
            );
            println!(
                "Next: lmsync init --node {node} --pki {} --data DIR",
                out.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
