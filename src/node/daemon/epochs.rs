//! The city's pseudonym keys at start: the key in force and, during a rotation's overlap,
//! the previous one; and the key epoch notice that announces a new epoch up the tree.
//!
//! Epochs only go up. A city that starts with a `pid_epoch` above the newest notice it
//! issued (or, never having issued one, above the default epoch 1) signs and stores a
//! `key_epoch_notice` for it, which its sessions then report up; one that starts with a
//! lower epoch than it announced is refused. A reload (SIGHUP) reads `[privacy]` again
//! and does the same, keeping the keys in force when the new ones are refused.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate};

use super::{DaemonError, file_error, read_pid_key};
use crate::core::model::Tier;
use crate::core::model::document::{KEY_EPOCH, StoredDocument};
use crate::core::model::key_epoch::{self, KeyEpochBody};
use crate::core::model::person::Pseudonymiser;
use crate::core::model::signature::sign;
use crate::core::model::values::DEFAULT_PID_EPOCH;
use crate::core::store::{Store, WriteBatch};
use crate::node::api::PidKeys;
use crate::node::clock::Clock;
use crate::node::config::{Config, Privacy};
use crate::reporting::analysis::Period;

/// The keys a node pseudonymises with.
#[derive(Default)]
pub(super) struct Keys {
    /// The key in force, if the node has one.
    pub current: Option<Arc<Pseudonymiser>>,
    /// The previous epoch's key, during an overlap.
    pub previous: Option<Arc<Pseudonymiser>>,
}

/// Reads the configured keys and, at a city, checks and announces the epoch.
pub(super) fn load(
    config: &Config,
    store: &dyn Store,
    clock: &dyn Clock,
) -> Result<Keys, DaemonError> {
    let keys = read(config)?;
    if let Some(p) = &config.privacy
        && config.node.tier() == Tier::City
    {
        announce(config, p, store, clock)?;
    }
    Ok(keys)
}

/// Reads the configured keys, checking nothing else.
fn read(config: &Config) -> Result<Keys, DaemonError> {
    let Some(p) = &config.privacy else {
        return Ok(Keys::default());
    };
    let current = Pseudonymiser::new(read_pid_key(&p.key_file)?, p.epoch);
    let previous = match &p.previous {
        Some((path, epoch)) => Some(Arc::new(Pseudonymiser::new(read_pid_key(path)?, *epoch))),
        None => None,
    };
    Ok(Keys {
        current: Some(Arc::new(current)),
        previous,
    })
}

/// On a reload: reads the config file again and, if its keys read and its epoch is not
/// below the one announced, puts them in force and announces a higher epoch. `Ok(true)`
/// when a notice was issued (the sessions must hear of it).
pub(super) fn reload(
    config: &Config,
    store: &dyn Store,
    clock: &dyn Clock,
    keys: &PidKeys,
) -> Result<bool, DaemonError> {
    let Some(path) = &config.source else {
        return Ok(false);
    };
    let fresh = Config::load(path).map_err(|e| file_error(path, e.to_string()))?;
    if fresh.node != config.node {
        return Err(file_error(
            path,
            format!(
                "the config is now node {}'s, not {}'s",
                fresh.node, config.node
            ),
        ));
    }
    let new = read(&fresh)?;
    let city = fresh
        .privacy
        .as_ref()
        .filter(|_| fresh.node.tier() == Tier::City);
    if let Some(p) = city {
        // A lower epoch is refused before anything changes.
        check_epoch(&fresh, p, store)?;
    }
    keys.replace(new.current, new.previous);
    // The new key is in force once its notice can be seen.
    let issued = match city {
        Some(p) => announce(&fresh, p, store, clock)?,
        None => false,
    };
    tracing::info!(
        epoch = fresh.privacy.as_ref().map(|p| p.epoch),
        overlap = fresh.privacy.as_ref().is_some_and(|p| p.previous.is_some()),
        "Pseudonym keys reloaded"
    );
    Ok(issued)
}

fn store_error(config: &Config, source: crate::core::store::StoreError) -> DaemonError {
    DaemonError::Store {
        path: config.data_dir.clone(),
        source,
    }
}

/// Ok when `p`'s epoch is not below the newest `config.node` announced; returns whether
/// it is above (a notice is due) and the newest notice.
fn check_epoch(
    config: &Config,
    p: &Privacy,
    store: &dyn Store,
) -> Result<(bool, Option<KeyEpochBody>), DaemonError> {
    let docs = store.documents().map_err(|e| store_error(config, e))?;
    let newest = key_epoch::newest(&docs, config.node);
    let due = match &newest {
        Some(n) if p.epoch < n.epoch => {
            return Err(DaemonError::KeyEpoch(format!(
                "privacy.pid_epoch is {}, but this city announced key epoch {} (valid from {}): \
                 epochs only go up; configure epoch {} with its key, or a new key under a \
                 higher epoch",
                p.epoch, n.epoch, n.valid_from, n.epoch
            )));
        }
        Some(n) => p.epoch > n.epoch,
        None => p.epoch != DEFAULT_PID_EPOCH,
    };
    Ok((due, newest))
}

/// Refuses an epoch below the one announced; issues the notice of a higher one (then
/// `Ok(true)`).
fn announce(
    config: &Config,
    p: &Privacy,
    store: &dyn Store,
    clock: &dyn Clock,
) -> Result<bool, DaemonError> {
    let (due, newest) = check_epoch(config, p, store)?;
    if !due {
        return Ok(false);
    }
    let valid_from = match p.valid_from {
        Some(d) => d,
        None => quarter_start(clock.now_ms())?,
    };
    let body = KeyEpochBody {
        city: config.node,
        epoch: p.epoch,
        valid_from,
    };
    let id = key_epoch::id_of(p.epoch);
    let text = serde_json::to_string(&body)
        .map_err(|e| DaemonError::KeyEpoch(format!("encoding the key epoch notice: {e}")))?;
    let held = store
        .get_document(KEY_EPOCH, config.node, &id)
        .map_err(|e| store_error(config, e))?;
    let mut doc = StoredDocument {
        kind: KEY_EPOCH.to_string(),
        id,
        issuer: config.node,
        version: held.map_or(1, |h| h.version + 1),
        body: text,
        certificate: Vec::new(),
        signature: Vec::new(),
    };
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path).map_err(|e| file_error(path, e.to_string()))
    };
    let (cert, key) = (read(&config.tls_cert)?, read(&config.tls_key)?);
    sign(&mut doc, &cert, &key).map_err(|e| file_error(&config.tls_key, e.to_string()))?;
    store
        .commit(WriteBatch {
            documents: vec![doc],
            ..WriteBatch::default()
        })
        .map_err(|e| store_error(config, e))?;
    tracing::info!(
        epoch = p.epoch,
        %valid_from,
        previous = ?newest.map(|n| n.epoch),
        "Key epoch notice issued"
    );
    Ok(true)
}

/// The first day of the quarter `now_ms` falls in.
fn quarter_start(now_ms: i64) -> Result<NaiveDate, DaemonError> {
    DateTime::from_timestamp_millis(now_ms)
        .and_then(|t| Period::of_date(t.date_naive()).ok())
        .map(Period::first_day)
        .ok_or_else(|| DaemonError::KeyEpoch(format!("the clock reads {now_ms} ms, out of range")))
}
