//! The sled implementation of [`Store`]: one tree, prefix-keyed (see [`super::keys`]).
//!
//! This file holds the handle and the reads; [`open`] opens and recovers a store,
//! [`commit`] writes batches, [`index`] keeps the leaf index anti-entropy reads,
//! [`durability`] makes batches durable and names failures.
//!
//! Durability: sled 0.34's `flush` writes with `sync_file_range`, which survives a process
//! crash but not a power cut, so every commit also `fdatasync`s the data file before it
//! returns. Summaries live in memory and are rebuilt on open from the packed change log.

mod checkpoint;
mod commit;
mod durability;
mod index;
mod open;
mod snapshot;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};

use super::seal::Seal;
use super::{LogEntry, OwnerState, keys};
use crate::core::codec;
use crate::core::model::document::StoredDocument;
use crate::core::model::{Kind, NodeCode, Record, RecordKey};
use crate::core::reconcile::{Change, Digest};
use crate::core::store::{
    NodeIdentity, OwnerCounts, QuarantinedRecord, Store, StoreError, WriteBatch,
};

pub use durability::FREE_SPACE_RESERVE;
use durability::storage_error;
pub use snapshot::{BackupRun, Cut};

/// Sled tuning an operator may set.
#[derive(Debug, Clone, Copy)]
pub struct SledOptions {
    /// Page-cache budget in bytes (RSS can reach several times this; see RELIABILITY).
    pub cache_capacity: u64,
}

impl Default for SledOptions {
    fn default() -> Self {
        SledOptions {
            cache_capacity: 256 << 20,
        }
    }
}

/// A node's durable store on sled.
pub struct SledStore {
    db: sled::Db,
    data_file: File,
    /// sled's blob directory and the blob files already fsynced there.
    blobs: (PathBuf, Mutex<BTreeSet<std::ffi::OsString>>),
    identity: NodeIdentity,
    owners: RwLock<BTreeMap<NodeCode, OwnerState>>,
    /// Next change-log batch number; also serialises commits.
    /// Serialises commits: the next batch number and the seal that follows them.
    commits: Mutex<Commits>,
    fault: RwLock<Option<String>>,
    /// The fault was a full disk.
    full: std::sync::atomic::AtomicBool,
    /// Woken when the store is poisoned by a full disk, so that nothing polls for it.
    filled: tokio::sync::Notify,
    /// Keys under quarantine (bounded per owner), so that a valid version can clear its
    /// entry without a read on every write.
    quarantined: RwLock<BTreeSet<(NodeCode, RecordKey)>>,
    /// Held for writing while a batch is applied, for reading while leaves are read: a
    /// commit replaces index bases and deletes tail values together.
    index_gate: RwLock<()>,
    /// Tail entries an owner's index may hold before a pass must have folded them, at least
    /// (see [`super::leaf_index::fold_width`]).
    index_min_tail: std::sync::atomic::AtomicU64,
    /// A checkpoint of the summaries is on disk: the next commit removes it
    /// (`checkpoint.rs`).
    checkpointed: std::sync::atomic::AtomicBool,
    /// The summaries came from a checkpoint when the store was opened.
    from_checkpoint: bool,
    /// Closing leaves no checkpoint (tests of what a crash leaves).
    no_checkpoint_on_close: std::sync::atomic::AtomicBool,
}

impl Drop for SledStore {
    /// A store closed cleanly leaves a checkpoint of its summaries, so that opening it
    /// again need not read the whole change log.
    fn drop(&mut self) {
        if self
            .no_checkpoint_on_close
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        if let Err(e) = self.checkpoint() {
            tracing::warn!(error = %e, "Could not write a checkpoint of the summaries");
        }
    }
}

/// What one commit at a time updates.
#[derive(Debug)]
struct Commits {
    next_batch: u64,
    seal: Seal,
    /// The running backup, if any: commits keep the values it has yet to read.
    backup: Option<snapshot::Cutting>,
    /// Backups begun since the store opened (names each one's tree of kept values).
    backups_started: u64,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("identity", &self.identity)
            .finish()
    }
}

