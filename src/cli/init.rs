//! `lmsync init`: config file, API token, pseudonym key and an empty, marked data directory.

use std::fs::OpenOptions;
use std::io::Write;
#[cfg(unix)]
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;

use crate::core::model::{NodeCode, Tier};
use crate::node::config::{self, Config};
use crate::node::daemon;
use crate::node::pki;
use crate::node::storage::sled_options;

/// Create a node: a commented config file, an API token file, a pseudonym key (cities)
/// and a data directory bound to the node code. Refuses to overwrite anything.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
lmsync init --node 440100 --pki pki-440100 --data /var/lib/lmsync --parent 440000@gd.example:7400\n  \
lmsync init --node 100000 --pki pki-100000 --data /var/lib/lmsync --listen 0.0.0.0:7400")]
pub(crate) struct InitArgs {
    /// GB/T 2260 code of this node (100000 for the ministry, XX0000 for a province).
    #[arg(long, value_name = "CODE")]
    node: NodeCode,
    /// Directory from `lmsync pki issue` (node.crt, node.key, ca.crt).
    #[arg(long, value_name = "DIR")]
    pki: PathBuf,
    /// Data directory for the node's store (created).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// The parent node, CODE@HOST:PORT.
    #[arg(long, value_name = "CODE@HOST:PORT")]
    parent: Option<String>,
    /// QUIC listen address for children.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:7400")]
    listen: String,
    /// HTTP API listen address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7401")]
    api: String,
    /// Config file to write.
    #[arg(long, value_name = "FILE", default_value = "lmsync.toml")]
    config: PathBuf,
    /// This node lost its store: on first contact, fetch its own records back from its
    /// parent before anything else (see docs/OPERATIONS.md, "Rebuilding a node").
    #[arg(long, requires = "parent")]
    restore: bool,
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

/// Writes a secret file (mode 0600), refusing to replace an existing one.
fn write_secret(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut f = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn sibling(config: &Path, ext: &str) -> PathBuf {
    let stem = config
        .file_stem()
        .map_or_else(|| "lmsync".into(), |s| s.to_string_lossy().into_owned());
    config.with_file_name(format!("{stem}.{ext}"))
}

fn check_pki(args: &InitArgs, pki_dir: &Path) -> anyhow::Result<()> {
    for name in [pki::CA_CERT, pki::NODE_CERT, pki::NODE_KEY] {
        if !pki_dir.join(name).exists() {
            bail!(
                "{} has no {name}; create it with `lmsync pki issue --node {} --out {}`",
                pki_dir.display(),
                args.node,
                pki_dir.display()
            );
        }
    }
    let info = pki::cert_info(&pki_dir.join(pki::NODE_CERT))?;
    if info.node != Some(args.node) {
        bail!(
            "the certificate in {} is for node {}, not {}",
            pki_dir.display(),
            info.node.map_or("(none)".into(), |n| n.to_string()),
            args.node
        );
    }
    if let Some(warning) = certificate_warning(&info) {
        println!("! tls.cert: {warning}");
    }
    Ok(())
}

/// A warning when a node certificate is expired, not yet valid or expires soon.
pub(crate) fn certificate_warning(info: &pki::CertInfo) -> Option<String> {
    use crate::node::clock::{Clock, SystemClock};
    info.validity_warning(SystemClock.now_ms() / 1000)
}

pub(crate) fn run(args: InitArgs) -> anyhow::Result<ExitCode> {
    let config_path = absolute(&args.config)?;
    if config_path.exists() {
        bail!(
            "{} already exists; refusing to overwrite it",
            config_path.display()
        );
    }
    config::parent_link(args.node, args.parent.as_deref())
        .map_err(|e| anyhow::anyhow!("--parent: {}", e.message))?;
    let pki_dir = absolute(&args.pki)?;
    check_pki(&args, &pki_dir)?;
    let data = absolute(&args.data)?;
    let token_file = sibling(&config_path, "token");
    let pid_key = wants_pid_key(args.node).then(|| sibling(&config_path, "pidkey"));
    let text = render(&args, &pki_dir, &data, &token_file, pid_key.as_deref());
    // Validate what we are about to write with the same code that will read it.
    let config = Config::from_raw(
        config::parse(&text)?,
        config_path.parent().unwrap_or(Path::new(".")),
    )?;
    if let Some(dir) = config_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let store = daemon::create_store(
        &data,
        args.node,
        sled_options(config.cache_capacity),
        args.restore,
    )
    .with_context(|| format!("creating the store in {}", data.display()))?;
    drop(store);
    write_secret(&token_file, &format!("{}\n", random_hex()))?;
    if let Some(p) = &pid_key {
        write_secret(p, &format!("{}\n", random_hex()))?;
    }
    write_secret(&config_path, &text)?;
    report(&args, &config_path, &token_file, pid_key.as_deref(), &data);
    Ok(ExitCode::SUCCESS)
}

/// Cities hold citizen IDs at ingest; municipalities may own city records too.
fn wants_pid_key(node: NodeCode) -> bool {
    node.tier() == Tier::City || node.is_municipality()
}

fn report(args: &InitArgs, config: &Path, token: &Path, pid_key: Option<&Path>, data: &Path) {
    println!("Initialised node {} ({})", args.node, args.node.tier());
    println!("  config      {}", config.display());
    println!("  data        {}", data.display());
    println!("  API token   {} (mode 0600)", token.display());
    if let Some(p) = pid_key {
        println!(
            "  pid key     {} (mode 0600; back it up: pseudonyms cannot be recomputed without it)",
            p.display()
        );
    }
    println!(
        "Next: lmsync config check --config {0} && lmsync run --config {0}",
        config.display()
    );
}

fn q(p: &Path) -> String {
    toml_string(&p.display().to_string())
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn render(
    args: &InitArgs,
    pki_dir: &Path,
    data: &Path,
    token: &Path,
    pid_key: Option<&Path>,
) -> String {
    let node = args.node;
    let name = node
        .builtin_name()
        .map_or_else(|| node.to_string(), String::from);
    let parent = match &args.parent {
        Some(p) => format!("parent = {}", toml_string(p)),
        None if node.tier() == crate::core::model::Tier::Ministry => {
            "# The ministry has no parent.".to_string()
        }
        None => format!(
            "# parent = \"{}@HOST:7400\"   # set this so records flow upward",
            node.parent().map_or(String::new(), |p| p.to_string())
        ),
    };
    let privacy = match pid_key {
        Some(p) => format!(
            "\n[privacy]\n# Secret key for citizen-ID pseudonyms; never leaves this node. Back it up.\npid_key_file = {}\npid_epoch = 1\n",
            q(p)
        ),
        None => String::new(),
    };
    format!(
        r#"# lmsync node configuration, written by `lmsync init`.
# Every key is explained in config/node.example.toml. Check edits with
# `lmsync config check --config FILE` before restarting the node.

[node]
# GB/T 2260 code; the tier ({tier}) follows from it.
code = "{node}"
name = {name}
# The store. Bound to this node code: another node's config cannot open it.
data_dir = {data}

[network]
# QUIC address children connect to.
listen = {listen}
{parent}
# children = ["..."]   # optional allow-list; default: every node one tier below

[tls]
ca = {ca}
cert = {cert}
key = {key}

[api]
# Reads are open to loopback callers; writes need the token in token_file.
listen = {api}
token_file = {token}
body_limit = "16MiB"

[sync]
interval = "5s"
anti_entropy_interval = "5m"
batch_records = 1000
# Coverage flags a city stale when its newest record arrived longer ago than this.
stale_after = "1d"

[storage]
# sled page cache; the process may use several times this (see docs/OPERATIONS.md).
cache_capacity = "256MiB"
{privacy}
[log]
# RUST_LOG syntax; RUST_LOG in the environment overrides it.
level = "info"
# pretty | json | auto (pretty on a terminal, json otherwise)
format = "auto"
"#,
        tier = node.tier(),
        name = toml_string(&name),
        data = q(data),
        listen = toml_string(&args.listen),
        ca = q(&pki_dir.join(pki::CA_CERT)),
        cert = q(&pki_dir.join(pki::NODE_CERT)),
        key = q(&pki_dir.join(pki::NODE_KEY)),
        api = toml_string(&args.api),
        token = q(token),
    )
}
