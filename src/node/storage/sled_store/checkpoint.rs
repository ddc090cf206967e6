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
use crate::core::model::{Kind, NodeCode};
use crate::core::store::{Store, StoreError};

/// The checkpoint's header.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    next_batch: u64,
    entries: u64,
    owners: Vec<NodeCode>,
    /// How many record kinds each summary counts ([`Kind::ALL`]): a checkpoint written
    /// by a release with another number of kinds (whose headers end before this field)
    /// is ignored, never misread.
    kinds: u16,
}

/// The number of record kinds this release's summaries count.
fn kinds_counted() -> u16 {
    u16::try_from(Kind::ALL.len()).unwrap_or(u16::MAX)
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
            kinds: kinds_counted(),
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

impl SledStore {
    /// Makes the next commit leave the checkpoint in place, as a release that knew no
    /// checkpoints would. Only for tests of a downgrade and back.
    #[doc(hidden)]
    pub fn commit_next_as_an_earlier_release(&self) {
        self.checkpointed
            .store(false, std::sync::atomic::Ordering::Relaxed);
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
    if header.kinds != kinds_counted() {
        return Ok(None);
    }
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