impl SledStore {
    /// True when opening read the summaries from the checkpoint a clean close left,
    /// rather than from the whole change log.
    pub fn opened_from_checkpoint(&self) -> bool {
        self.from_checkpoint
    }

    /// Every record of `owner`, in record-key order (tests, verification, export).
    pub fn scan_owner(
        &self,
        owner: NodeCode,
    ) -> impl Iterator<Item = Result<Record, StoreError>> + '_ {
        self.db.scan_prefix(keys::record_prefix(owner)).map(|item| {
            let (_, v) = item.map_err(storage_error)?;
            Ok(codec::decode::<Record>(&v)?)
        })
    }

    /// Closes the store as a crash would, as far as lmsync's own state goes: no checkpoint
    /// of the summaries is written. Only for tests of recovery.
    #[doc(hidden)]
    pub fn close_as_if_crashed(self) {
        self.no_checkpoint_on_close
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Overwrites a stored record's bytes without touching the log or summaries.
    /// Only for fault-injection tests of corruption detection.
    #[doc(hidden)]
    pub fn corrupt_record_for_test(
        &self,
        owner: NodeCode,
        record: &Record,
    ) -> Result<(), StoreError> {
        let k = keys::record(owner, record.envelope.key());
        self.db
            .insert(k, codec::encode(record)?)
            .map_err(storage_error)?;
        self.db.flush().map_err(storage_error)?;
        Ok(())
    }

    /// Change-log entries of `owner` with seq in `after+1..=upto`, in seq order.
    pub(super) fn log_entries(
        &self,
        owner: NodeCode,
        after: u64,
        upto: u64,
    ) -> impl Iterator<Item = Result<LogEntry, StoreError>> + '_ {
        // Start at the batch that holds seq `after + 1`: the last one starting at or before it.
        let probe = keys::log(owner, after.saturating_add(1), u64::MAX);
        let start = self
            .db
            .range(keys::log(owner, 0, 0)..=probe)
            .next_back()
            .and_then(Result::ok)
            .map_or(keys::log(owner, after.saturating_add(1), 0), |(k, _)| {
                let mut key = [0u8; 21];
                key.copy_from_slice(&k);
                key
            });
        self.db
            .range(start..=keys::log(owner, upto, u64::MAX))
            .map(|item| {
                let (_, v) = item.map_err(storage_error)?;
                Ok(codec::decode::<Vec<LogEntry>>(&v)?)
            })
            .flat_map(|batch: Result<Vec<LogEntry>, StoreError>| match batch {
                Ok(entries) => entries.into_iter().map(Ok).collect::<Vec<_>>(),
                Err(e) => vec![Err(e)],
            })
            .filter(move |e| e.as_ref().map_or(true, |e| e.seq > after && e.seq <= upto))
    }
}

pub(super) fn apply_entry(
    owners: &mut BTreeMap<NodeCode, OwnerState>,
    owner: NodeCode,
    e: &LogEntry,
) {
    let state = owners.entry(owner).or_default();
    state.last_seq = state.last_seq.max(e.seq);
    if e.prev_fp.is_none() && e.fp.is_some() {
        state.keys.insert(e.key);
    }
    state.summary.apply(&Change {
        key: e.key,
        kind: e.kind,
        fp: e.fp,
        prev_fp: e.prev_fp,
    });
}

impl Store for SledStore {
    fn identity(&self) -> &NodeIdentity {
        &self.identity
    }

    fn get_record(&self, owner: NodeCode, key: RecordKey) -> Result<Option<Record>, StoreError> {
        let Some(bytes) = self
            .db
            .get(keys::record(owner, key))
            .map_err(storage_error)?
        else {
            return Ok(None);
        };
        Ok(Some(codec::decode(&bytes)?))
    }

    fn changes(
        &self,
        owner: NodeCode,
        after: u64,
        upto: u64,
        max: usize,
    ) -> Result<(u64, Vec<Record>), StoreError> {
        let mut records = Vec::new();
        let mut covered = after;
        for entry in self.log_entries(owner, after, upto) {
            let entry = entry?;
            if records.len() >= max {
                break;
            }
            // A later version supersedes this seq: the range still counts as covered.
            if let Some(r) = self.get_record(owner, entry.key)?
                && r.envelope.seq == entry.seq
            {
                records.push(r);
            }
            covered = entry.seq;
        }
        if records.len() < max {
            covered = upto;
        }
        Ok((covered.max(after), records))
    }

