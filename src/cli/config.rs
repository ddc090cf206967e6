//! `lmsync config check`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use crate::node::config::Config;
use crate::node::daemon::{read_pid_key, read_token};
use crate::node::pki;
use crate::node::storage::SledStore;

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Validate a config file and the files it names; say what is wrong, with the key.
    #[command(after_help = "Example:\n  lmsync config check --config /etc/lmsync/440100.toml")]
    Check {
        /// The config file.
        #[arg(long, short = 'c', value_name = "FILE", default_value = "lmsync.toml")]
        config: PathBuf,
    },
}

pub(crate) fn run(command: ConfigCommand) -> anyhow::Result<ExitCode> {
    let ConfigCommand::Check { config } = command;
    let parsed = match Config::load(&config) {
        Ok(c) => c,
        Err(e) => {
            println!("✗ {}: {e}", config.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    println!(
        "✓ {} parses: node {} ({}, {})",
        config.display(),
        parsed.node,
        parsed.name,
        parsed.tier()
    );
    let problems = check_files(&parsed);
    for (key, message) in &problems {
        println!("✗ {key}: {message}");
    }
    for w in parsed.warnings() {
        println!("! {w}");
    }
    if let Ok(info) = pki::cert_info(&parsed.tls_cert)
        && let Some(w) = super::init::certificate_warning(&info)
    {
        println!("! tls.cert: {w}");
    }
    if problems.is_empty() {
        println!("✓ configuration is valid");
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::FAILURE)
    }
}

fn readable(key: &'static str, path: &Path, out: &mut Vec<(&'static str, String)>) -> bool {
    match std::fs::metadata(path) {
        Ok(_) => true,
        Err(e) => {
            out.push((key, format!("{}: {e}", path.display())));
            false
        }
    }
}

/// Checks what the config points at; returns `(key, problem)` pairs.
fn check_files(c: &Config) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    readable("tls.ca", &c.tls_ca, &mut out);
    readable("tls.key", &c.tls_key, &mut out);
    if readable("tls.cert", &c.tls_cert, &mut out) {
        match pki::cert_info(&c.tls_cert) {
            Ok(info) if info.node != Some(c.node) => {
                out.push((
                    "tls.cert",
                    format!(
                        "the certificate is for node {:?}, not {}",
                        info.node.map(|n| n.to_string()),
                        c.node
                    ),
                ));
            }
            Ok(_) => {}
            Err(e) => out.push(("tls.cert", e.to_string())),
        }
        match pki::issued_by(&c.tls_cert, &c.tls_ca) {
            Ok(true) => {}
            Ok(false) => out.push((
                "tls.cert",
                "the certificate was not issued by the CA in tls.ca: its parent will refuse it"
                    .to_string(),
            )),
            Err(e) => out.push(("tls.ca", e.to_string())),
        }
    }
    if let Err(e) = read_token(&c.token_file) {
        out.push(("api.token_file", e.to_string()));
    }
    if let Some(p) = &c.privacy {
        if let Err(e) = read_pid_key(&p.key_file) {
            out.push(("privacy.pid_key_file", e.to_string()));
        }
        if let Some((path, _)) = &p.previous
            && let Err(e) = read_pid_key(path)
        {
            out.push(("privacy.previous_pid_key_file", e.to_string()));
        }
    }
    match SledStore::peek_identity(&c.data_dir) {
        Ok(id) if id.node != c.node => out.push((
            "node.data_dir",
            format!("belongs to node {}, not {}", id.node, c.node),
        )),
        Ok(_) => {}
        // A running node holds the store's lock; that is not a config problem.
        Err(e) if e.to_string().contains("lock") => {}
        Err(e) => out.push(("node.data_dir", e.to_string())),
    }
    out
}
