//! `lmsync pki`: the network CA, node certificates and their renewal, revocation, and
//! re-signing a node's documents after a CA rotation.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use serde_json::{Value, json};

use crate::core::model::NodeCode;
use crate::core::model::document;
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
    /// Issue a node's next certificate, with a new key.
    ///
    /// Writes into OUT in the layout of `pki issue`. When OUT is the node's certificate
    /// directory (the one `tls.cert` and `tls.key` point at), node.crt and node.key are
    /// replaced, each written beside the old one and renamed over it; send the running
    /// node SIGHUP (`systemctl reload`) to put them in force: its sessions carry on, the
    /// next handshakes use the new certificate. Renewing with a new CA's DIR is a step of
    /// a CA rotation (docs/OPERATIONS.md).
    #[command(
        after_help = "Example:\n  lmsync pki renew --dir /secure/lmsync-ca --node 440100 --out /etc/lmsync/pki-440100\n  systemctl reload lmsync@440100"
    )]
    Renew {
        /// Directory holding the CA (from `pki init`).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// GB/T 2260 code of the node.
        #[arg(long, value_name = "CODE")]
        node: NodeCode,
        /// The node's certificate directory, or a new one.
        #[arg(long, value_name = "OUT", alias = "pki")]
        out: PathBuf,
        /// Validity in years.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i32).range(1..=20))]
        years: i32,
    },
    /// Print a revocation document naming a node's certificates to refuse.
    ///
    /// Names the certificate SERIAL, or without --serial every certificate of CODE that
    /// the CA in DIR issued (its register, DIR/issued). The output is a document in the
    /// `publish` format: `lmsync publish --config ministry.toml FILE` (or a province's, for
    /// its cities) signs it and sends it down the tree; every node that holds it refuses
    /// those certificates at once, ends a session using one and names them in `status`.
    /// Then give the node a new certificate (`pki renew`).
    #[command(
        after_help = "Example:\n  lmsync pki revoke --dir /secure/lmsync-ca --node 440100 --reason \"key stolen\" > revoke.json\n  lmsync publish --config ministry.toml revoke.json\n  lmsync pki renew --dir /secure/lmsync-ca --node 440100 --out /etc/lmsync/pki-440100"
    )]
    Revoke {
        /// Directory holding the CA (from `pki init`).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The node whose certificates are revoked.
        #[arg(long, value_name = "CODE")]
        node: NodeCode,
        /// One certificate's serial number, hex (as `status` shows it; colons allowed).
        #[arg(long, value_name = "S")]
        serial: Option<String>,
        /// Why, for the operators who will read it.
        #[arg(long, value_name = "TEXT", default_value = "")]
        reason: String,
    },
    /// Re-sign every document this node issued with its current certificate.
    ///
    /// A step of a CA rotation: once the ministry and provinces hold certificates of the
    /// new CA, their documents are signed again (each gets a new version, same body) so
    /// that a node rebuilt after the old CA is dropped still verifies them.
    #[command(after_help = "Example:\n  lmsync pki resign --config ministry.toml")]
    Resign {
        #[command(flatten)]
        config: super::ConfigArg,
    },
}

pub(crate) fn run(command: PkiCommand) -> anyhow::Result<ExitCode> {
    match command {
        PkiCommand::Renew {
            dir,
            node,
            out,
            years,
        } => renew(&dir, node, &out, years)?,
        PkiCommand::Revoke {
            dir,
            node,
            serial,
            reason,
        } => revoke(&dir, node, serial.as_deref(), reason)?,
        PkiCommand::Resign { config } => resign(&config)?,
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

fn renew(dir: &Path, node: NodeCode, pki_dir: &Path, years: i32) -> anyhow::Result<()> {
    let renewed = pki::renew(dir, node, pki_dir, years)
        .with_context(|| format!("renewing the certificate of {node}"))?;
    let expires = chrono::DateTime::from_timestamp(renewed.info.not_after, 0)
        .map_or_else(String::new, |d| d.format("%Y-%m-%d").to_string());
    let was = renewed
        .previous_serial
        .map_or_else(String::new, |s| format!(" (was {s})"));
    println!(
        "Renewed the certificate of node {node} in {}: serial {}{was}, expires {expires}",
        pki_dir.display(),
        renewed.info.serial,
    );
    if !renewed.issuer_trusted {
        println!(
            "! {} does not hold the CA that issued it: its peers must trust that CA before \
             the node uses it (CA rotation, docs/OPERATIONS.md)",
            pki_dir.join(pki::CA_CERT).display()
        );
    }
    println!("Next: send the node SIGHUP (systemctl reload lmsync@{node}) to put it in force");
    Ok(())
}

fn revoke(dir: &Path, node: NodeCode, serial: Option<&str>, reason: String) -> anyhow::Result<()> {
    let serials = match serial {
        Some(s) => vec![normalise_serial(s)?],
        None => {
            let serials: Vec<String> = pki::issued(dir)?
                .into_iter()
                .filter(|i| i.node == node)
                .map(|i| i.serial)
                .collect();
            if serials.is_empty() {
                anyhow::bail!(
                    "{} records no certificate of {node}; give its --serial (as `lmsync status` on that node shows it)",
                    dir.join(pki::ISSUED).display()
                );
            }
            serials
        }
    };
    let body = json!({
        "kind": document::REVOCATION,
        "id": serials[0],
        "body": {"node": node, "serials": serials, "reason": reason},
    });
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(())
}

fn resign(config: &super::ConfigArg) -> anyhow::Result<()> {
    let answer = super::http::post_to_node(&config.config, "/v1/documents/resign", &json!({}))?;
    println!(
        "Re-signed {} documents with the certificate {}; they flow down as new versions",
        answer["resigned"],
        text(&answer["serial"])
    );
    Ok(())
}

/// Serial numbers as revocations name them: lowercase hex, no separators or leading zeros.
fn normalise_serial(serial: &str) -> anyhow::Result<String> {
    let digits: String = serial
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    let bytes = hex::decode(&digits)
        .or_else(|_| hex::decode(format!("0{digits}")))
        .with_context(|| format!("{serial:?} is not a hex serial number"))?;
    Ok(crate::core::model::revocation::serial_hex(&bytes))
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}