    fn buckets(
        &self,
        owner: NodeCode,
        depth: u32,
        parents: &[u16],
    ) -> Vec<crate::core::reconcile::Bucket> {
        let owners = self.owners.read().unwrap_or_else(|p| p.into_inner());
        match owners.get(&owner) {
            Some(s) => s.summary.children(depth, parents),
            None => crate::core::reconcile::OwnerSummary::default().children(depth, parents),
        }
    }

    fn leaf_items(
        &self,
        owner: NodeCode,
        leaf: u16,
    ) -> Result<Vec<crate::core::store::LeafItem>, StoreError> {
        Ok(self
            .read_leaves(owner, &[leaf])?
            .into_iter()
            .next()
            .unwrap_or_default())
    }

    fn leaves_items(
        &self,
        owner: NodeCode,
        leaves: &[u16],
    ) -> Result<Vec<Vec<crate::core::store::LeafItem>>, StoreError> {
        self.read_leaves(owner, leaves)
    }

    fn scrub(
        &self,
        cursor: &mut crate::core::store::ScrubCursor,
        max: usize,
    ) -> Result<Vec<crate::core::store::Removal>, StoreError> {
        let start = match &cursor.after {
            Some(k) => std::ops::Bound::Excluded(k.clone()),
            None => std::ops::Bound::Included(vec![keys::RECORD]),
        };
        let end = std::ops::Bound::Excluded(vec![keys::RECORD + 1]);
        let mut corrupt = Vec::new();
        let mut seen = 0;
        for item in self.db.range::<Vec<u8>, _>((start, end)).take(max) {
            let (k, v) = item.map_err(storage_error)?;
            seen += 1;
            cursor.after = Some(k.to_vec());
            match codec::decode::<Record>(&v) {
                Ok(r) if r.verify_hash()? => {}
                Ok(r) => corrupt.push(crate::core::store::Removal {
                    envelope: r.envelope,
                }),
                // Undecodable bytes name no envelope to remove; surface them loudly.
                Err(e) => tracing::error!(key = ?k, error = %e, "Undecodable record in the store"),
            }
        }
        cursor.verified += seen as u64;
        if seen < max {
            cursor.after = None;
            cursor.passes += 1;
        }
        Ok(corrupt)
    }

    fn may_contain(&self, owner: NodeCode, key: RecordKey) -> bool {
        let owners = self.owners.read().unwrap_or_else(|p| p.into_inner());
        owners.get(&owner).is_some_and(|s| s.keys.may_contain(key))
    }

    fn commit(&self, batch: WriteBatch) -> Result<(), StoreError> {
        self.commit_batch(batch)
    }

    fn digest(&self, owner: Option<NodeCode>, kind: Option<Kind>) -> Digest {
        let owners = self.owners.read().unwrap_or_else(|p| p.into_inner());
        let mut d = Digest::default();
        match owner {
            Some(o) => {
                if let Some(s) = owners.get(&o) {
                    d.merge(s.summary.digest(kind));
                }
            }
            None => owners
                .values()
                .for_each(|s| d.merge(s.summary.digest(kind))),
        }
        d
    }

    fn last_seq(&self, owner: NodeCode) -> u64 {
        let owners = self.owners.read().unwrap_or_else(|p| p.into_inner());
        owners.get(&owner).map_or(0, |s| s.last_seq)
    }

    fn owner_counts(&self) -> BTreeMap<NodeCode, OwnerCounts> {
        let owners = self.owners.read().unwrap_or_else(|p| p.into_inner());
        owners
            .iter()
            .map(|(o, s)| {
                let by_kind = s.summary.counts().filter(|(_, n)| *n > 0).collect();
                (
                    *o,
                    OwnerCounts {
                        last_seq: s.last_seq,
                        by_kind,
                    },
                )
            })
            .collect()
    }

