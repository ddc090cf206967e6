//! `lmsync backup` (a running node's store, as it was at one cut, into a backup
//! directory) and `lmsync restore` (a backup directory into an empty data directory).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;

use super::{ConfigArg, http};
use crate::core::model::Tier;
use crate::node::clock::{Clock, SystemClock};
use crate::node::config::{Config, parse_size};
use crate::node::daemon::read_token;
use crate::node::storage::backup::files::{BackupWriter, Manifest, is_empty_dir};
use crate::node::storage::backup::restore::{Target, restore};
use crate::node::storage::backup::{BackupError, MANIFEST_FILE, produce};
use crate::node::storage::{SledStore, sled_options};

/// `lmsync backup` (see [`BACKUP_ABOUT`]).
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
lmsync backup --config 440100.toml --out /backup/440100-2026-05-01\n  \
lmsync backup --config 440100.toml --out /backup/440100-nightly --rate 20MiB")]
pub(crate) struct BackupArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Directory to write the backup into: created, and refused unless missing or empty.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Read at most this many bytes per second from the node (e.g. 20MiB), to bound the
    /// backup's load on it. Default: as fast as it streams.
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    rate: Option<u64>,
}

/// sled's page cache while restoring without a config.
const DEFAULT_RESTORE_CACHE: u64 = 256 << 20;

/// `lmsync restore` (see [`RESTORE_ABOUT`]).
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  \
lmsync restore --config 440100.toml --from /backup/440100-2026-05-01\n  \
lmsync run --config 440100.toml\n  \
lmsync restore --from /backup/440100-2026-05-01 --data /srv/lmsync/440100-restored")]
pub(crate) struct RestoreArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The backup directory.
    #[arg(long, value_name = "DIR")]
    from: PathBuf,
    /// The data directory to restore into (default: the config's `data_dir`). Without a
    /// config file the node is the backup's, and the store is not marked to fetch from a
    /// parent (a node started on it still restores what its parent acknowledged beyond
    /// it before it takes writes).
    #[arg(long, value_name = "DATA_DIR")]
    data: Option<PathBuf>,
}

/// Where a restore goes and for which node: from the config, or the backup alone.
struct RestoreTo {
    config: Option<Config>,
    data: PathBuf,
    node: crate::core::model::NodeCode,
}

fn restore_target(args: &RestoreArgs) -> anyhow::Result<RestoreTo> {
    let config = match (&args.data, args.config.config.exists()) {
        (Some(_), false) => None,
        _ => Some(Config::load(&args.config.config).context("invalid config")?),
    };
    let node = match &config {
        Some(c) => c.node,
        None => {
            crate::node::storage::backup::files::read_manifest(&args.from)
                .with_context(|| format!("reading the backup in {}", args.from.display()))?
                .node
        }
    };
    let data = match (&args.data, &config) {
        (Some(d), _) => d.clone(),
        (None, Some(c)) => c.data_dir.clone(),
        (None, None) => anyhow::bail!("give --data DATA_DIR or a config file"),
    };
    Ok(RestoreTo { config, data, node })
}

/// `lmsync backup --help`.
pub(crate) const BACKUP_ABOUT: &str = "\
Back up a node's store, consistent at one moment (the cut), into a new or empty directory.

The running node streams its store through its API (POST /v1/backup, with the token) \
while it keeps taking writes: the backup holds every record version, document, \
watermark and quarantined record committed before the cut and none after. DIR gets \
backup.data and, written last, manifest.json (node, cut, counts, blake3 of the data); \
a DIR without manifest.json is an incomplete backup, which `lmsync restore` refuses. \
When the node is not running, its stopped store is backed up directly.

Not in the backup: the pseudonym key, the API token, the config and the certificates. \
Keep copies of them separately (see docs/OPERATIONS.md, \"Backup and restore\").";

/// `lmsync restore --help`.
pub(crate) const RESTORE_ABOUT: &str = "\
Restore a node's store from a backup directory written by `lmsync backup`.

The store goes into the config's data directory, which must be missing or empty (the \
node stopped). The backup is verified whole first; an incomplete or altered backup, or \
one of another node, is refused. Records keep their versions and seqs, so new writes \
continue after them. A node with a parent (and the ministry) comes back marked to \
restore: on first contact it fetches from its parent what it wrote after the backup \
(the ministry waits for a child to give back its documents) and refuses writes until \
then. A city without a parent starts from the backup alone.

Put the pseudonym key, the token and the certificates back from their own copies.";

pub(crate) fn backup(args: BackupArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config.config).context("invalid config")?;
    if !is_empty_dir(&args.out)? {
        bail!(
            "{} is not empty; a backup goes into a new or empty directory",
            args.out.display()
        );
    }
    let token = read_token(&config.token_file)?;
    let url = format!("{}/v1/backup", http::api_url(&config));
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(120))
        .build()?;
    let manifest = super::runtime()?.block_on(async {
        let response = match client.post(&url).bearer_auth(&token).send().await {
            Ok(r) => r,
            Err(e) if e.is_connect() => return offline(&config, &args, &url),
            Err(e) => return Err(e).with_context(|| format!("asking {url} for a backup")),
        };
        if !response.status().is_success() {
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            bail!(
                "{url} answered {status}: {}",
                body["message"].as_str().unwrap_or("the backup was refused")
            );
        }
        let mut writer = BackupWriter::create(&args.out)?;
        let started = Instant::now();
        let mut response = response;
        loop {
            let chunk = response.chunk().await;
            let chunk = match chunk {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => return Err(interrupted(&args.out, e.into())),
            };
            writer
                .write(&chunk)
                .map_err(|e| interrupted(&args.out, e.into()))?;
            if let Some(rate) = args.rate {
                pace(started, writer.bytes(), rate).await;
            }
        }
        writer
            .finish(SystemClock.now_ms())
            .map_err(|e| interrupted(&args.out, e.into()))
    })?;
    report(&manifest, &args.out);
    Ok(ExitCode::SUCCESS)
}

