//! One commit: a [`WriteBatch`] becomes one sled batch (records, packed change log, leaf
//! index, watermarks, documents, quarantine), is written durably, and only then moves the seal,
//! the quarantine set and the in-memory summaries. After a failed write the store is
//! poisoned and refuses every later commit with the first failure's cause.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

use super::super::{LogEntry, keys};
use super::index::OwnerChanges;
use super::{SledStore, apply_entry};
use crate::core::codec;
use crate::core::model::{NodeCode, RecordKey};
use crate::core::reconcile::low64;
use crate::core::store::{MAX_RECORD_BYTES, Store, StoreError, WriteBatch};

impl SledStore {
    /// Writes `batch` atomically and durably; see [`Store::commit`].
    pub(super) fn commit_batch(&self, batch: WriteBatch) -> Result<(), StoreError> {
        if let Some(f) = self.fault() {
            return Err(self.refusal(f));
        }
        if batch.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.ensure_reserve() {
            self.poison(&e);
            return Err(e);
        }
        let mut commits = self.commits.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(cutting) = commits.backup.as_mut() {
            self.keep_for_backup(cutting, &batch);
        }
        let batch_no = commits.next_batch;
        let (mut sled_batch, applied, quarantine) = self.build_batch(&batch, batch_no)?;
        let checkpointed = self.checkpointed.load(Ordering::Relaxed);
        if checkpointed {
            // The summaries change now: the checkpoint goes with the same batch, so no
            // crash leaves one that describes an older store.
            sled_batch.remove(keys::CHECKPOINT);
        }
        if let Err(e) = self.write_durably(sled_batch, batch.records.len()) {
            self.poison(&e);
            return Err(e);
        }
        if checkpointed {
            self.checkpointed.store(false, Ordering::Relaxed);
        }
        commits.next_batch += 1;
        if !applied.is_empty()
            && let Err(e) = commits.seal.advance(batch_no, applied.len() as u64)
        {
            // The commit is durable; a seal left behind only weakens the next check.
            tracing::warn!(error = %e, "Could not update the commit seal");
        }
        if !(quarantine.added.is_empty() && quarantine.cleared.is_empty()) {
            let mut held = self.quarantined.write().unwrap_or_else(|p| p.into_inner());
            quarantine.cleared.iter().for_each(|e| {
                held.remove(e);
            });
            held.extend(quarantine.added);
        }
        let mut owners = self.owners.write().unwrap_or_else(|p| p.into_inner());
        for (owner, e) in &applied {
            apply_entry(&mut owners, *owner, e);
        }
        Ok(())
    }

    pub(super) fn poison(&self, err: &StoreError) {
        let mut fault = self.fault.write().unwrap_or_else(|p| p.into_inner());
        if fault.is_none() {
            *fault = Some(err.to_string());
            let full = matches!(err, StoreError::Full(_));
            self.full.store(full, std::sync::atomic::Ordering::Relaxed);
            if full {
                self.filled.notify_waiters();
            }
        }
    }

    /// Resolves once a full disk has poisoned the store (at once if it has already).
    pub async fn filled(&self) {
        let filled = self.filled.notified();
        // Created before the check: a poisoning between the check and the await still
        // wakes it (`notify_waiters` reaches every `Notified` already created).
        if self.full() {
            return;
        }
        filled.await;
    }

    /// Why a poisoned store refuses a commit. A full disk stays a full disk whichever
    /// write (a client's, a peer's, the scrub's) hit it first, so that clients keep
    /// seeing the cause they can act on and the node's restart-in-place applies.
    pub(super) fn refusal(&self, fault: String) -> StoreError {
        if self.full() {
            StoreError::Full(format!(
                "an earlier write failed ({fault}); nothing more is acknowledged until space returns"
            ))
        } else {
            StoreError::Poisoned(fault)
        }
    }

