//! Opening the store, and what a node does when it cannot trust it: a store that is gone
//! (wiped directory) or damaged (sled files that do not decode, or a change log shorter
//! than its commit seal) is set aside for inspection and rebuilt from the parent.
//!
//! Why automatic: a city node runs unattended, and its parent holds every record it ever
//! acknowledged upward. Serving a damaged store would hand out a partial history as if it
//! were whole, and new writes would reuse sequence numbers the parent already holds. A
//! rebuilt node refuses writes until its own records are back (`restoring`), so nothing is
//! offered from an empty store.
//!
//! A node without a parent (the ministry) rebuilds from its children instead: they hold
//! every record of their subtrees and upload them again to an empty store, and they hold
//! the documents it issued and give them back. It refuses writes and publishing until a
//! child has returned its documents (a publication before that could reuse a version
//! number). Records the node wrote itself exist nowhere else; the set-aside copy keeps
//! them. A city without a parent has nobody to rebuild from: it refuses to start and
//! leaves the directory untouched.

use std::path::{Path, PathBuf};

use crate::core::model::{NodeCode, Tier};
use crate::core::store::StoreError;
use crate::node::clock::{Clock, SystemClock};
use crate::node::config::Config;
use crate::node::storage::{SET_ASIDE_PREFIX, SledOptions, SledStore, sled_options};

use super::DaemonError;

/// Creates a new store; with `restore`, marked to fetch its own records from the parent
/// before it accepts writes or offers anything.
pub fn create_store(
    data: &Path,
    node: NodeCode,
    options: SledOptions,
    restore: bool,
) -> Result<SledStore, StoreError> {
    SledStore::create_marked(
        data,
        node,
        rand::random(),
        SystemClock.now_ms(),
        options,
        restore,
    )
}

/// Opens the node's store, rebuilding it from the parent when it is gone or damaged.
pub(super) fn open_store(config: &Config) -> Result<SledStore, DaemonError> {
    let options = sled_options(config.cache_capacity);
    let dir = &config.data_dir;
    let failed = |source| DaemonError::Store {
        path: dir.clone(),
        source,
    };
    let damage = match SledStore::open(dir, config.node, options) {
        Ok(store) => return Ok(store),
        Err(StoreError::Damaged(detail)) => detail,
        Err(StoreError::NotInitialised(_)) if holds_nothing(dir) => {
            return rebuild(config, None).map_err(failed);
        }
        Err(StoreError::NotInitialised(_)) => {
            "the directory holds files but no store marker".to_string()
        }
        Err(other) => return Err(failed(other)),
    };
    rebuild(config, Some(damage)).map_err(failed)
}

/// True when `dir` is missing or holds nothing of a store (only files the node writes
/// beside it, or earlier set-aside copies).
fn holds_nothing(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return !dir.exists();
    };
    entries.filter_map(Result::ok).all(|e| {
        let name = e.file_name();
        let name = name.to_string_lossy();
        name == super::API_ADDR_FILE || name.starts_with(SET_ASIDE_PREFIX)
    })
}

fn rebuild(config: &Config, damage: Option<String>) -> Result<SledStore, StoreError> {
    let dir = &config.data_dir;
    let source = match &config.parent {
        Some(parent) => format!("its parent {}", parent.code),
        None if config.node.tier() != Tier::City => "its children".to_string(),
        None => {
            return Err(StoreError::Damaged(format!(
                "{}; this node has no parent or children to rebuild from, so the directory \
                 was left as it is (restore it from a backup; see docs/OPERATIONS.md)",
                damage.unwrap_or_else(|| "the store is missing".into())
            )));
        }
    };
    match damage {
        Some(detail) => {
            let aside = set_aside(dir).map_err(|e| {
                StoreError::Storage(format!(
                    "the store is damaged ({detail}) and could not be set aside: {e}"
                ))
            })?;
            tracing::error!(
                damage = %detail,
                set_aside = %aside.display(),
                from = %source,
                "The store is damaged: set aside for inspection; rebuilding"
            );
        }
        None => tracing::error!(
            path = %dir.display(),
            from = %source,
            "The store is missing: rebuilding"
        ),
    }
    if config.parent.is_none() {
        tracing::warn!(
            "Records this node wrote itself cannot come back from its children; \
             any that were in the damaged store are in its set-aside copy"
        );
    }
    create_store(dir, config.node, sled_options(config.cache_capacity), true)
}

/// Moves everything of the store in `dir` into a new `damaged-<time>` directory inside it
/// (the data directory may be a mount point, which cannot be renamed).
fn set_aside(dir: &Path) -> std::io::Result<PathBuf> {
    // 2026-11-27T23:59:05.513Z → 20261127T235905.513Z: sortable, no colons.
    let stamp: String = crate::node::clock::rfc3339(SystemClock.now_ms())
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    let aside = dir.join(format!("{SET_ASIDE_PREFIX}{stamp}"));
    std::fs::create_dir(&aside)?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with(SET_ASIDE_PREFIX) {
            continue;
        }
        std::fs::rename(entry.path(), aside.join(&name))?;
    }
    std::fs::File::open(dir).and_then(|d| d.sync_all())?;
    Ok(aside)
}
