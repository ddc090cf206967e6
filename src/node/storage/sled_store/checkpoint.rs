//! Checkpoints of the in-memory summaries: written when a store is closed cleanly, read
//! instead of the whole change log when it is opened again.
//!
//! Rebuilding the summaries (each owner's digest, leaf buckets and key filter) from the
//! change log reads every entry ever logged: at 10^7 records that is seconds, and sled
//! keeps hundreds of MiB of the log's values in memory afterwards. A checkpoint holds the
//! summaries themselves (one value per owner, under the decoder's size limit) and the log
//! extent they cover.
//!
//! A checkpoint describes the store only until the next commit, so the first commit after
//! one was written or read removes its header **in the same sled batch** as its records:
//! a store that committed anything after its checkpoint, and then crashed, finds no
//! header and rebuilds from the log. The commit seal is checked against the checkpoint's
//! extent as it is against the log's, so a store that lost commits is still detected.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::super::seal::LogExtent;
use super::super::{OwnerState, keys};
use super::{SledStore, storage_error};
use crate::core::codec;
use crate::core::model::NodeCode;
use crate::core::store::{Store, StoreError};

/// The checkpoint's header.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    next_batch: u64,
    entries: u64,
    owners: Vec<NodeCode>,
}

impl SledStore {
    /// Writes a checkpoint of the summaries, durably, unless the store is poisoned. No
    /// commit runs meanwhile; the next one removes the checkpoint again.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        if self.fault().is_some() {
            return Ok(());
        }
        let commits = self.commits.lock().unwrap_or_else(|p| p.into_inner());
        let extent = commits.seal.extent();
        let owners = self.owners.read().unwrap_or_else(|p| p.into_inner());
        let mut batch = sled::Batch::default();
        for (owner, state) in owners.iter() {
            batch.insert(&keys::checkpoint_owner(*owner)[..], codec::encode(state)?);
        }
        let header = Header {
            next_batch: commits.next_batch.max(extent.next_batch),
            entries: extent.entries,
            owners: owners.keys().copied().collect(),
        };
        batch.insert(keys::CHECKPOINT, codec::encode(&header)?);
        self.db.apply_batch(batch).map_err(storage_error)?;
        self.db.flush().map_err(storage_error)?;
        self.data_file.sync_data().map_err(storage_error)?;
        self.sync_new_blobs()?;
        self.checkpointed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// Every owner's summary and the log extent they cover.
pub(super) type Summaries = (BTreeMap<NodeCode, OwnerState>, LogExtent);

/// The summaries of the checkpoint in `db`, if it holds a whole one. A checkpoint that
/// cannot be read in full is ignored: the log is the truth.
pub(super) fn read_checkpoint(db: &sled::Db) -> Result<Option<Summaries>, StoreError> {
    let Some(bytes) = db.get(keys::CHECKPOINT).map_err(storage_error)? else {
        return Ok(None);
    };
    let Ok(header) = codec::decode::<Header>(&bytes) else {
        return Ok(None);
    };
    let mut owners = BTreeMap::new();
    for owner in header.owners {
        let value = db
            .get(keys::checkpoint_owner(owner))
            .map_err(storage_error)?;
        let Some(state) = value.and_then(|v| codec::decode::<OwnerState>(&v).ok()) else {
            return Ok(None);
        };
        owners.insert(owner, state);
    }
    let extent = LogExtent {
        next_batch: header.next_batch,
        entries: header.entries,
    };
    Ok(Some((owners, extent)))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::super::SledOptions;
    use super::SledStore;
    use crate::core::model::NodeCode;
    use crate::core::model::ingest::IngestContext;
    use crate::core::model::person::Pseudonymiser;
    use crate::core::model::standards::Standards;
    use crate::core::store::{Store, WriteBatch};
    use crate::node::write::Planner;

    fn city() -> NodeCode {
        "440100".parse().unwrap()
    }

    fn write(store: &SledStore, from: usize, to: usize) {
        let standards = Standards::builtin();
        let key = Pseudonymiser::new([3; 32], 1);
        let cx = IngestContext::new(city(), &standards, Some(&key));
        let mut planner = Planner::new(store, city());
        let values = crate::tooling::synth::generate(city(), to, 7);
        for v in &values[from..] {
            let draft = cx.draft(v.clone()).unwrap();
            planner.plan(draft, &standards.code_refs(), 1).unwrap();
        }
        let records = planner.into_writes();
        store
            .commit(WriteBatch {
                records,
                ..WriteBatch::default()
            })
            .unwrap();
    }

    /// A release that knew no checkpoints committed after one was written (a downgrade
    /// and back): the checkpoint is behind the seal, so the log is read instead.
    #[test]
    fn a_checkpoint_behind_the_seal_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let options = SledOptions::default();
        let store = SledStore::create(&path, city(), [1; 16], 0, options).unwrap();
        write(&store, 0, 50);
        drop(store);
        let store = SledStore::open(&path, city(), options).unwrap();
        assert!(store.opened_from_checkpoint());
        // As the earlier release would: commit without removing the checkpoint.
        store.checkpointed.store(false, Ordering::Relaxed);
        write(&store, 50, 80);
        let digest = store.digest(None, None);
        store.close_as_if_crashed();
        let store = SledStore::open(&path, city(), options).unwrap();
        assert!(!store.opened_from_checkpoint(), "stale: the log instead");
        assert_eq!(store.digest(None, None), digest);
        assert_eq!(store.digest(None, None).records, 80);
    }
}