    fn quarantined(
        &self,
        owner: Option<NodeCode>,
        limit: usize,
    ) -> Result<Vec<QuarantinedRecord>, StoreError> {
        let prefix = match owner {
            Some(o) => {
                let mut p = keys::record_prefix(o).to_vec();
                p[0] = keys::QUARANTINE;
                p
            }
            None => vec![keys::QUARANTINE],
        };
        self.db
            .scan_prefix(prefix)
            .take(limit)
            .map(|item| {
                let (_, v) = item.map_err(storage_error)?;
                Ok(codec::decode::<QuarantinedRecord>(&v)?)
            })
            .collect()
    }

    fn last_received(&self, owner: NodeCode) -> Result<Option<i64>, StoreError> {
        let Some(bytes) = self.db.get(keys::received(owner)).map_err(storage_error)? else {
            return Ok(None);
        };
        let raw: [u8; 8] = bytes
            .as_ref()
            .try_into()
            .map_err(|_| StoreError::Storage(format!("bad receipt time for {owner}")))?;
        Ok(Some(i64::from_be_bytes(raw)))
    }

    fn records_of(
        &self,
        owner: NodeCode,
    ) -> Box<dyn Iterator<Item = Result<Record, StoreError>> + '_> {
        Box::new(self.scan_owner(owner))
    }

    fn quarantine_counts(&self) -> BTreeMap<NodeCode, u64> {
        let held = self.quarantined.read().unwrap_or_else(|p| p.into_inner());
        let mut counts = BTreeMap::new();
        for (owner, _) in held.iter() {
            *counts.entry(*owner).or_insert(0) += 1;
        }
        counts
    }

    fn get_document(
        &self,
        kind: &str,
        issuer: NodeCode,
        id: &str,
    ) -> Result<Option<StoredDocument>, StoreError> {
        let Some(bytes) = self
            .db
            .get(keys::document(kind, issuer, id))
            .map_err(storage_error)?
        else {
            return Ok(None);
        };
        Ok(Some(codec::decode(&bytes)?))
    }

    fn documents(&self) -> Result<Vec<StoredDocument>, StoreError> {
        self.db
            .scan_prefix([keys::DOCUMENT])
            .map(|item| {
                let (_, v) = item.map_err(storage_error)?;
                Ok(codec::decode(&v)?)
            })
            .collect()
    }

    fn watermark(&self, peer: NodeCode, owner: NodeCode) -> Result<u64, StoreError> {
        let Some(bytes) = self
            .db
            .get(keys::watermark(peer, owner))
            .map_err(storage_error)?
        else {
            return Ok(0);
        };
        let arr: [u8; 8] = bytes
            .as_ref()
            .try_into()
            .map_err(|_| StoreError::Storage("watermark value is not 8 bytes".into()))?;
        Ok(u64::from_be_bytes(arr))
    }

    fn peer_store_id(&self, peer: NodeCode) -> Result<Option<[u8; 16]>, StoreError> {
        let Some(bytes) = self.db.get(keys::peer_store(peer)).map_err(storage_error)? else {
            return Ok(None);
        };
        let id: [u8; 16] = bytes
            .as_ref()
            .try_into()
            .map_err(|_| StoreError::Storage("a peer store id is not 16 bytes".into()))?;
        Ok(Some(id))
    }

    fn restore_pending(&self) -> Result<bool, StoreError> {
        self.db
            .contains_key(keys::RESTORE_PENDING)
            .map_err(storage_error)
    }

    fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    fn fault(&self) -> Option<String> {
        self.fault.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn full(&self) -> bool {
        self.full.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn figures(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let value = self.db.get(keys::figures(key)).map_err(storage_error)?;
        Ok(value.map(|v| v.to_vec()))
    }

    fn put_figures(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.db
            .insert(keys::figures(key), value)
            .map_err(storage_error)?;
        // Written through to the log (no fsync: a lost figure is computed again), so that
        // a node restarted after a quiet spell finds its figures.
        self.db.flush().map_err(storage_error)?;
        Ok(())
    }

    fn figures_keys(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.db
            .scan_prefix([keys::FIGURES])
            .keys()
            .map(|k| k.map(|k| k[1..].to_vec()).map_err(storage_error))
            .collect()
    }
}
