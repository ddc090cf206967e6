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
    /// Issue a node's next certificate, with a new key, in place of its current one.
    ///
    /// Replaces node.crt and node.key in PKI (the directory `tls.cert` and `tls.key` point
    /// at; it must hold the node's current certificate), each written beside the old one
    /// and renamed over it. Send the running node SIGHUP (`systemctl reload`) to put them in
    /// force: its sessions carry on, the next handshakes use the new certificate. Renewing
    /// with a new CA's DIR is a step of a CA rotation (docs/OPERATIONS.md).
    #[command(
        after_help = "Example:\n  lmsync pki renew --dir /secure/lmsync-ca --node 440100 --pki /etc/lmsync/pki-440100\n  systemctl reload lmsync@440100"
    )]
    Renew {
        /// Directory holding the CA (from `pki init`).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// GB/T 2260 code of the node.
        #[arg(long, value_name = "CODE")]
        node: NodeCode,
        /// The node's certificate directory (node.crt, node.key, ca.crt).
        #[arg(long, value_name = "PKI")]
        pki: PathBuf,
        /// Validity in years.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i32).range(1..=20))]
        years: i32,
    },
    /// Revoke a node certificate (ministry: any node; province: its cities).
    ///
    /// Publishes a signed certificate_revocation document through the running node named
    /// by --config. It flows down the tree (and a province's up to the ministry); every
    /// node that holds it refuses that certificate at once, ends a session using it and
    /// names it in `status`. Give the certificate file, or its node and serial (as `status`
    /// of that node shows it).
    #[command(
        after_help = "Example:\n  lmsync pki revoke --config ministry.toml --cert stolen/node.crt --reason \"key stolen\"\n  lmsync pki revoke --config ministry.toml --node 440100 --serial 5f3a… --reason \"key stolen\""
    )]
    Revoke {
        #[command(flatten)]
        config: super::ConfigArg,
        /// The certificate to revoke (PEM).
        #[arg(long, value_name = "FILE", conflicts_with_all = ["node", "serial"])]
        cert: Option<PathBuf>,
        /// The node whose certificate is revoked (with --serial).
        #[arg(long, value_name = "CODE", requires = "serial")]
        node: Option<NodeCode>,
        /// The certificate's serial number, hex (with --node).
        #[arg(long, value_name = "HEX", requires = "node")]
        serial: Option<String>,
        /// Why, for the operators who will read it.
        #[arg(long, value_name = "TEXT")]
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
            pki: pki_dir,
            years,
        } => renew(&dir, node, &pki_dir, years)?,
        PkiCommand::Revoke {
            config,
            cert,
            node,
            serial,
            reason,
        } => revoke(&config, cert, node.zip(serial), reason)?,
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
    println!(
        "Renewed the certificate of node {node} in {}: serial {} (was {}), expires {expires}",
        pki_dir.display(),
        renewed.info.serial,
        renewed.previous_serial
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

fn revoke(
    config: &super::ConfigArg,
    cert: Option<PathBuf>,
    named: Option<(NodeCode, String)>,
    reason: String,
) -> anyhow::Result<()> {
    let (node, serial) = match (cert, named) {
        (Some(path), _) => {
            let info = pki::cert_info(&path)?;
            let node = info
                .node
                .with_context(|| format!("{} names no lmsync node", path.display()))?;
            (node, info.serial)
        }
        (None, Some((node, serial))) => (node, normalise_serial(&serial)?),
        (None, None) => anyhow::bail!("give --cert FILE, or --node CODE and --serial HEX"),
    };
    let body = json!({
        "kind": document::REVOCATION,
        "id": serial,
        "body": {"node": node, "serial": serial, "reason": reason},
    });
    let answer = super::http::post_to_node(&config.config, "/v1/documents", &body)?;
    println!(
        "Revoked certificate {serial} of node {node} (version {}); every node below {} refuses it as soon as the revocation reaches it",
        answer["version"],
        text(&answer["issuer"]),
    );
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