    pub(super) fn build_batch(
        &self,
        batch: &WriteBatch,
        batch_no: u64,
    ) -> Result<BuiltBatch, StoreError> {
        let mut sled_batch = sled::Batch::default();
        let quarantine = self.quarantine_changes(batch, &mut sled_batch)?;
        let mut logs: BTreeMap<NodeCode, Vec<LogEntry>> = BTreeMap::new();
        // The last change of each key, as sled keeps the last operation on a key.
        let mut index: BTreeMap<NodeCode, OwnerChanges> = BTreeMap::new();
        for w in &batch.records {
            let e = &w.record.envelope;
            let fp = e.fingerprint();
            let value = codec::encode(&w.record)?;
            if value.len() > MAX_RECORD_BYTES {
                return Err(StoreError::TooLarge {
                    kind: e.kind,
                    id: e.id.clone(),
                    bytes: value.len(),
                });
            }
            let key = e.key();
            sled_batch.insert(&keys::record(e.owner, key)[..], value);
            index
                .entry(e.owner)
                .or_default()
                .insert(key, Some((e.version, low64(fp))));
            logs.entry(e.owner).or_default().push(LogEntry {
                seq: e.seq,
                key,
                kind: e.kind,
                version: e.version,
                fp: Some(fp),
                prev_fp: w.prev_fp,
            });
        }
        for r in &batch.removals {
            let e = &r.envelope;
            sled_batch.remove(&keys::record(e.owner, e.key())[..]);
            index.entry(e.owner).or_default().insert(e.key(), None);
            logs.entry(e.owner).or_default().push(LogEntry {
                seq: e.seq,
                key: e.key(),
                kind: e.kind,
                version: e.version,
                fp: None,
                prev_fp: Some(e.fingerprint()),
            });
        }
        let mut applied = Vec::with_capacity(batch.records.len());
        for (owner, mut entries) in logs {
            entries.sort_by_key(|x| x.seq);
            for chunk in log_chunks(&entries) {
                let first = chunk.first().map_or(0, |x| x.seq);
                sled_batch.insert(
                    &keys::log(owner, first, batch_no)[..],
                    codec::encode(&chunk)?,
                );
            }
            applied.extend(entries.into_iter().map(|x| (owner, x)));
        }
        self.index_batch(&index, batch_no, &mut sled_batch)?;
        for d in &batch.documents {
            sled_batch.insert(keys::document(&d.kind, d.issuer, &d.id), codec::encode(d)?);
        }
        for (peer, id) in &batch.peer_store_ids {
            sled_batch.insert(&keys::peer_store(*peer)[..], &id[..]);
        }
        match batch.restore_pending {
            Some(true) => sled_batch.insert(keys::RESTORE_PENDING, &[1u8][..]),
            Some(false) => sled_batch.remove(keys::RESTORE_PENDING),
            None => {}
        }
        if let Some(at) = batch.received_at_ms {
            let owners: BTreeSet<NodeCode> = batch
                .records
                .iter()
                .map(|w| w.record.envelope.owner)
                .collect();
            for owner in owners {
                sled_batch.insert(&keys::received(owner)[..], &at.to_be_bytes()[..]);
            }
        }
        for (peer, owner, seq) in &batch.watermarks {
            sled_batch.insert(&keys::watermark(*peer, *owner)[..], &seq.to_be_bytes()[..]);
        }
        Ok((sled_batch, applied, quarantine))
    }

    /// Adds new quarantine entries (within the per-owner cap) and removes those that a
    /// record in this batch supersedes. Returns the change to apply to the in-memory set
    /// once the batch is durable.
    pub(super) fn quarantine_changes(
        &self,
        batch: &WriteBatch,
        sled_batch: &mut sled::Batch,
    ) -> Result<QuarantineChange, StoreError> {
        let held = self.quarantined.read().unwrap_or_else(|p| p.into_inner());
        let mut change = QuarantineChange::default();
        for w in &batch.records {
            let entry = (w.record.envelope.owner, w.record.envelope.key());
            if held.contains(&entry) {
                sled_batch.remove(&keys::quarantine(entry.0, entry.1)[..]);
                change.cleared.push(entry);
            }
        }
        let mut per_owner: BTreeMap<NodeCode, u64> = BTreeMap::new();
        for q in &batch.quarantine {
            let entry = (q.record.envelope.owner, q.record.envelope.key());
            let count = per_owner.entry(entry.0).or_insert_with(|| {
                let all = (entry.0, RecordKey([0; 16]))..=(entry.0, RecordKey([0xff; 16]));
                held.range(all).count() as u64
            });
            let known = held.contains(&entry) || change.added.contains(&entry);
            if !known && *count >= crate::core::store::MAX_QUARANTINED_PER_OWNER {
                continue;
            }
            if !known {
                *count += 1;
                change.added.insert(entry);
            }
            sled_batch.insert(&keys::quarantine(entry.0, entry.1)[..], codec::encode(q)?);
        }
        Ok(change)
    }
}

/// Change-log entries packed under one key at most. About 40 bytes each, so a value stays
/// near 40 KiB: sled stores values over about 128 KiB as separate blob files, and does not
/// fsync those, which would leave an acknowledged batch's log at the mercy of a power cut.
pub(super) const LOG_CHUNK: usize = 1000;

/// Splits one owner's entries of a batch (sorted by seq) into runs of at most
/// [`LOG_CHUNK`], each starting at a higher seq than the last so that their keys differ.
pub(super) fn log_chunks(entries: &[LogEntry]) -> Vec<Vec<LogEntry>> {
    let mut chunks: Vec<Vec<LogEntry>> = Vec::new();
    for e in entries {
        let start_new = chunks
            .last()
            .is_none_or(|c| c.len() >= LOG_CHUNK && c.first().is_some_and(|f| e.seq > f.seq));
        if start_new {
            chunks.push(Vec::new());
        }
        if let Some(c) = chunks.last_mut() {
            c.push(e.clone());
        }
    }
    chunks
}

/// A sled batch ready to apply, the change-log entries it adds (to move the summaries)
/// and its change to the quarantine set, both applied once it is durable.
pub(super) type BuiltBatch = (sled::Batch, Vec<(NodeCode, LogEntry)>, QuarantineChange);

/// How one batch changes the set of quarantined keys.
#[derive(Default)]
pub(super) struct QuarantineChange {
    added: BTreeSet<(NodeCode, RecordKey)>,
    cleared: Vec<(NodeCode, RecordKey)>,
}
