//! `lmsync run`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::ConfigArg;
use crate::node::config::Config;
use crate::node::{daemon, telemetry};

/// Run a node until SIGINT or SIGTERM, then drain in-flight requests and exit 0. If the
/// disk fills, the node refuses writes until space returns, then restarts in place.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  lmsync run --config /etc/lmsync/440100.toml")]
pub(crate) struct RunArgs {
    #[command(flatten)]
    config: ConfigArg,
}

pub(crate) fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    with_tuned_malloc();
    let config = Config::load(&args.config.config).context("invalid config")?;
    telemetry::init(&config.log_level, config.log_format);
    for w in config.warnings() {
        tracing::warn!(warning = %w, "Config");
    }
    let (node, name) = (config.node, config.name.clone());
    let restart = super::runtime()?.block_on(async move {
        let running = daemon::start(config).await?;
        // Before the node says it serves: a supervisor may stop it the moment it does.
        let stop = daemon::termination_signal();
        // One line on stdout for people and supervisors: the node is serving. A closed
        // stdout (a supervisor that stopped reading) must not stop the node.
        let quic = running
            .sync
            .quic_addr
            .map_or_else(String::new, |a| format!("; QUIC {a}"));
        let public = running
            .public
            .as_ref()
            .map_or_else(String::new, |p| format!("; public http://{}", p.addr));
        let _ = writeln!(
            std::io::stdout().lock(),
            "lmsync node {node} ({name}) ready{quic}; API http://{}{public}",
            running.api_addr
        );
        let status = format!("STATUS=serving; API http://{}{quic}", running.api_addr);
        tell_systemd(&format!("{}\n{status}", daemon::systemd::READY));
        let restart = tokio::select! {
            () = stop => false,
            () = running.space_returned() => true,
        };
        if restart {
            tracing::warn!("Disk space is back; restarting to reopen the store");
            // Best effort: the store is poisoned, so nothing is left to commit.
            let _ = tokio::time::timeout(Duration::from_secs(10), running.stop()).await;
        } else {
            tracing::info!("Shutting down");
            tell_systemd(daemon::systemd::STOPPING);
            running.stop().await?;
        }
        anyhow::Ok(restart)
    })?;
    if restart {
        return Err(
            anyhow::Error::new(restart_in_place()).context("restarting after the disk filled")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Tells systemd, if it supervises this node; a failure to is logged, never fatal.
fn tell_systemd(state: &str) {
    if let Err(e) = daemon::systemd::notify(state) {
        tracing::warn!(error = %e, "Could not notify systemd");
    }
}

/// How glibc's malloc is tuned for a node, each setting unless the operator set it:
///
/// - `MALLOC_ARENA_MAX`: glibc gives each thread that allocates while others hold the
///   arenas one of its own, up to eight per core, and keeps their freed pages. A node whose
///   sessions step on many blocking threads held a third more memory idle (a province of
///   the national bench: 37 MiB against 26 MiB with two arenas).
/// - `MALLOC_TRIM_THRESHOLD_`: left alone, glibc raises its trim and mmap thresholds to
///   the largest block freed (a batch message, up to megabytes), after which freed heap
///   is kept rather than returned. A fixed threshold returns it: the provinces of the
///   national bench idled with a fifth less anonymous memory (median 13.1 → 10.1 MiB).
const MALLOC_TUNING: [(&str, &str); 2] = [
    ("MALLOC_ARENA_MAX", "2"),
    ("MALLOC_TRIM_THRESHOLD_", "131072"),
];

/// Restarts this process, once, with [`MALLOC_TUNING`] in its environment (glibc reads
/// it only when a process starts), unless every variable is set already, by the operator
/// or by this restart. If the exec fails the node runs as it is.
fn with_tuned_malloc() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return;
    }
    let unset: Vec<_> = MALLOC_TUNING
        .iter()
        .filter(|(var, _)| std::env::var_os(var).is_none())
        .collect();
    if unset.is_empty() {
        return;
    }
    use std::os::unix::process::CommandExt;
    if let Ok(exe) = std::env::current_exe() {
        let _failed = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .envs(unset.iter().map(|(var, value)| (var, value)))
            .exec();
    }
}

/// Replaces this process with a fresh run of the same command: same pid, no exit for a
/// supervisor to count as a crash, and a new sled handle on the reopened store. Returns
/// only if the exec failed.
fn restart_in_place() -> std::io::Error {
    use std::os::unix::process::CommandExt;
    match std::env::current_exe() {
        Ok(exe) => std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .exec(),
        Err(e) => e,
    }
}