/// Sleeps until `bytes` are no more than `rate` per second since `started`.
async fn pace(started: Instant, bytes: u64, rate: u64) {
    #[allow(clippy::cast_precision_loss)]
    let due = Duration::from_secs_f64(bytes as f64 / rate.max(1) as f64);
    if let Some(wait) = due.checked_sub(started.elapsed()) {
        tokio::time::sleep(wait).await;
    }
}

fn interrupted(dir: &Path, e: anyhow::Error) -> anyhow::Error {
    e.context(format!(
        "the backup did not complete; {} holds no {MANIFEST_FILE} and `lmsync restore` \
         refuses it: remove it and take the backup again",
        dir.display()
    ))
}

/// Nothing answers at the node's API: back up the stopped store directly, unless a node
/// holds it.
fn offline(config: &Config, args: &BackupArgs, url: &str) -> anyhow::Result<Manifest> {
    let store = match SledStore::open(
        &config.data_dir,
        config.node,
        sled_options(config.cache_capacity),
    ) {
        Ok(store) => store,
        Err(e) => bail!(
            "nothing answers at {url}, and the store in {} cannot be backed up directly \
             either ({e}); a backup is taken from a running node (`lmsync run --config {}`) \
             or from its stopped store",
            config.data_dir.display(),
            args.config.config.display()
        ),
    };
    println!(
        "The node is not running (nothing answers at {url}): backing up its stopped store in {}",
        config.data_dir.display()
    );
    let mut writer = BackupWriter::create(&args.out)?;
    let run = produce::begin(&store)?;
    let mut send = |bytes: Vec<u8>| writer.write(&bytes);
    produce::stream(&store, run, SystemClock.now_ms(), &mut send)
        .map_err(|e| interrupted(&args.out, e.into()))?;
    drop(store);
    writer
        .finish(SystemClock.now_ms())
        .map_err(|e| interrupted(&args.out, e.into()))
}

fn report(manifest: &Manifest, dir: &Path) {
    println!(
        "Backed up node {} at its cut of {} (after commit batch {}): {} records, {} documents, {} items",
        manifest.node,
        manifest.cut.taken_at,
        manifest.cut.batch,
        manifest.records,
        manifest.documents,
        manifest.items
    );
    if let Some(own) = manifest
        .cut
        .owners
        .iter()
        .find(|o| o.owner == manifest.node)
    {
        println!(
            "  own records up to seq {} ({} records)",
            own.last_seq, own.records
        );
    }
    println!(
        "  {} ({} bytes, blake3 {}) and {MANIFEST_FILE}",
        dir.join(&manifest.data.file).display(),
        manifest.data.bytes,
        manifest.data.blake3
    );
    println!(
        "Keep the pseudonym key, API token and certificates with it: they are not in the backup."
    );
}

pub(crate) fn run_restore(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let to = restore_target(&args)?;
    // Nobody writes the node's records but the node: with a parent, what it wrote after
    // the backup comes back from there before it takes writes; the ministry waits for its
    // children as after a rebuild. A city without a parent has only the backup.
    let pending = to
        .config
        .as_ref()
        .is_some_and(|c| c.parent.is_some() || c.node.tier() != Tier::City);
    let cache = to
        .config
        .as_ref()
        .map_or(DEFAULT_RESTORE_CACHE, |c| c.cache_capacity);
    let target = Target {
        data: &to.data,
        node: to.node,
        options: sled_options(cache),
        restore_pending: pending,
        now_ms: SystemClock.now_ms(),
    };
    let was_empty = is_empty_dir(&to.data)?;
    let restored = restore(&args.from, target, &mut |_| {}).map_err(|e| {
        let created = was_empty && !is_empty_dir(&to.data).unwrap_or(true);
        let e = anyhow::Error::from(e);
        if created {
            e.context(format!(
                "the restore did not finish; {} holds an unfinished store that no node opens: \
                 remove it before trying again",
                to.data.display()
            ))
        } else {
            e
        }
    });
    let restored = restored.map_err(|e| match e.downcast_ref::<BackupError>() {
        Some(BackupError::NotEmpty(_)) => e.context(
            "a restore goes into a missing or empty data directory; move the old one aside",
        ),
        _ => e,
    })?;
    let m = &restored.manifest;
    println!(
        "Restored node {} from {} (cut {}): {} records, {} documents, into {}",
        m.node,
        args.from.display(),
        m.cut.taken_at,
        restored.records,
        restored.documents,
        to.data.display()
    );
    for (owner, got, cut) in &restored.lower_seqs {
        println!(
            "! {owner}: highest seq restored is {got}, the cut's was {cut} (its record had been removed as corrupt)"
        );
    }
    if restored.restore_pending
        && let Some(config) = &to.config
    {
        match &config.parent {
            Some(p) => println!(
                "On first contact it fetches from its parent {} what it wrote after the backup, and refuses writes until then.",
                p.code
            ),
            None => println!(
                "It refuses writes until a child has given back the documents it issued after the backup."
            ),
        }
    }
    match &to.config {
        Some(_) => println!("Next: lmsync run --config {}", args.config.config.display()),
        None => println!(
            "Next: point a config's data_dir at {} (lmsync init writes one) and lmsync run",
            to.data.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}
