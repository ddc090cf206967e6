//! Durable storage: the sled implementation of the core's [`Store`] interface, its key
//! layout, commit seal, key filters and leaf index, and online backups of a store and
//! restores from them ([`backup`]). Nothing outside this module touches sled.
//!
//! A [`WriteBatch`] commits atomically and is durable (sled flushed and the data file
//! fsynced) when [`Store::commit`] returns Ok; only then do the in-memory summaries
//! (digest, reconciliation buckets, per-owner seq) move. Batches are meant to be large:
//! the write path groups many requests into one commit so that one flush covers them all.

pub mod backup;
pub mod keyfilter;
pub mod keys;
pub mod leaf_index;
pub mod seal;
mod sled_store;

use serde::{Deserialize, Serialize};

use crate::core::model::{Kind, RecordKey};
use crate::core::reconcile::OwnerSummary;
#[cfg(doc)]
use crate::core::store::{Store, WriteBatch};

pub use sled_store::{BackupRun, Cut, FREE_SPACE_RESERVE, SledOptions, SledStore};

/// Prefix of the directories inside a data directory that hold a damaged store set aside
/// for inspection (see `daemon`'s recovery).
pub const SET_ASIDE_PREFIX: &str = "damaged-";

/// The names of the damaged stores set aside in `data_dir`, oldest first.
pub fn set_aside_copies(data_dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data_dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(SET_ASIDE_PREFIX))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Sled options with a cache budget of `cache_capacity` bytes.
pub fn sled_options(cache_capacity: u64) -> SledOptions {
    SledOptions { cache_capacity }
}

/// One change-log entry: which record version a seq wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The owner's seq of this write.
    pub seq: u64,
    /// The record written.
    pub key: RecordKey,
    /// Its kind.
    pub kind: Kind,
    /// Its version.
    pub version: u64,
    /// Fingerprint of the version written (`None`: the record was removed as corrupt).
    pub fp: Option<u128>,
    /// Fingerprint of the version it replaced, if any (so summaries rebuild from the log
    /// alone, without reading records).
    pub prev_fp: Option<u128>,
}

/// What a node knows of one owner's records.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OwnerState {
    /// Highest seq stored for the owner.
    pub last_seq: u64,
    /// Digest and reconciliation buckets.
    pub summary: OwnerSummary,
    /// Which record keys are stored (no false negatives).
    pub keys: keyfilter::KeyFilter,
}
